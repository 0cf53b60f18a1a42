"""``pyflink.datastream.functions``: the DataStream function base classes and
``RuntimeContext``, backed by :mod:`pyudf._datastream`."""

from pyudf._datastream import (AggregateFunction, BroadcastProcessFunction, FilterFunction,
                               FlatMapFunction, Function, KeyedBroadcastProcessFunction,
                               KeyedProcessFunction, KeySelector, MapFunction, ProcessFunction,
                               ProcessWindowFunction, ReduceFunction, RuntimeContext)

__all__ = [
    "AggregateFunction", "BroadcastProcessFunction", "FilterFunction", "FlatMapFunction",
    "Function", "KeyedBroadcastProcessFunction", "KeyedProcessFunction", "KeySelector",
    "MapFunction", "ProcessFunction", "ProcessWindowFunction", "ReduceFunction", "RuntimeContext",
]
