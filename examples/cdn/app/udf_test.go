package app

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// TestIPTable: the shipped table is sorted and non-overlapping, and the
// UDF maps the first, last and inner addresses of its ranges as Go does.
func TestIPTable(t *testing.T) {
	rs, err := parseRanges(ipTable)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 100 {
		t.Fatalf("%d ranges", len(rs))
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].lo <= rs[i-1].hi || rs[i].hi < rs[i].lo {
			t.Fatalf("range %d overlaps or is unsorted", i)
		}
	}
	fn := udf(t, engine.Thread)
	ctx := context.Background()
	for _, r := range []ipRange{rs[0], rs[len(rs)/2], rs[len(rs)-1]} {
		for _, v := range []uint32{r.lo, r.hi, r.lo + (r.hi-r.lo)/2} {
			ip := string4(v)
			got, err := fn.Call(ctx, ip)
			if err != nil || got != r.province {
				t.Errorf("ip_to_province(%s) = %v, %v; want %q", ip, got, err, r.province)
			}
		}
	}
	if got, err := fn.Call(ctx, "0.0.0.1"); err != nil || got != "Unknown" {
		t.Errorf("ip_to_province(0.0.0.1) = %v, %v; want Unknown", got, err)
	}
}

func string4(v uint32) string {
	return strings.Join([]string{itoa(v >> 24), itoa(v >> 16 & 255), itoa(v >> 8 & 255), itoa(v & 255)}, ".")
}

func itoa(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

// TestHostileCDNIPTableMissing: an IP table that cannot be read fails the
// UDF's open() with a clear error at start-up, and the engine stays usable.
func TestHostileCDNIPTableMissing(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "nope.csv")
	eng, _, err := LoadUDF(ctx, engine.Config{JobParameters: map[string]string{"cdn.ip_table": missing}}, t.TempDir())
	var pe *bridge.PythonError
	if !errors.As(err, &pe) || pe.Type != "FileNotFoundError" || !strings.Contains(pe.Message, missing) {
		t.Fatalf("LoadUDF with a missing table: %v (%#v), want FileNotFoundError naming %s", err, pe, missing)
	}
	if eng != nil {
		t.Fatal("an engine returned with the error")
	}
	// A correct table works afterwards (same process, same interpreter).
	fn := udf(t, engine.Thread)
	if got, err := fn.Call(ctx, "0.0.0.1"); err != nil || got != "Unknown" {
		t.Fatalf("after the failed load: %v, %v", got, err)
	}
}

// TestHostileCDNParseRecord: each malformed line gets its reason.
func TestHostileCDNParseRecord(t *testing.T) {
	for line, reason := range map[string]string{
		"":                                    ReasonMissingField,
		"u,1.2.3.4,1,2":                       ReasonMissingField,
		"u, ,1,2,/x":                          ReasonMissingField,
		"u,1.2.3.4,x,2,/x":                    ReasonBadNumber,
		"u,1.2.3.4,1,-2,/x":                   ReasonBadNumber,
		"u,1.2.3.4,1,99999999999999999999,/x": ReasonBadNumber,
	} {
		_, err := ParseRecord([]byte(line))
		var be *BadRecordError
		if !errors.As(err, &be) || be.Reason != reason {
			t.Errorf("ParseRecord(%q) = %v, want reason %q", line, err, reason)
		}
	}
	r, err := ParseRecord([]byte("u,1.2.3.4,10,20,/a?b=1,2\r\n"))
	if err != nil || r != (Record{"u", "1.2.3.4", 10, 20, "/a?b=1,2"}) {
		t.Errorf("a uri with a comma: %+v, %v", r, err)
	}
}

// BenchmarkIPToProvince: one batch call over 1,000 addresses, as the app
// makes per fetch (go test -bench IPToProvince -run ^$ ./app).
func BenchmarkIPToProvince(b *testing.B) {
	for _, mode := range []engine.Mode{engine.Thread, engine.Process} {
		b.Run(mode.String(), func(b *testing.B) {
			eng, fn, err := LoadUDF(context.Background(), engine.Config{Mode: mode}, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close()
			g := NewGenerator(9)
			bld := array.NewStringBuilder(arrowconv.DefaultAllocator)
			for range 1000 {
				r, _ := ParseRecord([]byte(g.Next()))
				bld.Append(r.ClientIP)
			}
			col := bld.NewArray()
			rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "ip", Type: arrow.BinaryTypes.String}}, nil), []arrow.Array{col}, 1000)
			defer rec.Release()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				res, errs, err := fn.EvalRowErrors(context.Background(), rec)
				if err != nil {
					b.Fatal(err)
				}
				res.Release()
				errs.Release()
			}
			b.ReportMetric(float64(b.N*1000)/time.Since(start).Seconds(), "addresses/s")
		})
	}
}
