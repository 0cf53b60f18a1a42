package app

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
)

// TestFeaturesCtrlCDuringFetch: Ctrl-C lands while a fetch with messages
// is in flight and the flush interval has passed: the app commits them
// once, in the shutdown commit, with no failed attempt on the cancelled
// context (no retry counted, no "the sink failed" logged).
func TestFeaturesCtrlCDuringFetch(t *testing.T) {
	msgs := messages(600, 0, 0, 21)
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	publish(t, js, msgs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var fetches atomic.Int64
	hj := &apptest.HookJS{JetStream: js, After: func(b []jetstream.Msg) {
		if len(b) > 0 && fetches.Add(1) == 3 {
			time.Sleep(5 * time.Millisecond) // the flush interval passes
			cancel()
		}
	}}
	sink := sqliteSink(t, "")
	a, logs := newApp(t, engine.Thread, Config{JS: hj, Sink: sink, FetchSize: 100, FlushInterval: time.Millisecond})
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if st.Retries != 0 || strings.Contains(logs.String(), "the sink failed") {
		t.Errorf("Ctrl-C made %d failed commit attempts:\n%s", st.Retries, logs.String())
	}
	seq, _, err := sink.Checkpoint(context.Background(), a.key)
	if err != nil || seq != 300 || st.Records != 300 {
		t.Errorf("checkpoint %d (%v), %d records read: want 300 (three fetches of 100)", seq, err, st.Records)
	}
}

// TestHostileFeaturesFetchOutage: a broker that fails every fetch for a
// while is logged once for the outage (and once when it is back), not per
// retry; the run then completes with exact tables.
func TestHostileFeaturesFetchOutage(t *testing.T) {
	msgs := messages(1500, 499, 89, 22)
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	last := publish(t, js, msgs)
	outage := &apptest.FetchOutage{Fail: 4}
	sink := sqliteSink(t, "")
	a, logs := newApp(t, engine.Thread, Config{JS: outage.Wrap(js), Sink: sink, FetchSize: 100, StopAt: last})
	runToEnd(t, a)
	checkTables(t, sink, msgs)
	if n := strings.Count(logs.String(), "fetch failed"); n != 1 || outage.Failures() != 4 {
		t.Errorf("%d failed fetches logged %d times, want 4 logged once:\n%s", outage.Failures(), n, logs.String())
	}
	if !strings.Contains(logs.String(), "fetch works again") {
		t.Errorf("the end of the outage was not logged:\n%s", logs.String())
	}
}

// TestHostileFeaturesCtrlCSinkDown: Ctrl-C while the sink is down: the
// last commit retries for ShutdownTimeout, then Run returns an error that
// is ErrSinkUnavailable and says the uncommitted records are read again;
// a new run with the sink back reads them again: exact tables.
func TestHostileFeaturesCtrlCSinkDown(t *testing.T) {
	msgs := messages(3000, 499, 89, 23)
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	publish(t, js, msgs[:1500])
	sink := sqliteSink(t, "")
	flaky := &flakySink{Sink: sink}
	a, logs := newApp(t, engine.Thread, Config{JS: js, Sink: flaky, FetchSize: 100, ShutdownTimeout: 500 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	apptest.WaitFor(t, "the first half committed", func() bool { return a.Stats().Committed == 1500 })
	flaky.down.Store(true)
	last := publish(t, js, msgs[1500:])
	apptest.WaitFor(t, "failed commits", func() bool { return flaky.failures.Load() >= 2 })
	held := a.Stats().Committed
	cancel()
	start := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after Ctrl-C with the sink down")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run took %v after Ctrl-C, want about ShutdownTimeout", took)
	}
	if !errors.Is(err, ErrSinkUnavailable) || !strings.Contains(err.Error(), "read again at the next start") {
		t.Fatalf("Run = %v, want ErrSinkUnavailable saying the records are read again", err)
	}
	if seq, _, _ := sink.Checkpoint(context.Background(), a.key); seq != held {
		t.Fatalf("the checkpoint moved to %d while the sink was down (held %d)", seq, held)
	}
	if n := strings.Count(logs.String(), "the sink failed; retrying"); n != 1 {
		t.Errorf("the outage logged %d times, want once", n)
	}
	b, _ := newApp(t, engine.Thread, Config{JS: js, Sink: sink, StopAt: last})
	runToEnd(t, b)
	checkTables(t, sink, msgs)
}

// TestFeaturesIdleWatermark: with Config.IdleWatermark a trickle (six
// events, fewer than WatermarkEvery) gets its windows and samples once the
// stream is idle, without more input; the idle commit (no new record) whose
// reply was lost is recognised by its snapshot and not applied twice.
func TestFeaturesIdleWatermark(t *testing.T) {
	m := time.Minute
	msgs := [][]byte{
		ev(Exposure, "t0", "alice", "a", 0),
		ev(Exposure, "t1", "bob", "b", 10*time.Second),
		ev(Click, "t0", "alice", "a", m),
		ev(Click, "t9", "alice", "z", 2*m), // no exposure: a visit only
		ev(Exposure, "t2", "carol", "c", 12*m),
		ev(Exposure, "t3", "carol", "d", 12*m+time.Second),
	}
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	publish(t, js, msgs)
	sink := sqliteSink(t, "")
	a, logs := newApp(t, engine.Thread, Config{JS: js, Sink: &lostReply{Sink: sink}, IdleWatermark: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	// The watermark reaches 12:11:55.999: t0 and t1 are labelled, alice's
	// windows up to 12:07 have fired.
	apptest.WaitFor(t, "the idle watermark's samples committed", func() bool {
		s, _ := sink.Samples(context.Background())
		return len(s) == 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	samples, _ := sink.Samples(context.Background())
	if samples["t0"].Label != 1 || samples["t1"].Label != 0 {
		t.Errorf("samples %+v: want t0 positive, t1 negative", samples)
	}
	hist, _ := sink.FeatureHistory(context.Background())
	if len(hist) != 12 { // alice's windows ending 12:01:30 .. 12:07 (her clicks at 12:01 and 12:02); the watermark is 12:11:55.999
		t.Errorf("%d feature windows, want 12: %+v", len(hist), hist)
	}
	if !strings.Contains(logs.String(), "not applied twice") {
		t.Errorf("the idle commit's lost reply was not recognised:\n%s", logs.String())
	}
	if st := a.Stats(); st.Records != 6 || st.Late != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestFeaturesReExposureKeepsFirstSample: a trace_id exposed again after
// its first exposure's timer fired starts a second sample in the operator;
// feature_sample keeps the first.
func TestFeaturesReExposureKeepsFirstSample(t *testing.T) {
	m := time.Minute
	msgs := [][]byte{
		ev(Exposure, "t0", "alice", "a", 0),
		ev(Click, "t0", "alice", "a", m),
		ev(Exposure, "tx", "carol", "x", 11*m), // t0's timer fires
		ev(Exposure, "t0", "bob", "b", 12*m),   // t0 again, after its timer
	}
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	last := publish(t, js, msgs)
	sink := sqliteSink(t, "")
	a, _ := newApp(t, engine.Thread, Config{JS: js, Sink: sink, StopAt: last})
	a.cfg.Pipeline.every = 1
	runToEnd(t, a)
	samples, _ := sink.Samples(context.Background())
	want := Sample{TraceID: "t0", UserID: "alice", ItemID: "a", ExposureTime: noon.UnixMilli(), Label: 1,
		ClickTime: noon.Add(m).UnixMilli(), FeatureWindowEnd: noon.UnixMilli()}
	if samples["t0"] != want || len(samples) != 2 {
		t.Errorf("samples %+v, want t0 = %+v (the first) and tx", samples, want)
	}
	if st := a.Stats(); st.Samples != 3 {
		t.Errorf("stats %+v: want 3 samples emitted (t0 twice, tx)", st)
	}
}
