"""Table aggregate functions, asynchronous scalar functions, and when annotations count."""

import asyncio
import threading
import time

import pytest

from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import (AggregateFunction, AsyncScalarFunction, ScalarFunction,
                               TableAggregateFunction, udaf, udf, udtaf)
from pyudf import _async
from pyudf._aggregate import KeyedAggregate
from pyudf.udf import is_async, signature


class Top2(TableAggregateFunction):
    def create_accumulator(self):
        return []

    def accumulate(self, acc, v):
        acc.append(v)
        acc.sort(reverse=True)

    def retract(self, acc, v):
        acc.remove(v)

    def emit_value(self, acc):
        for v in acc[:2]:
            yield Row(v)

    def get_result_type(self):
        return DataTypes.ROW([DataTypes.FIELD("v", DataTypes.BIGINT())])


def test_udtaf_describes_a_table_aggregate():
    kind, target, instance, inputs, result, func_type = signature(udtaf(Top2()))
    assert (kind, inputs, result, func_type) == ("table aggregate", None, "ROW<v BIGINT>", "general")
    assert target is instance


def test_udtaf_scalar_result_type_is_one_column():
    class Values(Top2):
        def get_result_type(self):
            return None

    assert signature(udtaf(Values(), result_type="BIGINT"))[4] == "ROW<f0 BIGINT>"
    assert signature(udtaf(Values(), result_type="ROW<a INT, b STRING>"))[4] == "ROW<a INT, b STRING>"


def test_udtaf_refuses_pandas():
    with pytest.raises(ValueError, match="table aggregate.*'general'"):
        udtaf(Top2(), func_type="pandas")


def test_keyed_table_aggregate_values_are_rows():
    keyed = KeyedAggregate(Top2(), table=True)
    for v in (3, 9, 4):
        keyed.accumulate("k", v)
    assert keyed.get_value("k") == [(9,), (4,)]
    keyed.retract("k", 9)
    assert keyed.get_value("k") == [(4,), (3,)]
    assert keyed.get_value("none") == []


def test_keyed_table_aggregate_bare_values_and_none():
    class Bare(Top2):
        def emit_value(self, acc):
            return iter(acc)

    class Nothing(Top2):
        def emit_value(self, acc):
            return None

    bare = KeyedAggregate(Bare(), table=True)
    bare.accumulate(1, 5)
    assert bare.get_value(1) == [(5,)]
    assert KeyedAggregate(Nothing(), table=True).get_value(1) == []


def test_keyed_table_aggregate_snapshot_round_trip():
    keyed = KeyedAggregate(Top2(), table=True)
    keyed.accumulate("a", 1)
    keyed.accumulate("a", 2)
    other = KeyedAggregate(Top2(), table=True)
    assert other.restore(keyed.snapshot()) == 1
    assert other.get_value("a") == [(2,), (1,)]


def test_retract_of_table_aggregate_without_it():
    class NoRetract(TableAggregateFunction):
        def create_accumulator(self):
            return []

        def accumulate(self, acc, v):
            acc.append(v)

        def emit_value(self, acc):
            return acc

    with pytest.raises(NotImplementedError, match="NoRetract does not implement retract"):
        KeyedAggregate(NoRetract(), table=True).retract("k", 1)


class Lookup(AsyncScalarFunction):
    async def eval(self, key):
        await asyncio.sleep(0)
        return key.upper()


async def plain_async(a, b):
    await asyncio.sleep(0)
    return a + b


def test_async_forms_are_detected():
    assert is_async(Lookup()) and is_async(Lookup) and is_async(plain_async)
    assert is_async(udf(plain_async, result_type="BIGINT"))

    class Callable:
        async def __call__(self, x):
            return x

    assert is_async(Callable())
    assert not is_async(lambda x: x)

    class Sync(ScalarFunction):
        def eval(self, x):
            return x

    assert not is_async(Sync())


def test_async_function_runs_to_completion():
    kind, target, instance, _, result, _ = signature(udf(Lookup(), result_type=DataTypes.STRING()))
    assert (kind, result) == ("scalar", "STRING")
    assert target("ams") == "AMS"
    _, add, _, inputs, result, _ = signature(udf(plain_async, input_types=["BIGINT", "BIGINT"], result_type="BIGINT"))
    assert add(40, 2) == 42 and inputs == ["BIGINT", "BIGINT"]


def test_async_refuses_pandas():
    with pytest.raises(ValueError, match="asynchronous"):
        udf(plain_async, result_type="BIGINT", func_type="pandas")


def test_one_loop_per_thread_reused():
    @_async.run_to_completion
    async def loop_of():
        return asyncio.get_running_loop()

    first = loop_of()
    assert loop_of() is first and not first.is_running()
    other = []
    t = threading.Thread(target=lambda: other.append(loop_of()))
    t.start()
    t.join()
    assert other[0] is not first


def test_exception_keeps_the_loop():
    @_async.run_to_completion
    async def fails():
        await asyncio.sleep(0)
        raise KeyError("k")

    @_async.run_to_completion
    async def loop_of():
        return asyncio.get_running_loop()

    before = loop_of()
    with pytest.raises(KeyError):
        fails()
    assert loop_of() is before


def test_a_result_that_is_not_awaitable_is_returned():
    assert _async.run_to_completion(lambda x: x * 2)(21) == 42


def test_polling_selector_bounds_the_wait():
    sel = _async._PollingSelector()
    try:
        start = time.monotonic()
        assert sel.select(None) == [] and sel.select(30) == []
        assert time.monotonic() - start < 1
    finally:
        sel.close()


def test_interrupted_call_is_cleaned_up_by_the_next():
    """An interruption that lands in the loop's machinery (simulated: a
    callback raising a BaseException) leaves the coroutine unfinished; the
    next call closes it and runs on a fresh loop."""
    closed = []

    class Interrupt(BaseException):
        pass

    @_async.run_to_completion
    async def waits():
        try:
            loop = asyncio.get_running_loop()
            loop.call_soon(_raise)
            await asyncio.sleep(30)
        finally:
            closed.append(True)

    def _raise():
        raise Interrupt()

    @_async.run_to_completion
    async def loop_of():
        return asyncio.get_running_loop()

    before = loop_of()
    # the loop's error handler stops the loop: run_until_complete then fails
    with pytest.raises(RuntimeError, match="stopped before Future completed"):
        waits()
    assert not closed
    after = loop_of()
    assert closed == [True] and after is not before and before.is_closed()


def test_annotations_count_only_without_a_declared_result():
    class Rescale(ScalarFunction):
        def eval(self, reading: str) -> int:
            return int(reading)

    # declared result type: PyFlink's rule, no type comes from annotations
    assert signature(udf(Rescale(), result_type=DataTypes.INT()))[3:5] == (None, "INT")
    # nothing declared: the annotations give both
    assert signature(Rescale())[3:5] == (["STRING"], "BIGINT")

    class Sum(AggregateFunction):
        def create_accumulator(self):
            return [0]

        def accumulate(self, acc, v: int):
            acc[0] += v

        def get_value(self, acc) -> float:
            return acc[0]

    assert signature(udaf(Sum(), result_type="BIGINT"))[3:5] == (None, "BIGINT")
    assert signature(udaf(Sum()))[3:5] == (["BIGINT"], "DOUBLE")


def test_pandas_udaf_written_as_an_aggregate_function():
    pd = pytest.importorskip("pandas")

    class Gap(AggregateFunction):
        def create_accumulator(self):
            return []

        def accumulate(self, acc, hi, lo):
            acc.append(hi.max() - lo.min())

        def get_value(self, acc):
            return acc[0]

    kind, target, instance, _, result, func_type = signature(udaf(Gap(), result_type="BIGINT", func_type="pandas"))
    assert (kind, func_type, result) == ("aggregate", "pandas", "BIGINT")
    assert target(pd.Series([1, 30]), pd.Series([4, 2])) == 28
    assert isinstance(instance, Gap)
