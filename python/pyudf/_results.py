"""Row-wise results, checked by the rule ``Call`` applies, before pyarrow converts them.

A row-wise UDF's results reach Go three ways: one at a time through the C
shim's encoder and Go's decoder (``Call``), through the C loop over
fixed-width columns (``Eval``), or as a list converted by pyarrow (``Eval``
with other columns, ``EvalRowErrors``, ``Map``, process mode). pyarrow alone
is more lenient than the other two (it takes ``bytes`` for STRING, ``2.0`` for
BIGINT, ``True`` for DOUBLE, and turns ``1e300`` into FLOAT infinity) and
stricter elsewhere (a ``float`` for DECIMAL, a Decimal with more digits than
the scale). :func:`conform` applies the one rule, written down in
bridge/wire.go ("The result rule") and docs/types.md, so that the
same result is accepted or refused whichever way it goes.
"""

import datetime
import decimal
import operator
import struct

import pyarrow as pa

from ._host import ResultError, as_result_error  # noqa: F401 (re-exported)
from .row import Row, _parts

__all__ = ["conform", "conform_rows", "explain", "ResultError", "as_result_error"]

_F32 = struct.Struct("=f")
_INT_NAMES = {8: "TINYINT", 16: "SMALLINT", 32: "INT", 64: "BIGINT"}
_UTC = datetime.timezone.utc
_CONTEXT = decimal.Context(prec=1000, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def sql_name(t):
    """The SQL spelling of a pyarrow type, as Go's DataType.String gives it."""
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_signed_integer(t):
        return _INT_NAMES[t.bit_width]
    if pa.types.is_float32(t):
        return "FLOAT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "STRING"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BYTES"
    if pa.types.is_decimal(t):
        return "DECIMAL(%d, %d)" % (t.precision, t.scale)
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP_LTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_list(t):
        return "ARRAY<%s>" % sql_name(t.value_type)
    if pa.types.is_map(t):
        return "MAP<%s, %s>" % (sql_name(t.key_type), sql_name(t.item_type))
    if pa.types.is_struct(t):
        return "ROW<%s>" % ", ".join("%s %s" % (t.field(i).name, sql_name(t.field(i).type))
                                     for i in range(t.num_fields))
    return str(t)


def _python_name(value):
    cls = type(value)
    return "Row" if issubclass(cls, Row) else cls.__name__


def _mismatch(value, t):
    return TypeError("Python %s is not a %s" % (_python_name(value), sql_name(t)))


def _as_int(value):
    """An exact int for an int (a subclass's digits too), else None; never a bool."""
    cls = type(value)
    if cls is int:
        return value
    if issubclass(cls, int) and cls is not bool:
        return operator.index(value)
    return None


def _convert(value, t, normalize, normalized=False):
    """``value`` as pyarrow should receive it for ``t``, by the result rule, or raise."""
    if value is None:
        return None
    cls = type(value)
    if pa.types.is_boolean(t):
        if cls is bool:
            return value
    elif pa.types.is_signed_integer(t):
        v = _as_int(value)
        if v is not None:
            bits = t.bit_width - 1
            if not -(1 << bits) <= v < (1 << bits):
                raise OverflowError("%d overflows %s" % (v, sql_name(t)))
            return v
    elif pa.types.is_floating(t):
        if issubclass(cls, float):
            v = float.__float__(value)
        else:
            v = _as_int(value)
            if v is not None:
                try:
                    v = float(v)
                except OverflowError:
                    raise OverflowError("%d overflows %s" % (v, sql_name(t))) from None
        if v is not None:
            if pa.types.is_float32(t):
                try:
                    _F32.pack(v)  # NaN and the infinities pass; a finite value must fit
                except OverflowError:
                    raise OverflowError("%r overflows FLOAT" % v) from None
            return v
    elif pa.types.is_string(t):
        if issubclass(cls, str):
            return str.__str__(value)
    elif pa.types.is_binary(t):
        if issubclass(cls, (bytes, bytearray)):
            return bytes(value)
    elif pa.types.is_decimal(t):
        return _decimal(value, t, normalize, normalized)
    elif pa.types.is_date(t):
        if issubclass(cls, datetime.datetime):
            return _utc(value).date()
        if issubclass(cls, datetime.date):
            return value
    elif pa.types.is_time(t):
        if issubclass(cls, datetime.time):
            return value
    elif pa.types.is_timestamp(t):
        if issubclass(cls, datetime.datetime):
            return _utc(value)
    elif pa.types.is_list(t):
        if issubclass(cls, (list, tuple)):
            return [_nested(v, t.value_field, normalize) for v in list(value)]
    elif pa.types.is_map(t):
        if issubclass(cls, dict):
            pairs = list(dict.items(value))
        elif issubclass(cls, (list, tuple)):
            pairs = [_pair(p, t) for p in list(value)]  # as pyarrow gives a MAP argument
        else:
            pairs = None
        if pairs is not None:
            return [(_nested(k, t.key_field, normalize), _nested(v, t.item_field, normalize))
                    for k, v in pairs]
    elif pa.types.is_struct(t):
        return _struct(value, t, normalize, normalized)
    else:
        return value  # a type the rule does not cover: pyarrow decides
    if not normalized and _normalizable(value):
        return _convert(_normalized(value, t, normalize), t, normalize, True)
    raise _mismatch(value, t)


def _normalized(value, t, normalize):
    """``normalize(value)``, the one retry a value of another type gets; its
    TypeError is the mismatch with ``t``."""
    try:
        return normalize(value)
    except TypeError:
        raise _mismatch(value, t) from None


def _normalizable(value):
    """Whether the value is of a type the encoder leaves to normalize (not a plain SQL one)."""
    return not isinstance(value, (bool, int, float, str, bytes, bytearray, decimal.Decimal,
                                  datetime.date, datetime.time, list, tuple, dict))


def _utc(value):
    """A datetime as the encoder sends it: an aware one as its UTC wall clock."""
    if datetime.datetime.tzinfo.__get__(value) is None:
        return value
    moved = datetime.datetime.astimezone(value, _UTC)
    return moved.replace(tzinfo=None)


def _pair(p, t):
    if type(p) in (list, tuple) and len(p) == 2:
        return p
    raise TypeError("a %s given as a list holds (key, value) pairs, not %s" % (sql_name(t), _python_name(p)))


def _nested(value, field, normalize):
    if value is None and not field.nullable:
        raise TypeError("None for %s NOT NULL" % sql_name(field.type))
    return _convert(value, field.type, normalize)


def _decimal(value, t, normalize, normalized):
    """Rounded to the scale half away from zero (Java's HALF_UP, as Flink's
    DecimalData.fromBigDecimal); more digits than the precision are an error."""
    cls = type(value)
    as_int = _as_int(value)
    if issubclass(cls, decimal.Decimal):
        d = decimal.Decimal(decimal.Decimal.__str__(value))
    elif as_int is not None:
        d = decimal.Decimal(as_int)
    elif issubclass(cls, float):
        d = decimal.Decimal(float.__float__(value))
    elif not normalized and _normalizable(value):
        return _decimal(_normalized(value, t, normalize), t, normalize, True)
    else:
        raise _mismatch(value, t)
    if not d.is_finite():
        raise TypeError("%s %s is not a number for %s" % (_python_name(value), value, sql_name(t)))
    q = d.quantize(decimal.Decimal(1).scaleb(-t.scale), rounding=decimal.ROUND_HALF_UP, context=_CONTEXT)
    if q.adjusted() >= t.precision - t.scale and q != 0:
        raise TypeError("%s does not fit %s" % (q, sql_name(t)))
    return q


def _by_position(items, t, fields, normalize):
    if len(items) != len(fields):
        raise TypeError("%d values for %s, which has %d fields" % (len(items), sql_name(t), len(fields)))
    return tuple(_field(v, f, normalize) for v, f in zip(items, fields))


def _struct(value, t, normalize, normalized):
    """A ROW as a tuple in field order: a named Row or a dict by name, a list,
    tuple or unnamed Row by position."""
    cls = type(value)
    fields = [t.field(i) for i in range(t.num_fields)]
    names = None
    if issubclass(cls, Row):
        names, items = _parts(value)
        if not isinstance(items, (list, tuple)):
            raise TypeError("Row values must be a list, not %s" % type(items).__name__)
        items = list(items)
        if not isinstance(names, (list, tuple)) or len(names) != len(items):
            return _by_position(items, t, fields, normalize)
        names = list(names)
    elif issubclass(cls, dict):
        pairs = list(dict.items(value))
        if any(not isinstance(k, str) for k, _ in pairs):
            raise TypeError("dict keys for %s must be str field names" % sql_name(t))
        names, items = [k for k, _ in pairs], [v for _, v in pairs]
    elif issubclass(cls, (list, tuple)):
        return _by_position(list(value), t, fields, normalize)
    elif not normalized and _normalizable(value):
        return _struct(_normalized(value, t, normalize), t, normalize, True)
    else:
        raise _mismatch(value, t)
    index = {f.name: i for i, f in enumerate(fields)}
    out = [None] * len(fields)
    for name, v in zip(names, items):
        if name not in index:
            raise TypeError("field %r is not in %s" % (name, sql_name(t)))
        out[index[name]] = _field(v, fields[index[name]], normalize)
    given = set(names)
    for f in fields:
        if f.name not in given:
            raise TypeError("field %r of %s is missing" % (f.name, sql_name(t)))
    return tuple(out)


def _field(value, field, normalize):
    try:
        return _nested(value, field, normalize)
    except (TypeError, OverflowError) as exc:
        raise type(exc)(".%s: %s" % (field.name, exc)) from None


# The result types whose values pyarrow converts exactly as the rule does,
# when every value is of one of these exact types.
_PLAIN = (
    (pa.types.is_boolean, {bool, type(None)}),
    (pa.types.is_string, {str, type(None)}),
    (pa.types.is_binary, {bytes, type(None)}),
    (pa.types.is_float64, {float, int, type(None)}),
)


def _plain(values, t):
    kinds = set(map(type, values))
    if pa.types.is_signed_integer(t):
        return kinds <= {int, type(None)}  # pyarrow refuses what does not fit; conform says why
    for test, ok in _PLAIN:
        if test(t):
            return kinds <= ok
    return False


def conform(values, t, normalize):
    """``values`` (a list of row results) checked and converted for result type
    ``t`` (a pyarrow type) by the result rule; raises :class:`ResultError` for
    the first row that does not convert. Lists of plain values of the right
    exact types (the common case) come back as they are."""
    if _plain(values, t):
        return values
    out = []
    for i, value in enumerate(values):
        try:
            out.append(_convert(value, t, normalize))
        except (TypeError, OverflowError, ValueError) as exc:
            raise ResultError("result: %s" % exc, i) from None
    return out


def conform_rows(values, t, normalize):
    """``values`` converted for ``t`` row by row, for EvalRowErrors: returns
    ``(converted, refused)``, where a row the rule refuses is None in
    ``converted`` and ``refused`` maps its index to the reason ("result:
    Python str is not a BIGINT")."""
    converted, refused = [], {}
    for i, value in enumerate(values):
        try:
            converted.append(_convert(value, t, normalize))
        except (TypeError, OverflowError, ValueError) as exc:
            converted.append(None)
            refused[i] = "result: %s" % exc
    return converted, refused


def explain(values, t, normalize):
    """The :class:`ResultError` of the first value the rule refuses, or None
    (for when pyarrow refused a list :func:`conform` let through as it was)."""
    for i, value in enumerate(values):
        try:
            _convert(value, t, normalize)
        except (TypeError, OverflowError, ValueError) as exc:
            return ResultError("result: %s" % exc, i)
    return None
