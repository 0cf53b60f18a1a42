# Mirrors: Flink docs, dev/python/table/metrics.md, "Meter" (super().open, a meter with time_span_in_seconds, mark_event(n) in eval).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf


class EventRate(ScalarFunction):

    def __init__(self):
        self.events = None

    def open(self, function_context):
        super().open(function_context)
        self.events = function_context.get_metric_group().meter("events", time_span_in_seconds=30)

    def eval(self, n):
        self.events.mark_event(n)
        return -n


event_rate = udf(EventRate(), result_type=DataTypes.BIGINT())
