# Mirrors: Flink docs, dev/python/table/operations/row_based_operations.md, "Aggregate" with a Pandas UDAF (a lambda over the group's DataFrame returning a tuple for a ROW result).
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udaf

score_summary = udaf(lambda frame: (frame.score.median(), frame.score.min()),
                     result_type=DataTypes.ROW([DataTypes.FIELD("mid", DataTypes.FLOAT()),
                                                DataTypes.FIELD("low", DataTypes.INT())]),
                     func_type="pandas")
