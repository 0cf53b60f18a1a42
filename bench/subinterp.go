package main

import (
	"context"
	"fmt"
	"log"
	"runtime"
	"strings"
	"time"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// subinterpCases measures the sub-interpreter pool (mode subinterp: one
// sub-interpreter per CPU) on the row cases and udaf_sum_row with 1, 2 and 8 goroutines,
// each goroutine count in rounds interleaved with thread mode at the same
// count, and reports throughput_vs_1_goroutine against the pool's own one
// goroutine. On CPython before 3.12 it returns one row saying why the mode
// is absent.
func subinterpCases(ctx context.Context, teng *engine.Engine, rounds int, d time.Duration) []Result {
	peng, err := engine.New(ctx, engine.Config{Mode: engine.Subinterpreters})
	if err != nil {
		version, _ := teng.Python()
		return []Result{{Name: "scalar_add_row", Mode: "subinterp", Note: fmt.Sprintf(
			"absent: CPython %s has no sub-interpreters with their own GIL (3.12+): %v", version, err)}}
	}
	defer peng.Close()
	tfn := loadFunctions(ctx, teng, "bench_udfs.py", udfSource)
	pfn := loadFunctions(ctx, peng, "bench_udfs.py", udfSource)
	var results []Result
	for _, c := range []struct{ name, udf, input string }{
		{"scalar_add_row", "add", ""},
		{"json_lower_100b_row", "json_lower", jsonRecord(100)},
		{"upper_100b_row", "upper", strings.Repeat("pyudf Go ", 12)[:100]},
	} {
		call := func(f *engine.Function) row {
			if c.input == "" {
				return addWork(ctx, f)
			}
			return func(int) error {
				_, err := f.CallValues(ctx, bridge.String(c.input))
				return err
			}
		}
		var one float64
		for _, g := range []int{1, 2, 8} {
			t := &variant{goroutines: g, work: call(tfn(c.udf))}
			p := &variant{goroutines: g, work: call(pfn(c.udf))}
			measure(rounds, d, t, p)
			rp := p.result(c.name, "subinterp", rounds)
			rt := t.result(c.name, "thread", rounds)
			if g == 1 {
				one = rp.RowsPerS
			}
			rp.VsGoroutine1 = rp.RowsPerS / one
			rp.VsThread = rp.RowsPerS / rt.RowsPerS
			rp.Note = fmt.Sprintf("%d sub-interpreters; thread mode at %d goroutines in the same rounds: %.0f rows/s",
				runtime.NumCPU(), g, rt.RowsPerS)
			results = append(results, rp)
		}
	}
	// udaf_sum_row: Accumulate over 1000 keys, each key's accumulator in one
	// sub-interpreter (pinned by key).
	sum := func(eng *engine.Engine) *engine.Aggregate {
		mod, err := eng.LoadSource(ctx, "bench_pool_aggregates.py", aggregateSource)
		if err != nil {
			log.Fatal(err)
		}
		agg, err := mod.Aggregate(ctx, "sum_udaf")
		if err != nil {
			log.Fatal(err)
		}
		return agg
	}
	tagg, pagg := sum(teng), sum(peng)
	defer tagg.Close()
	defer pagg.Close()
	var one float64
	for _, g := range []int{1, 2, 8} {
		t := &variant{goroutines: g, work: accumulateWork(ctx, tagg)}
		p := &variant{goroutines: g, work: accumulateWork(ctx, pagg)}
		measure(rounds, d, t, p)
		rp, rt := p.result("udaf_sum_row", "subinterp", rounds), t.result("udaf_sum_row", "thread", rounds)
		if g == 1 {
			one = rp.RowsPerS
		}
		rp.VsGoroutine1, rp.VsThread = rp.RowsPerS/one, rp.RowsPerS/rt.RowsPerS
		rp.Note = fmt.Sprintf("%d sub-interpreters, %d keys pinned by key; thread mode at %d goroutines in the same rounds: %.0f rows/s",
			runtime.NumCPU(), aggregateKeys, g, rt.RowsPerS)
		results = append(results, rp)
	}
	return results
}
