"""A process-mode worker: one Python process that runs UDFs for a Go engine.

The Go engine (``engine.Config{Mode: engine.Process}``) starts N of these from
the configured interpreter, with the runtime package written to a cache
directory, and talks to each over its stdin and stdout:

* a message is ``uint32 n`` and then ``n`` parts, each ``uint32 length`` and
  bytes (little endian); part 0 is a JSON header, the others are payloads;
* batches cross as Arrow IPC streams; a single row crosses in the engine's
  typed row encoding (:mod:`pyudf._wire`), the same bytes the thread mode's
  C shim reads, so a UDF sees the same objects in both modes;
* the worker answers each request before reading the next one.

Requests (``op`` in the header):

``control``
    A control-plane request for :func:`pyudf._host.control` (load code, open
    or close a function, read metrics). Module and function ids in requests
    and replies are the Go engine's handles (``as``), so that a restarted
    worker replaying the same requests answers to the same ids.
``call``
    ``function(*args)`` for one row: part 1 holds ``nargs`` encoded
    arguments, the reply's part 1 the encoded result.
``call_batch``
    ``function(batch, None, *extra)`` with a batch from Arrow IPC: a Pandas
    UDAF, or an aggregate's ``accumulate_batch``; the result is encoded.
``eval``
    A batch evaluation (``mode``: rows, rows_errors, map, pandas, arrow,
    pandas_map, explode): part 1 the batch, part 2 the result type as a
    one-field schema; the reply's part 1 is a batch with column ``result``
    (and ``errors``).
``ping``
    Nothing; sent after an interrupted call, so that a late interrupt lands
    here instead of in the next call.

A reply header holds ``error`` (type, message, traceback and the failing
``row``), ``cancelled``, or nothing. Any exception of the request, even
``SystemExit`` or ``KeyboardInterrupt`` raised by a UDF, is its ``error``;
the worker serves on. A ``MemoryError`` (the worker may run under an
address-space rlimit) is fatal: the worker reports it and exits with status
70, and the engine starts a new one.

SIGINT cancels the request it arrives in by raising
:class:`pyudf._host.Cancelled` in it. One that arrives while the worker is
still reading a request is kept and cancels that request as soon as it is
read; one that arrives after the reply is kept for the next request, which
the engine then sends as a ``ping`` to absorb it. So a SIGINT at any point
cancels one request and never leaves the worker stuck or killed.

A process forked by a UDF (``os.fork()``) that returns from it instead of
exiting never answers: only the worker's own process writes replies.

Python's logging records and ``print`` output go back with the reply of the
request that produced them (``logs``: level, logger, message), and the
engine hands them to ``log/slog`` before it returns, as in thread mode.
Whatever reaches the process's stderr otherwise (C code, a dying
interpreter) is forwarded line by line.
"""

import json
import os
import signal
import struct
import sys

from . import _host, _wire

_U32 = struct.Struct("<I")
EXIT_OUT_OF_MEMORY = 70


class Worker:
    """Serves requests from ``inp`` and writes replies to ``out`` (binary streams)."""

    def __init__(self, inp, out):
        self._in = inp
        self._out = out
        self._modules = {}    # Go handle -> the host's module id
        self._functions = {}  # Go handle -> (host function id, {method: callable})
        self.busy = False     # a request is being handled: SIGINT raises Cancelled
        self.interrupt_pending = False  # a SIGINT came while not busy
        self.logs = []        # (level, logger, message) of the request in progress
        self._pid = os.getpid()

    def log(self, level, logger, message):
        """Keep a log record or line of print output for the reply (as ``_pyudf_host.log``)."""
        self.logs.append((level, logger, message))

    # --- framing ------------------------------------------------------------

    def read_message(self):
        """The next message's parts, or None at end of input."""
        head = self._in.read(4)
        if len(head) < 4:
            return None
        (count,) = _U32.unpack(head)
        parts = []
        for _ in range(count):
            (n,) = _U32.unpack(self._read_exactly(4))
            parts.append(self._read_exactly(n))
        return parts

    def _read_exactly(self, n):
        data = self._in.read(n)
        if len(data) != n:
            raise EOFError("the engine closed the pipe in the middle of a message")
        return data

    def write_message(self, header, *payloads):
        parts = [json.dumps(header).encode()] + [bytes(p) for p in payloads]
        chunks = [_U32.pack(len(parts))]
        for p in parts:
            chunks.append(_U32.pack(len(p)))
            chunks.append(p)
        self._out.write(b"".join(chunks))
        self._out.flush()

    # --- serving ------------------------------------------------------------

    def interrupt(self, signum=None, frame=None):
        """The SIGINT handler: cancel the request being handled, or keep the
        interrupt for the next one (:meth:`serve` checks it once read)."""
        if self.busy:
            self.interrupt_pending = False
            raise _host.Cancelled("interrupted by the Go caller")
        self.interrupt_pending = True

    def _check_interrupt(self):
        # The C-level handler has run for a SIGINT sent before the request
        # was complete; pthread_sigmask runs the Python-level handlers now
        # (PyErr_CheckSignals), so a pending interrupt cancels this request.
        signal.pthread_sigmask(signal.SIG_BLOCK, ())
        if self.interrupt_pending:
            self.interrupt_pending = False
            raise _host.Cancelled("interrupted by the Go caller")

    def serve(self):
        """Answer requests until the engine closes stdin."""
        while True:
            parts = self.read_message()
            if parts is None:
                return
            try:
                self.busy = True
                try:
                    self._check_interrupt()
                    reply = self.handle(json.loads(parts[0]), parts[1:])
                finally:
                    self.busy = False
            except _host.Cancelled:
                reply = ({"cancelled": True},)
            except MemoryError as exc:
                self._only_in_worker()
                self.write_message({"fatal": _describe(exc, -1), "logs": self.logs})
                os._exit(EXIT_OUT_OF_MEMORY)
            except BaseException as exc:  # the UDF's (or the request's) failure goes back to Go
                # SystemExit and KeyboardInterrupt too: as in thread mode, a
                # UDF's exception fails its call, not the worker.
                reply = ({"error": _describe(exc, -1)},)
            self._only_in_worker()
            if self.logs:
                reply[0]["logs"], self.logs = self.logs, []
            self.write_message(*reply)

    def _only_in_worker(self):
        """End a process forked by a UDF that returned from it: it must not answer."""
        if os.getpid() != self._pid:
            os._exit(0)

    def handle(self, header, payloads):
        """One request: returns (reply header, *payloads)."""
        op = header["op"]
        if op == "call":
            fn = self._target(header)
            args = _wire.decode_args(payloads[0], header["nargs"])
            return {}, _encode_result(fn(*args))
        if op == "eval":
            return self._eval(header, payloads)
        if op == "call_batch":
            fn = self._target(header)
            result = fn(_read_batch(payloads[0]), None, *header.get("extra", ()))
            return {}, _encode_result(result)
        if op == "control":
            return (self._control(header),)
        if op == "ping":
            return ({},)
        raise ValueError("unknown worker request %r" % op)

    def _target(self, header):
        entry = self._functions.get(header["function"])
        if entry is None:
            raise RuntimeError("function %d is not open in this worker" % header["function"])
        fn = entry[1].get(header.get("method", ""))
        if fn is None:
            raise RuntimeError("function %d has no method %r" % (header["function"], header.get("method")))
        return fn

    def _eval(self, header, payloads):
        from . import _batch
        import pyarrow as pa
        fn = self._target(header)
        batch = _read_batch(payloads[0])
        result_type = _read_batch(payloads[1]).schema.field(0).type
        mode = header["mode"]
        errors = None
        try:
            if mode in ("rows", "rows_errors", "map"):
                result, errors = _batch.evaluate_rows(fn, batch, result_type, as_rows=mode == "map",
                                                      row_errors=mode == "rows_errors")
            elif mode == "explode":
                result = _batch.explode_batch(fn, batch, result_type)
            else:
                result = _batch.vectorized(fn, mode, batch, result_type)
        except _batch.RowError as exc:
            return ({"error": _describe(exc.__cause__, exc.row)},)
        columns, names = [result], ["result"]
        if errors is not None:
            columns.append(errors)
            names.append("errors")
        return {}, _write_batch(pa.RecordBatch.from_arrays(columns, names=names))

    def _control(self, header):
        req = dict(header["request"])
        handle = header.get("as")
        op = req["op"]
        if op == "function":
            req["module"] = self._modules[req["module"]]
        elif op == "function_close":
            entry = self._functions.pop(req["function"], None)
            if entry is None:
                return {}
            req["function"] = entry[0]
        reply = json.loads(_host.control(json.dumps(req)))
        if "module" in reply and handle is not None:
            self._modules[handle] = reply["module"]
            reply["module"] = handle
        if op == "function" and not reply.get("missing"):
            methods = {}
            if reply.get("object"):
                methods[""] = _host.take(reply["object"])
                reply["object"] = handle
            for name, key in (reply.get("methods") or {}).items():
                methods[name] = _host.take(key)
                reply["methods"][name] = handle
            self._functions[handle] = (reply["function"], methods)
            reply["function"] = handle
        return reply


def _encode_result(result):
    """A function's result in the wire format; a result that cannot be
    encoded raises :class:`pyudf._host.ResultError`, as the C shim's encoder
    does embedded (Go: a ConversionError, not the UDF's exception)."""
    try:
        return _wire.encode(result, _host.normalize)
    except Exception as exc:
        marked = _host.as_result_error(exc)
        if marked is exc:
            raise
        raise marked from None


def _describe(exc, row):
    type_name, message, traceback = _host.describe_exception(exc)
    return {"type": type_name, "message": message, "traceback": traceback, "row": row}


def _read_batch(data):
    import pyarrow as pa
    return pa.ipc.open_stream(pa.py_buffer(data)).read_next_batch()


def _write_batch(batch):
    import pyarrow as pa
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def main(argv=None):
    """Entry point: ``--memory-limit BYTES`` caps the address space (0: none)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    limit = 0
    if "--memory-limit" in argv:
        limit = int(argv[argv.index("--memory-limit") + 1])
    if limit > 0:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The protocol owns the original stdin and stdout; user code's print (and
    # C code writing to fd 1) goes to stderr instead.
    proto_in = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    worker = Worker(proto_in, proto_out)
    _host._native = worker  # logging and print are routed to worker.log by engine_open

    signal.signal(signal.SIGINT, worker.interrupt)
    worker.write_message({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0],
                          "executable": sys.executable})
    worker.serve()
    # The engine closed stdin. Run atexit handlers, then exit without
    # waiting for threads a UDF left running (a non-daemon thread would
    # keep the interpreter, and Close, waiting until the engine kills it).
    import atexit
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
