package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	interps, _ := cgo.Interpreters()
	for i := range 10 {
		round(i)
	}
	// Each OS thread keeps at most one thread state per interpreter it has
	// entered, until it exits (interp.h): a state repeated on one thread, or
	// one whose thread is gone, leaked.
	alive := osThreadIDs(t)
	states := cgo.ThreadStates()
	for id := range osThreadIDs(t) { // a thread may have started in between
		alive[id] = true
	}
	seen := map[cgo.ThreadState]bool{}
	for _, ts := range states {
		if seen[ts] {
			t.Errorf("OS thread %d has more than one thread state in interpreter %d", ts.OSThread, ts.Interpreter)
		}
		seen[ts] = true
		if !alive[strconv.Itoa(ts.OSThread)] {
			t.Errorf("interpreter %d keeps a thread state of OS thread %d, which has exited", ts.Interpreter, ts.OSThread)
		}
	}
	if n, _ := cgo.Interpreters(); n != interps {
		t.Errorf("after 10 more engines: %d interpreters, %d before", n, interps)
	}
	t.Logf("%d thread states on %d OS threads", len(states), len(alive))
	for _, s := range subsAll {
		s.lock(context.Background())
		left := len(s.functions) + len(s.modules)
		s.unlock()
		if left != 0 {
			t.Errorf("sub-interpreter %d still maps %d functions and modules of closed engines", s.index, left)
		}
	}
}

// pinnedUDFs: aggregates that say which interpreter holds each accumulator.
const pinnedUDFs = `
from pyflink.table.udf import AggregateFunction, TableAggregateFunction, udaf, udtaf

_token = object()  # one per copy of the module: per interpreter
accumulated = 0    # rows accumulated in this interpreter

class Where(AggregateFunction):
    """Sums x; its value is [sum, the interpreter that holds the
    accumulator, the rows accumulated there]."""
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, x):
        global accumulated
        if x < 0:
            raise ValueError("negative input %d" % x)
        accumulated += 1
        acc[0] += x
    def retract(self, acc, x):
        acc[0] -= x
    def merge(self, acc, accs):
        for other in accs:
            if other[0] == 13:
                raise RuntimeError("will not merge 13")
            acc[0] += other[0]
    def get_value(self, acc):
        return [acc[0], id(_token), accumulated]

where = udaf(Where(), input_types=['BIGINT'], result_type='ARRAY<BIGINT>')

class Top2(TableAggregateFunction):
    def create_accumulator(self):
        return []
    def accumulate(self, acc, x):
        acc.append(x)
        acc.sort(reverse=True)
        del acc[2:]
    def emit_value(self, acc):
        for x in acc:
            yield x, id(_token)

top2 = udtaf(Top2(), input_types=['BIGINT'], result_type='ROW<x BIGINT, interp BIGINT>')
`

// whereOf is Where's value of key: its sum and interpreter.
func whereOf(t *testing.T, a *Aggregate, key any) (sum, interp int64) {
	t.Helper()
	v, err := a.Value(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	l := v.([]any)
	return l[0].(int64), l[1].(int64)
}

// TestSubinterpretersAggregateKeysPinned: each key's accumulator lives in one
// sub-interpreter, keys spread over all of them, and concurrent calls on
// different keys give the same sums as thread mode.
func TestSubinterpretersAggregateKeysPinned(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	m := loadModule(t, Config{Mode: Subinterpreters, Interpreters: 3}, "pinned.py", pinnedUDFs)
	a := openAggregate(t, m, "where")
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("k%d", (g*200+i)%30)
				if err := a.Accumulate(ctx, key, int64(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := map[string]int64{}
	for g := range 6 {
		for i := range 200 {
			want[fmt.Sprintf("k%d", (g*200+i)%30)] += int64(i)
		}
	}
	interps := map[int64]int{}
	for key, sum := range want {
		got, interp := whereOf(t, a, key)
		if got != sum {
			t.Errorf("%s: sum %d, want %d", key, got, sum)
		}
		interps[interp]++
	}
	if len(interps) != 3 {
		t.Errorf("30 keys live in %d interpreters (%v), want 3", len(interps), interps)
	}
	var rows int64
	for interp := range interps { // the rows accumulated in each interpreter add up to all
		for key := range want {
			if v := value(t, a, key).([]any); v[1] == interp {
				rows += v[2].(int64)
				break
			}
		}
	}
	if rows != 1200 {
		t.Errorf("the interpreters accumulated %d rows, want 1200", rows)
	}
	if n, err := a.Len(ctx); err != nil || n != 30 {
		t.Errorf("Len = %d, %v, want 30", n, err)
	}
	if ok, err := a.Remove(ctx, "k1"); err != nil || !ok {
		t.Errorf("Remove(k1) = %v, %v", ok, err)
	}
	if n, err := a.Len(ctx); err != nil || n != 29 {
		t.Errorf("Len after Remove = %d, %v, want 29", n, err)
	}
}

// TestSubinterpretersAggregateSnapshotAcrossPoolSizes: a snapshot of a pool
// holds every key once and restores into a pool of another size, and into
// thread mode, with the same values; a thread-mode snapshot restores into a
// pool.
func TestSubinterpretersAggregateSnapshotAcrossPoolSizes(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	fill := func(a *Aggregate) {
		for i := range 300 {
			if err := a.Accumulate(ctx, int64(i%40), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 20 {
			if err := a.Retract(ctx, int64(i), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	sums := func(a *Aggregate) map[int64]int64 {
		out := map[int64]int64{}
		for k := range int64(40) {
			out[k], _ = whereOf(t, a, k)
		}
		if n, err := a.Len(ctx); err != nil || n != 40 {
			t.Errorf("Len = %d, %v, want 40", n, err)
		}
		return out
	}
	src := openAggregate(t, loadModule(t, Config{Mode: Subinterpreters, Interpreters: 2}, "pinned.py", pinnedUDFs), "where")
	fill(src)
	want := sums(src)
	snapshot, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{{Mode: Subinterpreters, Interpreters: 3}, {Mode: Subinterpreters, Interpreters: 1}, {Mode: Thread}} {
		dst := openAggregate(t, loadModule(t, cfg, "pinned.py", pinnedUDFs), "where")
		if n, err := dst.Restore(ctx, snapshot); err != nil || n != 40 {
			t.Fatalf("%v/%d: Restore = %d, %v, want 40 keys", cfg.Mode, cfg.Interpreters, n, err)
		}
		if got := sums(dst); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%v/%d: restored %v, want %v", cfg.Mode, cfg.Interpreters, got, want)
		}
		if cfg.Mode == Subinterpreters && cfg.Interpreters == 3 { // accumulating goes on where each key was put
			if err := dst.Accumulate(ctx, int64(5), int64(1)); err != nil {
				t.Fatal(err)
			}
			if sum, _ := whereOf(t, dst, int64(5)); sum != want[5]+1 {
				t.Errorf("after restore, key 5: %d, want %d", sum, want[5]+1)
			}
		}
	}
	// thread mode → pool
	thread := openAggregate(t, loadModule(t, Config{Mode: Thread}, "pinned.py", pinnedUDFs), "where")
	fill(thread)
	snapshot, err = thread.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dst := openAggregate(t, loadModule(t, Config{Mode: Subinterpreters, Interpreters: 3}, "pinned.py", pinnedUDFs), "where")
	if n, err := dst.Restore(ctx, snapshot); err != nil || n != 40 {
		t.Fatalf("Restore of a thread-mode snapshot = %d, %v", n, err)
	}
	if got := sums(dst); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restored from thread mode %v, want %v", got, want)
	}
	// bytes that are not a snapshot change nothing
	var pe *bridge.PythonError
	if _, err := dst.Restore(ctx, []byte("not a snapshot")); !errors.As(err, &pe) || pe.Type != "ValueError" ||
		!strings.Contains(pe.Message, "not a pyudf aggregate snapshot") {
		t.Errorf("Restore(junk) = %v, want ValueError", err)
	}
	if got := sums(dst); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a rejected restore %v, want %v", got, want)
	}
}

// TestSubinterpretersAggregateMergeAcrossInterpreters: Merge moves the
// accumulators of keys in other sub-interpreters; a merge that raises drops
// nothing anywhere.
func TestSubinterpretersAggregateMergeAcrossInterpreters(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	e := newEngine(t, Config{Mode: Subinterpreters, Interpreters: 3})
	m, err := e.LoadSource(ctx, "pinned.py", pinnedUDFs)
	if err != nil {
		t.Fatal(err)
	}
	a := openAggregate(t, m, "where")
	p := e.backend.(*pool)
	homes := map[*sub][]int64{}
	for k := range int64(30) {
		if err := a.Accumulate(ctx, k, k+100); err != nil {
			t.Fatal(err)
		}
		homes[p.home(bridge.Int64(k))] = append(homes[p.home(bridge.Int64(k))], k)
	}
	if len(homes) != 3 {
		t.Fatalf("30 keys in %d sub-interpreters", len(homes))
	}
	into := homes[p.subs[0]][0]
	from := []any{homes[p.subs[1]][0], homes[p.subs[2]][0], homes[p.subs[0]][1], homes[p.subs[2]][1]}
	want := into + 100
	for _, k := range from {
		want += k.(int64) + 100
	}
	if err := a.Merge(ctx, into, from...); err != nil {
		t.Fatal(err)
	}
	if sum, interp := whereOf(t, a, into); sum != want {
		t.Errorf("merged: %d (interpreter %d), want %d", sum, interp, want)
	}
	if n, err := a.Len(ctx); err != nil || n != 26 {
		t.Errorf("Len after merging 4 keys away = %d, %v, want 26", n, err)
	}
	// a failing merge: one source holds 13
	src := homes[p.subs[1]][1]
	if err := a.Retract(ctx, src, src+100-13); err != nil {
		t.Fatal(err)
	}
	other := homes[p.subs[2]][2]
	var pe *bridge.PythonError
	if err := a.Merge(ctx, into, src, other); !errors.As(err, &pe) || pe.Type != "RuntimeError" || !strings.Contains(pe.Message, "will not merge 13") {
		t.Fatalf("Merge with a source of 13 = %v, want the RuntimeError", err)
	}
	if n, err := a.Len(ctx); err != nil || n != 26 {
		t.Errorf("Len after a failed merge = %d, %v, want 26", n, err)
	}
	for key, sum := range map[int64]int64{into: want, other: other + 100, src: 13} {
		if got, _ := whereOf(t, a, key); got != sum {
			t.Errorf("after a failed merge, key %d: %d, want %d", key, got, sum)
		}
	}
	if err := a.Accumulate(ctx, other, int64(1)); err != nil { // still in its own interpreter
		t.Error(err)
	}
}

// TestSubinterpretersAggregateExceptionStaysWithItsKey: a key whose
// accumulate raises keeps its accumulator as it was; other keys, in every
// sub-interpreter, are untouched, and the aggregate keeps working.
func TestSubinterpretersAggregateExceptionStaysWithItsKey(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	a := openAggregate(t, loadModule(t, Config{Mode: Subinterpreters, Interpreters: 2}, "pinned.py", pinnedUDFs), "where")
	for k := range int64(10) {
		if err := a.Accumulate(ctx, k, k); err != nil {
			t.Fatal(err)
		}
	}
	var pe *bridge.PythonError
	if err := a.Accumulate(ctx, int64(3), int64(-1)); !errors.As(err, &pe) || pe.Type != "ValueError" || pe.Message != "negative input -1" {
		t.Fatalf("Accumulate(3, -1) = %v, want ValueError", err)
	}
	for k := range int64(10) {
		if sum, _ := whereOf(t, a, k); sum != k {
			t.Errorf("key %d: %d, want %d", k, sum, k)
		}
	}
	if err := a.Accumulate(ctx, int64(3), int64(4)); err != nil {
		t.Fatal(err)
	}
	if sum, _ := whereOf(t, a, int64(3)); sum != 7 {
		t.Errorf("key 3 after the exception: %d, want 7", sum)
	}
}

// TestSubinterpretersAggregateBatchAndEqualKeys: AccumulateBatch (pyarrow on
// the main interpreter, rows in the sub-interpreters) puts every key where
// the row calls do, whatever Go type the row calls used for it: keys equal in
// Python (1, true, 1.0) have one accumulator, as in thread mode.
func TestSubinterpretersAggregateBatchAndEqualKeys(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	a := openAggregate(t, loadModule(t, Config{Mode: Subinterpreters, Interpreters: 3}, "pinned.py", pinnedUDFs), "where")
	keys := []any{int64(1), true, 1.0, int32(1), uint8(1), "s", "ünï", []byte("b"), int64(-7), -7.0, int64(1 << 40), 2.5, false, int64(0)}
	for _, k := range keys {
		if err := a.Accumulate(ctx, k, int64(1)); err != nil {
			t.Fatalf("Accumulate(%v): %v", k, err)
		}
	}
	// {1, true, 1.0}, "s", "ünï", b"b", {-7, -7.0}, 2**40, 2.5, {false, 0}
	if n, err := a.Len(ctx); err != nil || n != 8 {
		t.Errorf("Len = %d, %v, want 8", n, err)
	}
	rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, -7, 1099511627776, 0, 5]`,
		arrow.PrimitiveTypes.Int64, `[10, 10, 10, 10, 10]`)
	if err := a.AccumulateBatch(ctx, rec, 0); err != nil {
		t.Fatal(err)
	}
	rec = batchOf(t, checkedAllocator(t), arrow.BinaryTypes.String, `["s", "ünï", "s", "new"]`,
		arrow.PrimitiveTypes.Int64, `[10, 10, 10, 10]`)
	if err := a.AccumulateBatch(ctx, rec, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Len(ctx); err != nil || n != 10 {
		t.Errorf("Len after the batches = %d, %v, want 10 (keys 5 and \"new\" added)", n, err)
	}
	for key, want := range map[any]int64{int64(1): 15, true: 15, int64(-7): 12, int64(1 << 40): 11, false: 12, "s": 21, "ünï": 11,
		"new": 10, int64(5): 10, 2.5: 1} {
		if sum, _ := whereOf(t, a, key); sum != want {
			t.Errorf("key %v: %d, want %d", key, sum, want)
		}
	}
	var pe *bridge.PythonError
	rec = batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 2]`, arrow.PrimitiveTypes.Int64, `[-1, 1]`)
	if err := a.AccumulateBatch(ctx, rec, 0); !errors.As(err, &pe) || pe.Type != "ValueError" {
		t.Errorf("AccumulateBatch with a negative value = %v, want ValueError", err)
	}
}

// TestSubinterpretersTableAggregatePinned: a table aggregate function's keys
// are pinned too, and its rows come from the key's interpreter.
func TestSubinterpretersTableAggregatePinned(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	a := openAggregate(t, loadModule(t, Config{Mode: Subinterpreters, Interpreters: 2}, "pinned.py", pinnedUDFs), "top2")
	interps := map[any]bool{}
	for k := range int64(12) {
		for _, x := range []int64{k, 3 * k, 2 * k} {
			if err := a.Accumulate(ctx, k, x); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := a.Rows(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0][0] != 3*k || rows[1][0] != 2*k || rows[0][1] != rows[1][1] {
			t.Errorf("key %d: rows %v", k, rows)
		}
		interps[rows[0][1]] = true
	}
	if len(interps) != 2 {
		t.Errorf("12 keys in %d interpreters, want 2", len(interps))
	}
}

// TestSubinterpretersPinHashMatchesPython: Go's pinHash and Python's
// pin_hash agree on the keys Go can give.
func TestSubinterpretersPinHashMatchesPython(t *testing.T) {
	ctx := context.Background()
	f := mustFunction(t, loadModule(t, Config{Mode: Thread}, "pin.py", `
from pyflink.table.udf import udf
from pyudf._aggregate import pin_hash

@udf(result_type='STRING')
def pin(key):
    return str(pin_hash(key))
`), "pin")
	big := new(big.Int).Lsh(big.NewInt(-3), 70)
	keys := []any{int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), int32(-5), true, false,
		big, 2.0, -0.0, 2.5, math.Inf(1), math.Inf(-1), math.NaN(), 1e300, -9.3e18, float32(3),
		"", "key", "ünïcødé ✓", []byte{}, []byte{0, 255}, time.Date(2024, 2, 29, 13, 4, 5, 678901234, time.FixedZone("X", 3600)),
		time.Date(1901, 1, 1, 0, 0, 0, 999, time.UTC), time.Unix(0, 0)}
	for _, k := range keys {
		v, err := f.Call(ctx, k)
		if err != nil {
			t.Errorf("pin_hash(%v): %v", k, err)
			continue
		}
		if want := fmt.Sprint(pinHash(bridge.ValueOf(k))); v != want {
			t.Errorf("key %v (%T): Python %v, Go %s", k, k, v, want)
		}
	}
}

// TestSubinterpretersAggregateFallsBackWhenOpenFails: an aggregate whose
// open() fails in a sub-interpreter (it imports numpy there) keeps every key
// on the main interpreter, with one log line, and works as in thread mode.
func TestSubinterpretersAggregateFallsBackWhenOpenFails(t *testing.T) {
	needSubinterpreters(t)
	ctx := context.Background()
	h := &recordHandler{level: slog.LevelInfo}
	e := newEngine(t, Config{Mode: Subinterpreters, Interpreters: 2, Logger: slog.New(h)})
	m, err := e.LoadSource(ctx, "np_agg.py", `
from pyflink.table.udf import AggregateFunction, udaf

class Total(AggregateFunction):
    def open(self, function_context):
        import numpy
        self.np = numpy
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, x):
        acc[0] += int(self.np.int64(x))
    def get_value(self, acc):
        return acc[0]

total = udaf(Total(), input_types=['BIGINT'], result_type='BIGINT')
`)
	if err != nil {
		t.Fatal(err)
	}
	a := openAggregate(t, m, "total")
	for k := range int64(6) {
		if err := a.Accumulate(ctx, k%3, k); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range map[int64]int64{0: 3, 1: 5, 2: 7} {
		if v := value(t, a, k); v != want {
			t.Errorf("key %d: %v, want %d", k, v, want)
		}
	}
	if p := e.backend.(*pool); len(p.pinned) != 0 || a.accumulate.shards != nil {
		t.Errorf("the aggregate is pinned to the sub-interpreters (%d pinned)", len(p.pinned))
	}
	var found []string
	for _, r := range h.all() {
		if strings.Contains(r, "main interpreter") {
			found = append(found, r)
		}
	}
	if len(found) != 1 || !strings.Contains(found[0], "total") || !strings.Contains(found[0], "numpy") {
		t.Errorf("log lines about the fallback: %q; want one naming the function and numpy", found)
	}
}

// testSubBits are sub-interpreter lock bits no test starts a sub-interpreter
// for (they take a few): the lock tests below use them alone.
const testSubBits = uint64(7) << 61

func withTestSubBits(t *testing.T) {
	t.Helper()
	if old := subsFree.Or(testSubBits); old&testSubBits != 0 {
		t.Fatal("the test bits are in use")
	}
	t.Cleanup(func() { subsFree.And(^testSubBits) })
}

// TestSubLocksUnderContention: callers of a set of three sub-interpreters
// and of one of them, with and without deadlines that end while they queue
// (switching between barging and hand-off), never hold one sub-interpreter
// twice, never hang (a lost wake-up would), and leave every one unlocked.
func TestSubLocksUnderContention(t *testing.T) {
	withTestSubBits(t)
	all, one := waitersFor(testSubBits), waitersFor(uint64(1)<<62)
	var held [64]atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for c := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 7))
			w := all
			if c%3 == 0 {
				w = one
			}
			for time.Now().Before(deadline) {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if r.IntN(3) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(r.IntN(2000))*time.Microsecond)
				}
				i, err := w.lock(ctx)
				if err == nil {
					if uint64(1)<<i&w.mask == 0 || held[i].Add(1) != 1 {
						t.Errorf("sub-interpreter %d locked twice or outside the set", i)
					}
					for end := time.Now().Add(time.Duration(r.IntN(300)) * time.Microsecond); time.Now().Before(end); {
					}
					held[i].Add(-1)
					unlockSub(i)
				} else if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("lock: %v", err)
				}
				cancel()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("callers still waiting 28 s after the last call began: a sub-interpreter was lost")
	}
	if free := subsFree.Load() & testSubBits; free != testSubBits {
		t.Errorf("free at the end: %b, want %b", free, testSubBits)
	}
	for _, w := range []*waiters{all, one} {
		if w.waiting.Load() != 0 || len(w.queue) != 0 || w.starving.Load() {
			t.Errorf("set %b at the end: %d queued (%d in queue), starving %v", w.mask, w.waiting.Load(), len(w.queue), w.starving.Load())
		}
	}
}

// TestSubLocksFirstInFirstOut: a caller that loops calls cannot keep a
// queued caller with a deadline out (barging alone could, for as long as
// the scheduler let it).
func TestSubLocksFirstInFirstOut(t *testing.T) {
	withTestSubBits(t)
	w := waitersFor(uint64(1) << 63)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			i, _ := w.lock(context.Background())
			for end := time.Now().Add(200 * time.Microsecond); time.Now().Before(end); {
			}
			unlockSub(i)
		}
	})
	var worst time.Duration
	for range 20 {
		time.Sleep(2 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		i, err := w.lock(ctx)
		worst = max(worst, time.Since(start))
		cancel()
		if err != nil {
			t.Errorf("a caller with a 100 ms deadline behind 200 µs calls: %v", err)
			continue
		}
		unlockSub(i)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("worst wait %v", worst)
}
