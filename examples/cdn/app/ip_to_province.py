"""``ip_to_province``: the CDN example's PyFlink UDF.

The seed job called a web service for every address; this one looks the
address up in an offline IP-range table (a CSV of ``start_ip,end_ip,province``
rows, sorted and non-overlapping), loaded once in ``open()`` from the file the
job parameter ``cdn.ip_table`` names, and searched with ``bisect``.

An address in no range maps to ``Unknown`` (job parameter ``cdn.unknown``), as
does any IPv6 address (the table is IPv4 only). A string that is not an IP
address raises ``ValueError``: the Go side counts such records as bad input and
skips them.
"""

import bisect
import csv
import ipaddress
from socket import AF_INET, inet_pton

from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf


def load_table(path):
    """Read an IP-range table: returns (starts, ends, provinces), sorted by start.

    Raises ValueError naming the file and line of a malformed or overlapping row.
    """
    starts, ends, names = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#") or row[0] == "start_ip":
                continue
            if len(row) != 3:
                raise ValueError(f"{path}:{n}: want start_ip,end_ip,province, got {len(row)} fields")
            try:
                lo, hi = int(ipaddress.IPv4Address(row[0])), int(ipaddress.IPv4Address(row[1]))
            except ValueError as e:
                raise ValueError(f"{path}:{n}: {e}") from None
            if hi < lo or (ends and lo <= ends[-1]):
                raise ValueError(f"{path}:{n}: range {row[0]}-{row[1]} is empty, unsorted or overlaps the previous one")
            starts.append(lo)
            ends.append(hi)
            names.append(row[2])
    if not starts:
        raise ValueError(f"{path}: no ranges")
    return starts, ends, names


class IpToProvince(ScalarFunction):
    """Maps a client IP address (STRING) to the province (STRING) its range belongs to."""

    def open(self, function_context):
        path = function_context.get_job_parameter("cdn.ip_table", "")
        if not path:
            raise ValueError("job parameter cdn.ip_table (the IP-range table's path) is not set")
        self.starts, self.ends, self.names = load_table(path)
        self.unknown = function_context.get_job_parameter("cdn.unknown", "Unknown")

    def eval(self, ip):
        try:
            # The fast path: inet_pton is strict (four decimal octets, no
            # leading zeros) and runs in C, unlike ipaddress.
            v = int.from_bytes(inet_pton(AF_INET, ip), "big")
        except (OSError, TypeError, ValueError):
            addr = ipaddress.ip_address(ip)  # ValueError: '...' does not appear to be an IPv4 or IPv6 address
            if addr.version != 4:
                return self.unknown
            v = int(addr)
        i = bisect.bisect_right(self.starts, v) - 1
        if i >= 0 and v <= self.ends[i]:
            return self.names[i]
        return self.unknown


ip_to_province = udf(IpToProvince(), input_types=[DataTypes.STRING()], result_type=DataTypes.STRING())
