package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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
//
// The uncontended call takes no lock: one of the frames, fastFrame, is
// taken by a compare-and-swap of its flag (fastFree) and given back by a
// store while no call waits, instead of two sync.Mutex lock/unlock pairs.
// (A flag, not an atomic.Pointer: pointer atomics are function calls with a
// write-barrier check, integer ones single instructions.) A caller that
// finds fastFrame taken counts itself in waiting before it looks at the flag
// again and queues; a leaving call that frees fastFrame looks at waiting
// after that, so one of the two always sees the other (Go's atomics are
// sequentially consistent): a queued call is never left beside a free frame.
type gate struct {
	width     int
	fastFree  atomic.Uint32 // 1: fastFrame is free, taken without mu
	fastFrame *frame
	mu        sync.Mutex
	free      []*frame  // the other free frames
	spares    []*waiter // waiters to reuse, so queuing allocates nothing in steady state

	fairQueue[waiter] // calls waiting for a frame
}

// fairQueue is the queue of callers waiting for what the gate and the
// sub-interpreter pool lend out (a frame, a sub-interpreter): a free one
// goes to whichever caller asks first (barging), until a queued caller has
// waited longer than starveAfter; then they are handed over in queue order
// (starving) until the queue is empty or moves fast again, as sync.Mutex
// does. The queue is changed under its owner's mutex.
type fairQueue[W any] struct {
	waiting  atomic.Int32 // callers in queue or about to queue: a leaving caller's look without the mutex
	starving atomic.Bool  // hand over in queue order; nobody barges (written under the mutex)
	queue    []*W         // oldest first
}

// dequeue removes w from the queue, reporting whether it was there; the
// owner's mutex is held. An empty queue ends fair mode.
func (q *fairQueue[W]) dequeue(w *W) bool {
	i := slices.Index(q.queue, w)
	if i >= 0 {
		q.queue = slices.Delete(q.queue, i, i+1)
		q.waiting.Add(-1)
	}
	if len(q.queue) == 0 {
		q.starving.Store(false)
	}
	return i >= 0
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
	g.fastFrame = newFrame()
	g.fastFree.Store(1)
	for range g.width - 1 {
		g.free = append(g.free, newFrame())
	}
	return g
}

// take returns a free frame (fastFrame first), or nil; g.mu is held.
func (g *gate) take() *frame {
	if g.fastFree.CompareAndSwap(1, 0) {
		return g.fastFrame
	}
	if len(g.free) == 0 {
		return nil
	}
	fr := g.free[len(g.free)-1]
	g.free = g.free[:len(g.free)-1]
	return fr
}

// hasFree reports whether a frame is free; g.mu is held.
func (g *gate) hasFree() bool { return g.fastFree.Load() == 1 || len(g.free) > 0 }

// freeFrames is how many frames are free (for tests); g.mu is held.
func (g *gate) freeFrames() int {
	if g.fastFree.Load() == 1 {
		return len(g.free) + 1
	}
	return len(g.free)
}

// enter waits for a free slot and returns its frame, or fails with ctx's error
// (naming function) if ctx ends first; a call that fails here never runs.
func (g *gate) enter(ctx context.Context, function string) (*frame, error) {
	if !g.starving.Load() {
		if g.fastFree.CompareAndSwap(1, 0) {
			return g.fastFrame, nil
		}
	}
	g.mu.Lock()
	g.waiting.Add(1) // before looking again: a leave after this look sees it
	if !g.starving.Load() {
		if fr := g.take(); fr != nil {
			g.waiting.Add(-1)
			g.mu.Unlock()
			return fr, nil
		}
	}
	if ctx.Err() != nil {
		g.waiting.Add(-1)
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
			if !g.starving.Load() {
				if fr := g.take(); fr != nil {
					g.dequeue(w)
					g.wakeNext()
					g.mu.Unlock()
					g.spare(w)
					return fr, nil
				}
			}
			if time.Since(w.since) > starveAfter {
				g.starving.Store(true)
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

// wakeNext wakes the oldest queued call if a frame is free for it to take;
// g.mu is held (so a waiter never holds more than one nil).
func (g *gate) wakeNext() {
	if !g.starving.Load() && g.hasFree() && len(g.queue) > 0 && len(g.queue[0].wake) == 0 {
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
	if fr == g.fastFrame && g.waiting.Load() == 0 {
		g.fastFree.Store(1)
		if g.waiting.Load() == 0 {
			return
		}
		// A call queued meanwhile, perhaps without seeing fr: serve the
		// queue with it unless another call took it.
		g.mu.Lock()
		if !g.fastFree.CompareAndSwap(1, 0) {
			g.mu.Unlock()
			return
		}
	} else {
		g.mu.Lock()
	}
	if len(g.queue) == 0 {
		g.putLocked(fr)
		g.mu.Unlock()
		return
	}
	w := g.queue[0]
	if g.starving.Load() {
		g.dequeue(w)
		if time.Since(w.since) < starveAfter {
			g.starving.Store(false) // as sync.Mutex: the queue moves fast enough again
		}
		g.mu.Unlock()
		w.wake <- fr
		return
	}
	g.putLocked(fr)
	g.wakeNext()
	g.mu.Unlock()
}

// putLocked makes fr free; g.mu is held.
func (g *gate) putLocked(fr *frame) {
	if fr == g.fastFrame {
		g.fastFree.Store(1)
	} else {
		g.free = append(g.free, fr)
	}
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
