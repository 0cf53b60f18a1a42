"""PyFlink's data views: ``ListView`` and ``MapView`` for aggregate accumulators.

An accumulator (for instance ``Row(ListView(), 0)``) may hold a data view where
it expects many values. In PyFlink a data view is backed by a plain collection
or by a state backend; pyudf keeps every accumulator in memory, so both are
backed by a plain ``list`` / ``dict``. The methods and their semantics are
PyFlink's (``pyflink/table/data_view.py``): ``MapView.get`` of a missing key
raises ``KeyError``, iterating a ``MapView`` yields its keys, equality compares
the contents, and neither view is hashable.

Both pickle (an aggregate's Snapshot/Restore pickles its accumulators), and
a view returned as a result converts to Go like the collection behind it: a
``ListView`` like a list, a ``MapView`` like a dict (see :func:`plain`).
"""

import abc

__all__ = ["DataView", "ListView", "MapView"]


class DataView(abc.ABC):
    """A collection usable in an aggregate function's accumulator."""

    @abc.abstractmethod
    def clear(self):
        """Remove every element."""

    __hash__ = None  # as in PyFlink, where hashing the list/dict behind it raises TypeError


class ListView(DataView):
    """A list of values in an accumulator: ``add``, ``add_all``, ``get``, iteration."""

    def __init__(self):
        self._list = []

    def get(self):
        """The values, in the order they were added (an iterable)."""
        return self._list

    def add(self, value):
        """Append ``value``."""
        self._list.append(value)

    def add_all(self, values):
        """Append every value of ``values``."""
        self._list.extend(values)

    def clear(self):
        """Remove every value."""
        self._list = []

    def __iter__(self):
        return iter(self.get())

    def __eq__(self, other):
        if not isinstance(other, ListView):
            return False
        return list(self) == list(other)

    def __repr__(self):
        return "ListView(%r)" % (self._list,)


class MapView(DataView):
    """A map in an accumulator: ``get``, ``put``, ``put_all``, ``remove``,
    ``contains``, ``keys``, ``values``, ``items``, ``is_empty``, iteration over keys."""

    def __init__(self):
        self._dict = {}

    def get(self, key):
        """The value of ``key``; ``KeyError`` if there is none."""
        return self._dict[key]

    def put(self, key, value):
        """Set the value of ``key``."""
        self._dict[key] = value

    def put_all(self, dict_value):
        """Set every key and value of the mapping ``dict_value``."""
        self._dict.update(dict_value)

    def remove(self, key):
        """Remove ``key`` and its value; ``KeyError`` if there is none."""
        del self._dict[key]

    def contains(self, key):
        """Whether ``key`` has a value."""
        return key in self._dict

    def items(self):
        """The (key, value) pairs."""
        return self._dict.items()

    def keys(self):
        """The keys."""
        return self._dict.keys()

    def values(self):
        """The values."""
        return self._dict.values()

    def is_empty(self):
        """Whether the map holds no key."""
        return len(self._dict) == 0

    def clear(self):
        """Remove every key."""
        self._dict.clear()

    def __iter__(self):
        return iter(self.keys())

    def __eq__(self, other):
        if not isinstance(other, MapView):
            return False
        return self._dict == other._dict

    def __repr__(self):
        return "MapView(%r)" % (self._dict,)


def plain(view):
    """The collection a data view converts to: a new list or dict of its contents."""
    if isinstance(view, ListView):
        return list(view)
    return dict(view.items())
