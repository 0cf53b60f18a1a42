package engine

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Affinity says which OS threads run a function instance's Python code in
// thread mode. Python code sees its OS thread: threading.local, the thread
// ident, and objects bound to the thread that made them (an sqlite3
// connection, some clients of C libraries) depend on it. Under PyFlink an
// operator's function instance runs on its task thread, so code written for
// PyFlink may take one thread for granted.
type Affinity int

const (
	// AffinityAuto gives a thread of its own to every function instance
	// whose class defines open() or close() (a ScalarFunction,
	// TableFunction or AggregateFunction subclass that sets something up:
	// open, every call and close run on that thread, as under PyFlink), and
	// runs every other function (@udf def, lambdas, callables, classes with
	// eval alone) on the calling goroutine's thread, the fastest way. An
	// eval that makes a thread-bound object on its first call and keeps it
	// needs AffinityInstance.
	AffinityAuto Affinity = iota
	// AffinityInstance gives every function instance a thread of its own.
	AffinityInstance
	// AffinityNone runs every call on the calling goroutine's thread, which
	// changes as goroutines migrate: state bound to a thread that open()
	// made breaks in later calls.
	AffinityNone
)

// String is the constant's name without its prefix ("auto").
func (a Affinity) String() string {
	switch a {
	case AffinityAuto:
		return "auto"
	case AffinityInstance:
		return "instance"
	case AffinityNone:
		return "none"
	}
	return "Affinity(" + strconv.Itoa(int(a)) + ")"
}

// owner is an OS thread of one function instance's own: a goroutine locked
// to it runs the tasks handed to it, one at a time, until stop. It ends by
// returning while still locked, so Go ends its thread too, and the Python
// thread state of that thread goes with it.
//
// A hand-off through a channel to a locked goroutine costs two thread
// wake-ups, 20–30 µs here, a hundred row calls. So both sides spin for a
// while first: the thread waits spinning for the next task after each one,
// and the caller for the task's end, each for at most spinFor before it
// parks on a channel. Back-to-back calls thus cross in well under a
// microsecond; an idle instance costs nothing after spinFor.
type owner struct {
	slot             chan struct{} // one task at a time: holding it is the right to post
	task             func()        // the posted task; written before posted, read after
	posted, finished atomic.Uint64
	idle, waiting    atomic.Bool   // the thread parks on wake; the caller on done
	wake, done       chan struct{} // buffered 1: a token says "look again"
	quit             bool          // read by the thread after the stop task
	stopped          bool          // stop ran: set and read holding the slot
	ended            chan struct{} // closed when the thread's goroutine returns
	panicked         any           // what the last task panicked with, re-raised by the caller
}

// spinFor is how long each side of a hand-off spins before it parks. With
// one CPU nothing else can run while one spins, so then neither does.
var spinFor = func() time.Duration {
	if runtime.GOMAXPROCS(0) < 2 {
		return 0
	}
	return 50 * time.Microsecond
}()

// newOwner starts the thread.
func newOwner() *owner {
	o := &owner{slot: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		done: make(chan struct{}, 1), ended: make(chan struct{})}
	go o.serve()
	return o
}

func (o *owner) serve() {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	defer close(o.ended)
	var handled uint64
	for {
		handled++
		o.await(handled)
		o.invoke()
		o.finished.Store(handled)
		if o.waiting.Load() {
			notify(o.done)
		}
		if o.quit {
			return
		}
	}
}

// invoke runs the posted task, keeping a panic for the caller to re-raise:
// on this goroutine it would end the process.
func (o *owner) invoke() {
	defer func() { o.task, o.panicked = nil, recover() }()
	o.task()
}

// await waits, spinning and then parked, until task seq is posted.
func (o *owner) await(seq uint64) { awaitCount(&o.posted, seq, &o.idle, o.wake) }

// awaitCount waits until counter reaches seq: spinning for a while, then parked
// on wake with parked set, so that the other side knows to leave a token.
func awaitCount(counter *atomic.Uint64, seq uint64, parked *atomic.Bool, wake chan struct{}) {
	if spinUntil(func() bool { return counter.Load() >= seq }) {
		return
	}
	for {
		parked.Store(true)
		if counter.Load() >= seq {
			break
		}
		<-wake
		if counter.Load() >= seq {
			break
		}
	}
	parked.Store(false)
}

// do runs task on the thread and returns when it has run; a ctx that ends
// while another task holds the thread returns ctx's error without running it,
// and after stop do returns ErrClosed. A task runs to its end once posted
// (the tasks interrupt themselves: see frame.run). A nil o runs task here:
// the instance has no thread of its own.
func (o *owner) do(ctx context.Context, task func()) error {
	if o == nil {
		task()
		return nil
	}
	if err := sendContext(ctx, o.slot); err != nil {
		return err
	}
	defer func() { <-o.slot }()
	if o.stopped {
		return ErrClosed
	}
	o.run(task)
	return nil
}

// on is do without a context.
func (o *owner) on(task func()) { _ = o.do(context.Background(), task) }

// end stops o if it is not nil.
func (o *owner) end() {
	if o != nil {
		o.stop(nil)
	}
}

// run posts task and waits for its end; the caller holds the slot. A panic
// of the task panics here.
func (o *owner) run(task func()) {
	o.task = task
	seq := o.posted.Add(1)
	if o.idle.Load() {
		notify(o.wake)
	}
	o.awaitEnd(seq)
	if p := o.panicked; p != nil {
		o.panicked = nil
		panic(p)
	}
}

// awaitEnd waits, spinning and then parked, until task seq has run.
func (o *owner) awaitEnd(seq uint64) { awaitCount(&o.finished, seq, &o.waiting, o.done) }

// stop runs last on the thread (the instance's close, say) and ends it. A
// second stop does nothing.
func (o *owner) stop(last func()) {
	o.slot <- struct{}{}
	defer func() { <-o.slot }()
	if o.stopped {
		return
	}
	o.stopped = true
	o.run(func() {
		if last != nil {
			last()
		}
		o.quit = true
	})
	<-o.ended
}

// notify leaves a token on a buffered channel unless one is there.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// spinUntil polls cond for at most spinFor and reports whether it held.
// Between polls it yields the CPU to the OS: on a loaded machine the other
// side of the hand-off may be waiting for exactly this core.
func spinUntil(cond func() bool) bool {
	if spinFor == 0 {
		return cond()
	}
	var deadline time.Time
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		if i < 64 {
			continue
		}
		if i&15 == 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(spinFor)
			} else if now.After(deadline) {
				return false
			}
		}
		osYield()
	}
}

// osYield gives the rest of the thread's time slice to another thread.
func osYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
