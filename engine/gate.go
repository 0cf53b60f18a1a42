package engine

import "sync"

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
// Each slot owns a frame, so an admitted call needs no pool. The gate is also
// the close barrier: a Function's close waits for the calls inside the gate,
// and no call enters after it.
type gate struct {
	mu    sync.Mutex  // width 1
	frame *frame      // width 1: the one frame
	slots chan *frame // width > 1: the free frames
}

func newGate(width int) *gate {
	if width <= 1 {
		return &gate{frame: newFrame()}
	}
	g := &gate{slots: make(chan *frame, width)}
	for range width {
		g.slots <- newFrame()
	}
	return g
}

func (g *gate) enter() *frame {
	if g.slots == nil {
		g.mu.Lock()
		return g.frame
	}
	return <-g.slots
}

func (g *gate) leave(fr *frame) {
	fr.Trim() // the call is over: an outsized call's buffers shrink now
	if g.slots == nil {
		g.mu.Unlock()
	} else {
		g.slots <- fr
	}
}

// closeAll waits until no call is inside, runs fn, and admits calls again.
func (g *gate) closeAll(fn func()) {
	var held []*frame
	for range max(cap(g.slots), 1) {
		held = append(held, g.enter())
	}
	defer func() {
		for _, fr := range held {
			g.leave(fr)
		}
	}()
	fn()
}
