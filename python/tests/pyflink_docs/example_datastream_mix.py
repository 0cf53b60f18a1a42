# Mirrors: apache-flink's shipped example pyflink/examples/table/mixing_use_of_datastream_and_table.py (a decorated BIGINT udf over a STRING column).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.BIGINT())
def vowel_count(text):
    return sum(1 for ch in text.lower() if ch in "aeiou")
