"""Keyed aggregation state for PyFlink-style aggregate and table aggregate functions.

The Go engine holds one :class:`KeyedAggregate` per opened aggregate or
table aggregate function.
Accumulators live here, one per key, in a dict; Go names them by key. Every
method is called from Go through the ordinary row-call path (one crossing
per call), including :meth:`accumulate_batch`, which takes a whole Arrow batch
by C Data Interface address and groups its rows by key here, in one crossing.

State can be checkpointed: :meth:`snapshot` pickles every accumulator to
bytes and :meth:`restore` replaces the state with a snapshot's.

In the sub-interpreter pool each interpreter has a :class:`KeyedAggregate`
of its own for the function, and each key's accumulator lives in the one
interpreter :func:`pin_hash` names (the Go engine computes the same hash of
its key values). The methods after :meth:`clear` serve that: they move
accumulators between interpreters as pickled bytes and join or split
snapshots, so that a snapshot holds every key once, whatever the number of
interpreters.

:meth:`snapshot_key` and :meth:`restore_key` do the same for one key, in the
same form, leaving the other keys alone (accumulators that travel on their
own, as a Beam CombineFn's do).
"""

import datetime
import pickle
import struct
import zlib

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
        self._merge(key, sources, {})

    def _merge(self, key, sources, moved):
        if not self._has_merge:
            raise NotImplementedError("%s does not implement merge" % type(self._function).__name__)
        here = self._accumulators
        others = [moved[s] if s in moved else here[s] for s in sources
                  if s != key and (s in moved or s in here)]
        self._function.merge(self._accumulator(key), others)
        for s in sources:
            if s != key:
                here.pop(s, None)

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
        return _dump(self._accumulators)

    def restore(self, data):
        """Replace the state with a snapshot's; returns the number of keys."""
        self._accumulators = _load(data)
        return len(self._accumulators)

    def snapshot_key(self, key):
        """The accumulator of ``key`` alone (a fresh one if it has none),
        pickled in :meth:`snapshot`'s form: a snapshot of that one key.
        The state is left as it was."""
        acc = self._accumulators.get(key)
        if acc is None:
            acc = self._create()
        return _dump({key: acc})

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

    # --- the sub-interpreter pool (see the module's docstring) -------------

    def export(self, *keys):
        """The accumulators of those ``keys`` that have one, pickled as a
        snapshot of them alone; the state is unchanged."""
        here = self._accumulators
        return _dump({k: here[k] for k in keys if k in here})

    def merge_from(self, key, moved, *sources):
        """:meth:`merge`, where the accumulators of some sources come from
        other interpreters: ``moved`` is a list of :meth:`export` results.
        The caller drops the moved ones where they came from once this
        returns; if it raises, nothing was dropped anywhere."""
        accumulators = {}
        for data in moved:
            accumulators.update(_load(data))
        self._merge(key, sources, accumulators)

    def accumulate_rows(self, data):
        """Accumulate rows pickled by :meth:`split_batch`; returns their count."""
        rows = pickle.loads(data)
        accumulate, function = self._accumulator, self._function.accumulate
        for key, *args in rows:
            function(accumulate(key), *args)
        return len(rows)

    @staticmethod
    def join_snapshots(*snapshots):
        """One snapshot holding the keys of all ``snapshots`` (the
        interpreters' parts, whose keys differ)."""
        accumulators = {}
        for data in snapshots:
            accumulators.update(_load(data))
        return _dump(accumulators)

    @staticmethod
    def split_snapshot(data, n):
        """A snapshot's keys split into ``n`` snapshots by :func:`pin_hash`:
        part i for interpreter i. Bytes that are not a snapshot raise
        ValueError."""
        parts = [{} for _ in range(n)]
        for key, acc in _load(data).items():
            parts[pin_hash(key) % n][key] = acc
        return [_dump(part) for part in parts]

    @staticmethod
    def split_batch(array_addr, schema_addr, key_index, n):
        """A batch's rows as ``(key, *args)`` tuples split into ``n`` by
        :func:`pin_hash` of the key, each part pickled for
        :meth:`accumulate_rows` (b"" for a part without rows)."""
        from . import _batch  # imports pyarrow: here on the main interpreter only
        batch = _batch.import_batch(array_addr, schema_addr)
        columns = [c.to_pylist() for c in batch.columns]
        keys = columns.pop(key_index)
        parts = [[] for _ in range(n)]
        for row in zip(keys, *columns):
            parts[pin_hash(row[0]) % n].append(row)
        return [pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL) if part else b"" for part in parts]


_M64 = (1 << 64) - 1
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_NAIVE_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_DATE = datetime.date(1970, 1, 1)
_MICROSECOND = datetime.timedelta(microseconds=1)


def _mix(x):
    """splitmix64's finalizer: the 64 bits of x, well mixed."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def pin_hash(key):
    """A 64-bit hash of an aggregate key that is stable across processes and
    interpreters (unlike ``hash`` of a string) and equal for keys that are
    equal in Python (``True`` and ``1``, ``2.0`` and ``2``). The Go engine's
    pinHash (engine/subinterp.go) computes the same from a Go key.

    Integers and bools: their value modulo 2**64; integral floats as that
    integer, other floats by their IEEE bits (NaN: 0); strings by the CRC-32
    of their UTF-8, bytes by theirs; datetimes by microseconds since the
    epoch (aware: of UTC; naive: as if UTC); dates by those of their
    midnight. Any other key: 0.
    """
    if isinstance(key, int):
        return _mix(key & _M64)
    if isinstance(key, float):
        if key.is_integer():
            return _mix(int(key) & _M64)
        if key != key:
            return 0
        return _mix(struct.unpack("<Q", struct.pack("<d", key))[0])
    if isinstance(key, str):
        return _mix(zlib.crc32(key.encode("utf-8", "surrogatepass")) | 1 << 32)
    if isinstance(key, (bytes, bytearray)):
        return _mix(zlib.crc32(key) | 1 << 32)
    if isinstance(key, datetime.datetime):
        epoch = _NAIVE_EPOCH if key.utcoffset() is None else _EPOCH
        return _mix(((key - epoch) // _MICROSECOND) & _M64)
    if isinstance(key, datetime.date):
        return _mix(((key - _EPOCH_DATE).days * 86400000000) & _M64)
    return 0


def _dump(accumulators):
    return pickle.dumps((_SNAPSHOT_VERSION, accumulators), protocol=pickle.HIGHEST_PROTOCOL)


def _load(data):
    """The accumulators of a snapshot; ValueError if data is not one."""
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
