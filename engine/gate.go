package engine

import (
	"context"
	"fmt"
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
// The gate is a channel of free frames, one per slot: an admitted call takes
// one and needs no pool, and a queued call waits on the channel and on its
// context at once, so its deadline holds while it waits. The gate is also the
// close barrier: a Function's close waits for the calls inside the gate, and
// no call enters after it.
type gate struct {
	slots chan *frame // the free frames
}

func newGate(width int) *gate {
	g := &gate{slots: make(chan *frame, max(width, 1))}
	for range cap(g.slots) {
		g.slots <- newFrame()
	}
	return g
}

// enter waits for a free slot and returns its frame, or fails with ctx's error
// (naming function) if ctx ends first; a call that fails here never runs.
func (g *gate) enter(ctx context.Context, function string) (*frame, error) {
	select {
	case fr := <-g.slots: // uncontended: no select on ctx
		return fr, nil
	default:
	}
	select {
	case fr := <-g.slots:
		return fr, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pyudf: function %q cancelled while waiting for the interpreter: %w", function, ctx.Err())
	}
}

func (g *gate) leave(fr *frame) { g.slots <- fr }

// closeAll waits until no call is inside, runs fn, and admits calls again.
func (g *gate) closeAll(fn func()) {
	held := make([]*frame, 0, cap(g.slots))
	for range cap(g.slots) {
		held = append(held, <-g.slots)
	}
	defer func() {
		for _, fr := range held {
			g.leave(fr)
		}
	}()
	fn()
}
