# Mirrors: apache-flink's shipped example pyflink/examples/table/process_json_data_with_udf.py (a STRING udf that loads, edits and dumps a JSON column).
# pyudf's own code and data; cases.json holds the rows and expected results.
import json

from pyflink.table import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.STRING())
def bump_firmware(doc):
    record = json.loads(doc)
    record['fw'] += 1
    return json.dumps(record)
