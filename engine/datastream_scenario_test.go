package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The seed articles' real-time ML scenarios, written as a PyFlink user
// writes them against the DataStream API.
const scenarioSource = `
from pyflink.common import Row, Time, Types
from pyflink.datastream import (KeyedBroadcastProcessFunction, KeyedProcessFunction, OutputTag,
                                ProcessWindowFunction, RuntimeContext)
from pyflink.datastream.functions import AggregateFunction
from pyflink.datastream.state import MapStateDescriptor, StateTtlConfig, ValueStateDescriptor

TEN_MINUTES = 10 * 60 * 1000
late_clicks = OutputTag("late-clicks", Types.ROW_NAMED(["user", "item", "ts"], [Types.STRING(), Types.STRING(), Types.LONG()]))


class SampleLabeller(KeyedProcessFunction):
    """Keyed by user|item. An exposure waits 10 minutes (event time) for a
    click: a click in time labels it positive, the timer labels it negative;
    a click after that goes to the late side output."""

    def open(self, runtime_context: RuntimeContext):
        self.exposed_at = runtime_context.get_state(ValueStateDescriptor("exposed_at", Types.LONG()))
        self.labelled = runtime_context.get_metrics_group().counter("labelled")

    def process_element(self, event, ctx: 'KeyedProcessFunction.Context'):
        user, item = ctx.get_current_key().split("|")
        if event.kind == "exposure":
            self.exposed_at.update(event.ts)
            ctx.timer_service().register_event_time_timer(event.ts + TEN_MINUTES)
        elif event.kind == "click":
            exposed = self.exposed_at.value()
            if exposed is not None and event.ts <= exposed + TEN_MINUTES:
                ctx.timer_service().delete_event_time_timer(exposed + TEN_MINUTES)
                self.exposed_at.clear()
                self.labelled.inc()
                yield Row(user=user, item=item, label=1, ts=exposed)
            else:
                yield late_clicks, Row(user=user, item=item, ts=event.ts)

    def on_timer(self, timestamp: int, ctx: 'KeyedProcessFunction.OnTimerContext'):
        user, item = ctx.get_current_key().split("|")
        exposed = self.exposed_at.value()
        self.exposed_at.clear()
        self.labelled.inc()
        yield Row(user=user, item=item, label=0, ts=exposed)


class VisitedItems(AggregateFunction):
    """The DataStream form of the Table test's Visited UDAF."""

    def create_accumulator(self):
        return set()

    def add(self, value, accumulator):
        accumulator.add(value)
        return accumulator

    def get_result(self, accumulator):
        return "|".join(sorted(accumulator))

    def merge(self, acc_a, acc_b):
        return acc_a | acc_b


class VisitedWindow(ProcessWindowFunction):
    def process(self, key, context: 'ProcessWindowFunction.Context', elements):
        yield "|".join(sorted(set(elements)))


model = MapStateDescriptor("model", Types.STRING(), Types.PICKLED_BYTE_ARRAY())


class Scorer(KeyedBroadcastProcessFunction):
    """Scores each user's events with the model pushed on the broadcast side."""

    def process_element(self, value, ctx):
        m = ctx.get_broadcast_state(model).get("current")
        if m is None:
            return
        yield ctx.get_current_key(), m["version"], round(value * m["weight"], 3)

    def process_broadcast_element(self, value, ctx):
        ctx.get_broadcast_state(model).put("current", {"version": value[0], "weight": value[1]})


FIVE_MINUTES = 5 * 60 * 1000


class PeriodicInference(KeyedProcessFunction):
    """Every 5 minutes of processing time, predicts for each user active in
    the last period; an idle user's timer stops."""

    def open(self, ctx):
        ttl = StateTtlConfig.new_builder(Time.hours(1)).build()
        d = ValueStateDescriptor("clicks", Types.LONG())
        d.enable_time_to_live(ttl)
        self.clicks = ctx.get_state(d)
        self.timer = ctx.get_state(ValueStateDescriptor("timer", Types.LONG()))

    def process_element(self, value, ctx):
        self.clicks.update((self.clicks.value() or 0) + 1)
        if self.timer.value() is None:
            t = ctx.timer_service().current_processing_time() + FIVE_MINUTES
            ctx.timer_service().register_processing_time_timer(t)
            self.timer.update(t)

    def on_timer(self, timestamp, ctx):
        n = self.clicks.value() or 0
        if n == 0:
            self.timer.clear()
            return
        self.clicks.update(0)
        ctx.timer_service().register_processing_time_timer(timestamp + FIVE_MINUTES)
        self.timer.update(timestamp + FIVE_MINUTES)
        yield "%s@%d: %d clicks -> %s" % (ctx.get_current_key(), timestamp, n, "active" if n > 1 else "casual")
`

type labelEvent struct {
	kind, user, item string
	ts               int64 // ms
}

// labelEvents: exposures and clicks over an hour, watermarks every few events.
func labelEvents() []labelEvent {
	var ev []labelEvent
	const minute = 60_000
	for i := range 30 {
		user, item := fmt.Sprintf("u%d", i%4), fmt.Sprintf("i%d", i%3)
		ts := int64(i) * 2 * minute
		ev = append(ev, labelEvent{"exposure", user, item, ts})
		switch i % 3 {
		case 0: // clicked in time
			ev = append(ev, labelEvent{"click", user, item, ts + 3*minute})
		case 1: // clicked too late: after the 10 minutes
			ev = append(ev, labelEvent{"click", user, item, ts + 15*minute})
		}
	}
	// Sort by time, as a source with bounded disorder would deliver them.
	for i := 1; i < len(ev); i++ {
		for j := i; j > 0 && ev[j].ts < ev[j-1].ts; j-- {
			ev[j], ev[j-1] = ev[j-1], ev[j]
		}
	}
	return ev
}

// runLabeller feeds events[from:to] to o, advancing the watermark to each
// event's time minus 1 ms after every 3rd, and returns the outputs as text.
func runLabeller(t *testing.T, o *Operator, events []labelEvent, from, to int) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	collect := func(res *Output) {
		for _, v := range res.Main {
			out = append(out, fmt.Sprint(v))
		}
		for _, v := range res.Side["late-clicks"] {
			out = append(out, fmt.Sprint("late ", v))
		}
	}
	for i := from; i < to; i++ {
		e := events[i]
		collect(must(t)(o.Process(ctx, e.user+"|"+e.item, rowOf(e), e.ts)))
		if i%3 == 2 {
			collect(must(t)(o.AdvanceWatermark(ctx, e.ts-1)))
		}
	}
	if to == len(events) {
		collect(must(t)(o.AdvanceWatermark(ctx, math.MaxInt64)))
	}
	return out
}

func rowOf(e labelEvent) map[string]any { return map[string]any{"kind": e.kind, "ts": e.ts} }

func TestScenarioSampleLabelling(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "labelling.py", scenarioSource+attrRow)
		o := openOperator(t, m, "SampleLabeller", OperatorOptions{})
		events := labelEvents()
		out := runLabeller(t, o, events, 0, len(events))
		metrics, err := m.engine.Metrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var labelled float64
		for _, mt := range metrics {
			if mt.Function == "SampleLabeller" && mt.Name == "labelled" {
				labelled += mt.Value
			}
		}
		if labelled != 30 {
			t.Errorf("runtime_context.get_metrics_group() counter: %v, want 30 (%+v)", labelled, metrics)
		}
		var pos, neg, late int
		for _, line := range out {
			switch {
			case strings.HasPrefix(line, "late "):
				late++
			case strings.Contains(line, " 1 "):
				pos++
			default:
				neg++
			}
		}
		if pos != 10 || neg != 20 || late != 10 {
			t.Errorf("positives %d negatives %d late %d, want 10 20 10:\n%s", pos, neg, late, strings.Join(out, "\n"))
		}
		if want := "[u0 i0 1 0]"; out[0] != want {
			t.Errorf("first label %q, want %q", out[0], want)
		}
	})
}

// attrRow gives process_element events with attributes (event.kind) from
// the dicts Go sends.
const attrRow = `
_process = SampleLabeller.process_element
def _with_attrs(self, event, ctx):
    return _process(self, Row(**event) if isinstance(event, dict) else event, ctx)
SampleLabeller.process_element = _with_attrs
`

func TestScenarioSnapshotMidStreamRestoreInFreshEngine(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		events := labelEvents()
		uninterrupted := runLabeller(t, openOperator(t, loadModule(t, Config{}, "labelling.py", scenarioSource+attrRow),
			"SampleLabeller", OperatorOptions{}), events, 0, len(events))

		mid := len(events) / 2
		first := openOperator(t, loadModule(t, Config{}, "labelling.py", scenarioSource+attrRow), "SampleLabeller", OperatorOptions{})
		got := runLabeller(t, first, events, 0, mid)
		snap, err := first.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first.Close()
		second := openOperator(t, loadModule(t, Config{}, "labelling.py", scenarioSource+attrRow), "SampleLabeller", OperatorOptions{})
		if _, err := second.Restore(ctx, snap); err != nil {
			t.Fatal(err)
		}
		got = append(got, runLabeller(t, second, events, mid, len(events))...)
		if !reflect.DeepEqual(got, uninterrupted) {
			t.Errorf("restored run differs:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(uninterrupted, "\n"))
		}
	})
}

// The Table-UDAF window test's events (TestSlidingVisitedItemsGeneralAndPandasAgree)
// through a DataStream AggregateFunction and a ProcessWindowFunction: the same answers.
func TestScenarioSlidingWindowDataStreamAggregateMatchesTableUDAF(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "windows_ds.py", windowSource+scenarioSource)
		spec := WindowSpec{Kind: Sliding, Size: 5 * time.Minute, Slide: 30 * time.Second}
		table, err := NewWindows(spec, openAggregate(t, m, "visited"))
		if err != nil {
			t.Fatal(err)
		}
		ds, err := NewWindows(spec, openAggregate(t, m, "VisitedItems"))
		if err != nil {
			t.Fatal(err)
		}
		pw, err := NewProcessWindows(spec, openOperator(t, m, "VisitedWindow", OperatorOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		items := []string{"shoes", "hat", "laptop", "coffee", "bag"}
		var want, got, gotProcess []string
		unwrap := func(res []string) []string { // a ProcessWindowFunction's value is the list it yielded
			for i, r := range res {
				if at := strings.LastIndex(r, ") ["); at >= 0 && strings.HasSuffix(r, "]") {
					res[i] = r[:at+2] + r[at+3:len(r)-1]
				}
			}
			return res
		}
		for i := range 40 {
			user, ts, item := fmt.Sprintf("user-%d", i%3), at(i*17), items[i*7%len(items)]
			add(t, table, user, ts, item)
			add(t, ds, user, ts, item)
			add(t, pw, user, ts, item)
			if i%5 == 4 {
				want = append(want, fire(t, table, ts)...)
				got = append(got, fire(t, ds, ts)...)
				gotProcess = append(gotProcess, unwrap(fire(t, pw, ts))...)
			}
		}
		want = append(want, fire(t, table, at(3600))...)
		got = append(got, fire(t, ds, at(3600))...)
		gotProcess = append(gotProcess, unwrap(fire(t, pw, at(3600)))...)
		if len(want) < 40 || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotProcess, want) {
			t.Errorf("Table UDAF (%d), DataStream AggregateFunction (%d), ProcessWindowFunction (%d) differ:\n%v\n%v\n%v",
				len(want), len(got), len(gotProcess), want, got, gotProcess)
		}
		_ = ctx
	})
}

func TestScenarioBroadcastModelSwitch(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := openOperator(t, loadModule(t, Config{}, "scoring.py", scenarioSource), "Scorer", OperatorOptions{})
		var out []string
		score := func(user string, v float64) {
			for _, r := range must(t)(o.Process(ctx, user, v, NoTimestamp)).Main {
				out = append(out, fmt.Sprint(r))
			}
		}
		score("alice", 1) // no model yet: nothing
		must(t)(o.ProcessBroadcast(ctx, []any{"v1", 0.5}, NoTimestamp))
		score("alice", 2)
		score("bob", 2)
		must(t)(o.ProcessBroadcast(ctx, []any{"v2", 2.0}, NoTimestamp))
		score("alice", 2)
		score("bob", 3)
		want := []string{"[alice v1 1]", "[bob v1 1]", "[alice v2 4]", "[bob v2 6]"}
		if !reflect.DeepEqual(out, want) {
			t.Errorf("predictions %v, want %v", out, want)
		}
		// Broadcast state is part of a snapshot: a restored operator scores with v2.
		snap, err := o.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o = openOperator(t, loadModule(t, Config{}, "scoring.py", scenarioSource), "Scorer", OperatorOptions{})
		if _, err := o.Restore(ctx, snap); err != nil {
			t.Fatal(err)
		}
		out = nil
		score("carol", 1)
		if !reflect.DeepEqual(out, []string{"[carol v2 2]"}) {
			t.Errorf("after restore: %v", out)
		}
	})
}

func TestScenarioPeriodicInferenceOnProcessingTime(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := openOperator(t, loadModule(t, Config{}, "periodic.py", scenarioSource), "PeriodicInference", OperatorOptions{})
		const minute = int64(60_000)
		var out []string
		tick := func(now int64) {
			res := must(t)(o.AdvanceProcessingTime(ctx, now))
			for _, r := range res.Main {
				out = append(out, r.(string))
			}
		}
		tick(0)
		must(t)(o.Process(ctx, "alice", 1, NoTimestamp)) // timer alice@5m
		must(t)(o.Process(ctx, "alice", 1, NoTimestamp))
		tick(2 * minute)
		must(t)(o.Process(ctx, "bob", 1, NoTimestamp)) // timer bob@7m
		tick(5 * minute)                               // alice: 2 clicks
		must(t)(o.Process(ctx, "bob", 1, NoTimestamp))
		tick(10 * minute) // bob@7m: 2 clicks; alice@10m: none, stops
		must(t)(o.Process(ctx, "alice", 1, NoTimestamp))
		tick(20 * minute) // bob@12m: none, stops; alice@15m: 1 click; alice@20m: none, stops
		want := []string{
			"alice@300000: 2 clicks -> active",
			"bob@420000: 2 clicks -> active",
			"alice@900000: 1 clicks -> casual",
		}
		if !reflect.DeepEqual(out, want) {
			t.Errorf("predictions %q, want %q", out, want)
		}
	})
}

// Session windows merge DataStream accumulators with the function's merge,
// and a ProcessWindowFunction gets the merged session's elements.
func TestDataStreamWindowsSessionMerge(t *testing.T) {
	modes(t, func(t *testing.T) {
		m := loadModule(t, Config{}, "windows_ds.py", windowSource+scenarioSource)
		spec := WindowSpec{Kind: Session, Gap: 30 * time.Second}
		agg, err := NewWindows(spec, openAggregate(t, m, "VisitedItems"))
		if err != nil {
			t.Fatal(err)
		}
		pw, err := NewProcessWindows(spec, openOperator(t, m, "VisitedWindow", OperatorOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []struct {
			s    int
			item string
		}{{0, "a"}, {20, "b"}, {100, "c"}, {75, "d"}, {48, "e"}} { // 48 joins [0,50) and [75,130)
			add(t, agg, "u", at(e.s), e.item)
			add(t, pw, "u", at(e.s), e.item)
		}
		want := []string{"u [12:00:00,12:02:10) a|b|c|d|e"}
		if got := fire(t, agg, at(200)); !reflect.DeepEqual(got, want) {
			t.Errorf("DataStream AggregateFunction: %v", got)
		}
		if got := fire(t, pw, at(200)); !reflect.DeepEqual(got, []string{"u [12:00:00,12:02:10) [a|b|c|d|e]"}) {
			t.Errorf("ProcessWindowFunction: %v", got)
		}
		if err := pw.Retract(context.Background(), "u", at(0), "a"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Retract of a ProcessWindowFunction's windows: %v", err)
		}
		if _, err := NewProcessWindows(spec, openOperator(t, m, "Scorer", OperatorOptions{})); !errors.Is(err, ErrUnsupported) {
			t.Errorf("NewProcessWindows of a KeyedBroadcastProcessFunction: %v", err)
		}
	})
}
