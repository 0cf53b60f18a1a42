"""The DataStream surface (pyflink.datastream) and the operator Go drives."""

import pytest

from pyflink.common import Row, Time, Types
from pyflink.datastream import (BroadcastProcessFunction, FilterFunction, FlatMapFunction,
                                KeyedBroadcastProcessFunction, KeyedProcessFunction, MapFunction,
                                OutputTag, ProcessFunction, ProcessWindowFunction, ReduceFunction,
                                RuntimeContext, TimeDomain)
from pyflink.datastream.functions import AggregateFunction
from pyflink.datastream.state import (AggregatingStateDescriptor, ListStateDescriptor,
                                      MapStateDescriptor, ReducingStateDescriptor, StateTtlConfig,
                                      ValueStateDescriptor)
from pyudf import _datastream
from pyudf._host import ResultError
from pyudf._state import ReadOnlyStateError
from pyudf.metrics import MetricGroup, MetricRegistry


def operator(function, **options):
    return _datastream.open_operator(function, type(function).__name__,
                                     MetricGroup(MetricRegistry(), function="f"), {"k": "v"}, options)


class Count(KeyedProcessFunction):
    def open(self, ctx: RuntimeContext):
        self.count = ctx.get_state(ValueStateDescriptor("count", Types.LONG()))
        self.param = ctx.get_job_parameter("k", None)
        self.subtask = ctx.get_index_of_this_subtask()

    def process_element(self, value, ctx):
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        if n % 2 == 0:
            ctx.timer_service().register_event_time_timer(ctx.timestamp() + 10)
        yield ctx.get_current_key(), n

    def on_timer(self, timestamp, ctx):
        assert ctx.time_domain() == TimeDomain.EVENT_TIME
        yield "timer", ctx.get_current_key(), timestamp, self.count.value()


def test_keyed_state_and_event_timers_in_order():
    op = operator(Count(), subtask=3)
    assert op.function.param == "v" and op.function.subtask == 3
    assert op.element("a", 1, 100) == ([("a", 1)], [])
    assert op.element("b", 1, 50) == ([("b", 1)], [])
    assert op.element("b", 1, 55) == ([("b", 2)], [])   # timer b@65
    assert op.element("a", 1, 101) == ([("a", 2)], [])  # timer a@111
    assert op.element("a", 1, 101) == ([("a", 3)], [])
    assert op.advance_watermark(64) == ([], [], 0)
    out, side, fired = op.advance_watermark(200)
    assert out == [("timer", "b", 65, 2), ("timer", "a", 111, 3)] and fired == 2


def test_timers_deduplicated_and_deleted_and_past_fires_next_advance():
    class T(KeyedProcessFunction):
        def process_element(self, value, ctx):
            ts = ctx.timer_service()
            for _ in range(3):
                ts.register_event_time_timer(value)  # same key+ts: one timer
            if value == 7:
                ts.delete_event_time_timer(value)
            ts.register_processing_time_timer(1000)
            return ()

        def on_timer(self, timestamp, ctx):
            yield ctx.time_domain(), ctx.get_current_key(), timestamp

    op = operator(T())
    op.advance_watermark(100)
    op.element("k", 5, 1)  # in the past: fires on the next advance
    op.element("k", 7, 1)
    op.element("j", 5, 1)
    assert op.advance_watermark(100) == ([(0, "k", 5), (0, "j", 5)], [], 2)
    assert op.advance_processing_time(999)[2] == 0
    assert op.advance_processing_time(1000) == ([(1, "k", 1000), (1, "j", 1000)], [], 2)


def test_map_flat_map_filter_reduce():
    class M(MapFunction):
        def map(self, value):
            return value * 2

    class F(FlatMapFunction):
        def flat_map(self, value):
            for w in value.split():
                yield w

    class Fi(FilterFunction):
        def filter(self, value):
            return value > 2

    class R(ReduceFunction):
        def reduce(self, a, b):
            return a + b

    assert operator(M()).map1(21) == 42
    assert operator(F()).map1("a b c") == ["a", "b", "c"]
    assert operator(Fi()).map1(3) is True and operator(Fi()).element(None, 1, 0) == ([], [])
    r = operator(R())
    assert [r.element("x", v, 0)[0] for v in (1, 2, 3)] == [[1], [3], [6]]
    assert r.element("y", 10, 0)[0] == [10]


def test_side_outputs_and_declared_types():
    late = OutputTag("late", Types.STRING())

    class P(ProcessFunction):
        def process_element(self, value, ctx):
            if value < 0:
                yield late, "neg %d" % value
            else:
                yield value

    op = operator(P(), output_type={"kind": "BIGINT"}, side_outputs=["late"])
    assert op.element(None, -1, 0) == ([], [("late", "neg -1")])
    class Text(P):
        def process_element(self, value, ctx):
            yield "x"

    with pytest.raises(ResultError, match="output: 'x' \\(str\\) is not LONG"):
        operator(Text(), output_type={"kind": "BIGINT"}).element(None, 1, 0)
    op2 = operator(P(), side_outputs=[])
    with pytest.raises(ResultError, match="side output 'late' is not declared"):
        op2.element(None, -1, 0)


def test_state_kinds_and_double_registration():
    class Agg(AggregateFunction):
        def create_accumulator(self):
            return (0, 0)

        def add(self, value, acc):
            return acc[0] + value, acc[1] + 1

        def get_result(self, acc):
            return acc[0] / acc[1]

    class S(KeyedProcessFunction):
        def open(self, ctx):
            self.l = ctx.get_list_state(ListStateDescriptor("l", Types.INT()))
            self.m = ctx.get_map_state(MapStateDescriptor("m", Types.STRING(), Types.INT()))
            self.r = ctx.get_reducing_state(ReducingStateDescriptor("r", lambda a, b: max(a, b), Types.INT()))
            self.a = ctx.get_aggregating_state(AggregatingStateDescriptor("a", Agg(), Types.PICKLED_BYTE_ARRAY()))
            self.ctx = ctx

        def process_element(self, value, ctx):
            self.l.add(value)
            self.m.put(str(value), value)
            self.r.add(value)
            self.a.add(value)
            yield self.l.get(), sorted(self.m.items()), self.r.get(), self.a.get()

    op = operator(S())
    op.element("k", 3, 0)
    assert op.element("k", 1, 0)[0] == [([3, 1], [("1", 1), ("3", 3)], 3, 2.0)]
    with pytest.raises(TypeError, match="state 'l' is already registered as ListState<INT>, not ValueState<INT>"):
        op.function.ctx.get_state(ValueStateDescriptor("l", Types.INT()))
    with pytest.raises(TypeError, match="ListState 'l': element 'x' \\(str\\) is not INT"):
        op.element("k", "x", 0)


def test_ttl_expires_and_is_not_snapshotted():
    class T(KeyedProcessFunction):
        def open(self, ctx):
            d = ValueStateDescriptor("v", Types.LONG())
            d.enable_time_to_live(StateTtlConfig.new_builder(Time.seconds(1))
                                  .set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)
                                  .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                                  .cleanup_full_snapshot().build())
            self.v = ctx.get_state(d)

        def process_element(self, value, ctx):
            old = self.v.value()
            if value is not None:
                self.v.update(value)
            yield old

    op = operator(T(), processing_time=0)
    op.element("a", 1, 0)
    op.advance_processing_time(500)
    op.element("b", 2, 0)
    assert op.element("a", None, 0)[0] == [1]
    op.advance_processing_time(1200)  # a expired, b not
    snap = op.snapshot()
    fresh = operator(T())
    assert fresh.restore(snap) == 1
    assert fresh.element("a", None, 0)[0] == [None]
    assert fresh.element("b", None, 0)[0] == [2]


def test_snapshot_restore_and_refusals_keep_state():
    op = operator(Count())
    op.element("a", 1, 10)
    op.element("a", 1, 10)  # timer a@20
    snap = op.snapshot()
    fresh = operator(Count())
    fresh.element("z", 1, 0)
    for bad, words in ((b"garbage", "not a DataStream snapshot"), (snap[:-3], "truncated"),
                       (snap[:60] + bytes([snap[60] ^ 1]) + snap[61:], "checksum")):
        with pytest.raises(ValueError, match=words):
            fresh.restore(bad)
    assert fresh.size() == 1
    other = operator(_Other())
    with pytest.raises(ValueError, match="snapshot of keyed_process:Count, not of keyed_process:_Other"):
        other.restore(snap)
    assert fresh.restore(snap) == 1
    assert fresh.advance_watermark(30)[0] == [("timer", "a", 20, 2)]


class _Other(KeyedProcessFunction):
    def process_element(self, value, ctx):
        yield value


def test_broadcast_read_only_on_element_path():
    rules = MapStateDescriptor("model", Types.STRING(), Types.INT())

    class B(KeyedBroadcastProcessFunction):
        write = False

        def process_element(self, value, ctx):
            if self.write:
                ctx.get_broadcast_state(rules).put("version", 9)
            yield ctx.get_current_key(), value * ctx.get_broadcast_state(rules).get("version")

        def process_broadcast_element(self, value, ctx):
            ctx.get_broadcast_state(rules).put("version", value)
            return ()

    op = operator(B())
    op.broadcast_element(2, 0)
    assert op.element("u", 5, 0)[0] == [("u", 10)]
    op.function.write = True
    with pytest.raises(ReadOnlyStateError, match="broadcast state 'model' is read-only in process_element"):
        op.element("u", 5, 0)
    assert op.broadcast["model"] == {"version": 2}


def test_no_key_and_unkeyed_state():
    op = operator(Count())
    with pytest.raises(TypeError, match="KeyedProcessFunction Count is keyed: give each element a key"):
        op.element(None, 1, 0)
    with pytest.raises(TypeError, match="not hashable"):
        op.element([1], 1, 0)

    class P(ProcessFunction):
        def process_element(self, value, ctx):
            ctx.timer_service().register_event_time_timer(5)

    with pytest.raises(RuntimeError, match="timers need a keyed stream"):
        operator(P()).element(None, 1, 0)


def test_process_window_function():
    class W(ProcessWindowFunction):
        def process(self, key, context, elements):
            w = context.window()
            yield key, w.start, w.end, len(elements), sum(elements)

    op = operator(W())
    assert op.window("k", 0, 60, 60, [1, 2, 3])[0] == [("k", 0, 60, 3, 6)]


def test_broadcast_without_key_and_rows():
    tag = OutputTag("odd")

    class B(BroadcastProcessFunction):
        def process_element(self, value, ctx):
            if value.n % 2:
                yield tag, value
            yield Row(n=value.n, v=ctx.get_broadcast_state(MapStateDescriptor("s", Types.STRING(), Types.STRING())).get("x"))

        def process_broadcast_element(self, value, ctx):
            ctx.get_broadcast_state(MapStateDescriptor("s", Types.STRING(), Types.STRING())).put("x", value)

    op = operator(B())
    op.broadcast_element("hello", 0)
    out, side = op.element(None, Row(n=3), 0)
    assert out == [Row(n=3, v="hello")] and side == [("odd", Row(n=3))]


def test_datastream_aggregate_in_table_shape_and_wire_types():
    from pyudf._aggregate import KeyedAggregate
    from pyudf.typeinfo import from_wire

    class Avg(AggregateFunction):
        def create_accumulator(self):
            return 0, 0

        def add(self, value, acc):
            return acc[0] + value, acc[1] + 1

        def get_result(self, acc):
            return acc[0] / acc[1]

        def merge(self, a, b):
            return a[0] + b[0], a[1] + b[1]

    keyed = KeyedAggregate(_datastream.TableShaped(Avg()))
    for k, v in (("a", 1), ("a", 3), ("b", 10)):
        keyed.accumulate(k, v)
    keyed.merge("a", "b")
    assert keyed.get_value("a") == 14 / 3 and keyed.size() == 1
    t = from_wire({"kind": "ROW", "not_null": False, "fields": [
        ["user", {"kind": "VARCHAR"}], ["tags", {"kind": "ARRAY", "elem": {"kind": "BIGINT", "not_null": True}}]]})
    assert t.check(Row(user="u", tags=[1, 2])) is None
    assert t.check(("u", [1, None])) == "field tags: element 1: None is not LONG NOT NULL"
    assert _datastream.kind_of(Avg) == "aggregate" and _datastream.kind_of(Count()) == "keyed_process"
    assert _datastream.kind_of(object()) is None


def test_apply_to_keyed_state_and_keyed_broadcast_timers():
    count = ValueStateDescriptor("count", Types.LONG())
    rules = MapStateDescriptor("rules", Types.STRING(), Types.LONG())

    class B(KeyedBroadcastProcessFunction):
        def open(self, ctx):
            self.count = ctx.get_state(count)

        def process_element(self, value, ctx):
            self.count.update((self.count.value() or 0) + value)
            ctx.timer_service().register_event_time_timer(100)
            return ()

        def process_broadcast_element(self, value, ctx):
            def reset(key, state):
                state.update(state.value() * value)
            ctx.apply_to_keyed_state(count, reset)
            ctx.get_broadcast_state(rules).put("factor", value)

        def on_timer(self, timestamp, ctx):
            yield ctx.get_current_key(), self.count.value(), ctx.get_broadcast_state(rules).get("factor")

    op = operator(B())
    op.element("a", 2, 0)
    op.element("b", 3, 0)
    op.broadcast_element(10, 0)
    assert op.advance_watermark(100) == ([("a", 20, 10), ("b", 30, 10)], [], 2)


def test_pyflink_import_paths():
    """The imports PyFlink DataStream code writes resolve to pyudf's runtime."""
    from pyflink.common import Duration, Row as CRow, Time as CTime, Types as CTypes  # noqa: F401
    from pyflink.common.time import Duration as D2, Time as T2
    from pyflink.common.typeinfo import Types as T3
    from pyflink.datastream import TimeWindow, TimerService  # noqa: F401
    from pyflink.datastream.functions import KeyedProcessFunction as K2, RuntimeContext as R2
    from pyflink.datastream.output_tag import OutputTag as O2
    from pyflink.datastream.state import ValueState, ListState, MapState  # noqa: F401
    from pyflink.datastream.window import TimeWindow as W2
    assert (K2, R2, O2, T3, T2, D2, W2) == (KeyedProcessFunction, RuntimeContext, OutputTag, Types, Time,
                                            Duration, TimeWindow)
    assert Time.minutes(10).to_milliseconds() == 600_000 == Duration.of_minutes(10).to_milliseconds()
    assert W2(0, 60).max_timestamp() == 59


@pytest.mark.parametrize("t, value, reason", [
    (Types.INT(), 1 << 31, "2147483648 is out of range for INT"),
    (Types.LONG(), True, "True (bool) is not LONG"),
    (Types.DOUBLE(), "1", "'1' (str) is not DOUBLE"),
    (Types.MAP(Types.STRING(), Types.LONG()), {"a": "b"}, "entry 'a': 'b' (str) is not LONG"),
    (Types.LIST(Types.STRING()), "abc", "'abc' (str) is not LIST<STRING>"),
    (Types.ROW_NAMED(["a"], [Types.LONG()]), Row(b=1), "row Row(b=1) has fields ['b'], not ['a']"),
])
def test_types_refuse(t, value, reason):
    assert t.check(value) == reason
    assert t.check(None) is None
    assert Types.PICKLED_BYTE_ARRAY().check(value) is None
