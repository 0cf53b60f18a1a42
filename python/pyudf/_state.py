"""Keyed and broadcast state for DataStream functions (``pyflink.datastream.state``).

A function registers a state with a descriptor (``ValueStateDescriptor("count",
Types.LONG())``) through its runtime context, usually in ``open``; the state
object it gets back reads and writes the value of the *current key*, which the
engine sets before every ``process_element`` and ``on_timer``. Values live in
the operator's tables (:class:`pyudf._datastream.Operator`), one dict per
descriptor, keyed by the stream's key, so a snapshot is those dicts.

Time-to-live (:class:`StateTtlConfig`) counts in the operator's processing
time, the clock the Go caller advances (``AdvanceProcessingTime``); it applies
to a key's whole value of a state (a list, a map), not per element.
"""

import enum

from .timeutil import Time
from .typeinfo import TypeInformation

__all__ = [
    "StateDescriptor", "ValueStateDescriptor", "ListStateDescriptor", "MapStateDescriptor",
    "ReducingStateDescriptor", "AggregatingStateDescriptor", "StateTtlConfig",
    "ValueState", "ListState", "MapState", "ReducingState", "AggregatingState",
    "BroadcastState", "ReadOnlyBroadcastState", "ReadOnlyStateError",
]


class ReadOnlyStateError(RuntimeError):
    """Writing broadcast state where it is read-only (an element's path), as
    Flink's UnsupportedOperationException."""


# --- time to live ----------------------------------------------------------

class StateTtlConfig:
    """Time-to-live of a state's values: ``StateTtlConfig.new_builder(Time.minutes(10))
    .set_update_type(...).set_state_visibility(...).cleanup_full_snapshot().build()``."""

    class UpdateType(enum.Enum):
        Disabled = 0
        OnCreateAndWrite = 1
        OnReadAndWrite = 2

    class StateVisibility(enum.Enum):
        ReturnExpiredIfNotCleanedUp = 0
        NeverReturnExpired = 1

    class TtlTimeCharacteristic(enum.Enum):
        ProcessingTime = 0

    def __init__(self, update_type, state_visibility, ttl_time_characteristic, ttl, cleanup_full_snapshot=False):
        self._update_type = update_type
        self._visibility = state_visibility
        self._characteristic = ttl_time_characteristic
        self._ttl = ttl
        self._full_snapshot = cleanup_full_snapshot

    def get_update_type(self):
        return self._update_type

    def get_state_visibility(self):
        return self._visibility

    def get_ttl(self):
        return self._ttl

    def get_ttl_time_characteristic(self):
        return self._characteristic

    def is_enabled(self):
        return self._update_type != StateTtlConfig.UpdateType.Disabled

    @staticmethod
    def new_builder(ttl):
        return StateTtlConfig.Builder(ttl)

    class Builder:
        def __init__(self, ttl):
            self._ttl = ttl
            self._update = StateTtlConfig.UpdateType.OnCreateAndWrite
            self._visibility = StateTtlConfig.StateVisibility.NeverReturnExpired
            self._full_snapshot = False

        def set_update_type(self, update_type):
            self._update = update_type
            return self

        def update_ttl_on_create_and_write(self):
            return self.set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)

        def update_ttl_on_read_and_write(self):
            return self.set_update_type(StateTtlConfig.UpdateType.OnReadAndWrite)

        def set_state_visibility(self, state_visibility):
            self._visibility = state_visibility
            return self

        def return_expired_if_not_cleaned_up(self):
            return self.set_state_visibility(StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp)

        def never_return_expired(self):
            return self.set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)

        def set_ttl_time_characteristic(self, ttl_time_characteristic):
            return self

        def use_processing_time(self):
            return self

        def cleanup_full_snapshot(self):
            self._full_snapshot = True
            return self

        def cleanup_incrementally(self, cleanup_size, run_cleanup_for_every_record):
            return self  # expired values are dropped on read and in snapshots

        def cleanup_in_rocksdb_compact_filter(self, query_time_after_num_entries, periodic_compaction_time=None):
            return self

        def disable_cleanup_in_background(self):
            return self

        def set_ttl(self, ttl):
            self._ttl = ttl
            return self

        def build(self):
            return StateTtlConfig(self._update, self._visibility,
                                  StateTtlConfig.TtlTimeCharacteristic.ProcessingTime, self._ttl,
                                  self._full_snapshot)


def _millis(t):
    if isinstance(t, Time):
        return t.to_milliseconds()
    if hasattr(t, "to_milliseconds"):
        return t.to_milliseconds()
    if hasattr(t, "total_seconds"):  # datetime.timedelta
        return int(t.total_seconds() * 1000)
    return int(t)


# --- descriptors -----------------------------------------------------------

class StateDescriptor:
    """A named state of some kind and type."""

    kind = "State"

    def __init__(self, name, type_info=None):
        if not isinstance(name, str) or not name:
            raise TypeError("a state's name is a non-empty string, not %r" % (name,))
        self.name = name
        self.type_info = type_info
        self._ttl_config = None

    def get_name(self):
        return self.name

    def enable_time_to_live(self, ttl_config):
        if not isinstance(ttl_config, StateTtlConfig):
            raise TypeError("enable_time_to_live takes a StateTtlConfig, not %s" % type(ttl_config).__name__)
        self._ttl_config = ttl_config

    def signature(self):
        """What must match when the same name is registered again."""
        return "%s<%s>" % (self.kind, ", ".join(repr(t) for t in self._types()))

    def _types(self):
        return [self.type_info]

    def __repr__(self):
        return "%s %r" % (self.signature(), self.name)


class ValueStateDescriptor(StateDescriptor):
    kind = "ValueState"

    def __init__(self, name, value_type_info=None):
        super().__init__(name, value_type_info)


class ListStateDescriptor(StateDescriptor):
    kind = "ListState"

    def __init__(self, name, elem_type_info=None):
        super().__init__(name, elem_type_info)


class MapStateDescriptor(StateDescriptor):
    kind = "MapState"

    def __init__(self, name, key_type_info=None, value_type_info=None):
        super().__init__(name, value_type_info)
        self.key_type_info = key_type_info

    def _types(self):
        return [self.key_type_info, self.type_info]


class ReducingStateDescriptor(StateDescriptor):
    kind = "ReducingState"

    def __init__(self, name, reduce_function, type_info=None):
        super().__init__(name, type_info)
        self.reduce_function = reduce_function


class AggregatingStateDescriptor(StateDescriptor):
    kind = "AggregatingState"

    def __init__(self, name, agg_function, state_type_info=None):
        super().__init__(name, state_type_info)
        self.agg_function = agg_function


# --- keyed state objects ---------------------------------------------------

_ABSENT = object()
NO_KEY = object()  # the operator's key outside process_element and on_timer


class _Keyed:
    """A state of the current key: its value in the operator's table ``name``."""

    def __init__(self, op, descriptor):
        self._op = op
        self._descriptor = descriptor
        self._name = descriptor.name
        self._table = op.tables.setdefault(descriptor.name, {})
        t = descriptor.type_info
        self._type_check = None if t is None or type(t).check is TypeInformation.check else t.check
        ttl = descriptor._ttl_config
        self._ttl = _millis(ttl.get_ttl()) if ttl is not None and ttl.is_enabled() else None
        if self._ttl is not None:
            self._stamps = op.stamps.setdefault(descriptor.name, {})
            self._touch_on_read = ttl.get_update_type() == StateTtlConfig.UpdateType.OnReadAndWrite
            self._hide_expired = ttl.get_state_visibility() == StateTtlConfig.StateVisibility.NeverReturnExpired

    def _load(self):
        key = self._op.current_key()
        value = self._table.get(key, _ABSENT)
        if value is _ABSENT or self._ttl is None:
            return value
        now = self._op.now
        if self._stamps.get(key, now) + self._ttl <= now:
            if self._hide_expired:
                del self._table[key]
                self._stamps.pop(key, None)
                return _ABSENT
        elif self._touch_on_read:
            self._stamps[key] = now
        return value

    def _store(self, value):
        key = self._op.current_key()
        self._table[key] = value
        if self._ttl is not None:
            self._stamps[key] = self._op.now

    def _check(self, value, what="value"):
        t = self._descriptor.type_info
        if t is not None:
            reason = t.check(value)
            if reason:
                raise TypeError("%s %r: %s %s" % (self._descriptor.kind, self._name, what, reason))

    def clear(self):
        """Drop the current key's value."""
        key = self._op.current_key()
        self._table.pop(key, None)
        if self._ttl is not None:
            self._stamps.pop(key, None)


class ValueState(_Keyed):
    """One value per key: ``value()``, ``update(v)``, ``clear()``."""

    def value(self):
        if self._ttl is None:  # the common case, inline
            key = self._op.key
            if key is NO_KEY:
                key = self._op.current_key()  # raises
            return self._table.get(key)
        v = self._load()
        return None if v is _ABSENT else v

    def update(self, value):
        check = self._type_check
        if check is not None and check(value) is not None:
            self._check(value)
        if self._ttl is None:
            key = self._op.key
            if key is NO_KEY:
                key = self._op.current_key()
            self._table[key] = value
            return
        self._store(value)


class ListState(_Keyed):
    """A list per key: ``get()``, ``add(v)``, ``add_all(vs)``, ``update(vs)``, ``clear()``."""

    def get(self):
        v = self._load()
        return [] if v is _ABSENT else list(v)

    def add(self, value):
        self._check(value, "element")
        v = self._load()
        self._store([value] if v is _ABSENT else v + [value])

    def add_all(self, values):
        values = list(values)
        for x in values:
            self._check(x, "element")
        v = self._load()
        self._store(values if v is _ABSENT else v + values)

    def update(self, values):
        values = list(values)
        for x in values:
            self._check(x, "element")
        self._store(values)


class MapState(_Keyed):
    """A dict per key: ``get``, ``put``, ``put_all``, ``remove``, ``contains``,
    ``keys``, ``values``, ``items``, ``is_empty``, ``clear``."""

    def _dict(self):
        v = self._load()
        return {} if v is _ABSENT else v

    def get(self, key):
        return self._dict().get(key)

    def put(self, key, value):
        kt = self._descriptor.key_type_info
        if kt is not None and kt.check(key):
            raise TypeError("MapState %r: key %s" % (self._name, kt.check(key)))
        self._check(value)
        d = dict(self._dict())
        d[key] = value
        self._store(d)

    def put_all(self, mapping):
        for k, v in dict(mapping).items():
            self.put(k, v)

    def remove(self, key):
        d = self._dict()
        if key in d:
            d = dict(d)
            del d[key]
            self._store(d)

    def contains(self, key):
        return key in self._dict()

    def keys(self):
        return list(self._dict().keys())

    def values(self):
        return list(self._dict().values())

    def items(self):
        return list(self._dict().items())

    def is_empty(self):
        return not self._dict()

    def __iter__(self):
        return iter(self.keys())


class ReducingState(_Keyed):
    """A value per key that ``add`` reduces into with the descriptor's reduce function."""

    def __init__(self, op, descriptor):
        super().__init__(op, descriptor)
        fn = descriptor.reduce_function
        self._reduce = fn.reduce if hasattr(fn, "reduce") else fn

    def get(self):
        v = self._load()
        return None if v is _ABSENT else v

    def add(self, value):
        v = self._load()
        value = value if v is _ABSENT else self._reduce(v, value)
        self._check(value)
        self._store(value)


class AggregatingState(_Keyed):
    """An accumulator per key that ``add`` feeds through the descriptor's
    DataStream AggregateFunction; ``get`` is its ``get_result``."""

    def __init__(self, op, descriptor):
        super().__init__(op, descriptor)
        self._agg = descriptor.agg_function

    def get(self):
        v = self._load()
        return None if v is _ABSENT else self._agg.get_result(v)

    def add(self, value):
        v = self._load()
        acc = self._agg.create_accumulator() if v is _ABSENT else v
        self._store(self._agg.add(value, acc))


KINDS = {
    ValueStateDescriptor: ValueState, ListStateDescriptor: ListState,
    MapStateDescriptor: MapState, ReducingStateDescriptor: ReducingState,
    AggregatingStateDescriptor: AggregatingState,
}


# --- broadcast state -------------------------------------------------------

class ReadOnlyBroadcastState:
    """Broadcast state as an element's path sees it: ``get``, ``contains``,
    ``keys``, ``values``, ``items``, ``is_empty``; writing raises
    :class:`ReadOnlyStateError`."""

    def __init__(self, name, table):
        self._name = name
        self._table = table

    def get(self, key):
        return self._table.get(key)

    def contains(self, key):
        return key in self._table

    def keys(self):
        return list(self._table.keys())

    def values(self):
        return list(self._table.values())

    def items(self):
        return list(self._table.items())

    def immutable_entries(self):
        return self.items()

    def is_empty(self):
        return not self._table

    def __iter__(self):
        return iter(self.keys())

    def _refuse(self, *args):
        raise ReadOnlyStateError(
            "broadcast state %r is read-only in process_element: update it in "
            "process_broadcast_element" % self._name)

    put = put_all = remove = clear = _refuse


class BroadcastState(ReadOnlyBroadcastState):
    """Broadcast state in ``process_broadcast_element``: read and write."""

    def put(self, key, value):
        self._table[key] = value

    def put_all(self, mapping):
        self._table.update(mapping)

    def remove(self, key):
        self._table.pop(key, None)

    def clear(self):
        self._table.clear()
