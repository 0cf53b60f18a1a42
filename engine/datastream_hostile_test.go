package engine

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pyudf/pyudf/bridge"
)

const hostileDatastreamSource = `
import time
from pyflink.common import Types
from pyflink.datastream import (KeyedBroadcastProcessFunction, KeyedProcessFunction, MapFunction,
                                FlatMapFunction, OutputTag, ProcessFunction)
from pyflink.datastream.state import ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor

class Fragile(KeyedProcessFunction):
    """Counts per key; the value "boom" raises after touching the state,
    "spin" loops until cancelled, a timer at ts 13 raises."""
    def open(self, ctx):
        self.count = ctx.get_state(ValueStateDescriptor("count", Types.LONG()))
        self.ctx = ctx
    def process_element(self, value, ctx):
        if value == "spin":
            while True:
                time.sleep(0.001)
        if value == "twice":
            ctx.timer_service()  # a second descriptor under the same name, another kind
            self.ctx.get_list_state(ListStateDescriptor("count", Types.LONG()))
        if value == "timer":
            ctx.timer_service().register_event_time_timer(ctx.timestamp())
            return
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        if value == "boom":
            raise ValueError("boom for %s" % ctx.get_current_key())
        yield ctx.get_current_key(), n
    def on_timer(self, timestamp, ctx):
        if timestamp == 13:
            raise RuntimeError("timer 13 failed")
        yield "fired %s@%d" % (ctx.get_current_key(), timestamp)

class TwiceInOpen(KeyedProcessFunction):
    def open(self, ctx):
        ctx.get_state(ValueStateDescriptor("s", Types.LONG()))
        ctx.get_map_state(MapStateDescriptor("s", Types.STRING(), Types.LONG()))
    def process_element(self, value, ctx):
        yield value

model = MapStateDescriptor("model", Types.STRING(), Types.LONG())

class Scorer(KeyedBroadcastProcessFunction):
    def process_element(self, value, ctx):
        state = ctx.get_broadcast_state(model)
        if value == "write":
            state.put("version", 99)
        yield ctx.get_current_key(), state.get("version")
    def process_broadcast_element(self, value, ctx):
        ctx.get_broadcast_state(model).put("version", value)

late = OutputTag("late", Types.STRING())
other = OutputTag("other")

class Tagger(ProcessFunction):
    def process_element(self, value, ctx):
        if value == "other":
            yield other, value
        elif value == "late-int":
            yield late, 7
        else:
            yield late, value
        yield value

class Typed(MapFunction):
    def map(self, value):
        return value

class NotIterable(FlatMapFunction):
    def flat_map(self, value):
        return 42

class Unkeyed(ProcessFunction):
    def open(self, ctx):
        self.ctx = ctx
    def process_element(self, value, ctx):
        self.ctx.get_state(ValueStateDescriptor("x", Types.LONG()))
        yield value
`

func hostileOperator(t *testing.T, name string, opts OperatorOptions) *Operator {
	t.Helper()
	return openOperator(t, loadModule(t, Config{}, "hostile_ds.py", hostileDatastreamSource), name, opts)
}

// count feeds key one ordinary element and returns the count it emits.
func count(t *testing.T, o *Operator, key string) int64 {
	t.Helper()
	out := must(t)(o.Process(context.Background(), key, "ok", 1))
	if len(out.Main) != 1 {
		t.Fatalf("outputs %v", out.Main)
	}
	return out.Main[0].([]any)[1].(int64)
}

func pythonErr(t *testing.T, err error, typ, message string) {
	t.Helper()
	var pe *bridge.PythonError
	if !errors.As(err, &pe) || pe.Type != typ || !errHas(err, message) {
		t.Fatalf("got %v (%T), want a %s with %q", err, err, typ, message)
	}
}

func conversionErr(t *testing.T, err error, reason string) {
	t.Helper()
	var ce *bridge.ConversionError
	if !errors.As(err, &ce) || !errHas(err, reason) {
		t.Fatalf("got %v (%T), want a ConversionError with %q", err, err, reason)
	}
}

func TestHostileOperatorProcessElementRaises(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "Fragile", OperatorOptions{})
		count(t, o, "a")
		count(t, o, "b")
		out, err := o.Process(ctx, "a", "boom", 1)
		pythonErr(t, err, "ValueError", "boom for a")
		if out != nil {
			t.Errorf("outputs with the error: %+v", out)
		}
		// The raising key kept what it wrote before raising; the other key is untouched.
		if n := count(t, o, "b"); n != 2 {
			t.Errorf("key b: count %d, want 2", n)
		}
		if n := count(t, o, "a"); n != 3 {
			t.Errorf("key a: count %d, want 3", n)
		}
	})
}

func TestHostileOperatorOnTimerRaises(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "Fragile", OperatorOptions{})
		for _, e := range []struct {
			key string
			ts  int64
		}{{"a", 12}, {"b", 13}, {"c", 14}} {
			must(t)(o.Process(ctx, e.key, "timer", e.ts))
		}
		out, err := o.AdvanceWatermark(ctx, 20)
		pythonErr(t, err, "RuntimeError", "timer 13 failed")
		if !errHas(err, `on_timer(13) of key 'b'`) {
			t.Errorf("error does not name the timer: %v", err)
		}
		if out == nil || out.Fired != 1 || !reflect.DeepEqual(out.Main, []any{"fired a@12"}) {
			t.Errorf("outputs before the failing timer: %+v", out)
		}
		// The spent timer does not fire again; the one after it fires next.
		out = must(t)(o.AdvanceWatermark(ctx, 20))
		if out.Fired != 1 || !reflect.DeepEqual(out.Main, []any{"fired c@14"}) {
			t.Errorf("next advance: %+v", out)
		}
		if n := count(t, o, "a"); n != 1 {
			t.Errorf("after: count %d", n)
		}
	})
}

func TestHostileOperatorStateRegisteredTwiceWithAnotherType(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "hostile_ds.py", hostileDatastreamSource)
		_, err := m.Operator(ctx, "TwiceInOpen", OperatorOptions{})
		pythonErr(t, err, "TypeError", "state 's' is already registered as ValueState<LONG>, not MapState<STRING, LONG>")
		o := openOperator(t, m, "Fragile", OperatorOptions{})
		_, err = o.Process(ctx, "a", "twice", 1)
		pythonErr(t, err, "TypeError", "state 'count' is already registered as ValueState<LONG>, not ListState<LONG>")
		if n := count(t, o, "a"); n != 1 {
			t.Errorf("after: count %d", n)
		}
	})
}

func TestHostileOperatorWritesBroadcastStateFromElementPath(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "Scorer", OperatorOptions{})
		must(t)(o.ProcessBroadcast(ctx, 1, NoTimestamp))
		_, err := o.Process(ctx, "u", "write", NoTimestamp)
		pythonErr(t, err, "pyudf._state.ReadOnlyStateError",
			"broadcast state 'model' is read-only in process_element: update it in process_broadcast_element")
		if out := must(t)(o.Process(ctx, "u", "read", NoTimestamp)); !reflect.DeepEqual(out.Main, []any{[]any{"u", int64(1)}}) {
			t.Errorf("broadcast state after the refused write: %v", out.Main)
		}
	})
}

func TestHostileOperatorTimerInThePastFiresOnNextAdvance(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "Fragile", OperatorOptions{})
		must(t)(o.AdvanceWatermark(ctx, 100))
		must(t)(o.Process(ctx, "a", "timer", 5)) // 95 ms behind the watermark
		must(t)(o.Process(ctx, "a", "timer", 5)) // the same key and time: one timer
		out := must(t)(o.AdvanceWatermark(ctx, 100))
		if out.Fired != 1 || !reflect.DeepEqual(out.Main, []any{"fired a@5"}) {
			t.Errorf("past timer: %+v", out)
		}
		if out := must(t)(o.AdvanceWatermark(ctx, 50)); out.Fired != 0 { // a watermark never goes back
			t.Errorf("fired on an older watermark: %+v", out)
		}
	})
}

func TestHostileOperatorUndeclaredSideOutputTag(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "Tagger", OperatorOptions{SideOutputs: []string{"late"}})
		_, err := o.Process(ctx, nil, "other", NoTimestamp)
		conversionErr(t, err, "side output 'other' is not declared (OperatorOptions.SideOutputs: late)")
		out := must(t)(o.Process(ctx, nil, "x", NoTimestamp))
		if !reflect.DeepEqual(out.Side["late"], []any{"x"}) || !reflect.DeepEqual(out.Main, []any{"x"}) {
			t.Errorf("after: %+v", out)
		}
	})
}

func TestHostileOperatorSideOutputOfTheWrongType(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "Tagger", OperatorOptions{})
		_, err := o.Process(ctx, nil, "late-int", NoTimestamp)
		conversionErr(t, err, "side output 'late': 7 (int) is not STRING (its type)")
		if out := must(t)(o.Process(ctx, nil, "y", NoTimestamp)); !reflect.DeepEqual(out.Side["late"], []any{"y"}) {
			t.Errorf("after: %+v", out)
		}
	})
}

func TestHostileOperatorOutputDoesNotFitDeclaredType(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "Typed", OperatorOptions{OutputType: bridge.MustParseType("ROW<user STRING, score INT NOT NULL>")})
		for _, c := range []struct {
			value  any
			reason string
		}{
			{"text", "output: 'text' (str) is not ROW<user STRING, score INT NOT NULL>"},
			{[]any{"u", nil}, "output: field score: None is not INT NOT NULL"},
			{[]any{"u", int64(1) << 40}, "output: field score: 1099511627776 is out of range for INT"},
			{[]any{"u"}, "has 1 values for 2 fields"},
		} {
			_, err := o.Process(ctx, nil, c.value, NoTimestamp)
			conversionErr(t, err, c.reason)
			_, err = o.Map(ctx, c.value)
			conversionErr(t, err, c.reason)
		}
		if v, err := o.Map(ctx, []any{"u", 3}); err != nil || !reflect.DeepEqual(v, []any{"u", int64(3)}) {
			t.Errorf("after: %v, %v", v, err)
		}
	})
}

func TestHostileOperatorRestoreGarbage(t *testing.T) {
	modes(t, func(t *testing.T) {
		hostileRestore(t, func([]byte) []byte { return []byte("not a snapshot at all") }, "not a DataStream snapshot")
	})
}

func TestHostileOperatorRestoreTruncated(t *testing.T) {
	modes(t, func(t *testing.T) {
		hostileRestore(t, func(s []byte) []byte { return s[:len(s)-5] }, "truncated DataStream snapshot")
	})
}

func TestHostileOperatorRestoreCorrupt(t *testing.T) {
	modes(t, func(t *testing.T) {
		hostileRestore(t, func(s []byte) []byte {
			c := append([]byte(nil), s...)
			c[len(c)-3] ^= 0xff
			return c
		}, "corrupt DataStream snapshot: checksum mismatch")
	})
}

func TestHostileOperatorRestoreForeignSnapshot(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		m := loadModule(t, Config{}, "hostile_ds.py", hostileDatastreamSource)
		scorer := openOperator(t, m, "Scorer", OperatorOptions{})
		must(t)(scorer.ProcessBroadcast(ctx, 1, NoTimestamp))
		foreign, err := scorer.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hostileRestore(t, func([]byte) []byte { return foreign },
			"snapshot of keyed_broadcast:Scorer, not of keyed_process:Fragile")
		// An aggregate's snapshot is not an operator's either.
		agg := openAggregate(t, loadModule(t, Config{}, "windows.py", windowSource), "count")
		aggSnap, err := agg.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hostileRestore(t, func([]byte) []byte { return aggSnap }, "not a DataStream snapshot")
	})
}

// hostileRestore restores spoil(a good snapshot) into an operator with
// state and checks that it is refused and the state is kept.
func hostileRestore(t *testing.T, spoil func([]byte) []byte, message string) {
	t.Helper()
	ctx := context.Background()
	m := loadModule(t, Config{}, "hostile_ds.py", hostileDatastreamSource)
	src := openOperator(t, m, "Fragile", OperatorOptions{})
	count(t, src, "x")
	snap, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := openOperator(t, m, "Fragile", OperatorOptions{})
	count(t, o, "a")
	count(t, o, "a")
	_, err = o.Restore(ctx, spoil(snap))
	pythonErr(t, err, "ValueError", message)
	if n := count(t, o, "a"); n != 3 {
		t.Errorf("state after a refused restore: count %d, want 3", n)
	}
	if n := count(t, o, "x"); n != 1 {
		t.Errorf("a refused restore brought key x: count %d", n)
	}
}

func TestHostileOperatorKeyedMethodWithoutKey(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "Fragile", OperatorOptions{})
		if _, err := o.Process(ctx, nil, "ok", 1); !errors.Is(err, ErrNoKey) || !errHas(err, `Process of operator "Fragile" (KeyedProcessFunction) needs a key`) {
			t.Errorf("Process without a key: %v", err)
		}
		// A key Python cannot hash.
		_, err := o.Process(ctx, []any{1, 2}, "ok", 1)
		pythonErr(t, err, "TypeError", "key [1, 2] (list) is not hashable")
		// Keyed state in a function on a stream without keys.
		u := hostileOperator(t, "Unkeyed", OperatorOptions{})
		_, err = u.Process(ctx, nil, 1, NoTimestamp)
		pythonErr(t, err, "RuntimeError", "ProcessFunction Unkeyed: keyed state needs a keyed stream")
		if n := count(t, o, "a"); n != 1 {
			t.Errorf("after: count %d", n)
		}
	})
}

func TestHostileOperatorFlatMapReturnsNotAnIterable(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "NotIterable", OperatorOptions{})
		_, err := o.FlatMap(ctx, 1)
		pythonErr(t, err, "TypeError", "NotIterable.flat_map returned int: yield the outputs (or return an iterable)")
		_, err = o.Process(ctx, nil, 1, NoTimestamp)
		pythonErr(t, err, "TypeError", "NotIterable.flat_map returned int")
	})
}

func TestHostileOperatorProcessElementCancelled(t *testing.T) {
	modes(t, func(t *testing.T) {
		o := hostileOperator(t, "Fragile", OperatorOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := o.Process(ctx, "a", "spin", 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the deadline", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("cancellation took %v", d)
		}
		if n := count(t, o, "a"); n != 1 {
			t.Errorf("after: count %d", n)
		}
	})
}

func TestHostileOperatorWrongKindAndClosed(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		o := hostileOperator(t, "Fragile", OperatorOptions{})
		if _, err := o.ProcessBroadcast(ctx, 1, NoTimestamp); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ProcessBroadcast of a KeyedProcessFunction: %v", err)
		}
		if _, err := o.Map(ctx, 1); !errors.Is(err, ErrUnsupported) || !errHas(err, "a KeyedProcessFunction") {
			t.Errorf("Map of a KeyedProcessFunction: %v", err)
		}
		if n := count(t, o, "a"); n != 1 {
			t.Errorf("after: count %d", n)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Process(ctx, "a", "ok", 1); !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
		if _, err := o.Snapshot(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("Snapshot after Close: %v", err)
		}
	})
}

func TestHostileOperatorRestoreWithAnotherStateLayout(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		// The same class name, its state "count" now a ListState: the snapshot does not fit.
		changed := strings.Replace(hostileDatastreamSource,
			`self.count = ctx.get_state(ValueStateDescriptor("count", Types.LONG()))`,
			`self.count = ctx.get_list_state(ListStateDescriptor("count", Types.LONG()))`, 1)
		old := hostileOperator(t, "Fragile", OperatorOptions{})
		count(t, old, "a")
		snap, err := old.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o := openOperator(t, loadModule(t, Config{}, "hostile_ds2.py", changed), "Fragile", OperatorOptions{})
		_, err = o.Restore(ctx, snap)
		pythonErr(t, err, "ValueError", "snapshot's state 'count' is ValueState<LONG>; this function registers it as ListState<LONG>")
		if n, err := o.Len(ctx); err != nil || n != 0 {
			t.Errorf("state after the refused restore: %d keys, %v", n, err)
		}
	})
}

func TestHostileOperatorOpenAndBroadcastRaise(t *testing.T) {
	modes(t, func(t *testing.T) {
		ctx := context.Background()
		src := hostileDatastreamSource + `
class BadOpen(KeyedProcessFunction):
    def open(self, ctx):
        raise OSError("model file missing")
    def process_element(self, value, ctx):
        yield value

class BadBroadcast(KeyedBroadcastProcessFunction):
    def process_element(self, value, ctx):
        yield ctx.get_broadcast_state(model).get("version")
    def process_broadcast_element(self, value, ctx):
        ctx.get_broadcast_state(model).put("version", value)
        if value < 0:
            raise ValueError("negative version %d" % value)
`
		m := loadModule(t, Config{}, "hostile_ds3.py", src)
		_, err := m.Operator(ctx, "BadOpen", OperatorOptions{})
		pythonErr(t, err, "OSError", "model file missing")
		o := openOperator(t, m, "BadBroadcast", OperatorOptions{})
		must(t)(o.ProcessBroadcast(ctx, 1, NoTimestamp))
		_, err = o.ProcessBroadcast(ctx, -1, NoTimestamp)
		pythonErr(t, err, "ValueError", "negative version -1")
		// As with process_element, what it wrote before raising stays.
		if out := must(t)(o.Process(ctx, "k", 0, NoTimestamp)); !reflect.DeepEqual(out.Main, []any{int64(-1)}) {
			t.Errorf("after: %v", out.Main)
		}
		must(t)(o.ProcessBroadcast(ctx, 2, NoTimestamp))
		if out := must(t)(o.Process(ctx, "k", 0, NoTimestamp)); !reflect.DeepEqual(out.Main, []any{int64(2)}) {
			t.Errorf("after a good broadcast: %v", out.Main)
		}
	})
}

// Process mode: the worker holding an operator's state dies. Its calls say
// so (ErrStateLost, never a fresh count) until a snapshot is restored.
func TestHostileOperatorWorkerCrashLosesState(t *testing.T) {
	ctx := context.Background()
	m := loadModule(t, Config{Mode: Process, Workers: 1}, "faults_ds.py", faultSource+datastreamSource)
	c := openOperator(t, m, "Counter", OperatorOptions{})
	must(t)(c.Process(ctx, "k", "a", 1))
	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must(t)(c.Process(ctx, "k", "b", 2))
	if _, err := function(t, m, "crash").Call(ctx, "segfault"); !errors.As(err, new(*WorkerError)) {
		t.Fatalf("want a *WorkerError, got %v", err)
	}
	if _, err := c.Process(ctx, "k", "c", 3); !errors.Is(err, ErrStateLost) {
		t.Fatalf("after the crash: want ErrStateLost, got %v", err)
	}
	if _, err := c.AdvanceWatermark(ctx, 10); !errors.Is(err, ErrStateLost) {
		t.Fatalf("timers after the crash: want ErrStateLost, got %v", err)
	}
	if n, err := c.Restore(ctx, snap); err != nil || n != 1 {
		t.Fatalf("restore: %d, %v", n, err)
	}
	if out := must(t)(c.Process(ctx, "k", "c", 3)); !reflect.DeepEqual(out.Main, []any{[]any{"k", int64(2)}}) {
		t.Errorf("after restore: %v", out.Main)
	}
}
