package engine

import "sync"

// gate admits row calls into the interpreter, Config.Concurrency at a time.
//
// Python runs one call at a time under the GIL anyway. Letting every calling
// goroutine's OS thread wait for the GIL makes each GIL release wake another
// thread (a futex call and a context switch per row); with 8 goroutines that
// halves throughput. Queuing in Go instead parks goroutines cheaply and keeps
// the GIL uncontended. A gate wider than 1 suits UDFs that release the GIL
// (I/O, numpy, a model server call): their calls overlap.
//
// The gate is also the close barrier: a Function's close waits for the calls
// inside the gate and no call enters after it.
type gate struct {
	mu  sync.Mutex    // width 1
	sem chan struct{} // width > 1
}

func newGate(width int) *gate {
	if width <= 1 {
		return &gate{}
	}
	return &gate{sem: make(chan struct{}, width)}
}

func (g *gate) enter() {
	if g.sem == nil {
		g.mu.Lock()
	} else {
		g.sem <- struct{}{}
	}
}

func (g *gate) leave() {
	if g.sem == nil {
		g.mu.Unlock()
	} else {
		<-g.sem
	}
}

// closeAll waits until no call is inside, runs fn, and admits calls again.
func (g *gate) closeAll(fn func()) {
	width := max(cap(g.sem), 1)
	for range width {
		g.enter()
	}
	defer func() {
		for range width {
			g.leave()
		}
	}()
	fn()
}
