# Mirrors: Flink docs, dev/python/table/udfs/vectorized_python_udfs.md, "Vectorized Aggregate Functions", the decorated-function form.
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udaf


@udaf(result_type=DataTypes.BIGINT(), func_type="pandas")
def peak_gap(hi, lo):
    return hi.max() - lo.min()
