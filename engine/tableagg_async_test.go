package engine

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/bridge"
)

// Table aggregate functions (TableAggregateFunction, udtaf) and asynchronous
// scalar functions (AsyncScalarFunction, udf over async def).

const tableAggSource = `
from pyflink.common import Row
from pyflink.table.udf import TableAggregateFunction, udtaf, udaf, AggregateFunction
from pyudf import udf

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b

class TopTwo(TableAggregateFunction):
    """The two largest values seen, largest first; retract and merge as PyFlink's Top2 example."""

    def create_accumulator(self):
        return []

    def accumulate(self, acc, v):
        acc.append(v)
        acc.sort(reverse=True)

    def retract(self, acc, v):
        acc.remove(v)

    def merge(self, acc, others):
        for other in others:
            acc.extend(other)
        acc.sort(reverse=True)

    def emit_value(self, acc):
        for rank, v in enumerate(acc[:2], 1):
            yield Row(rank, v)

    def get_result_type(self):
        return 'ROW<rank INT, v BIGINT>'

    def get_accumulator_type(self):
        return 'ARRAY<BIGINT>'

top_two = udtaf(TopTwo(), input_types=['BIGINT'])

class Spread(TableAggregateFunction):
    """A result type that is not a ROW: each emitted bare value is a one-column row."""

    def create_accumulator(self):
        return [None, None]

    def accumulate(self, acc, v):
        acc[0] = v if acc[0] is None else min(acc[0], v)
        acc[1] = v if acc[1] is None else max(acc[1], v)

    def emit_value(self, acc):
        if acc[0] is not None:
            yield acc[0]
            yield acc[1]

spread = udtaf(Spread(), result_type='BIGINT')

class Echo(TableAggregateFunction):
    """No declared result type: rows convert by their Python values."""

    def create_accumulator(self):
        return []

    def accumulate(self, acc, *args):
        acc.append(args)

    def emit_value(self, acc):
        return [list(a) for a in acc]

echo = udtaf(Echo())

class TooWide(TableAggregateFunction):
    def create_accumulator(self):
        return 0

    def accumulate(self, acc, v):
        pass

    def emit_value(self, acc):
        yield (1, 2, 3)

too_wide = udtaf(TooWide(), result_type='ROW<a BIGINT, b BIGINT>')

class Count(AggregateFunction):
    def create_accumulator(self):
        return [0]

    def accumulate(self, acc, v):
        acc[0] += 1

    def get_value(self, acc):
        return acc[0]

count = udaf(Count(), result_type='BIGINT')
`

func tableAggModule(t *testing.T) *Module {
	t.Helper()
	return loadModule(t, Config{}, "table_aggs.py", tableAggSource)
}

func rowsOf(t *testing.T, a *Aggregate, key any) []bridge.Row {
	t.Helper()
	rows, err := a.Rows(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestTableAggregateAccumulateRetractMerge(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := tableAggModule(t)
		a := openAggregate(t, m, "top_two")
		if !a.IsTable() || a.ResultType().String() != "ROW<rank INT, v BIGINT>" || typeList(a.InputTypes()) != "BIGINT" {
			t.Fatalf("IsTable %v, result %v, inputs %s", a.IsTable(), a.ResultType(), typeList(a.InputTypes()))
		}
		for _, r := range []struct {
			key string
			v   int64
		}{{"a", 5}, {"a", 9}, {"a", 7}, {"b", 1}, {"c", 8}} {
			if err := a.Accumulate(ctx, r.key, r.v); err != nil {
				t.Fatal(err)
			}
		}
		// Value: a []any of bridge.Row, each as the declared ROW converts.
		want := []any{bridge.Row{int32(1), int64(9)}, bridge.Row{int32(2), int64(7)}}
		if got := value(t, a, "a"); !reflect.DeepEqual(got, want) {
			t.Errorf("Value(a) = %#v, want %#v", got, want)
		}
		if got := rowsOf(t, a, "b"); !reflect.DeepEqual(got, []bridge.Row{{int32(1), int64(1)}}) {
			t.Errorf("Rows(b) = %#v", got)
		}
		// A key with no accumulator: a fresh one's rows, none here (not nil).
		if got := value(t, a, "nobody"); !reflect.DeepEqual(got, []any{}) {
			t.Errorf("Value(nobody) = %#v, want an empty []any", got)
		}
		if err := a.Retract(ctx, "a", int64(9)); err != nil {
			t.Fatal(err)
		}
		if got := rowsOf(t, a, "a"); !reflect.DeepEqual(got, []bridge.Row{{int32(1), int64(7)}, {int32(2), int64(5)}}) {
			t.Errorf("after retracting 9, Rows(a) = %#v", got)
		}
		if err := a.Merge(ctx, "a", "b", "c"); err != nil {
			t.Fatal(err)
		}
		if got := rowsOf(t, a, "a"); !reflect.DeepEqual(got, []bridge.Row{{int32(1), int64(8)}, {int32(2), int64(7)}}) {
			t.Errorf("after merging b and c, Rows(a) = %#v", got)
		}
		if n, err := a.Len(ctx); err != nil || n != 1 {
			t.Errorf("Len = %d, %v; want 1 (b and c merged away)", n, err)
		}
	})
}

func TestTableAggregateResultShapes(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := tableAggModule(t)
		// A non-ROW result type is one column f0; bare values are its rows.
		s := openAggregate(t, m, "spread")
		if s.ResultType().String() != "ROW<f0 BIGINT>" {
			t.Errorf("spread's result type %v, want ROW<f0 BIGINT>", s.ResultType())
		}
		for _, v := range []int64{4, -2, 10} {
			if err := s.Accumulate(ctx, 1, v); err != nil {
				t.Fatal(err)
			}
		}
		if got := rowsOf(t, s, 1); !reflect.DeepEqual(got, []bridge.Row{{int64(-2)}, {int64(10)}}) {
			t.Errorf("spread Rows = %#v", got)
		}
		// Undeclared: each row still a bridge.Row, values by their Python type.
		e := openAggregate(t, m, "echo")
		if e.ResultType() != nil {
			t.Errorf("echo's result type %v, want none", e.ResultType())
		}
		if err := e.Accumulate(ctx, "k", "x", int64(3)); err != nil {
			t.Fatal(err)
		}
		if got := value(t, e, "k"); !reflect.DeepEqual(got, []any{bridge.Row{"x", int64(3)}}) {
			t.Errorf("echo Value = %#v", got)
		}
	})
}

func TestTableAggregateSnapshotRestore(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := tableAggModule(t)
		a := openAggregate(t, m, "top_two")
		for _, v := range []int64{3, 1, 4, 1, 5} {
			if err := a.Accumulate(ctx, "pi", v); err != nil {
				t.Fatal(err)
			}
		}
		snap, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := rowsOf(t, a, "pi")
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		b := openAggregate(t, m, "top_two") // a fresh instance, no accumulators
		if got := rowsOf(t, b, "pi"); len(got) != 0 {
			t.Fatalf("a fresh instance has rows %v", got)
		}
		if n, err := b.Restore(ctx, snap); err != nil || n != 1 {
			t.Fatalf("Restore = %d, %v", n, err)
		}
		if got := rowsOf(t, b, "pi"); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, []bridge.Row{{int32(1), int64(5)}, {int32(2), int64(4)}}) {
			t.Errorf("after Restore, Rows = %#v, want %#v", got, want)
		}
		if err := b.Accumulate(ctx, "pi", int64(9)); err != nil { // the state lives on
			t.Fatal(err)
		}
		if got := rowsOf(t, b, "pi"); !reflect.DeepEqual(got[0], bridge.Row{int32(1), int64(9)}) {
			t.Errorf("after Restore and Accumulate, Rows = %#v", got)
		}
	})
}

func TestTableAggregateWrongUse(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := tableAggModule(t)
		_, err := m.Function(ctx, "top_two")
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Module.Function(top_two): want ErrUnsupported, got %v", err)
		}
		wantMessage(t, err, `"top_two"`, "a table aggregate function", "Module.Aggregate")

		a := openAggregate(t, m, "top_two")
		_, err = NewWindows(WindowSpec{Size: time.Minute}, a)
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("NewWindows(table aggregate): want ErrUnsupported, got %v", err)
		}
		wantMessage(t, err, "NewWindows", `"top_two"`, "table aggregate", "Aggregate.Rows")

		c := openAggregate(t, m, "count")
		if c.IsTable() {
			t.Error("count is an aggregate function, not a table aggregate")
		}
		_, err = c.Rows(ctx, "k")
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Rows of an aggregate function: want ErrUnsupported, got %v", err)
		}
		wantMessage(t, err, `"count"`, "use Value")
		stillWorks(t, m)
	})
}

func TestHostileTableAggregateRowOfWrongWidth(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := tableAggModule(t)
		a := openAggregate(t, m, "too_wide")
		if err := a.Accumulate(ctx, "k", int64(1)); err != nil {
			t.Fatal(err)
		}
		_, err := a.Value(ctx, "k")
		var ce *bridge.ConversionError
		if !errors.As(err, &ce) {
			t.Fatalf("want a *bridge.ConversionError, got %T %v", err, err)
		}
		wantMessage(t, err, "too_wide", "result")
		if got := value(t, openAggregate(t, m, "top_two"), "none"); !reflect.DeepEqual(got, []any{}) {
			t.Errorf("after the error, another table aggregate's Value = %#v", got)
		}
		stillWorks(t, m)
	})
}

func TestTableAggregatePandasRefused(t *testing.T) {
	modes(t, func(t *testing.T) {
		e := newEngine(t, Config{})
		_, err := e.LoadSource(context.Background(), "pandas_udtaf.py", `
from pyflink.table.udf import TableAggregateFunction, udtaf
class T(TableAggregateFunction):
    def create_accumulator(self): return []
    def accumulate(self, acc, v): acc.append(v)
    def emit_value(self, acc): return acc
t = udtaf(T(), result_type='BIGINT', func_type='pandas')
`)
		var pe *bridge.PythonError
		if !errors.As(err, &pe) || pe.Type != "ValueError" {
			t.Fatalf("want the module's ValueError, got %T %v", err, err)
		}
		wantMessage(t, err, "table aggregate", "func_type", "'general'")
	})
}

const asyncSource = `
import asyncio
from pyflink.table import DataTypes
from pyflink.table.udf import AsyncScalarFunction, udf

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
async def add_async(a, b):
    return a + b

class Lookup(AsyncScalarFunction):
    def open(self, function_context):
        self.prefix = function_context.get_job_parameter("prefix", "v")

    async def eval(self, key):
        await asyncio.sleep(0.001)
        parts = await asyncio.gather(*(self._part(key, i) for i in range(3)))
        return self.prefix + ":" + "".join(parts)

    async def _part(self, key, i):
        await asyncio.sleep(0.001 * i)
        return key[i % len(key)]

lookup = udf(Lookup(), result_type=DataTypes.STRING())

@udf(result_type='BIGINT')
async def fails(x):
    await asyncio.sleep(0)
    raise ValueError("no such key: %d" % x)

@udf(result_type='BOOLEAN')
async def loop_is_reused():
    global _first
    loop = asyncio.get_running_loop()
    if '_first' not in globals():
        _first = loop
    return loop is _first

_woke = 0

@udf(input_types=['DOUBLE'], result_type='BIGINT')
async def sleeps(seconds):
    global _woke
    await asyncio.sleep(seconds)
    _woke += 1
    return 1

@udf(result_type='BIGINT')
async def swallows():
    """Catches every interruption and awaits again."""
    global _woke
    while True:
        try:
            await asyncio.sleep(0.05)
        except BaseException:
            pass
        _woke += 1

@udf(result_type='BIGINT')
def woke():
    return _woke
`

func TestAsyncScalarFunction(t *testing.T) {
	modes(t, func(t *testing.T) {
		// One OS thread calls, so that thread mode's calls all see one Python
		// thread and its one event loop.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		m := loadModule(t, Config{JobParameters: map[string]string{"prefix": "p"}}, "async_udfs.py", asyncSource)
		if got := call(t, m, "add_async", int64(40), int64(2)); got != int64(42) {
			t.Errorf("add_async(40, 2) = %#v", got)
		}
		if got := call(t, m, "lookup", "abc"); got != "p:abc" {
			t.Errorf("lookup(abc) = %#v", got)
		}
		// Over a batch, row by row, as any general scalar function.
		rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 2, 3]`, arrow.PrimitiveTypes.Int64, `[10, 20, 30]`)
		if got := eval(t, m, "add_async", rec); got != `[11,22,33]` {
			t.Errorf("Eval(add_async) = %s", got)
		}
		for range 3 {
			if got := call(t, m, "loop_is_reused"); got != true {
				t.Errorf("a later call ran on another event loop")
			}
		}
		err := callErr(t, function(t, m, "fails"), int64(7))
		var pe *bridge.PythonError
		if !errors.As(err, &pe) || pe.Type != "ValueError" || pe.Message != "no such key: 7" {
			t.Fatalf("want the coroutine's ValueError, got %T %v", err, err)
		}
		if got := call(t, m, "loop_is_reused"); got != true {
			t.Errorf("after a coroutine raised, the next call ran on another event loop")
		}
		stillWorks(t, m)
	})
}

// An async UDF awaiting asyncio.sleep is interrupted by its deadline in both
// modes (the event loop wakes every few ms to let the interruption in), the
// interrupted coroutine does not resume later, and the engine and the
// thread's event loop work afterwards.
func TestHostileAsyncCancelWhileAwaiting(t *testing.T) {
	sharedModes(t, func(t *testing.T) {
		m := loadModule(t, Config{Workers: 1, Logger: slog.New(slog.DiscardHandler)}, "async_cancel.py", asyncSource)
		start := time.Now()
		ctx, err := callWithin(t, m, 50*time.Millisecond, "sleeps", 30.0)
		wantCancelled(t, ctx, err, "sleeps")
		if took := time.Since(start); took > time.Second {
			t.Fatalf("asyncio.sleep(30) was interrupted only after %v", took)
		}
		if got := call(t, m, "sleeps", 0.001); got != int64(1) {
			t.Errorf("after the cancellation, sleeps(0.001) = %#v", got)
		}
		time.Sleep(100 * time.Millisecond)
		if got := call(t, m, "woke"); got != int64(1) {
			t.Errorf("woke = %v, want 1: the cancelled coroutine resumed, or the next call did not run", got)
		}
		if got := call(t, m, "add_async", int64(2), int64(3)); got != int64(5) {
			t.Errorf("after the cancellation, add_async(2, 3) = %#v", got)
		}
		stillWorks(t, m)
	})
}

// A coroutine that catches every interruption and awaits again ends with its
// deadline all the same (trapped in thread mode), and the next calls work.
func TestHostileAsyncSwallowsCancellation(t *testing.T) {
	sharedModes(t, func(t *testing.T) {
		m := loadModule(t, Config{Workers: 1, Logger: slog.New(slog.DiscardHandler)}, "async_swallow.py", asyncSource)
		ctx, err := callWithin(t, m, 80*time.Millisecond, "swallows")
		wantCancelled(t, ctx, err, "swallows")
		// The next async call on the thread closes the coroutine (which may
		// run up to its next await) and runs on a fresh loop.
		for range 3 {
			if got := call(t, m, "add_async", int64(2), int64(3)); got != int64(5) {
				t.Fatalf("after the cancellation, add_async(2, 3) = %#v", got)
			}
		}
		before := call(t, m, "woke").(int64)
		// Long enough for the swallowing coroutine to wake 3 times, were it
		// still on a running loop. It may wake once: in thread mode its close
		// waits for an async call on the OS thread it ran on, maybe this one.
		if got := call(t, m, "sleeps", 0.2); got != int64(1) {
			t.Errorf("after the cancellation, sleeps(0.2) = %#v", got)
		}
		if after := call(t, m, "woke").(int64); after-before > 2 || after-before < 1 {
			t.Errorf("woke went from %d to %d around one sleeps call: the swallowing coroutine kept running", before, after)
		}
		stillWorks(t, m)
	})
}

// A coroutine that swallows every interruption, left suspended by a
// cancelled call on a function instance's own thread (Config.Affinity),
// outlives that thread: closing the instance ends the thread, and the
// garbage collection that follows must not close the coroutine (with no loop
// to await on, it would spin forever in whatever call collected it).
func TestHostileAsyncLeftoverOutlivesItsThread(t *testing.T) {
	m := loadModule(t, Config{Logger: slog.New(slog.DiscardHandler)}, "async_leftover.py", `
import asyncio, gc
from pyflink.table.udf import AsyncScalarFunction, udf

class Swallows(AsyncScalarFunction):
    def open(self, function_context):
        self.woke = 0

    async def eval(self, x):
        while True:
            try:
                await asyncio.sleep(0.05)
            except BaseException:
                pass
            self.woke += 1

swallows = udf(Swallows(), input_types=['BIGINT'], result_type='BIGINT')

@udf(result_type='BIGINT')
def collect():
    return gc.collect() * 0 + 1

@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b
`)
	f := function(t, m, "swallows")
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	_, err := f.Call(ctx, int64(1))
	cancel()
	wantCancelled(t, ctx, err, "swallows")
	if err := f.Close(); err != nil { // its thread ends, and the thread's state with it
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	v, err := function(t, m, "collect").Call(ctx)
	if err != nil || v != int64(1) || time.Since(start) > 2*time.Second {
		t.Fatalf("gc.collect() after the instance closed = %v, %v in %v", v, err, time.Since(start))
	}
	stillWorks(t, m)
}

// The cost of an async UDF's call over a plain one (thread mode): the event
// loop's run per call. Logged, and bounded loosely so that a regression to a
// loop per call (asyncio.run, ~10x more) shows.
func TestAsyncCallOverhead(t *testing.T) {
	if testing.Short() {
		t.Skip("measures")
	}
	m := loadModule(t, Config{}, "async_cost.py", asyncSource)
	ctx := context.Background()
	plain, async := function(t, m, "add"), function(t, m, "add_async")
	args := []bridge.Value{bridge.Int64(2), bridge.Int64(3)}
	measure := func(f *Function) time.Duration {
		return perCall(5, 2000, func() {
			if _, err := f.CallValues(ctx, args...); err != nil {
				t.Fatal(err)
			}
		})
	}
	p, a := measure(plain), measure(async)
	t.Logf("per call: plain scalar UDF %v, async UDF %v (+%v)", p, a, a-p)
	if a-p > 500*time.Microsecond {
		t.Errorf("an async call costs %v more than a plain one", a-p)
	}
}
