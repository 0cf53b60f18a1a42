# Mirrors: Flink docs, dev/python/table/operations/row_based_operations.md, "Map" (a udf with a ROW result type returning a Row built from column arguments).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.common import Row
from pyflink.table.types import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.ROW([DataTypes.FIELD("id", DataTypes.BIGINT()),
                                DataTypes.FIELD("label", DataTypes.STRING())]))
def tag_row(id: int, label: str) -> Row:
    return Row(id * 10, label.upper())
