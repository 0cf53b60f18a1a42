# Mirrors: Flink docs, dev/python/table/udfs/vectorized_python_udfs.md, "Vectorized Aggregate Functions" (@udaf(..., func_type="pandas") returning one scalar per group).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udaf


@udaf(result_type=DataTypes.FLOAT(), func_type="pandas")
def median_of(v):
    return v.median()
