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
"""

import datetime
import decimal
import struct

from .row import Row

NULL, FALSE, TRUE, INT, FLOAT, STR, BYTES, DECIMAL = range(8)
DATE, TIME, TIMESTAMP, TIMESTAMP_UTC, LIST, MAP, ROW, BIGINT = range(8, 16)

_I64 = struct.Struct("=q")
_F64 = struct.Struct("=d")
_U32 = struct.Struct("=I")
_DATE = struct.Struct("=iBB")
_TIME = struct.Struct("=BBBI")
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
_UTC = datetime.timezone.utc


# --- decoding: arguments ----------------------------------------------------

def decode_args(data, count):
    """The first ``count`` values encoded in ``data``, as a list."""
    view = memoryview(data)
    values, pos = [], 0
    for _ in range(count):
        value, pos = _decode(view, pos)
        values.append(value)
    return values


def _need(view, pos, n):
    if pos + n > len(view):
        raise ValueError("pyudf: truncated argument data")


def _text(view, pos):
    _need(view, pos, 4)
    (n,) = _U32.unpack_from(view, pos)
    pos += 4
    _need(view, pos, n)
    return view[pos:pos + n], pos + n


def _decode(view, pos):
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
    if tag in (STR, BYTES, DECIMAL):
        raw, pos = _text(view, pos)
        if tag == BYTES:
            return bytes(raw), pos
        text = str(raw, "utf-8")
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
    if tag in (LIST, MAP, ROW):
        _need(view, pos, 4)
        (n,) = _U32.unpack_from(view, pos)
        pos += 4
        if tag == LIST:
            items = []
            for _ in range(n):
                item, pos = _decode(view, pos)
                items.append(item)
            return items, pos
        if tag == MAP:
            out = {}
            for _ in range(n):
                key, pos = _decode(view, pos)
                out[key], pos = _decode(view, pos)
            return out, pos
        names, values = [], []
        for _ in range(n):
            name, pos = _text(view, pos)
            names.append(str(name, "utf-8"))
            value, pos = _decode(view, pos)
            values.append(value)
        return Row.from_fields(tuple(names), tuple(values)), pos
    raise ValueError("pyudf: unknown argument tag %d" % tag)


# --- encoding: results ------------------------------------------------------

def encode(obj, normalize):
    """``obj`` encoded as one value. ``normalize`` turns objects of other types
    into ones this encoder knows (numpy scalars ...) or raises TypeError."""
    out = bytearray()
    _encode(obj, out, normalize, False)
    return bytes(out)


def _put_text(out, tag, raw):
    if tag is not None:
        out.append(tag)
    out += _U32.pack(len(raw))
    out += raw


def _encode(obj, out, normalize, normalized):
    cls = type(obj)
    if obj is None:
        out.append(NULL)
    elif cls is bool:
        out.append(TRUE if obj else FALSE)
    elif isinstance(obj, int) and not isinstance(obj, bool):
        if _INT_MIN <= obj <= _INT_MAX:
            out.append(INT)
            out += _I64.pack(obj)
        else:
            _put_text(out, BIGINT, str(int(obj)).encode())
    elif isinstance(obj, float):
        out.append(FLOAT)
        out += _F64.pack(obj)
    elif isinstance(obj, str):
        _put_text(out, STR, obj.encode("utf-8"))
    elif isinstance(obj, (bytes, bytearray)):
        _put_text(out, BYTES, bytes(obj))
    elif isinstance(obj, datetime.datetime):
        aware = obj.tzinfo is not None
        if aware:
            obj = obj.astimezone(_UTC)
        out.append(TIMESTAMP_UTC if aware else TIMESTAMP)
        out += _DATE.pack(obj.year, obj.month, obj.day)
        out += _TIME.pack(obj.hour, obj.minute, obj.second, obj.microsecond)
    elif isinstance(obj, datetime.date):
        out.append(DATE)
        out += _DATE.pack(obj.year, obj.month, obj.day)
    elif isinstance(obj, datetime.time):
        out.append(TIME)
        out += _TIME.pack(obj.hour, obj.minute, obj.second, obj.microsecond)
    elif isinstance(obj, decimal.Decimal):
        _put_text(out, DECIMAL, str(obj).encode())
    elif isinstance(obj, Row):
        names = obj._fields
        named = isinstance(names, tuple) and len(names) == len(obj)
        _encode_sequence(obj, out, normalize, names if named else None)
    elif isinstance(obj, (list, tuple)):
        _encode_sequence(obj, out, normalize, None)
    elif isinstance(obj, dict):
        out.append(MAP)
        out += _U32.pack(len(obj))
        for key, value in obj.items():
            _encode(key, out, normalize, False)
            _encode(value, out, normalize, False)
    elif normalized:
        raise TypeError("cannot convert a Python %s to a SQL value" % cls.__name__)
    else:
        _encode(normalize(obj), out, normalize, True)


def _encode_sequence(seq, out, normalize, names):
    out.append(ROW if names is not None else LIST)
    out += _U32.pack(len(seq))
    for i, item in enumerate(seq):
        if names is not None:
            if not isinstance(names[i], str):
                raise TypeError("Row field names must be str")
            _put_text(out, None, names[i].encode("utf-8"))
        _encode(item, out, normalize, False)
