package app

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/examples/appkit"
)

// Record is one CDN access log line: uuid, client_ip, request_time,
// response_size, uri (CSV, the seed's cdn_access_log table).
type Record struct {
	UUID         string
	ClientIP     string
	RequestTime  int64 // milliseconds the download took
	ResponseSize int64 // bytes sent
	URI          string
}

// CSV is the record as a log line.
func (r Record) CSV() string {
	return fmt.Sprintf("%s,%s,%d,%d,%s", r.UUID, r.ClientIP, r.RequestTime, r.ResponseSize, r.URI)
}

// BadRecordError says why a log line is not a record. Reason is short and
// fixed ("missing field", "bad request_time", ...: the key the sink counts
// bad records under); Detail names the value.
type BadRecordError struct {
	Reason string
	Detail string
}

func (e *BadRecordError) Error() string { return e.Reason + ": " + e.Detail }

// Reasons of BadRecordError.
const (
	ReasonMissingField = "missing field"
	ReasonBadNumber    = "bad number"
	ReasonNotAnIP      = "not an IP" // raised by the UDF (ValueError), counted by the app
)

// ParseRecord parses one CSV log line. The uri is the last field and may
// contain commas; every other field must be present and non-empty.
func ParseRecord(line []byte) (Record, error) {
	s := strings.TrimRight(string(line), "\r\n")
	f := strings.SplitN(s, ",", 5)
	if len(f) < 5 {
		return Record{}, &BadRecordError{ReasonMissingField, fmt.Sprintf("%d of 5 fields (uuid, client_ip, request_time, response_size, uri) in %q", len(f), clip(s))}
	}
	names := [...]string{"uuid", "client_ip", "request_time", "response_size", "uri"}
	for i, v := range f {
		if strings.TrimSpace(v) == "" {
			return Record{}, &BadRecordError{ReasonMissingField, fmt.Sprintf("%s is empty in %q", names[i], clip(s))}
		}
	}
	rt, err1 := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
	sz, err2 := strconv.ParseInt(strings.TrimSpace(f[3]), 10, 64)
	if err1 != nil || rt < 0 {
		return Record{}, &BadRecordError{ReasonBadNumber, fmt.Sprintf("request_time %q is not a count of milliseconds", clip(f[2]))}
	}
	if err2 != nil || sz < 0 {
		return Record{}, &BadRecordError{ReasonBadNumber, fmt.Sprintf("response_size %q is not a count of bytes", clip(f[3]))}
	}
	return Record{UUID: f[0], ClientIP: strings.TrimSpace(f[1]), RequestTime: rt, ResponseSize: sz, URI: f[4]}, nil
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}

// Generator makes CDN access log lines: client addresses drawn from the
// IP-range table's ranges (and some from its gaps, which map to Unknown).
type Generator struct {
	rnd    *rand.Rand
	ranges []ipRange
	n      uint64
	// BadEvery makes every BadEvery-th line bad (alternately a missing field
	// and an address that is not an IP); 0: none.
	BadEvery int
}

type ipRange struct {
	lo, hi   uint32
	province string
}

var uris = []string{"/video/intro.mp4", "/img/logo.png", "/js/app.js", "/css/site.css", "/dl/setup.exe", "/api/v1/items?page=2", "/index.html"}

// NewGenerator returns a generator seeded with seed over the embedded table.
func NewGenerator(seed uint64) *Generator {
	rs, err := parseRanges(ipTable)
	if err != nil {
		panic("cdn: the embedded IP table: " + err.Error()) // a build defect, tested
	}
	return &Generator{rnd: rand.New(rand.NewPCG(seed, 17)), ranges: rs}
}

// Next returns the next log line.
func (g *Generator) Next() string {
	g.n++
	if g.BadEvery > 0 && g.n%uint64(g.BadEvery) == 0 {
		if (g.n/uint64(g.BadEvery))%2 == 1 {
			return fmt.Sprintf("bad-%d,10.1.2.3,120", g.n) // two fields missing
		}
		return fmt.Sprintf("bad-%d,999.1.2.x,120,4096,/x", g.n) // not an IP
	}
	var ip uint32
	if g.rnd.IntN(20) == 0 {
		ip = g.rnd.Uint32() // anywhere: often in a gap (Unknown)
	} else {
		r := g.ranges[g.rnd.IntN(len(g.ranges))]
		ip = r.lo + uint32(g.rnd.Uint64N(uint64(r.hi-r.lo)+1))
	}
	addr := netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)})
	rec := Record{
		UUID:         fmt.Sprintf("%016x%016x", g.rnd.Uint64(), g.n),
		ClientIP:     addr.String(),
		RequestTime:  1 + g.rnd.Int64N(3000),
		ResponseSize: 200 + g.rnd.Int64N(8<<20),
		URI:          uris[g.rnd.IntN(len(uris))],
	}
	return rec.CSV()
}

// Publish publishes n lines from g to subject (the generator side of the
// example: the CDN edge nodes shipping their logs), waiting for every
// PubAck. It returns how many were acknowledged.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, g *Generator, n int) (int, error) {
	done, err := appkit.Publish(ctx, js, subject, n, func() []byte { return []byte(g.Next()) })
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("cdn generator: %w", err)
	}
	return done, err
}

//go:embed ip_ranges.csv
var ipTable []byte

//go:embed ip_to_province.py
var udfSource string

// WriteIPTable writes the embedded IP-range table into dir and returns its
// path (the UDF reads the file named by the job parameter cdn.ip_table).
func WriteIPTable(dir string) (string, error) {
	p := dir + string(os.PathSeparator) + "ip_ranges.csv"
	return p, os.WriteFile(p, ipTable, 0o644)
}

// parseRanges reads an IP-range table in Go (for the generator and for the
// tests' independent totals; the UDF has its own reader in Python).
func parseRanges(data []byte) ([]ipRange, error) {
	var rs []ipRange
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "start_ip") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: %d fields", n, len(f))
		}
		lo, err1 := netip.ParseAddr(f[0])
		hi, err2 := netip.ParseAddr(f[1])
		if err1 != nil || err2 != nil || !lo.Is4() || !hi.Is4() {
			return nil, fmt.Errorf("line %d: bad range %s-%s", n, f[0], f[1])
		}
		rs = append(rs, ipRange{u32(lo), u32(hi), f[2]})
	}
	return rs, sc.Err()
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
