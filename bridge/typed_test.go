package bridge_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/pyudf/pyudf/bridge"
)

var ne = binary.NativeEndian

// wire builds expected encodings: bytes, tags, uint32 and int64 values in order.
func wire(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch x := p.(type) {
		case int:
			b = append(b, byte(x))
		case uint32:
			b = ne.AppendUint32(b, x)
		case int64:
			b = ne.AppendUint64(b, uint64(x))
		case string:
			b = append(ne.AppendUint32(b, uint32(len(x))), x...)
		default:
			panic(p)
		}
	}
	return b
}

func date(y uint32, m, d int) []any { return []any{y, m, d} }

func clockOf(h, m, s int, us uint32) []any { return []any{h, m, s, us} }

func cat(parts ...[]any) []any {
	var out []any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// 2024-03-01 23:30:15.123456789 at UTC+5 (18:30:15 UTC).
var at = time.Date(2024, 3, 1, 23, 30, 15, 123456789, time.FixedZone("UTC+5", 5*3600))

func TestBridgeTypedValueStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(bridge.Value{}); n != 32 {
		t.Fatalf("Value is %d bytes, want 32 (the SQL tag lives in kind's padding)", n)
	}
}

func TestBridgeTypedEncodingUndeclared(t *testing.T) {
	for _, c := range []struct {
		name string
		v    bridge.Value
		want []byte
	}{
		{"Date", bridge.Date(at), wire(cat([]any{bridge.TagDate}, date(2024, 3, 1))...)},
		{"Time", bridge.Time(bridge.TimeOfDay(at)), wire(cat([]any{bridge.TagTime}, clockOf(23, 30, 15, 123456))...)},
		{"Timestamp", bridge.Timestamp(at), wire(cat([]any{bridge.TagTimestamp}, date(2024, 3, 1), clockOf(23, 30, 15, 123456))...)},
		{"TimestampLTZ", bridge.TimestampLTZ(at), wire(cat([]any{bridge.TagTimestampUTC}, date(2024, 3, 1), clockOf(18, 30, 15, 123456))...)},
		{"RowOf", bridge.RowOf([]string{"id", "owner"}, 7, "Ada"),
			wire(bridge.TagRow, uint32(2), "id", bridge.TagInt, int64(7), "owner", bridge.TagStr, "Ada")},
		{"RowOf unnamed", bridge.RowOf(nil, 7, nil), wire(bridge.TagRowValues, uint32(2), bridge.TagInt, int64(7), bridge.TagNull)},
		{"Row", bridge.ValueOf(bridge.Row{true}), wire(bridge.TagRowValues, uint32(1), bridge.TagTrue)},
		{"*Row", bridge.ValueOf(&bridge.Row{true}), wire(bridge.TagRowValues, uint32(1), bridge.TagTrue)},
		{"nil Row", bridge.ValueOf(bridge.Row(nil)), wire(bridge.TagNull)},
		{"MapOf", bridge.MapOf("b", 2, []byte("a"), nil),
			wire(bridge.TagMap, uint32(2), bridge.TagStr, "b", bridge.TagInt, int64(2), bridge.TagBytes, "a", bridge.TagNull)},
		{"*Value", bridge.ValueOf(ptr(bridge.Date(at))), wire(cat([]any{bridge.TagDate}, date(2024, 3, 1))...)},
	} {
		got, err := bridge.AppendArg(nil, nil, c.v)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: AppendArg = % x, %v; want % x", c.name, got, err, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// For its own declared type a typed Value encodes as the plain Go value does.
func TestBridgeTypedEncodingDeclared(t *testing.T) {
	for _, c := range []struct {
		ddl        string
		typed, raw any
	}{
		{"DATE", bridge.Date(at), at},
		{"TIME(6)", bridge.Time(time.Hour + time.Microsecond), time.Hour + time.Microsecond},
		{"TIMESTAMP(3)", bridge.Timestamp(at), at},
		{"TIMESTAMP_LTZ(3)", bridge.TimestampLTZ(at), at},
		{"ROW<a INT, b STRING>", bridge.RowOf([]string{"b", "a"}, "x", 1), bridge.Row{1, "x"}},
		{"ROW<a INT, b STRING>", bridge.RowOf(nil, 1, "x"), bridge.Row{1, "x"}},
		{"MAP<STRING, BIGINT>", bridge.MapOf("k", 1), map[string]int{"k": 1}},
		{"ARRAY<DATE>", []any{bridge.Date(at)}, []any{at}},
	} {
		typ, err := bridge.ParseType(c.ddl)
		if err != nil {
			t.Fatal(err)
		}
		got, err := bridge.AppendArg(nil, typ, bridge.ValueOf(c.typed))
		want, _ := bridge.AppendArg(nil, typ, bridge.ValueOf(c.raw))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: typed % x, %v; want % x", c.ddl, got, err, want)
		}
	}
}

func TestBridgeTypedAnyAndString(t *testing.T) {
	utcDate := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    bridge.Value
		any  any
		text string
	}{
		{bridge.Date(at), utcDate, "2024-03-01"},
		{bridge.Time(90 * time.Minute), 90 * time.Minute, "01:30:00"},
		{bridge.Time(25 * time.Hour), 25 * time.Hour, "25h0m0s"},
		{bridge.Timestamp(at), time.Date(2024, 3, 1, 23, 30, 15, 123456789, time.UTC), "2024-03-01 23:30:15.123456789"},
		{bridge.TimestampLTZ(at), at.UTC(), "2024-03-01 18:30:15.123456789Z"},
		{bridge.RowOf([]string{"a", "b"}, 1, "x"), bridge.Row{1, "x"}, "Row(a=1, b=x)"},
		{bridge.RowOf(nil, bridge.Date(at)), bridge.Row{bridge.Date(at)}, "Row(2024-03-01)"},
		{bridge.MapOf("z", 1, []byte("y"), 2), map[any]any{"z": int64(1), "y": int64(2)}, "map[z:1 [121]:2]"},
	} {
		if got := c.v.Any(); !reflect.DeepEqual(got, c.any) {
			if tm, ok := got.(time.Time); !ok || !tm.Equal(c.any.(time.Time)) || tm.Location() != time.UTC {
				t.Errorf("%s: Any() = %#v, want %#v", c.text, got, c.any)
			}
		}
		if got := c.v.String(); got != c.text {
			t.Errorf("String() = %q, want %q", got, c.text)
		}
		if c.v.Kind() != bridge.KindAny {
			t.Errorf("%s: Kind() = %v", c.text, c.v.Kind())
		}
	}
}

func TestBridgeTypedConstructorsCopy(t *testing.T) {
	names, values := []string{"a"}, []any{1}
	r := bridge.RowOf(names, values...)
	names[0], values[0] = "b", 2
	kv := []any{"k", 1}
	m := bridge.MapOf(kv...)
	kv[0] = "changed"
	if r.String() != "Row(a=1)" || m.String() != "map[k:1]" {
		t.Fatalf("constructors share their arguments: %s %s", r, m)
	}
}

// wantConv checks err is a *bridge.ConversionError with exactly reason.
func wantConv(t *testing.T, err error, reason string) {
	t.Helper()
	var ce *bridge.ConversionError
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want a *bridge.ConversionError", err, err)
	}
	if ce.Reason != reason {
		t.Errorf("reason %q, want %q", ce.Reason, reason)
	}
}

func TestHostileBridgeTypedRefused(t *testing.T) {
	bigint, _ := bridge.ParseType("BIGINT")
	row, _ := bridge.ParseType("ROW<a INT>")
	for _, c := range []struct {
		t      *bridge.DataType
		v      bridge.Value
		path   string
		reason string
	}{
		{bigint, bridge.Date(at), "", "DATE 2024-03-01 is not a BIGINT"},
		{bigint, bridge.MapOf(), "", "MAP map[] is not a BIGINT"},
		{row, bridge.RowOf([]string{"b"}, 1), "", `RowOf has no field "a" of ROW<a INT>`},
		{nil, bridge.Time(-1), "", "-1ns is not a time of day for TIME(0)"},
		{nil, bridge.Date(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)), "", "year 10000 is outside Python's dates (years 1 to 9999)"},
		{nil, bridge.RowOf([]string{"x", "x"}, 1, 2), "", `RowOf: field name "x" is given twice (fields 1 and 2)`},
		{row, bridge.RowOf([]string{"x", "x"}, 1, 2), "", `RowOf: field name "x" is given twice (fields 1 and 2)`},
		{nil, bridge.RowOf([]string{}, 1), "", "RowOf: 0 names for 1 values"},
		{nil, bridge.MapOf(1), "", "MapOf: 1 arguments, not key-value pairs (the last key has no value)"},
		{nil, bridge.MapOf([]byte("k"), 1, "k", 2), "", "MapOf: key k is given twice (entries 1 and 2)"},
		{nil, bridge.MapOf(bridge.Row{1}, 2), "", "MapOf key 1: Go bridge.Row cannot be a MAP key (keys are single values: Python cannot use a list or dict as a key)"},
		{nil, bridge.MapOf(struct{ A int }{1}, 2), "", "MapOf key 1: Go struct { A int } cannot be a MAP key (keys are single values: Python cannot use a list or dict as a key)"},
		{nil, bridge.MapOf("k", []any{"\xff"}), "[k][0]", `Go string "\xff" is not valid UTF-8 (byte 0 of 1)`},
		{nil, bridge.RowOf([]string{"r"}, bridge.MapOf("x")), ".r", "MapOf: 1 arguments, not key-value pairs (the last key has no value)"},
	} {
		_, err := bridge.AppendArg(nil, c.t, c.v)
		wantConv(t, err, c.reason)
		var ce *bridge.ConversionError
		if errors.As(err, &ce) && ce.Path != c.path {
			t.Errorf("%s: path %q, want %q", c.reason, ce.Path, c.path)
		}
	}
}

func TestHostileBridgeTypedDepth(t *testing.T) {
	var v any = 1
	for range bridge.MaxDepth {
		v = bridge.RowOf(nil, v)
	}
	if _, err := bridge.AppendArg(nil, nil, bridge.ValueOf(v)); err != nil {
		t.Fatalf("%d levels: %v", bridge.MaxDepth, err)
	}
	_, err := bridge.AppendArg(nil, nil, bridge.MapOf("k", v))
	wantConv(t, err, "nested deeper than 100 levels (or cyclic)")
	// A Row holding itself ends in the same error, not a stack overflow.
	cyclic := bridge.Row{nil}
	cyclic[0] = cyclic
	_, err = bridge.AppendArg(nil, nil, bridge.ValueOf(cyclic))
	wantConv(t, err, "nested deeper than 100 levels (or cyclic)")
	if !strings.Contains(err.Error(), "[0][0]") {
		t.Errorf("no path in %v", err)
	}
}
