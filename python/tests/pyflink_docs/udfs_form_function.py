# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Scalar Functions", the decorated-function form of udf().
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.BIGINT())
def area(width, height):
    return width * height
