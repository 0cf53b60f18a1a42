package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
)

func publish(t *testing.T, js jetstream.JetStream, msgs [][]byte) uint64 {
	t.Helper()
	var last uint64
	for _, m := range msgs {
		ack, err := js.Publish(context.Background(), DefaultSubject, m)
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	return last
}

func sqliteSink(t *testing.T, path string) *SQLSink {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "features.db")
	}
	s, err := OpenSink(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newApp(t *testing.T, mode engine.Mode, cfg Config) (*App, *apptest.SyncBuffer) {
	t.Helper()
	logs := &apptest.SyncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 200 * time.Millisecond
	}
	if cfg.FetchSize == 0 {
		cfg.FetchSize = 500
	}
	cfg.Pipeline = newPipeline(t, mode)
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, logs
}

// runToEnd runs a until it has processed StopAt, within two minutes.
func runToEnd(t *testing.T, a *App) {
	t.Helper()
	if err := <-runInBackground(a); err != nil {
		t.Fatal(err)
	}
}

// runInBackground runs a as runToEnd does, while the test acts on it, and
// sends Run's error, or that it did not reach StopAt in two minutes.
func runInBackground(a *App) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err := a.Run(ctx)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("Run did not reach StopAt: %+v", a.Stats())
		}
		done <- err
	}()
	return done
}

// checkTables compares the sink's tables with the model of msgs.
func checkTables(t *testing.T, s *SQLSink, msgs [][]byte) {
	t.Helper()
	ctx := context.Background()
	w := expected(t, msgs, DefaultBound, DefaultWatermarkEvery)
	g := newGot()
	hist, err := s.FeatureHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range hist {
		g.features[featureKey{f.UserID, f.WindowEnd}] = f.VisitedItems
		if f.WindowEnd-f.WindowStart != WindowSize.Milliseconds() {
			t.Errorf("window %+v is not 5 minutes", f)
		}
	}
	if g.samples, err = s.Samples(ctx); err != nil {
		t.Fatal(err)
	}
	if g.bad, err = s.Counts(ctx, "feature_bad_record"); err != nil {
		t.Fatal(err)
	}
	if g.late, err = s.Counts(ctx, "feature_late_event"); err != nil {
		t.Fatal(err)
	}
	compare(t, w, g)
	// user_feature holds each user's latest window.
	latest := map[string]int64{}
	for k := range w.features {
		latest[k.User] = max(latest[k.User], k.End)
	}
	rows, err := s.DB().QueryContext(ctx, `SELECT user_id, window_end, visited_items FROM user_feature`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for ; rows.Next(); n++ {
		var u, items string
		var end int64
		if err := rows.Scan(&u, &end, &items); err != nil {
			t.Fatal(err)
		}
		if end != latest[u] || items != w.features[featureKey{u, end}] {
			t.Errorf("user_feature %s: window end %d %q, want %d %q", u, end, items, latest[u], w.features[featureKey{u, latest[u]}])
		}
	}
	if n != len(latest) {
		t.Errorf("user_feature has %d users, want %d", n, len(latest))
	}
}

// TestFeaturesEndToEnd: generated events into an embedded JetStream, the
// app into SQLite, in thread and process mode; the tables against the
// independent model (features, labels, the joined feature, late and bad
// counts).
func TestFeaturesEndToEnd(t *testing.T) {
	msgs := messages(8000, 499, 89, 11)
	for _, mode := range modes() {
		t.Run(mode.String(), func(t *testing.T) {
			js := apptest.Broker(t, DefaultStream, DefaultSubject)
			last := publish(t, js, msgs)
			sink := sqliteSink(t, "")
			a, logs := newApp(t, mode, Config{JS: js, Sink: sink, StopAt: last})
			runToEnd(t, a)
			checkTables(t, sink, msgs)
			st := a.Stats()
			if st.Records != int64(len(msgs)) || st.Committed != last || st.Bad != 16 || st.Late == 0 {
				t.Errorf("stats %+v, want %d records committed up to %d, 16 bad", st, len(msgs), last)
			}
			for _, reason := range []string{ReasonNotJSON, ReasonUnknownType, ReasonMissingField} {
				if n := strings.Count(logs.String(), "reason=\""+reason+"\""); n != 1 {
					t.Errorf("bad records of reason %q logged %d times, want once:\n%s", reason, n, logs.String())
				}
			}
			if n := strings.Count(logs.String(), "late event sent to the side output"); n != 1 {
				t.Errorf("late events logged %d times, want once", n)
			}
		})
	}
}

// TestFeaturesRestart stops the app in the middle (context cancelled) and
// starts a new one (a fresh engine) on the same stream and database: the
// tables are exactly the uninterrupted run's.
func TestFeaturesRestart(t *testing.T) {
	msgs := messages(8000, 499, 89, 12)
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	last := publish(t, js, msgs)
	path := filepath.Join(t.TempDir(), "features.db")
	sink := sqliteSink(t, path)
	a, _ := newApp(t, engine.Thread, Config{JS: js, Sink: sink, FetchSize: 100})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	apptest.WaitFor(t, "a commit in the middle", func() bool { c := a.Stats().Committed; return c > 1000 && c < last })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	first := a.Stats()
	if first.Committed >= last || first.Committed < 1000 {
		t.Fatalf("the first run committed up to %d of %d", first.Committed, last)
	}
	seq, snap, err := sink.Checkpoint(context.Background(), a.key)
	if err != nil || seq != uint64(first.Records) || snap == nil {
		t.Fatalf("after Ctrl-C the checkpoint is %d (%v), but %d records were read: %v", seq, snap != nil, first.Records, err)
	}
	b, _ := newApp(t, engine.Thread, Config{JS: js, Sink: sink, StopAt: last})
	runToEnd(t, b)
	if b.Stats().Records != int64(last-first.Committed) {
		t.Errorf("the second run read %d records, want %d", b.Stats().Records, last-first.Committed)
	}
	checkTables(t, sink, msgs)
}

// flakySink fails every commit while down is set.
type flakySink struct {
	Sink
	down     atomic.Bool
	failures atomic.Int64
}

func (f *flakySink) Commit(ctx context.Context, fl *Flush) (bool, error) {
	if f.down.Load() {
		f.failures.Add(1)
		return false, errors.New("database is locked (the test's outage)")
	}
	return f.Sink.Commit(ctx, fl)
}

// lostReply commits and then reports failure, once.
type lostReply struct {
	Sink
	lost atomic.Bool
}

func (l *lostReply) Commit(ctx context.Context, f *Flush) (bool, error) {
	ok, err := l.Sink.Commit(ctx, f)
	if err == nil && f.From > 0 && !l.lost.Swap(true) {
		return false, errors.New("connection reset (the reply of a commit that happened)")
	}
	return ok, err
}

// TestHostileFeaturesSinkDown: the sink fails mid-run; the app retries
// with back-off (logged once), holds its work, resumes when the sink is
// back, and the totals are exact. A commit whose reply is lost is not
// applied twice.
func TestHostileFeaturesSinkDown(t *testing.T) {
	msgs := messages(6000, 499, 89, 13)
	js := apptest.Broker(t, DefaultStream, DefaultSubject)
	last := publish(t, js, msgs)
	sink := sqliteSink(t, "")
	flaky := &flakySink{Sink: &lostReply{Sink: sink}}
	a, logs := newApp(t, engine.Thread, Config{JS: js, Sink: flaky, StopAt: last, FetchSize: 100})
	done := runInBackground(a)
	apptest.WaitFor(t, "a first commit", func() bool { return a.Stats().Committed > 0 })
	flaky.down.Store(true)
	apptest.WaitFor(t, "failed commits", func() bool { return flaky.failures.Load() >= 3 })
	held := a.Stats().Committed
	time.Sleep(300 * time.Millisecond)
	if c := a.Stats().Committed; c != held {
		t.Errorf("committed moved from %d to %d while the sink was down", held, c)
	}
	flaky.down.Store(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkTables(t, sink, msgs)
	if n := strings.Count(logs.String(), "the sink failed; retrying"); n < 1 || n > 3 {
		t.Errorf("the outage logged %d times, want once (or once per outage)", n)
	}
	if !strings.Contains(logs.String(), "not applied twice") {
		t.Errorf("the lost reply was not detected:\n%s", logs.String())
	}
}
