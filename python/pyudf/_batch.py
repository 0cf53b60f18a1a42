"""Record batches between the Go engine and UDFs, through the Arrow C Data Interface.

Go hands over a batch as the addresses of an ``ArrowArray`` and an
``ArrowSchema`` (C memory), and the result type as an ``ArrowSchema`` with
one field. pyarrow imports them without copying buffers. Results go back the
same way: exported into ``ArrowArray``/``ArrowSchema`` structs Go allocated;
except that a Pandas or Arrow UDF's result that already is a numpy array of
exactly the result type goes back to the C shim as it is, which exports its
buffer without pyarrow (see :func:`_plain_result`).

Three ways to run a scalar UDF over a batch:

* row-wise (``func_type="general"``): :func:`columns` gives the C shim one
  Python list per column; the C shim calls the UDF once per row and hands
  the results to :func:`export_result`;
* Pandas (``func_type="pandas"``): each argument is a ``pd.Series``, the
  function returns a Series or array-like of the same length;
* Arrow (``func_type="arrow"``): each argument is a ``pyarrow.Array``, the
  function returns one.

PyFlink's row-based ``map`` works the same two ways: row-wise the function
gets one :class:`pyudf.Row` per row (fields by name) and returns a Row;
in Pandas form it gets the batch as one DataFrame and returns a DataFrame.
"""

import numpy as np
import pandas as pd
import pyarrow as pa

try:  # how pandas (>= 2.1) wraps an array in a Series internally; see _block_series
    from pandas.core.internals.managers import SingleBlockManager
except ImportError:
    SingleBlockManager = None

from . import _results
from .row import Row, _parts, _rows, as_rows

try:  # the C shim's functions, present when running embedded in Go (cgo/arrays.h)
    import _pyudf_host as _native
except ImportError:
    _native = None


def import_batch(array_addr, schema_addr, schema_id=0):
    """The batch Go exported, imported without copying its buffers (its schema:
    see _known_schema). A process-mode worker, which read the batch from Arrow
    IPC, passes the RecordBatch itself."""
    if isinstance(array_addr, pa.RecordBatch):
        return array_addr
    return pa.RecordBatch._import_from_c(array_addr, _known_schema(schema_addr, schema_id))


def import_type(schema_addr, schema_id=0):
    """The result type Go exported as a one-field schema (see _known_schema)."""
    return _known_schema(schema_addr, schema_id).field(0).type


_known_schemas = {}  # id Go assigned -> pa.Schema (arrowconv.ExportBatch)


def _known_schema(schema_addr, schema_id):
    """The schema Go exported at ``schema_addr`` (kept under ``schema_id``
    unless that is 0), or with ``schema_addr`` 0 the one kept under ``schema_id``."""
    if not schema_addr:
        return _known_schemas[schema_id]
    schema = pa.Schema._import_from_c(schema_addr)
    if schema_id:
        _known_schemas[schema_id] = schema
    return schema


def columns(array_addr, schema_addr):
    """(list of per-column Python lists, row count) for row-wise evaluation."""
    batch = import_batch(array_addr, schema_addr)
    return [_pylist(column) for column in batch.columns], batch.num_rows


def _has_struct(t):
    if pa.types.is_struct(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_struct(t.value_type)
    if pa.types.is_map(t):
        return _has_struct(t.key_type) or _has_struct(t.item_type)
    return False


def _pylist(column):
    """A column's values as Python objects, its ROW (struct) values as named
    Rows, as a row-wise UDF gets them under PyFlink (pyarrow gives dicts)."""
    values = column.to_pylist()
    if not _has_struct(column.type):
        return values
    return [_as_rows(v, column.type) for v in values]


def _as_rows(value, t):
    if value is None:
        return None
    if pa.types.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        return Row._make([f.name for f in fields],
                         [_as_rows(v, f.type) for v, f in zip(value.values(), fields)])
    if pa.types.is_map(t):
        return [(_as_rows(k, t.key_type), _as_rows(v, t.item_type)) for k, v in value]
    if _has_struct(t):  # a list type
        return [_as_rows(v, t.value_type) for v in value]
    return value


def rows(array_addr, schema_addr):
    """([one Row per row], row count): the single argument list of a row-wise map."""
    batch = import_batch(array_addr, schema_addr)
    names = list(batch.schema.names)
    if not names:  # no columns to zip: one empty Row per row
        return [_rows(names, [()] * batch.num_rows)], batch.num_rows
    return [_rows(names, zip(*(_pylist(column) for column in batch.columns)))], batch.num_rows


def _struct_tuple(value, names):
    """A ROW result as a tuple in field order: from a named Row, a dict or a sequence."""
    if value is None or isinstance(value, tuple):
        return value
    if isinstance(value, Row):
        fields, items = _parts(value)
        if fields is None:
            return tuple(items)
        value = dict(zip(fields, items))
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        if missing:
            raise _results.ResultError("the result row has no field %s" % ", ".join(map(repr, missing)))
        return tuple(value[n] for n in names)
    return tuple(value)


def _to_array(values, result_type, what):
    """Convert a UDF's result to a pyarrow array of ``result_type``."""
    try:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if isinstance(values, list) and pa.types.is_struct(result_type):
            names = [result_type.field(i).name for i in range(result_type.num_fields)]
            values = [_struct_tuple(v, names) for v in values]
        if isinstance(values, pa.Array):
            if values.type != result_type:
                _check_kind(values.type, result_type)
                values = values.cast(result_type)
            return values
        if type(values).__module__.startswith("pandas"):
            if _kind(result_type) not in (None, "a string") and getattr(values, "dtype", None) is not None \
                    and values.dtype.kind in "OSU":
                _check_kind(_inferred_type(values), result_type)  # pyarrow would parse strings
            # Numbers: the Series' own numpy array (what to_numpy() returns, without
            # its argument handling); NaN still becomes null.
            numpy_values = getattr(values, "_values", None)
            if type(numpy_values) is np.ndarray and numpy_values.dtype.kind in "biuf":
                _check_kind(pa.from_numpy_dtype(numpy_values.dtype), result_type)
                return _owned(pa.array(numpy_values, type=result_type, from_pandas=True), numpy_values,
                              lambda v: pa.array(v, type=result_type, from_pandas=True))
            return pa.Array.from_pandas(values, type=result_type)
        if type(values) is np.ndarray:
            if values.dtype.kind in "biuf":
                _check_kind(pa.from_numpy_dtype(values.dtype), result_type)
            return _owned(pa.array(values, type=result_type), values, lambda v: pa.array(v, type=result_type))
        return pa.array(values, type=result_type)
    except _results.ResultError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise _results.ResultError("%s cannot be converted to %s: %s" % (what, result_type, exc)) from None


def _kind(t):
    """What kind of values Arrow type ``t`` holds, for _check_kind (None: not one of these)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    for kind, test in (("a number", lambda t: pa.types.is_integer(t) or pa.types.is_floating(t)),
                       ("a boolean", pa.types.is_boolean),
                       ("a string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)
                        or pa.types.is_string_view(t)),
                       ("binary", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)
                        or pa.types.is_binary_view(t) or pa.types.is_fixed_size_binary(t)),
                       ("a date or time", pa.types.is_temporal)):
        if test(t):
            return kind
    return None


def _inferred_type(values):
    """The Arrow type pyarrow infers for a pandas object of Python objects
    (null when it infers none: then the typed conversion decides)."""
    try:
        return pa.Array.from_pandas(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        return pa.null()


def _check_kind(got, want):
    """Refuse to convert values of Arrow type ``got`` to ``want`` when they are
    another kind of value (pyarrow's casts parse strings into numbers and print
    numbers as strings): a UDF that returns strings for BIGINT gets an error,
    not its strings parsed. Numbers of any width convert to each other (a cast
    that loses a value fails), dictionaries to their values; nested and NULL
    types are left to pyarrow."""
    kinds = _kind(got), _kind(want)
    if None not in kinds and kinds[0] != kinds[1] and not pa.types.is_null(got):
        raise TypeError("its values are %s (%s), not %s" % (kinds[0], got, kinds[1]))


def _owned(array, values, convert):
    """``array`` (converted from the numpy array ``values``), or ``convert``
    of a copy of ``values`` when ``array`` may lie in their memory: pyarrow
    wraps a numpy array of the same dtype without copying, and a UDF that fills
    one output buffer batch after batch (``np.multiply(x, 2, out=self.buf)``)
    would rewrite results Go already holds. The C shim decides the same for a
    plain result (cgo/arrays.h), where reference counts tell exactly."""
    for buf in array.buffers():
        if buf is not None and buf.size and np.may_share_memory(np.frombuffer(buf, dtype=np.uint8), values):
            return convert(values.copy())
    return array


def export_result(values, type_addr, array_addr, schema_addr, errors=None):
    """Build the result array of row-wise ``values`` (a list) and export it to
    Go. With ``errors`` (EvalRowErrors' per-row messages, a list beside
    ``values``), a row whose result does not convert is null, its reason in
    ``errors``, instead of failing the batch with "row N: result: why"."""
    result_type = import_type(type_addr)
    if errors is None:
        array = _row_results(values, result_type)
    else:
        array = _row_results_or_errors(values, result_type, errors)
    array._export_to_c(array_addr, schema_addr)


# The per-row message of a result that does not convert: the type name Go
# reports such an error as (bridge.ConversionError), as a raising row's
# message starts with its exception's type.
_CONVERSION_ERROR = "ConversionError: "


def _row_results_or_errors(values, result_type, errors):
    """:func:`_row_results` for EvalRowErrors: the rows whose result the rule
    refuses are null, and ``errors[i]`` says why."""
    try:
        return _row_results(values, result_type)
    except _results.ResultError as exc:
        if exc.row is None:  # about the results as a whole: no row to blame
            raise
    from ._host import normalize
    converted, refused = _results.conform_rows(values, result_type, normalize)
    for i, reason in refused.items():
        errors[i] = _CONVERSION_ERROR + reason
    return _to_array(converted, result_type, "the results")


def _row_results(values, result_type):
    """Row-wise results as an array of ``result_type``: checked by the result
    rule Call applies (see :mod:`pyudf._results`), then converted by pyarrow.
    Raises :class:`pyudf._results.ResultError` naming the first bad row."""
    from ._host import normalize
    values = _results.conform(values, result_type, normalize)
    try:
        return _to_array(values, result_type, "the results")
    except _results.ResultError:
        error = _results.explain(values, result_type, normalize)
        if error is None:
            raise
        raise error from None


def export_errors(messages, array_addr, schema_addr):
    """Export the per-row error messages (str or None) as a STRING array."""
    pa.array(messages, type=pa.string())._export_to_c(array_addr, schema_addr)


def _pandas_column(column, index):
    """A column as PyFlink gives it to Pandas UDFs: numbers as numpy-backed Series
    (integers with nulls as float64 with NaN; views, not copies, without nulls),
    dates as datetime.date objects. ``index``: the batch's RangeIndex, shared by
    its columns as a DataFrame's columns share its index."""
    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        # The same values as to_pandas, without its per-call overhead.
        return _series(column.to_numpy(zero_copy_only=False), index)
    if pa.types.is_dictionary(t):
        column = column.dictionary_decode()
    series = column.to_pandas(date_as_object=True)
    series.index = index
    return series


def _pandas_columns(batch):
    """The batch's columns as Series sharing one RangeIndex (_pandas_column)."""
    index = pd.RangeIndex(batch.num_rows)
    return [_pandas_column(column, index) for column in batch.columns]


def _public_series(values, index):
    return pd.Series(values, index=index, copy=False)


def _block_series(values, index):
    # What pandas itself does when an operation hands back a new Series
    # (Series._constructor_from_mgr): one block over the array, the index,
    # no name. Half of pd.Series' cost, which re-inspects an
    # array it cannot know is already a plain 1-D numpy array.
    mgr = SingleBlockManager.from_array(values, index)
    series = pd.Series._from_mgr(mgr, mgr.axes)
    object.__setattr__(series, "_name", None)
    return series


def _pick_series_constructor():
    """_block_series if this pandas builds Series that way exactly as
    pd.Series(values, copy=False) does, else pd.Series itself."""
    try:
        for values in (np.arange(3, dtype=np.int64), np.array([0.5, np.nan]), np.array([True, False])):
            index = pd.RangeIndex(len(values))
            fast, public = _block_series(values, index), _public_series(values, index)
            pd.testing.assert_series_equal(fast, public)
            if not np.shares_memory(fast.to_numpy(), values) or fast[1:].name is not None:
                raise AssertionError("not a view, or no name")
        return _block_series
    except Exception:  # another pandas: its internals differ, use the public constructor
        return _public_series


_series = _pick_series_constructor()


def evaluate_vectorized(func, func_type, array_addr, schema_addr, schema_id, type_addr, type_id,
                        out_array_addr, out_schema_addr):
    """Run a Pandas or Arrow UDF, or a Pandas map, over the batch and export its
    result. The batch's schema and the result type come as exported schemas, or
    (address 0) as the ids of schemas Go sent before.

    Returns None once the result is exported, or the numpy array the result
    already is (see _plain_result): the C shim hands that one to Go as it is."""
    result_type = import_type(type_addr, type_id)
    schema = _known_schema(schema_addr, schema_id)
    taken = _plain_columns(array_addr, schema, schema_id) if func_type == "pandas" else None
    if taken is None:
        result, what = _apply(func, func_type, pa.RecordBatch._import_from_c(array_addr, schema), result_type)
    else:
        columns, rows = taken
        result, what = _call(func, columns, rows, func_type)
    plain = _plain_result(result, result_type)
    if plain is not None:
        return plain
    _to_array(result, result_type, what)._export_to_c(out_array_addr, out_schema_addr)
    return None


def vectorized(func, func_type, batch, result_type):
    """The result array of a Pandas UDF (``func_type="pandas"``), an Arrow UDF
    (``"arrow"``) or a Pandas map (``"pandas_map"``: a struct array) over ``batch``."""
    result, what = _apply(func, func_type, batch, result_type)
    return _to_array(result, result_type, what)


def _apply(func, func_type, batch, result_type):
    """(what the function returned over ``batch``, checked for its length; how
    to name it in an error) for vectorized."""
    if func_type == "pandas_map":
        result = func(batch.to_pandas(date_as_object=True))
        _check_length(result, batch.num_rows, "the Pandas map's result")
        if not type(result).__name__ == "DataFrame":
            raise _results.ResultError("the Pandas map's result must be a DataFrame, not %s" % type(result).__name__)
        schema = pa.schema(list(result_type))
        try:
            for field in schema:
                column = result[field.name]
                if _kind(field.type) not in (None, "a string") and column.dtype.kind in "OSU":
                    _check_kind(_inferred_type(column), field.type)  # pyarrow would parse strings
            return pa.RecordBatch.from_pandas(result, schema=schema, preserve_index=False).to_struct_array(), None
        except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, TypeError) as exc:
            raise _results.ResultError("the Pandas map's result does not fit %s: %s" % (result_type, exc)) from None
    args = _pandas_columns(batch) if func_type == "pandas" else list(batch.columns)
    return _call(func, args, batch.num_rows, func_type)


def _call(func, args, rows, func_type):
    """(func(*args), checked to hold ``rows`` values; how to name it in an error)."""
    what = "the Pandas UDF's result" if func_type == "pandas" else "the Arrow UDF's result"
    result = func(*args)
    _check_length(result, rows, what)
    return result, what


_plain_layouts = {}  # kept schema's id -> (numpy dtypes, item sizes) or None


def _plain_columns(array_addr, schema, schema_id):
    """The batch's columns as Series straight over its buffers, and its row
    count, when every column is a number type and none has nulls: the C shim
    takes the ArrowArray and hands over one buffer per column
    (_pyudf_host.plain_columns), so pyarrow does not import the batch. Else
    None, and the batch is left for pyarrow. Only when running embedded."""
    if _native is None:
        return None
    if schema_id and schema_id in _plain_layouts:
        layout = _plain_layouts[schema_id]
    else:
        dtypes = [_PLAIN_DTYPES.get(field.type) for field in schema]
        layout = None if any(d is None for d in dtypes) else (dtypes, bytes(d.itemsize for d in dtypes))
        if schema_id:
            _plain_layouts[schema_id] = layout
    if layout is None:
        return None
    dtypes, sizes = layout
    taken = _native.plain_columns(array_addr, sizes)
    if taken is None:  # a column has nulls
        return None
    buffers, rows = taken
    index = pd.RangeIndex(rows)
    return [_series(np.frombuffer(b, dtype), index) for b, dtype in zip(buffers, dtypes)], rows


# Arrow types laid out as a numpy array is (values only, native order): columns
# and results of these types can cross without pyarrow (_plain_columns, _plain_result).
_PLAIN_DTYPES = {t: np.dtype(t.to_pandas_dtype()) for t in (
    pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64(),
    pa.float32(), pa.float64())}


def _plain_result(result, result_type):
    """The numpy array ``result`` is, or a Series holds, when it already is the
    result's Arrow data: one-dimensional, contiguous, not empty, of exactly
    ``result_type``'s dtype, and, for floats, without NaN (which _to_array turns
    into null, as PyFlink does). Else None: the result goes through _to_array."""
    dtype = _PLAIN_DTYPES.get(result_type)
    if dtype is None:
        return None
    values = result._values if type(result) is pd.Series else result
    if (type(values) is not np.ndarray or values.dtype != dtype or values.ndim != 1
            or not values.flags.c_contiguous or not len(values)):
        return None
    if dtype.kind == "f" and np.isnan(values).any():
        return None
    return values


class RowError(Exception):
    """The exception a row-wise UDF raised on row ``row`` of a batch (its ``__cause__``)."""

    def __init__(self, row):
        super().__init__("row %d" % row)
        self.row = row


def error_text(exc):
    """"Type: message", as the per-row error column holds it."""
    from ._host import describe_exception
    type_name, message, _ = describe_exception(exc)
    return "%s: %s" % (type_name, message)


def evaluate_rows(func, batch, result_type, as_rows=False, row_errors=False):
    """Row-wise evaluation in Python (the C shim's loop, for process-mode workers).

    Returns ``(results, errors)``: the result array and, with ``row_errors``,
    a STRING array of messages for the rows that raised or returned a value
    that does not convert (their result is null); without it, the first row
    that raises ends the evaluation with a :class:`RowError` whose
    ``__cause__`` is the exception.
    """
    if as_rows:
        (args,), n = rows(batch, None)
        arg_rows = ((row,) for row in args)
    else:
        cols, n = columns(batch, None)
        arg_rows = zip(*cols) if cols else (() for _ in range(n))
    results, errors = [], [] if row_errors else None
    for i, row in enumerate(arg_rows):
        try:
            results.append(func(*row))
            if row_errors:
                errors.append(None)
        except Exception as exc:
            if not row_errors:
                # The first row that fails fails the batch: a result before
                # this row that does not convert, if there is one.
                bad = _first_bad_result(results, result_type)
                if bad is not None:
                    error = _result_row_error(bad)
                    raise error from error.__cause__
                raise RowError(i) from exc
            results.append(None)
            errors.append(error_text(exc))
    if row_errors:
        out = _row_results_or_errors(results, result_type, errors)
        return out, pa.array(errors, type=pa.string())
    return _row_results_or_raise(results, result_type), None


def _row_results_or_raise(results, result_type):
    """:func:`_row_results`, a result that does not convert raising the
    :class:`RowError` of its row (its ``__cause__`` the reason)."""
    try:
        return _row_results(results, result_type)
    except _results.ResultError as exc:
        if exc.row is None:  # about the results as a whole, not one row's
            raise
        error = _result_row_error(exc)
        raise error from error.__cause__


def _result_row_error(exc):
    """The :class:`RowError` of the row a :class:`pyudf._results.ResultError`
    names, its ``__cause__`` the reason."""
    error = RowError(exc.row)
    error.__cause__ = _results.ResultError(exc.reason)
    return error


def _first_bad_result(values, result_type):
    """The :class:`pyudf._results.ResultError` naming the first of ``values``
    (the results of the rows before one that raised) that does not convert
    to ``result_type``, or None: None too when the check itself fails, so
    that the raised exception stands."""
    try:
        _row_results(values, result_type)
    except _results.ResultError as exc:
        if exc.row is not None:
            return exc
    except Exception:
        pass
    return None


def first_bad_result(values, type_addr):
    """The error :func:`export_result` would raise for ``values``, the results
    of the rows before one that raised (the C loop calls this then), or None.
    A row whose result does not convert fails the batch before a later row
    that raised, as in the fixed-width loop, which converts as it goes."""
    return _first_bad_result(values, import_type(type_addr))


def _check_length(result, rows, what):
    if isinstance(result, (str, bytes)) or not hasattr(result, "__len__"):
        raise _results.ResultError("%s must be a Series or array-like of %d values, not %s"
                        % (what, rows, type(result).__name__))
    if len(result) != rows:
        raise _results.ResultError("%s has %d values for a batch of %d rows" % (what, len(result), rows))


def reduce_pandas(func, array_addr, schema_addr):
    """Run a Pandas UDAF over the batch: one pd.Series per column in, one scalar out."""
    batch = import_batch(array_addr, schema_addr)
    result = func(*_pandas_columns(batch))
    if isinstance(result, (pd.Series, pd.DataFrame, np.ndarray, pa.Array, pa.ChunkedArray, list, tuple)):
        raise _results.ResultError("the Pandas UDAF's result must be a scalar, not %s" % type(result).__name__)
    if isinstance(result, np.generic):
        result = result.item()
    return result


def table_rows(func, *args):
    """Every row a table function yields (or returns) for one input row, as
    tuples (see :func:`pyudf.row.as_rows`)."""
    return as_rows(func(*args))


def explode(collect, array_addr, schema_addr, type_addr, out_array_addr, out_schema_addr):
    """Run a table function over every row of the batch and export the rows it produced."""
    result = explode_batch(collect, import_batch(array_addr, schema_addr), import_type(type_addr))
    result._export_to_c(out_array_addr, out_schema_addr)


def explode_batch(collect, batch, row_type):
    """Run a table function over every row of ``batch``: a struct array of
    (row: the input row's index, then the result's fields)."""
    fields = [row_type.field(i) for i in range(row_type.num_fields)]
    index, columns = [], [[] for _ in fields]
    for i, args in enumerate(zip(*(c.to_pylist() for c in batch.columns))):
        for out in collect(*args):
            if len(out) != len(fields):
                raise _results.ResultError("the table function produced %d values for %d result fields"
                                           % (len(out), len(fields)), i)
            index.append(i)
            for column, value in zip(columns, out):
                column.append(value)
    arrays = [pa.array(index, pa.int64())]
    for field, column in zip(fields, columns):
        arrays.append(_to_array(column, field.type, "the table function's %r values" % field.name))
    names = ["row"] + [f.name for f in fields]
    return pa.StructArray.from_arrays(arrays, names=names)
