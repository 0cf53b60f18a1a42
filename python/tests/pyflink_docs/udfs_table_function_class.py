# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Table Functions" (a TableFunction subclass yielding tuples, registered with udtf()).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import TableFunction, udtf


class Letters(TableFunction):
    """One row per character of a word: the character and its position."""

    def eval(self, word):
        for pos, ch in enumerate(word):
            yield ch, pos


letters = udtf(Letters(), result_types=[DataTypes.STRING(), DataTypes.INT()])
