package engine_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pyudf/pyudf/engine"
)

const weightedAvg = `
from pyflink.common import Row
from pyflink.table import AggregateFunction, DataTypes
from pyflink.table.udf import udaf

class WeightedAvg(AggregateFunction):
    def create_accumulator(self):
        return Row(0, 0)            # sum of value * weight, sum of weights

    def accumulate(self, acc, value, weight):
        acc[0] += value * weight
        acc[1] += weight

    def retract(self, acc, value, weight):
        acc[0] -= value * weight
        acc[1] -= weight

    def get_value(self, acc):
        return None if acc[1] == 0 else acc[0] / acc[1]

weighted_avg = udaf(WeightedAvg(), input_types=['DOUBLE', 'BIGINT'],
                    result_type=DataTypes.DOUBLE(), accumulator_type='ROW<f0 DOUBLE, f1 BIGINT>')
`

// An aggregate keeps one accumulator per key, in Python. Snapshot pickles
// every accumulator for a checkpoint; Restore puts them back, in this engine
// or in another one (another process, after a restart).
func ExampleAggregate() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "wavg.py", weightedAvg)
	if err != nil {
		log.Fatal(err)
	}
	avg, err := mod.Aggregate(ctx, "weighted_avg")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range []struct {
		key    string
		value  float64
		weight int64
	}{{"ada", 10, 1}, {"ada", 20, 3}, {"bob", 5, 2}} {
		if err := avg.Accumulate(ctx, r.key, r.value, r.weight); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(avg.Value(ctx, "ada"))

	snap, err := avg.Snapshot(ctx) // a checkpoint
	if err != nil {
		log.Fatal(err)
	}
	if err := avg.Retract(ctx, "ada", 20.0, 3); err != nil {
		log.Fatal(err)
	}
	fmt.Println(avg.Value(ctx, "ada"))

	// Another engine (here in the same process) restores the checkpoint.
	eng2, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng2.Close()
	mod2, err := eng2.LoadSource(ctx, "wavg.py", weightedAvg) // same module name: the pickles name it
	if err != nil {
		log.Fatal(err)
	}
	avg2, err := mod2.Aggregate(ctx, "weighted_avg")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(avg2.Restore(ctx, snap))
	fmt.Println(avg2.Value(ctx, "ada"))
	fmt.Println(avg2.Value(ctx, "bob"))
	// Output:
	// 17.5 <nil>
	// 10 <nil>
	// 2 <nil>
	// 17.5 <nil>
	// 5 <nil>
}

// Windows drives an aggregate over keyed event-time windows: Add puts a row
// into every window that contains its time, Watermark fires the windows that
// ended.
func ExampleNewWindows() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadSource(ctx, "wavg.py", weightedAvg)
	if err != nil {
		log.Fatal(err)
	}
	avg, err := mod.Aggregate(ctx, "weighted_avg")
	if err != nil {
		log.Fatal(err)
	}
	w, err := engine.NewWindows(engine.WindowSpec{
		Kind: engine.Tumbling, Size: time.Minute, AllowedLateness: 30 * time.Second,
	}, avg)
	if err != nil {
		log.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, r := range []struct {
		key    string
		second int
		value  float64
	}{{"ada", 5, 10}, {"ada", 50, 20}, {"bob", 30, 7}, {"ada", 65, 40}} {
		if err := w.Add(ctx, r.key, at(r.second), r.value, 1); err != nil {
			log.Fatal(err)
		}
	}
	show := func(results []engine.WindowResult, err error) {
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range results {
			fmt.Println(r.Key, r.Window.Start.Format("15:04:05"), r.Window.End.Format("15:04:05"), r.Value, r.Update)
		}
	}
	show(w.Watermark(ctx, at(60)))                            // the first minute ended
	if err := w.Add(ctx, "bob", at(40), 9.0, 1); err != nil { // late, within the allowed lateness
		log.Fatal(err)
	}
	show(w.Watermark(ctx, at(70)))                            // fires the updated window again
	show(w.Watermark(ctx, at(90)))                            // the first minute's lateness is over: nothing fires
	if err := w.Add(ctx, "bob", at(10), 1.0, 1); err != nil { // too late: the side output
		log.Fatal(err)
	}
	show(w.Watermark(ctx, at(120)))
	for _, l := range w.Late() {
		fmt.Println("late:", l.Key, l.Time.Format("15:04:05"), l.Args)
	}
	// Output:
	// ada 12:00:00 12:01:00 15 false
	// bob 12:00:00 12:01:00 7 false
	// bob 12:00:00 12:01:00 8 true
	// ada 12:01:00 12:02:00 40 false
	// late: bob 12:00:10 [1 1]
}
