# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "ListView and MapView" (an AggregateFunction whose Row accumulator holds a ListView, declared with DataTypes.LIST_VIEW).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.common import Row
from pyflink.table import DataTypes, ListView
from pyflink.table.udf import AggregateFunction, udaf


class JoinTags(AggregateFunction):
    """Lower-cases the tags it sees and joins them with the last separator given."""

    def create_accumulator(self):
        return Row(ListView(), '')

    def accumulate(self, acc, tag, separator):
        acc[0].add(tag.lower())
        acc[1] = separator

    def get_value(self, acc):
        return acc[1].join(acc[0])

    def get_accumulator_type(self):
        return DataTypes.ROW([
            DataTypes.FIELD("tags", DataTypes.LIST_VIEW(DataTypes.STRING())),
            DataTypes.FIELD("separator", DataTypes.STRING())])

    def get_result_type(self):
        return DataTypes.STRING()


join_tags = udaf(JoinTags())
