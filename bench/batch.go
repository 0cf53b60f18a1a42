package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/engine"
)

// batchSource holds the UDFs of the batch cases and, for mode python, the
// same work done inside the interpreter on data already there.
const batchSource = `
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyudf import udf

def add(a, b):
    return a + b

add_rows = udf(add, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
add_pandas = udf(lambda a, b: a + b, input_types=['BIGINT', 'BIGINT'], result_type='BIGINT', func_type='pandas')
add_arrow = udf(lambda a, b: pc.add(a, b), input_types=['BIGINT', 'BIGINT'], result_type='BIGINT', func_type='arrow')

_data = {}

def prepare(n):
    """Make the columns once, as Python lists, Series and Arrow arrays."""
    a, b = list(range(n)), [7] * n
    _data.update(lists=(a, b), series=(pd.Series(a), pd.Series(b)),
                 arrays=(pa.array(a, pa.int64()), pa.array(b, pa.int64())))
    return n

def python_rows():
    a, b = _data["lists"]
    return len([add(x, y) for x, y in zip(a, b)])

def python_map():
    """python_rows with the loop in C, as the engine's row-wise loop is:
    each row's call enters the interpreter's eval loop anew, where the list
    comprehension's call stays inside it."""
    a, b = _data["lists"]
    return len(list(map(add, a, b)))

def python_pandas():
    a, b = _data["series"]
    return len(a + b)

def python_arrow():
    a, b = _data["arrays"]
    return len(pc.add(a, b))
`

// batchCases measures scalar_add_batch, pandas_add_batch and arrow_add_batch
// over 64K-row batches in modes thread and python, and, when sweep is set,
// the row-wise and Pandas paths at 1, 16, 256, 4K and 64K rows per batch.
func batchCases(ctx context.Context, eng *engine.Engine, rounds int, d time.Duration, sweep bool) []Result {
	fn := loadFunctions(ctx, eng, "bench_batch.py", batchSource)
	const rows = 64 * 1024
	if _, err := fn("prepare").Call(ctx, rows); err != nil {
		log.Fatal(err)
	}
	batch := addBatch(rows)
	defer batch.Release()

	pythonWork := func(name string) row {
		f := fn(name)
		return func(int) error {
			v, err := f.CallValues(ctx)
			if err == nil && v.AsInt64() != rows {
				err = fmt.Errorf("%s covered %d rows", name, v.AsInt64())
			}
			return err
		}
	}
	var results []Result
	var rowWise float64
	for _, c := range []struct{ name, udf, python string }{
		{"scalar_add_batch", "add_rows", "python_rows"},
		{"pandas_add_batch", "add_pandas", "python_pandas"},
		{"arrow_add_batch", "add_arrow", "python_arrow"},
	} {
		thread := &variant{goroutines: 1, batchRows: rows, work: evalWork(ctx, fn(c.udf), batch)}
		python := &variant{goroutines: 1, batchRows: rows, work: pythonWork(c.python)}
		variants := []*variant{thread, python}
		var pythonMap *variant // the row-wise case's C-driven loop, its floor
		if c.name == "scalar_add_batch" {
			pythonMap = &variant{goroutines: 1, batchRows: rows, work: pythonWork("python_map")}
			variants = append(variants, pythonMap)
		}
		measure(rounds, d, variants...)
		rt, rp := thread.result(c.name, "thread", rounds), python.result(c.name, "python", rounds)
		rt.VsPython = rt.RowsPerS / rp.RowsPerS
		rt.Note = "latency is per batch"
		if c.name == "scalar_add_batch" {
			rowWise = rt.RowsPerS
		} else {
			rt.VsRowWise = rt.RowsPerS / rowWise
		}
		if pythonMap == nil {
			results = append(results, rt, rp)
			continue
		}
		rm := pythonMap.result(c.name, "python-map", rounds)
		rm.Note = "the loop in C: list(map(add, a, b))"
		rt.VsPythonMap = rt.RowsPerS / rm.RowsPerS
		results = append(results, rt, rp, rm)
	}
	if sweep {
		for _, n := range []int{1, 16, 256, 4096, rows} {
			b := addBatch(n)
			for _, c := range []struct{ name, udf string }{{"scalar_add_batch", "add_rows"}, {"pandas_add_batch", "add_pandas"}} {
				v := &variant{goroutines: 1, batchRows: n, work: evalWork(ctx, fn(c.udf), b)}
				measure(rounds, d, v)
				r := v.result(c.name, "thread", rounds)
				r.Note = fmt.Sprintf("batch-size sweep: %.1f µs per batch", float64(n)/r.RowsPerS*1e6)
				results = append(results, r)
			}
			b.Release()
		}
	}
	return results
}

// evalWork evaluates f (an add over addBatch columns) over batch and checks the last value.
func evalWork(ctx context.Context, f *engine.Function, batch arrow.RecordBatch) row {
	return func(int) error {
		res, err := f.Eval(ctx, batch)
		if err != nil {
			return err
		}
		defer res.Release()
		if got := res.(*array.Int64).Value(res.Len() - 1); got != int64(res.Len()-1+7) {
			return fmt.Errorf("%s: last value %d", f.Name(), got)
		}
		return nil
	}
}

// addBatch builds two BIGINT columns (i and 7) of n rows in C memory, so
// that they cross to Python without a copy.
func addBatch(n int) arrow.RecordBatch {
	return int64Batch(n, func(i int) int64 { return int64(i) }, func(int) int64 { return 7 })
}
