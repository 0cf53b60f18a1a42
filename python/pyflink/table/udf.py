"""``pyflink.table.udf``: the UDF API, backed by :mod:`pyudf.udf`."""

from pyudf.udf import (AggregateFunction, AsyncScalarFunction, FunctionContext,
                       ImperativeAggregateFunction, ScalarFunction, TableAggregateFunction,
                       TableFunction, UserDefinedFunction, udaf, udf, udtaf, udtf)

__all__ = ["AggregateFunction", "AsyncScalarFunction", "FunctionContext",
           "ImperativeAggregateFunction", "ScalarFunction", "TableAggregateFunction",
           "TableFunction", "UserDefinedFunction", "udaf", "udf", "udtaf", "udtf"]
