"""``pyflink.datastream.timerservice``: ``TimerService``, backed by :mod:`pyudf._datastream`."""

from pyudf._datastream import TimerService

__all__ = ["TimerService"]
