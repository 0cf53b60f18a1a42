# Mirrors: apache-flink's shipped example pyflink/examples/table/basic_operations.py, its sql_operations part (a udtf yielding a 3-column tuple from a JSON column, used with LATERAL TABLE).
# pyudf's own code and data; cases.json holds the rows and expected results.
import json

from pyflink.table import DataTypes
from pyflink.table.udf import udtf


@udtf(result_types=[DataTypes.STRING(), DataTypes.INT(), DataTypes.STRING()])
def unpack_device(doc: str):
    record = json.loads(doc)
    yield record['device'], record['fw'], record['site']['region']
