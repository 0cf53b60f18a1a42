# Mirrors: Flink docs, dev/python/table/metrics.md, "Gauge" (a gauge registered in open() with a callable reading the function's state).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf


class LastValue(ScalarFunction):

    def __init__(self):
        self.last = 0

    def open(self, function_context):
        function_context.get_metric_group().gauge("last_value", lambda: self.last)

    def eval(self, n):
        self.last = n
        return n + 100


last_value = udf(LastValue(), result_type=DataTypes.BIGINT())
