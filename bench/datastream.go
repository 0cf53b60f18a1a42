package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pyudf/pyudf/engine"
)

const datastreamSource = `
from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.state import ValueStateDescriptor

class CountWithTimer(KeyedProcessFunction):
    """A per-key count in ValueState; every 100th element of a key registers
    an event-time timer a second later; on_timer emits the key's count."""

    def open(self, runtime_context):
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, value, ctx):
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        if n % 100 == 0:
            ctx.timer_service().register_event_time_timer(ctx.timestamp() + 1000)
        return ()

    def on_timer(self, timestamp, ctx):
        yield ctx.get_current_key(), self.count.value()

class TimerPerElement(CountWithTimer):
    """CountWithTimer registering a timer for every element."""

    def process_element(self, value, ctx):
        self.count.update((self.count.value() or 0) + 1)
        ctx.timer_service().register_event_time_timer(ctx.timestamp() + 1000)
        return ()
`

const datastreamKeys = 10_000

// datastreamCases measures keyed_process_row (a KeyedProcessFunction with a
// ValueState count per key and a timer every 100th element, over 10K keys)
// in modes thread, process and go; with full set, also timers fired per
// second and Snapshot/Restore of 100K keys.
func datastreamCases(ctx context.Context, eng *engine.Engine, rounds int, d time.Duration, full bool) []Result {
	open := func(e *engine.Engine) *engine.Operator {
		mod, err := e.LoadSource(ctx, "bench_datastream.py", datastreamSource)
		if err != nil {
			log.Fatal(err)
		}
		o, err := mod.Operator(ctx, "CountWithTimer", engine.OperatorOptions{})
		if err != nil {
			log.Fatal(err)
		}
		return o
	}
	work := func(o *engine.Operator) row {
		return func(i int) error {
			_, err := o.Process(ctx, int64(i%datastreamKeys), int64(i), int64(i))
			return err
		}
	}
	thread := open(eng)
	defer thread.Close()
	peng, err := engine.New(ctx, engine.Config{Mode: engine.Process, Workers: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer peng.Close()
	proc := open(peng)

	counts := map[int64]int64{}
	timers := map[[2]int64]struct{}{} // key, timestamp: deduplicated as Flink does
	goMode := &variant{goroutines: 1, work: func(i int) error {
		key := int64(i % datastreamKeys)
		counts[key]++
		if counts[key]%100 == 0 {
			timers[[2]int64{key, int64(i) + 1000}] = struct{}{}
		}
		return nil
	}}
	tv := &variant{goroutines: 1, work: work(thread)}
	pv := &variant{goroutines: 1, work: work(proc)}
	measure(rounds, d, tv, pv, goMode)
	rt, rp := tv.result("keyed_process_row", "thread", rounds), pv.result("keyed_process_row", "process", rounds)
	rt.Note = fmt.Sprintf("%d keys, ValueState count, an event-time timer every 100th element of a key", datastreamKeys)
	rp.Note = rt.Note + "; one worker"
	rp.ThreadVsProcess = rt.RowsPerS / rp.RowsPerS
	rg := goMode.result("keyed_process_row", "go", rounds)
	rg.Note = "the same logic in Go: a map of counts and a map of (key, timestamp) timers"
	results := []Result{rt, rp, rg}
	if full {
		results = append(results, timersCase(ctx, eng), datastreamSnapshotCase(ctx, eng))
	}
	return results
}

// timersCase registers 100K event-time timers (one per element, 1K keys)
// and times the AdvanceWatermark that fires them all.
func timersCase(ctx context.Context, eng *engine.Engine) Result {
	mod, err := eng.LoadSource(ctx, "bench_datastream.py", datastreamSource)
	if err != nil {
		log.Fatal(err)
	}
	o, err := mod.Operator(ctx, "TimerPerElement", engine.OperatorOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer o.Close()
	const n = 100_000
	for i := range n {
		if _, err := o.Process(ctx, int64(i%1000), nil, int64(i)); err != nil {
			log.Fatal(err)
		}
	}
	start := time.Now()
	out, err := o.AdvanceWatermark(ctx, 1<<40)
	if err != nil || out.Fired != n {
		log.Fatalf("fired %v of %d timers: %v", out, n, err)
	}
	took := time.Since(start)
	return Result{Name: "keyed_process_timers_fired", Mode: "thread", Goroutines: 1, BatchRows: n, Rounds: 1,
		RowsPerS: float64(n) / took.Seconds(),
		Note: fmt.Sprintf("%d event-time timers over 1K keys fired by one AdvanceWatermark in %.1f ms (each on_timer reads ValueState and emits a row)",
			n, float64(took.Microseconds())/1000)}
}

// datastreamSnapshotCase times Snapshot and Restore (into a fresh operator)
// of a KeyedProcessFunction with 100K keys and 1K timers.
func datastreamSnapshotCase(ctx context.Context, eng *engine.Engine) Result {
	const keys = 100_000
	mod, err := eng.LoadSource(ctx, "bench_datastream.py", datastreamSource)
	if err != nil {
		log.Fatal(err)
	}
	src, err := mod.Operator(ctx, "CountWithTimer", engine.OperatorOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	for i := range keys + 100*1000 { // every key once; keys 0..999 100 times more: 1K timers
		key := int64(i % keys)
		if i >= keys {
			key = int64(i % 1000)
		}
		if _, err := src.Process(ctx, key, nil, int64(i)); err != nil {
			log.Fatal(err)
		}
	}
	start := time.Now()
	snap, err := src.Snapshot(ctx)
	if err != nil {
		log.Fatal(err)
	}
	taken := time.Since(start)
	dst, err := mod.Operator(ctx, "CountWithTimer", engine.OperatorOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Close()
	start = time.Now()
	n, err := dst.Restore(ctx, snap)
	if err != nil || n != keys {
		log.Fatalf("restore: %d keys, %v", n, err)
	}
	restored := time.Since(start)
	return Result{Name: "keyed_process_snapshot_100k_keys", Mode: "thread", Goroutines: 1, BatchRows: keys, Rounds: 1,
		RowsPerS: keys / (taken + restored).Seconds(),
		Note: fmt.Sprintf("ValueState of 100K keys and 1K timers: snapshot %.1f ms (%d KB), restore %.1f ms",
			float64(taken.Microseconds())/1000, len(snap)>>10, float64(restored.Microseconds())/1000)}
}
