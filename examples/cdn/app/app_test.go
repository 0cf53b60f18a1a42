package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
	"github.com/pyudf/pyudf/examples/appkit/pgtest"
)

func udf(t *testing.T, mode engine.Mode) *engine.Function {
	t.Helper()
	eng, fn, err := LoadUDF(context.Background(), engine.Config{Mode: mode}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return fn
}

func sqliteSink(t *testing.T) *SQLSink {
	t.Helper()
	s, err := OpenSink(context.Background(), filepath.Join(t.TempDir(), "cdn.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// publish publishes lines and returns the stream's last sequence.
func publish(t *testing.T, js jetstream.JetStream, lines []string) uint64 {
	t.Helper()
	ctx := context.Background()
	var last uint64
	for _, l := range lines {
		ack, err := js.Publish(ctx, DefaultSubject, []byte(l))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	return last
}

func generate(n, badEvery int, seed uint64) []string {
	g := NewGenerator(seed)
	g.BadEvery = badEvery
	lines := make([]string, n)
	for i := range lines {
		lines[i] = g.Next()
	}
	return lines
}

// expected computes the table from the log lines on its own: its own split
// of the CSV, its own range search in Go (the app's path goes through the
// Python UDF's bisect).
func expected(t *testing.T, lines []string) (map[string]Totals, map[string]int64) {
	t.Helper()
	rs, err := parseRanges(ipTable)
	if err != nil {
		t.Fatal(err)
	}
	stats, bad := map[string]Totals{}, map[string]int64{}
	for _, l := range lines {
		f := strings.Split(l, ",")
		if len(f) < 5 || slices.Contains(f, "") {
			bad[ReasonMissingField]++
			continue
		}
		addr, err := netip.ParseAddr(f[1])
		if err != nil {
			bad[ReasonNotAnIP]++
			continue
		}
		rt, _ := strconv.ParseInt(f[2], 10, 64)
		sz, _ := strconv.ParseInt(f[3], 10, 64)
		p := "Unknown"
		if addr.Is4() {
			v := u32(addr)
			i := sort.Search(len(rs), func(i int) bool { return rs[i].lo > v }) - 1
			if i >= 0 && v <= rs[i].hi {
				p = rs[i].province
			}
		}
		tt := stats[p]
		tt.AccessCount++
		tt.TotalDownload += sz
		tt.TotalRequestTime += rt
		stats[p] = tt
	}
	return stats, bad
}

// checkTable compares the sink's tables with the totals computed from lines.
func checkTable(t *testing.T, s *SQLSink, lines []string) {
	t.Helper()
	ctx := context.Background()
	want, wantBad := expected(t, lines)
	got, err := s.Statistics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d provinces in the table, want %d", len(got), len(want))
	}
	for p, w := range want {
		if g := got[p]; g != w {
			t.Errorf("province %q: table %+v, want %+v", p, g, w)
		}
	}
	var speedErr error
	rows, err := s.DB().QueryContext(ctx, `SELECT province, download_speed FROM cdn_access_statistic`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		var speed float64
		if err := rows.Scan(&p, &speed); err != nil {
			t.Fatal(err)
		}
		if w := want[p].Speed(); speed < w*(1-1e-12) || speed > w*(1+1e-12) {
			speedErr = fmt.Errorf("province %q: download_speed %v, want %v", p, speed, w)
		}
	}
	rows.Close()
	if speedErr != nil {
		t.Error(speedErr)
	}
	gotBad, err := s.BadRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(gotBad) != fmt.Sprint(wantBad) {
		t.Errorf("cdn_bad_record %v, want %v", gotBad, wantBad)
	}
}

func newApp(t *testing.T, cfg Config) (*App, *apptest.SyncBuffer) {
	t.Helper()
	logs := &apptest.SyncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 200 * time.Millisecond
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, logs
}

// runToEnd runs a until StopAt is committed, within a minute.
func runToEnd(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Run did not reach StopAt: %+v", a.Stats())
	}
}

func modes() []engine.Mode { return []engine.Mode{engine.Thread, engine.Process} }

// TestCDN runs the pipeline over generated logs into SQLite, in thread and
// process mode, and checks the table against totals computed from the logs.
func TestCDN(t *testing.T) {
	for _, mode := range modes() {
		t.Run(mode.String(), func(t *testing.T) {
			js := apptest.Broker(t, DefaultStream, DefaultSubject)
			lines := generate(20000, 997, 1)
			last := publish(t, js, lines)
			sink := sqliteSink(t)
			a, _ := newApp(t, Config{JS: js, Function: udf(t, mode), Sink: sink, StopAt: last})
			runToEnd(t, a)
			checkTable(t, sink, lines)
			if st := a.Stats(); st.Records != int64(len(lines)) || st.Committed != last {
				t.Errorf("stats %+v, want %d records committed up to %d", st, len(lines), last)
			}
		})
	}
}

// TestCDNPostgres runs the pipeline against a real PostgreSQL server.
func TestCDNPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	sink, err := OpenSink(context.Background(), pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	lines := generate(20000, 991, 2)
	last := publish(t, js, lines)
	a, _ := newApp(t, Config{JS: js, Function: udf(t, engine.Thread), Sink: sink, StopAt: last})
	runToEnd(t, a)
	checkTable(t, sink, lines)
}
