"""pyudf: the Python side of the pyudf engine.

User code imports from here (or, unchanged, from ``pyflink.table`` when the
real PyFlink is not installed): ``udf``, ``ScalarFunction``,
``FunctionContext``, ``DataTypes``, ``Row``, the aggregate, table aggregate,
table and asynchronous scalar function types and the accumulator data views
``ListView`` and ``MapView``.
The Go engine embeds this package; no pip step is needed.
"""

from .data_view import DataView, ListView, MapView
from .row import Row, RowKind
from .types import DataTypes, DataType
from .udf import (AggregateFunction, AsyncScalarFunction, FunctionContext, ScalarFunction,
                  TableAggregateFunction, TableFunction, UserDefinedFunction, udaf, udf, udtaf,
                  udtf)

__all__ = [
    "AggregateFunction", "AsyncScalarFunction", "DataType", "DataTypes", "DataView",
    "FunctionContext", "ListView", "MapView", "Row", "RowKind", "ScalarFunction",
    "TableAggregateFunction", "TableFunction", "UserDefinedFunction", "udaf", "udf", "udtaf",
    "udtf",
]
