"""PyFlink's ``Time`` and ``Duration`` (``pyflink.common``): spans of time in
milliseconds, for state time-to-live and windows."""

__all__ = ["Time", "Duration"]


class Time:
    """A span of time (``Time.minutes(10)``), as PyFlink's ``pyflink.common.time.Time``."""

    def __init__(self, milliseconds):
        self._ms = int(milliseconds)

    def to_milliseconds(self):
        return self._ms

    @staticmethod
    def milliseconds(n):
        return Time(n)

    @staticmethod
    def seconds(n):
        return Time(n * 1000)

    @staticmethod
    def minutes(n):
        return Time(n * 60_000)

    @staticmethod
    def hours(n):
        return Time(n * 3_600_000)

    @staticmethod
    def days(n):
        return Time(n * 86_400_000)

    def __eq__(self, other):
        return isinstance(other, (Time, Duration)) and self._ms == other.to_milliseconds()

    def __hash__(self):
        return hash(self._ms)

    def __repr__(self):
        return "Time(%d ms)" % self._ms


class Duration(Time):
    """A span of time (``Duration.of_minutes(5)``), as PyFlink's ``pyflink.common.time.Duration``."""

    @staticmethod
    def of_millis(n):
        return Duration(n)

    @staticmethod
    def of_seconds(n):
        return Duration(n * 1000)

    @staticmethod
    def of_minutes(n):
        return Duration(n * 60_000)

    @staticmethod
    def of_hours(n):
        return Duration(n * 3_600_000)

    @staticmethod
    def of_days(n):
        return Duration(n * 86_400_000)

    def __repr__(self):
        return "Duration(%d ms)" % self._ms
