# Mirrors: Flink docs, dev/python/table/udfs/overview.md, "Accessing job parameters" (ScalarFunction.open reading FunctionContext.get_job_parameter with a default; an annotated eval).
# pyudf's own code and data; cases.json holds the rows, the job parameter and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf


class Rescale(ScalarFunction):

    def open(self, function_context: FunctionContext):
        # the job may set "rescale_factor"; 10 when it does not
        self.factor = int(function_context.get_job_parameter("rescale_factor", "10"))

    # the annotation says str; the job passes a BIGINT column, which PyFlink accepts
    def eval(self, reading: str):
        return int(reading) * self.factor


rescale = udf(Rescale(), result_type=DataTypes.INT())
