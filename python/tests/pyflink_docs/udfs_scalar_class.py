# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Scalar Functions" (a ScalarFunction subclass holding state set in __init__).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf


class BucketOf(ScalarFunction):
    """Places an id in one of a fixed number of buckets."""

    def __init__(self):
        self.buckets = 8

    def eval(self, n):
        return n % self.buckets


bucket_of = udf(BucketOf(), result_type=DataTypes.BIGINT())
