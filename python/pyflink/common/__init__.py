"""``pyflink.common`` names that UDF code imports: ``Row`` and ``RowKind``.

Backed by :mod:`pyudf.row`, so ``from pyflink.common import Row`` gives the
same class as ``from pyflink.table import Row`` and ``from pyudf import Row``.
PyFlink's job-level names (``Configuration``, ``ExecutionConfig``,
``WatermarkStrategy``, ``JobClient``, serialization schemas ...) have no
meaning inside a Go process and are not provided.
"""

from pyudf.row import Row, RowKind

__all__ = ["Row", "RowKind"]
