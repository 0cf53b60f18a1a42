# Mirrors: apache-flink's shipped example pyflink/examples/table/basic_operations.py, its row_operations part (map, flat_map, aggregate and flat_aggregate UDFs in one module).
# pyudf's own code and data; cases.json holds the rows and expected results.
import json

from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, TableAggregateFunction, udaf, udf, udtaf, udtf


# for map: a Row result built from a JSON column and a field read by name
@udf(result_type=DataTypes.ROW([DataTypes.FIELD("id", DataTypes.BIGINT()),
                                DataTypes.FIELD("room", DataTypes.STRING())]))
def device_room(input_row: Row):
    record = json.loads(input_row.doc)
    return Row(input_row.id, record['site']['room'])


# for flat_map
@udtf(result_types=[DataTypes.BIGINT(), DataTypes.STRING()])
def device_region(input_row: Row):
    record = json.loads(input_row.doc)
    yield input_row.id, record['site']['region']


# for aggregate: how many of a group's devices run firmware 5 or newer, out of how many
class FirmwareCurrency(AggregateFunction):

    def create_accumulator(self):
        return Row(0, 0)  # (current, total)

    def accumulate(self, acc, input_row):
        acc[0] += 1 if int(input_row.fw) >= 5 else 0
        acc[1] += 1

    def retract(self, acc, input_row):
        acc[0] -= 1 if int(input_row.fw) >= 5 else 0
        acc[1] -= 1

    def merge(self, acc, accumulators):
        for other in accumulators:
            acc[0] += other[0]
            acc[1] += other[1]

    def get_value(self, acc):
        return Row(acc[0], acc[1])

    def get_accumulator_type(self):
        return DataTypes.ROW([DataTypes.FIELD("current", DataTypes.BIGINT()),
                              DataTypes.FIELD("total", DataTypes.BIGINT())])

    def get_result_type(self):
        return DataTypes.ROW([DataTypes.FIELD("current", DataTypes.BIGINT()),
                              DataTypes.FIELD("total", DataTypes.BIGINT())])


firmware_currency = udaf(FirmwareCurrency())


# for flat_aggregate: the first and the last firmware version a group reports
class FirstAndLast(TableAggregateFunction):

    def create_accumulator(self):
        return [None, None]

    def accumulate(self, acc, input_row):
        fw = int(input_row.fw)
        if acc[0] is None:
            acc[0] = fw
        acc[1] = fw

    def emit_value(self, acc):
        for fw in acc:
            if fw is not None:
                yield Row(fw)

    def get_accumulator_type(self):
        return DataTypes.ARRAY(DataTypes.BIGINT())

    def get_result_type(self):
        return DataTypes.ROW([DataTypes.FIELD("fw", DataTypes.BIGINT())])


first_last = udtaf(FirstAndLast())
