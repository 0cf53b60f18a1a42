# Mirrors: Flink docs, dev/python/table/operations/row_based_operations.md, "Map" (a udf taking the whole input Row, indexed by position, returning a Row).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.common import Row
from pyflink.table.types import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.ROW([DataTypes.FIELD("id", DataTypes.BIGINT()),
                                DataTypes.FIELD("word", DataTypes.STRING())]))
def exclaim(data: Row) -> Row:
    return Row(data[0] + 1, data[1] + "!")
