"""``pyflink.table.udf``: the UDF API, backed by :mod:`pyudf.udf`."""

from pyudf.udf import (AggregateFunction, FunctionContext, ScalarFunction, TableFunction,
                       UserDefinedFunction, udaf, udf, udtf)

__all__ = ["AggregateFunction", "FunctionContext", "ScalarFunction", "TableFunction",
           "UserDefinedFunction", "udaf", "udf", "udtf"]
