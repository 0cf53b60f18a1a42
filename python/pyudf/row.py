"""``Row`` and ``RowKind``: the value of a ROW type, as PyFlink defines them.

This follows ``pyflink/common/types.py`` of apache-flink 2.3.0 (the newest
release) behaviour for behaviour::

    Row(1, "a")                   # positional, no field names
    Row(id=1, name="a")           # named, fields in keyword order (not sorted)
    Person = Row("id", "name")    # a factory: Person(1, "a") is Row(id=1, name='a')

Fields are read by index or slice (``row[0]``), by name (``row["id"]``,
``row.id``) and as a dict (``row.as_dict()``); they are assigned the same
ways (``row[0] += 1``, ``row["id"] = 2``), so a Row serves as a mutable
aggregate accumulator. ``name in row`` looks at the field names of a named
row and at the values of an unnamed one. Equality needs the same class, the
same row kind and the same values (named rows: the same set of names, the
values compared by name); the hash is that of the values as a tuple, as in
PyFlink (a Row is mutable and hashable, like PyFlink's).

Differences from PyFlink, all deliberate: a Row keeps its state in
``__slots__`` (``_fields``, ``_values``, ``_row_kind``, ``_from_dict``), so
there is no ``row.__dict__``; a factory copies its name list into each row it
makes instead of sharing it; ``RowKind.to_j_row_kind`` (a Java gateway call)
does not exist.
"""

from enum import Enum

__all__ = ["Row", "RowKind"]


class RowKind(Enum):
    """The change a row stands for in a changelog, as in PyFlink."""

    INSERT = 0
    UPDATE_BEFORE = 1
    UPDATE_AFTER = 2
    DELETE = 3

    def __str__(self):
        return _KIND_TEXT[self.value]


_KIND_TEXT = ("+I", "-U", "+U", "-D")
_INSERT = RowKind.INSERT


def _create_row(fields, values, row_kind=None):
    """A Row of ``values`` with names ``fields`` (or none): the pickle
    constructor, with PyFlink's signature."""
    row = Row(*values)
    if fields is not None:
        row._fields = fields
    if row_kind is not None:
        row._row_kind = row_kind
    return row


class Row:
    """A row of a table: values with optional field names and a row kind.

    ``Row(*values)`` makes an unnamed row, ``Row(**fields)`` a named one (the
    fields in keyword order); passing both is a ``ValueError``. An unnamed row
    of strings doubles as a factory of named rows: ``Row("a", "b")(1, 2)``.
    """

    __slots__ = ("_fields", "_values", "_row_kind", "_from_dict")

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("Can not use both args and kwargs to create Row")
        if kwargs:
            self._fields = list(kwargs)
            self._values = list(kwargs.values())
            self._from_dict = True
        else:
            self._values = list(args)
            self._from_dict = False
        self._row_kind = _INSERT

    @classmethod
    def from_fields(cls, names, values):
        """A row of ``values`` named by ``names`` (a sequence of the same length, or None)."""
        if names is not None and len(names) != len(values):
            raise ValueError("Row has %d names but %d values" % (len(names), len(values)))
        return cls._make(None if names is None else list(names), list(values))

    @classmethod
    def _make(cls, names, values):
        """A row that takes ``names`` (a list, or None) and ``values`` (a list)
        as they are, without copies: the converters' constructor."""
        row = object.__new__(cls)
        if names is not None:
            row._fields = names
        row._values = values
        row._from_dict = False
        row._row_kind = _INSERT
        return row

    @staticmethod
    def of_kind(row_kind, *args, **kwargs):
        """``Row(*args, **kwargs)`` with row kind ``row_kind``."""
        row = Row(*args, **kwargs)
        row._row_kind = row_kind
        return row

    def as_dict(self, recursive=False):
        """The fields as a dict (named rows only, else ``TypeError``);
        ``recursive`` turns nested rows, also inside lists and dicts, into dicts."""
        if not hasattr(self, "_fields"):
            raise TypeError("Cannot convert a Row class into dict")
        if not recursive:
            return dict(zip(self._fields, self._values))

        def conv(obj):
            if isinstance(obj, Row):
                return obj.as_dict(True)
            if isinstance(obj, list):
                return [conv(o) for o in obj]
            if isinstance(obj, dict):
                return {k: conv(v) for k, v in obj.items()}
            return obj

        return dict(zip(self._fields, (conv(o) for o in self._values)))

    def get_row_kind(self):
        return self._row_kind

    def set_row_kind(self, row_kind):
        self._row_kind = row_kind

    def set_field_names(self, field_names):
        self._fields = field_names

    def get_fields_by_names(self, names):
        """The values of the fields ``names``, in that order (all values when
        the row has no names or exactly these)."""
        if not hasattr(self, "_fields") or names == self._fields:
            return self._values
        difference = list(set(names).difference(set(self._fields)))
        if difference:
            raise Exception("Field names {0} not exist in {1}.".format(difference, self._fields))
        return [self._values[self._fields.index(name)] for name in names]

    def _is_retract_msg(self):
        return self._row_kind in (RowKind.UPDATE_BEFORE, RowKind.DELETE)

    def _is_accumulate_msg(self):
        return self._row_kind in (RowKind.UPDATE_AFTER, RowKind.INSERT)

    def __contains__(self, item):
        fields = getattr(self, "_fields", None)
        if fields is not None:
            return item in fields
        return item in self._values

    def __call__(self, *args):
        """Use this row's values as field names: a new named row of ``args``."""
        if len(args) > len(self._values):
            raise ValueError("Can not create Row with fields %s, expected %d values "
                             "but got %s" % (self, len(self._values), args))
        return _create_row(list(self._values), args, self._row_kind)

    def __getitem__(self, item):
        if isinstance(item, (int, slice)):
            return self._values[item]
        try:
            return self._values[self._fields.index(item)]
        except IndexError:
            raise KeyError(item) from None
        except ValueError:
            raise ValueError(item) from None

    def __setitem__(self, key, value):
        if isinstance(key, (int, slice)):
            self._values[key] = value
            return
        try:
            self._values[self._fields.index(key)] = value
        except (IndexError, AttributeError):
            raise KeyError(key) from None
        except ValueError:
            raise ValueError(value) from None

    def __getattr__(self, item):
        # Only reached when normal lookup fails: a field name, or an unset slot.
        if item.startswith("_"):
            raise AttributeError(item)
        try:
            return self._values[self._fields.index(item)]
        except (IndexError, ValueError):
            raise AttributeError(item) from None

    def __reduce__(self):
        fields = getattr(self, "_fields", None)
        return _create_row, (fields, tuple(self._values), self._row_kind)

    def __repr__(self):
        if hasattr(self, "_fields"):
            return "Row(%s)" % ", ".join("%s=%r" % (k, v) for k, v in zip(self._fields, self._values))
        return "<Row(%s)>" % ", ".join(repr(v) for v in self._values)

    def __eq__(self, other):
        if not isinstance(other, Row):
            return False
        if hasattr(self, "_fields"):
            if not hasattr(other, "_fields"):
                return False
            names = sorted(self._fields)
            if names != sorted(other._fields):
                return False
            return (self.__class__ == other.__class__ and self._row_kind == other._row_kind
                    and [self._values[self._fields.index(n)] for n in names]
                    == [other._values[other._fields.index(n)] for n in names])
        if hasattr(other, "_fields"):
            return False
        return (self.__class__ == other.__class__ and self._row_kind == other._row_kind
                and self._values == other._values)

    def __hash__(self):
        return hash(tuple(self._values))

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)


_FIELDS_OF = Row.__dict__["_fields"].__get__
_VALUES_OF = Row.__dict__["_values"].__get__


def _parts(row):
    """(field names or None, values) of a Row (a subclass's too), read from its
    slots whatever the subclass overrides: what the converters encode. The
    names come as given (a list, a tuple, None ...); the values are a list
    unless someone assigned ``_values`` something else."""
    try:
        fields = _FIELDS_OF(row)
    except AttributeError:
        fields = None
    return fields, _VALUES_OF(row)


def _rows(names, tuples):
    """One named Row per tuple of ``tuples``, all sharing the list ``names``:
    the row-wise batch path's constructor (a loop without method calls)."""
    new, cls, kind = object.__new__, Row, _INSERT
    out = []
    append = out.append
    for values in tuples:
        row = new(cls)
        row._fields = names
        row._values = list(values)
        row._from_dict = False
        row._row_kind = kind
        append(row)
    return out


def as_rows(produced):
    """The rows a table function or a table aggregate's ``emit_value``
    produced, as a list of tuples: each a Row, tuple or list, or for a
    one-column result a bare value; ``None`` means no rows."""
    if produced is None:
        return []
    return [tuple(r) if isinstance(r, (tuple, list, Row)) else (r,) for r in produced]
