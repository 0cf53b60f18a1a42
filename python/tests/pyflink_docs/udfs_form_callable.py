# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Scalar Functions", the callable-object form of udf().
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udf


class DigitJoin(object):
    """Joins a tens digit and a ones digit into one number."""

    def __call__(self, tens, ones):
        return tens * 10 + ones


digit_join = udf(DigitJoin(), result_type=DataTypes.BIGINT())
