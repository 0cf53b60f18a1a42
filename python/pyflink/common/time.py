"""``pyflink.common.time``: ``Time`` and ``Duration``, backed by :mod:`pyudf.timeutil`."""

from pyudf.timeutil import Duration, Time

__all__ = ["Duration", "Time"]
