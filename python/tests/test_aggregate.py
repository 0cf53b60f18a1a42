import pickle

import pyarrow as pa
import pytest
from pyarrow.cffi import ffi

from pyudf import AggregateFunction
from pyudf._aggregate import KeyedAggregate


class Sum(AggregateFunction):
    def create_accumulator(self):
        return [0]

    def accumulate(self, acc, x):
        acc[0] += x

    def retract(self, acc, x):
        acc[0] -= x

    def merge(self, acc, accs):
        acc[0] += sum(a[0] for a in accs)

    def get_value(self, acc):
        return acc[0]


class CountOnly(AggregateFunction):
    def create_accumulator(self):
        return [0]

    def accumulate(self, acc, *args):
        acc[0] += 1

    def get_value(self, acc):
        return acc[0]


def test_keyed_lifecycle():
    agg = KeyedAggregate(Sum())
    for key, x in [("a", 1), ("b", 2), ("a", 3), ("c", 4)]:
        agg.accumulate(key, x)
    agg.retract("a", 1)
    assert (agg.get_value("a"), agg.get_value("b"), agg.get_value("zzz")) == (3, 2, 0)
    agg.merge("a", "b", "c", "a")
    assert agg.get_value("a") == 9 and agg.size() == 1
    assert agg.remove("a") and not agg.remove("a")


def test_snapshot_round_trip_and_rejections():
    agg = KeyedAggregate(Sum())
    agg.accumulate(1, 10)
    data = agg.snapshot()
    other = KeyedAggregate(Sum())
    assert other.restore(data) == 1 and other.get_value(1) == 10
    for bad in (b"", b"junk", data[:5], pickle.dumps((99, {}))):
        with pytest.raises(ValueError, match="not a pyudf aggregate snapshot"):
            other.restore(bad)
    assert other.get_value(1) == 10


def test_snapshot_key_and_restore_key_move_one_accumulator():
    agg = KeyedAggregate(Sum())
    agg.accumulate("a", 5)
    agg.accumulate("b", 7)
    one = agg.snapshot_key("a")
    assert agg.size() == 2 and agg.get_value("a") == 5  # the state is left as it was
    assert agg.snapshot_key("fresh") and agg.size() == 2  # no accumulator is created
    other = KeyedAggregate(Sum())
    other.accumulate("kept", 1)
    other.restore_key("moved", one)
    assert (other.get_value("moved"), other.get_value("kept"), other.size()) == (5, 1, 2)
    other.restore_key("moved", agg.snapshot_key("fresh"))
    assert other.get_value("moved") == 0
    # A one-key snapshot is also a snapshot that restore accepts.
    assert KeyedAggregate(Sum()).restore(one) == 1
    with pytest.raises(ValueError, match="one-key pyudf aggregate snapshot was expected, this one holds 2 keys"):
        other.restore_key("x", agg.snapshot())
    with pytest.raises(ValueError, match="not a pyudf aggregate snapshot"):
        other.restore_key("x", b"junk")
    assert other.size() == 2 and other.get_value("moved") == 0


def test_missing_retract_and_merge():
    agg = KeyedAggregate(CountOnly())
    with pytest.raises(NotImplementedError, match="CountOnly does not implement retract"):
        agg.retract("k")
    with pytest.raises(NotImplementedError, match="CountOnly does not implement merge"):
        agg.merge("k", "j")


def test_accumulate_batch_groups_by_key():
    batch = pa.RecordBatch.from_pydict({"x": [1, 2, 3, 4], "k": ["a", "b", "a", "a"]})
    array, schema = ffi.new("struct ArrowArray*"), ffi.new("struct ArrowSchema*")
    batch._export_to_c(int(ffi.cast("uintptr_t", array)), int(ffi.cast("uintptr_t", schema)))
    agg = KeyedAggregate(Sum())
    assert agg.accumulate_batch(int(ffi.cast("uintptr_t", array)), int(ffi.cast("uintptr_t", schema)), 1) == 4
    assert (agg.get_value("a"), agg.get_value("b")) == (8, 2)
