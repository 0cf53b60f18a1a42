# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Scalar Functions", the ScalarFunction-subclass form of udf().
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf


class Clamp(ScalarFunction):
    def eval(self, value, limit):
        return min(value, limit)


clamp = udf(Clamp(), result_type=DataTypes.BIGINT())
