"""PyFlink anchors for pyudf's benchmark: json_lower in PyFlink's thread and process modes.

Run with an interpreter that has ``apache-flink`` installed (``make
bench-anchors`` makes one in its own virtualenv)::

    python pyflink_bench.py --json100 '<100-byte JSON>' --json1k '<1000-byte JSON>' [--quick]

Prints one JSON object per line, in the format of ``go run ./bench -json``.

What is measured: rows per second through a streaming job, datagen source
-> ``json_lower`` Python UDF -> blackhole sink, parallelism 1. Every input is
the same JSON document as the Go benchmark's, with its id field replaced by
the row number so that no row is a constant. Job startup (JVM, planner,
Python workers) is excluded by running each job at two sizes in the same
JVM and dividing the extra rows by the extra time. Per-row latency is not
observable from outside a PyFlink job, so it is not reported.

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


def python_floor(document, seconds=1.0):
    """Rows/s of json_lower's body in a plain loop over ``document``."""
    body = json_lower._func if hasattr(json_lower, "_func") else json_lower.func
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            body(document)
        n += 1000
    return n / (time.perf_counter() - start)


def run_job(t_env, rows, document):
    literal = document.replace("'", "''")
    t_env.execute_sql("DROP TEMPORARY TABLE IF EXISTS src")
    t_env.execute_sql("DROP TEMPORARY TABLE IF EXISTS sink")
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE src (id BIGINT) WITH ('connector' = 'datagen', "
        "'fields.id.kind' = 'sequence', 'fields.id.start' = '10000', "
        "'fields.id.end' = '%d', 'rows-per-second' = '1000000000')" % (10000 + rows - 1))
    t_env.execute_sql("CREATE TEMPORARY TABLE sink (s STRING) WITH ('connector' = 'blackhole')")
    start = time.perf_counter()
    t_env.execute_sql(
        "INSERT INTO sink SELECT json_lower(REPLACE('%s', '12345', CAST(10000 + id %% 90000 AS STRING))) "
        "FROM src" % literal).wait()
    return time.perf_counter() - start


def measure(mode, name, document, small, large):
    settings = EnvironmentSettings.in_streaming_mode()
    t_env = TableEnvironment.create(settings)
    config = t_env.get_config()
    config.set("parallelism.default", "1")
    config.set("python.execution-mode", mode)
    config.set("python.executable", sys.executable)
    config.set("python.client.executable", sys.executable)
    t_env.create_temporary_function("json_lower", json_lower)
    run_job(t_env, small, document)  # warm-up: JVM classes, Python workers
    floor_before = python_floor(document)
    t_small = run_job(t_env, small, document)
    t_large = run_job(t_env, large, document)
    floor = (floor_before + python_floor(document)) / 2
    rate = (large - small) / max(t_large - t_small, 1e-9)
    return {"name": name, "mode": "pyflink-" + mode, "goroutines": 1, "batch_rows": 1,
            "rows_per_s": rate, "p50_ns": 0, "p99_ns": 0, "rounds": 1, "python_floor_rows_per_s": floor,
            "note": "PyFlink rows/s through datagen -> UDF -> blackhole, (%d - %d rows) / (%.2f s - %.2f s); "
                    "per-row latency not observable" % (large, small, t_large, t_small)}


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
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--modes", default="thread,process")
    args = parser.parse_args()
    small, large = (20_000, 220_000) if args.quick else (50_000, 550_000)
    for mode in args.modes.split(","):
        for name, document in (("json_lower_100b_row", args.json100), ("json_lower_1k_row", args.json1k)):
            try:
                result = measure(mode, name, document, small, large)
            except Exception as exc:  # the report says why an anchor could not run
                result = {"name": name, "mode": "pyflink-" + mode, "goroutines": 1, "batch_rows": 1,
                          "rows_per_s": 0, "p50_ns": 0, "p99_ns": 0, "rounds": 0,
                          "note": "anchor could not run: " + _root_cause(exc)}
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
