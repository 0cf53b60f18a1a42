# Mirrors: Flink docs, dev/python/table/udfs/vectorized_python_udfs.md, "Vectorized Aggregate Functions", the callable-object form.
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udaf


class PeakGap(object):
    def __call__(self, hi, lo):
        return hi.max() - lo.min()


peak_gap = udaf(PeakGap(), result_type=DataTypes.BIGINT(), func_type="pandas")
