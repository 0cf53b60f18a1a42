"""``Row``: the value of a ROW type, compatible with PyFlink's ``Row``.

A Row is a tuple with optional field names::

    Row(1, "a")                 # positional
    Row(id=1, name="a")         # named, in keyword order
    Person = Row("id", "name")  # a factory: Person(1, "a")

Fields are read by position (``row[0]``), by name (``row["id"]``, ``row.id``)
and as a dict (``row.as_dict()``).
"""

__all__ = ["Row", "RowKind"]


class RowKind:
    """Change kind of a row, as in PyFlink (only INSERT is produced here)."""

    INSERT = 0
    UPDATE_BEFORE = 1
    UPDATE_AFTER = 2
    DELETE = 3


class Row(tuple):
    """A tuple whose fields may have names."""

    def __new__(cls, *args, **kwargs):
        if args and kwargs:
            raise ValueError("Row takes positional or keyword values, not both")
        if kwargs:
            row = tuple.__new__(cls, kwargs.values())
            row._fields = tuple(kwargs)
        else:
            row = tuple.__new__(cls, args)
            row._fields = None
        row._row_kind = RowKind.INSERT
        return row

    @classmethod
    def from_fields(cls, names, values):
        """Build a row from a sequence of names and one of values, of equal length."""
        if names is not None and len(names) != len(values):
            raise ValueError("Row has %d names but %d values" % (len(names), len(values)))
        row = tuple.__new__(cls, values)
        row._fields = tuple(names) if names is not None else None
        row._row_kind = RowKind.INSERT
        return row

    def __call__(self, *values):
        """Use a row of names as a factory: ``Row("a", "b")(1, 2)``."""
        return Row.from_fields(tuple(self), values)

    def __getitem__(self, item):
        if isinstance(item, str):
            try:
                return tuple.__getitem__(self, self._fields.index(item))
            except (AttributeError, ValueError):
                raise KeyError(item) from None
        return tuple.__getitem__(self, item)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        fields = self.__dict__.get("_fields")
        if fields and name in fields:
            return tuple.__getitem__(self, fields.index(name))
        raise AttributeError(name)

    def __reduce__(self):
        return (Row.from_fields, (self._fields, tuple(self)))

    def as_dict(self, recursive=False):
        """The fields as a dict (named rows only); ``recursive`` converts nested rows too."""
        if not self._fields:
            raise TypeError("cannot convert a Row without field names to a dict")

        def convert(value):
            if recursive and isinstance(value, Row):
                return value.as_dict(True)
            if recursive and isinstance(value, list):
                return [convert(v) for v in value]
            if recursive and isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            return value

        return {name: convert(v) for name, v in zip(self._fields, self)}

    def get_row_kind(self):
        return self._row_kind

    def set_row_kind(self, kind):
        self._row_kind = kind

    def get_fields_by_names(self, names):
        return [self[name] for name in names]

    def __repr__(self):
        if self._fields:
            return "Row(%s)" % ", ".join("%s=%r" % kv for kv in zip(self._fields, self))
        return "Row(%s)" % ", ".join(repr(v) for v in self)

    def __eq__(self, other):
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        return tuple.__ne__(self, other)

    __hash__ = tuple.__hash__
