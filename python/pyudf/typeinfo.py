"""PyFlink's ``Types`` (``pyflink.common.typeinfo``): the type information of
DataStream outputs and state.

In PyFlink these drive serialisation between Java and Python. Here values
never leave the interpreter between calls, so a type information is a
*check*: :meth:`TypeInformation.check` tells whether a value fits, and the
engine uses it for declared output types, side-output tags and state
values, so a wrong value is reported where it is made, not later in Go.
"""

import datetime
import decimal

from .row import Row

__all__ = ["Types", "TypeInformation", "from_wire"]

_LIMITS = {"BYTE": 8, "SHORT": 16, "INT": 32, "LONG": 64}


class TypeInformation:
    """The type of a DataStream value: ``Types.LONG()``, ``Types.ROW_NAMED(...)`` ..."""

    name = "ANY"

    def check(self, value):
        """None if ``value`` fits this type, else the reason it does not."""
        return None

    def __repr__(self):
        return self.name

    def __eq__(self, other):
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self):
        return hash(repr(self))


def _what(value):
    return "%r (%s)" % (value, type(value).__name__) if len(repr(value)) <= 60 else type(value).__name__


class BasicTypeInfo(TypeInformation):
    """A scalar type; ``None`` fits every type (a null)."""

    def __init__(self, name, accepts, bits=None, fast=None):
        self.name = name
        self._accepts = accepts
        self._bits = bits
        self._fast = fast  # values of exactly this type fit without the range check
        if bits:
            self._low, self._high = -(1 << (bits - 1)), 1 << (bits - 1)

    def check(self, value):
        if value is None or (type(value) is self._fast and (
                not self._bits or self._low <= value < self._high)):
            return None
        if not self._accepts(value):
            return "%s is not %s" % (_what(value), self.name)
        if self._bits and not -(1 << (self._bits - 1)) <= value < (1 << (self._bits - 1)):
            return "%d is out of range for %s" % (value, self.name)
        return None


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_float(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _basic(name, accepts, bits=None, fast=None):
    info = BasicTypeInfo(name, accepts, bits, fast)
    return lambda: info


class RowTypeInfo(TypeInformation):
    """A row: a :class:`Row` (or tuple) with one value per field."""

    def __init__(self, field_types, field_names=None):
        self.field_types = list(field_types)
        self.field_names = list(field_names) if field_names else ["f%d" % i for i in range(len(self.field_types))]
        if len(self.field_names) != len(self.field_types):
            raise ValueError("ROW_NAMED: %d names for %d types" % (len(self.field_names), len(self.field_types)))
        self.name = "ROW<%s>" % ", ".join("%s %r" % nt for nt in zip(self.field_names, self.field_types))

    def get_field_names(self):
        return list(self.field_names)

    def get_field_types(self):
        return list(self.field_types)

    def check(self, value):
        if value is None:
            return None
        if isinstance(value, Row) and value._fields:
            try:
                values = [value[n] for n in self.field_names]
            except (KeyError, ValueError):
                return "row %r has fields %s, not %s" % (value, list(value._fields), self.field_names)
        elif isinstance(value, (tuple, list, Row)):
            values = list(value)
            if len(values) != len(self.field_types):
                return "%s has %d values for %d fields" % (_what(value), len(values), len(self.field_types))
        else:
            return "%s is not %s" % (_what(value), self.name)
        for name, t, v in zip(self.field_names, self.field_types, values):
            reason = t.check(v)
            if reason:
                return "field %s: %s" % (name, reason)
        return None


class ListTypeInfo(TypeInformation):
    def __init__(self, element_type, name="LIST"):
        self.element_type = element_type
        self.name = "%s<%r>" % (name, element_type)

    def check(self, value):
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            return "%s is not %s" % (_what(value), self.name)
        for i, v in enumerate(value):
            reason = self.element_type.check(v)
            if reason:
                return "element %d: %s" % (i, reason)
        return None


class MapTypeInfo(TypeInformation):
    def __init__(self, key_type, value_type):
        self.key_type, self.value_type = key_type, value_type
        self.name = "MAP<%r, %r>" % (key_type, value_type)

    def check(self, value):
        if value is None:
            return None
        if not isinstance(value, dict):
            return "%s is not %s" % (_what(value), self.name)
        for k, v in value.items():
            reason = self.key_type.check(k) or self.value_type.check(v)
            if reason:
                return "entry %r: %s" % (k, reason)
        return None


class PickledBytesTypeInfo(TypeInformation):
    """Any picklable Python object (PyFlink's default when no type is given)."""

    name = "PICKLED_BYTE_ARRAY"


class Types:
    """The type informations PyFlink's DataStream API takes."""

    STRING = _basic("STRING", lambda v: isinstance(v, str), fast=str)
    BYTE = _basic("BYTE", _is_int, 8, int)
    SHORT = _basic("SHORT", _is_int, 16, int)
    INT = _basic("INT", _is_int, 32, int)
    LONG = _basic("LONG", _is_int, 64, int)
    BIG_INT = _basic("BIG_INT", _is_int, fast=int)
    FLOAT = _basic("FLOAT", _is_float, fast=float)
    DOUBLE = _basic("DOUBLE", _is_float, fast=float)
    BOOLEAN = _basic("BOOLEAN", lambda v: isinstance(v, bool), fast=bool)
    CHAR = _basic("CHAR", lambda v: isinstance(v, str) and len(v) == 1)
    BIG_DEC = _basic("BIG_DEC", lambda v: isinstance(v, decimal.Decimal))
    SQL_DATE = _basic("SQL_DATE", lambda v: isinstance(v, datetime.date) and not isinstance(v, datetime.datetime))
    SQL_TIME = _basic("SQL_TIME", lambda v: isinstance(v, datetime.time))
    SQL_TIMESTAMP = _basic("SQL_TIMESTAMP", lambda v: isinstance(v, datetime.datetime))
    LOCAL_DATE = SQL_DATE
    LOCAL_TIME = SQL_TIME
    LOCAL_DATE_TIME = SQL_TIMESTAMP
    INSTANT = SQL_TIMESTAMP
    PRIMITIVE_ARRAY_BYTES = _basic("BYTES", lambda v: isinstance(v, (bytes, bytearray)))

    @staticmethod
    def PICKLED_BYTE_ARRAY():
        return PickledBytesTypeInfo()

    @staticmethod
    def ROW(field_types):
        return RowTypeInfo(field_types)

    @staticmethod
    def ROW_NAMED(field_names, field_types):
        return RowTypeInfo(field_types, field_names)

    @staticmethod
    def TUPLE(field_types):
        return RowTypeInfo(field_types)

    @staticmethod
    def LIST(element_type_info):
        return ListTypeInfo(element_type_info)

    @staticmethod
    def PRIMITIVE_ARRAY(element_type):
        if repr(element_type) == "BYTE":
            return Types.PRIMITIVE_ARRAY_BYTES()
        return ListTypeInfo(element_type, "PRIMITIVE_ARRAY")

    @staticmethod
    def BASIC_ARRAY(element_type):
        return ListTypeInfo(element_type, "BASIC_ARRAY")

    @staticmethod
    def OBJECT_ARRAY(element_type):
        return ListTypeInfo(element_type, "OBJECT_ARRAY")

    @staticmethod
    def MAP(key_type_info, value_type_info):
        return MapTypeInfo(key_type_info, value_type_info)


_WIRE = {
    "BOOLEAN": Types.BOOLEAN, "TINYINT": Types.BYTE, "SMALLINT": Types.SHORT, "INT": Types.INT,
    "BIGINT": Types.LONG, "FLOAT": Types.FLOAT, "DOUBLE": Types.DOUBLE, "DECIMAL": Types.BIG_DEC,
    "STRING": Types.STRING, "CHAR": Types.STRING, "VARCHAR": Types.STRING,
    "BYTES": Types.PRIMITIVE_ARRAY_BYTES, "BINARY": Types.PRIMITIVE_ARRAY_BYTES,
    "VARBINARY": Types.PRIMITIVE_ARRAY_BYTES, "DATE": Types.SQL_DATE, "TIME": Types.SQL_TIME,
    "TIMESTAMP": Types.SQL_TIMESTAMP, "TIMESTAMP_LTZ": Types.SQL_TIMESTAMP,
}


class _NotNull(TypeInformation):
    def __init__(self, inner):
        self.inner = inner
        self.name = "%r NOT NULL" % inner

    def check(self, value):
        return "None is not %s" % self.name if value is None else self.inner.check(value)


def from_wire(t):
    """The TypeInformation of a Go ``bridge.DataType`` (see :func:`_from_wire`), NOT NULL kept."""
    info = _from_wire(t)
    return _NotNull(info) if t is not None and t.get("not_null") else info


def _from_wire(t):
    """The TypeInformation of a Go ``bridge.DataType`` sent as JSON
    (``{"kind": "ROW", "fields": [[name, type], ...]}``, ``elem``, ``key``,
    ``value``), or None for None."""
    if t is None:
        return None
    kind = t["kind"]
    if kind == "ARRAY":
        return Types.LIST(from_wire(t["elem"]))
    if kind == "MAP":
        return Types.MAP(from_wire(t["key"]), from_wire(t["value"]))
    if kind == "ROW":
        return Types.ROW_NAMED([f[0] for f in t["fields"]], [from_wire(f[1]) for f in t["fields"]])
    if kind not in _WIRE:
        raise ValueError("unknown type %r" % kind)
    return _WIRE[kind]()
