package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

// Hostile lifecycle and UDF-behaviour cases in thread mode: closing under
// load, reloading, two engines, recursion, memory and Python threads. Each
// asserts the exact outcome and that the engine (or a new one) still works.

const hostileLifecycleSource = `
import sys, threading, time
from pyudf import udf

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b

@udf(input_types=['BIGINT'], result_type='BIGINT')
def slow(ms):
    time.sleep(ms / 1000)
    return ms

def _depth(n):
    return 0 if n == 0 else 1 + _depth(n - 1)

recurse = udf(_depth, input_types=['BIGINT'], result_type='BIGINT')

@udf(input_types=['BIGINT'], result_type='BIGINT')
def allocate(n):
    return len(bytearray(n))

_ticks = []
def _ticker(stop):
    while not stop.is_set():
        _ticks.append(1)
        time.sleep(0.001)

_stop = threading.Event()
_threads = []

@udf(result_type='BIGINT')
def start_thread():
    _threads.append(threading.Thread(target=_ticker, args=(_stop,), daemon=True))
    _threads[-1].start()
    return sum(t.is_alive() for t in _threads)

@udf(result_type='BIGINT')
def stop_threads():
    _stop.set()
    for t in _threads:
        t.join(5)
        if t.is_alive():
            raise RuntimeError("the ticker thread did not stop")
    return len(_ticks)
`

// lifecycleModule loads hostileLifecycleSource into a new thread-mode engine.
func lifecycleModule(t *testing.T, cfg Config) *Module {
	t.Helper()
	return loadModule(t, cfg, "lifecycle.py", hostileLifecycleSource)
}

// TestHostileEngineCloseUnderLoad: Close while 8 goroutines call. Every call
// returns the right sum or ErrClosed, Close returns nil, and a new engine works.
func TestHostileEngineCloseUnderLoad(t *testing.T) {
	for _, width := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency-%d", width), func(t *testing.T) {
			m := lifecycleModule(t, Config{Concurrency: width})
			add := function(t, m, "add")
			ctx := context.Background()
			var wg sync.WaitGroup
			var good, closed sync.Map
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := int64(0); ; i++ {
						v, err := add.Call(ctx, i, int64(g))
						switch {
						case errors.Is(err, ErrClosed):
							closed.Store(g, true)
							return
						case err != nil || v != i+int64(g):
							t.Errorf("add(%d, %d) = %v, %v", i, g, v, err)
							return
						}
						good.Store(g, true)
					}
				}()
			}
			time.Sleep(200 * time.Millisecond)
			if err := m.engine.Close(); err != nil {
				t.Errorf("Close under load: %v", err)
			}
			wg.Wait()
			for g := range 8 {
				if _, ok := closed.Load(g); !ok {
					t.Errorf("goroutine %d never saw ErrClosed", g)
				}
			}
			if got := call(t, lifecycleModule(t, Config{}), "add", int64(2), int64(3)); got != int64(5) {
				t.Errorf("a new engine after Close: add(2, 3) = %v", got)
			}
		})
	}
}

// TestHostileFunctionCloseWhileCallRuns: Function.Close waits for the call
// inside (which returns its value), later calls fail with ErrClosed and a new
// lookup of the same name works.
func TestHostileFunctionCloseWhileCallRuns(t *testing.T) {
	m := lifecycleModule(t, Config{})
	slow := function(t, m, "slow")
	done := make(chan error, 1)
	go func() {
		v, err := slow.Call(context.Background(), int64(200))
		if err == nil && v != int64(200) {
			err = fmt.Errorf("slow(200) = %v", v)
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := slow.Close(); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("Close returned after %v, before the running call ended", waited)
	}
	if err := <-done; err != nil {
		t.Errorf("the call in progress: %v", err)
	}
	if _, err := slow.Call(context.Background(), int64(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	if got := call(t, m, "slow", int64(1)); got != int64(1) {
		t.Errorf("looked up anew: slow(1) = %v", got)
	}
}

// TestHostileEngineCloseTwiceAndUseAfter: a second Close is a no-op, every
// entry point then says ErrClosed.
func TestHostileEngineCloseTwiceAndUseAfter(t *testing.T) {
	m := lifecycleModule(t, Config{})
	add := function(t, m, "add")
	e := m.engine
	for i := range 2 {
		if err := e.Close(); err != nil {
			t.Fatalf("Close %d: %v", i+1, err)
		}
	}
	ctx := context.Background()
	if _, err := add.CallValues(ctx, bridge.Int64(1), bridge.Int64(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("CallValues: %v", err)
	}
	if _, err := e.Import(ctx, "json"); !errors.Is(err, ErrClosed) {
		t.Errorf("Import: %v", err)
	}
	if _, err := m.Aggregate(ctx, "add"); !errors.Is(err, ErrClosed) {
		t.Errorf("Aggregate: %v", err)
	}
}

// TestHostileReloadSameName: loading a module under a name already loaded
// gives a new module; each keeps its own code.
func TestHostileReloadSameName(t *testing.T) {
	e := newEngine(t, Config{})
	ctx := context.Background()
	load := func(k int) *Module {
		m, err := e.LoadSource(ctx, "reload.py", fmt.Sprintf(
			"from pyudf import udf\nf = udf(lambda x: x * %d, input_types=['BIGINT'], result_type='BIGINT')\n", k))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := load(2)
	f1 := function(t, first, "f")
	second := load(3)
	if got := call(t, second, "f", int64(5)); got != int64(15) {
		t.Errorf("reloaded f(5) = %v, want 15", got)
	}
	if v, err := f1.Call(ctx, int64(5)); err != nil || v != int64(10) {
		t.Errorf("the first module's f(5) = %v, %v; want 10", v, err)
	}
}

// TestHostileTwoEnginesOneProcess: two engines load modules of the same name
// with different code and job parameters; neither sees the other's, and
// closing one leaves the other working.
func TestHostileTwoEnginesOneProcess(t *testing.T) {
	ctx := context.Background()
	src := `
from pyudf import udf, ScalarFunction
class Param(ScalarFunction):
    def open(self, ctx):
        self.k = int(ctx.get_job_parameter("k", "0"))
    def eval(self, x):
        return x * self.k + K
param = udf(Param(), input_types=['BIGINT'], result_type='BIGINT')
`
	var mods []*Module
	for i, k := range []string{"10", "100"} {
		e, err := New(ctx, Config{JobParameters: map[string]string{"k": k}})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		m, err := e.LoadSource(ctx, "same.py", fmt.Sprintf("K = %d\n%s", i+1, src))
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, m)
	}
	if a, b := call(t, mods[0], "param", int64(2)), call(t, mods[1], "param", int64(2)); a != int64(21) || b != int64(202) {
		t.Fatalf("param(2) = %v and %v, want 21 and 202", a, b)
	}
	if err := mods[0].engine.Close(); err != nil {
		t.Fatal(err)
	}
	if got := call(t, mods[1], "param", int64(3)); got != int64(302) {
		t.Errorf("after the other engine closed: param(3) = %v, want 302", got)
	}
}

// TestHostileRecursionIsAPythonError: runaway recursion in a UDF is
// Python's RecursionError, not a crash.
func TestHostileRecursionIsAPythonError(t *testing.T) {
	m := lifecycleModule(t, Config{})
	if got := call(t, m, "recurse", int64(100)); got != int64(100) {
		t.Fatalf("recurse(100) = %v", got)
	}
	var pe *bridge.PythonError
	if err := callErr(t, function(t, m, "recurse"), int64(1_000_000)); !errors.As(err, &pe) || pe.Type != "RecursionError" {
		t.Fatalf("recurse(1e6): %v, want a RecursionError", err)
	}
	if got := call(t, m, "add", int64(2), int64(3)); got != int64(5) {
		t.Errorf("after the RecursionError: add(2, 3) = %v", got)
	}
}

// TestHostileHugeAllocationIsMemoryError: an allocation no machine can
// satisfy is Python's MemoryError; the next call works.
func TestHostileHugeAllocationIsMemoryError(t *testing.T) {
	m := lifecycleModule(t, Config{})
	var pe *bridge.PythonError
	if err := callErr(t, function(t, m, "allocate"), int64(1)<<60); !errors.As(err, &pe) || pe.Type != "MemoryError" {
		t.Fatalf("allocate(2^60): %v, want a MemoryError", err)
	}
	if got := call(t, m, "allocate", int64(1<<20)); got != int64(1<<20) {
		t.Errorf("after the MemoryError: allocate(1 MiB) = %v", got)
	}
}

// TestHostilePythonThreadsOutliveTheCall: a UDF starts a Python thread that
// keeps running (and taking the GIL) after the call returns; calls stay
// correct meanwhile and the thread can be stopped.
func TestHostilePythonThreadsOutliveTheCall(t *testing.T) {
	m := lifecycleModule(t, Config{})
	if n := call(t, m, "start_thread"); n != int64(1) {
		t.Fatalf("start_thread: %v threads alive, want 1", n)
	}
	add := function(t, m, "add")
	for i := range int64(2000) {
		if v, err := add.Call(context.Background(), i, i); err != nil || v != 2*i {
			t.Fatalf("add(%d, %d) with a Python thread running = %v, %v", i, i, v, err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if ticks := call(t, m, "stop_threads"); ticks.(int64) == 0 {
		t.Errorf("the Python thread never ran")
	}
}
