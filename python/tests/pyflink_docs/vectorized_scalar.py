# Mirrors: Flink docs, dev/python/table/udfs/vectorized_python_udfs.md, "Vectorized Scalar Functions" (@udf(..., func_type="pandas") over pandas.Series).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.BIGINT(), func_type="pandas")
def spread(high, low):
    return high - low
