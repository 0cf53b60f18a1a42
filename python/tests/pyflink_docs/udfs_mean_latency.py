# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Aggregate Functions" (AggregateFunction with a Row accumulator updated by item assignment, retract, type methods, udaf()).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.common import Row
from pyflink.table import AggregateFunction, DataTypes
from pyflink.table.udf import udaf


class MeanLatency(AggregateFunction):
    """Mean latency in ms over requests reported in (latency_ms, count) batches."""

    def create_accumulator(self):
        # Row(total latency, request count)
        return Row(0, 0)

    def accumulate(self, acc, latency_ms, count):
        acc[0] += latency_ms * count
        acc[1] += count

    def retract(self, acc, latency_ms, count):
        acc[0] -= latency_ms * count
        acc[1] -= count

    def get_value(self, acc):
        if acc[1] == 0:
            return None
        # a float, declared BIGINT below: PyFlink's BIGINT coder keeps the integer part
        return acc[0] / acc[1]

    def get_result_type(self):
        return DataTypes.BIGINT()

    def get_accumulator_type(self):
        return DataTypes.ROW([
            DataTypes.FIELD("total_ms", DataTypes.BIGINT()),
            DataTypes.FIELD("requests", DataTypes.BIGINT())])


mean_latency = udaf(MeanLatency())
