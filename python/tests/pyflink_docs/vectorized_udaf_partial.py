# Mirrors: Flink docs, dev/python/table/udfs/vectorized_python_udfs.md, "Vectorized Aggregate Functions", the functools.partial form.
# pyudf's own code and data; cases.json holds the rows and expected results.
import functools

from pyflink.table import DataTypes
from pyflink.table.udf import udaf


def shifted_peak_gap(hi, lo, shift):
    return hi.max() - lo.min() + shift


peak_gap = udaf(functools.partial(shifted_peak_gap, shift=100), result_type=DataTypes.BIGINT(), func_type="pandas")
