"""The ``functions`` control request: a module's functions as the engine sees them."""

import json

from pyudf import _host

SOURCE = '''
import functools, json
from pyudf import (udf, udaf, udtf, udtaf, ScalarFunction, AsyncScalarFunction,
                   AggregateFunction, TableFunction, DataTypes)

@udf(result_type='BIGINT', input_types=['BIGINT', 'BIGINT'])
def add(a, b):
    return a + b

def hinted(s: str) -> int:
    return len(s)

@udf(result_type='DOUBLE', func_type='pandas')
def twice(x):
    return x * 2

@udf(result_type='DOUBLE', func_type='arrow')
def thrice(x):
    return x

class Sleepy(AsyncScalarFunction):
    async def eval(self, x: int) -> int:
        return x

class Total(AggregateFunction):
    def create_accumulator(self): return [0]
    def accumulate(self, acc, x): acc[0] += x
    def get_value(self, acc): return acc[0]
    def get_result_type(self): return 'BIGINT'

total = udaf(Total(), input_types=['BIGINT'], result_type='BIGINT')

@udtf(result_types=['STRING'])
def split(s):
    yield from s.split()

class NeedsArgs(ScalarFunction):
    def __init__(self, k):
        self.k = k
    def eval(self, x):
        return x

_private = udf(lambda x: x, result_type='BIGINT')
_helper = lambda x: x
partial_add = functools.partial(add, 1)
'''


def control(**request):
    return json.loads(_host.control(json.dumps(request)))


def test_functions_lists_every_kind_in_order():
    control(op="engine_open", engine=9101, job_parameters={}, path=[], log_level=40)
    try:
        module = control(op="load_source", engine=9101, name="kinds.py", source=SOURCE)["module"]
        got = control(op="functions", engine=9101, module=module)["functions"]
    finally:
        control(op="engine_close", engine=9101)
    brief = [(f["name"], f.get("kind"), f.get("func_type"), f.get("async"),
              f.get("input_types"), f.get("result_type"), f.get("error")) for f in got]
    assert brief == [
        ("add", "scalar", "general", False, ["BIGINT", "BIGINT"], "BIGINT", None),
        ("hinted", "scalar", "general", False, ["STRING"], "BIGINT", None),
        ("twice", "scalar", "pandas", False, None, "DOUBLE", None),
        ("thrice", "scalar", "arrow", False, None, "DOUBLE", None),
        ("Sleepy", "scalar", "general", True, ["BIGINT"], "BIGINT", None),
        ("Total", "aggregate", "general", False, None, "BIGINT", None),
        ("total", "aggregate", "general", False, ["BIGINT"], "BIGINT", None),
        ("split", "table", "general", False, None, "ROW<f0 STRING>", None),
        ("NeedsArgs", None, None, None, None, None,
         "TypeError: NeedsArgs.__init__() missing 1 required positional argument: 'k'"),
        ("_private", "scalar", "general", False, None, "BIGINT", None),
        ("partial_add", "scalar", "general", False, None, None, None),
    ]
