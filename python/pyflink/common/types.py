"""``pyflink.common.types``: ``Row`` and ``RowKind``, backed by :mod:`pyudf.row`."""

from pyudf.row import Row, RowKind, _create_row  # noqa: F401

__all__ = ["Row", "RowKind"]
