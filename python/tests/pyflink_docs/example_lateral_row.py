# Mirrors: apache-flink's shipped example pyflink/examples/table/basic_operations.py, its join_lateral part (a udtf taking the whole input Row and reading a field by name).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import udtf


@udtf(result_types=[DataTypes.STRING()])
def initials(r: Row):
    for ch in r.owner:
        if ch.isupper():
            yield ch
