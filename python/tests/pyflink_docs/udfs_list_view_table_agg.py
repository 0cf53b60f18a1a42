# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Table Aggregate Functions", ListView in a TableAggregateFunction accumulator, emit_value yielding Rows.
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.common import Row
from pyflink.table import ListView
from pyflink.table.types import DataTypes
from pyflink.table.udf import TableAggregateFunction, udtaf


class TagTrail(TableAggregateFunction):
    """Emits the tags joined in arrival order, then in reverse order."""

    def create_accumulator(self):
        return Row(ListView(), '')

    def accumulate(self, acc, tag, separator):
        acc[0].add(tag)
        acc[1] = separator

    def emit_value(self, acc):
        seen = list(acc[0])
        yield Row(acc[1].join(seen))
        yield Row(acc[1].join(reversed(seen)))

    def get_accumulator_type(self):
        return DataTypes.ROW([
            DataTypes.FIELD("tags", DataTypes.LIST_VIEW(DataTypes.STRING())),
            DataTypes.FIELD("separator", DataTypes.STRING())])

    def get_result_type(self):
        return DataTypes.ROW([DataTypes.FIELD("trail", DataTypes.STRING())])


tag_trail = udtaf(TagTrail())
