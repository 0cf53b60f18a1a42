"""``pyflink.common`` names that UDF code imports: ``Row``, ``RowKind``,
``Types``, ``Time`` and ``Duration``.

Backed by :mod:`pyudf.row`, :mod:`pyudf.typeinfo` and :mod:`pyudf.timeutil`,
so ``from pyflink.common import Row`` gives the same class as ``from
pyflink.table import Row`` and ``from pyudf import Row``.
PyFlink's job-level names (``Configuration``, ``ExecutionConfig``,
``WatermarkStrategy``, ``JobClient``, serialization schemas ...) have no
meaning inside a Go process and are not provided.
"""

from pyudf.row import Row, RowKind
from pyudf.timeutil import Duration, Time
from pyudf.typeinfo import Types

__all__ = ["Duration", "Row", "RowKind", "Time", "Types"]
