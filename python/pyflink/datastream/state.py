"""``pyflink.datastream.state``: state descriptors, ``StateTtlConfig`` and the
state objects, backed by :mod:`pyudf._state`."""

from pyudf._state import (AggregatingState, AggregatingStateDescriptor, BroadcastState,
                          ListState, ListStateDescriptor, MapState, MapStateDescriptor,
                          ReadOnlyBroadcastState, ReducingState, ReducingStateDescriptor,
                          StateDescriptor, StateTtlConfig, ValueState, ValueStateDescriptor)

__all__ = [
    "AggregatingState", "AggregatingStateDescriptor", "BroadcastState", "ListState",
    "ListStateDescriptor", "MapState", "MapStateDescriptor", "ReadOnlyBroadcastState",
    "ReducingState", "ReducingStateDescriptor", "StateDescriptor", "StateTtlConfig",
    "ValueState", "ValueStateDescriptor",
]
