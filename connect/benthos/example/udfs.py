"""UDFs for example/pipeline.yaml."""
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf


class Greet(ScalarFunction):
    """Greets a name with the job parameter 'greeting'; an empty name raises."""

    def open(self, function_context):
        self.greeting = function_context.get_job_parameter("greeting", "Hi")

    def eval(self, name):
        if not name:
            raise ValueError("empty name")
        return f"{self.greeting}, {name.capitalize()}!"


greet = udf(Greet(), input_types=[DataTypes.STRING()], result_type=DataTypes.STRING())
