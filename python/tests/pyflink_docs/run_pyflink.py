"""Run the scalar cases of python/tests/pyflink_docs with the real PyFlink package.

Usage: python run_pyflink.py CASES_JSON

Run with an interpreter that has ``apache-flink`` installed (the Go test
engine/pyflink_docs_test.go does so). For every case of kind "scalar" or
"pandas" (a vectorized scalar function) it loads the case's module with the
real ``pyflink`` package, takes the function out of PyFlink's wrapper the way
PyFlink's runtime does (``wrapper._func``; a ``ScalarFunction`` or ``AsyncScalarFunction`` is opened with
a ``FunctionContext`` holding a metric group and the case's job parameters and
its ``eval`` is called) and prints one JSON object: case name -> {"results":
[...]} or {"error": "Type: message"}.
"""

import asyncio
import importlib.util
import inspect
import json
import math
import os
import sys

import pandas as pd
from pyflink.common import Row
from pyflink.fn_execution.metrics.process.metric_impl import GenericMetricGroup
from pyflink.table.udf import AsyncScalarFunction, FunctionContext, ScalarFunction


def _module(path):
    name = "pyflink_docs_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plain(value):
    """A JSON-able form of a UDF's result (numpy scalars, Rows, NaN)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, Row)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple, Row)):  # a Row as the list of its values
        return [_plain(v) for v in value]
    return value


def _run(case, directory):
    wrapper = getattr(_module(os.path.join(directory, case["file"])), case["function"])
    func = wrapper._func
    opened = isinstance(func, (ScalarFunction, AsyncScalarFunction))
    if opened:
        func.open(FunctionContext(GenericMetricGroup(None, None), case.get("job_parameters", {})))
        call = func.eval
    else:
        call = func
    try:
        if case["kind"] == "pandas":
            columns = [pd.Series([row[i] for row in case["rows"]]) for i in range(len(case["columns"]))]
            return [_plain(v) for v in call(*columns)]
        results = [call(*row) for row in case["rows"]]
        # an AsyncScalarFunction's eval is a coroutine: PyFlink awaits it on an event loop
        return [_plain(asyncio.run(r) if inspect.iscoroutine(r) else r) for r in results]
    finally:
        if opened:
            func.close()


def main(path):
    with open(path) as f:
        cases = json.load(f)
    directory = os.path.dirname(os.path.abspath(path))
    out = {}
    for case in cases:
        if case["kind"] not in ("scalar", "pandas"):
            continue
        try:
            out[case["name"]] = {"results": _run(case, directory)}
        except Exception as e:  # reported to the Go test, which compares
            out[case["name"]] = {"error": "%s: %s" % (type(e).__name__, e)}
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
