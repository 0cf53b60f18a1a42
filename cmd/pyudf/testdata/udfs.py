"""UDFs for the pyudf command's tests: one of each kind."""
from pyudf import udf, udaf, udtf, AggregateFunction, AsyncScalarFunction


@udf(input_types=['BIGINT', 'BIGINT'], result_type='BIGINT')
def add(a, b):
    return a + b


def shout(s: str) -> str:
    print("shouting", s)
    return s.upper() + "!"


@udf(input_types=['BOOLEAN', 'DOUBLE', 'DATE', 'STRING', 'INT'], result_type='STRING')
def show(b, d, day, s, n):
    return repr((b, d, day, s, n))


@udf(input_types=['ARRAY<INT>', 'MAP<STRING, DOUBLE>', 'ROW<a INT, b STRING>'],
     result_type='ROW<n INT, total DOUBLE, b STRING>')
def mix(xs, m, r):
    return sum(xs), sum(m.values()), r.b


@udf(input_types=['STRING'], result_type='BIGINT')
def parse(s):
    return int(s)


@udf(input_types=['DOUBLE'], result_type='DOUBLE', func_type='pandas')
def twice(x):
    return x * 2


@udf(input_types=['BIGINT'], result_type='BIGINT', func_type='arrow')
def inc(x):
    import pyarrow.compute as pc
    return pc.add(x, 1)


@udtf(input_types=['STRING'], result_types=['STRING', 'INT'])
def words(s):
    for w in s.split():
        yield w, len(w)


class Total(AggregateFunction):
    def create_accumulator(self):
        return [0]

    def accumulate(self, acc, x):
        acc[0] += x

    def get_value(self, acc):
        return acc[0]


total = udaf(Total(), input_types=['BIGINT'], result_type='BIGINT')


class Echo(AsyncScalarFunction):
    async def eval(self, s: str) -> str:
        return s


LIMIT = 10
