package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyudf/pyudf/arrowconv"
	"github.com/pyudf/pyudf/engine"
)

const aggregateSource = `
from pyudf import AggregateFunction, udaf

class Sum(AggregateFunction):
    def create_accumulator(self):
        return [0]
    def accumulate(self, acc, x):
        acc[0] += x
    def get_value(self, acc):
        return acc[0]

sum_udaf = udaf(Sum(), input_types=['BIGINT'], result_type='BIGINT')
sum_pandas = udaf(lambda x: x.sum(), input_types=['BIGINT'], result_type='BIGINT', func_type='pandas')
`

const aggregateKeys = 1000

// openSum loads the aggregate cases' module into eng and opens sum_udaf.
func openSum(ctx context.Context, eng *engine.Engine) (*engine.Module, *engine.Aggregate) {
	mod, err := eng.LoadSource(ctx, "bench_aggregates.py", aggregateSource)
	if err != nil {
		log.Fatal(err)
	}
	agg, err := mod.Aggregate(ctx, "sum_udaf")
	if err != nil {
		log.Fatal(err)
	}
	return mod, agg
}

// accumulateWork accumulates row i into key i % aggregateKeys, one row per call.
func accumulateWork(ctx context.Context, agg *engine.Aggregate) row {
	return func(i int) error { return agg.Accumulate(ctx, int64(i%aggregateKeys), int64(i)) }
}

// aggregateCases measures udaf_sum_row (one Accumulate per row over 1000
// keys) in modes thread and go; with full set, also batched accumulate, the
// Pandas UDAF at 1K and 64K rows per window, and snapshot and restore of 100K keys.
func aggregateCases(ctx context.Context, eng *engine.Engine, rounds int, d time.Duration, full bool) []Result {
	mod, agg := openSum(ctx, eng)
	defer agg.Close()
	thread := &variant{goroutines: 1, work: accumulateWork(ctx, agg)}
	sums := map[int64]int64{}
	goMode := &variant{goroutines: 1, work: func(i int) error {
		sums[int64(i%aggregateKeys)] += int64(i)
		return nil
	}}
	measure(rounds, d, thread, goMode)
	results := []Result{thread.result("udaf_sum_row", "thread", rounds), goMode.result("udaf_sum_row", "go", rounds)}
	if !full {
		return results
	}

	const rows = 64 * 1024
	keyed := int64Batch(rows, func(i int) int64 { return int64(i % aggregateKeys) }, func(i int) int64 { return int64(i) })
	defer keyed.Release()
	batched := &variant{goroutines: 1, batchRows: rows, work: func(int) error { return agg.AccumulateBatch(ctx, keyed, 0) }}
	measure(rounds, d, batched)
	r := batched.result("udaf_sum_batch", "thread", rounds)
	r.Note = fmt.Sprintf("AccumulateBatch, %d keys, latency is per batch", aggregateKeys)
	results = append(results, r)

	pandas, err := mod.Function(ctx, "sum_pandas")
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range []int{1024, rows} {
		window := int64Batch(n, func(i int) int64 { return int64(i) })
		want := int64(n) * int64(n-1) / 2
		v := &variant{goroutines: 1, batchRows: n, work: func(int) error {
			got, err := pandas.Reduce(ctx, window)
			if err == nil && got != want {
				err = fmt.Errorf("sum = %v, want %d", got, want)
			}
			return err
		}}
		measure(rounds, d, v)
		r := v.result("pandas_udaf_sum_window", "thread", rounds)
		r.Note = "Reduce over one window per call, latency is per window"
		results = append(results, r)
		window.Release()
	}
	results = append(results, snapshotCase(ctx, mod))
	prog.step("snapshot 100K keys")
	return results
}

// snapshotCase times Snapshot and Restore of an aggregate with 100K keys.
func snapshotCase(ctx context.Context, mod *engine.Module) Result {
	const keys = 100_000
	agg, err := mod.Aggregate(ctx, "sum_udaf")
	if err != nil {
		log.Fatal(err)
	}
	defer agg.Close()
	batch := int64Batch(keys, func(i int) int64 { return int64(i) }, func(i int) int64 { return 1 })
	defer batch.Release()
	if err := agg.AccumulateBatch(ctx, batch, 0); err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	snap, err := agg.Snapshot(ctx)
	if err != nil {
		log.Fatal(err)
	}
	taken := time.Since(start)
	start = time.Now()
	n, err := agg.Restore(ctx, snap)
	if err != nil || n != keys {
		log.Fatalf("restore: %d keys, %v", n, err)
	}
	restored := time.Since(start)
	return Result{Name: "udaf_snapshot_100k_keys", Mode: "thread", Goroutines: 1, BatchRows: keys, Rounds: 1,
		RowsPerS: keys / (taken + restored).Seconds(),
		Note: fmt.Sprintf("snapshot %.1f ms (%d KB), restore %.1f ms", float64(taken.Microseconds())/1000,
			len(snap)>>10, float64(restored.Microseconds())/1000)}
}

// int64Batch builds a batch of BIGINT columns of n rows in C memory, column j's row i being cols[j](i).
func int64Batch(n int, cols ...func(int) int64) arrow.RecordBatch {
	var fields []arrow.Field
	var arrays []arrow.Array
	for j, col := range cols {
		b := array.NewInt64Builder(arrowconv.DefaultAllocator)
		for i := range n {
			b.Append(col(i))
		}
		arrays = append(arrays, b.NewArray())
		b.Release()
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("c%d", j), Type: arrow.PrimitiveTypes.Int64})
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrays, int64(n))
	for _, a := range arrays {
		a.Release()
	}
	return rec
}
