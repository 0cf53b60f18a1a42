"""The process-mode worker and its row encoding, driven as the Go engine drives them."""

import datetime
import decimal
import io
import json
import struct

import pyarrow as pa
import pytest

from pyudf import Row, _wire, _worker
from pyudf._worker import Worker, _read_batch, _write_batch

U32 = struct.Struct("<I")
OPS = {"call": _worker.OP_CALL, "call_batch": _worker.OP_CALL_BATCH, "eval": _worker.OP_EVAL,
       "control": _worker.OP_CONTROL, "ping": _worker.OP_PING}


def message(header, *payloads):
    """A request framed as the Go engine frames it (engine/process.go), from a
    JSON-like description: ``op`` and its fields, payloads as Go sends them."""
    op = header["op"]
    count, data = 0, b""
    if op == "call":
        count, data = header["nargs"], payloads[0]
    elif op == "call_batch":
        extra = header.get("extra", ())
        count, data = len(extra), struct.pack("<%dq" % len(extra), *extra) + payloads[0]
    elif op == "eval":
        mode = header["mode"].encode()
        field = (bytes([len(mode)]) + mode).ljust(-(-(1 + len(mode)) // 8) * 8, b"\0")
        count, data = len(payloads[0]), field + payloads[0] + payloads[1]
    elif op == "control":
        data = json.dumps({k: v for k, v in header.items() if k != "op"}).encode()
    method = header.get("method", "").encode()
    body = (struct.pack("<BBxxIq", OPS[op], len(method), count, header.get("function", 0))
            + method.ljust(-(-len(method) // 8) * 8, b"\0") + data)
    return U32.pack(len(body)) + body


def replies_of(data, requests):
    """Read the replies in ``data`` to ``requests`` (their op names, in
    order) as (header, payloads): a JSON reply as its object; an error as
    {"error": ...}; a cancelled request as {"cancelled": True}; a result as
    ({}, [body]); each with its "logs", if any."""
    stream = io.BytesIO(data)
    replies = []
    for op in requests:
        head = stream.read(4)
        if not head:
            break
        (size,) = U32.unpack(head)
        status, nlogs = struct.unpack("<BI", stream.read(5))
        logs = stream.read(nlogs)
        body = stream.read(size - 5 - nlogs)
        if status == _worker.OK and op in ("control", "ready"):
            header, payloads = json.loads(body), []
        elif status == _worker.OK:
            header, payloads = {}, ([body] if op != "ping" else [])
        elif status == _worker.CANCELLED:
            header, payloads = {"cancelled": True}, []
        else:
            header, payloads = {("error" if status == _worker.ERROR else "fatal"): json.loads(body)}, []
        if logs:
            header["logs"] = json.loads(logs)
        replies.append((header, payloads))
    assert not stream.read(), "more replies than requests"
    return replies


def run(*requests):
    """Serve ``requests`` (header, payloads...) and return the replies as (header, payloads)."""
    out = io.BytesIO()
    Worker(io.BytesIO(b"".join(message(*r) for r in requests)), out).serve()
    return replies_of(out.getvalue(), [r[0]["op"] for r in requests])


SOURCE = """
from pyudf import udf, udaf, AggregateFunction
add = udf(lambda a, b: a + b, input_types=["BIGINT", "BIGINT"], result_type="BIGINT")
big = udf(lambda n: "x" * n, input_types=["BIGINT"], result_type="STRING")
def boom(x):
    if x == 2:
        raise ValueError("two")
    return x
boom = udf(boom, input_types=["BIGINT"], result_type="BIGINT")
"""


def setup_requests():
    return [
        ({"op": "control", "request": {"op": "engine_open", "engine": 1, "job_parameters": {},
                                       "path": [], "log_level": 20}},),
        ({"op": "control", "as": 7, "request": {"op": "load_source", "engine": 1,
                                                 "name": "w.py", "source": SOURCE}},),
        ({"op": "control", "as": 9, "request": {"op": "function", "engine": 1, "module": 7, "name": "add"}},),
        ({"op": "control", "as": 10, "request": {"op": "function", "engine": 1, "module": 7, "name": "boom"}},),
    ]


def test_wire_round_trips_every_tag():
    values = [None, True, False, 3, -(1 << 63), 1 << 70, 1.5, "héllo", b"\x00\xff",
              decimal.Decimal("-12.50"), datetime.date(2024, 2, 29), datetime.time(13, 45, 30, 123456),
              datetime.datetime(2024, 1, 2, 3, 4, 5, 678000),
              datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
              [1, [2, None]], {"a": 1.5}, Row(a=1, b="x")]
    for v in values:
        data = _wire.encode(v, lambda o: pytest.fail("normalize called for %r" % (o,)))
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1 << 63:
            assert data[0] == _wire.BIGINT and data[5:] == str(v).encode()
            continue
        (got,) = _wire.decode_args(data, 1)
        assert got == v and type(got) is type(v)
    row = _wire.decode_args(_wire.encode(Row(a=1, b="x"), None), 1)[0]
    assert row.as_dict() == {"a": 1, "b": "x"}


def test_wire_rejects_truncated_and_unknown_data():
    with pytest.raises(ValueError, match="truncated"):
        _wire.decode_args(b"\x03\x01\x02", 1)
    with pytest.raises(ValueError, match="unknown argument tag 99"):
        _wire.decode_args(b"\x63", 1)
    with pytest.raises(TypeError, match="cannot convert a Python object"):
        _wire.encode(object(), lambda o: o)


def test_worker_loads_opens_and_calls_by_handle():
    args = _wire.encode(2, None) + _wire.encode(40, None)
    replies = run(*setup_requests(), ({"op": "call", "function": 9, "nargs": 2}, args))
    assert replies[1][0]["module"] == 7
    assert replies[2][0]["function"] == 9 and replies[2][0]["kind"] == "scalar"
    assert _wire.decode_args(replies[4][1][0], 1) == [42]


class _Trickle(io.RawIOBase):
    """An output that takes at most 1000 bytes per write, as a pipe may."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        chunk = bytes(b[:1000])
        self.data += chunk
        return len(chunk)


def test_worker_writes_whole_replies_through_partial_writes():
    out = _Trickle()
    setup = setup_requests() + [
        ({"op": "control", "as": 12, "request": {"op": "function", "engine": 1, "module": 7, "name": "big"}},)]
    requests = setup + [({"op": "call", "function": 12, "nargs": 1}, _wire.encode(n, None))
                                      for n in (10, 5000, 200_000)] + [({"op": "ping"},)]
    Worker(io.BytesIO(b"".join(message(*r) for r in requests)), out).serve()
    replies = replies_of(bytes(out.data), [r[0]["op"] for r in requests])
    got = [_wire.decode_args(r[1][0], 1)[0] for r in replies[len(setup):-1]]
    assert got == ["x" * 10, "x" * 5000, "x" * 200_000]
    assert replies[-1] == ({}, [])


def test_worker_answers_an_unknown_op_and_serves_on():
    bad = struct.pack("<BBxxIq", 99, 0, 0, 0)
    out = io.BytesIO()
    Worker(io.BytesIO(U32.pack(len(bad)) + bad + message({"op": "ping"})), out).serve()
    (error, _), ping = replies_of(out.getvalue(), ["call", "ping"])
    assert error["error"]["type"] == "ValueError" and "unknown worker request 99" in error["error"]["message"]
    assert ping == ({}, [])


def test_worker_reports_exceptions_and_the_failing_row():
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2, 3], pa.int64())], names=["x"])
    rtype = _write_batch(pa.RecordBatch.from_arrays([pa.array([], pa.int64())], names=["r"]))
    replies = run(*setup_requests(),
                  ({"op": "call", "function": 10, "nargs": 1}, _wire.encode(2, None)),
                  ({"op": "eval", "function": 10, "mode": "rows"}, _write_batch(batch).to_pybytes(), rtype.to_pybytes()),
                  ({"op": "eval", "function": 10, "mode": "rows_errors"}, _write_batch(batch).to_pybytes(),
                   rtype.to_pybytes()),
                  ({"op": "call", "function": 99, "nargs": 0}, b""))
    call, rows, row_errors, unknown = [r[0] for r in replies[4:]]
    assert call["error"]["type"] == "ValueError" and call["error"]["message"] == "two"
    assert rows["error"]["row"] == 1 and "ValueError: two" in rows["error"]["traceback"]
    out = _read_batch(replies[6][1][0])
    assert out.column(0).to_pylist() == [1, None, 3]
    assert out.column(1).to_pylist() == [None, "ValueError: two", None]
    assert "function 99 is not open" in unknown["error"]["message"]


def test_worker_closes_functions_by_handle():
    replies = run(*setup_requests(),
                  ({"op": "control", "request": {"op": "function_close", "engine": 1, "function": 9}},),
                  ({"op": "call", "function": 9, "nargs": 2}, _wire.encode(1, None) * 2))
    assert replies[4][0] == {}
    assert "not open" in replies[5][0]["error"]["message"]


HOSTILE = """
import os, sys
from pyudf import udf
def _exit(code):
    sys.exit(code)
exit_ = udf(_exit, input_types=["BIGINT"], result_type="BIGINT")
def _interrupt():
    raise KeyboardInterrupt("from the UDF")
interrupt = udf(_interrupt, result_type="BIGINT")
def _fork(x):
    os.fork()  # both processes return from the UDF
    return x + 1
fork = udf(_fork, input_types=["BIGINT"], result_type="BIGINT")
"""


def hostile_requests():
    return [
        ({"op": "control", "request": {"op": "engine_open", "engine": 1, "job_parameters": {},
                                       "path": [], "log_level": 20}},),
        ({"op": "control", "as": 7, "request": {"op": "load_source", "engine": 1,
                                                 "name": "hostile.py", "source": HOSTILE}},),
        ({"op": "control", "as": 9, "request": {"op": "function", "engine": 1, "module": 7, "name": "exit_"}},),
        ({"op": "control", "as": 10, "request": {"op": "function", "engine": 1, "module": 7, "name": "interrupt"}},),
        ({"op": "control", "as": 11, "request": {"op": "function", "engine": 1, "module": 7, "name": "fork"}},),
    ]


def test_worker_answers_system_exit_and_keyboard_interrupt_as_errors():
    replies = run(*hostile_requests(),
                  ({"op": "call", "function": 9, "nargs": 1}, _wire.encode(3, None)),
                  ({"op": "call", "function": 10, "nargs": 0}, b""),
                  ({"op": "ping"},))
    exit_, interrupt, ping = [r[0] for r in replies[5:]]
    assert exit_["error"]["type"] == "SystemExit" and exit_["error"]["message"] == "3"
    assert interrupt["error"]["type"] == "KeyboardInterrupt"
    assert interrupt["error"]["message"] == "from the UDF"
    assert ping == {}  # the worker served on


def test_forked_process_never_answers():
    args = _wire.encode(41, None)
    replies = run(*hostile_requests(), *[({"op": "call", "function": 11, "nargs": 1}, args)] * 3)
    assert len(replies) == 8  # one reply per request, none from the forked children
    assert [_wire.decode_args(r[1][0], 1) for r in replies[5:]] == [[42]] * 3


class _Interrupting(io.RawIOBase):
    """A request stream that delivers SIGINT to this process after ``after`` bytes."""

    def __init__(self, data, after):
        self._data, self._pos, self._after = data, 0, after

    def readable(self):
        return True

    def readinto(self, buf):
        import os
        import signal
        end = min(len(self._data), self._pos + len(buf), self._after if self._pos < self._after else len(self._data))
        n = end - self._pos
        buf[:n] = self._data[self._pos:end]
        self._pos = end
        if self._pos == self._after:
            os.kill(os.getpid(), signal.SIGINT)
        return n


@pytest.mark.parametrize("where", ["header", "payload", "end"])
def test_sigint_while_reading_cancels_that_request(where):
    import signal
    setup = b"".join(message(*r) for r in hostile_requests())
    call = message({"op": "call", "function": 11, "nargs": 1}, _wire.encode(1, None))
    ping = message({"op": "ping"})
    offset = {"header": 6, "payload": len(call) - 2, "end": len(call)}[where]
    out = io.BytesIO()
    # buffer_size=1: no read-ahead, so the SIGINT comes when the worker has read exactly `offset` bytes
    raw = _Interrupting(setup + call + ping, len(setup) + offset)
    worker = Worker(io.BufferedReader(raw, buffer_size=1), out)
    previous = signal.signal(signal.SIGINT, worker.interrupt)
    try:
        worker.serve()
    finally:
        signal.signal(signal.SIGINT, previous)
    ops = [r[0]["op"] for r in hostile_requests()] + ["call", "ping"]
    replies = [header for header, _ in replies_of(out.getvalue(), ops)]
    # The interrupted call is cancelled, whatever byte the SIGINT came at; the
    # worker reads on and answers the next request normally.
    assert replies[5:] == [{"cancelled": True}, {}]


@pytest.mark.parametrize("method", ["", "m", "accumulate_batch", "a" * 8])
def test_worker_reads_batches_aligned(method, monkeypatch):
    """A batch is read in place from the request: its buffers must be 8-byte aligned."""
    seen = []
    real = _worker._read_batch

    def read(data):
        batch = real(data)
        seen.extend(buf.address % 8 for col in batch.columns for buf in col.buffers() if buf is not None)
        return batch

    monkeypatch.setattr(_worker, "_read_batch", read)
    target = Worker._target  # every method name names the function itself: only the offsets change
    monkeypatch.setattr(Worker, "_target", lambda self, function, _: target(self, function, b""))
    batch = pa.RecordBatch.from_arrays([pa.array([1, 3, 5], pa.int64())], names=["x"])
    rtype = _write_batch(pa.RecordBatch.from_arrays([pa.array([], pa.int64())], names=["r"]))
    for mode in ("rows", "rows_errors"):  # data offsets 8 and 16 after the mode
        replies = run(*setup_requests(),
                      ({"op": "eval", "function": 10, "mode": mode, "method": method},
                       _write_batch(batch).to_pybytes(), rtype.to_pybytes()))
        assert _read_batch(replies[-1][1][0]).column(0).to_pylist() == [1, 3, 5], replies[-1]
    assert seen and set(seen) == {0}


def test_spin_reads_a_request_that_comes_during_it_and_gives_up_after_it():
    """``spin_ns`` polls the pipe for a request before the blocking read: one
    written during the spin is read; with none, the spin ends after its window."""
    import os
    import threading
    import time
    r, w = os.pipe()
    with os.fdopen(r, "rb", buffering=1 << 16) as inp, os.fdopen(w, "wb", buffering=0) as out:
        worker = Worker(inp, io.BytesIO(), spin_ns=2_000_000_000)
        ping = message({"op": "ping"})
        timer = threading.Timer(0.05, out.write, (ping,))
        timer.start()
        start = time.monotonic()
        assert worker.read_message() == ping[4:]
        assert time.monotonic() - start < 1.5  # read when it came, not when the spin ran out
        timer.join()
        worker._spin_ns = 100_000_000  # 0.1 s, nothing comes
        start = time.monotonic()
        worker._spin()
        assert 0.09 < time.monotonic() - start < 1.0
