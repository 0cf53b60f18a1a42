package engine

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/bridge"
)

// affinityUDFs record the Python thread (threading.get_ident) each life-cycle
// step and call runs on; Lookup is an sqlite3 connection made in open(),
// which refuses every other thread.
const affinityUDFs = `
import sqlite3, threading
from pyflink.table import AggregateFunction, DataTypes, ScalarFunction, TableFunction
from pyflink.table.udf import udaf, udf, udtf

seen = {}

def note(name, step):
    seen.setdefault(name, []).append((step, threading.get_ident()))

@udf(result_type='BIGINT')
def threads(name: str):
    return len({ident for _, ident in seen.get(name, [])})

@udf(result_type='STRING')
def steps(name: str):
    return ",".join(sorted({step for step, _ in seen.get(name, [])}))

class Lookup(ScalarFunction):
    def open(self, function_context):
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute("create table t (k integer, v text)")
        self.conn.executemany("insert into t values (?, ?)", [(i, "v%d" % i) for i in range(10)])
        note("lookup", "open")

    def eval(self, k):
        note("lookup", "eval")
        row = self.conn.execute("select v from t where k = ?", (k,)).fetchone()
        return row[0] if row else None

    def close(self):
        note("lookup", "close")
        self.conn.close()

lookup = udf(Lookup(), input_types=['BIGINT'], result_type='STRING')

class Spin(ScalarFunction):
    def open(self, function_context):
        self.spins = 0

    def eval(self, x):
        while True:
            pass

spin = udf(Spin(), input_types=['BIGINT'], result_type='BIGINT')

@udf(input_types=['BIGINT'], result_type='BIGINT')
def plain(x):
    note("plain", "eval")
    return x + 1

class Bare(ScalarFunction):
    def eval(self, x):
        note("bare", "eval")
        return x + 1

bare = udf(Bare(), input_types=['BIGINT'], result_type='BIGINT')

class Explode(TableFunction):
    def open(self, function_context):
        note("explode", "open")

    def eval(self, n):
        note("explode", "eval")
        for i in range(n):
            yield i

explode = udtf(Explode(), input_types=['BIGINT'], result_types=['BIGINT'])

class Count(AggregateFunction):
    def open(self, function_context):
        note("count", "open")

    def create_accumulator(self):
        return [0]

    def accumulate(self, acc, x):
        note("count", "accumulate")
        acc[0] += 1

    def get_value(self, acc):
        note("count", "get_value")
        return acc[0]

    def close(self):
        note("count", "close")

count = udaf(Count(), input_types=['BIGINT'], result_type='BIGINT')
`

// onThreads calls call once from each of n goroutines, each locked to an OS
// thread of its own until all have called, so that the calls come from n
// different threads.
func onThreads(n int, call func(i int)) {
	var locked, called, done sync.WaitGroup
	locked.Add(n)
	called.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			locked.Done()
			locked.Wait()
			call(i)
			called.Done()
			called.Wait()
		}()
	}
	done.Wait()
}

func threadsOf(t *testing.T, m *Module, name string) (threads int64, steps string) {
	t.Helper()
	ctx := context.Background()
	n, err := mustFunction(t, m, "threads").Call(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mustFunction(t, m, "steps").Call(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return n.(int64), s.(string)
}

func mustFunction(t *testing.T, m *Module, name string) *Function {
	t.Helper()
	f, err := m.Function(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAffinityThreadBoundObjectFromOpen: an sqlite3 connection made in open()
// works in every call and in close(), whichever goroutines and OS threads
// call, in both modes.
func TestAffinityThreadBoundObjectFromOpen(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "affinity.py", affinityUDFs)
		f := mustFunction(t, m, "lookup")
		var mu sync.Mutex
		var errs []error
		onThreads(8, func(i int) {
			for k := range 20 {
				v, err := f.Call(ctx, int64(k%10))
				if err == nil && v != "v"+strconv.Itoa(k%10) {
					err = errors.New("got " + v.(string))
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
		if len(errs) > 0 {
			t.Fatalf("%d goroutines failed; first: %v", len(errs), errs[0])
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if modeOf(t.Name()) == Thread { // in process mode the state is in the worker
			if n, steps := threadsOf(t, m, "lookup"); n != 1 || steps != "close,eval,open" {
				t.Errorf("open, eval and close ran on %d threads (steps %s), want 1", n, steps)
			}
		}
	})
}

// TestAffinityNoneBreaksThreadBoundObjects shows what AffinityNone gives up:
// calls from other threads than open()'s fail as sqlite3 says. (It is what
// the test above would see without affinity.)
func TestAffinityNoneBreaksThreadBoundObjects(t *testing.T) {
	ctx := context.Background()
	m := loadModule(t, Config{Affinity: AffinityNone}, "affinity.py", affinityUDFs)
	f := mustFunction(t, m, "lookup")
	var mu sync.Mutex
	failed := 0
	onThreads(4, func(int) {
		_, err := f.Call(ctx, int64(1))
		var pe *bridge.PythonError
		if errors.As(err, &pe) && strings.Contains(pe.Message, "same thread") {
			mu.Lock()
			failed++
			mu.Unlock()
		}
	})
	if failed < 3 { // at most one of the 4 threads can be open()'s
		t.Errorf("%d of 4 calls from other threads failed for a thread-bound connection, want at least 3", failed)
	}
	f.Close() // close() on another thread fails too: sqlite3 refuses there as well
}

// TestAffinityPlainFunctionsRunOnTheCallersThread: AffinityAuto keeps the
// fast path for functions without open or close (a plain function, a class
// with eval alone); AffinityInstance gives them a thread too.
func TestAffinityPlainFunctionsRunOnTheCallersThread(t *testing.T) {
	for _, tc := range []struct {
		affinity Affinity
		want     func(n int64) bool
		what     string
	}{
		{AffinityAuto, func(n int64) bool { return n == 4 }, "4 (the callers')"},
		{AffinityInstance, func(n int64) bool { return n == 1 }, "1 (its own)"},
	} {
		for _, name := range []string{"plain", "bare"} {
			t.Run(tc.affinity.String()+"/"+name, func(t *testing.T) {
				ctx := context.Background()
				m := loadModule(t, Config{Affinity: tc.affinity}, "affinity.py", affinityUDFs)
				f := mustFunction(t, m, name)
				onThreads(4, func(i int) {
					if v, err := f.Call(ctx, int64(i)); err != nil || v != int64(i)+1 {
						t.Errorf("%s(%d) = %v, %v", name, i, v, err)
					}
				})
				if n, _ := threadsOf(t, m, name); !tc.want(n) {
					t.Errorf("4 locked goroutines' calls ran on %d Python threads, want %s", n, tc.what)
				}
			})
		}
	}
}

// TestAffinityEveryEntryPoint: batches (Eval), table functions (Rows and
// Explode) and aggregates (open, accumulate, get_value, close) keep their
// instance's thread.
func TestAffinityEveryEntryPoint(t *testing.T) {
	ctx := context.Background()
	m := loadModule(t, Config{}, "affinity.py", affinityUDFs)
	lookup, explode := mustFunction(t, m, "lookup"), mustFunction(t, m, "explode")
	agg, err := m.Aggregate(ctx, "count")
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{1, 2, 3}, nil)
	col := b.NewArray()
	defer col.Release()
	batch := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}}, nil),
		[]arrow.Array{col}, 3)
	defer batch.Release()
	onThreads(4, func(i int) {
		res, err := lookup.Eval(ctx, batch)
		if err != nil {
			t.Errorf("Eval: %v", err)
			return
		}
		if got := res.(*array.String).Value(2); got != "v3" {
			t.Errorf("Eval row 2 = %q, want v3", got)
		}
		res.Release()
		n := 0
		for _, err := range explode.Rows(ctx, int64(3)) {
			if err != nil {
				t.Errorf("Rows(3): %v", err)
			}
			n++
		}
		if n != 3 {
			t.Errorf("Rows(3) gave %d rows", n)
		}
		if out, err := explode.Explode(ctx, batch); err != nil {
			t.Errorf("Explode: %v", err)
		} else {
			out.Release()
		}
		if err := agg.Accumulate(ctx, "k", int64(i)); err != nil {
			t.Errorf("Accumulate: %v", err)
		}
	})
	if v, err := agg.Value(ctx, "k"); err != nil || v != int64(4) {
		t.Errorf("Value = %v, %v, want 4", v, err)
	}
	if err := agg.Close(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"lookup": "eval,open", "explode": "eval,open", "count": "accumulate,close,get_value,open"} {
		if n, steps := threadsOf(t, m, name); n != 1 || steps != want {
			t.Errorf("%s: steps %s ran on %d threads, want %s on 1", name, steps, n, want)
		}
	}
}

// TestAffinityCancelledCallOnItsThread: a spinning call on an instance's own
// thread is interrupted by its deadline, and the instance and the engine
// keep working.
func TestAffinityCancelledCallOnItsThread(t *testing.T) {
	m := loadModule(t, Config{}, "affinity.py", affinityUDFs)
	spin, lookup := mustFunction(t, m, "spin"), mustFunction(t, m, "lookup")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := spin.Call(ctx, int64(1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("spin: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the interrupt took %v", d)
	}
	if v, err := lookup.Call(context.Background(), int64(7)); err != nil || v != "v7" {
		t.Errorf("after the interrupt: lookup(7) = %v, %v", v, err)
	}
	// A caller waiting for the instance's thread gives up at its deadline.
	busy, cancelBusy := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := spin.Call(busy, int64(1)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	short, cancelShort := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancelShort()
	if _, err := spin.Call(short, int64(2)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call queued behind a spinning one: %v, want DeadlineExceeded", err)
	}
	cancelBusy()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the spinning call: %v, want Canceled", err)
	}
}

// TestAffinityThreadsEndWithTheirInstances: every instance's thread ends
// with it, and so does its Python thread state: opening and closing 100
// instances leaves as many thread states as before.
func TestAffinityThreadsEndWithTheirInstances(t *testing.T) {
	ctx := context.Background()
	m := loadModule(t, Config{}, "affinity.py", threadStatesUDF+affinityUDFs)
	states := mustFunction(t, m, "thread_states")
	count := func() int64 {
		v, err := states.Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v.(int64)
	}
	before := count()
	for range 100 {
		f := mustFunction(t, m, "lookup")
		if v, err := f.Call(ctx, int64(2)); err != nil || v != "v2" {
			t.Fatalf("lookup(2) = %v, %v", v, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := count(); after > before+2 {
		t.Errorf("%d thread states after 100 instances came and went, %d before", after, before)
	}
}

// TestAffinityConcurrentCallersOfOneInstance: many goroutines on one
// instance with a thread of its own, Concurrency above 1: every call runs,
// one at a time, with the right result.
func TestAffinityConcurrentCallersOfOneInstance(t *testing.T) {
	ctx := context.Background()
	m := loadModule(t, Config{Concurrency: 4}, "affinity.py", affinityUDFs)
	f := mustFunction(t, m, "lookup")
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 200 {
				want := "v" + strconv.Itoa((g+k)%10)
				if v, err := f.Call(ctx, int64((g+k)%10)); err != nil || v != want {
					t.Errorf("lookup = %v, %v, want %s", v, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
