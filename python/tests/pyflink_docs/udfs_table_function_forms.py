# Mirrors: Flink docs, dev/python/table/udfs/python_udfs.md, "Table Functions": a udtf may be a generator, return an iterator or return an iterable.
# pyudf's own code and data; cases.json holds the rows and expected results.
from pyflink.table import DataTypes
from pyflink.table.udf import udtf


@udtf(result_types=DataTypes.BIGINT())
def countdown(n):
    while n > 0:
        yield n
        n -= 1


@udtf(result_types=DataTypes.BIGINT())
def evens_below(n):
    return iter(range(0, n, 2))


@udtf(result_types=DataTypes.BIGINT())
def digits_of(n):
    return [int(c) for c in str(n)]
