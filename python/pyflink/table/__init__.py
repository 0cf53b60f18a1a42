"""``pyflink.table`` names that UDF code uses: ``DataTypes`` and ``Row``."""

from pyflink.common import Row, RowKind
from pyudf.types import DataTypes

__all__ = ["DataTypes", "Row", "RowKind"]
