package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/cgo"
)

// Batch evaluation, good and failing, leaves no Python object, no pyarrow
// buffer, no C Data Interface struct and (checked allocator) no Go-side Arrow
// buffer behind.
func TestBatchPathsDoNotLeak(t *testing.T) {
	m := loadModule(t, Config{}, "batch_leaks.py", batchSource+`
import gc, sys
import pyarrow as pa

@udf(result_type='BIGINT')
def python_blocks():
    gc.collect()
    return sys.getallocatedblocks()

@udf(result_type='BIGINT')
def arrow_bytes():
    gc.collect()
    return pa.total_allocated_bytes()

def spin(x):
    while True:
        pass
spin_rows = udf(spin, input_types=['BIGINT'], result_type='BIGINT')
`)
	mem := checkedAllocator(t)
	ints := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3, null, 5]`, arrow.PrimitiveTypes.Int64, `[1, 2, 3, 4, 5]`)
	one := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3, 4]`)
	noNulls := batchOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2]`, arrow.PrimitiveTypes.Int64, `[3, 4]`)
	doubles := batchOf(t, mem, arrow.PrimitiveTypes.Float64, `[1, 2.5]`)
	ctx := context.Background()
	round := func(n int) {
		for range n {
			for _, c := range []struct {
				name string
				rec  arrow.RecordBatch
			}{{"add", ints}, {"add_pandas", ints}, {"add_arrow", ints}, // results through pyarrow
				{"add_pandas", noNulls}, {"scale_pandas", doubles}} { // plain results (cgo/arrays.c)
				res, err := function(t, m, c.name).Eval(ctx, c.rec)
				if err != nil {
					t.Fatal(err)
				}
				res.Release()
			}
			for _, name := range []string{"two_d_plain", "no_buffer_plain", "narrow_plain"} {
				if _, err := function(t, m, name).Eval(ctx, one); err == nil {
					t.Fatalf("%s: no error", name)
				}
			}
			if _, err := function(t, m, "fail_on_3").Eval(ctx, one); err == nil {
				t.Fatal("no error")
			}
			res, errs, err := function(t, m, "fail_on_3").EvalRowErrors(ctx, one)
			if err != nil {
				t.Fatal(err)
			}
			res.Release()
			errs.Release()
			if _, err := function(t, m, "wrong_length").Eval(ctx, one); err == nil {
				t.Fatal("no error")
			}
			if _, err := function(t, m, "add").Eval(ctx, one); err == nil {
				t.Fatal("no schema error")
			}
		}
	}
	count := func(name string) int64 {
		v, err := function(t, m, name).Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v.(int64)
	}
	round(50)
	blocks, bytes, structs := count("python_blocks"), count("arrow_bytes"), arrowconv.LiveStructs()
	plain, plainBatches := cgo.PlainLive(), cgo.PlainBatchesLive()
	round(500)
	for range 3 { // interrupted batches too
		cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		if _, err := function(t, m, "spin_rows").Eval(cctx, one); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("spinning batch: %v", err)
		}
		cancel()
	}
	dBlocks, dBytes := count("python_blocks")-blocks, count("arrow_bytes")-bytes
	t.Logf("after 3500 batch evaluations: Python blocks %+d, pyarrow bytes %+d", dBlocks, dBytes)
	if dBlocks > 1000 || dBytes != 0 {
		t.Errorf("batch evaluation leaks: Python blocks %+d, pyarrow bytes %+d", dBlocks, dBytes)
	}
	if d := arrowconv.LiveStructs() - structs; d != 0 {
		t.Errorf("batch evaluation leaks %d ArrowArray/ArrowSchema structs", d)
	}
	if d := cgo.PlainLive() - plain; d != 0 {
		t.Errorf("batch evaluation leaks %d plain result arrays", d)
	}
	if d := cgo.PlainBatchesLive() - plainBatches; d != 0 {
		t.Errorf("batch evaluation holds on to %d batches taken as plain columns", d)
	}
}

func TestDeadlineInterruptsBatch(t *testing.T) {
	m := batchModule(t)
	e := m.engine
	spin, err := e.LoadSource(context.Background(), "spin_batch.py", `
from pyudf import udf
def slow(x):
    while True:
        pass
slow_rows = udf(slow, input_types=['BIGINT'], result_type='BIGINT')
slow_pandas = udf(slow, input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
`)
	if err != nil {
		t.Fatal(err)
	}
	rec := batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
	for _, name := range []string{"slow_rows", "slow_pandas"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		_, err := function(t, spin, name).Eval(ctx, rec)
		late := time.Since(deadlineOf(ctx))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || late > cancelLimit {
			t.Errorf("%s: %v, %v after the deadline", name, err, late)
		}
	}
	if got := eval(t, m, "add", batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1]`, arrow.PrimitiveTypes.Int64, `[2]`)); got != `[3]` {
		t.Errorf("after interruption: %s", got)
	}
}
