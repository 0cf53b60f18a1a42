"""UDFs with a life cycle, slow ones, and one whose signature cannot be read."""
import sys

from pyudf import udf, ScalarFunction


@udf(input_types=['BIGINT'], result_type='BIGINT')
def spin(n):
    print("spinning", flush=True)
    while True:
        n += 1


class Greeter(ScalarFunction):
    def open(self, function_context):
        self.greeting = function_context.get_job_parameter("greeting", "hello")

    def eval(self, s: str) -> str:
        return self.greeting + ", " + s


class Broken(ScalarFunction):
    def open(self, function_context):
        raise RuntimeError("no model file")

    def eval(self, s: str) -> str:
        return s


class NeedsArgs(ScalarFunction):
    def __init__(self, k):
        self.k = k

    def eval(self, x):
        return x
