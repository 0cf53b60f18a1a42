package cgo

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pyruntime "github.com/pyudf/pyudf/python"
)

func TestMain(m *testing.M) {
	sources, err := json.Marshal(pyruntime.Sources())
	if err != nil {
		panic(err)
	}
	if exc := Init(os.Getenv("PYUDF_PYTHON"), pyruntime.Bootstrap(), string(sources)); exc != nil {
		fmt.Fprintf(os.Stderr, "cgo tests: Init: %s: %s\n%s", exc.Type, exc.Message, exc.Traceback)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// subinterpreters reports whether this CPython has them (3.12+).
func subinterpreters() bool {
	major, minor, _ := strings.Cut(LinkedVersion, ".")
	n, _ := strconv.Atoi(minor)
	return major == "3" && n >= 12
}

func needSubinterpreters(t *testing.T) {
	t.Helper()
	if !subinterpreters() {
		t.Skipf("CPython %s has no per-interpreter GIL (TestSubinterpreterRefusedBefore312 covers it)", LinkedVersion)
	}
}

// onSub runs fn on a goroutine locked to its OS thread, in a new
// sub-interpreter that is closed afterwards, and waits for it. fn's t.Fatal
// is safe: the sub-interpreter is closed on the way out.
func onSub(t *testing.T, fn func(s *Subinterpreter)) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		s, exc := NewSubinterpreter()
		if exc != nil {
			t.Errorf("NewSubinterpreter: %s: %s", exc.Type, exc.Message)
			return
		}
		defer func() {
			if exc := s.Close(); exc != nil {
				t.Errorf("Close: %s: %s", exc.Type, exc.Message)
			}
		}()
		fn(s)
	}()
	<-done
}

// control runs one control request and returns its reply, or the exception.
func control(f *Frame, req map[string]any) (map[string]any, *Exception) {
	b, _ := json.Marshal(req)
	if st := f.Control(b); st != OK {
		return nil, f.Err()
	}
	var reply map[string]any
	if err := json.Unmarshal(f.Out(), &reply); err != nil {
		return nil, &Exception{Type: "reply", Message: err.Error()}
	}
	return reply, nil
}

func mustControl(t *testing.T, f *Frame, req map[string]any) map[string]any {
	t.Helper()
	reply, exc := control(f, req)
	if exc != nil {
		t.Fatalf("control %v: %s: %s\n%s", req["op"], exc.Type, exc.Message, exc.Traceback)
	}
	return reply
}

// load opens engine 1 (in the calling thread's interpreter), loads source as
// module name and returns function fn of it.
func load(t *testing.T, f *Frame, name, source, fn string) Object {
	t.Helper()
	mustControl(t, f, map[string]any{"op": "engine_open", "engine": 1, "job_parameters": map[string]any{},
		"path": []string{}, "log_level": 30})
	mod := mustControl(t, f, map[string]any{"op": "load_source", "engine": 1, "name": name, "source": source})
	return function(t, f, mod["module"], fn)
}

func function(t *testing.T, f *Frame, module any, fn string) Object {
	t.Helper()
	reply := mustControl(t, f, map[string]any{"op": "function", "engine": 1, "module": module, "name": fn})
	obj, st := f.Take(int64(reply["object"].(float64)))
	if st != OK {
		t.Fatalf("take %s: %s", fn, f.Err().Message)
	}
	return obj
}

func closeEngine(t *testing.T, f *Frame) {
	t.Helper()
	mustControl(t, f, map[string]any{"op": "engine_close", "engine": 1})
}

// ints encodes int64 arguments in the wire format (convert.h).
func ints(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = append(b, byte(WireTags()["INT"]))
		b = binary.NativeEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// callInt calls fn with int arguments and returns its int result.
func callInt(t *testing.T, f *Frame, fn Object, args ...int64) int64 {
	t.Helper()
	if st := f.Call(fn, ints(args...), len(args)); st != OK {
		e := f.Err()
		t.Fatalf("call: status %d: %s: %s", st, e.Type, e.Message)
	}
	out := f.Out()
	if len(out) != 9 || out[0] != byte(WireTags()["INT"]) {
		t.Fatalf("result %x is not an INT", out)
	}
	return int64(binary.NativeEndian.Uint64(out[1:]))
}

func TestSubinterpreterRefusedBefore312(t *testing.T) {
	if subinterpreters() {
		t.Skipf("CPython %s has sub-interpreters", LinkedVersion)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, exc := NewSubinterpreter()
	if s != nil || exc == nil {
		t.Fatalf("NewSubinterpreter on %s = %v, %v; want a NotSupportedError", LinkedVersion, s, exc)
	}
	want := "sub-interpreters with their own GIL need CPython 3.12 or later; this is " + LinkedVersion + "."
	if exc.Type != "NotSupportedError" || !strings.HasPrefix(exc.Message, want) {
		t.Fatalf("got %s: %q; want NotSupportedError: %q...", exc.Type, exc.Message, want)
	}
	// the thread still works in the main interpreter
	f := NewFrame()
	add := load(t, f, "refused_add", "def add(a, b):\n    return a + b\n", "add")
	defer add.Release()
	defer closeEngine(t, f)
	if got := callInt(t, f, add, 2, 3); got != 5 {
		t.Fatalf("add(2, 3) = %d after the refusal", got)
	}
}

// Two sub-interpreters on two threads at once, each with its own copy of the
// module (its own K), called from their own thread; they are separate
// interpreters (their sys modules differ) and neither is the main one.
func TestSubinterpretersRunCallsInParallel(t *testing.T) {
	needSubinterpreters(t)
	const src = "import sys\nK = %d\ndef f(a, b):\n    return a * b + K\ndef where():\n    return id(sys)\n"
	main := NewFrame()
	mainWhere := load(t, main, "sub_parallel", fmt.Sprintf(src, 0), "where")
	defer closeEngine(t, main)
	defer mainWhere.Release()
	ids := make([]int64, 3)
	ids[2] = callInt(t, main, mainWhere)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			onSub(t, func(s *Subinterpreter) {
				f := NewFrame()
				k := int64(100 * (i + 1))
				fn := load(t, f, "sub_parallel", fmt.Sprintf(src, k), "f")
				where := function(t, f, float64(1), "where") // module 1: this interpreter's first
				for n := int64(0); n < 20000; n++ {
					if got := callInt(t, f, fn, n, 3); got != n*3+k {
						t.Errorf("interpreter %d: f(%d, 3) = %d, want %d", i, n, got, n*3+k)
						break
					}
				}
				ids[i] = callInt(t, f, where)
				where.Release()
				fn.Release()
				closeEngine(t, f)
			})
		}()
	}
	wg.Wait()
	if ids[0] == ids[1] || ids[0] == ids[2] || ids[1] == ids[2] {
		t.Fatalf("id(sys) in sub 1, sub 2, main: %v; want three interpreters", ids)
	}
}

// Values whose conversion needs the state's classes (datetime, Decimal,
// Row's) round-trip in a sub-interpreter: on 3.12 without the datetime C API.
func TestSubinterpreterConvertsDatesAndDecimals(t *testing.T) {
	needSubinterpreters(t)
	tags := WireTags()
	date := append([]byte{byte(tags["DATE"])}, binary.NativeEndian.AppendUint32(nil, 2024)...)
	date = append(date, 2, 29)
	clock := []byte{13, 14, 15}
	clock = binary.NativeEndian.AppendUint32(clock, 123456)
	timeArg := append([]byte{byte(tags["TIME"])}, clock...)
	stamp := append(append([]byte{byte(tags["TIMESTAMP_UTC"])}, date[1:]...), clock...)
	local := append(append([]byte{byte(tags["TIMESTAMP"])}, date[1:]...), clock...)
	dec := append([]byte{byte(tags["DECIMAL"])}, binary.NativeEndian.AppendUint32(nil, 4)...)
	dec = append(dec, "1.50"...)
	onSub(t, func(s *Subinterpreter) {
		f := NewFrame()
		ident := load(t, f, "sub_ident", "def ident(x):\n    return x\n", "ident")
		defer closeEngine(t, f)
		defer ident.Release()
		for name, arg := range map[string][]byte{"date": date, "time": timeArg, "timestamp_utc": stamp,
			"timestamp": local, "decimal": dec} {
			if st := f.Call(ident, arg, 1); st != OK {
				t.Fatalf("ident(%s): %s: %s", name, f.Err().Type, f.Err().Message)
			}
			if got := f.Out(); string(got) != string(arg) {
				t.Errorf("ident(%s) = %x, want %x", name, got, arg)
			}
		}
		// an invalid date is refused with a Python ValueError, not a crash
		bad := append([]byte{byte(tags["DATE"])}, binary.NativeEndian.AppendUint32(nil, 2023)...)
		bad = append(bad, 2, 30)
		if st := f.Call(ident, bad, 1); st != Error || f.Err().Type != "ValueError" {
			t.Fatalf("ident(2023-02-30): status %d %s: %s; want a ValueError", st, f.Err().Type, f.Err().Message)
		}
	})
}

// numpy refuses to load in a sub-interpreter: an ImportError that names it,
// returned as an error; the interpreter stays usable.
func TestSubinterpreterNumpyImportRefused(t *testing.T) {
	needSubinterpreters(t)
	onSub(t, func(s *Subinterpreter) {
		f := NewFrame()
		mustControl(t, f, map[string]any{"op": "engine_open", "engine": 1, "job_parameters": map[string]any{},
			"path": []string{}, "log_level": 30})
		defer closeEngine(t, f)
		_, exc := control(f, map[string]any{"op": "load_source", "engine": 1, "name": "sub_numpy",
			"source": "import numpy\ndef f(a, b):\n    return a + b\n"})
		if exc == nil {
			t.Fatal("a module importing numpy loaded in a sub-interpreter")
		}
		if exc.Type != "ImportError" || !strings.Contains(exc.Message, "numpy") ||
			!strings.Contains(exc.Message, "does not support loading in subinterpreters") {
			t.Fatalf("got %s: %s; want an ImportError naming numpy that refuses sub-interpreters", exc.Type, exc.Message)
		}
		mod := mustControl(t, f, map[string]any{"op": "load_source", "engine": 1, "name": "sub_after_numpy",
			"source": "def f(a, b):\n    return a + b\n"})
		fn := function(t, f, mod["module"], "f")
		defer fn.Release()
		if got := callInt(t, f, fn, 40, 2); got != 42 {
			t.Fatalf("f(40, 2) = %d after the refused import", got)
		}
	})
}

// An exception in one sub-interpreter is that call's error only: the other
// interpreter's calls, running at the same time, all succeed.
func TestSubinterpreterExceptionStaysInItsInterpreter(t *testing.T) {
	needSubinterpreters(t)
	src := "def f(a, b):\n    if b == 0:\n        raise ValueError('b is zero: %d' % a)\n    return a // b\n"
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			onSub(t, func(s *Subinterpreter) {
				f := NewFrame()
				fn := load(t, f, "sub_raise", src, "f")
				defer closeEngine(t, f)
				defer fn.Release()
				for n := int64(1); n < 5000; n++ {
					if i == 0 && n%2 == 0 { // interpreter 0 raises every other call
						st := f.Call(fn, ints(n, 0), 2)
						if e := f.Err(); st != Error || e.Type != "ValueError" || e.Message != fmt.Sprintf("b is zero: %d", n) {
							t.Errorf("f(%d, 0): status %d %s: %s", n, st, e.Type, e.Message)
							return
						}
						continue
					}
					if got := callInt(t, f, fn, 6*n, 3); got != 2*n {
						t.Errorf("interpreter %d: f(%d, 3) = %d", i, 6*n, got)
						return
					}
				}
			})
		}()
	}
	wg.Wait()
}

// A spinning call in a sub-interpreter is interrupted from another goroutine
// (which owns no interpreter), also when it swallows Cancelled; then the
// interpreter's next call works.
func TestSubinterpreterInterrupt(t *testing.T) {
	needSubinterpreters(t)
	src := "def spin():\n    while True:\n        pass\n" +
		"def stubborn():\n    while True:\n        try:\n            while True:\n                pass\n" +
		"        except BaseException:\n            pass\n" +
		"def add(a, b):\n    return a + b\n"
	onSub(t, func(s *Subinterpreter) {
		f := NewFrame()
		spin := load(t, f, "sub_spin", src, "spin")
		stubborn := function(t, f, float64(1), "stubborn")
		add := function(t, f, float64(1), "add")
		defer closeEngine(t, f)
		defer spin.Release()
		defer stubborn.Release()
		defer add.Release()
		for _, fn := range []Object{spin, stubborn} {
			id := f.NextCall()
			stop := make(chan struct{})
			go func() {
				defer close(stop)
				time.Sleep(20 * time.Millisecond)
				for f.Interrupt(id) {
					time.Sleep(2 * time.Millisecond)
				}
			}()
			start := time.Now()
			st := f.Call(fn, nil, 0)
			<-stop
			if st != Cancelled {
				t.Fatalf("interrupted call: status %d (%s: %s), want Cancelled", st, f.Err().Type, f.Err().Message)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("interrupt took %v", d)
			}
			if got := callInt(t, f, add, 1, 2); got != 3 {
				t.Fatalf("add(1, 2) = %d after the interrupt", got)
			}
		}
	})
}

// Interrupting a frame whose sub-interpreter has ended does nothing and says
// the call is over.
func TestSubinterpreterInterruptAfterClose(t *testing.T) {
	needSubinterpreters(t)
	var f *Frame
	onSub(t, func(s *Subinterpreter) {
		f = NewFrame()
		add := load(t, f, "sub_after_close", "def add(a, b):\n    return a + b\n", "add")
		callInt(t, f, add, 1, 2)
		add.Release()
		closeEngine(t, f)
	})
	if f.Interrupt(f.NextCall()) {
		t.Fatal("Interrupt of a frame of a closed sub-interpreter reports a call pending")
	}
}

// The thread rules are checked: a second sub-interpreter on the same thread
// is refused, and so is Close from another thread.
func TestSubinterpreterThreadRules(t *testing.T) {
	needSubinterpreters(t)
	var s *Subinterpreter
	onSub(t, func(s1 *Subinterpreter) {
		s = s1
		s2, exc := NewSubinterpreter()
		if s2 != nil || exc == nil || !strings.Contains(exc.Message, "owns a sub-interpreter already") {
			t.Errorf("second NewSubinterpreter on one thread = %v, %v", s2, exc)
		}
		done := make(chan *Exception)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			done <- s1.Close()
		}()
		if exc := <-done; exc == nil || !strings.Contains(exc.Message, "thread that created it") {
			t.Errorf("Close from another thread = %v", exc)
		}
	})
	if exc := s.Close(); exc != nil { // closed already: a no-op
		t.Fatalf("second Close: %v", exc)
	}
}

func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	fields := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// osThreads is the number of OS threads of the process.
func osThreads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(line, "Threads:"); ok {
			v, _ := strconv.Atoi(strings.TrimSpace(n))
			return v
		}
	}
	t.Skip("no Threads: line in /proc/self/status")
	return 0
}

// 50 sub-interpreters created, used and ended one after the other leave no
// interpreter and no thread state behind, and memory stays bounded.
func TestSubinterpreterNoLeak(t *testing.T) {
	needSubinterpreters(t)
	cycle := func(n int) {
		for i := 0; i < n; i++ {
			onSub(t, func(s *Subinterpreter) {
				f := NewFrame()
				add := load(t, f, "sub_leak", "import json\ndef add(a, b):\n    return a + b\n", "add")
				if got := callInt(t, f, add, int64(i), 1); got != int64(i)+1 {
					t.Errorf("add(%d, 1) = %d", i, got)
				}
				add.Release()
				closeEngine(t, f)
			})
			if t.Failed() {
				t.FailNow()
			}
		}
	}
	cycle(5) // warm up: allocator arenas, Go threads
	interps, tstates := Interpreters()
	before := rssBytes(t)
	cycle(50)
	runtime.GC()
	after := rssBytes(t)
	interps2, tstates2 := Interpreters()
	// Every OS thread that entered Python keeps one main interpreter thread
	// state until it exits (interp.h), so at most one per OS thread; 50
	// leaked sub-interpreter thread states would be far more.
	threads := osThreads(t)
	if interps2 != interps || tstates2 > threads {
		t.Fatalf("after 50 sub-interpreters: %d interpreters, %d thread states, %d OS threads; before: %d, %d",
			interps2, tstates2, threads, interps, tstates)
	}
	t.Logf("interpreters %d -> %d, thread states %d -> %d (%d OS threads)", interps, interps2, tstates, tstates2, threads)
	if interps != 1 {
		t.Errorf("%d interpreters with none open, want 1", interps)
	}
	// CPython itself does not give back all of an ended sub-interpreter's
	// memory: measured with its own _interpreters module (create, exec,
	// destroy), 3.12.1 and 3.13.0 keep about 1.7 MB per empty sub-interpreter
	// and 4.5 MB per one that imports the standard library pyudf's runtime
	// imports; here about 6.5 MB each. So memory is bounded per interpreter
	// made, not in total: a pool should make its interpreters once.
	grown := after - before
	perInterp := float64(grown) / 50 / (1 << 20)
	t.Logf("RSS %d MB -> %d MB (%.1f MB per sub-interpreter)", before>>20, after>>20, perInterp)
	if perInterp > 10 {
		t.Fatalf("RSS grew %.1f MB per sub-interpreter (%d MB over 50), more than CPython's own 6.5", perInterp, grown>>20)
	}
}

// PyFlink-style code (pyflink.table.udf, a ScalarFunction with open, a Row
// result) runs in a sub-interpreter: the compatibility package and Row's
// conversion need nothing the sub-interpreter refuses.
func TestSubinterpreterPyFlinkStyleUDF(t *testing.T) {
	needSubinterpreters(t)
	src := "from pyflink.table import DataTypes\nfrom pyflink.table.udf import ScalarFunction, udf\n" +
		"from pyudf import Row\n" +
		"class Scale(ScalarFunction):\n    def open(self, ctx):\n        self.k = 7\n" +
		"    def eval(self, a):\n        return a * self.k\n" +
		"scale = udf(Scale(), result_type=DataTypes.BIGINT())\n" +
		"@udf(result_type='ROW<n BIGINT, s STRING>')\ndef pair(a):\n    return Row(n=a, s='x' * a)\n"
	onSub(t, func(s *Subinterpreter) {
		f := NewFrame()
		scale := load(t, f, "sub_pyflink", src, "scale")
		pair := function(t, f, float64(1), "pair")
		defer closeEngine(t, f)
		defer scale.Release()
		defer pair.Release()
		if got := callInt(t, f, scale, 6); got != 42 {
			t.Fatalf("scale(6) = %d, want 42", got)
		}
		if st := f.Call(pair, ints(3), 1); st != OK {
			t.Fatalf("pair(3): %s: %s", f.Err().Type, f.Err().Message)
		}
		if out := f.Out(); len(out) == 0 || out[0] != byte(WireTags()["ROW"]) || !strings.Contains(string(out), "xxx") {
			t.Fatalf("pair(3) = %x, want a ROW holding \"xxx\"", out)
		}
	})
}

// A goroutine that owns a sub-interpreter can interrupt a call running in
// the main interpreter: the Cancelled is the main interpreter's.
func TestSubinterpreterOwnerInterruptsMainCall(t *testing.T) {
	needSubinterpreters(t)
	f := NewFrame()
	spin := load(t, f, "main_spin", "def spin():\n    while True:\n        pass\n", "spin")
	defer closeEngine(t, f)
	defer spin.Release()
	id := f.NextCall()
	done := make(chan Status)
	go func() { done <- f.Call(spin, nil, 0) }()
	onSub(t, func(s *Subinterpreter) {
		time.Sleep(20 * time.Millisecond)
		for f.Interrupt(id) {
			time.Sleep(2 * time.Millisecond)
		}
	})
	if st := <-done; st != Cancelled {
		t.Fatalf("main call interrupted from a sub-interpreter's thread: status %d (%s: %s)", st, f.Err().Type, f.Err().Message)
	}
}
