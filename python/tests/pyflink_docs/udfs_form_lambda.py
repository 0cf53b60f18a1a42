# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Scalar Functions", the lambda form of udf().
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udf

gap = udf(lambda a, b: abs(a - b), result_type=DataTypes.BIGINT())
