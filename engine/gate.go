package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// gate admits row calls into the interpreter, Config.Concurrency at a time,
// and lends each admitted call a frame.
//
// Python runs one call at a time under the GIL anyway. Letting every calling
// goroutine's OS thread wait for the GIL makes each GIL release wake another
// thread (a futex call and a context switch per row); with 8 goroutines that
// halves throughput. Queuing in Go instead parks goroutines cheaply and keeps
// the GIL uncontended. A gate wider than 1 suits UDFs that release the GIL
// (I/O, numpy, a model server call): their calls overlap.
//
// Each slot owns a frame, so an admitted call needs no pool. A queued call
// waits on its context too: when ctx ends first it leaves the queue, fails
// and never runs. The gate is also the close barrier: a Function's close
// waits for the calls inside the gate, and no call enters after it.
//
// Fairness is sync.Mutex's: a caller finding a free frame takes it even when
// others queue (the running goroutine goes on without a context switch, which
// keeps 8 contending goroutines at full speed), and leave wakes the oldest
// queued call to try again. A queued call that has waited longer than
// starveAfter turns the gate fair: frames then go from a leaving call straight
// to the oldest queued one, first in, first out, until the queue is empty or
// a call handed a frame had waited less than starveAfter. So
// a caller that loops cannot keep a queued caller with a deadline out (with
// barging alone, callers with a 100 ms deadline behind 200 µs calls waited up
// to 62 ms and timed out one time in ten).
type gate struct {
	width    int
	mu       sync.Mutex
	free     []*frame  // frames no call holds
	queue    []*waiter // calls waiting for a frame, oldest first
	starving bool      // hand frames to the queue in order; nobody barges
	spares   []*waiter // waiters to reuse, so queuing allocates nothing in steady state
}

// starveAfter is how long a queued call waits before the gate turns fair.
const starveAfter = time.Millisecond

// waiter is one queued call. It is sent a frame (admitted, in fair mode) or
// nil (a frame is free: try for it); it holds at most one nil (sent under
// gate.mu) and one frame, so sends never block.
type waiter struct {
	wake  chan *frame
	since time.Time
}

func newGate(width int) *gate {
	g := &gate{width: max(width, 1)}
	for range g.width {
		g.free = append(g.free, newFrame())
	}
	return g
}

// take pops a free frame; g.mu is held.
func (g *gate) take() *frame {
	fr := g.free[len(g.free)-1]
	g.free = g.free[:len(g.free)-1]
	return fr
}

// enter waits for a free slot and returns its frame, or fails with ctx's error
// (naming function) if ctx ends first; a call that fails here never runs.
func (g *gate) enter(ctx context.Context, function string) (*frame, error) {
	g.mu.Lock()
	if len(g.free) > 0 && !g.starving {
		fr := g.take()
		g.mu.Unlock()
		return fr, nil
	}
	if ctx.Err() != nil {
		g.mu.Unlock()
		return nil, queuedTooLong(ctx, function)
	}
	var w *waiter
	if n := len(g.spares); n > 0 {
		w, g.spares = g.spares[n-1], g.spares[:n-1]
	} else {
		w = &waiter{wake: make(chan *frame, 2)}
	}
	w.since = time.Now()
	g.queue = append(g.queue, w)
	g.mu.Unlock()
	for {
		select {
		case fr := <-w.wake:
			if fr != nil { // handed over in fair mode; leave dequeued w
				g.spare(w)
				return fr, nil
			}
			g.mu.Lock()
			if !slices.Contains(g.queue, w) { // leave dequeued w: its frame is in w.wake
				g.mu.Unlock()
				continue
			}
			if len(g.free) > 0 && !g.starving {
				g.dequeue(w)
				fr := g.take()
				g.wakeNext()
				g.mu.Unlock()
				g.spare(w)
				return fr, nil
			}
			if time.Since(w.since) > starveAfter {
				g.starving = true
			}
			g.mu.Unlock()
		case <-ctx.Done():
			g.mu.Lock()
			if g.dequeue(w) { // no frame is on its way
				g.wakeNext() // in case w was woken for a free frame
				g.mu.Unlock()
				g.spare(w)
				return nil, queuedTooLong(ctx, function)
			}
			g.mu.Unlock()
			for fr := range w.wake { // a frame was handed over as ctx ended: pass it on unused
				if fr != nil {
					g.leave(fr)
					break
				}
			}
			g.spare(w)
			return nil, queuedTooLong(ctx, function)
		}
	}
}

// dequeue removes w from the queue, reporting whether it was there; g.mu is
// held. An empty queue ends fair mode.
func (g *gate) dequeue(w *waiter) bool {
	i := slices.Index(g.queue, w)
	if i >= 0 {
		g.queue = slices.Delete(g.queue, i, i+1)
	}
	if len(g.queue) == 0 {
		g.starving = false
	}
	return i >= 0
}

// wakeNext wakes the oldest queued call if a frame is free for it to take;
// g.mu is held (so a waiter never holds more than one nil).
func (g *gate) wakeNext() {
	if !g.starving && len(g.free) > 0 && len(g.queue) > 0 && len(g.queue[0].wake) == 0 {
		g.queue[0].wake <- nil
	}
}

// spare keeps w for reuse, without a stale wake-up. w is out of the queue,
// so nothing more is sent to it, and it holds no frame (enter receives a
// handed frame before taking another).
func (g *gate) spare(w *waiter) {
	for len(w.wake) > 0 {
		<-w.wake
	}
	g.mu.Lock()
	g.spares = append(g.spares, w)
	g.mu.Unlock()
}

func queuedTooLong(ctx context.Context, function string) error {
	return fmt.Errorf("pyudf: function %q cancelled while waiting for the interpreter: %w", function, ctx.Err())
}

// leave gives fr back: in fair mode to the oldest queued call, else to the
// free list, waking the oldest queued call to try for it.
func (g *gate) leave(fr *frame) {
	fr.Trim() // the call is over: an outsized call's buffers shrink now
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.free = append(g.free, fr)
		g.mu.Unlock()
		return
	}
	w := g.queue[0]
	if g.starving {
		g.dequeue(w)
		if time.Since(w.since) < starveAfter {
			g.starving = false // as sync.Mutex: the queue moves fast enough again
		}
		g.mu.Unlock()
		w.wake <- fr
		return
	}
	g.free = append(g.free, fr)
	g.wakeNext()
	g.mu.Unlock()
}

// closeAll waits until no call is inside, runs fn, and admits calls again.
func (g *gate) closeAll(fn func()) {
	var held []*frame
	for range g.width {
		fr, _ := g.enter(context.Background(), "")
		held = append(held, fr)
	}
	defer func() {
		for _, fr := range held {
			g.leave(fr)
		}
	}()
	fn()
}
