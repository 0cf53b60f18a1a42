# Mirrors: Flink docs, dev/python/table/metrics.md, "Counter" (a metric group counter registered in open(), inc(n) in eval).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf


class CallTally(ScalarFunction):

    def __init__(self):
        self.seen = None

    def open(self, function_context):
        self.seen = function_context.get_metric_group().counter("values_seen")

    def eval(self, n):
        self.seen.inc(n)
        return n * 2


tally = udf(CallTally(), result_type=DataTypes.BIGINT())
