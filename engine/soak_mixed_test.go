//go:build !race

package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/bridge"
)

// The mixed soak's UDFs: one per kind of traffic, plus the counters the soak
// checks for growth (Python objects, thread states).
const soakMixedSource = threadStatesUDF + `
import gc
import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, udaf, udf

add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
upper = udf(lambda s: s.upper(), input_types=['STRING'], result_type='STRING')
double = udf(lambda x: None if x is None else 2 * x, input_types=['BIGINT'], result_type='BIGINT')
tag = udf(lambda s: None if s is None else s + '!', input_types=['STRING'], result_type='STRING')
pandas_add = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT', func_type='pandas')

@udf(input_types=['BIGINT'], result_type='BIGINT')
def odd_fails(x):
    if x % 2:
        raise ValueError("odd input %d" % x)
    return x

@udf(input_types=['BIGINT'], result_type='BIGINT')
def spin(x):
    while True:
        x += 1

class Sum(AggregateFunction):
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, x):
        acc[0] += x
    def get_value(self, acc):
        return acc[0]

total = udaf(Sum(), input_types=['BIGINT'], result_type='BIGINT')

@udf(result_type='BIGINT')
def python_objects():
    gc.collect()
    return len(gc.get_objects())
`

// soakDuration is how long the mixed soak runs: PYUDF_SOAK (a Go duration;
// make soak sets 30m), else 60 s.
func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("PYUDF_SOAK")
	if s == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("PYUDF_SOAK=%q: %v", s, err)
	}
	return d
}

// soakCounts is what must not grow over the soak.
type soakCounts struct {
	rss                                                int64
	pythonObjects, threadStates, goroutines, osThreads int64
}

func (c soakCounts) String() string {
	return fmt.Sprintf("RSS %d MB, %d Python objects, %d thread states, %d goroutines, %d OS threads",
		c.rss>>20, c.pythonObjects, c.threadStates, c.goroutines, c.osThreads)
}

// TestSoakMixedTraffic runs row calls, row-wise and Pandas batches, failing
// rows, aggregates and cancelled calls from 16 goroutines for soakDuration.
// Every result must be right, and after warm-up the resident set, the Python
// object count, thread states, goroutines and OS threads must stay flat.
func TestSoakMixedTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak runs for a minute")
	}
	const goroutines = 16
	m := loadModule(t, Config{}, "soak_mixed.py", soakMixedSource)
	mem := checkedAllocator(t)
	ctx := context.Background()
	fn := func(name string) *Function { return function(t, m, name) }
	add, upper, double, tag, pandasAdd := fn("add"), fn("upper"), fn("double"), fn("tag"), fn("pandas_add")
	oddFails, spin, objects, states := fn("odd_fails"), fn("spin"), fn("python_objects"), fn("thread_states")
	total, err := m.Aggregate(ctx, "total")
	if err != nil {
		t.Fatal(err)
	}
	counts := func() soakCounts {
		runtime.GC()
		c := soakCounts{rss: rss(t), goroutines: int64(runtime.NumGoroutine()), osThreads: osThreads(t)}
		for _, p := range []struct {
			f   *Function
			dst *int64
		}{{objects, &c.pythonObjects}, {states, &c.threadStates}} {
			v, err := p.f.Call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			*p.dst = v.(int64)
		}
		return c
	}

	// Each goroutine owns its aggregate key and knows the sum it must hold.
	var failures atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	ops := []func(g int, r *rand.Rand, sum *int64){
		func(_ int, r *rand.Rand, _ *int64) { // a row call
			a, b := r.Int64N(1<<40), r.Int64N(1<<40)
			if v, err := add.CallValues(ctx, bridge.Int64(a), bridge.Int64(b)); err != nil || v.AsInt64() != a+b {
				fail("add(%d, %d) = %v, %v", a, b, v, err)
			}
		},
		func(_ int, r *rand.Rand, _ *int64) { // a string row call
			s := fmt.Sprintf("payload-%d", r.Int())
			if v, err := upper.Call(ctx, s); err != nil || v != strings.ToUpper(s) {
				fail("upper(%q) = %v, %v", s, v, err)
			}
		},
		func(_ int, r *rand.Rand, _ *int64) { // a row-wise batch with nulls, sliced
			n := 64 + r.IntN(2000)
			ints, strs := soakBatch(mem, n+7)
			defer ints.Release()
			defer strs.Release()
			in := ints.NewSlice(3, int64(n+3))
			defer in.Release()
			res, err := double.Eval(ctx, in)
			if err != nil {
				fail("double.Eval: %v", err)
				return
			}
			defer res.Release()
			col := in.Column(0).(*array.Int64)
			out := res.(*array.Int64)
			for i := range n {
				if col.IsNull(i) != out.IsNull(i) || (!col.IsNull(i) && out.Value(i) != 2*col.Value(i)) {
					fail("double row %d of %d: in %v null=%v, out %v null=%v", i, n, col.Value(i), col.IsNull(i), out.Value(i), out.IsNull(i))
					return
				}
			}
			sres, err := tag.Eval(ctx, strs)
			if err != nil {
				fail("tag.Eval: %v", err)
				return
			}
			defer sres.Release()
			scol, sout := strs.Column(0).(*array.String), sres.(*array.String)
			for i := range scol.Len() {
				if scol.IsNull(i) != sout.IsNull(i) || (!scol.IsNull(i) && sout.Value(i) != scol.Value(i)+"!") {
					fail("tag row %d: %q -> %q", i, scol.Value(i), sout.Value(i))
					return
				}
			}
		},
		func(_ int, r *rand.Rand, _ *int64) { // a Pandas batch
			n := 1 + r.IntN(4096)
			rec := soakPairs(mem, n)
			defer rec.Release()
			res, err := pandasAdd.Eval(ctx, rec)
			if err != nil {
				fail("pandas_add.Eval: %v", err)
				return
			}
			defer res.Release()
			a, b, out := rec.Column(0).(*array.Int64), rec.Column(1).(*array.Int64), res.(*array.Int64)
			for i := range n {
				if out.Value(i) != a.Value(i)+b.Value(i) {
					fail("pandas_add row %d: %d + %d = %d", i, a.Value(i), b.Value(i), out.Value(i))
					return
				}
			}
		},
		func(_ int, r *rand.Rand, _ *int64) { // failing rows
			n := 1 + r.IntN(500)
			rec := soakPairs(mem, n)
			defer rec.Release()
			first := array.NewRecordBatch(arrow.NewSchema(rec.Schema().Fields()[:1], nil), rec.Columns()[:1], int64(n))
			defer first.Release()
			res, errs, err := oddFails.EvalRowErrors(ctx, first)
			if err != nil {
				fail("odd_fails.EvalRowErrors: %v", err)
				return
			}
			defer res.Release()
			defer errs.Release()
			in, out, msgs := rec.Column(0).(*array.Int64), res.(*array.Int64), errs.(*array.String)
			for i := range n {
				x := in.Value(i)
				want := fmt.Sprintf("ValueError: odd input %d", x)
				if x%2 == 0 && (out.IsNull(i) || out.Value(i) != x || !msgs.IsNull(i)) ||
					x%2 != 0 && (!out.IsNull(i) || msgs.Value(i) != want) {
					fail("odd_fails row %d (%d): result %v, error %q", i, x, out.Value(i), msgs.Value(i))
					return
				}
			}
			var pe *bridge.PythonError
			if _, err := oddFails.Call(ctx, int64(3)); !errors.As(err, &pe) || pe.Type != "ValueError" {
				fail("odd_fails(3) = %v, want a ValueError", err)
			}
		},
		func(g int, r *rand.Rand, sum *int64) { // an aggregate
			x := r.Int64N(1000)
			key := fmt.Sprintf("g%d", g)
			if err := total.Accumulate(ctx, key, x); err != nil {
				fail("accumulate: %v", err)
				return
			}
			*sum += x
			if v, err := total.Value(ctx, key); err != nil || v != *sum {
				fail("total[%s] = %v, %v; want %d", key, v, err, *sum)
			}
		},
		func(_ int, r *rand.Rand, _ *int64) { // a cancelled call
			cctx, cancel := context.WithTimeout(ctx, time.Duration(1+r.IntN(5))*time.Millisecond)
			defer cancel()
			if v, err := spin.Call(cctx, int64(1)); !errors.Is(err, context.DeadlineExceeded) {
				fail("spin with a deadline = %v, %v; want DeadlineExceeded", v, err)
			}
		},
	}
	phase := func(d time.Duration, seed uint64) (calls int64) {
		var wg sync.WaitGroup
		var n atomic.Int64
		stop := time.Now().Add(d)
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, uint64(g)))
				sum := soakSums[g]
				for time.Now().Before(stop) && failures.Load() == 0 {
					ops[r.IntN(len(ops))](g, r, &sum)
					n.Add(1)
				}
				soakSums[g] = sum
			}()
		}
		wg.Wait()
		return n.Load()
	}

	d := soakDuration(t)
	warm := min(d/4, 15*time.Second)
	phase(warm, 1)
	before := counts()
	calls := phase(d-warm, 2)
	after := counts()
	t.Logf("%d operations in %v from %d goroutines\nafter warm-up: %v\nat the end:    %v", calls, d-warm, goroutines, before, after)
	if failures.Load() > 0 {
		t.Fatalf("%d operations went wrong", failures.Load())
	}
	for _, c := range []struct {
		what          string
		before, after int64
		slack         int64
	}{
		{"RSS (bytes)", before.rss, after.rss, 16 << 20},
		{"Python objects", before.pythonObjects, after.pythonObjects, 500},
		// A thread state belongs to an OS thread: one more may come with a
		// new thread the Go runtime started for a cgo call.
		{"thread states", before.threadStates, after.threadStates, max(after.osThreads-before.osThreads, 0) + 1},
		{"goroutines", before.goroutines, after.goroutines, 2},
		{"OS threads", before.osThreads, after.osThreads, 4},
	} {
		if c.after > c.before+c.slack {
			t.Errorf("%s grew from %d to %d (allowed: %d more)", c.what, c.before, c.after, c.slack)
		}
	}
	if after.threadStates > after.osThreads {
		t.Errorf("%d thread states for %d OS threads: states of ended threads are kept", after.threadStates, after.osThreads)
	}
	for g, want := range soakSums {
		if v, err := total.Value(ctx, fmt.Sprintf("g%d", g)); err != nil || (v != want && !(want == 0 && v == nil)) {
			t.Errorf("total[g%d] = %v, %v; want %d", g, v, err, want)
		}
	}
}

// soakSums are the mixed soak's expected aggregate values, one per goroutine.
var soakSums [16]int64

// soakBatch makes an n-row BIGINT batch and an n-row STRING batch, every
// fifth row null.
func soakBatch(mem memory.Allocator, n int) (ints, strs arrow.RecordBatch) {
	ib, sb := array.NewInt64Builder(mem), array.NewStringBuilder(mem)
	defer ib.Release()
	defer sb.Release()
	for i := range n {
		if i%5 == 0 {
			ib.AppendNull()
			sb.AppendNull()
			continue
		}
		ib.Append(int64(i) << 20)
		sb.Append(fmt.Sprintf("s%d", i))
	}
	return soakRecord(ib.NewArray()), soakRecord(sb.NewArray())
}

// soakPairs makes an n-row batch of two BIGINT columns without nulls.
func soakPairs(mem memory.Allocator, n int) arrow.RecordBatch {
	a, b := array.NewInt64Builder(mem), array.NewInt64Builder(mem)
	defer a.Release()
	defer b.Release()
	for i := range n {
		a.Append(int64(i))
		b.Append(int64(3 * i))
	}
	return soakRecord(a.NewArray(), b.NewArray())
}

// soakRecord makes a record batch of cols, named c0, c1, ..., and releases them.
func soakRecord(cols ...arrow.Array) arrow.RecordBatch {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: fmt.Sprintf("c%d", i), Type: c.DataType(), Nullable: true}
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(cols[0].Len()))
	for _, c := range cols {
		c.Release()
	}
	return rec
}
