package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/cgo"
)

// subinterpreters says whether this CPython has sub-interpreters with their
// own GIL (3.12+).
func subinterpreters() bool { return cgo.LinkedVersion >= "3.12" && len(cgo.LinkedVersion) == 4 }

const poolUDFs = `
import json, threading
from pyflink.table.udf import ScalarFunction, udf

@udf(input_types=['STRING'], result_type='STRING')
def json_lower(s):
    record = json.loads(s)
    return json.dumps({k: v.lower() if isinstance(v, str) else v for k, v in record.items()})

_token = object()  # one per copy of the module: per interpreter

@udf(input_types=['BIGINT'], result_type='BIGINT')
def where(x):
    return id(_token)

calls = 0

@udf(input_types=['BIGINT'], result_type='ARRAY<BIGINT>')
def count(x):
    global calls
    calls += 1
    return [id(_token), calls]

@udf(input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
def calls_here(x):
    return x * 0 + calls

@udf(input_types=['BIGINT'], result_type='BIGINT')
def odd_fails(x):
    if x % 2:
        raise ValueError("odd input %d" % x)
    return x * 10

@udf(input_types=['BIGINT'], result_type='BIGINT')
def spin(x):
    while True:
        x += 1

class Offset(ScalarFunction):
    def open(self, function_context):
        self.offset = int(function_context.get_job_parameter("offset", "0"))
        self.opened_on = threading.get_ident()

    def eval(self, x):
        assert threading.get_ident() == self.opened_on
        return x + self.offset

offset = udf(Offset(), input_types=['BIGINT'], result_type='BIGINT')
`

// TestSubinterpretersRefusedBefore312: on CPython 3.10 and 3.11 New refuses
// the mode, naming the version. (On 3.12+ the pool tests below run.)
func TestSubinterpretersRefusedBefore312(t *testing.T) {
	if subinterpreters() {
		e := newEngine(t, Config{Mode: Subinterpreters, Interpreters: 1})
		if v, _ := e.Python(); !strings.HasPrefix(v, cgo.LinkedVersion) {
			t.Errorf("Python() = %q on libpython %s", v, cgo.LinkedVersion)
		}
		return
	}
	_, err := New(context.Background(), Config{Mode: Subinterpreters})
	var pe *bridge.PythonError
	if !errors.As(err, &pe) || pe.Type != "NotSupportedError" || !strings.Contains(pe.Message, cgo.LinkedVersion) ||
		!strings.Contains(pe.Message, "3.12") {
		t.Fatalf("New(Subinterpreters) on %s: %v; want a NotSupportedError naming the version and 3.12", cgo.LinkedVersion, err)
	}
	// The engine of another mode still starts.
	if v, err := loadModule(t, Config{}, "pool.py", poolUDFs).mustCall(t, "odd_fails", int64(2)); v != int64(20) || err != nil {
		t.Fatalf("after the refusal: odd_fails(2) = %v, %v", v, err)
	}
}

func (m *Module) mustCall(t *testing.T, name string, args ...any) (any, error) {
	t.Helper()
	f, err := m.Function(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return f.Call(context.Background(), args...)
}

func needSubinterpreters(t *testing.T) {
	t.Helper()
	if !subinterpreters() {
		t.Skipf("CPython %s has no sub-interpreters with their own GIL: TestSubinterpretersRefusedBefore312 checks the refusal", cgo.LinkedVersion)
	}
}

// TestSubinterpretersSpreadRowCalls: row calls from many goroutines run in
// every sub-interpreter, with the right results; an instance with open()
// sees one thread for open and every call (Config.Affinity), the others run
// on their callers' threads.
func TestSubinterpretersSpreadRowCalls(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	m := loadModule(t, Config{Mode: Subinterpreters, Interpreters: 2, JobParameters: map[string]string{"offset": "7"}},
		"pool.py", poolUDFs)
	lower, where, offset := mustFunction(t, m, "json_lower"), mustFunction(t, m, "where"), mustFunction(t, m, "offset")
	var mu sync.Mutex
	threads := map[int64]bool{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				in := fmt.Sprintf(`{"name": "Go%d", "n": %d}`, g, i)
				want := fmt.Sprintf(`{"name": "go%d", "n": %d}`, g, i)
				if v, err := lower.Call(ctx, in); err != nil || v != want {
					t.Errorf("json_lower(%s) = %v, %v", in, v, err)
					return
				}
				if v, err := offset.Call(ctx, int64(i)); err != nil || v != int64(i+7) {
					t.Errorf("offset(%d) = %v, %v", i, v, err)
					return
				}
				v, err := where.Call(ctx, int64(i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				threads[v.(int64)] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(threads) != 2 {
		t.Errorf("row calls ran in %d interpreters, want 2 (the sub-interpreters)", len(threads))
	}
}

// TestSubinterpretersGlobalsPerInterpreter: every interpreter has its own
// copy of a module's globals, as worker processes do: row calls count in
// their sub-interpreter's copy, and the main interpreter's (where a Pandas
// UDF runs) stays untouched.
func TestSubinterpretersGlobalsPerInterpreter(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	m := loadModule(t, Config{Mode: Subinterpreters, Interpreters: 2}, "pool.py", poolUDFs)
	count := mustFunction(t, m, "count")
	var mu sync.Mutex
	highest := map[int64]int64{} // interpreter (its module copy's token) -> its highest count
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				v, err := count.Call(ctx, int64(0))
				if err != nil {
					t.Error(err)
					return
				}
				pair := v.([]any)
				mu.Lock()
				highest[pair[0].(int64)] = max(highest[pair[0].(int64)], pair[1].(int64))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	total := int64(0)
	for _, n := range highest {
		total += n
	}
	if total != 400 || len(highest) > 2 {
		t.Errorf("counts per interpreter %v: want their own counts, 400 in all, in at most 2", highest)
	}
	if got := eval(t, m, "calls_here", batchOf(t, memory.NewGoAllocator(), arrow.PrimitiveTypes.Int64, `[1]`)); got != `[0]` {
		t.Errorf("the main interpreter's copy counted %s calls, want [0]", got)
	}
}

// TestSubinterpretersNumpyModuleFallsBack: a module that imports numpy runs
// on the main interpreter, with one log line naming the refused import; a
// Pandas UDF and batches work there.
func TestSubinterpretersNumpyModuleFallsBack(t *testing.T) {
	needSubinterpreters(t)
	h := &recordHandler{level: slog.LevelInfo}
	m := loadModule(t, Config{Mode: Subinterpreters, Interpreters: 2, Logger: slog.New(h)}, "np_udfs.py", `
import numpy as np
from pyflink.table.udf import udf

@udf(input_types=['BIGINT'], result_type='BIGINT')
def square(x):
    return int(np.int64(x) ** 2)
`)
	if v, err := m.mustCall(t, "square", int64(9)); err != nil || v != int64(81) {
		t.Fatalf("square(9) = %v, %v", v, err)
	}
	var found []string
	for _, r := range h.all() {
		if strings.Contains(r, "main interpreter") {
			found = append(found, r)
		}
	}
	if len(found) != 1 || !strings.Contains(found[0], "numpy") || !strings.Contains(found[0], "subinterpreters") {
		t.Errorf("log lines about the fallback: %q; want one naming numpy and why", found)
	}
}

// TestSubinterpretersExceptionsStayInTheirCall: one interpreter's exception
// disturbs neither the others nor later calls.
func TestSubinterpretersExceptionsStayInTheirCall(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	f := mustFunction(t, loadModule(t, Config{Mode: Subinterpreters, Interpreters: 2}, "pool.py", poolUDFs), "odd_fails")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				x := int64(g*1000 + i)
				v, err := f.Call(ctx, x)
				var pe *bridge.PythonError
				switch {
				case x%2 == 1 && (!errors.As(err, &pe) || pe.Type != "ValueError" || pe.Message != fmt.Sprintf("odd input %d", x)):
					t.Errorf("odd_fails(%d) = %v, %v; want its ValueError", x, v, err)
					return
				case x%2 == 0 && (err != nil || v != x*10):
					t.Errorf("odd_fails(%d) = %v, %v", x, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestSubinterpretersCancelSpinningCall: ctx interrupts a UDF spinning in a
// sub-interpreter; the pool keeps working.
func TestSubinterpretersCancelSpinningCall(t *testing.T) {
	needSubinterpreters(t)
	m := loadModule(t, Config{Mode: Subinterpreters, Interpreters: 2}, "pool.py", poolUDFs)
	spin, odd := mustFunction(t, m, "spin"), mustFunction(t, m, "odd_fails")
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		_, err := spin.Call(ctx, int64(1))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("spin: %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the interrupt took %v", d)
		}
	}
	for i := range 4 {
		if v, err := odd.Call(context.Background(), int64(2*i)); err != nil || v != int64(20*i) {
			t.Errorf("after the interrupts: odd_fails(%d) = %v, %v", 2*i, v, err)
		}
	}
}

// TestSubinterpretersSharedByEngines: the sub-interpreters belong to the
// process: engines that come and go reuse them, and leave no interpreter,
// thread state or instance behind.
func TestSubinterpretersSharedByEngines(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	newPoolEngine := func() *Engine {
		e, err := New(ctx, Config{Mode: Subinterpreters, Interpreters: 2})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	newPoolEngine().Close() // the process's first two sub-interpreters now exist
	round := func(i int) {
		e := newPoolEngine()
		m, err := e.LoadSource(ctx, "pool.py", poolUDFs)
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.Function(ctx, "odd_fails")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for x := range 50 {
					if v, err := f.Call(ctx, int64(2*x)); err != nil || v != int64(20*x) {
						t.Errorf("engine %d: odd_fails(%d) = %v, %v", i, 2*x, v, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 { // warm: the calling threads' thread states for the sub-interpreters exist
		round(i)
	}
	interps, states := cgo.Interpreters()
	threads := osThreads(t)
	for i := range 10 {
		round(i)
	}
	// A new OS thread may add a thread state for each sub-interpreter it
	// enters and one for the main interpreter; nothing else may grow.
	grown := max(osThreads(t)-threads, 0)
	if n, s := cgo.Interpreters(); n != interps || int64(s) > int64(states)+3*grown+2 {
		t.Errorf("after 10 more engines: %d interpreters and %d thread states (%d more OS threads), %d and %d before",
			n, s, grown, interps, states)
	}
	for _, s := range subsAll {
		s.lock(context.Background())
		left := len(s.functions) + len(s.modules)
		s.unlock()
		if left != 0 {
			t.Errorf("sub-interpreter %d still maps %d functions and modules of closed engines", s.index, left)
		}
	}
}
