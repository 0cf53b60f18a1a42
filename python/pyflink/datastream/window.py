"""``pyflink.datastream.window``: ``TimeWindow``, backed by :mod:`pyudf._datastream`."""

from pyudf._datastream import TimeWindow

__all__ = ["TimeWindow"]
