"""``pyflink.table`` names that UDF code uses: the data types, ``Row``, the
function base classes and the accumulator data views, as PyFlink exports them."""

from pyflink.common import Row, RowKind
from pyudf.data_view import DataView, ListView, MapView
from pyudf.types import DataTypes
from pyudf.udf import (AggregateFunction, FunctionContext, ScalarFunction, TableAggregateFunction,
                       TableFunction)

__all__ = ["AggregateFunction", "DataTypes", "DataView", "FunctionContext", "ListView",
           "MapView", "Row", "RowKind", "ScalarFunction", "TableAggregateFunction", "TableFunction"]
