"""PyFlink's DataStream functions, run by an operator that Go drives.

The classes users subclass (``MapFunction``, ``KeyedProcessFunction`` ...)
are here and re-exported by ``pyflink.datastream``. The Go engine opens one
:class:`Operator` per instance (``Module.Operator``): it owns the instance's
keyed state (per key and descriptor), broadcast state and timers, and Go
calls its methods, each through the ordinary row-call path (one crossing):

``element(key, value, ts)``
    one element through ``map``/``flat_map``/``filter``/``process_element``
    (a running ``reduce`` for a ReduceFunction on a keyed stream);
``watermark(wm)`` / ``processing_time(now)``
    advance a clock and fire the timers due, in timestamp order;
``broadcast(value, ts)``
    one element of the broadcast side (``process_broadcast_element``);
``window(key, start, end, wm, elements)``
    a ProcessWindowFunction's ``process`` for one fired window;
``snapshot()`` / ``restore(data)``
    every state and timer, as bytes.

Each of the first four returns ``(main, side)`` or ``(main, side, fired)``:
the main outputs, the side outputs as ``(tag name, value)`` pairs, the number
of timers fired (``element`` of a process function returns None when it
emitted nothing, the common case, which saves encoding two empty lists). Go owns time: the watermark and the processing time only
move when Go says so.
"""

import hashlib
import heapq
import inspect
import itertools
import pickle
import struct

from . import _state
from ._host import ResultError
from .udf import AggregateFunction as _TableAggregateFunction

__all__ = [
    "Function", "MapFunction", "FlatMapFunction", "FilterFunction", "ReduceFunction",
    "AggregateFunction", "ProcessFunction", "KeyedProcessFunction", "ProcessWindowFunction",
    "BroadcastProcessFunction", "KeyedBroadcastProcessFunction", "KeySelector", "RuntimeContext",
    "OutputTag", "TimeDomain", "TimerService", "TimeWindow", "Operator",
]

MIN_TIME = -(1 << 63)  # Flink's Long.MIN_VALUE: no watermark yet, no timestamp


# --- the classes users subclass --------------------------------------------

class Function:
    """Base of DataStream functions: ``open(runtime_context)`` and ``close()``."""

    def open(self, runtime_context):
        pass

    def close(self):
        pass


class MapFunction(Function):
    """One element in, one out: ``map(value)``."""

    def map(self, value):
        raise NotImplementedError


class FlatMapFunction(Function):
    """One element in, any number out: ``flat_map(value)`` yields them."""

    def flat_map(self, value):
        raise NotImplementedError


class FilterFunction(Function):
    """Keep an element if ``filter(value)`` is true."""

    def filter(self, value):
        raise NotImplementedError


class ReduceFunction(Function):
    """``reduce(value1, value2)`` combines two values into one."""

    def reduce(self, value1, value2):
        raise NotImplementedError


class AggregateFunction(Function):
    """The DataStream aggregate: ``create_accumulator()``, ``add(value,
    accumulator)`` returning the accumulator, ``get_result(accumulator)``,
    ``merge(acc_a, acc_b)`` returning the merged one."""

    def create_accumulator(self):
        raise NotImplementedError

    def add(self, value, accumulator):
        raise NotImplementedError

    def get_result(self, accumulator):
        raise NotImplementedError

    def merge(self, acc_a, acc_b):
        raise NotImplementedError


class KeySelector(Function):
    def get_key(self, value):
        raise NotImplementedError


class ProcessFunction(Function):
    """``process_element(value, ctx)`` yields outputs; ``ctx.timestamp()``,
    ``ctx.timer_service()`` (timers need a keyed stream)."""

    class Context:
        pass

    def process_element(self, value, ctx):
        raise NotImplementedError


class KeyedProcessFunction(Function):
    """``process_element(value, ctx)`` and ``on_timer(timestamp, ctx)`` yield
    outputs; keyed state and timers are those of ``ctx.get_current_key()``."""

    class Context:
        pass

    class OnTimerContext:
        pass

    def process_element(self, value, ctx):
        raise NotImplementedError

    def on_timer(self, timestamp, ctx):
        pass


class ProcessWindowFunction(Function):
    """``process(key, context, elements)`` yields the outputs of one window."""

    class Context:
        pass

    def process(self, key, context, elements):
        raise NotImplementedError

    def clear(self, context):
        pass


class BroadcastProcessFunction(Function):
    """``process_element(value, ctx)`` sees broadcast state read-only;
    ``process_broadcast_element(value, ctx)`` may write it."""

    class Context:
        pass

    class ReadOnlyContext:
        pass

    def process_element(self, value, ctx):
        raise NotImplementedError

    def process_broadcast_element(self, value, ctx):
        raise NotImplementedError


class KeyedBroadcastProcessFunction(BroadcastProcessFunction):
    """A BroadcastProcessFunction on a keyed stream: keyed state, timers and
    ``on_timer(timestamp, ctx)``."""

    def on_timer(self, timestamp, ctx):
        pass


class OutputTag:
    """A side output: ``yield tag, value`` emits ``value`` to it."""

    def __init__(self, tag_id, type_info=None):
        if not isinstance(tag_id, str) or not tag_id:
            raise ValueError("an OutputTag's id is a non-empty string, not %r" % (tag_id,))
        self.tag_id = tag_id
        self.type_info = type_info

    def __eq__(self, other):
        return isinstance(other, OutputTag) and other.tag_id == self.tag_id

    def __hash__(self):
        return hash(self.tag_id)

    def __repr__(self):
        return "OutputTag(%r)" % self.tag_id


class TimeDomain:
    EVENT_TIME = 0
    PROCESSING_TIME = 1


class TimeWindow:
    """The window ``[start, end)`` in milliseconds."""

    def __init__(self, start, end):
        self.start, self.end = start, end

    def max_timestamp(self):
        return self.end - 1

    def __eq__(self, other):
        return isinstance(other, TimeWindow) and (self.start, self.end) == (other.start, other.end)

    def __hash__(self):
        return hash((self.start, self.end))

    def __repr__(self):
        return "TimeWindow(start=%d, end=%d)" % (self.start, self.end)


# --- kinds ------------------------------------------------------------------

# Class name in the MRO -> kind; real PyFlink classes match by name too.
_KINDS = (
    ("KeyedBroadcastProcessFunction", "keyed_broadcast"),
    ("BroadcastProcessFunction", "broadcast"),
    ("KeyedProcessFunction", "keyed_process"),
    ("ProcessFunction", "process"),
    ("ProcessWindowFunction", "window"),
    ("FlatMapFunction", "flat_map"),
    ("MapFunction", "map"),
    ("FilterFunction", "filter"),
    ("ReduceFunction", "reduce"),
    ("AggregateFunction", "aggregate"),
)
KEYED = {"keyed_process", "keyed_broadcast", "reduce", "window"}
_NAMES = {kind: name for name, kind in _KINDS}


def kind_of(obj):
    """The DataStream kind of a function class or instance, or None."""
    cls = obj if inspect.isclass(obj) else type(obj)
    for base in cls.__mro__:
        if base.__module__.startswith(("pyudf._datastream", "pyflink.datastream")):
            for name, kind in _KINDS:
                if base.__name__ == name:
                    return kind
    return None


def is_datastream_aggregate(obj):
    return kind_of(obj) == "aggregate"


class TableShaped(_TableAggregateFunction):
    """A DataStream AggregateFunction in the shape of a Table one, so that
    ``Module.Aggregate`` (and with it ``Windows``) drives it: the accumulator
    is a one-element list holding the DataStream accumulator, since ``add``
    returns a new one. One argument is the value; several, a tuple."""

    def __init__(self, function):
        self._f = function

    def open(self, function_context):
        self._f.open(function_context)

    def close(self):
        self._f.close()

    def create_accumulator(self):
        return [self._f.create_accumulator()]

    def accumulate(self, box, *args):
        box[0] = self._f.add(args[0] if len(args) == 1 else args, box[0])

    def merge(self, box, others):
        for other in others:
            box[0] = self._f.merge(box[0], other[0])

    def get_value(self, box):
        return self._f.get_result(box[0])


# --- runtime context, timer service, contexts -------------------------------

class RuntimeContext:
    """What ``open`` receives: the subtask, job parameters, metrics and state."""

    def __init__(self, op, metric_group, job_parameters, info):
        self._op = op
        self._metrics = metric_group
        self._job_parameters = dict(job_parameters or {})
        self._info = info

    def get_task_name(self):
        return self._info.get("task_name") or self._op.name

    def get_number_of_parallel_subtasks(self):
        return int(self._info.get("parallelism") or 1)

    def get_max_number_of_parallel_subtasks(self):
        return int(self._info.get("max_parallelism") or self.get_number_of_parallel_subtasks())

    def get_index_of_this_subtask(self):
        return int(self._info.get("subtask") or 0)

    def get_attempt_number(self):
        return int(self._info.get("attempt") or 0)

    def get_task_name_with_subtasks(self):
        return "%s (%d/%d)" % (self.get_task_name(), self.get_index_of_this_subtask() + 1,
                               self.get_number_of_parallel_subtasks())

    def get_job_parameter(self, key, default_value=None):
        return self._job_parameters.get(key, default_value)

    def get_metrics_group(self):
        return self._metrics

    get_metric_group = get_metrics_group  # the Table API's spelling, for shared helpers

    def get_state(self, state_descriptor):
        return self._op.state(state_descriptor, _state.ValueStateDescriptor)

    def get_list_state(self, state_descriptor):
        return self._op.state(state_descriptor, _state.ListStateDescriptor)

    def get_map_state(self, state_descriptor):
        return self._op.state(state_descriptor, _state.MapStateDescriptor)

    def get_reducing_state(self, state_descriptor):
        return self._op.state(state_descriptor, _state.ReducingStateDescriptor)

    def get_aggregating_state(self, state_descriptor):
        return self._op.state(state_descriptor, _state.AggregatingStateDescriptor)


class TimerService:
    """Timers of the current key; the clocks are the ones Go advances."""

    def __init__(self, op):
        self._op = op

    def current_processing_time(self):
        return self._op.now

    def current_watermark(self):
        return self._op.watermark

    def register_event_time_timer(self, timestamp):
        self._op.event_timers.add(self._op.timer_key(), int(timestamp))

    def register_processing_time_timer(self, timestamp):
        self._op.proc_timers.add(self._op.timer_key(), int(timestamp))

    def delete_event_time_timer(self, timestamp):
        self._op.event_timers.delete(self._op.timer_key(), int(timestamp))

    def delete_processing_time_timer(self, timestamp):
        self._op.proc_timers.delete(self._op.timer_key(), int(timestamp))


class _Context:
    """The ``ctx`` of process_element, on_timer, process_broadcast_element
    and a window's process: one object per operator, its fields set per call."""

    def __init__(self, op):
        self._op = op
        self._timers = TimerService(op)
        self._domain = None
        self._window = None

    def timestamp(self):
        return self._op.ts

    def timer_service(self):
        return self._timers

    def get_current_key(self):
        return self._op.current_key()

    def time_domain(self):
        return self._domain

    def current_processing_time(self):
        return self._op.now

    def current_watermark(self):
        return self._op.watermark

    def window(self):
        return self._window

    def get_broadcast_state(self, state_descriptor):
        return self._op.broadcast_state(state_descriptor)

    def apply_to_keyed_state(self, state_descriptor, applier_function):
        """Run ``applier_function(key, state)`` for every key with a value of
        that state (KeyedBroadcastProcessFunction's broadcast side)."""
        handle = self._op.state(state_descriptor, type(state_descriptor))
        saved = self._op.key
        try:
            for key in list(self._op.tables.get(state_descriptor.name, {})):
                self._op.key = key
                applier_function(key, handle)
        finally:
            self._op.key = saved

    def output(self, output_tag, value):
        self._op.emit((output_tag, value))


class _Timers:
    """Timers of one time domain: a heap of (timestamp, seq, key) and the set
    of live (key, timestamp) pairs, so each pair is registered once (Flink's
    deduplication) and a deleted timer is skipped when it surfaces."""

    def __init__(self):
        self.heap = []
        self.live = {}
        self._seq = itertools.count()

    def add(self, key, ts):
        if (key, ts) not in self.live:
            seq = next(self._seq)
            self.live[(key, ts)] = seq
            heapq.heappush(self.heap, (ts, seq, key))

    def delete(self, key, ts):
        self.live.pop((key, ts), None)

    def pop_due(self, time):
        """The next live timer at or before ``time`` as (ts, key), or None."""
        heap, live = self.heap, self.live
        while heap and heap[0][0] <= time:
            ts, seq, key = heapq.heappop(heap)
            if live.get((key, ts)) == seq:
                del live[(key, ts)]
                return ts, key
        return None

    def dump(self):
        return sorted((ts, seq, key) for (key, ts), seq in self.live.items())

    def load(self, entries):
        self.heap = [tuple(e) for e in entries]
        heapq.heapify(self.heap)
        self.live = {(key, ts): seq for ts, seq, key in self.heap}
        self._seq = itertools.count(max((e[1] for e in self.heap), default=-1) + 1)


# --- the operator ------------------------------------------------------------

_NO_KEY = _state.NO_KEY
_MAGIC = b"PYUDFDS1"
_HEADER = struct.Struct("<8sQ32s")  # magic, payload length, sha256 of the payload
_SNAPSHOT_VERSION = 1


class Operator:
    """One opened DataStream function with its state, timers and clocks."""

    def __init__(self, function, kind, name, metric_group, job_parameters, options):
        self.function = function
        self.kind = kind
        self.name = name
        self.keyed = kind in KEYED or bool(options.get("keyed"))
        self.tables = {}       # state name -> {key: value}
        self.stamps = {}       # state name -> {key: last write (TTL)}
        self.descriptors = {}  # state name -> signature
        self.handles = {}      # state name -> state object
        self.broadcast = {}    # broadcast state name -> dict
        self.broadcast_descriptors = {}
        self.event_timers = _Timers()
        self.proc_timers = _Timers()
        self.watermark = MIN_TIME
        self.now = MIN_TIME if options.get("processing_time") is None else int(options["processing_time"])
        self.key = _NO_KEY
        self.ts = None
        self.out = []
        self.side = []
        self.writable_broadcast = False
        self._what = "process_element"
        from .typeinfo import from_wire
        self.output_type = from_wire(options.get("output_type"))
        declared = options.get("side_outputs")
        self.side_declared = None if declared is None else set(declared)
        self.ctx = _Context(self)
        self.runtime_context = RuntimeContext(self, metric_group, job_parameters, options)
        f = function
        self._map = getattr(f, _METHOD.get(kind, "map"), None)
        if kind == "reduce":
            self._reduce_state = _state.ValueStateDescriptor("__reduce__")
        self._identity = "%s:%s" % (kind, type(function).__qualname__)
        self._process = function.process_element if kind in (
            "process", "keyed_process", "broadcast", "keyed_broadcast") else None

    # state ------------------------------------------------------------

    def current_key(self):
        key = self.key
        if key is _NO_KEY:
            if not self.keyed:
                raise RuntimeError("%s %s: keyed state and timers need a keyed stream (a %s has no key)"
                                   % (_NAMES.get(self.kind, self.kind), self.name, _NAMES.get(self.kind, self.kind)))
            raise RuntimeError("%s %s: no current key here: keyed state is read and written in "
                               "process_element and on_timer" % (_NAMES.get(self.kind, self.kind), self.name))
        return key

    def timer_key(self):
        if not self.keyed:
            raise RuntimeError("%s %s: timers need a keyed stream (KeyedProcessFunction)"
                               % (_NAMES.get(self.kind, self.kind), self.name))
        return self.current_key()

    def state(self, descriptor, want):
        if not isinstance(descriptor, want):
            raise TypeError("%s takes a %s, not %s" % (_GETTERS[want], want.__name__, type(descriptor).__name__))
        if not self.keyed:
            raise RuntimeError("%s %s: keyed state needs a keyed stream (open it with a key: "
                               "a KeyedProcessFunction, or Keyed in OperatorOptions)"
                               % (_NAMES.get(self.kind, self.kind), self.name))
        name, sig = descriptor.name, descriptor.signature()
        known = self.descriptors.get(name)
        if known is not None and known != sig:
            raise TypeError("state %r is already registered as %s, not %s" % (name, known, sig))
        handle = self.handles.get(name)
        if handle is None or handle._descriptor is not descriptor:
            handle = _state.KINDS[type(descriptor)](self, descriptor)
            self.handles[name] = handle
        self.descriptors[name] = sig
        return handle

    def broadcast_state(self, descriptor):
        if not isinstance(descriptor, _state.MapStateDescriptor):
            raise TypeError("broadcast state takes a MapStateDescriptor, not %s" % type(descriptor).__name__)
        sig = descriptor.signature()
        known = self.broadcast_descriptors.setdefault(descriptor.name, sig)
        if known != sig:
            raise TypeError("broadcast state %r is already registered as %s, not %s" % (descriptor.name, known, sig))
        table = self.broadcast.setdefault(descriptor.name, {})
        cls = _state.BroadcastState if self.writable_broadcast else _state.ReadOnlyBroadcastState
        return cls(descriptor.name, table)

    # output -----------------------------------------------------------

    def emit(self, item):
        if type(item) is tuple and len(item) == 2 and isinstance(item[0], OutputTag):
            tag, value = item
            if self.side_declared is not None and tag.tag_id not in self.side_declared:
                raise ResultError("side output %r is not declared (OperatorOptions.SideOutputs: %s)"
                                  % (tag.tag_id, ", ".join(sorted(self.side_declared)) or "none"))
            if tag.type_info is not None:
                reason = tag.type_info.check(value)
                if reason:
                    raise ResultError("side output %r: %s (its type)" % (tag.tag_id, reason))
            self.side.append((tag.tag_id, value))
            return
        if self.output_type is not None:
            reason = self.output_type.check(item)
            if reason:
                raise ResultError("output: %s (the declared output type)" % reason)
        self.out.append(item)

    def _collect(self, produced):
        if produced is None:
            return
        if isinstance(produced, (str, bytes)) or not hasattr(produced, "__iter__"):
            raise TypeError("%s.%s returned %s: yield the outputs (or return an iterable)"
                            % (type(self.function).__name__, self._what, type(produced).__name__))
        for item in produced:
            self.emit(item)

    def _take(self):
        out, side = self.out, self.side
        self.out, self.side = [], []
        return out, side

    # calls from Go ----------------------------------------------------

    def _enter(self, key):
        if key.__class__ in _PLAIN_KEYS:
            self.key = key
            return
        if self.keyed:
            if key is None:
                raise TypeError("%s %s is keyed: give each element a key (got None)"
                                % (_NAMES.get(self.kind, self.kind), self.name))
            try:
                hash(key)
            except TypeError:
                raise TypeError("key %r (%s) is not hashable: keys are integers, strings, bytes, "
                                "booleans or times" % (key, type(key).__name__)) from None
            self.key = key

    def element(self, key, value, ts):
        """One element: returns (main outputs, side outputs)."""
        if self.keyed:
            self._enter(key)
        self.ts = None if ts == MIN_TIME else ts
        out = self.out = []
        side = self.side = []
        kind = self.kind
        try:
            if self._process is not None:  # the process kinds: the hot path, inline
                produced = self._process(value, self.ctx)
                if produced is not None:
                    if not hasattr(produced, "__iter__") or isinstance(produced, (str, bytes)):
                        self._what = "process_element"
                        self._collect(produced)  # raises
                    emit = self.emit
                    for item in produced:
                        emit(item)
                return (out, side) if out or side else None  # None: nothing emitted
            if kind == "map":
                self.emit(self._map(value))
            elif kind == "filter":
                if self._map(value):
                    self.emit(value)
            elif kind == "flat_map":
                self._what = "flat_map"
                self._collect(self._map(value))
            elif kind == "reduce":
                state = self.state(self._reduce_state, _state.ValueStateDescriptor)
                prev = state.value()
                value = value if prev is None else self._map(prev, value)
                state.update(value)
                self.emit(value)
            else:
                raise TypeError("a %s takes no elements one by one" % _NAMES.get(kind, kind))
            return self._take()
        finally:
            self.key = _NO_KEY
            self.out, self.side = [], []

    def map1(self, value):
        """MapFunction: the result; FlatMapFunction: the list; FilterFunction:
        the bool (the element paths without a key or side outputs)."""
        kind = self.kind
        if kind == "map":
            v = self._map(value)
            if self.output_type is not None:
                reason = self.output_type.check(v)
                if reason:
                    raise ResultError("output: %s (the declared output type)" % reason)
            return v
        if kind == "filter":
            return bool(self._map(value))
        if kind == "flat_map":
            try:
                self._what = "flat_map"
                self._collect(self._map(value))
                if self.side:
                    raise ResultError("flat_map yielded side outputs: use Process to read them")
                return self.out
            finally:
                self.out, self.side = [], []
        raise TypeError("a %s is not a map, flat_map or filter function" % _NAMES.get(kind, kind))

    def map_row(self, *columns):
        """map1 over one row of a batch: one column is the value, several a tuple."""
        return self.map1(columns[0] if len(columns) == 1 else columns)

    def flat_rows(self, *columns):
        """A FlatMapFunction's outputs for one row of a batch, as rows (tuples)."""
        from .row import as_rows
        return as_rows(self.map_row(*columns))

    def broadcast_element(self, value, ts):
        if self.kind not in ("broadcast", "keyed_broadcast"):
            raise TypeError("a %s has no broadcast side" % _NAMES.get(self.kind, self.kind))
        self.ts = None if ts == MIN_TIME else ts
        self.out, self.side = [], []
        self.writable_broadcast = True
        self._what = "process_broadcast_element"
        try:
            self._collect(self.function.process_broadcast_element(value, self.ctx))
            return self._take()
        finally:
            self.writable_broadcast = False
            self.out, self.side = [], []

    def _fire(self, timers, time, domain):
        on_timer = getattr(self.function, "on_timer", None)
        self.out, self.side = [], []
        self.ctx._domain = domain
        fired = 0
        self._what = "on_timer"
        try:
            while True:
                due = timers.pop_due(time)
                if due is None:
                    break
                ts, self.key = due
                self.ts = ts
                fired += 1
                if on_timer is None:
                    continue
                kept = len(self.out), len(self.side)
                try:
                    self._collect(on_timer(ts, self.ctx))
                except Exception as exc:
                    # What fired before stays emitted; this timer is spent.
                    # Go gets both: the outputs, and the error with its timer.
                    del self.out[kept[0]:], self.side[kept[1]:]
                    from ._host import describe_exception
                    out, side = self._take()
                    return out, side, fired - 1, (ts, repr(self.key)) + describe_exception(exc)
            out, side = self._take()
            return out, side, fired
        finally:
            self.key = _NO_KEY
            self.ctx._domain = None
            self.out, self.side = [], []

    def advance_watermark(self, watermark):
        """Move event time to ``watermark`` (never back) and fire the event-time timers due."""
        if watermark > self.watermark:
            self.watermark = watermark
        return self._fire(self.event_timers, self.watermark, TimeDomain.EVENT_TIME)

    def advance_processing_time(self, now):
        """Move processing time to ``now`` (never back) and fire the processing-time timers due."""
        if now > self.now:
            self.now = now
        return self._fire(self.proc_timers, self.now, TimeDomain.PROCESSING_TIME)

    def window(self, key, start, end, watermark, elements):
        """A ProcessWindowFunction's ``process`` for the window [start, end) of ``key``."""
        if self.kind != "window":
            raise TypeError("a %s is not a ProcessWindowFunction" % _NAMES.get(self.kind, self.kind))
        self._enter(key)
        self.ctx._window = TimeWindow(start, end)
        self.ts = end - 1
        self.out, self.side = [], []
        self._what = "process"
        if watermark > self.watermark:
            self.watermark = watermark
        try:
            self._collect(self.function.process(key, self.ctx, list(elements)))
            return self._take()
        finally:
            self.key = _NO_KEY
            self.ctx._window = None
            self.out, self.side = [], []

    def size(self):
        """The number of keys with a value in some state."""
        keys = set()
        for table in self.tables.values():
            keys.update(table)
        return len(keys)

    # snapshots --------------------------------------------------------

    def _live(self, now):
        """The tables without the values whose time to live has passed at ``now``."""
        tables, stamps = {}, {}
        for name, table in self.tables.items():
            handle = self.handles.get(name)
            ttl = getattr(handle, "_ttl", None)
            if ttl is None:
                tables[name] = dict(table)
                continue
            st = self.stamps.get(name, {})
            tables[name] = {k: v for k, v in table.items() if st.get(k, now) + ttl > now}
            stamps[name] = {k: st[k] for k in tables[name] if k in st}
        return tables, stamps

    def snapshot(self):
        """Every keyed and broadcast state value and every timer, as bytes
        (a checksummed pickle); values whose time to live passed are left out."""
        tables, stamps = self._live(self.now)
        payload = pickle.dumps({
            "version": _SNAPSHOT_VERSION, "function": self._identity,
            "descriptors": dict(self.descriptors), "tables": tables, "stamps": stamps,
            "broadcast": {k: dict(v) for k, v in self.broadcast.items()},
            "broadcast_descriptors": dict(self.broadcast_descriptors),
            "event_timers": self.event_timers.dump(), "proc_timers": self.proc_timers.dump(),
            "watermark": self.watermark, "now": self.now,
        }, protocol=pickle.HIGHEST_PROTOCOL)
        return _HEADER.pack(_MAGIC, len(payload), hashlib.sha256(payload).digest()) + payload

    def restore(self, data):
        """Replace every state and timer with a snapshot's; returns the number
        of keys. A snapshot that is not one (garbage, truncated, another
        function's) is refused with ValueError and the state is kept."""
        data = bytes(data)
        if len(data) < _HEADER.size or not data.startswith(_MAGIC):
            raise ValueError("not a DataStream snapshot (%d bytes without the %r header)" % (len(data), _MAGIC.decode()))
        _, length, digest = _HEADER.unpack_from(data)
        payload = data[_HEADER.size:]
        if len(payload) != length:
            raise ValueError("truncated DataStream snapshot: %d of %d bytes" % (len(payload), length))
        if hashlib.sha256(payload).digest() != digest:
            raise ValueError("corrupt DataStream snapshot: checksum mismatch")
        try:
            snap = pickle.loads(payload)
        except Exception as exc:
            raise ValueError("unreadable DataStream snapshot: %s: %s" % (type(exc).__name__, exc)) from None
        if not isinstance(snap, dict) or snap.get("version") != _SNAPSHOT_VERSION:
            raise ValueError("DataStream snapshot of another version")
        if snap["function"] != self._identity:
            raise ValueError("snapshot of %s, not of %s" % (snap["function"], self._identity))
        for name, sig in snap["descriptors"].items():
            known = self.descriptors.get(name)
            if known is not None and known != sig:
                raise ValueError("snapshot's state %r is %s; this function registers it as %s" % (name, sig, known))
        now = max(self.now, snap["now"])
        # Everything checked: replace, dropping what expired by now.
        self.descriptors.update(snap["descriptors"])
        self.tables, self.stamps = snap["tables"], snap["stamps"]
        self.now = now
        self.tables, self.stamps = self._live(now)
        for handle in self.handles.values():  # the state objects made in open read the new tables
            handle._table = self.tables.setdefault(handle._name, {})
            if handle._ttl is not None:
                handle._stamps = self.stamps.setdefault(handle._name, {})
        self.broadcast = snap["broadcast"]
        self.broadcast_descriptors = snap["broadcast_descriptors"]
        self.event_timers.load(snap["event_timers"])
        self.proc_timers.load(snap["proc_timers"])
        self.watermark = max(self.watermark, snap["watermark"])
        return self.size()


_PLAIN_KEYS = {int, str, bytes}  # hashable for sure: no check
_METHOD = {"map": "map", "flat_map": "flat_map", "filter": "filter", "reduce": "reduce"}
_GETTERS = {
    _state.ValueStateDescriptor: "get_state", _state.ListStateDescriptor: "get_list_state",
    _state.MapStateDescriptor: "get_map_state", _state.ReducingStateDescriptor: "get_reducing_state",
    _state.AggregatingStateDescriptor: "get_aggregating_state",
}

#: The operator's methods Go calls, by the name Go knows them.
METHODS = {
    "element": "element", "map": "map1", "map_row": "map_row", "flat_rows": "flat_rows", "filter_row": "map_row", "broadcast": "broadcast_element",
    "watermark": "advance_watermark", "processing_time": "advance_processing_time",
    "window": "window", "snapshot": "snapshot", "restore": "restore", "size": "size",
}


def has_life_cycle(function):
    """Whether the function's class defines its own open or close."""
    for name in ("open", "close"):
        for cls in type(function).__mro__:
            if name in vars(cls):
                if cls.__name__ != "Function":
                    return True
                break
    return False


def open_operator(obj, name, metric_group, job_parameters, options):
    """Instantiate (if a class), open and wrap ``obj``; returns the Operator."""
    kind = kind_of(obj)
    if kind is None:
        raise TypeError("%s is not a DataStream function (MapFunction, FlatMapFunction, FilterFunction, "
                        "ReduceFunction, ProcessFunction, KeyedProcessFunction, ProcessWindowFunction, "
                        "BroadcastProcessFunction, KeyedBroadcastProcessFunction): open it with "
                        "Module.Function or Module.Aggregate" % name)
    if kind == "aggregate":
        raise TypeError("%s is a DataStream AggregateFunction: open it with Module.Aggregate "
                        "(and window it with NewWindows)" % name)
    function = obj() if inspect.isclass(obj) else obj
    op = Operator(function, kind, name, metric_group, job_parameters, options)
    function.open(op.runtime_context)
    return op
