package cgo

/*
#include "call.h"
#include "errors.h"
#include "interp.h"
#include "state.h"

// call_in: pyudf_call in sub-interpreter st, visited from this thread.
static int call_in(pyudf_state *st, uintptr_t fn, int nargs, uint64_t id, pyudf_frame *f)
{
	struct pyudf_visit saved;
	if (pyudf_visit(st, &saved) < 0) {
		pyudf_error_set(&f->err, "RuntimeError", "cannot enter the sub-interpreter (ended, or this thread visits too many)");
		return PYUDF_ERROR;
	}
	int rc = pyudf_call((PyObject *)fn, nargs, id, f);
	pyudf_unvisit(&saved);
	return rc;
}
*/
import "C"

import "unsafe"

// Subinterpreter is a CPython sub-interpreter with its own GIL (PEP 684,
// CPython 3.12 and later), bound to the OS thread that created it.
//
// Thread rules: the goroutine that calls NewSubinterpreter must be locked to
// its OS thread (runtime.LockOSThread) and stay locked until Close, which it
// calls itself. From creation to Close, every call that goroutine makes here
// (Frame.Call, Control, Take, Object.Release, the batch calls ...) runs in the
// sub-interpreter, not the main interpreter, and nothing else runs Python
// code in it. So: the Frames the goroutine calls with are its own (a frame's
// calls all run in one interpreter), the Objects it gets from Take belong to
// the sub-interpreter and are called and released on that goroutine only
// (never handed to runtime.AddCleanup or another goroutine), and only
// Frame.Interrupt may be called from other goroutines, at any time (it
// returns false once the sub-interpreter is closed). Close it before the
// goroutine unlocks or exits: a thread that exits owning one leaks it.
//
// Only extension modules that support a per-interpreter GIL load in it:
// importing numpy, pandas or pyarrow raises ImportError ("... does not
// support loading in subinterpreters"), an ordinary Python exception.
type Subinterpreter struct {
	c      *C.pyudf_state
	closed bool
}

// NewSubinterpreter creates a sub-interpreter with its own GIL on the calling
// goroutine's OS thread (see Subinterpreter for the rules) and imports the
// embedded runtime in it. Init must have succeeded first. On CPython 3.10 and
// 3.11 it returns a NotSupportedError Exception naming the version.
func NewSubinterpreter() (*Subinterpreter, *Exception) {
	var err C.pyudf_buf
	defer C.pyudf_buf_free(&err)
	st := C.pyudf_subinterp_new(&err)
	if st == nil {
		return nil, parseException(cBytes(err.data, err.len))
	}
	return &Subinterpreter{c: st}, nil
}

// Close ends the sub-interpreter, on the goroutine (thread) that created it,
// with no call running in it; the goroutine then works in the main
// interpreter again. Objects taken in it must have been released. Closing
// twice is a no-op; from another thread it fails.
func (s *Subinterpreter) Close() *Exception {
	if s == nil || s.closed {
		return nil
	}
	var err C.pyudf_buf
	defer C.pyudf_buf_free(&err)
	if C.pyudf_subinterp_end(s.c, &err) != 0 {
		return parseException(cBytes(err.data, err.len))
	}
	s.closed = true
	return nil
}

// Call is Frame.Call in the sub-interpreter, from any goroutine (the one
// that owns it too): the calling thread visits it with a thread state of its
// own for it, made on first use and kept, as long as the thread lives (at
// most 64 sub-interpreters per thread). fn must be an Object taken in this
// sub-interpreter, and f a Frame that only calls in this sub-interpreter.
// Concurrent calls into one sub-interpreter wait for its GIL.
func (s *Subinterpreter) Call(f *Frame, fn Object, args []byte, nargs int) Status {
	f.trimOut()
	f.setIn(args)
	f.calls++
	st := Status(C.call_in(s.c, C.uintptr_t(uintptr(unsafe.Pointer(fn.p))), C.int(nargs),
		C.uint64_t(f.calls), f.c))
	f.trimIn()
	return st
}

// Interpreters counts the interpreters that exist (the main one included)
// and their thread states, for tests that check nothing leaks.
func Interpreters() (interps, threadStates int) {
	var i, t C.int
	C.pyudf_interpreters(&i, &t)
	return int(i), int(t)
}

// ThreadState says which interpreter a thread state belongs to (0 is the
// main one) and which OS thread (its Linux thread id; 0 before CPython 3.11)
// it was made for.
type ThreadState struct {
	Interpreter int
	OSThread    int
}

// ThreadStates lists every interpreter's thread states, for tests that check
// that no thread state outlives its thread or repeats on one.
func ThreadStates() []ThreadState {
	pairs := make([]C.ulong, 2*64)
	n := int(C.pyudf_thread_states(&pairs[0], C.int(len(pairs)/2)))
	for n > len(pairs)/2 {
		pairs = make([]C.ulong, 2*n)
		n = int(C.pyudf_thread_states(&pairs[0], C.int(len(pairs)/2)))
	}
	states := make([]ThreadState, n)
	for i := range states {
		states[i] = ThreadState{Interpreter: int(pairs[2*i]), OSThread: int(pairs[2*i+1])}
	}
	return states
}
