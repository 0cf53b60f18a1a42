"""A process-mode worker: one Python process that runs UDFs for a Go engine.

The Go engine (``engine.Config{Mode: engine.Process}``) starts N of these from
the configured interpreter, with the runtime package written to a cache
directory, and talks to each over its stdin and stdout. The worker answers
each request before reading the next one. The wire layout (engine/process.go
describes the same; keep the two in step), little endian, ``size`` counting
the bytes after it::

    request = u32 size | u8 op | u8 len(method) | u16 0 | u32 count | i64 function |
              method | zeros to a multiple of 8 | data
    reply   = u32 size | u8 status | u32 len(logs) | logs | body

``data`` starts 8-byte aligned in the message (after ``size``), so that the
Arrow buffers of a batch read from it in place are aligned.

Requests (``op``):

``OP_CALL`` (1)
    ``function(*args)`` for one row: ``count`` arguments in ``data``, in the
    engine's typed row encoding (:mod:`pyudf._wire`, the bytes the thread
    mode's C shim reads, so a UDF sees the same objects in both modes); the
    reply's body is the encoded result.
``OP_CALL_BATCH`` (2)
    ``function(batch, None, *extra)``: ``data`` holds ``count`` int64
    extras, then the batch as an Arrow IPC stream: a Pandas UDAF, or an
    aggregate's ``accumulate_batch``; the result is encoded.
``OP_EVAL`` (3)
    A batch evaluation: ``data`` is ``u8 len(mode) | mode`` (rows,
    rows_errors, map, pandas, arrow, pandas_map, explode) padded with zeros
    to a multiple of 8, the batch (``count`` bytes of Arrow IPC) and the
    result type (an IPC stream of an empty one-field batch); the reply's
    body is a batch with column ``result`` (and ``errors``).
``OP_CONTROL`` (4)
    ``data`` is JSON ``{"request": ..., "as": handle}``: a control-plane
    request for :func:`pyudf._host.control` (load code, open or close a
    function, read metrics); the reply's body is its JSON answer. Module and
    function ids in requests and replies are the Go engine's handles
    (``as``), so that a restarted worker replaying the same requests answers
    to the same ids.
``OP_PING`` (5)
    Nothing; sent after an interrupted call, so that a late interrupt lands
    here instead of in the next call.

The reply's ``status`` is ``OK`` (0: the body is the result), ``ERROR`` (1:
the body is JSON type, message, traceback and the failing ``row``),
``CANCELLED`` (2: empty body) or ``FATAL`` (3: as ERROR). ``logs``, if any,
is a JSON array of ``[level, logger, message]``. The worker's first message
is an ``OK`` reply with a JSON body ``{"ready": true, ...}``.

Any exception of the request, even
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
request that produced them (``logs``), and the
engine hands them to ``log/slog`` before it returns, as in thread mode.
Whatever reaches the process's stderr otherwise (C code, a dying
interpreter) is forwarded line by line.
"""

import _signal
import json
import os
import select
import signal
import struct
import sys
import time

from . import _host, _wire

_U32 = struct.Struct("<I")
_REQUEST = struct.Struct("<BBxxIq")  # op, len(method), count, function: after size
_REPLY = struct.Struct("<IBI")     # size, status, len(logs)
OP_CALL, OP_CALL_BATCH, OP_EVAL, OP_CONTROL, OP_PING = 1, 2, 3, 4, 5
OK, ERROR, CANCELLED, FATAL = 0, 1, 2, 3
EXIT_OUT_OF_MEMORY = 70


class Worker:
    """Serves requests from ``inp`` and writes replies to ``out`` (binary streams)."""

    def __init__(self, inp, out, spin_ns=0):
        self._in = inp
        self._out = out
        self._spin_ns = spin_ns  # how long to poll for a request before blocking (Config.ProcessSpin)
        self._poll = None
        self._modules = {}    # Go handle -> the host's module id
        self._functions = {}  # Go handle -> (host function id, {method: callable})
        self._targets = {}    # request bytes naming function and method -> callable
        self.busy = False     # a request is being handled: SIGINT raises Cancelled
        self.interrupt_pending = False  # a SIGINT came while not busy
        self.logs = []        # (level, logger, message) of the request in progress
        self._pid = os.getpid()

    def log(self, level, logger, message):
        """Keep a log record or line of print output for the reply (as ``_pyudf_host.log``)."""
        self.logs.append((level, logger, message))

    # --- framing ------------------------------------------------------------

    def read_message(self):
        """The next message (the bytes after its size), or None at end of input."""
        if self._spin_ns > 0:
            self._spin()
        head = self._in.read(4)
        if len(head) < 4:
            return None
        (n,) = _U32.unpack(head)
        data = self._in.read(n)
        if len(data) != n:
            raise EOFError("the engine closed the pipe in the middle of a message")
        return data

    def _spin(self):
        """Poll the input for up to ``spin_ns`` without blocking, so that a
        request that comes soon is read without this process sleeping (and
        its vCPU waking up); then the read blocks as usual. It yields the
        CPU between polls, so that it takes no core another thread needs.
        Only ever a delay: data already in the input buffer is read
        afterwards anyway (the engine sends a request only after the
        previous reply)."""
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self._in.fileno(), select.POLLIN)
        ready, now, pass_cpu = self._poll.poll, time.monotonic_ns, os.sched_yield
        deadline = now() + self._spin_ns
        while not ready(0) and now() < deadline:
            pass_cpu()  # a busy machine's other threads (the engine's) run first

    def write_message(self, status, body=b""):
        """Write a reply with this request's logs (and forget them)."""
        logs = b""
        if self.logs:
            logs, self.logs = json.dumps(self.logs).encode(), []
        head = _REPLY.pack(5 + len(logs) + len(body), status, len(logs))
        if len(body) <= 1 << 16:  # the common small reply in one write
            self._write_all(head + logs + body)
        else:  # a large one without copying it
            self._write_all(head + logs)
            self._write_all(body)

    def _write_all(self, data):
        # The output is unbuffered (see main): one write call, one system
        # call, which may write part of a large reply.
        written = self._out.write(data)
        if written != len(data):
            view = memoryview(data)
            while written < len(view):
                written += self._out.write(view[written:])

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
        # (_signal's, not signal's: that one makes a set of enums of the mask.)
        _signal.pthread_sigmask(signal.SIG_BLOCK, ())
        if self.interrupt_pending:
            self.interrupt_pending = False
            raise _host.Cancelled("interrupted by the Go caller")

    def serve(self):
        """Answer requests until the engine closes stdin."""
        while True:
            message = self.read_message()
            if message is None:
                return
            try:
                self.busy = True
                try:
                    self._check_interrupt()
                    status, body = OK, self.handle(message)
                finally:
                    self.busy = False
            except _host.Cancelled:
                status, body = CANCELLED, b""
            except MemoryError as exc:
                self._only_in_worker()
                self.write_message(FATAL, _describe(exc, -1))
                os._exit(EXIT_OUT_OF_MEMORY)
            except BaseException as exc:  # the UDF's (or the request's) failure goes back to Go
                # SystemExit and KeyboardInterrupt too: as in thread mode, a
                # UDF's exception fails its call, not the worker.
                status, body = ERROR, _describe(exc, -1)
            self._only_in_worker()
            self.write_message(status, body)

    def _only_in_worker(self):
        """End a process forked by a UDF that returned from it: it must not answer."""
        if os.getpid() != self._pid:
            os._exit(0)

    def handle(self, message):
        """One request (a message without its size): returns the reply's body."""
        op, n, count, function = _REQUEST.unpack_from(message)
        end = 16 + n  # function and method: message[8:end]
        start = 16 + ((n + 7) & ~7)  # data
        if op == OP_CALL:
            fn = self._targets.get(message[8:end])
            if fn is None:
                fn = self._targets[message[8:end]] = self._target(function, message[16:end])
            return _encode_result(fn(*_wire.decode_args(message, count, start)))
        data = memoryview(message)[start:]
        if op == OP_EVAL:
            return self._eval(self._target(function, message[16:end]), count, data)
        if op == OP_CALL_BATCH:
            fn = self._target(function, message[16:end])
            extra = struct.unpack_from("<%dq" % count, data)
            return _encode_result(fn(_read_batch(data[8 * count:]), None, *extra))
        if op == OP_CONTROL:
            self._targets.clear()  # functions open and close here
            return json.dumps(self._control(json.loads(bytes(data)))).encode()
        if op == OP_PING:
            return b""
        raise ValueError("unknown worker request %r" % op)

    def _target(self, function, method):
        method = method.decode()
        entry = self._functions.get(function)
        if entry is None:
            raise RuntimeError("function %d is not open in this worker" % function)
        fn = entry[1].get(method)
        if fn is None:
            raise RuntimeError("function %d has no method %r" % (function, method))
        return fn

    def _eval(self, fn, size, data):
        from . import _batch
        import pyarrow as pa
        n = data[0]
        mode = bytes(data[1:1 + n]).decode()
        start = (n + 8) & ~7  # the mode field (1 + n bytes) is padded to a multiple of 8
        batch = _read_batch(data[start:start + size])
        result_type = _read_batch(data[start + size:]).schema.field(0).type
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
            raise _Failed(exc.__cause__, exc.row) from None
        columns, names = [result], ["result"]
        if errors is not None:
            columns.append(errors)
            names.append("errors")
        return _write_batch(pa.RecordBatch.from_arrays(columns, names=names))

    def _control(self, header):
        req = dict(header["request"])
        handle = header.get("as")
        op = req["op"]
        if op in ("function", "functions"):
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


class _Failed(Exception):
    """Row ``row`` of a batch raised ``exc``: the request's error names that row."""

    def __init__(self, exc, row):
        super().__init__(exc, row)
        self.exc, self.row = exc, row


def _describe(exc, row):
    """An ERROR or FATAL reply's body."""
    if isinstance(exc, _Failed):
        exc, row = exc.exc, exc.row
    type_name, message, traceback = _host.describe_exception(exc)
    return json.dumps({"type": type_name, "message": message, "traceback": traceback, "row": row}).encode()


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
    """Entry point: ``--memory-limit BYTES`` caps the address space (0: none);
    ``--spin-ns N`` polls for each request for N ns before blocking (0: none)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    limit = spin_ns = 0
    if "--memory-limit" in argv:
        limit = int(argv[argv.index("--memory-limit") + 1])
    if "--spin-ns" in argv:
        spin_ns = int(argv[argv.index("--spin-ns") + 1])
    if limit > 0:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The protocol owns the original stdin and stdout; user code's print (and
    # C code writing to fd 1) goes to stderr instead.
    proto_in = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)  # Worker.write_message writes whole replies
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    worker = Worker(proto_in, proto_out, spin_ns)
    _host._native = worker  # logging and print are routed to worker.log by engine_open

    signal.signal(signal.SIGINT, worker.interrupt)
    worker.write_message(OK, json.dumps({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0],
                                         "executable": sys.executable}).encode())
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
