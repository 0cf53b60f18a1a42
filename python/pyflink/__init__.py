"""Compatibility package: ``pyflink`` names backed by the pyudf runtime.

The engine serves this package only when no real PyFlink is installed, so
PyFlink UDF code runs unchanged in either case.
"""
