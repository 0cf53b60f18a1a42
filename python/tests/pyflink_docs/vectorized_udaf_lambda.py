# Mirrors: Flink docs, dev/python/table/udfs/vectorized_python_udfs.md, "Vectorized Aggregate Functions", the lambda form.
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udaf

peak_gap = udaf(lambda hi, lo: hi.max() - lo.min(), result_type=DataTypes.BIGINT(), func_type="pandas")
