"""``pyflink.common.typeinfo``: ``Types``, backed by :mod:`pyudf.typeinfo`."""

from pyudf.typeinfo import TypeInformation, Types

__all__ = ["TypeInformation", "Types"]
