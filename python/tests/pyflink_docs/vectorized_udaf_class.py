# Mirrors: Flink docs, dev/python/table/udfs/vectorized_python_udfs.md, "Vectorized Aggregate Functions", the AggregateFunction-subclass form (open with a metric group, accumulate over Series, get_value).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, udaf


class PeakGap(AggregateFunction):
    """Largest value of hi minus smallest value of lo."""

    def open(self, function_context):
        group = function_context.get_metric_group().add_group("udaf", "peak_gap")
        self.evaluations = group.counter("evaluations")

    def create_accumulator(self):
        return [None, None]  # [max of hi, min of lo]

    def accumulate(self, acc, hi, lo):
        acc[0] = hi.max() if acc[0] is None else max(acc[0], hi.max())
        acc[1] = lo.min() if acc[1] is None else min(acc[1], lo.min())

    def get_value(self, acc):
        self.evaluations.inc()
        return acc[0] - acc[1]


peak_gap = udaf(PeakGap(), result_type=DataTypes.BIGINT(), func_type="pandas")
