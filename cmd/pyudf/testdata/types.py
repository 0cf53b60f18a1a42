"""Values of every kind of SQL type, through the command line and back."""
from pyudf import udf


@udf(input_types=['DATE', 'TIMESTAMP(3)', 'TIME', 'DECIMAL(10, 2)', 'BYTES', 'MAP<STRING, INT>',
                  'TIMESTAMP_LTZ(3)', 'FLOAT'],
     result_type='ROW<d DATE, ts TIMESTAMP(3), t TIME, dec DECIMAL(10, 2), b BYTES, '
                 'm MAP<STRING, INT>, ltz TIMESTAMP_LTZ(3), f FLOAT>')
def echo(*values):
    return values


def untyped(*values):
    return repr(values)
