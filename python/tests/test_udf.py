import functools
from typing import List

import pytest

from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf
from pyudf import AggregateFunction, TableFunction, udaf, udtf
from pyudf.metrics import MetricGroup, MetricRegistry
from pyudf.udf import signature


class Add(ScalarFunction):
    def open(self, function_context):
        self.offset = int(function_context.get_job_parameter("offset", "0"))

    def eval(self, i: int, j: int) -> int:
        return i + j + self.offset


def test_five_styles_are_callable_and_described():
    def plain(i, j, k=0):
        return i + j + k

    class Callable:
        def __call__(self, i, j):
            return i + j

    wrappers = [
        udf(Add(), result_type=DataTypes.BIGINT()),
        udf(plain, result_type="BIGINT"),
        udf(lambda i, j: i + j, result_type="BIGINT"),
        udf(Callable(), result_type="BIGINT"),
        udf(functools.partial(plain, k=0), result_type="BIGINT"),
    ]
    for wrapper in wrappers:
        kind, target, instance, inputs, result, func_type = signature(wrapper)
        assert (kind, result, func_type) == ("scalar", "BIGINT", "general")
        if instance is not None:
            instance.open(FunctionContext(None, {}))
        assert target(40, 2) == 42


def test_decorator_forms_and_inference():
    @udf(input_types=[DataTypes.BIGINT()], result_type=DataTypes.ARRAY(DataTypes.STRING()))
    def split(x):
        return str(x).split("0")

    assert split(101) == ["1", "1"]
    assert signature(split)[3:5] == (["BIGINT"], "ARRAY<STRING>")

    @udf
    def hinted(names: List[str]) -> int:
        return len(names)

    assert signature(hinted)[3:5] == (["ARRAY<STRING>"], "BIGINT")
    assert signature(Add)[3:5] == (["BIGINT", "BIGINT"], "BIGINT")


def test_open_receives_context():
    registry = MetricRegistry()
    add = Add()
    add.open(FunctionContext(MetricGroup(registry), {"offset": "10"}))
    assert add.eval(1, 2) == 13


def test_func_type_checked():
    with pytest.raises(ValueError, match="func_type"):
        udf(lambda x: x, result_type="BIGINT", func_type="vectorized")


def test_aggregate_and_table_kinds():
    class Count(AggregateFunction):
        def create_accumulator(self):
            return [0]

        def accumulate(self, acc, *args):
            acc[0] += 1

        def get_value(self, acc):
            return acc[0]

    class Split(TableFunction):
        def eval(self, s):
            yield from s.split()

    assert signature(udaf(Count(), result_type="BIGINT"))[0] == "aggregate"
    assert signature(udtf(Split(), result_types=["STRING", "BIGINT"]))[0::4] == (
        "table", "ROW<f0 STRING, f1 BIGINT>")
    with pytest.raises(NotImplementedError, match="retract"):
        Count().retract([0], 1)


def test_udtf_single_result_type_is_one_column():
    """udtf(result_types=T), a single type and not a list, is one column, as in PyFlink."""
    @udtf(result_types=DataTypes.BIGINT())
    def countdown(n):
        yield from range(n, 0, -1)

    assert signature(countdown)[4] == "ROW<f0 BIGINT>"
    assert signature(udtf(lambda s: [s], result_types="STRING"))[4] == "ROW<f0 STRING>"
    row = DataTypes.ROW([DataTypes.FIELD("a", DataTypes.BIGINT())])
    assert signature(udtf(lambda n: [(n,)], result_types=row))[4] == "ROW<f0 ROW<a BIGINT>>"
    assert signature(udtf(lambda n: [n], result_types=[DataTypes.BIGINT()]))[4] == "ROW<f0 BIGINT>"


def test_not_a_function():
    with pytest.raises(TypeError, match="is not a function"):
        signature(42)


def test_metrics():
    registry = MetricRegistry()
    group = MetricGroup(registry).add_group("job").add_group("udf", "f")
    counter = group.counter("calls")
    counter.inc(3)
    counter.dec()
    assert group.counter("calls") is counter  # registered once
    group.distribution("sizes").update(4)
    group.meter("rows").mark_event(5)
    group.gauge("g", lambda: 1.5)
    snapshot = {m["name"]: m for m in registry.snapshot()}
    assert snapshot["calls"]["value"] == 2
    assert snapshot["calls"]["groups"] == [["job", None], ["udf", "f"]]
    assert snapshot["sizes"]["count"] == 1 and snapshot["sizes"]["max"] == 4.0
    assert snapshot["rows"]["count"] == 5 and snapshot["rows"]["rate"] == 5 / 60
    assert snapshot["g"]["value"] == 1.5
    with pytest.raises(ValueError, match="already a counter"):
        group.meter("calls")
    with pytest.raises(TypeError, match="callable"):
        group.gauge("bad", 3)


def test_metrics_scoped_per_function():
    registry = MetricRegistry()
    a = MetricGroup(registry, function="a").counter("calls")
    b = MetricGroup(registry, function="b").counter("calls")
    assert a is not b
    a.inc(2)
    b.inc(5)
    assert MetricGroup(registry, function="a").add_group("x").counter("calls") is not a
    assert MetricGroup(registry, function="a").counter("calls") is a
    counts = {(m["function"], tuple(map(tuple, m["groups"]))): m["value"] for m in registry.snapshot()}
    assert counts == {("a", ()): 2, ("b", ()): 5, ("a", (("x", None),)): 0}


def test_has_life_cycle_only_for_classes_defining_open_or_close():
    from pyudf.udf import has_life_cycle

    class EvalOnly(ScalarFunction):
        def eval(self, x):
            return x

    class Opens(ScalarFunction):
        def open(self, function_context):
            self.ready = True

        def eval(self, x):
            return x

    class Closes(EvalOnly):
        def close(self):
            pass

    class Inherits(Opens):
        pass

    assert not has_life_cycle(EvalOnly())
    assert has_life_cycle(Opens())
    assert has_life_cycle(Closes())
    assert has_life_cycle(Inherits())
