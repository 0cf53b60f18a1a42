# Mirrors: Flink docs, dev/python/table/operations/row_based_operations.md, "Aggregate" (AggregateFunction over the input Row, Row accumulator with item assignment, retract/merge, udaf() given result_type, accumulator_type and name).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, udaf


class SumAndSquares(AggregateFunction):
    """Sum and sum of squares of the second field of each input row."""

    def create_accumulator(self):
        return Row(0, 0)

    def accumulate(self, acc, *args):
        v = args[0][1]
        acc[0] += v
        acc[1] += v * v

    def retract(self, acc, *args):
        v = args[0][1]
        acc[0] -= v
        acc[1] -= v * v

    def merge(self, acc, accumulators):
        for other in accumulators:
            acc[0] += other[0]
            acc[1] += other[1]

    def get_value(self, acc):
        return Row(acc[0], acc[1])

    def get_accumulator_type(self):
        return DataTypes.ROW([DataTypes.FIELD("total", DataTypes.BIGINT()),
                              DataTypes.FIELD("squares", DataTypes.BIGINT())])

    def get_result_type(self):
        return DataTypes.ROW([DataTypes.FIELD("total", DataTypes.BIGINT()),
                              DataTypes.FIELD("squares", DataTypes.BIGINT())])


summary = SumAndSquares()
sum_squares = udaf(summary,
                   result_type=summary.get_result_type(),
                   accumulator_type=summary.get_accumulator_type(),
                   name=type(summary).__name__)
