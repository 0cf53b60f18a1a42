# Mirrors: apache-flink's shipped example pyflink/examples/table/word_count.py (a udtf over the input Row, indexed by position, yielding one STRING per token, used with flat_map).
# pyudf's own code and data; cases.json holds the rows and expected results.
import re

from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import udtf


@udtf(result_types=[DataTypes.STRING()])
def lowercase_words(line: Row):
    for token in re.findall(r"[a-z']+", line[0].lower()):
        yield token
