"""``pyflink.table`` names that UDF code uses: ``DataTypes`` and ``Row``."""

from pyudf.row import Row, RowKind
from pyudf.types import DataTypes

__all__ = ["DataTypes", "Row", "RowKind"]
