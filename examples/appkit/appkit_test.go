package appkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit/apptest"
)

var errPermanent = errors.New("permanent")

func retrier(logs io.Writer, quiet bool) *Retrier {
	return &Retrier{Name: "sink", Log: slog.New(slog.NewTextHandler(logs, nil)), Min: time.Millisecond, Max: 4 * time.Millisecond,
		Permanent: func(err error) bool { return errors.Is(err, errPermanent) }, Quiet: quiet}
}

// TestDo: three failures then a success: the value, three failures
// counted, one "failed" line per attempt (one only when Quiet), one "back"
// line, and Down false again.
func TestDo(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		t.Run(fmt.Sprint("quiet=", quiet), func(t *testing.T) {
			logs := &apptest.SyncBuffer{}
			r := retrier(logs, quiet)
			calls := 0
			v, err := Do(context.Background(), r, "committing", func(ctx context.Context) (int, error) {
				if _, ok := ctx.Deadline(); !ok {
					t.Error("the attempt has no deadline")
				}
				if calls++; calls <= 3 {
					if calls > 1 && !r.Down() {
						t.Error("Down is false during the outage")
					}
					return 0, fmt.Errorf("connection refused %d", calls)
				}
				return 42, nil
			})
			if err != nil || v != 42 {
				t.Fatalf("Do = %d, %v; want 42, nil", v, err)
			}
			if r.Failures() != 3 || r.Down() {
				t.Errorf("Failures %d, Down %v; want 3, false", r.Failures(), r.Down())
			}
			want := 3
			if quiet {
				want = 1
			}
			if n := strings.Count(logs.String(), "the sink failed; retrying"); n != want {
				t.Errorf("%d failure lines, want %d:\n%s", n, want, logs)
			}
			if n := strings.Count(logs.String(), "the sink is back"); n != 1 {
				t.Errorf("%d 'back' lines, want 1:\n%s", n, logs)
			}
		})
	}
}

// TestDoPermanent: an error Permanent accepts is returned at once, as it is.
func TestDoPermanent(t *testing.T) {
	r := retrier(io.Discard, false)
	calls := 0
	_, err := Do(context.Background(), r, "committing", func(context.Context) (bool, error) {
		calls++
		return false, fmt.Errorf("moved: %w", errPermanent)
	})
	if !errors.Is(err, errPermanent) || calls != 1 || r.Failures() != 0 {
		t.Fatalf("err %v after %d calls, %d failures; want errPermanent after 1, 0", err, calls, r.Failures())
	}
}

// TestDoCancelled: ctx ends during the outage: the error names the
// operation and wraps both the cause and the last error.
func TestDoCancelled(t *testing.T) {
	r := retrier(io.Discard, false)
	ctx, cancel := context.WithCancel(context.Background())
	down := errors.New("connection refused")
	_, err := Do(ctx, r, "reading the checkpoint", func(context.Context) (int, error) {
		if r.Failures() == 2 {
			cancel()
		}
		return 0, down
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, down) || !strings.HasPrefix(err.Error(), "reading the checkpoint: ") {
		t.Fatalf("err %v; want reading the checkpoint: context canceled (last error: connection refused)", err)
	}
	if !r.Down() {
		t.Error("Down is false after a failed Do")
	}
}

// TestOutage: two outages of three failures each: each logged once, and
// its end once; successes while up log nothing.
func TestOutage(t *testing.T) {
	var logs strings.Builder
	o := Outage{Log: slog.New(slog.NewTextHandler(&logs, nil))}
	o.Works("back")
	for outage := range 2 {
		for attempt := range 3 {
			o.Failed("fetch failed", "outage", outage, "attempt", attempt)
		}
		o.Works("back")
		o.Works("back")
	}
	got := logs.String()
	if strings.Count(got, "fetch failed") != 2 || strings.Count(got, "attempt=0") != 2 || strings.Count(got, "back") != 2 {
		t.Errorf("logged:\n%s\nwant the first failure of each outage and its end", got)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	var got []time.Duration
	for range 7 {
		got = append(got, b.Next())
	}
	want := "[50ms 100ms 200ms 400ms 800ms 1.6s 2s]"
	if fmt.Sprint(got) != want {
		t.Errorf("delays %v, want %s", got, want)
	}
	b.Reset()
	if d := b.Next(); d != 50*time.Millisecond {
		t.Errorf("after Reset %v, want 50ms", d)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep on a live context returned false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) || time.Since(start) > time.Second {
		t.Error("Sleep on a cancelled context did not return false at once")
	}
}

func TestSeen(t *testing.T) {
	var s Seen
	got := []int{s.Add("a"), s.Add("b"), s.Add("a"), s.Add("a")}
	if fmt.Sprint(got) != "[0 0 1 2]" {
		t.Errorf("Add returned %v, want [0 0 1 2]", got)
	}
}

// TestProgress: lines while it runs, the last one on stop over the whole
// run, nothing after stop; a nil writer prints nothing.
func TestProgress(t *testing.T) {
	w := &apptest.SyncBuffer{}
	var n atomic.Int64
	stop := Progress(w, 10*time.Millisecond, n.Load, func(w io.Writer, n int64, rate float64) {
		fmt.Fprintf(w, "test: %d records, %.0f rows/s\n", n, rate)
	})
	n.Store(5)
	apptest.WaitFor(t, "two lines", func() bool { return strings.Count(w.String(), "\n") >= 2 })
	n.Store(7)
	stop()
	stop() // twice is harmless
	out := w.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], "test: 7 records, ") {
		t.Errorf("last line %q, want 7 records", lines[len(lines)-1])
	}
	time.Sleep(30 * time.Millisecond)
	if w.String() != out {
		t.Error("a line after stop")
	}
	Progress(nil, time.Millisecond, n.Load, func(io.Writer, int64, float64) { t.Error("a line to a nil writer") })()
}

func TestParseMode(t *testing.T) {
	for name, want := range map[string]engine.Mode{"thread": engine.Thread, "process": engine.Process} {
		if m, err := ParseMode(name); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v", name, m, err)
		}
	}
	if _, err := ParseMode("threads"); err == nil || err.Error() != `-mode "threads": want thread or process` {
		t.Errorf("ParseMode(threads): %v", err)
	}
}

// TestConnectFeed: an embedded broker; a Feed publishes 5000 messages in a
// goroutine and gives StopAt the last sequence; a preloaded Feed has done
// so when Start returns; Publish stops on a cancelled context.
func TestConnectFeed(t *testing.T) {
	ctx := context.Background()
	b, err := Connect("", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Embedded || !strings.HasPrefix(b.URL, "nats://127.0.0.1:") {
		t.Fatalf("Embedded %v, URL %q", b.Embedded, b.URL)
	}
	if err := b.EnsureStream(ctx, "T", "t.in"); err != nil {
		t.Fatal(err)
	}
	var stopAt atomic.Uint64
	i := 0
	next := func() []byte { i++; return fmt.Appendf(nil, "m%d", i) }
	publish := func(n int) func(context.Context) error {
		return func(ctx context.Context) error {
			acked, err := Publish(ctx, b.JS, "t.in", n, next)
			if err == nil && acked != n {
				err = fmt.Errorf("%d acked, want %d", acked, n)
			}
			return err
		}
	}
	wait := Feed{JS: b.JS, Stream: "T", Publish: publish(5000), StopAt: stopAt.Store}.Start(ctx)
	if err := wait(); err != nil || stopAt.Load() != 5000 {
		t.Fatalf("feed: %v, StopAt %d; want nil, 5000", err, stopAt.Load())
	}
	wait = Feed{JS: b.JS, Stream: "T", Publish: publish(10), StopAt: stopAt.Store, Preload: true}.Start(ctx)
	if stopAt.Load() != 5010 {
		t.Errorf("preloaded feed: StopAt %d when Start returned, want 5010", stopAt.Load())
	}
	if err := wait(); err != nil {
		t.Error(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if acked, err := Publish(cctx, b.JS, "t.in", 100, next); acked != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Publish on a cancelled context: %d, %v", acked, err)
	}
	wait = Feed{JS: b.JS, Stream: "T", Publish: publish(100), StopAt: func(uint64) { t.Error("StopAt after a cancelled feed") }}.Start(cctx)
	if err := wait(); err != nil {
		t.Errorf("a feed ended by Ctrl-C: %v, want nil", err)
	}
	if last, err := LastSeq(ctx, b.JS, "T"); err != nil || last != 5010 {
		t.Errorf("LastSeq %d, %v; want 5010", last, err)
	}
}

// TestFeedRun: the feed's context is cancelled once the app returns (here
// an error at once), so Run does not wait for every record; a preloaded
// feed runs to its end first, and one that fails is returned without
// calling the app.
func TestFeedRun(t *testing.T) {
	boom := errors.New("the app failed")
	start := time.Now()
	blocked := func(ctx context.Context) error {
		select {
		case <-ctx.Done(): // the feed stops with its context
			return ctx.Err()
		case <-time.After(time.Minute):
			return errors.New("the feed was never cancelled")
		}
	}
	appErr, feedErr := Feed{Publish: blocked}.Run(context.Background(), func(context.Context) error { return boom })
	if appErr != boom || feedErr != nil || time.Since(start) > 10*time.Second {
		t.Errorf("Run = %v, %v after %v; want the app's error and a feed stopped at once (nil)", appErr, feedErr, time.Since(start))
	}
	var order []string
	appErr, feedErr = Feed{Preload: true, Publish: func(context.Context) error { order = append(order, "feed"); return nil }}.Run(context.Background(),
		func(context.Context) error { order = append(order, "app"); return nil })
	if appErr != nil || feedErr != nil || strings.Join(order, ",") != "feed,app" {
		t.Errorf("preloaded Run = %v, %v, order %v; want nil, nil, feed,app", appErr, feedErr, order)
	}
	fail := errors.New("publish failed")
	appErr, feedErr = Feed{Preload: true, Publish: func(context.Context) error { return fail }}.Run(context.Background(),
		func(context.Context) error { t.Error("the app ran after a failed preload"); return nil })
	if appErr != nil || feedErr != fail {
		t.Errorf("failed preload: Run = %v, %v; want nil, %v", appErr, feedErr, fail)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	appErr, feedErr = Feed{Preload: true, Publish: blocked}.Run(cctx,
		func(context.Context) error { t.Error("the app ran after an interrupted preload"); return nil })
	if appErr != nil || !errors.Is(feedErr, context.Canceled) {
		t.Errorf("interrupted preload: Run = %v, %v; want nil, context.Canceled", appErr, feedErr)
	}
}

// TestReadFromCheckpoint: an ordered consumer from a checkpoint gets the
// messages after it, in order, in fetches of at most n; an empty fetch is
// no error; a stream made again gets another key.
func TestReadFromCheckpoint(t *testing.T) {
	ctx := context.Background()
	b, err := Connect("", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.EnsureStream(ctx, "R", "r.in"); err != nil {
		t.Fatal(err)
	}
	i := 0
	if _, err := Publish(ctx, b.JS, "r.in", 5, func() []byte { i++; return fmt.Appendf(nil, "m%d", i) }); err != nil {
		t.Fatal(err)
	}
	key, err := StreamKey(ctx, b.JS, "R")
	if err != nil || !strings.HasPrefix(key, "R@") {
		t.Fatalf("StreamKey %q, %v", key, err)
	}
	cons, err := OrderedFrom(ctx, b.JS, "R", "r.in", 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		msgs, err := Fetch(ctx, cons, 2, time.Second)
		if err != nil || len(msgs) > 2 {
			t.Fatalf("Fetch: %d messages, %v; want at most 2, nil", len(msgs), err)
		}
		for _, m := range msgs {
			got = append(got, string(m.Data()))
		}
	}
	if strings.Join(got, " ") != "m3 m4 m5" {
		t.Fatalf("after checkpoint 2: %v, want m3 m4 m5", got)
	}
	if msgs, err := Fetch(ctx, cons, 2, 50*time.Millisecond); len(msgs) != 0 || err != nil {
		t.Fatalf("a fetch past the end: %d messages, %v; want none, nil", len(msgs), err)
	}
	if err := b.JS.DeleteStream(ctx, "R"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond) // creation times differ
	if err := b.EnsureStream(ctx, "R", "r.in"); err != nil {
		t.Fatal(err)
	}
	if again, err := StreamKey(ctx, b.JS, "R"); err != nil || again == key {
		t.Fatalf("the stream made again: key %q, %v; want other than %q", again, err, key)
	}
	if _, err := StreamKey(ctx, b.JS, "none"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("StreamKey of a missing stream: %v", err)
	}
}
