# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Table Aggregate Functions", and row_based_operations.md, "FlatAggregate" (a list accumulator, emit_value yielding one Row per value, udtaf()).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import TableAggregateFunction, udtaf


class MinMax(TableAggregateFunction):
    """Emits the smallest and then the largest reading of a group."""

    def create_accumulator(self):
        return [None, None]  # [min, max]

    def accumulate(self, acc, row):
        reading = row[0]
        if reading is None:
            return
        if acc[0] is None or reading < acc[0]:
            acc[0] = reading
        if acc[1] is None or reading > acc[1]:
            acc[1] = reading

    def emit_value(self, acc):
        yield Row(acc[0])
        yield Row(acc[1])

    def get_accumulator_type(self):
        return DataTypes.ARRAY(DataTypes.BIGINT())

    def get_result_type(self):
        return DataTypes.ROW([DataTypes.FIELD("reading", DataTypes.BIGINT())])


min_max = udtaf(MinMax())
