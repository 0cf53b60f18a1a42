"""SQL data types for UDF signatures, compatible with ``pyflink.table.types``.

Types can be given three ways, as in PyFlink: ``DataTypes`` objects
(``DataTypes.BIGINT()``), DDL strings (``'ARRAY<STRING>'``), or Python type
hints (``int``, ``List[str]``) when ``result_type`` is omitted.  The engine
receives every type as a DDL string (see :func:`to_ddl`) and parses it in Go,
so there is one parser and one canonical spelling.

The classes keep PyFlink's names and attributes (``element_type``,
``key_type``, ``fields``, ``precision`` ...), so :func:`to_ddl` also accepts
the type objects of a real ``pyflink`` installation.
"""

import datetime
import decimal
import typing

__all__ = [
    "DataType", "DataTypes", "RowField", "to_ddl", "infer_type",
    "BooleanType", "TinyIntType", "SmallIntType", "IntType", "BigIntType",
    "FloatType", "DoubleType", "DecimalType", "CharType", "VarCharType",
    "BinaryType", "VarBinaryType", "DateType", "TimeType", "TimestampType",
    "LocalZonedTimestampType", "ArrayType", "MapType", "RowType",
    "ListViewType", "MapViewType",
]

_MAX_LENGTH = 2147483647


class DataType:
    """Base of all types. ``nullable=False`` is spelled ``NOT NULL`` in DDL."""

    def __init__(self, nullable=True):
        self._nullable = nullable

    def not_null(self):
        """Return a copy of this type that does not admit ``None``."""
        return self._with_nullable(False)

    def nullable(self):
        """Return a copy of this type that admits ``None``."""
        return self._with_nullable(True)

    def _with_nullable(self, nullable):
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._nullable = nullable
        return clone

    def __eq__(self, other):
        return isinstance(other, DataType) and to_ddl(self) == to_ddl(other)

    def __hash__(self):
        return hash(to_ddl(self))

    def __repr__(self):
        return "DataType(%r)" % to_ddl(self)


class BooleanType(DataType):
    """BOOLEAN: Python ``bool``."""


class TinyIntType(DataType):
    """TINYINT: 8-bit signed ``int``."""


class SmallIntType(DataType):
    """SMALLINT: 16-bit signed ``int``."""


class IntType(DataType):
    """INT: 32-bit signed ``int``."""


class BigIntType(DataType):
    """BIGINT: 64-bit signed ``int``."""


class FloatType(DataType):
    """FLOAT: 32-bit ``float``."""


class DoubleType(DataType):
    """DOUBLE: 64-bit ``float``."""


class DecimalType(DataType):
    """DECIMAL(p, s): ``decimal.Decimal`` with at most p digits, s after the point."""

    def __init__(self, precision=10, scale=0, nullable=True):
        super().__init__(nullable)
        self.precision = precision
        self.scale = scale


class CharType(DataType):
    """CHAR(n): ``str``."""

    def __init__(self, length=1, nullable=True):
        super().__init__(nullable)
        self.length = length


class VarCharType(DataType):
    """VARCHAR(n), or STRING at the maximum length: ``str``."""

    def __init__(self, length=_MAX_LENGTH, nullable=True):
        super().__init__(nullable)
        self.length = length


class BinaryType(DataType):
    """BINARY(n): ``bytes``."""

    def __init__(self, length=1, nullable=True):
        super().__init__(nullable)
        self.length = length


class VarBinaryType(DataType):
    """VARBINARY(n), or BYTES at the maximum length: ``bytes``."""

    def __init__(self, length=_MAX_LENGTH, nullable=True):
        super().__init__(nullable)
        self.length = length


class DateType(DataType):
    """DATE: ``datetime.date``."""


class TimeType(DataType):
    """TIME(p): ``datetime.time``."""

    def __init__(self, precision=0, nullable=True):
        super().__init__(nullable)
        self.precision = precision


class TimestampType(DataType):
    """TIMESTAMP(p): naive ``datetime.datetime`` (wall clock, no zone)."""

    def __init__(self, precision=6, nullable=True):
        super().__init__(nullable)
        self.precision = precision


class LocalZonedTimestampType(DataType):
    """TIMESTAMP_LTZ(p): an instant, a timezone-aware ``datetime.datetime`` in UTC."""

    def __init__(self, precision=6, nullable=True):
        super().__init__(nullable)
        self.precision = precision


class ArrayType(DataType):
    """ARRAY<T>: ``list``."""

    def __init__(self, element_type, nullable=True):
        super().__init__(nullable)
        self.element_type = element_type


class MapType(DataType):
    """MAP<K, V>: ``dict``."""

    def __init__(self, key_type, value_type, nullable=True):
        super().__init__(nullable)
        self.key_type = key_type
        self.value_type = value_type


class ListViewType(DataType):
    """An accumulator's ``ListView`` of T (``DataTypes.LIST_VIEW``); spelled ARRAY<T>."""

    def __init__(self, element_type):
        super().__init__(False)
        self.element_type = element_type


class MapViewType(DataType):
    """An accumulator's ``MapView`` of K to V (``DataTypes.MAP_VIEW``); spelled MAP<K, V>."""

    def __init__(self, key_type, value_type):
        super().__init__(False)
        self.key_type = key_type
        self.value_type = value_type


class RowField:
    """One named field of a ROW type."""

    def __init__(self, name, data_type, description=None):
        self.name = name
        self.data_type = data_type
        self.description = description


class RowType(DataType):
    """ROW<name T, ...>: :class:`pyudf.Row`."""

    def __init__(self, fields, nullable=True):
        super().__init__(nullable)
        self.fields = list(fields)

    def field_names(self):
        return [f.name for f in self.fields]


class DataTypes:
    """Factory of types, spelled as in PyFlink's ``DataTypes``."""

    BOOLEAN = staticmethod(lambda nullable=True: BooleanType(nullable))
    TINYINT = staticmethod(lambda nullable=True: TinyIntType(nullable))
    SMALLINT = staticmethod(lambda nullable=True: SmallIntType(nullable))
    INT = staticmethod(lambda nullable=True: IntType(nullable))
    BIGINT = staticmethod(lambda nullable=True: BigIntType(nullable))
    FLOAT = staticmethod(lambda nullable=True: FloatType(nullable))
    DOUBLE = staticmethod(lambda nullable=True: DoubleType(nullable))
    DATE = staticmethod(lambda nullable=True: DateType(nullable))

    @staticmethod
    def DECIMAL(precision, scale, nullable=True):
        return DecimalType(precision, scale, nullable)

    @staticmethod
    def CHAR(length, nullable=True):
        return CharType(length, nullable)

    @staticmethod
    def VARCHAR(length, nullable=True):
        return VarCharType(length, nullable)

    @staticmethod
    def STRING(nullable=True):
        return VarCharType(_MAX_LENGTH, nullable)

    @staticmethod
    def BINARY(length, nullable=True):
        return BinaryType(length, nullable)

    @staticmethod
    def VARBINARY(length, nullable=True):
        return VarBinaryType(length, nullable)

    @staticmethod
    def BYTES(nullable=True):
        return VarBinaryType(_MAX_LENGTH, nullable)

    @staticmethod
    def TIME(precision=0, nullable=True):
        return TimeType(precision, nullable)

    @staticmethod
    def TIMESTAMP(precision=6, nullable=True):
        return TimestampType(precision, nullable)

    @staticmethod
    def TIMESTAMP_LTZ(precision=6, nullable=True):
        return LocalZonedTimestampType(precision, nullable)

    TIMESTAMP_WITH_LOCAL_TIME_ZONE = TIMESTAMP_LTZ

    @staticmethod
    def ARRAY(element_type, nullable=True):
        return ArrayType(element_type, nullable)

    @staticmethod
    def MAP(key_type, value_type, nullable=True):
        return MapType(key_type, value_type, nullable)

    @staticmethod
    def LIST_VIEW(element_type):
        return ListViewType(element_type)

    @staticmethod
    def MAP_VIEW(key_type, value_type):
        return MapViewType(key_type, value_type)

    @staticmethod
    def FIELD(name, data_type, description=None):
        return RowField(name, data_type, description)

    @staticmethod
    def ROW(row_fields=(), nullable=True):
        return RowType(row_fields, nullable)


def _quote(name):
    if name.isidentifier():
        return name
    return "`" + name.replace("`", "``") + "`"


def to_ddl(data_type):
    """Spell a type as a DDL string.

    Accepts a DDL string (returned stripped; the engine validates it), a type
    object of this module, or one of a real PyFlink installation (matched by
    class name and attributes).
    """
    if isinstance(data_type, str):
        return data_type.strip()
    name = type(data_type).__name__
    body = _ddl_body(name, data_type)
    if getattr(data_type, "_nullable", True) is False:
        body += " NOT NULL"
    return body


_SIMPLE = {
    "BooleanType": "BOOLEAN", "TinyIntType": "TINYINT", "SmallIntType": "SMALLINT",
    "IntType": "INT", "BigIntType": "BIGINT", "FloatType": "FLOAT",
    "DoubleType": "DOUBLE", "DateType": "DATE",
}


def _ddl_body(name, t):
    if name in _SIMPLE:
        return _SIMPLE[name]
    if name == "DecimalType":
        return "DECIMAL(%d, %d)" % (t.precision, t.scale)
    if name == "VarCharType":
        return "STRING" if t.length == _MAX_LENGTH else "VARCHAR(%d)" % t.length
    if name == "CharType":
        return "CHAR(%d)" % t.length
    if name == "VarBinaryType":
        return "BYTES" if t.length == _MAX_LENGTH else "VARBINARY(%d)" % t.length
    if name == "BinaryType":
        return "BINARY(%d)" % t.length
    if name == "TimeType":
        return "TIME(%d)" % t.precision
    if name == "TimestampType":
        return "TIMESTAMP(%d)" % t.precision
    if name == "LocalZonedTimestampType":
        return "TIMESTAMP_LTZ(%d)" % t.precision
    if name in ("ArrayType", "ListViewType"):  # PyFlink's ListViewType: _element_type
        return "ARRAY<%s>" % to_ddl(getattr(t, "element_type", None) or t._element_type)
    if name in ("MapType", "MapViewType"):
        return "MAP<%s, %s>" % (to_ddl(getattr(t, "key_type", None) or t._key_type),
                                to_ddl(getattr(t, "value_type", None) or t._value_type))
    if name == "RowType":
        return "ROW<%s>" % ", ".join(
            "%s %s" % (_quote(f.name), to_ddl(f.data_type)) for f in t.fields)
    raise TypeError("unsupported data type %r" % (t,))


_HINTS = {
    bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE", str: "STRING",
    bytes: "BYTES", bytearray: "BYTES", decimal.Decimal: "DECIMAL(38, 18)",
    datetime.datetime: "TIMESTAMP(6)", datetime.date: "DATE",
    datetime.time: "TIME(6)",
}


def infer_type(hint):
    """DDL string for a Python type hint, or ``None`` when it says nothing usable.

    ``Optional[T]`` gives T (SQL types are nullable by default); ``List[T]``
    gives ARRAY<T>; ``Dict[K, V]`` gives MAP<K, V>.
    """
    if hint in _HINTS:
        return _HINTS[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return infer_type(rest[0]) if len(rest) == 1 else None
    if origin in (list, tuple) and args:
        element = infer_type(args[0])
        return element and "ARRAY<%s>" % element
    if origin is dict and len(args) == 2:
        key, value = infer_type(args[0]), infer_type(args[1])
        return key and value and "MAP<%s, %s>" % (key, value)
    return None
