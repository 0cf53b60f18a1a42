package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/embedded"
	"github.com/pyudf/pyudf/connect/nats/runner"
	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
	"github.com/pyudf/pyudf/examples/appkit/pgtest"
)

// countLogged counts the log lines holding every one of subs.
func countLogged(logs string, subs ...string) int {
	n := 0
lines:
	for _, l := range strings.Split(logs, "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue lines
			}
		}
		n++
	}
	return n
}

// hostileRun publishes lines, runs the app to their end in thread mode, and
// checks the table against the independent totals. It returns the log.
func hostileRun(t *testing.T, lines []string) string {
	t.Helper()
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	last := publish(t, js, lines)
	sink := sqliteSink(t)
	a, logs := newApp(t, Config{JS: js, Function: udf(t, engine.Thread), Sink: sink, StopAt: last, FetchSize: 3})
	runToEnd(t, a)
	checkTable(t, sink, lines)
	if st := a.Stats(); st.Records != int64(len(lines)) || st.Committed != last {
		t.Errorf("stats %+v, want %d records committed up to %d", st, len(lines), last)
	}
	return logs.String()
}

// TestHostileCDNMissingField: lines with a missing or empty field are
// counted under "missing field", logged once each with the reason, and
// skipped; the records around them are counted.
func TestHostileCDNMissingField(t *testing.T) {
	lines := []string{
		"a1,1.8.0.1,100,1000,/a",
		"a2,1.8.0.2,100",         // seq 2: two fields missing
		"a3,,100,1000,/c",        // seq 3: client_ip empty
		"a4,1.8.0.4,100,1000,",   // seq 4: uri empty
		"a5,1.8.0.5,200,3000,/e", // good, after them
	}
	logs := hostileRun(t, lines)
	for seq, detail := range map[int]string{2: "3 of 5 fields", 3: "client_ip is empty", 4: "uri is empty"} {
		if n := countLogged(logs, "bad record skipped", fmt.Sprintf("seq=%d ", seq), `reason="missing field"`, detail); n != 1 {
			t.Errorf("seq %d logged %d times with %q, want once; log:\n%s", seq, n, detail, logs)
		}
	}
	if n := countLogged(logs, "bad record skipped"); n != 3 {
		t.Errorf("%d bad records logged, want 3", n)
	}
}

// TestHostileCDNNotAnIP: an address that is not an IP makes the UDF raise
// ValueError for that row only; the record is counted under "not an IP",
// logged once with Python's message, and skipped. An IPv6 address is valid
// and maps to Unknown (the table is IPv4 only).
func TestHostileCDNNotAnIP(t *testing.T) {
	lines := []string{
		"b1,1.8.0.1,100,1000,/a",
		"b2,999.1.2.3,100,1000,/b", // seq 2
		"b3,hello,100,1000,/c",     // seq 3
		"b4,1.2.3,100,1000,/d",     // seq 4
		"b5,::1,50,500,/e",         // IPv6: Unknown
		"b6,1.8.0.6,200,3000,/f",
		"b7,01.8.0.7,100,1000,/g", // seq 7: a leading zero (ambiguous: octal?) is refused
	}
	logs := hostileRun(t, lines)
	for seq, ip := range map[int]string{2: "999.1.2.3", 3: "hello", 4: "1.2.3", 7: "01.8.0.7"} {
		if n := countLogged(logs, "bad record skipped", fmt.Sprintf("seq=%d ", seq), `reason="not an IP"`,
			"ValueError", "does not appear to be an IPv4 or IPv6 address", ip); n != 1 {
			t.Errorf("seq %d (%s) logged %d times, want once; log:\n%s", seq, ip, n, logs)
		}
	}
	if n := countLogged(logs, "bad record skipped"); n != 4 {
		t.Errorf("%d bad records logged, want 4", n)
	}
}

// TestHostileCDNBadLogFlood: past maxLoggedPerReason bad records of one
// reason are counted, not logged (one line says so).
func TestHostileCDNBadLogFlood(t *testing.T) {
	var lines []string
	for i := range 30 {
		lines = append(lines, fmt.Sprintf("c%d,1.8.0.1", i))
	}
	logs := hostileRun(t, lines)
	if n := countLogged(logs, "bad record skipped"); n != maxLoggedPerReason {
		t.Errorf("%d bad records logged, want %d", n, maxLoggedPerReason)
	}
	if n := countLogged(logs, "not logged", `reason="missing field"`); n != 1 {
		t.Errorf("the 'not logged' line appears %d times, want once", n)
	}
}

// TestCDNRestart: an app stopped mid-stream (Ctrl-C: ctx cancelled) commits
// what it read; a second app on the same database goes on from the
// checkpoint; the table counts every record once.
func TestCDNRestart(t *testing.T) {
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	lines := generate(30000, 0, 3)
	last := publish(t, js, lines)
	sink := sqliteSink(t)
	fn := udf(t, engine.Thread)

	// Flushes every 20 ms: with the default second, a fast machine reads
	// all 30000 records before the first flush, and there is no mid-stream.
	a1, _ := newApp(t, Config{JS: js, Function: fn, Sink: sink, FlushInterval: 20 * time.Millisecond, FetchSize: 500})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a1.Run(ctx) }()
	apptest.WaitFor(t, "a first flush", func() bool { return a1.Stats().Committed > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st1 := a1.Stats()
	if st1.Committed >= last {
		t.Fatalf("the first app read everything (%+v); the test needs a stop mid-stream", st1)
	}
	if cp, _ := sink.Checkpoint(context.Background(), a1.key); cp != st1.Committed || int64(cp) != st1.Records {
		t.Fatalf("after Ctrl-C: checkpoint %d, stats %+v: what was read is not all committed", cp, st1)
	}

	a2, _ := newApp(t, Config{JS: js, Function: fn, Sink: sink, StopAt: last})
	runToEnd(t, a2)
	if st2 := a2.Stats(); st1.Records+st2.Records != int64(len(lines)) {
		t.Errorf("the two apps read %d + %d records, want %d in all", st1.Records, st2.Records, len(lines))
	}
	checkTable(t, sink, lines)
}

// lostReply commits a flush and then reports failure once, as when the
// connection drops before COMMIT's reply arrives.
type lostReply struct {
	*SQLSink
	lost atomic.Int32
}

func (s *lostReply) Commit(ctx context.Context, f *Flush) (bool, error) {
	applied, err := s.SQLSink.Commit(ctx, f)
	if err == nil && applied && s.lost.Add(1) == 1 {
		return false, errors.New("connection reset by peer (the commit's reply was lost)")
	}
	return applied, err
}

// TestHostileCDNCommitReplyLost: a commit that succeeded but was reported
// as failed is retried; the retry finds the checkpoint already moved and
// adds nothing twice.
func TestHostileCDNCommitReplyLost(t *testing.T) {
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	lines := generate(5000, 0, 4)
	last := publish(t, js, lines)
	sink := &lostReply{SQLSink: sqliteSink(t)}
	a, logs := newApp(t, Config{JS: js, Function: udf(t, engine.Thread), Sink: sink, StopAt: last})
	runToEnd(t, a)
	checkTable(t, sink.SQLSink, lines)
	if st := a.Stats(); st.FlushRetries != 1 {
		t.Errorf("%d failed commits, want 1", st.FlushRetries)
	}
	if n := countLogged(logs.String(), "not applied twice"); n != 1 {
		t.Errorf("'not applied twice' logged %d times, want once:\n%s", n, logs)
	}
}

// TestHostileCDNPostgresDown: PostgreSQL stopped mid-run. The app keeps
// what it read in memory, retries with back-off (the progress line says
// SINK DOWN), and resumes when the server is back; the table counts every
// record once.
func TestHostileCDNPostgresDown(t *testing.T) {
	pg := pgtest.Start(t)
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	sink, err := OpenSink(context.Background(), pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	progress := &apptest.SyncBuffer{}
	a, logs := newApp(t, Config{JS: js, Function: udf(t, engine.Thread), Sink: sink,
		Progress: progress, ProgressInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	lines := generate(10000, 499, 5)
	publish(t, js, lines)
	apptest.WaitFor(t, "a commit", func() bool { return a.Stats().Committed > 0 })
	pg.Stop()
	more := generate(10000, 499, 6)
	publish(t, js, more)
	lines = append(lines, more...)
	apptest.WaitFor(t, "failed commits", func() bool { return a.Stats().FlushRetries >= 3 })
	apptest.WaitFor(t, "the progress line to say so", func() bool { return strings.Contains(progress.String(), "SINK DOWN") })
	pg.Restart()
	more = generate(5000, 499, 7)
	last := publish(t, js, more)
	lines = append(lines, more...)
	a.StopAt(last)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatalf("not done: %+v", a.Stats())
	}
	checkTable(t, sink, lines)
	if n := countLogged(logs.String(), "the sink failed; retrying"); n < 3 {
		t.Errorf("%d retries logged, want at least 3", n)
	}
	if n := countLogged(logs.String(), "the sink is back"); n != 1 {
		t.Errorf("'the sink is back' logged %d times, want once", n)
	}
}

// TestHostileCDNFetchOutage: a broker that fails every fetch for a while is
// logged once for the outage and once when it is back, not per retry; the
// run then completes with exact totals.
func TestHostileCDNFetchOutage(t *testing.T) {
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	lines := generate(3000, 499, 10)
	last := publish(t, js, lines)
	outage := &apptest.FetchOutage{Fail: 4}
	sink := sqliteSink(t)
	a, logs := newApp(t, Config{JS: outage.Wrap(js), Function: udf(t, engine.Thread), Sink: sink, FetchSize: 100, StopAt: last})
	runToEnd(t, a)
	checkTable(t, sink, lines)
	if n := countLogged(logs.String(), "fetch failed"); n != 1 || outage.Failures() != 4 {
		t.Errorf("%d failed fetches logged %d times, want 4 logged once:\n%s", outage.Failures(), n, logs)
	}
	if n := countLogged(logs.String(), "fetch works again"); n != 1 {
		t.Errorf("the end of the outage logged %d times, want once:\n%s", n, logs)
	}
}

// TestHostileCDNBrokerRestart: the nats-server goes away mid-stream and
// comes back on the same port and store; the app's fetches fail meanwhile,
// then resume where the ordered consumer was; exact totals.
func TestHostileCDNBrokerRestart(t *testing.T) {
	srv, err := embedded.Start(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Close() }()
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.EnsureStream(context.Background(), js, DefaultStream, DefaultSubject); err != nil {
		t.Fatal(err)
	}
	sink := sqliteSink(t)
	a, logs := newApp(t, Config{JS: js, Function: udf(t, engine.Thread), Sink: sink, FetchSize: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	lines := generate(5000, 0, 8)
	publish(t, js, lines)
	apptest.WaitFor(t, "a commit", func() bool { return a.Stats().Committed > 0 })
	port, dir := srv.Port(), srv.Dir()
	srv.Shutdown()
	time.Sleep(500 * time.Millisecond)
	if srv, err = embedded.Start(embedded.Options{Dir: dir, Port: port}); err != nil {
		t.Fatal(err)
	}
	more := generate(5000, 0, 9)
	last := publish(t, js, more)
	lines = append(lines, more...)
	a.StopAt(last)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatalf("not done: %+v\n%s", a.Stats(), logs)
	}
	checkTable(t, sink, lines)
}
