package engine

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const sleepySource = `
import logging, threading, time
from pyudf import udf
_lock = threading.Lock()
_active = 0
_peak = 0

@udf(input_types=['DOUBLE'], result_type='BIGINT')
def sleepy(seconds):
    """Sleep with the GIL released; return how many calls were inside at once."""
    global _active, _peak
    with _lock:
        _active += 1
        _peak = max(_peak, _active)
    logging.getLogger("sleepy").warning("started")
    time.sleep(seconds)
    with _lock:
        _active -= 1
    return _peak

@udf(result_type='BIGINT')
def active():
    return _active

@udf(result_type='BIGINT')
def reset():
    global _peak
    _peak = 0
    return 0
`

// peakConcurrency runs n concurrent calls of a UDF that sleeps with the GIL
// released and returns how many were inside Python at the same time.
func peakConcurrency(t *testing.T, cfg Config, n int) int64 {
	m := loadModule(t, cfg, "sleepy.py", sleepySource)
	call(t, m, "reset")
	sleepy := function(t, m, "sleepy")
	var wg sync.WaitGroup
	peaks := make([]int64, n)
	for i := range n {
		wg.Go(func() {
			v, err := sleepy.Call(context.Background(), 0.05)
			if err != nil {
				t.Error(err)
				return
			}
			peaks[i] = v.(int64)
		})
	}
	wg.Wait()
	return slices.Max(peaks)
}

func TestConcurrencyOneSerializesCalls(t *testing.T) {
	if peak := peakConcurrency(t, Config{Logger: slog.New(slog.DiscardHandler)}, 4); peak != 1 {
		t.Errorf("with Concurrency 1, %d calls were inside Python at once", peak)
	}
}

func TestConcurrencyLetsGILReleasingCallsOverlap(t *testing.T) {
	if peak := peakConcurrency(t, Config{Concurrency: 4, Logger: slog.New(slog.DiscardHandler)}, 4); peak < 2 {
		t.Errorf("with Concurrency 4, calls that sleep without the GIL never overlapped (peak %d)", peak)
	}
}

// startSignal is a slog handler that closes started when a "started" record arrives.
type startSignal struct {
	recordHandler
	once    sync.Once
	started chan struct{}
}

func (h *startSignal) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "started" {
		h.once.Do(func() { close(h.started) })
	}
	return nil
}

func TestCloseWaitsForCallInProgress(t *testing.T) {
	for _, width := range []int{1, 3} {
		h := &startSignal{started: make(chan struct{})}
		m := loadModule(t, Config{Concurrency: width, Logger: slog.New(h)}, "sleepy.py", sleepySource)
		sleepy, active := function(t, m, "sleepy"), function(t, m, "active")
		done := make(chan error, 1)
		go func() {
			_, err := sleepy.Call(context.Background(), 0.2)
			done <- err
		}()
		<-h.started // the call is inside Python, sleeping
		if err := sleepy.Close(); err != nil {
			t.Fatal(err)
		}
		if v, err := active.Call(context.Background()); err != nil || v != int64(0) {
			t.Errorf("width %d: Close returned with %v calls still inside Python (%v)", width, v, err)
		}
		if err := <-done; err != nil {
			t.Errorf("width %d: the call in progress failed: %v", width, err)
		}
		if _, err := sleepy.Call(context.Background(), 0.0); !errors.Is(err, ErrClosed) {
			t.Errorf("width %d: call after Close: %v", width, err)
		}
	}
}

// BenchmarkGateUncontended is the cost the gate adds to every row call; the
// sync.Mutex it replaced is measured beside it.
func BenchmarkGateUncontended(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("gate", func(b *testing.B) {
		g := newGate(1)
		for b.Loop() {
			fr, err := g.enter(ctx, "f")
			if err != nil {
				b.Fatal(err)
			}
			g.leave(fr)
		}
	})
	b.Run("mutex", func(b *testing.B) {
		var mu sync.Mutex
		for b.Loop() {
			mu.Lock()
			mu.Unlock() //nolint:staticcheck // the empty critical section is the point
		}
	})
}

// Callers with and without deadlines contend for a gate of width 1 and of
// width 3: no more than width are ever inside, a caller whose deadline passes
// gives up, and none waits forever (a lost wake-up would hang the test).
func TestGateUnderContention(t *testing.T) {
	for _, width := range []int{1, 3} {
		g := newGate(width)
		var inside, peak, timedOut atomic.Int32
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 300 {
					ctx, cancel := context.Background(), func() {}
					if (w+i)%3 != 0 {
						ctx, cancel = context.WithTimeout(ctx, time.Duration(rand.IntN(300))*time.Microsecond)
					}
					fr, err := g.enter(ctx, "f")
					if err != nil {
						cancel()
						if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"f"`) {
							t.Errorf("enter: %v", err)
						}
						timedOut.Add(1)
						continue
					}
					n := inside.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					time.Sleep(time.Duration(rand.IntN(50)) * time.Microsecond)
					inside.Add(-1)
					g.leave(fr)
					cancel()
				}
			})
		}
		wg.Wait()
		if p := peak.Load(); p > int32(width) {
			t.Errorf("width %d: %d callers were inside at once", width, p)
		}
		t.Logf("width %d: %d of 2400 entries timed out", width, timedOut.Load())
		closed := false
		g.closeAll(func() { closed = true })
		if !closed {
			t.Errorf("width %d: closeAll did not run", width)
		}
	}
}

// TestGateIsFirstInFirstOut: a caller that loops calls cannot overtake a
// queued caller with a deadline (a mutex's fast path let it: callers with a
// 100 ms deadline behind 200 µs calls waited up to 62 ms and timed out one
// time in ten).
func TestGateIsFirstInFirstOut(t *testing.T) {
	g := newGate(1) // one spinning caller: a wider gate's would take both cores
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			fr, _ := g.enter(context.Background(), "busy")
			for end := time.Now().Add(200 * time.Microsecond); time.Now().Before(end); {
			}
			g.leave(fr)
		}
	})
	var worst time.Duration
	for range 20 {
		time.Sleep(2 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		fr, err := g.enter(ctx, "waiter")
		worst = max(worst, time.Since(start))
		cancel()
		if err != nil {
			t.Errorf("a caller with a 100 ms deadline behind 200 µs calls: %v", err)
			continue
		}
		g.leave(fr)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("worst wait %v", worst)
	if g.freeFrames() != 1 || len(g.queue) != 0 || g.starving.Load() || g.waiting.Load() != 0 {
		t.Errorf("after the test: %d free frames, %d queued (%d waiting), starving %v", g.freeFrames(), len(g.queue), g.waiting.Load(), g.starving.Load())
	}
}

// TestGateNeverLosesAFrame: contending callers, some with deadlines that end
// while they queue, switching the gate between barging and hand-off, leave
// every frame free at the end (a frame handed to a queued call that took a
// free one too was once dropped, and the gate deadlocked).
func TestGateNeverLosesAFrame(t *testing.T) {
	for _, width := range []int{1, 3} {
		g := newGate(width)
		var wg sync.WaitGroup
		deadline := time.Now().Add(2 * time.Second)
		for c := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(c), uint64(width)))
				for time.Now().Before(deadline) {
					ctx, cancel := context.Background(), context.CancelFunc(func() {})
					if r.IntN(3) == 0 {
						ctx, cancel = context.WithTimeout(ctx, time.Duration(r.IntN(2000))*time.Microsecond)
					}
					if fr, err := g.enter(ctx, "f"); err == nil {
						for end := time.Now().Add(time.Duration(r.IntN(300)) * time.Microsecond); time.Now().Before(end); {
						}
						g.leave(fr)
					}
					cancel()
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("width %d: callers still waiting 28 s after the last call began: a frame was lost", width)
		}
		if g.freeFrames() != width || len(g.queue) != 0 || g.waiting.Load() != 0 {
			t.Errorf("width %d: %d free frames and %d queued (%d waiting) at the end, want %d and 0", width, g.freeFrames(), len(g.queue), g.waiting.Load(), width)
		}
	}
}

// TestGateFastPathNeverStrandsAWaiter: calls that hold the frame for no time
// at all race the lock-free fast path (a leave that puts its frame in fast)
// against callers on their way into the queue. A waiter that queued unseen
// beside a free frame waits until the next leave, and forever when there is
// none: so each round is a few callers that all must get through.
func TestGateFastPathNeverStrandsAWaiter(t *testing.T) {
	for _, width := range []int{1, 2} {
		g := newGate(width)
		var inside atomic.Int32
		for round := range 20000 {
			var wg sync.WaitGroup
			for range width + 2 {
				wg.Go(func() {
					fr, err := g.enter(context.Background(), "f")
					if err != nil {
						t.Error(err)
						return
					}
					if n := inside.Add(1); n > int32(width) {
						t.Errorf("width %d: %d calls inside", width, n)
					}
					inside.Add(-1)
					g.leave(fr)
				})
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("width %d, round %d: a caller still waits after 10 s beside a free frame: %d waiting, %d queued",
					width, round, g.waiting.Load(), len(g.queue))
			}
		}
		if g.freeFrames() != width || len(g.queue) != 0 || g.waiting.Load() != 0 || g.starving.Load() {
			t.Errorf("width %d at the end: %d free frames, %d queued, %d waiting, starving %v", width, g.freeFrames(), len(g.queue), g.waiting.Load(), g.starving.Load())
		}
	}
}
