"""``pyflink.datastream.output_tag``: ``OutputTag``, backed by :mod:`pyudf._datastream`."""

from pyudf._datastream import OutputTag

__all__ = ["OutputTag"]
