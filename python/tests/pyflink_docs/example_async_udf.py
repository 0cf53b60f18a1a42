# Mirrors: apache-flink's shipped example pyflink/examples/table/async/async_scalar_function.py, its class-based AsyncScalarFunction (open, async eval, close).
# pyudf's own code and data; cases.json holds the rows and expected results.
import asyncio

from pyflink.table import DataTypes
from pyflink.table.udf import AsyncScalarFunction, udf


class AsyncZoneLookup(AsyncScalarFunction):
    """Looks a site code up in a (pretend) remote service, remembering answers."""

    def open(self, function_context):
        self.memo = {}

    async def eval(self, code: str) -> str:
        if code not in self.memo:
            await asyncio.sleep(0.01)  # the pretend round trip
            self.memo[code] = "%d:%s" % (len(code), code.upper())
        return self.memo[code]

    def close(self):
        self.memo.clear()


zone_lookup = udf(AsyncZoneLookup(), result_type=DataTypes.STRING())
