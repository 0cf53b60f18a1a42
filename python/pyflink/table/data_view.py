"""``pyflink.table.data_view``: PyFlink's accumulator data views, backed by :mod:`pyudf.data_view`."""

from pyudf.data_view import DataView, ListView, MapView

__all__ = ["DataView", "ListView", "MapView"]
