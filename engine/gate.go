package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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
// waits on its context too: when ctx ends first it fails and never runs. The
// gate is also the close barrier: a Function's close waits for the calls inside
// the gate, and no call enters after it.
//
// Width 1 (the default, and every row call's path) is a sync.Mutex, whose
// uncontended Lock/Unlock cost ~15 ns against ~50 ns for a channel: a caller
// whose ctx can end and who finds it held waits for a wake token, which leave
// sends after unlocking whenever someone waits that way. Width > 1 is a
// channel of the free frames.
type gate struct {
	mu      sync.Mutex    // width 1
	frame   *frame        // width 1: the one frame
	waiters atomic.Int32  // width 1: callers waiting in enterSlow
	wake    chan struct{} // width 1: sent to (cap 1) when mu is released and waiters > 0
	slots   chan *frame   // width > 1: the free frames
}

func newGate(width int) *gate {
	if width <= 1 {
		return &gate{frame: newFrame(), wake: make(chan struct{}, 1)}
	}
	g := &gate{slots: make(chan *frame, width)}
	for range width {
		g.slots <- newFrame()
	}
	return g
}

// enter waits for a free slot and returns its frame, or fails with ctx's error
// (naming function) if ctx ends first; a call that fails here never runs.
func (g *gate) enter(ctx context.Context, function string) (*frame, error) {
	if g.slots == nil {
		if g.mu.TryLock() {
			return g.frame, nil
		}
		if ctx.Done() == nil {
			g.mu.Lock()
			return g.frame, nil
		}
		return g.enterSlow(ctx, function)
	}
	select {
	case fr := <-g.slots:
		return fr, nil
	default:
	}
	select {
	case fr := <-g.slots:
		return fr, nil
	case <-ctx.Done():
		return nil, queuedTooLong(ctx, function)
	}
}

// enterSlow waits at width 1 for mu or the end of ctx. No wake-up is lost:
// leave unlocks and then reads waiters, and this adds itself to waiters
// before trying the lock, so either leave sees it and sends a token, or the
// lock was already free when it tries.
func (g *gate) enterSlow(ctx context.Context, function string) (*frame, error) {
	g.waiters.Add(1)
	defer g.waiters.Add(-1)
	for !g.mu.TryLock() {
		select {
		case <-g.wake:
		case <-ctx.Done():
			return nil, queuedTooLong(ctx, function)
		}
	}
	return g.frame, nil
}

func queuedTooLong(ctx context.Context, function string) error {
	return fmt.Errorf("pyudf: function %q cancelled while waiting for the interpreter: %w", function, ctx.Err())
}

func (g *gate) leave(fr *frame) {
	fr.Trim() // the call is over: an outsized call's buffers shrink now
	if g.slots != nil {
		g.slots <- fr
		return
	}
	g.mu.Unlock()
	if g.waiters.Load() > 0 {
		select {
		case g.wake <- struct{}{}:
		default: // a token is waiting already
		}
	}
}

// closeAll waits until no call is inside, runs fn, and admits calls again.
func (g *gate) closeAll(fn func()) {
	var held []*frame
	for range max(cap(g.slots), 1) {
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
