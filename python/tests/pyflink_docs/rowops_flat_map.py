# Mirrors: Flink docs, dev/python/table/operations/row_based_operations.md, "FlatMap" (a udtf taking the input Row and yielding several tuples per row).
# pyudf's own code and data; cases.json holds the rows and expected results.
import re

from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import udtf


@udtf(result_types=[DataTypes.INT(), DataTypes.STRING()])
def explode_tags(x: Row) -> Row:
    for m in re.finditer(r"[^;]+", x[1]):
        yield x[0], m.group().strip()
