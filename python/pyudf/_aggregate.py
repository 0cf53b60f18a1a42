"""Keyed aggregation state for PyFlink-style aggregate and table aggregate functions.

The Go engine holds one :class:`KeyedAggregate` per opened aggregate or
table aggregate function.
Accumulators live here, one per key, in a dict; Go names them by key. Every
method is called from Go through the ordinary row-call path (one crossing
per call), including :meth:`accumulate_batch`, which takes a whole Arrow batch
by C Data Interface address and groups its rows by key here, in one crossing.

State can be checkpointed: :meth:`snapshot` pickles every accumulator to
bytes and :meth:`restore` replaces the state with a snapshot's.
:meth:`snapshot_key` and :meth:`restore_key` do the same for one key, in the
same form, leaving the other keys alone (accumulators that travel on their
own, as a Beam CombineFn's do).
"""

import pickle

from .row import as_rows

_SNAPSHOT_VERSION = 1


class KeyedAggregate:
    """The accumulators of one aggregate function, by key.

    For a table aggregate function (``table=True``) a key's value is the list
    of rows its ``emit_value`` yields, each a tuple (see :func:`pyudf.row.as_rows`).
    """

    def __init__(self, function, table=False):
        self._function = function
        self._table = table
        self._accumulators = {}
        self._create = function.create_accumulator
        self._accumulate = function.accumulate
        self._has_retract = _overrides(function, "retract")
        self._has_merge = _overrides(function, "merge")

    def _accumulator(self, key):
        acc = self._accumulators.get(key)
        if acc is None:
            acc = self._accumulators[key] = self._function.create_accumulator()
        return acc

    def accumulate(self, key, *args):
        """Add one row to the accumulator of ``key`` (created on first use)."""
        acc = self._accumulators.get(key)  # the hot path: no helper calls
        if acc is None:
            acc = self._accumulators[key] = self._create()
        self._accumulate(acc, *args)

    def retract(self, key, *args):
        """Remove one row from the accumulator of ``key``."""
        if not self._has_retract:
            raise NotImplementedError("%s does not implement retract" % type(self._function).__name__)
        self._function.retract(self._accumulator(key), *args)

    def merge(self, key, *sources):
        """Merge the accumulators of ``sources`` into that of ``key``; the sources are dropped."""
        if not self._has_merge:
            raise NotImplementedError("%s does not implement merge" % type(self._function).__name__)
        others = [self._accumulators[s] for s in sources if s in self._accumulators and s != key]
        self._function.merge(self._accumulator(key), others)
        for s in sources:
            if s != key:
                self._accumulators.pop(s, None)

    def get_value(self, key):
        """The result for ``key`` (that of a fresh accumulator if none exists):
        ``get_value``'s, or for a table aggregate the rows ``emit_value`` yields."""
        acc = self._accumulators.get(key)
        if acc is None:
            acc = self._function.create_accumulator()
        if self._table:
            return as_rows(self._function.emit_value(acc))
        return self._function.get_value(acc)

    def remove(self, key):
        """Drop the accumulator of ``key``; returns whether there was one."""
        return self._accumulators.pop(key, None) is not None

    def size(self):
        return len(self._accumulators)

    def accumulate_batch(self, array_addr, schema_addr, key_index):
        """Accumulate every row of a batch, grouped by the key column; returns the row count."""
        from . import _batch  # imports pyarrow: only when batches are used
        batch = _batch.import_batch(array_addr, schema_addr)
        columns = [c.to_pylist() for c in batch.columns]
        keys = columns.pop(key_index)
        accumulate, function = self._accumulator, self._function.accumulate
        for key, *args in zip(keys, *columns):
            function(accumulate(key), *args)
        return batch.num_rows

    def snapshot(self):
        """Every accumulator, pickled."""
        return pickle.dumps((_SNAPSHOT_VERSION, self._accumulators), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, data):
        """Replace the state with a snapshot's; returns the number of keys."""
        accumulators = _load(data)
        self._accumulators = accumulators
        return len(accumulators)

    def snapshot_key(self, key):
        """The accumulator of ``key`` alone (a fresh one if it has none),
        pickled in :meth:`snapshot`'s form: a snapshot of that one key.
        The state is left as it was."""
        acc = self._accumulators.get(key)
        if acc is None:
            acc = self._create()
        return pickle.dumps((_SNAPSHOT_VERSION, {key: acc}), protocol=pickle.HIGHEST_PROTOCOL)

    def restore_key(self, key, data):
        """Make the one accumulator of a one-key snapshot (of any key, as
        :meth:`snapshot_key` makes) that of ``key``; other keys are kept."""
        accumulators = _load(data)
        if len(accumulators) != 1:
            raise ValueError("a one-key pyudf aggregate snapshot was expected, this one holds %d keys"
                             % len(accumulators))
        (acc,) = accumulators.values()
        self._accumulators[key] = acc

    def clear(self):
        """Drop every accumulator."""
        self._accumulators.clear()


def _load(data):
    """The accumulators of a snapshot; ValueError for bytes that are not one."""
    try:
        version, accumulators = pickle.loads(data)
    except Exception as exc:
        raise ValueError("not a pyudf aggregate snapshot: %s: %s" % (type(exc).__name__, exc)) from None
    if version != _SNAPSHOT_VERSION or not isinstance(accumulators, dict):
        raise ValueError("not a pyudf aggregate snapshot (version %r)" % (version,))
    return accumulators


def _overrides(function, name):
    """Whether ``function`` implements ``name`` rather than inheriting the base stub."""
    from .udf import ImperativeAggregateFunction
    method = getattr(type(function), name, None)
    return method is not None and method is not getattr(ImperativeAggregateFunction, name, None)
