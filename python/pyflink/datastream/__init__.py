"""``pyflink.datastream`` names that DataStream function code uses, backed by
the pyudf runtime (:mod:`pyudf._datastream`): the function base classes,
``RuntimeContext``, ``OutputTag``, ``TimeDomain``, ``TimerService``, and the
state descriptors (also in :mod:`pyflink.datastream.state`).

The job-building API (``StreamExecutionEnvironment``, ``DataStream``,
``KeyedStream``, ``WatermarkStrategy`` ...) has no meaning inside a Go
process: the Go program is the stream processor and drives the functions
(``engine.Module.Operator``).
"""

from pyflink.datastream.functions import (AggregateFunction, BroadcastProcessFunction,
                                          FilterFunction, FlatMapFunction, Function,
                                          KeyedBroadcastProcessFunction, KeyedProcessFunction,
                                          KeySelector, MapFunction, ProcessFunction,
                                          ProcessWindowFunction, ReduceFunction, RuntimeContext)
from pyflink.datastream.output_tag import OutputTag
from pyflink.datastream.state import (AggregatingStateDescriptor, ListStateDescriptor,
                                      MapStateDescriptor, ReducingStateDescriptor,
                                      StateTtlConfig, ValueStateDescriptor)
from pyflink.datastream.timerservice import TimerService
from pyflink.datastream.window import TimeWindow
from pyudf._datastream import TimeDomain

__all__ = [
    "AggregateFunction", "AggregatingStateDescriptor", "BroadcastProcessFunction",
    "FilterFunction", "FlatMapFunction", "Function", "KeyedBroadcastProcessFunction",
    "KeyedProcessFunction", "KeySelector", "ListStateDescriptor", "MapFunction",
    "MapStateDescriptor", "OutputTag", "ProcessFunction", "ProcessWindowFunction",
    "ReduceFunction", "ReducingStateDescriptor", "RuntimeContext", "StateTtlConfig",
    "TimeDomain", "TimeWindow", "TimerService", "ValueStateDescriptor",
]
