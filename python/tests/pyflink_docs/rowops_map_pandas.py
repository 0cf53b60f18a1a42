# Mirrors: Flink docs, dev/python/table/operations/row_based_operations.md, "Map" with a Pandas udf (DataFrame in, DataFrame out, func_type='pandas').
# pyudf's own code and data; cases.json holds the rows and expected results.
import pandas as pd

from pyflink.table.types import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.ROW([DataTypes.FIELD("id", DataTypes.BIGINT()),
                                DataTypes.FIELD("word", DataTypes.STRING())]),
     func_type='pandas')
def widen(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame.id * 2, frame.word.str.upper()], axis=1)
