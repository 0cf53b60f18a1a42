"""User metrics, with PyFlink's ``MetricGroup`` API.

A UDF gets its group from ``function_context.get_metric_group()`` and
registers counters, gauges, meters and distributions on it, optionally in
nested groups (``add_group("region", "eu")``).  Updating a metric is plain
Python arithmetic; the host reads every metric of an engine at once with
:meth:`MetricRegistry.snapshot` (Go: ``Engine.Metrics`` and the Prometheus
collector).

Metrics are scoped per function, as PyFlink's metric groups are per
operator: each function's group carries the function's name, so two UDFs
that both register a counter ``calls`` get two counters (Go reads the name
as ``Metric.Function``, Prometheus as the ``function`` label).
"""

import threading
import time

__all__ = ["MetricGroup", "Counter", "Meter", "Distribution", "MetricRegistry"]


class Counter:
    """A count that goes up (``inc``) and down (``dec``)."""

    kind = "counter"

    def __init__(self):
        self._count = 0

    def inc(self, n=1):
        self._count += n

    def dec(self, n=1):
        self._count -= n

    def get_count(self):
        return self._count

    def _values(self):
        return {"value": self._count}


class Gauge:
    """A value read from a callable each time metrics are collected."""

    kind = "gauge"

    def __init__(self, obj):
        if not callable(obj):
            raise TypeError("gauge needs a callable returning a number")
        self._obj = obj

    def _values(self):
        return {"value": float(self._obj())}


class Meter:
    """Events per second over the last ``time_span_in_seconds`` seconds."""

    kind = "meter"

    def __init__(self, time_span_in_seconds=60):
        self._span = max(1, int(time_span_in_seconds))
        self._count = 0
        self._buckets = {}  # whole second -> events in that second

    def mark_event(self, value=1):
        self._count += value
        now = int(time.monotonic())
        self._buckets[now] = self._buckets.get(now, 0) + value
        if len(self._buckets) > 2 * self._span:
            self._prune(now)

    def _prune(self, now):
        for second in [s for s in self._buckets if s <= now - self._span]:
            del self._buckets[second]

    def get_count(self):
        return self._count

    def get_rate(self):
        now = int(time.monotonic())
        self._prune(now)
        return sum(self._buckets.values()) / self._span

    def _values(self):
        return {"count": self._count, "rate": self.get_rate()}


class Distribution:
    """Count, sum, min and max of the values passed to ``update``."""

    kind = "distribution"

    def __init__(self):
        self._count = 0
        self._sum = 0
        self._min = None
        self._max = None

    def update(self, value):
        self._count += 1
        self._sum += value
        self._min = value if self._min is None else min(self._min, value)
        self._max = value if self._max is None else max(self._max, value)

    def _values(self):
        return {"count": self._count, "sum": float(self._sum),
                "min": float(self._min or 0), "max": float(self._max or 0)}


class MetricRegistry:
    """All metrics of one engine, keyed by function, group path and name."""

    def __init__(self):
        self._lock = threading.Lock()
        self._metrics = {}  # (function, group tuple, name) -> metric

    def register(self, groups, name, metric, function=""):
        """Register ``metric`` for ``function``; the same function, path and
        name returns the one already there."""
        if not isinstance(name, str) or not name:
            raise ValueError("metric name must be a non-empty string")
        key = (function, tuple(groups), name)
        with self._lock:
            existing = self._metrics.get(key)
            if existing is not None:
                if existing.kind != metric.kind:
                    raise ValueError("metric %r is already a %s" % (name, existing.kind))
                return existing
            self._metrics[key] = metric
            return metric

    def snapshot(self):
        """Every metric as a dict: function, groups, name, kind and its values."""
        with self._lock:
            items = list(self._metrics.items())
        out = []
        for (function, groups, name), metric in items:
            entry = {"function": function, "groups": [list(g) for g in groups], "name": name,
                     "kind": metric.kind}
            entry.update(metric._values())
            out.append(entry)
        return out


class MetricGroup:
    """A scope for metrics of one function (``function``: its name);
    ``add_group`` nests, the other methods register."""

    def __init__(self, registry, groups=(), function=""):
        self._registry = registry
        self._groups = tuple(groups)
        self._function = function

    def add_group(self, name, extra=None):
        """A child group: ``add_group("a")`` or the key/value form ``add_group("k", "v")``."""
        return MetricGroup(self._registry, self._groups + ((name, extra),), self._function)

    def _register(self, name, metric):
        return self._registry.register(self._groups, name, metric, self._function)

    def counter(self, name):
        """The counter ``name`` of this group (registered on first use)."""
        return self._register(name, Counter())

    def gauge(self, name, obj):
        """A gauge reading ``obj()`` whenever metrics are collected."""
        return self._register(name, Gauge(obj))

    def meter(self, name, time_span_in_seconds=60):
        """The meter ``name``: events per second over ``time_span_in_seconds``."""
        return self._register(name, Meter(time_span_in_seconds))

    def distribution(self, name):
        """The distribution ``name``: count, sum, min and max of its updates."""
        return self._register(name, Distribution())
