"""The process-mode codec (pyudf._wire) and the row-wise result rule (pyudf._results)."""

import datetime
import re
import struct
import decimal

import numpy as np
import pyarrow as pa
import pytest

from pyudf import Row, _batch, _host, _results, _wire


def encode(obj):
    return _wire.encode(obj, _host.normalize)


def nested(n):
    out = []
    for _ in range(n):
        out = [out]
    return out


def test_depth_limit_both_ways():
    assert _wire.MAX_DEPTH == 100
    encode(nested(_wire.MAX_DEPTH - 1))  # 100 lists: the outermost at depth 0
    with pytest.raises(ValueError, match=r"result nested deeper than 100 levels \(or cyclic\)"):
        encode(nested(_wire.MAX_DEPTH))
    cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        encode(cyclic)
    loop = {}
    loop["me"] = loop
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        encode(loop)
    deep = bytes([_wire.LIST, 1, 0, 0, 0]) * 101 + bytes([_wire.NULL])
    with pytest.raises(ValueError, match="argument nested deeper than 100 levels"):
        _wire.decode_args(deep, 1)


def test_counts_the_data_cannot_hold():
    with pytest.raises(ValueError, match="truncated"):
        _wire.decode_args(bytes([_wire.LIST, 0xff, 0xff, 0xff, 0xff]), 1)


def test_row_values_argument():
    """ROW_VALUES (bridge.Row for an undeclared argument): a Row without field names."""
    u32 = struct.Struct("=I").pack
    data = bytes([_wire.ROW_VALUES]) + u32(2) + bytes([_wire.TRUE, _wire.ROW_VALUES]) + u32(0)
    (row,) = _wire.decode_args(data, 1)
    assert type(row) is Row and not hasattr(row, "_fields") and row == Row(True, Row())
    deep = bytes([_wire.ROW_VALUES]) + u32(1)
    with pytest.raises(ValueError, match="argument nested deeper than 100 levels"):
        _wire.decode_args(deep * 101 + bytes([_wire.NULL]), 1)
    assert _wire.decode_args(deep * 100 + bytes([_wire.NULL]), 1)[0] is not None
    with pytest.raises(ValueError, match="truncated"):
        _wire.decode_args(bytes([_wire.ROW_VALUES]) + u32(3) + bytes([_wire.NULL]), 1)


def test_bigint_argument():
    text = str(2 ** 70).encode()
    data = bytes([_wire.BIGINT]) + len(text).to_bytes(4, "little") + text
    assert _wire.decode_args(data, 1) == [2 ** 70]


class Liar(int):
    def __str__(self):
        return "1"

    def __index__(self):
        return 1

    def __le__(self, other):
        return True

    def __ge__(self, other):
        return True


class LyingDecimal(decimal.Decimal):
    def __str__(self):
        return "1"


class Elsewhere(datetime.datetime):
    def astimezone(self, tz=None):
        return "not a datetime"

    @property
    def tzinfo(self):
        return None

    @property
    def year(self):
        return 1


class LyingStr(str):
    def encode(self, *args):
        return b"lie"


class LyingList(list):
    def __iter__(self):
        return iter([9, 9, 9, 9])

    def __len__(self):
        return 1


def test_subclasses_are_read_from_their_values():
    assert encode(Liar(2 ** 70)) == encode(2 ** 70)
    assert encode(Liar(5)) == encode(5)
    assert encode(LyingDecimal("12.34")) == encode(decimal.Decimal("12.34"))
    tz = datetime.timezone(datetime.timedelta(hours=2))
    assert encode(Elsewhere(2024, 5, 6, 7, 8, 9, tzinfo=tz)) == \
        encode(datetime.datetime(2024, 5, 6, 5, 8, 9, tzinfo=datetime.timezone.utc))
    assert encode(LyingStr("abc")) == encode("abc")
    assert encode(LyingList([1, 2])) == encode([1, 2])


class Clearing:
    __module__ = "numpy"

    def __init__(self, holder):
        self.holder = holder

    def tolist(self):
        self.holder.clear()
        self.holder.extend(range(1000))
        return 7


def test_containers_changed_while_converted():
    items = [1, None, 3]
    items[1] = Clearing(items)
    assert encode(items) == encode([1, 7, 3])
    d = {"a": 1}
    d["b"] = Clearing({})

    class DictClearing(Clearing):
        __module__ = "numpy"

        def tolist(self):
            d.clear()
            d.update({"k%d" % i: i for i in range(100)})
            return 7
    d["b"] = DictClearing(None)
    assert encode(d) == encode({"a": 1, "b": 7})


def conform(values, t):
    return _results.conform(values, t, _host.normalize)


def test_result_rule():
    assert conform([np.int64(3), None], pa.int64()) == [3, None]
    assert conform([np.float32(1.5)], pa.float32()) == [1.5]
    assert conform([np.bool_(True)], pa.bool_()) == [True]
    assert conform([Liar(7)], pa.int64()) == [7]
    assert conform([decimal.Decimal("1.005"), 2, 0.5], pa.decimal128(5, 2)) == \
        [decimal.Decimal("1.01"), decimal.Decimal("2.00"), decimal.Decimal("0.50")]
    assert conform([[("k", 1.5)]], pa.map_(pa.string(), pa.float64())) == [[("k", 1.5)]]
    assert conform([Row(b="x", a=1), {"a": 2, "b": None}, (3, "z")],
                   pa.struct([("a", pa.int32()), ("b", pa.string())])) == [(1, "x"), (2, None), (3, "z")]
    for values, t, message in [
        (["a", b"raw"], pa.string(), "row 1: result: Python bytes is not a STRING"),
        (["s"], pa.binary(), "row 0: result: Python str is not a BYTES"),
        ([2.0], pa.int64(), "row 0: result: Python float is not a BIGINT"),
        ([True], pa.float64(), "row 0: result: Python bool is not a DOUBLE"),
        ([1], pa.bool_(), "row 0: result: Python int is not a BOOLEAN"),
        ([300], pa.int8(), "row 0: result: 300 overflows TINYINT"),
        ([1e300], pa.float32(), "row 0: result: 1e+300 overflows FLOAT"),
        ([decimal.Decimal("999.995")], pa.decimal128(5, 2), "row 0: result: 1000.00 does not fit DECIMAL(5, 2)"),
        ([{"a": 1}], pa.struct([("a", pa.int32()), ("b", pa.string())]),
         "row 0: result: field 'b' of ROW<a INT, b STRING> is missing"),
    ]:
        with pytest.raises(_results.ResultError, match=re.escape(message)):
            _batch._row_results(values, t)  # the row path: the rule, then pyarrow
    nan = conform([float("nan"), float("inf")], pa.float32())
    assert nan[0] != nan[0] and nan[1] == float("inf")


def test_decode_args_all_int_shortcut_only_for_int_rows():
    ints = encode(7) + encode(-(1 << 63)) + encode((1 << 63) - 1)
    assert _wire.decode_args(ints, 3) == [7, -(1 << 63), (1 << 63) - 1]
    assert _wire.decode_args(b"\x00" * 5 + ints, 3, 5) == [7, -(1 << 63), (1 << 63) - 1]
    # Rows of 9 bytes per value that are not all INT take the general path.
    assert _wire.decode_args(encode(7) + encode("abcd"), 2) == [7, "abcd"]
    assert _wire.decode_args(encode(1.5) + encode(3), 2) == [1.5, 3]
    assert _wire.decode_args(encode(3) + encode(None) * 9, 10) == [3] + [None] * 9
    assert type(_wire.decode_args(encode(3), 1)) is list
    with pytest.raises(ValueError, match="truncated"):
        _wire.decode_args(encode(7)[:-1], 1)


def test_encode_shortcuts_match_the_general_encoder():
    class Int(int):
        pass

    for value in (0, -1, (1 << 63) - 1, -(1 << 63), 1 << 63, 2.5, "", "héllo", True):
        general = bytearray()
        _wire._encode(value, general, None, False, 0)
        assert encode(value) == bytes(general)
    assert encode(Int(5)) == encode(5)  # a subclass: the general path, the same bytes
    with pytest.raises(UnicodeEncodeError):
        encode("\ud800")
