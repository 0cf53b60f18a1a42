package engine

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// Hostile cases around deadlines, cancellation and signals (thread mode
// unless a test says otherwise).

const hostileCancelSource = `
import signal, sys, threading, time
from pyudf import udf, udaf, AggregateFunction, ScalarFunction, DataTypes

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b

_ran = 0

@udf(result_type='BIGINT')
def bump():
    """Count the calls that ran."""
    global _ran
    _ran += 1
    return _ran

@udf(result_type='BIGINT')
def ran():
    return _ran

@udf(input_types=['DOUBLE'], result_type='BIGINT')
def hold(seconds):
    """Hold a slot of the gate for seconds, interruptible (short sleeps)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.001)
    return 1

@udf(result_type='BIGINT')
def bare_except_loop():
    while True:
        try:
            sum(range(100))
        except:
            pass

@udf(result_type='BIGINT')
def finally_loop():
    try:
        while True:
            pass
    finally:
        while True:
            try:
                sum(range(100))
            except BaseException:
                pass

class _Spin:
    def __del__(self):
        while True:
            try:
                sum(range(100))
            except BaseException:
                pass

@udf(result_type='BIGINT')
def del_swallows():
    """A __del__ that spins and swallows; the call itself then returns 7."""
    o = _Spin()
    del o
    return 7

class _Raise:
    def __del__(self):
        raise ValueError("from __del__")

@udf(result_type='BIGINT')
def del_raises():
    while True:
        _Raise()

@udf(result_type='BIGINT')
def catch_and_return():
    """Swallow Cancelled once, then return a value as if all went well."""
    try:
        while True:
            pass
    except BaseException:
        return 42

@udf(result_type='BIGINT')
def catch_and_raise_other():
    while True:
        try:
            while True:
                pass
        except BaseException:
            try:
                raise ValueError("not Cancelled")
            except ValueError:
                pass

@udf(input_types=['BIGINT'], result_type='BIGINT')
def swallow_rows(x):
    while True:
        try:
            sum(range(100))
        except:
            pass

@udf(input_types=['STRING'], result_type='BIGINT')
def swallow_str_rows(x):
    while True:
        try:
            sum(range(100))
        except:
            pass

@udf(input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
def swallow_pandas(x):
    while True:
        try:
            sum(range(100))
        except:
            pass

@udf(input_types=['DOUBLE'], result_type='BIGINT')
def sleep_in_c(seconds):
    time.sleep(seconds)
    return 1

@udf(input_types=['BIGINT'], result_type='BIGINT')
def short(x):
    s = 0
    for i in range(x):
        s += i
    return s

@udf(input_types=['DOUBLE', 'BIGINT'], result_type='BIGINT')
def sleep_steps(step, x):
    """Sleep with the GIL released, in steps (interruptible between them)."""
    for _ in range(200):
        time.sleep(step)
    return x

@udf(input_types=['DOUBLE', 'BIGINT'], result_type='BIGINT')
def sleep_then(seconds, x):
    time.sleep(seconds)
    return x

_ticks = 0
_stop = threading.Event()

def _ticker():
    global _ticks
    while not _stop.is_set():
        _ticks += 1
        time.sleep(0.001)

@udf(result_type='BIGINT')
def start_thread():
    _stop.clear()
    threading.Thread(target=_ticker, daemon=True).start()
    return 0

@udf(result_type='BIGINT')
def ticks():
    return _ticks

@udf(result_type='BIGINT')
def stop_thread():
    _stop.set()
    return 0

@udf(result_type='BIGINT')
def calls_exit():
    sys.exit(3)

@udf(result_type='BIGINT')
def raises_keyboard_interrupt():
    raise KeyboardInterrupt("from the UDF")

@udf(result_type='BIGINT')
def raises_system_exit():
    raise SystemExit("bye")

@udf(result_type='BOOLEAN')
def on_main_thread():
    return threading.current_thread() is threading.main_thread()

@udf(result_type='STRING')
def takes_sigterm():
    signal.signal(signal.SIGTERM, lambda *a: None)
    return "installed"

class SwallowingOpen(ScalarFunction):
    def open(self, function_context):
        while True:
            try:
                sum(range(100))
            except:
                pass

    def eval(self, x):
        return x

swallowing_open = udf(SwallowingOpen(), input_types=['BIGINT'], result_type='BIGINT')

class SwallowingSum(AggregateFunction):
    def create_accumulator(self):
        return [0]

    def accumulate(self, acc, x):
        if x < 0:
            while True:
                try:
                    sum(range(100))
                except:
                    pass
        acc[0] += x

    def get_value(self, acc):
        return acc[0]

swallowing_sum = udaf(SwallowingSum(), input_types=['BIGINT'], result_type='BIGINT')
`

func cancelModule(t *testing.T, cfg Config) *Module {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return loadModule(t, cfg, "hostile_cancel.py", hostileCancelSource)
}

// cancelLimit is how long after its deadline a cancelled call that runs
// bytecode may take to return: generous for -race on a loaded machine; the
// point is "not seconds".
const cancelLimit = 500 * time.Millisecond

// wantCancelled checks that err is ctx's deadline error naming the function,
// returned within cancelLimit of the deadline.
func wantCancelled(t *testing.T, ctx context.Context, err error, function string) {
	t.Helper()
	late := time.Since(deadlineOf(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: want DeadlineExceeded, got %v", function, err)
	}
	if late > cancelLimit {
		t.Errorf("%s: returned %v after the deadline", function, late)
	}
	wantMessage(t, err, `"`+function+`"`)
}

// callWithin calls name with a deadline of d.
func callWithin(t *testing.T, m *Module, d time.Duration, name string, args ...any) (context.Context, error) {
	t.Helper()
	f := function(t, m, name)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	v, err := f.Call(ctx, args...)
	if err == nil {
		t.Fatalf("%s returned %v despite its deadline", name, v)
	}
	return ctx, err
}

func TestHostileDeadlineWhileQueued(t *testing.T) {
	for _, width := range []int{1, 3} {
		m := cancelModule(t, Config{Concurrency: width})
		hold, bump := function(t, m, "hold"), function(t, m, "bump")
		before := call(t, m, "ran").(int64)
		holdCtx, stopHolding := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range width {
			wg.Go(func() {
				if _, err := hold.Call(holdCtx, 30.0); !errors.Is(err, context.Canceled) {
					t.Errorf("width %d: hold: %v", width, err)
				}
			})
		}
		waitFor(t, func() bool { return gateFull(gateOf(m.engine)) })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := bump.Call(ctx)
		wantCancelled(t, ctx, err, "bump")
		wantMessage(t, err, "waiting for the interpreter")
		if _, err := bump.Call(ctx); !errors.Is(err, context.DeadlineExceeded) { // done already
			t.Errorf("width %d: a call with a done context: %v", width, err)
		}
		cancel()
		stopHolding()
		wg.Wait()
		if got := call(t, m, "ran").(int64); got != before {
			t.Errorf("width %d: a call that timed out in the queue ran later (%d calls ran)", width, got-before)
		}
		stillWorks(t, m)
	}
}

// gateFull reports whether every slot of g is taken.
func gateFull(g *gate) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.freeFrames() == 0
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("timed out waiting")
		}
	}
}

// Each of these UDFs swallows Cancelled one way or another; the call must
// still end with the deadline's error, promptly, and never with a value.
func TestHostileSwallowedCancellation(t *testing.T) {
	m := cancelModule(t, Config{})
	for _, name := range []string{"bare_except_loop", "finally_loop", "del_swallows", "del_raises",
		"catch_and_return", "catch_and_raise_other"} {
		t.Run(name, func(t *testing.T) {
			ctx, err := callWithin(t, m, 200*time.Millisecond, name)
			wantCancelled(t, ctx, err, name)
			stillWorks(t, m)
		})
	}
}

func TestHostileSwallowedCancellationInBatches(t *testing.T) {
	m := cancelModule(t, Config{})
	mem := checkedAllocator(t)
	ints := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
	strs := batchOf(t, mem, arrow.BinaryTypes.String, `["a", "b"]`)
	defer ints.Release()
	defer strs.Release()
	for _, c := range []struct {
		name  string
		batch arrow.RecordBatch
	}{{"swallow_rows", ints}, {"swallow_str_rows", strs}, {"swallow_pandas", ints}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			res, err := function(t, m, c.name).Eval(ctx, c.batch)
			if err == nil {
				res.Release()
			}
			wantCancelled(t, ctx, err, c.name)
			if c.name != "swallow_pandas" {
				res, errs, err := function(t, m, c.name).EvalRowErrors(ctx, c.batch)
				if err == nil {
					res.Release()
					errs.Release()
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("EvalRowErrors: %v", err)
				}
			}
		})
	}
	if got := eval(t, m, "add", batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2]`, arrow.PrimitiveTypes.Int64, `[2, 3]`)); got != `[3,5]` {
		t.Errorf("after the cancelled batches: %s", got)
	}
}

func TestHostileSwallowedCancellationInAccumulate(t *testing.T) {
	m := cancelModule(t, Config{})
	agg, err := m.Aggregate(context.Background(), "swallowing_sum")
	if err != nil {
		t.Fatal(err)
	}
	defer agg.Close()
	bg := context.Background()
	if err := agg.Accumulate(bg, "k", int64(5)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	err = agg.Accumulate(ctx, "k", int64(-1))
	late := time.Since(deadlineOf(ctx))
	if !errors.Is(err, context.DeadlineExceeded) || late > cancelLimit {
		t.Fatalf("accumulate: %v, %v after the deadline", err, late)
	}
	if err := agg.Accumulate(bg, "k", int64(2)); err != nil {
		t.Fatal(err)
	}
	if v, err := agg.Value(bg, "k"); err != nil || v != int64(7) {
		t.Errorf("value after the cancelled accumulate = %v, %v; want 7", v, err)
	}
}

// Calls that end on their own race with their deadline: each returns the
// right value or the deadline's error, nothing else, and no late Cancelled
// leaks into a later call.
func TestHostileCancellationRacesCompletion(t *testing.T) {
	m := cancelModule(t, Config{})
	short := function(t, m, "short")
	want := func(x int64) int64 { return x * (x - 1) / 2 }
	var values, cancelled int
	for i := range 1000 {
		x := int64(rand.IntN(20000))
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(1000))*time.Microsecond)
		v, err := short.Call(ctx, x)
		cancel()
		switch {
		case err == nil && v == want(x):
			values++
		case err == nil:
			t.Fatalf("call %d: short(%d) = %v, want %d", i, x, v, want(x))
		case errors.Is(err, context.DeadlineExceeded):
			cancelled++
		default:
			t.Fatalf("call %d: short(%d): %v", i, x, err)
		}
		if i%100 == 0 {
			if v, err := short.Call(context.Background(), x); err != nil || v != want(x) {
				t.Fatalf("after call %d: short(%d) = %v, %v", i, x, v, err)
			}
		}
	}
	t.Logf("%d values, %d cancelled", values, cancelled)
	for range 100 { // nothing pending fires later
		stillWorks(t, m)
	}
}

func TestHostileCancelDuringOpen(t *testing.T) {
	m := cancelModule(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	f, err := m.Function(ctx, "swallowing_open")
	late := time.Since(deadlineOf(ctx))
	if !errors.Is(err, context.DeadlineExceeded) || late > cancelLimit {
		t.Fatalf("open: %v, %v (%v after the deadline)", f, err, late)
	}
	stillWorks(t, m)
}

// A UDF that starts a Python thread: the thread keeps running after the
// call, and a cancelled call does not hit it.
func TestHostileUDFThreadKeepsRunning(t *testing.T) {
	m := cancelModule(t, Config{})
	call(t, m, "start_thread")
	defer call(t, m, "stop_thread")
	ctx, err := callWithin(t, m, 100*time.Millisecond, "bare_except_loop")
	wantCancelled(t, ctx, err, "bare_except_loop")
	first := call(t, m, "ticks").(int64)
	time.Sleep(50 * time.Millisecond)
	if later := call(t, m, "ticks").(int64); later <= first {
		t.Errorf("the UDF's thread stopped (ticks %d, then %d)", first, later)
	}
	stillWorks(t, m)
}

// sys.exit, KeyboardInterrupt and SystemExit are exceptions like others in
// thread mode: the call fails with a PythonError, the host lives on.
func TestHostileExitAndInterruptExceptions(t *testing.T) {
	m := cancelModule(t, Config{})
	for _, c := range []struct{ name, typ, message string }{
		{"calls_exit", "SystemExit", "3"},
		{"raises_keyboard_interrupt", "KeyboardInterrupt", "from the UDF"},
		{"raises_system_exit", "SystemExit", "bye"},
	} {
		err := callErr(t, function(t, m, c.name))
		var pe *bridge.PythonError
		if !errors.As(err, &pe) || pe.Type != c.typ || pe.Message != c.message || pe.Function != c.name {
			t.Errorf("%s: %#v", c.name, err)
		}
		stillWorks(t, m)
	}
}

// No user call runs on the interpreter's main thread, so signal.signal always
// fails as CPython makes it fail off the main thread, and Go keeps SIGTERM.
func TestHostileSignalHandlerRefused(t *testing.T) {
	m := cancelModule(t, Config{Concurrency: 4})
	takes, main := function(t, m, "takes_sigterm"), function(t, m, "on_main_thread")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				runtime.Gosched()
				if v, err := main.Call(context.Background()); err != nil || v != false {
					t.Errorf("a call ran on the interpreter's main thread: %v, %v", v, err)
					return
				}
				_, err := takes.Call(context.Background())
				var pe *bridge.PythonError
				if !errors.As(err, &pe) || pe.Type != "ValueError" || !strings.Contains(pe.Message, "main thread") {
					t.Errorf("signal.signal in a UDF: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := make(chan os.Signal, 1)
	signal.Notify(got, syscall.SIGTERM)
	defer signal.Stop(got)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("Go's signal.Notify did not receive SIGTERM")
	}
	stillWorks(t, m)
}

// With Concurrency > 1, calls that release the GIL overlap; cancelling one
// interrupts that one only.
func TestHostileCancelOneOfConcurrentGILReleasingCalls(t *testing.T) {
	m := cancelModule(t, Config{Concurrency: 4})
	steps, then := function(t, m, "sleep_steps"), function(t, m, "sleep_then")
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if v, err := then.Call(context.Background(), 0.3, int64(i)); err != nil || v != int64(i) {
				t.Errorf("call %d alongside the cancelled one = %v, %v", i, v, err)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := steps.Call(ctx, 0.01, int64(9))
	wantCancelled(t, ctx, err, "sleep_steps")
	wg.Wait()
	stillWorks(t, m)
}

// A call blocked in C (time.sleep) in thread mode cannot be interrupted: an
// asynchronous exception is only checked between bytecodes. It returns when
// the sleep ends, with the deadline's error, not its value. Process mode
// interrupts the sleep itself (SIGINT wakes it).
func TestHostileCancelBlockedInC(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := cancelModule(t, Config{})
		sleep := 0.6
		if modeOf(t.Name()) == Process {
			sleep = 30
		}
		start := time.Now()
		ctx, err := callWithin(t, m, 50*time.Millisecond, "sleep_in_c", sleep)
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want DeadlineExceeded, got %v", err)
		}
		if modeOf(t.Name()) == Process {
			wantCancelled(t, ctx, err, "sleep_in_c")
		} else if took < 500*time.Millisecond {
			t.Errorf("thread mode interrupted time.sleep after %v: the README says it cannot", took)
		}
		stillWorks(t, m)
	})
}

const slowdownSource = `
import time
from pyudf import udf

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b

@udf(input_types=['BIGINT'], result_type='BIGINT')
def loop(n):
    """The CPU time of a tight loop of n iterations in bytecode, in ns."""
    start = time.thread_time_ns()
    for _ in range(n):
        pass
    return time.thread_time_ns() - start

@udf(input_types=['BIGINT'], result_type='BIGINT')
def loop_in_c(n):
    """The CPU time of a loop of n iterations in C (sum over a range, which
    never enters the eval loop), in ns."""
    start = time.thread_time_ns()
    sum(range(n))
    return time.thread_time_ns() - start

@udf(result_type='BIGINT')
def spin():
    while True:
        pass

@udf(result_type='BIGINT')
def swallow():
    while True:
        try:
            sum(range(100))
        except:
            pass
`

// perCall is the CPU time of the process for one call of fn: the least of
// rounds rounds of n calls, spread over time. CPU time, not wall time, so that
// other processes taking the CPUs do not count, only what this one spends.
func perCall(rounds, n int, fn func()) time.Duration {
	best := time.Duration(1 << 62)
	for range rounds {
		start := processCPU()
		for range n {
			fn()
		}
		best = min(best, (processCPU()-start)/time.Duration(n))
		time.Sleep(2 * time.Millisecond)
	}
	return best
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// After a cancellation the interpreter runs as fast as before (CPython 3.10-3.12
// kept their eval loop's "async exception" signal up for good when a pending
// exception was withdrawn with PyThreadState_SetAsyncExc(id, NULL)).
func TestHostileNoSlowdownAfterCancellation(t *testing.T) {
	m := loadModule(t, Config{}, "slowdown.py", slowdownSource)
	add, bytecodeLoop, cLoop := function(t, m, "add"), function(t, m, "loop"), function(t, m, "loop_in_c")
	bg := context.Background()
	args := []bridge.Value{bridge.Int64(2), bridge.Int64(3)}
	// A loop's cost is the least CPU time of a bytecode loop over the least
	// of a loop in C run beside it: other load on the machine (a busy sibling
	// hyperthread slows CPU time too) slows both; a slow eval loop only the first.
	measure := func() (row time.Duration, loopCost float64) {
		row = perCall(60, 300, func() {
			if v, err := add.CallValues(bg, args...); err != nil || v != bridge.Int64(5) {
				t.Fatalf("add = %v, %v", v, err)
			}
		})
		cpu := func(f *Function) int64 {
			v, err := f.Call(bg, int64(10000))
			if err != nil {
				t.Fatal(err)
			}
			return v.(int64)
		}
		inPython, inC := int64(1<<62), int64(1<<62)
		for range 40 {
			inPython, inC = min(inPython, cpu(bytecodeLoop)), min(inC, cpu(cLoop))
			time.Sleep(time.Millisecond)
		}
		return row, float64(inPython) / float64(inC)
	}
	measure() // warm up
	rowBefore, loopBefore := measure()
	row, loop := measure()
	rowBefore, loopBefore = min(rowBefore, row), min(loopBefore, loop)
	for _, name := range []string{"spin", "swallow", "spin"} { // swallow is trapped
		ctx, err := callWithin(t, m, 20*time.Millisecond, name)
		wantCancelled(t, ctx, err, name)
	}
	// What load on the machine is left in a measurement makes it slower for a
	// while; the bug makes every one slower. So measure again, up to 5 times,
	// keeping the best.
	rowAfter, loopAfter := measure()
	for try := 0; try < 4 && (loopAfter > 1.1*loopBefore || float64(rowAfter) > 1.2*float64(rowBefore)); try++ {
		time.Sleep(200 * time.Millisecond)
		row, loop = measure()
		rowAfter, loopAfter = min(rowAfter, row), min(loopAfter, loop)
	}
	t.Logf("row call %v before, %v after; a 10K-iteration loop costs %.2f loops in C before, %.2f after (CPU time)", rowBefore, rowAfter, loopBefore, loopAfter)
	// The bug made this loop 1.3-1.5x slower on 3.12.
	if r := loopAfter / loopBefore; r > 1.2 {
		t.Errorf("a Python loop is %.2fx slower after a cancellation", r)
	}
	if r := float64(rowAfter) / float64(rowBefore); r > 1.5 {
		t.Errorf("a row call is %.2fx slower after a cancellation", r)
	}
}

// A call whose context is done before it starts never runs.
func TestHostileCancelledBeforeStart(t *testing.T) {
	m := cancelModule(t, Config{})
	bump := function(t, m, "bump")
	before := call(t, m, "ran").(int64)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		if _, err := bump.Call(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("a call with a cancelled context: %v", err)
		}
	}
	if got := call(t, m, "ran").(int64); got != before {
		t.Errorf("%d calls with a cancelled context ran", got-before)
	}
	stillWorks(t, m)
}

// Module code that swallows Cancelled at import: LoadSource still ends with
// the deadline's error, and the engine loads other code after.
func TestHostileCancelDuringLoad(t *testing.T) {
	e := newEngine(t, Config{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := e.LoadSource(ctx, "swallowing_import.py", "while True:\n    try:\n        sum(range(100))\n    except:\n        pass\n")
	late := time.Since(deadlineOf(ctx))
	if !errors.Is(err, context.DeadlineExceeded) || late > cancelLimit {
		t.Fatalf("load: %v, %v after the deadline", err, late)
	}
	m, err := e.LoadSource(context.Background(), "after.py", hostileCancelSource)
	if err != nil {
		t.Fatal(err)
	}
	stillWorks(t, m)
}

// Goroutines at Concurrency 2 mix quick calls, swallowing calls and random
// deadlines: every call returns its right value or its context's error.
func TestHostileCancellationStorm(t *testing.T) {
	m := cancelModule(t, Config{Concurrency: 2})
	short, swallow := function(t, m, "short"), function(t, m, "bare_except_loop")
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 60 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(3000))*time.Microsecond)
				if (w+i)%10 == 0 {
					if _, err := swallow.Call(ctx); !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("swallowing call: %v", err)
					}
				} else {
					x := int64(rand.IntN(5000))
					v, err := short.Call(ctx, x)
					if (err != nil || v != x*(x-1)/2) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("short(%d) = %v, %v", x, v, err)
					}
				}
				cancel()
			}
		})
	}
	wg.Wait()
	for range 20 {
		stillWorks(t, m)
	}
}

// TestHostileInterrupterOfAPanickedCallSparesTheNext: a call that panics
// before reaching C (as setIn does when C memory runs out), recovered by the
// caller while its context ends, leaves no interrupter that would cancel the
// frame's next, innocent call.
func TestHostileInterrupterOfAPanickedCallSparesTheNext(t *testing.T) {
	m := cancelModule(t, Config{})
	fr, err := gateOf(m.engine).enter(context.Background(), "hold")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	func() {
		defer func() { _ = recover() }()
		fr.run(ctx, func() cgo.Status {
			cancel()
			time.Sleep(30 * time.Millisecond) // the interrupter is running now
			panic("out of C memory")
		})
	}()
	gateOf(m.engine).leave(fr)
	// The next call on the frame takes 100 ms: an interrupter left behind
	// (every 10 ms) would land in it.
	if v, err := function(t, m, "hold").Call(context.Background(), 0.1); err != nil || v != int64(1) {
		t.Fatalf("the call after the panicked one: %v, %v", v, err)
	}
	stillWorks(t, m)
}
