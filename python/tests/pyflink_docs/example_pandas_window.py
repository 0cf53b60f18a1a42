# Mirrors: apache-flink's shipped example pyflink/examples/table/pandas/pandas_udaf.py (a FLOAT Pandas UDAF applied per tumbling window and key).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udaf


@udaf(result_type=DataTypes.FLOAT(), func_type="pandas")
def mid_range(v):
    return (v.max() + v.min()) / 2
