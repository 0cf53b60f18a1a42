"""``pyflink.table.types``: type classes, backed by :mod:`pyudf.types`."""

from pyudf.types import *  # noqa: F401,F403
from pyudf.types import __all__  # noqa: F401
