# Mirrors: Flink docs, dev/python/table/udfs/overview.md, "Testing User-Defined Functions" (calling the wrapped function through ._func).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udf

triple = udf(lambda x: x * 3, result_type=DataTypes.BIGINT())

plain = triple._func
assert plain(5) == 15
