package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyudf/pyudf/bridge"
)

const datastreamSource = `
from pyflink.common import Row, Types
from pyflink.datastream import (FilterFunction, FlatMapFunction, KeyedProcessFunction, MapFunction,
                                OutputTag, ProcessFunction, ReduceFunction, RuntimeContext)
from pyflink.datastream.state import ValueStateDescriptor, ListStateDescriptor

class Double(MapFunction):
    def open(self, runtime_context: RuntimeContext):
        self.factor = int(runtime_context.get_job_parameter("factor", "2"))
        self.subtask = runtime_context.get_index_of_this_subtask()
    def map(self, value):
        return value * self.factor + self.subtask

class Words(FlatMapFunction):
    def flat_map(self, value):
        for w in value.split():
            yield w

class Positive(FilterFunction):
    def filter(self, value):
        return value > 0

class Sum(ReduceFunction):
    def reduce(self, a, b):
        return a + b

class Counter(KeyedProcessFunction):
    """Counts per key; every 2nd element registers an event-time timer 10 ms later."""
    def open(self, ctx):
        self.count = ctx.get_state(ValueStateDescriptor("count", Types.LONG()))
        self.seen = ctx.get_list_state(ListStateDescriptor("seen", Types.STRING()))
    def process_element(self, value, ctx):
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        self.seen.add(value)
        if n % 2 == 0:
            ctx.timer_service().register_event_time_timer(ctx.timestamp() + 10)
        yield ctx.get_current_key(), n
    def on_timer(self, timestamp, ctx):
        yield "timer %s@%d: %s" % (ctx.get_current_key(), timestamp, ",".join(self.seen.get()))

odd = OutputTag("odd", Types.LONG())

class Split(ProcessFunction):
    def process_element(self, value, ctx):
        if value % 2:
            yield odd, value
        else:
            yield value
`

func openOperator(t *testing.T, m *Module, name string, opts OperatorOptions) *Operator {
	t.Helper()
	o, err := m.Operator(context.Background(), name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// must returns a function that fails the test on an error and returns the output.
func must(t *testing.T) func(*Output, error) *Output {
	return func(out *Output, err error) *Output {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// errHas reports whether err is not nil and its message contains s.
func errHas(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

func TestOperatorMapFlatMapFilterReduce(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m, err := newEngine(t, Config{JobParameters: map[string]string{"factor": "3"}}).LoadSource(ctx, "ds.py", datastreamSource)
		if err != nil {
			t.Fatal(err)
		}
		double := openOperator(t, m, "Double", OperatorOptions{Subtask: 1})
		if v, err := double.Map(ctx, 10); err != nil || v != int64(31) {
			t.Errorf("Map = %v, %v", v, err)
		}
		if double.Kind() != "MapFunction" || double.Keyed() {
			t.Errorf("kind %q keyed %v", double.Kind(), double.Keyed())
		}
		words := openOperator(t, m, "Words", OperatorOptions{})
		if v, err := words.FlatMap(ctx, "a bb c"); err != nil || !reflect.DeepEqual(v, []any{"a", "bb", "c"}) {
			t.Errorf("FlatMap = %v, %v", v, err)
		}
		pos := openOperator(t, m, "Positive", OperatorOptions{})
		if keep, err := pos.Filter(ctx, -1); err != nil || keep {
			t.Errorf("Filter(-1) = %v, %v", keep, err)
		}
		if out := must(t)(pos.Process(ctx, nil, 5, NoTimestamp)); !reflect.DeepEqual(out.Main, []any{int64(5)}) {
			t.Errorf("Process(5) = %v", out.Main)
		}
		sum := openOperator(t, m, "Sum", OperatorOptions{})
		var got []any
		for i, k := range []string{"a", "b", "a", "a"} {
			got = append(got, must(t)(sum.Process(ctx, k, i+1, NoTimestamp)).Main...)
		}
		if want := []any{int64(1), int64(2), int64(4), int64(8)}; !reflect.DeepEqual(got, want) {
			t.Errorf("running reduce %v, want %v", got, want)
		}
		if _, err := sum.Map(ctx, 1); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Map of a ReduceFunction: %v", err)
		}
	})
}

func TestOperatorBatches(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "ds.py", datastreamSource)
		b := array.NewInt64Builder(memory.DefaultAllocator)
		b.AppendValues([]int64{1, -2, 3}, nil)
		col := b.NewArray()
		defer col.Release()
		batch := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, 3)
		defer batch.Release()

		double := openOperator(t, m, "Double", OperatorOptions{OutputType: bridge.MustParseType("BIGINT")})
		res, err := double.MapBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.(*array.Int64).Int64Values(); !reflect.DeepEqual(got, []int64{2, -4, 6}) {
			t.Errorf("MapBatch = %v", got)
		}
		res.Release()
		keep, err := openOperator(t, m, "Positive", OperatorOptions{}).FilterBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if s := keep.String(); s != "[true false true]" {
			t.Errorf("FilterBatch = %s", s)
		}
		keep.Release()

		sb := array.NewStringBuilder(memory.DefaultAllocator)
		sb.AppendValues([]string{"a b", "", "c"}, nil)
		scol := sb.NewArray()
		defer scol.Release()
		sbatch := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil), []arrow.Array{scol}, 3)
		defer sbatch.Release()
		words := openOperator(t, m, "Words", OperatorOptions{OutputType: bridge.MustParseType("STRING")})
		rows, err := words.FlatMapBatch(ctx, sbatch)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Release()
		if idx, w := rows.Column(0).String(), rows.Column(1).String(); idx != "[0 0 2]" || w != `["a" "b" "c"]` {
			t.Errorf("FlatMapBatch = %s %s", idx, w)
		}
	})
}

func TestOperatorKeyedStateTimersAndSideOutputs(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "ds.py", datastreamSource)
		c := openOperator(t, m, "Counter", OperatorOptions{})
		if !c.Keyed() || c.Kind() != "KeyedProcessFunction" {
			t.Fatalf("kind %q keyed %v", c.Kind(), c.Keyed())
		}
		feed := []struct {
			key string
			ts  int64
		}{{"a", 100}, {"b", 50}, {"b", 55}, {"a", 101}, {"a", 102}}
		for _, e := range feed {
			must(t)(c.Process(ctx, e.key, e.key+"@", e.ts))
		}
		if out := must(t)(c.AdvanceWatermark(ctx, 64)); out.Fired != 0 || len(out.Main) != 0 {
			t.Errorf("fired early: %+v", out)
		}
		out := must(t)(c.AdvanceWatermark(ctx, 1000))
		want := []any{"timer b@65: b@,b@", "timer a@111: a@,a@,a@"}
		if out.Fired != 2 || !reflect.DeepEqual(out.Main, want) {
			t.Errorf("timers: %+v, want %v", out, want)
		}
		if n, err := c.Len(ctx); err != nil || n != 2 {
			t.Errorf("Len = %d, %v", n, err)
		}

		split := openOperator(t, m, "Split", OperatorOptions{SideOutputs: []string{"odd"}})
		o := must(t)(split.Process(ctx, nil, 3, NoTimestamp))
		if len(o.Main) != 0 || !reflect.DeepEqual(o.Side["odd"], []any{int64(3)}) {
			t.Errorf("side output: %+v", o)
		}
		o = must(t)(split.Process(ctx, nil, 4, NoTimestamp))
		if !reflect.DeepEqual(o.Main, []any{int64(4)}) || o.Side != nil {
			t.Errorf("main output: %+v", o)
		}
	})
}

func TestOperatorSnapshotRestoreInAFreshEngine(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		a := openOperator(t, loadModule(t, Config{}, "ds.py", datastreamSource), "Counter", OperatorOptions{})
		must(t)(a.Process(ctx, "k", "x", 10))
		must(t)(a.Process(ctx, "k", "y", 12)) // timer k@22
		snap, err := a.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := openOperator(t, loadModule(t, Config{}, "ds.py", datastreamSource), "Counter", OperatorOptions{})
		if n, err := b.Restore(ctx, snap); err != nil || n != 1 {
			t.Fatalf("Restore = %d, %v", n, err)
		}
		for _, op := range []*Operator{a, b} {
			if out := must(t)(op.Process(ctx, "k", "z", 13)); !reflect.DeepEqual(out.Main, []any{[]any{"k", int64(3)}}) {
				t.Errorf("after restore: %v", out.Main)
			}
			if out := must(t)(op.AdvanceWatermark(ctx, 30)); !reflect.DeepEqual(out.Main, []any{"timer k@22: x,y,z"}) {
				t.Errorf("restored timer: %v", out.Main)
			}
		}
	})
}

func TestOperatorLookupKinds(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "ds.py", datastreamSource+"\nfrom pyflink.table.udf import udf\nplain = udf(lambda x: x, result_type='BIGINT')\n")
		if _, err := m.Function(ctx, "Counter"); !errors.Is(err, ErrUnsupported) || !errHas(err, "open it with Module.Operator") {
			t.Errorf("Function of a DataStream function: %v", err)
		}
		var pe *bridge.PythonError
		if _, err := m.Operator(ctx, "plain", OperatorOptions{}); !errors.As(err, &pe) || !errHas(err, "plain is not a DataStream function") {
			t.Errorf("Operator of a Table function: %v", err)
		}
		if _, err := m.Operator(ctx, "nothing", OperatorOptions{}); !errors.Is(err, ErrUnknownFunction) {
			t.Errorf("Operator of a missing name: %v", err)
		}
		// The engine is still usable.
		if v, err := openOperator(t, m, "Double", OperatorOptions{}).Map(ctx, 1); err != nil || v != int64(2) {
			t.Errorf("Map after failed lookups = %v, %v", v, err)
		}
	})
}

const ttlSource = `
from pyflink.common import Time, Types
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor

class Recent(KeyedProcessFunction):
    """Remembers each key's last value for one minute of processing time."""
    def open(self, ctx):
        d = ValueStateDescriptor("last", Types.STRING())
        d.enable_time_to_live(StateTtlConfig.new_builder(Time.minutes(1))
                              .set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)
                              .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                              .cleanup_full_snapshot()
                              .build())
        self.last = ctx.get_state(d)
    def process_element(self, value, ctx):
        previous = self.last.value()
        if value is not None:
            self.last.update(value)
        yield previous
`

// State time-to-live counts on the processing time Go advances; expired
// values are neither read nor snapshotted, and a restore drops what expired
// by the restoring operator's clock.
func TestOperatorStateTTL(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "ttl.py", ttlSource)
		o := openOperator(t, m, "Recent", OperatorOptions{})
		previous := func(op *Operator, key string) any {
			t.Helper()
			return must(t)(op.Process(ctx, key, nil, NoTimestamp)).Main[0]
		}
		must(t)(o.AdvanceProcessingTime(ctx, 0))
		must(t)(o.Process(ctx, "a", "a0", NoTimestamp))
		must(t)(o.AdvanceProcessingTime(ctx, 30_000))
		must(t)(o.Process(ctx, "b", "b30", NoTimestamp))
		must(t)(o.AdvanceProcessingTime(ctx, 59_999))
		if v := previous(o, "a"); v != "a0" {
			t.Errorf("a before its minute: %v", v)
		}
		snapAt59, err := o.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		must(t)(o.AdvanceProcessingTime(ctx, 60_000))
		if v := previous(o, "a"); v != nil {
			t.Errorf("a after its minute: %v", v)
		}
		snapAt60, err := o.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fresh := openOperator(t, m, "Recent", OperatorOptions{})
		if n, err := fresh.Restore(ctx, snapAt60); err != nil || n != 1 {
			t.Fatalf("restore of the later snapshot: %d keys, %v", n, err)
		}
		if v := previous(fresh, "b"); v != "b30" {
			t.Errorf("b restored: %v", v)
		}
		// The earlier snapshot still holds a; a clock already past its minute drops it.
		late := openOperator(t, m, "Recent", OperatorOptions{})
		must(t)(late.AdvanceProcessingTime(ctx, 120_000))
		if n, err := late.Restore(ctx, snapAt59); err != nil || n != 0 {
			t.Fatalf("restore after both expired: %d keys, %v", n, err)
		}
		if v := previous(late, "a"); v != nil {
			t.Errorf("expired a restored: %v", v)
		}
	})
}

const slowCounterSource = `
import time
from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.state import ValueStateDescriptor

class SlowCounter(KeyedProcessFunction):
    """Reads its count, sleeps (the GIL is free meanwhile), writes it."""
    def open(self, ctx):
        self.count = ctx.get_state(ValueStateDescriptor("count", Types.LONG()))
    def process_element(self, value, ctx):
        n = self.count.value() or 0
        time.sleep(0.0002)
        self.count.update(n + 1)
        yield ctx.get_current_key(), n + 1
`

// Calls of one operator from many goroutines run one at a time: no update
// of its state is lost, each output belongs to its element's key.
func TestOperatorConcurrentCallsRunOneAtATime(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		// Concurrency 4 and AffinityNone: calls from several goroutines
		// reach Python at once, on several threads.
		m := loadModule(t, Config{Concurrency: 4, Affinity: AffinityNone}, "slow.py", slowCounterSource)
		c := openOperator(t, m, "SlowCounter", OperatorOptions{})
		const goroutines, each = 8, 40
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for g := range goroutines {
			wg.Go(func() {
				key := fmt.Sprint("k", g%2)
				for range each {
					out, err := c.Process(ctx, key, "v", 1)
					if err != nil {
						errs <- err
						return
					}
					if got := out.Main[0].([]any)[0]; got != key {
						errs <- fmt.Errorf("output of key %v for an element of key %s", got, key)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, key := range []string{"k0", "k1"} {
			out := must(t)(c.Process(ctx, key, "v", 1))
			if n := out.Main[0].([]any)[1]; n != int64(goroutines/2*each+1) {
				t.Errorf("key %s: count %v, want %d", key, n, goroutines/2*each+1)
			}
		}
	})
}

const keyedMapSource = `
from pyflink.common import Types
from pyflink.datastream import MapFunction
from pyflink.datastream.state import ValueStateDescriptor

class RunningMax(MapFunction):
    """A MapFunction on a keyed stream: keyed state in open, as PyFlink allows."""
    def open(self, runtime_context):
        self.best = runtime_context.get_state(ValueStateDescriptor("best", Types.LONG()))
    def map(self, value):
        best = max(value, self.best.value() or value)
        self.best.update(best)
        return best
`

// OperatorOptions.Keyed gives a MapFunction keyed state; its elements then need keys.
func TestOperatorKeyedMapFunction(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "keyed_map.py", keyedMapSource)
		o := openOperator(t, m, "RunningMax", OperatorOptions{Keyed: true})
		var got []any
		for _, e := range []struct {
			key string
			v   int
		}{{"a", 3}, {"b", 1}, {"a", 2}, {"b", 5}, {"a", 7}} {
			got = append(got, must(t)(o.Process(ctx, e.key, e.v, NoTimestamp)).Main...)
		}
		if want := []any{int64(3), int64(1), int64(3), int64(5), int64(7)}; !reflect.DeepEqual(got, want) {
			t.Errorf("running max per key %v, want %v", got, want)
		}
		if _, err := o.Process(ctx, nil, 1, NoTimestamp); !errors.Is(err, ErrNoKey) {
			t.Errorf("keyed MapFunction without a key: %v", err)
		}
		// Without Keyed, the same function has no keyed state: open fails and says why.
		_, err := m.Operator(ctx, "RunningMax", OperatorOptions{})
		var pe *bridge.PythonError
		if !errors.As(err, &pe) || !errHas(err, "MapFunction RunningMax: keyed state needs a keyed stream") {
			t.Errorf("unkeyed: %v", err)
		}
	})
}
