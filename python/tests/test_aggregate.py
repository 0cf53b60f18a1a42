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


# --- the sub-interpreter pool's methods ------------------------------------

def test_pin_hash_follows_python_equality():
    import datetime
    from pyudf._aggregate import pin_hash
    assert pin_hash(1) == pin_hash(True) == pin_hash(1.0)
    assert pin_hash(0) == pin_hash(False) == pin_hash(-0.0)
    assert pin_hash(-1) == pin_hash(2 ** 64 - 1)  # modulo 2**64
    assert pin_hash("a") == pin_hash(b"a") != pin_hash("b")
    aware = datetime.datetime(2024, 1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert pin_hash(aware) == pin_hash(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    assert pin_hash(datetime.date(1970, 1, 2)) == pin_hash(datetime.datetime(1970, 1, 2))
    assert pin_hash(float("nan")) == pin_hash((1, 2)) == 0
    assert pin_hash(2.5) != pin_hash(2)
    # the values engine/subinterp_test.go's TestSubinterpretersPinHashMatchesPython checks against Go
    assert pin_hash(0) == 16294208416658607535


def test_split_and_join_snapshots():
    agg = KeyedAggregate(Sum())
    for key in range(20):
        agg.accumulate(key, key)
    parts = KeyedAggregate.split_snapshot(agg.snapshot(), 3)
    assert len(parts) == 3
    pieces = [KeyedAggregate(Sum()) for _ in parts]
    assert sum(p.restore(data) for p, data in zip(pieces, parts)) == 20
    from pyudf._aggregate import pin_hash
    for i, p in enumerate(pieces):
        assert all(pin_hash(k) % 3 == i for k in p._accumulators)
    whole = KeyedAggregate(Sum())
    assert whole.restore(KeyedAggregate.join_snapshots(*(p.snapshot() for p in pieces))) == 20
    assert {k: whole.get_value(k) for k in range(20)} == {k: k for k in range(20)}
    with pytest.raises(ValueError, match="not a pyudf aggregate snapshot"):
        KeyedAggregate.split_snapshot(b"junk", 2)


def test_export_and_merge_from():
    here, there = KeyedAggregate(Sum()), KeyedAggregate(Sum())
    here.accumulate("a", 1)
    here.accumulate("b", 2)
    there.accumulate("c", 30)
    there.accumulate("d", 40)
    moved = there.export("c", "d", "missing")
    assert there.size() == 2  # export leaves them
    here.merge_from("a", [moved], "b", "c", "d")
    assert here.get_value("a") == 73 and here.size() == 1


def test_merge_from_that_raises_keeps_sources():
    class Refuses(Sum):
        def merge(self, acc, accs):
            raise RuntimeError("no")
    here, there = KeyedAggregate(Refuses()), KeyedAggregate(Refuses())
    here.accumulate("a", 1)
    here.accumulate("b", 2)
    there.accumulate("c", 3)
    with pytest.raises(RuntimeError):
        here.merge_from("a", [there.export("c")], "b", "c")
    assert here.size() == 2 and there.size() == 1


def test_split_batch_and_accumulate_rows():
    batch = pa.record_batch([pa.array(["x", "y", "x", "z"]), pa.array([1, 2, 3, 4])], names=["k", "v"])
    array, schema = ffi.new("struct ArrowArray*"), ffi.new("struct ArrowSchema*")
    batch._export_to_c(int(ffi.cast("uintptr_t", array)), int(ffi.cast("uintptr_t", schema)))
    parts = KeyedAggregate.split_batch(int(ffi.cast("uintptr_t", array)), int(ffi.cast("uintptr_t", schema)), 0, 2)
    pieces = [KeyedAggregate(Sum()) for _ in parts]
    assert sum(p.accumulate_rows(data) for p, data in zip(pieces, parts) if data) == 4
    values = {}
    for p in pieces:
        values.update({k: p.get_value(k) for k in p._accumulators})
    assert values == {"x": 4, "y": 2, "z": 4}
