"""PyFlink anchors for pyudf's benchmark: json_lower in PyFlink's thread and
process modes, upper in its thread mode, and the upper job without a UDF.

Run with an interpreter that has ``apache-flink`` installed (``make
bench-anchors`` makes one in its own virtualenv)::

    python pyflink_bench.py --json100 '<100-byte JSON>' --json1k '<1000-byte JSON>' \
        --upper '<100-byte string>' [--quick] [--modes thread,process]

Prints one JSON object per line, in the format of ``go run ./bench -json``.

What is measured: rows per second through a streaming job, datagen source
-> Python UDF -> blackhole sink, parallelism 1. Every input is the same
document as the Go benchmark's, made different in every row: the JSON
document with its id field replaced by a 5-digit number from the row
number, the upper string with its first 5 bytes replaced by that number
(still 100 bytes). Mode ``pyflink-none`` is the upper job with the UDF left
out (the same string built per row, straight to the sink): PyFlink's own
ceiling for a job of this shape. Job startup (JVM, planner, Python workers)
is excluded by running each job at two sizes in the same JVM and dividing
the extra rows by the extra time. Per-row latency is not observable from
outside a PyFlink job, so it is not reported.

Beside each job, the same UDF body runs in a plain Python loop over the same
document in this process (``python_floor_rows_per_s``): on a shared machine
whose speed drifts between runs, PyFlink's rate over that floor compares
with pyudf's rate over the floor the Go benchmark measures beside it.
"""

import argparse
import json
import os
import site
import sys
import time

from pyflink.table import EnvironmentSettings, TableEnvironment
from pyflink.table.udf import udf


@udf(input_types=["STRING"], result_type="STRING")
def json_lower(s):
    record = json.loads(s)
    return json.dumps({k: v.lower() if isinstance(v, str) else v for k, v in record.items()})


@udf(input_types=["STRING"], result_type="STRING")
def upper(s):
    return s.upper()


def python_floor(function, document, seconds=1.0):
    """Rows/s of the UDF's body in a plain loop over ``document``."""
    body = function._func if hasattr(function, "_func") else function.func
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            body(document)
        n += 1000
    return n / (time.perf_counter() - start)


def row_number_text():
    """SQL for a 5-digit number made from the row's id."""
    return "CAST(10000 + id % 90000 AS STRING)"


def sql_literal(text):
    return "'" + text.replace("'", "''") + "'"


def run_job(t_env, rows, select):
    """Seconds for ``rows`` rows of INSERT INTO sink SELECT ``select`` FROM src."""
    t_env.execute_sql("DROP TEMPORARY TABLE IF EXISTS src")
    t_env.execute_sql("DROP TEMPORARY TABLE IF EXISTS sink")
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE src (id BIGINT) WITH ('connector' = 'datagen', "
        "'fields.id.kind' = 'sequence', 'fields.id.start' = '10000', "
        "'fields.id.end' = '%d', 'rows-per-second' = '1000000000')" % (10000 + rows - 1))
    t_env.execute_sql("CREATE TEMPORARY TABLE sink (s STRING) WITH ('connector' = 'blackhole')")
    start = time.perf_counter()
    t_env.execute_sql("INSERT INTO sink SELECT %s FROM src" % select).wait()
    return time.perf_counter() - start


class Case:
    """One PyFlink job: its name in the report, its UDF (None: no UDF) and the
    SELECT expression that calls it, and the document its floor loops over."""

    def __init__(self, name, function, select, document):
        self.name, self.function, self.select, self.document = name, function, select, document


def json_case(name, document):
    expr = "REPLACE(%s, '12345', %s)" % (sql_literal(document), row_number_text())
    return Case(name, json_lower, "json_lower(%s)" % expr, document)


def upper_case(document, with_udf):
    expr = "CONCAT(%s, %s)" % (row_number_text(), sql_literal(document[5:]))
    if with_udf:
        return Case("upper_100b_row", upper, "py_upper(%s)" % expr, document)
    return Case("upper_100b_row", None, expr, document)


def measure(mode, case, small, large):
    settings = EnvironmentSettings.in_streaming_mode()
    t_env = TableEnvironment.create(settings)
    config = t_env.get_config()
    config.set("parallelism.default", "1")
    config.set("python.execution-mode", mode)
    config.set("python.executable", sys.executable)
    config.set("python.client.executable", sys.executable)
    t_env.create_temporary_function("json_lower", json_lower)
    t_env.create_temporary_function("py_upper", upper)
    run_job(t_env, small, case.select)  # warm-up: JVM classes, Python workers
    floor_before = python_floor(case.function, case.document) if case.function else 0
    t_small = run_job(t_env, small, case.select)
    t_large = run_job(t_env, large, case.select)
    floor = (floor_before + python_floor(case.function, case.document)) / 2 if case.function else 0
    rate = (large - small) / max(t_large - t_small, 1e-9)
    result = {"name": case.name, "mode": "pyflink-" + mode if case.function else "pyflink-none",
              "goroutines": 1, "batch_rows": 1, "rows_per_s": rate, "p50_ns": 0, "p99_ns": 0, "rounds": 1,
              "note": "PyFlink rows/s through datagen -> %s -> blackhole, (%d - %d rows) / (%.2f s - %.2f s); "
                      "per-row latency not observable"
                      % ("UDF" if case.function else "no UDF", large, small, t_large, t_small)}
    if floor:
        result["python_floor_rows_per_s"] = floor
    return result


def _root_cause(exc):
    """The innermost Java exception of a Py4JJavaError, else the Python one."""
    java = getattr(exc, "java_exception", None)
    if java is None:
        return "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0][:300])
    while java.getCause() is not None:
        java = java.getCause()
    return java.toString()[:400]


def main():
    # PyFlink's thread mode embeds CPython in the JVM (PEMJA); in a virtualenv
    # that interpreter must be told where the venv's packages (pemja too) are.
    paths = site.getsitepackages() + [os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    parser = argparse.ArgumentParser()
    parser.add_argument("--json100", required=True)
    parser.add_argument("--json1k", required=True)
    parser.add_argument("--upper", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--modes", default="thread,process")
    args = parser.parse_args()
    # The upper jobs run about 5x faster than the JSON ones: more rows, the same seconds.
    sizes = {"json": (20_000, 220_000) if args.quick else (50_000, 550_000),
             "upper": (100_000, 1_100_000) if args.quick else (200_000, 2_200_000)}
    for mode in args.modes.split(","):
        runs = [("json", json_case("json_lower_100b_row", args.json100)),
                ("json", json_case("json_lower_1k_row", args.json1k))]
        if mode == "thread":  # the no-UDF job runs once, beside thread mode
            runs += [("upper", upper_case(args.upper, True)), ("upper", upper_case(args.upper, False))]
        for size, case in runs:
            try:
                result = measure(mode, case, *sizes[size])
            except Exception as exc:  # the report says why an anchor could not run
                result = {"name": case.name, "mode": "pyflink-" + mode if case.function else "pyflink-none",
                          "goroutines": 1, "batch_rows": 1, "rows_per_s": 0, "p50_ns": 0, "p99_ns": 0, "rounds": 0,
                          "note": "anchor could not run: " + _root_cause(exc)}
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
