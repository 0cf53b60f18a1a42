# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Scalar Functions", the functools.partial form of udf().
# pyudf's own code and data; cases.json holds the rows and expected results.
import functools

from pyflink.table import DataTypes
from pyflink.table.udf import udf


def biased_score(a, b, bias):
    return 2 * a + b + bias


biased = udf(functools.partial(biased_score, bias=100), result_type=DataTypes.BIGINT())
