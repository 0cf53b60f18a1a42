"""pyudf._batch through real Arrow C Data Interface structs, as the engine uses it."""

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyarrow.cffi import ffi

from pyudf import Row, _batch


def addr(ptr):
    return int(ffi.cast("uintptr_t", ptr))


class Structs:
    """An exported batch, an exported result type and room for the result."""

    def __init__(self, batch, result_type):
        self.array, self.schema = ffi.new("struct ArrowArray*"), ffi.new("struct ArrowSchema*")
        self.type = ffi.new("struct ArrowSchema*")
        self.out_array, self.out_schema = ffi.new("struct ArrowArray*"), ffi.new("struct ArrowSchema*")
        batch._export_to_c(addr(self.array), addr(self.schema))
        pa.schema([pa.field("result", result_type)])._export_to_c(addr(self.type))

    def result(self):
        return pa.Array._import_from_c(addr(self.out_array), addr(self.out_schema))

    def vectorized(self, func, func_type, schema_id=0, type_id=0, send=True):
        plain = _batch.evaluate_vectorized(func, func_type, addr(self.array), addr(self.schema) if send else 0,
                                           schema_id, addr(self.type) if send else 0, type_id,
                                           addr(self.out_array), addr(self.out_schema))
        if plain is not None:  # the C shim would hand it to Go as it is
            return pa.array(plain)
        return self.result()


BATCH = pa.RecordBatch.from_pydict({"a": pa.array([1, 2, None], pa.int64()), "b": ["x", "y", None]})


def test_columns_and_rows():
    s = Structs(BATCH, pa.int64())
    assert _batch.columns(addr(s.array), addr(s.schema)) == ([[1, 2, None], ["x", "y", None]], 3)
    s = Structs(BATCH, pa.int64())
    (rows,), n = _batch.rows(addr(s.array), addr(s.schema))
    assert n == 3 and rows[1].a == 2 and rows[1]["b"] == "y" and rows[2] == Row(a=None, b=None)


def test_export_result_and_row_shapes():
    row_type = pa.struct([("id", pa.int64()), ("label", pa.string())])
    s = Structs(BATCH, row_type)
    _batch.export_result([Row(label="n", id=1), (2, "t"), {"id": 3, "label": "d"}, None],
                         addr(s.type), addr(s.out_array), addr(s.out_schema))
    assert s.result().to_pylist() == [{"id": 1, "label": "n"}, {"id": 2, "label": "t"},
                                      {"id": 3, "label": "d"}, None]
    s = Structs(BATCH, pa.int64())
    with pytest.raises(TypeError, match="row 0: result: Python str is not a BIGINT"):
        _batch.export_result(["no"], addr(s.type), addr(s.out_array), addr(s.out_schema))


def test_export_result_with_row_errors():
    """With EvalRowErrors' messages, rows whose result does not convert are
    null with their reason; the others keep their values and messages."""
    s = Structs(BATCH, pa.int64())
    errors = [None, "ValueError: raised", None, None]
    _batch.export_result([1, None, "no", 2 ** 64], addr(s.type), addr(s.out_array), addr(s.out_schema), errors)
    assert s.result().to_pylist() == [1, None, None, None]
    assert errors == [None, "ValueError: raised", "ConversionError: result: Python str is not a BIGINT",
                      "ConversionError: result: 18446744073709551616 overflows BIGINT"]
    values, errs = _batch.evaluate_rows(lambda a, b: b if a == 2 else a, BATCH, pa.int64(), row_errors=True)
    assert values.to_pylist() == [1, None, None]
    assert errs.to_pylist() == [None, "ConversionError: result: Python str is not a BIGINT", None]


def _fail_at(bad, raises):
    """A UDF over 0, 1, 2 that returns a str at row ``bad`` and raises at row ``raises``."""
    def udf(a):
        if a == raises:
            raise ValueError("raised at %d" % a)
        return "bad" if a == bad else a
    return udf


@pytest.mark.parametrize("bad, raises, row, cause", [
    (1, 2, 1, "ResultError('result: Python str is not a BIGINT')"),
    (2, 1, 1, "ValueError('raised at 1')"),
    (0, 1, 0, "ResultError('result: Python str is not a BIGINT')"),
])
def test_evaluate_rows_fails_on_the_first_row_that_fails(bad, raises, row, cause):
    """Without row errors, the first failing row fails the batch, whether its
    result does not convert or it raised (as in the engine's C loops)."""
    ints = pa.RecordBatch.from_pydict({"a": pa.array([0, 1, 2], pa.int64())})
    with pytest.raises(_batch.RowError) as failed:
        _batch.evaluate_rows(_fail_at(bad, raises), ints, pa.int64())
    assert failed.value.row == row and repr(failed.value.__cause__) == cause


def test_evaluate_rows_keeps_the_raised_exception_when_the_check_fails(monkeypatch):
    """Checking the rows before a raising row fails otherwise than by naming a
    bad result: the raised exception stands, as in the C loop."""
    def broken(values, result_type):
        raise RuntimeError("the check itself failed")

    monkeypatch.setattr(_batch, "_row_results", broken)
    ints = pa.RecordBatch.from_pydict({"a": pa.array([0, 1], pa.int64())})
    with pytest.raises(_batch.RowError) as raised:
        _batch.evaluate_rows(lambda a: 1 // 0 if a else "x", ints, pa.int64())
    assert raised.value.row == 1 and isinstance(raised.value.__cause__, ZeroDivisionError)
    assert _batch._first_bad_result(["x"], pa.int64()) is None


def test_pandas_and_arrow_udfs():
    ints = pa.RecordBatch.from_pydict({"a": pa.array([1, 2, None], pa.int64()), "b": pa.array([10, 20, 30], pa.int64())})
    assert Structs(ints, pa.int64()).vectorized(lambda a, b: a + b, "pandas").to_pylist() == [11, 22, None]
    assert Structs(ints, pa.int64()).vectorized(pc.add, "arrow").to_pylist() == [11, 22, None]
    assert Structs(ints, pa.float64()).vectorized(lambda a, b: pa.array([1, 2, 3]), "arrow").type == pa.float64()


def test_pandas_map():
    out_type = pa.struct([("a", pa.int64()), ("b", pa.string())])
    result = Structs(BATCH, out_type).vectorized(lambda df: df.fillna({"a": 0, "b": "-"}).astype({"a": "int64"}), "pandas_map")
    assert result.to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 0, "b": "-"}]
    with pytest.raises(TypeError, match="must be a DataFrame"):
        Structs(BATCH, out_type).vectorized(lambda df: [1, 2, 3], "pandas_map")


@pytest.mark.parametrize("func, error, message", [
    (lambda a, b: a.iloc[:1], ValueError, "has 1 values for a batch of 3 rows"),
    (lambda a, b: 7, TypeError, "must be a Series or array-like of 3 values, not int"),
    (lambda a, b: "abc", TypeError, "not str"),
    (lambda a, b: b, TypeError, "cannot be converted to double"),
])
def test_bad_pandas_results(func, error, message):
    with pytest.raises(error, match=message):
        Structs(BATCH, pa.float64()).vectorized(func, "pandas")


def test_dictionary_columns_reach_pandas_decoded():
    dict_batch = pa.RecordBatch.from_arrays([pa.array(["a", "b", "a"]).dictionary_encode()], names=["s"])
    seen = []
    Structs(dict_batch, pa.string()).vectorized(lambda s: seen.append(s.dtype) or s.str.upper(), "pandas")
    assert str(seen[0]) in ("object", "str", "string")


def test_pandas_udf_series_match_the_public_constructor():
    """The Series a Pandas UDF gets are pandas' own kind: equal to
    pd.Series(values), views over the Arrow buffers, unnamed, sliceable,
    read-only where Arrow memory is read-only, and what pandas operations
    on them give back is ordinary."""
    ints = pa.RecordBatch.from_pydict({"a": pa.array([1, 2, 3], pa.int64()), "b": pa.array([0.5, None, 2.0])})
    seen = {}

    def keep(a, b):
        seen.update(a=a, b=b)
        return a + b

    result = Structs(ints, pa.float64()).vectorized(keep, "pandas")
    assert result.to_pylist() == [1.5, None, 5.0]
    a, b = seen["a"], seen["b"]
    pd.testing.assert_series_equal(a, pd.Series([1, 2, 3]))
    pd.testing.assert_series_equal(b, pd.Series([0.5, float("nan"), 2.0]))
    assert a.name is None and a[1:].tolist() == [2, 3] and a.index.equals(pd.RangeIndex(3))
    assert a.index is b.index  # one RangeIndex for the batch, as a DataFrame's columns share one
    assert (a * 2).rename("x").name == "x" and a.to_frame("c").shape == (3, 1)
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 9
    b2 = b.copy()
    b2[1] = 7.0
    assert b2.tolist() == [0.5, 7.0, 2.0] and pd.isna(b[1])


def test_series_constructor_falls_back_to_public_pandas(monkeypatch):
    """If pandas' internals differ from what _block_series expects, every
    Series comes from the public constructor instead."""
    values = np.arange(4, dtype=np.int64)
    assert _batch._pick_series_constructor() is _batch._block_series  # the pandas in requirements.txt
    monkeypatch.setattr(_batch, "SingleBlockManager", None)
    assert _batch._pick_series_constructor() is _batch._public_series
    series = _batch._public_series(values, pd.RangeIndex(4))
    pd.testing.assert_series_equal(series, pd.Series(values))
    assert np.shares_memory(series.to_numpy(), values)


@pytest.mark.parametrize("result, result_type, plain", [
    (pd.Series([1, 2], dtype="int64"), pa.int64(), True),
    (np.array([1, 2], dtype=np.int32), pa.int32(), True),
    (pd.Series([0.5, 1.5]), pa.float64(), True),
    (pd.Series([1, 2], dtype="int64"), pa.int32(), False),  # needs a cast, checked for overflow
    (pd.Series([0.5, np.nan]), pa.float64(), False),  # NaN becomes null
    (pd.Series([1, None], dtype="Int64"), pa.int64(), False),  # a pandas extension array
    (np.arange(6, dtype=np.int64)[::2], pa.int64(), False),  # not contiguous
    (np.arange(6, dtype=np.int64).reshape(2, 3), pa.int64(), False),
    (np.array([], dtype=np.int64), pa.int64(), False),
    (np.array([1, 2], dtype=">i8"), pa.int64(), False),  # not in native byte order
    (np.array([True, False]), pa.bool_(), False),  # Arrow packs booleans into bits
    ([1, 2], pa.int64(), False),
    (pa.array([1, 2], pa.int64()), pa.int64(), False),
])
def test_plain_results(result, result_type, plain):
    """Only a numpy array that already is the result's Arrow data goes to Go as it is."""
    got = _batch._plain_result(result, result_type)
    if not plain:
        assert got is None
        return
    assert type(got) is np.ndarray and np.shares_memory(got, np.asarray(result))
    assert pa.array(got).type == result_type


def test_kept_schemas_cross_once():
    """A schema sent with an id is kept; later calls pass the id alone, and an
    id never sent is an error, not a guess."""
    ints = pa.RecordBatch.from_pydict({"a": pa.array([1, 2], pa.int64()), "b": pa.array([10, 20], pa.int64())})
    add = lambda a, b: a + b  # noqa: E731
    assert Structs(ints, pa.int64()).vectorized(add, "pandas", schema_id=9001, type_id=9002).to_pylist() == [11, 22]
    for schema_id, outcome in ((9001, [11, 22]), (9003, KeyError)):
        s = Structs(ints, pa.int64())
        if outcome is KeyError:
            with pytest.raises(KeyError):
                s.vectorized(add, "arrow", schema_id=schema_id, type_id=9002, send=False)
            pa.RecordBatch._import_from_c(addr(s.array), addr(s.schema))  # release what was not taken
        else:
            assert s.vectorized(add, "arrow", schema_id=schema_id, type_id=9002, send=False).to_pylist() == outcome
            pa.Schema._import_from_c(addr(s.schema))
        pa.Schema._import_from_c(addr(s.type))



def test_plain_columns_only_for_numbers(monkeypatch):
    """Series over the buffers the C shim hands over, for number columns only
    (float64 included: numpy's dtype compares equal to None)."""
    asked = []

    class Shim:  # stands in for _pyudf_host, which exists only when embedded
        @staticmethod
        def plain_columns(addr, sizes):
            asked.append(sizes)
            return [np.arange(3, dtype=np.int64).tobytes(), np.array([0.5, 1, 2]).tobytes()], 3

    monkeypatch.setattr(_batch, "_native", Shim)
    monkeypatch.setattr(_batch, "_plain_layouts", {})
    schema = pa.schema([("a", pa.int64()), ("b", pa.float64())])
    columns, rows = _batch._plain_columns(1234, schema, 7)
    assert rows == 3 and asked == [b"\x08\x08"]
    assert columns[0].tolist() == [0, 1, 2] and columns[1].tolist() == [0.5, 1.0, 2.0]
    assert columns[0].index is columns[1].index and not columns[0].to_numpy().flags.writeable
    for schema_id, other in enumerate((pa.string(), pa.bool_(), pa.date32()), start=8):
        assert _batch._plain_columns(1234, pa.schema([("x", other)]), schema_id) is None
    assert asked == [b"\x08\x08"]  # the shim was not asked about those
    monkeypatch.setattr(_batch, "_native", None)  # not embedded (process mode): pyarrow imports
    assert _batch._plain_columns(1234, schema, 7) is None


def test_rows_of_a_batch_without_columns():
    """A batch of rows but no columns: one empty Row per row (the C row loop
    indexes one list of that many Rows)."""
    empty = pa.RecordBatch.from_struct_array(pa.array([{}] * 3, pa.struct([])))
    s = Structs(empty, pa.int64())
    (rows,), n = _batch.rows(addr(s.array), addr(s.schema))
    assert n == 3 and len(rows) == 3 and all(isinstance(r, Row) and len(r) == 0 for r in rows)


@pytest.mark.parametrize("values, result_type, from_pandas", [
    (np.array([1.0, np.nan, 3.0]), pa.float64(), True),
    (np.array([1, 2, 3], dtype=np.int64), pa.int64(), False),
])
def test_results_do_not_alias_the_udfs_arrays(values, result_type, from_pandas):
    """A result converted from a numpy array that pyarrow would wrap as it is
    owns a copy: the UDF may fill the same array again for the next batch."""
    result = _batch._to_array(pd.Series(values, copy=False) if from_pandas else values, result_type, "the results")
    want = result.to_pylist()
    values *= 10
    assert result.to_pylist() == want
    converted = _batch._to_array(np.array([1, 2], dtype=np.int64), pa.int32(), "the results")  # a cast: no copy needed
    assert converted.to_pylist() == [1, 2]


@pytest.mark.parametrize("result, result_type, message", [
    (pa.array(["1", "2"]), pa.int64(), "its values are a string (string), not a number"),
    (pa.array([1, 2]), pa.string(), "its values are a number (int64), not a string"),
    (pa.array([True, False]), pa.int64(), "its values are a boolean (bool), not a number"),
    (pd.Series(["1", "2"]), pa.int64(), "its values are a string"),
    (pd.Series([True, False]), pa.int64(), "its values are a boolean (bool), not a number"),
    (np.array([1.0, 2.0]), pa.bool_(), "its values are a number (double), not a boolean"),
])
def test_results_of_another_kind_are_refused(result, result_type, message):
    """pyarrow would parse strings into numbers or print numbers as strings:
    a result of another kind of value than declared is an error instead."""
    with pytest.raises(TypeError, match=re.escape(message)):
        _batch._to_array(result, result_type, "the result")


@pytest.mark.parametrize("result, result_type, want", [
    (pa.array([1, 2], pa.int32()), pa.int64(), [1, 2]),
    (pa.array(["a"]).dictionary_encode(), pa.string(), ["a"]),
    (pa.array(["a"], pa.large_string()), pa.string(), ["a"]),
    (pd.Series([1, None], dtype=object), pa.int64(), [1, None]),
    (np.array([1.0, 2.0]), pa.int64(), [1, 2]),
])
def test_results_of_the_same_kind_convert(result, result_type, want):
    assert _batch._to_array(result, result_type, "the result").to_pylist() == want
