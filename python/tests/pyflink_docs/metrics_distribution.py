# Mirrors: Flink docs, dev/python/table/metrics.md, "Distribution" (a distribution registered in open(), update(n) in eval).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf


class SizeStats(ScalarFunction):

    def __init__(self):
        self.sizes = None

    def open(self, function_context):
        self.sizes = function_context.get_metric_group().distribution("sizes")

    def eval(self, n):
        self.sizes.update(n)
        return n * n


size_stats = udf(SizeStats(), result_type=DataTypes.BIGINT())
