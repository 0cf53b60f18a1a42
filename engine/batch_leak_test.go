package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyudf/pyudf/arrowconv"
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
	ctx := context.Background()
	round := func(n int) {
		for range n {
			for _, name := range []string{"add", "add_pandas", "add_arrow"} {
				res, err := function(t, m, name).Eval(ctx, ints)
				if err != nil {
					t.Fatal(err)
				}
				res.Release()
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
		if !errors.Is(err, context.DeadlineExceeded) || late > 100*time.Millisecond {
			t.Errorf("%s: %v, %v after the deadline", name, err, late)
		}
	}
	if got := eval(t, m, "add", batchOf(t, checkedAllocator(t), arrow.PrimitiveTypes.Int64, `[1]`, arrow.PrimitiveTypes.Int64, `[2]`)); got != `[3]` {
		t.Errorf("after interruption: %s", got)
	}
}
