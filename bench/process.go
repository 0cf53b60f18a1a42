package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/pyudf/pyudf/bridge"
	"github.com/pyudf/pyudf/engine"
)

// processCases measures every case of design.md §5 in process mode, each in
// rounds interleaved with the same case in thread mode, and reports the
// process-mode results with the thread/process ratios of those rounds. Row
// cases use the synchronous one-row path (one request per row, as fair a
// latency comparison as there is); scalar_add_row also runs as a Stream,
// bundled as PyFlink bundles (1000 rows or 1 s), for throughput.
func processCases(ctx context.Context, teng, peng *engine.Engine, rounds int, d time.Duration) []Result {
	tfn := loadFunctions(ctx, teng, "bench_udfs.py", udfSource)
	pfn := loadFunctions(ctx, peng, "bench_udfs.py", udfSource)
	var results []Result
	// pair measures a case in both modes; lat, if given, replaces the
	// process variant's latencies (a Stream's, measured send to result).
	pair := func(name string, goroutines, rows int, tw, pw row, note string, lat ...*[]int64) {
		t := &variant{goroutines: goroutines, batchRows: rows, work: tw}
		p := &variant{goroutines: goroutines, batchRows: rows, work: pw}
		measure(rounds, d, t, p)
		if len(lat) > 0 {
			p.lat = *lat[0]
		}
		rt, rp := t.result(name, "thread", rounds), p.result(name, "process", rounds)
		rp.ThreadVsProcess = rt.RowsPerS / rp.RowsPerS
		rp.P99ProcessVsThread = float64(rp.P99Ns) / float64(max(rt.P99Ns, 1))
		rp.Note = note
		if goroutines > 1 && name != "scalar_add_row" { // main measures only scalar_add_row at 8 goroutines
			results = append(results, rt)
		}
		results = append(results, rp)
	}
	for _, g := range []int{1, 8} {
		pair("scalar_add_row", g, 1, addWork(ctx, tfn("add")), addWork(ctx, pfn("add")), "one request per row")
	}
	results = append(results, spinCase(ctx, peng, pfn("add"), rounds, d))
	stream, lat := streamAdd(ctx, pfn("add"))
	pair("scalar_add_row", 1, 1, addWork(ctx, tfn("add")), stream,
		"Stream: bundles of 1000 rows; latency is Send to result", lat)
	for _, c := range []struct{ name, udf, input string }{
		{"json_lower_100b_row", "json_lower", jsonRecord(100)},
		{"json_lower_1k_row", "json_lower", jsonRecord(1000)},
		{"upper_100b_row", "upper", strings.Repeat("pyudf Go ", 12)[:100]},
	} {
		call := func(f *engine.Function) row {
			return func(int) error {
				_, err := f.CallValues(ctx, bridge.String(c.input))
				return err
			}
		}
		for _, g := range []int{1, 8} {
			pair(c.name, g, 1, call(tfn(c.udf)), call(pfn(c.udf)), fmt.Sprintf("input %d bytes; one request per row", len(c.input)))
		}
	}

	tb := loadFunctions(ctx, teng, "bench_batch.py", batchSource)
	pb := loadFunctions(ctx, peng, "bench_batch.py", batchSource)
	const rows = 64 * 1024
	batch := addBatch(rows)
	defer batch.Release()
	for _, c := range []struct{ name, udf string }{
		{"scalar_add_batch", "add_rows"}, {"pandas_add_batch", "add_pandas"}, {"arrow_add_batch", "add_arrow"},
	} {
		pair(c.name, 1, rows, evalWork(ctx, tb(c.udf), batch), evalWork(ctx, pb(c.udf), batch), "latency is per batch")
	}

	_, ta := openSum(ctx, teng)
	_, pa := openSum(ctx, peng)
	for _, g := range []int{1, 8} {
		pair("udaf_sum_row", g, 1, accumulateWork(ctx, ta), accumulateWork(ctx, pa), "one request per row; the accumulators live on one worker")
	}
	return results
}

// streamAdd sends rows to a Stream of add; every 1000th row, it reads the
// results of the 1000 rows sent, so bundles go out full. Latency is
// measured for every 8th row from Send to its result.
func streamAdd(ctx context.Context, f *engine.Function) (row, *[]int64) {
	s, err := f.Stream(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var lat []int64
	sentAt := map[int64]time.Time{}
	var seq int64
	return func(i int) error {
		if seq%8 == 0 {
			sentAt[seq] = time.Now()
		}
		if err := s.Send(int64(i), int64(1)); err != nil {
			return err
		}
		seq++
		if seq%1000 != 0 {
			return nil
		}
		for range 1000 {
			r := <-s.Results()
			if r.Err != nil {
				return r.Err
			}
			if t0, ok := sentAt[r.Seq]; ok {
				lat = append(lat, time.Since(t0).Nanoseconds())
				delete(sentAt, r.Seq)
			}
		}
		return nil
	}, &lat
}

// benchSpin is the ProcessSpin of mode process-spin's engine.
const benchSpin = 100 * time.Microsecond

// spinCase measures one synchronous process-mode row call with
// Config.ProcessSpin (mode process-spin) in the same interleaved rounds as
// the engine without it (peng, unless bench -process-spin gave it one), so
// the two p50s come from the same machine state. A machine whose vCPUs idle
// between calls is where the spin pays: without it each call waits for a
// halted vCPU to wake, on both sides of the pipe.
func spinCase(ctx context.Context, peng *engine.Engine, add *engine.Function, rounds int, d time.Duration) Result {
	// One worker: a single synchronous caller uses one, and every idle worker
	// would spin after its reply too (with two, three spinners on two cores).
	seng, err := engine.New(ctx, engine.Config{Mode: engine.Process, Workers: 1, ProcessSpin: benchSpin})
	if err != nil {
		log.Fatal(err)
	}
	defer seng.Close()
	sadd := loadFunctions(ctx, seng, "bench_udfs.py", udfSource)("add")
	p := &variant{goroutines: 1, batchRows: 1, work: addWork(ctx, add)}
	s := &variant{goroutines: 1, batchRows: 1, work: addWork(ctx, sadd)}
	measure(rounds, d, p, s)
	rp, rs := p.result("scalar_add_row", "process", rounds), s.result("scalar_add_row", "process-spin", rounds)
	rs.Note = fmt.Sprintf("Config.ProcessSpin %v, 1 worker, one request per row; the same rounds without it: p50 %.1f µs, %.0f rows/s",
		benchSpin, float64(rp.P50Ns)/1e3, rp.RowsPerS)
	return rs
}
