"""The engine's typed row encoding, in Python, for process-mode workers.

In thread mode the C shim (``cgo/convert.c``) turns the Go engine's encoded
arguments into Python objects and results back into bytes. A worker process
has no C shim, so this module does the same in Python, byte for byte: Go
encodes and decodes exactly as it does in thread mode, and a UDF sees the
same objects either way.

A value is a one-byte tag and a payload in native byte order::

    NULL FALSE TRUE                    no payload
    INT    int64        FLOAT  float64
    STR BYTES DECIMAL BIGINT           uint32 length + bytes (DECIMAL, BIGINT: decimal text)
    DATE       int32 year, uint8 month, uint8 day
    TIME       uint8 hour, minute, second, uint32 microsecond
    TIMESTAMP, TIMESTAMP_UTC           DATE fields, TIME fields (UTC: an aware datetime)
    LIST       uint32 n, n values      MAP  uint32 n, n (key, value) pairs
    ROW        uint32 n, n (uint32 name length, name, value)
    ROW_VALUES uint32 n, n values: a Row without field names (arguments only)

Containers nest at most :data:`MAX_DEPTH` levels, both ways, as in the C shim
(``PYUDF_MAX_DEPTH``) and Go (``bridge.MaxDepth``), with the same words. Results
are read as the C shim reads them: from the value itself (an ``int``
subclass's digits, a ``datetime``'s fields), through the base type's methods,
never through methods a subclass may override; containers are copied before
their items are converted, since converting one may run code that changes them.
"""

import datetime
import decimal
import operator
import struct

from .row import Row, _parts

NULL, FALSE, TRUE, INT, FLOAT, STR, BYTES, DECIMAL = range(8)
DATE, TIME, TIMESTAMP, TIMESTAMP_UTC, LIST, MAP, ROW, BIGINT = range(8, 16)
ROW_VALUES = 16

#: How deeply containers may nest (bridge.MaxDepth, PYUDF_MAX_DEPTH in C).
MAX_DEPTH = 100
DEEP_TEXT = "nested deeper than %d levels (or cyclic)" % MAX_DEPTH

_I64 = struct.Struct("=q")
_F64 = struct.Struct("=d")
_U32 = struct.Struct("=I")
_TAGGED_I64 = struct.Struct("=Bq")
_TAGGED_F64 = struct.Struct("=Bd")
_TAGGED_U32 = struct.Struct("=BI")
_DATE = struct.Struct("=iBB")
_TIME = struct.Struct("=BBBI")
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
_UTC = datetime.timezone.utc
_DATE_FIELDS = tuple(getattr(datetime.date, f).__get__ for f in ("year", "month", "day"))
_CLOCK_FIELDS = tuple(getattr(datetime.datetime, f).__get__ for f in ("hour", "minute", "second", "microsecond"))
_TIME_FIELDS = tuple(getattr(datetime.time, f).__get__ for f in ("hour", "minute", "second", "microsecond"))
_TZINFO = datetime.datetime.tzinfo.__get__
_ASTIMEZONE = datetime.datetime.astimezone
_DECIMAL_STR = decimal.Decimal.__str__


# --- decoding: arguments ----------------------------------------------------

def decode_args(data, count, pos=0):
    """The first ``count`` values encoded in ``data`` from offset ``pos``, as a list."""
    end = len(data)
    if end - pos == 9 * count and 0 < count <= _INT_ROW_MAX:  # perhaps all INT: one unpack
        shape = _INT_ROWS[count]
        fields = shape.unpack_from(data, pos)
        if fields[0::2] == shape.tags:
            return list(fields[1::2])
    view = memoryview(data)
    values = []
    for _ in range(count):
        # The commonest scalars inline; everything else, and any truncated
        # value, through _decode.
        tag = view[pos] if pos < end else -1
        if tag == INT and pos + 9 <= end:
            values.append(_I64.unpack_from(view, pos + 1)[0])
            pos += 9
        elif tag == FLOAT and pos + 9 <= end:
            values.append(_F64.unpack_from(view, pos + 1)[0])
            pos += 9
        elif tag == NULL:
            values.append(None)
            pos += 1
        else:
            value, pos = _decode(view, pos, 0)
            values.append(value)
    return values


class _IntRow(struct.Struct):
    """The layout of ``count`` INT values in a row, and their tags."""

    def __init__(self, count):
        super().__init__("=" + "Bq" * count)
        self.tags = (INT,) * count


_INT_ROW_MAX = 16
_INT_ROWS = [None] + [_IntRow(n) for n in range(1, _INT_ROW_MAX + 1)]


def _need(view, pos, n):
    if pos + n > len(view):
        raise ValueError("pyudf: truncated argument data")


def _text(view, pos):
    _need(view, pos, 4)
    (n,) = _U32.unpack_from(view, pos)
    pos += 4
    _need(view, pos, n)
    return view[pos:pos + n], pos + n


def _count(view, pos, depth, size):
    """The item count of a container at ``depth`` whose items take ``size`` bytes or more."""
    if depth >= MAX_DEPTH:
        raise ValueError("pyudf: argument " + DEEP_TEXT)
    _need(view, pos, 4)
    (n,) = _U32.unpack_from(view, pos)
    _need(view, pos + 4, n * size)
    return n, pos + 4


def _decode(view, pos, depth):
    _need(view, pos, 1)
    tag = view[pos]
    pos += 1
    if tag == INT:
        _need(view, pos, 8)
        return _I64.unpack_from(view, pos)[0], pos + 8
    if tag == NULL:
        return None, pos
    if tag == FALSE or tag == TRUE:
        return tag == TRUE, pos
    if tag == FLOAT:
        _need(view, pos, 8)
        return _F64.unpack_from(view, pos)[0], pos + 8
    if tag in (STR, BYTES, DECIMAL, BIGINT):
        raw, pos = _text(view, pos)
        if tag == BYTES:
            return bytes(raw), pos
        text = str(raw, "utf-8")
        if tag == BIGINT:
            return int(text), pos
        return (text if tag == STR else decimal.Decimal(text)), pos
    if tag == DATE:
        _need(view, pos, 6)
        return datetime.date(*_DATE.unpack_from(view, pos)), pos + 6
    if tag == TIME:
        _need(view, pos, 7)
        return datetime.time(*_TIME.unpack_from(view, pos)), pos + 7
    if tag in (TIMESTAMP, TIMESTAMP_UTC):
        _need(view, pos, 13)
        y, mo, d = _DATE.unpack_from(view, pos)
        h, mi, s, us = _TIME.unpack_from(view, pos + 6)
        tz = _UTC if tag == TIMESTAMP_UTC else None
        return datetime.datetime(y, mo, d, h, mi, s, us, tzinfo=tz), pos + 13
    if tag == LIST or tag == ROW_VALUES:
        n, pos = _count(view, pos, depth, 1)
        items = []
        for _ in range(n):
            item, pos = _decode(view, pos, depth + 1)
            items.append(item)
        return (items if tag == LIST else Row._make(None, items)), pos
    if tag == MAP:
        n, pos = _count(view, pos, depth, 2)
        out = {}
        for _ in range(n):
            key, pos = _decode(view, pos, depth + 1)
            out[key], pos = _decode(view, pos, depth + 1)
        return out, pos
    if tag == ROW:
        n, pos = _count(view, pos, depth, 5)
        names, values = [], []
        for _ in range(n):
            name, pos = _text(view, pos)
            names.append(str(name, "utf-8"))
            value, pos = _decode(view, pos, depth + 1)
            values.append(value)
        return Row._make(names, values), pos
    raise ValueError("pyudf: unknown argument tag %d" % tag)


# --- encoding: results ------------------------------------------------------

def encode(obj, normalize):
    """``obj`` encoded as one value. ``normalize`` turns objects of other types
    into ones this encoder knows (numpy scalars ...) or raises TypeError."""
    cls = type(obj)  # the commonest results first, exact types only
    if cls is int and _INT_MIN <= obj <= _INT_MAX:
        return _TAGGED_I64.pack(INT, obj)
    if cls is str:
        raw = str.encode(obj, "utf-8")
        return _TAGGED_U32.pack(STR, len(raw)) + raw
    if cls is float:
        return _TAGGED_F64.pack(FLOAT, obj)
    out = bytearray()
    _encode(obj, out, normalize, False, 0)
    return bytes(out)


def _put_text(out, tag, raw):
    if tag is not None:
        out.append(tag)
    out += _U32.pack(len(raw))
    out += raw


def _encode(obj, out, normalize, normalized, depth):
    cls = type(obj)
    if obj is None:
        out.append(NULL)
    elif cls is bool:
        out.append(TRUE if obj else FALSE)
    elif issubclass(cls, int):
        value = operator.index(obj)  # an exact int of the same digits, whatever the subclass says
        if _INT_MIN <= value <= _INT_MAX:
            out.append(INT)
            out += _I64.pack(value)
        else:
            _put_text(out, BIGINT, str(value).encode())
    elif issubclass(cls, float):
        out.append(FLOAT)
        out += _F64.pack(obj)
    elif issubclass(cls, str):
        _put_text(out, STR, str.encode(obj, "utf-8"))
    elif issubclass(cls, bytes):
        _put_text(out, BYTES, bytes.__getitem__(obj, slice(None)))
    elif issubclass(cls, bytearray):
        _put_text(out, BYTES, bytes(bytearray.__getitem__(obj, slice(None))))
    elif issubclass(cls, datetime.datetime):
        aware = _TZINFO(obj) is not None
        if aware:
            obj = _ASTIMEZONE(obj, _UTC)
            if not isinstance(obj, datetime.datetime):
                raise TypeError("pyudf: astimezone returned %s, not a datetime" % type(obj).__name__)
        out.append(TIMESTAMP_UTC if aware else TIMESTAMP)
        out += _DATE.pack(*(f(obj) for f in _DATE_FIELDS))
        out += _TIME.pack(*(f(obj) for f in _CLOCK_FIELDS))
    elif issubclass(cls, datetime.date):
        out.append(DATE)
        out += _DATE.pack(*(f(obj) for f in _DATE_FIELDS))
    elif issubclass(cls, datetime.time):
        out.append(TIME)
        out += _TIME.pack(*(f(obj) for f in _TIME_FIELDS))
    elif issubclass(cls, decimal.Decimal):
        _put_text(out, DECIMAL, _DECIMAL_STR(obj).encode())
    elif issubclass(cls, Row):
        names, values = _parts(obj)
        if not issubclass(type(values), (list, tuple)):
            raise TypeError("Row values must be a list, not %s" % type(values).__name__)
        if issubclass(type(names), list):
            names = list.copy(names)
        elif issubclass(type(names), tuple):
            names = tuple.__getitem__(names, slice(None))
        else:
            names = None
        _encode_sequence(values, out, normalize, names, depth)
    elif issubclass(cls, (list, tuple)):
        _encode_sequence(obj, out, normalize, None, depth)
    elif issubclass(cls, dict):
        if depth >= MAX_DEPTH:
            raise ValueError("pyudf: result " + DEEP_TEXT)
        pairs = list(dict.items(obj))
        out.append(MAP)
        out += _U32.pack(len(pairs))
        for key, value in pairs:
            _encode(key, out, normalize, False, depth + 1)
            _encode(value, out, normalize, False, depth + 1)
    elif normalized:
        raise TypeError("cannot convert a Python %s to a SQL value" % cls.__name__)
    else:
        _encode(normalize(obj), out, normalize, True, depth)


def _encode_sequence(seq, out, normalize, names, depth):
    if depth >= MAX_DEPTH:
        raise ValueError("pyudf: result " + DEEP_TEXT)
    items = list.copy(seq) if issubclass(type(seq), list) else tuple.__getitem__(seq, slice(None))
    if names is not None and len(names) != len(items):
        names = None
    out.append(ROW if names is not None else LIST)
    out += _U32.pack(len(items))
    for i, item in enumerate(items):
        if names is not None:
            if not isinstance(names[i], str):
                raise TypeError("Row field names must be str")
            _put_text(out, None, str.encode(names[i], "utf-8"))
        _encode(item, out, normalize, False, depth + 1)
