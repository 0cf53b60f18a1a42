"""The engine's side of the interpreter: everything Go asks of Python outside the hot path.

Go calls :func:`control` with a JSON request and gets a JSON reply: open an
engine, load user code, resolve a function (its callable is then fetched by
the C shim with :func:`take` and called directly, row by row), close things,
read metrics.  The C shim also uses :func:`describe_exception` to turn an
exception into (type, message, traceback) and :func:`normalize` for results
of types it does not convert itself (numpy scalars, foreign Row classes ...).

Logging records and ``print`` output are forwarded to Go's ``log/slog``
through the built-in module ``_pyudf_host`` when running embedded.
"""

import functools
import importlib
import importlib.util
import io
import itertools
import json
import linecache
import logging
import os
import sys
import threading
import traceback

from . import _deps
from ._aggregate import KeyedAggregate
from .data_view import ListView, MapView, plain
from .metrics import MetricGroup, MetricRegistry
from .row import Row
from .udf import FunctionContext, has_life_cycle, signature

try:
    import _pyudf_host as _native
except ImportError:  # under plain pytest, not embedded
    _native = None


class Cancelled(BaseException):
    """Raised inside a UDF when the Go caller's context is cancelled.

    A BaseException, so ``except Exception`` in user code does not swallow it.
    The host raises it again every few milliseconds until the call ends, and
    embedded, the C shim gives this class an ``__init__`` (``pyudf_trap_ready``
    in call.h): from the second time on, creating it (which happens when a
    handler catches it) traps the call, so that every following line raises
    it again and nothing can swallow it.  The call then reports cancellation
    to Go even if it returns a value.
    """


class ResultError(TypeError, ValueError):
    """What the engine raises about a UDF's result, not the UDF itself: a
    value that does not convert to the declared type, a Pandas UDF's result
    of the wrong length or kind, a missing ROW field. ``row``: the batch row
    it is about, or None.

    Go reports it as a ``*bridge.ConversionError`` (not a PythonError), so a
    caller can tell "my Python raised" from "my Python returned something
    invalid"; the C shim and the process-mode worker turn the TypeError,
    ValueError or OverflowError of a result's conversion into one
    (:func:`as_result_error`). A TypeError and a ValueError, for Python
    code that catches either."""

    def __init__(self, message, row=None):
        super().__init__(message if row is None else "row %d: %s" % (row, message))
        self.row = row
        self.reason = message


def as_result_error(exc):
    """``exc``, raised while converting a result, as a :class:`ResultError`
    (a TypeError, ValueError or OverflowError; anything else, a MemoryError
    say, is returned as it is)."""
    if isinstance(exc, ResultError) or not isinstance(exc, (TypeError, ValueError, OverflowError)):
        return exc
    message = str(exc)
    if message.startswith("pyudf: "):  # the C shim's words: "pyudf: result nested deeper ..."
        message = message[len("pyudf: "):]
    if message.startswith("result "):
        message = "result: " + message[len("result "):]
    return ResultError(message if message.startswith("result") else "result: " + message)


# --- objects handed to the C shim by id -------------------------------------

_ids = itertools.count(1)
_objects = {}


def _keep(obj):
    key = next(_ids)
    _objects[key] = obj
    return key


def take(key):
    """Remove and return the object registered under ``key`` (called from C)."""
    return _objects.pop(key)


# --- engines ----------------------------------------------------------------

class _Function:
    def __init__(self, name, instance, state=None):
        self.name = name
        self.instance = instance
        self.state = state  # the KeyedAggregate of an aggregate function


class _Engine:
    def __init__(self, job_parameters, archives=None):
        self.job_parameters = dict(job_parameters or {})
        self.archives = dict(archives or {})  # archive target -> extracted directory
        self.metrics = MetricRegistry()
        self.modules = {}    # module id -> module
        self.functions = {}  # function id -> _Function
        self.module_names = []


_engines = {}
_lock = threading.Lock()
_module_ids = itertools.count(1)
_function_ids = itertools.count(1)


def control(request):
    """Run one JSON request from Go and return the JSON reply."""
    req = json.loads(request)
    op = req.pop("op")
    handler = _OPS.get(op)
    if handler is None:
        raise ValueError("unknown control operation %r" % op)
    return json.dumps(handler(**req))


def _engine_open(engine, job_parameters, path, log_level, dependencies=None):
    _deps.open_engine(engine, dependencies)  # python files and requirements, in front
    for entry in path:
        if entry not in sys.path:
            sys.path.append(entry)
    _install_log_bridge(log_level)
    with _lock:
        _engines[engine] = _Engine(job_parameters, (dependencies or {}).get("archives"))
    return {"python": sys.version.split()[0], "executable": sys.executable,
            "prefix": sys.prefix}


def _engine_close(engine):
    state = _engines.pop(engine, None)
    _deps.close_engine(engine)
    errors = []
    if state is not None:
        for fid in list(state.functions):
            try:
                _function_close(engine, fid, state)
            except Exception as exc:  # close every function; report the first failures
                errors.append("%s: %s" % (type(exc).__name__, exc))
        for module in state.modules.values():
            if sys.modules.get(module.__name__) is module and module.__name__ in state.module_names:
                del sys.modules[module.__name__]
    return {"errors": errors}


def _state(engine):
    state = _engines.get(engine)
    if state is None:
        raise RuntimeError("engine %d is closed" % engine)
    return state


def _add_module(engine, module, owned):
    state = _state(engine)
    mid = next(_module_ids)
    state.modules[mid] = module
    if owned:
        state.module_names.append(module.__name__)
    return {"module": mid, "name": module.__name__}


_user_modules = set()  # names of modules that LoadSource/LoadFile created


def _module_name(stem, path=None):
    """The sys.modules name for user code from file ``stem`` (at ``path``, for a file).

    The stem itself, so that objects pickled from the module (an aggregate's
    accumulators) unpickle in another worker or process, unless an import of
    that name would find something else: a module already imported, the
    standard library's, or one on sys.path (``json.py``, ``pyarrow.py``,
    ``numpy.py`` must not take the name of the package, or every later
    import of it, pyudf's own included, gets the user's module). Such code is
    registered as ``pyudf_user_<stem>``, a name as stable, so pickle finds
    it in every worker that loaded it.
    """
    if not stem.isidentifier():
        return "pyudf_user_%d_module" % next(_module_ids)
    if stem in _user_modules or not _importable(stem, path):
        _user_modules.add(stem)
        return stem
    safe = "pyudf_user_" + stem
    if safe in _user_modules or not _importable(safe, path):
        _user_modules.add(safe)
        return safe
    return "pyudf_user_%d_%s" % (next(_module_ids), stem)


def _importable(name, path=None):
    """Whether ``import name`` would find a module other than the file at ``path``."""
    if name in sys.modules or name in getattr(sys, "stdlib_module_names", ()) or name in sys.builtin_module_names:
        return True
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return True  # something answers to the name, if unhelpfully: keep off it
    if spec is None:
        return False
    origin = getattr(spec, "origin", None)
    return not (path and origin and os.path.abspath(origin) == path)


def _run_module(engine, module, execute):
    """Register ``module`` in sys.modules, run its code, and own it; undo on failure."""
    _state(engine)
    sys.modules[module.__name__] = module
    try:
        execute(module)
    except BaseException:
        sys.modules.pop(module.__name__, None)
        raise
    return _add_module(engine, module, owned=True)


def _load_source(engine, name, source):
    filename = name if name.endswith(".py") else name + ".py"
    modname = _module_name(os.path.splitext(os.path.basename(filename))[0])
    spec = importlib.util.spec_from_loader(modname, loader=None, origin=filename)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec")
    return _run_module(engine, module, lambda m: exec(code, m.__dict__))


def _load_file(engine, path):
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError("no such file: %s" % path)
    modname = _module_name(os.path.splitext(os.path.basename(path))[0], path)
    spec = importlib.util.spec_from_file_location(modname, path)
    return _run_module(engine, importlib.util.module_from_spec(spec), spec.loader.exec_module)


def _import(engine, module):
    _state(engine)
    return _add_module(engine, importlib.import_module(module), owned=False)


def _function(engine, module, name, pinned=False, datastream=None):
    state = _state(engine)
    mod = state.modules[module]
    try:
        obj = getattr(mod, name)
    except AttributeError:
        return {"missing": True}
    from . import _datastream
    if datastream is not None:  # Module.Operator: options of the DataStream operator
        return _datastream_open(state, name, obj, datastream)
    if _datastream.kind_of(obj) == "aggregate":  # Module.Aggregate drives it like a Table one
        obj = _datastream.TableShaped(obj() if isinstance(obj, type) else obj)
    elif _datastream.kind_of(obj) is not None:
        return {"function": 0, "kind": "datastream", "func_type": "general"}
    kind, target, instance, input_types, result_type, func_type = signature(obj)
    if instance is not None:
        context = FunctionContext(MetricGroup(state.metrics, function=name), state.job_parameters,
                                  state.archives)
        instance.open(context)
    fid = next(_function_ids)
    reply = {"function": fid, "kind": kind, "func_type": func_type, "life_cycle": instance is not None and has_life_cycle(instance),
             "input_types": input_types, "result_type": result_type}
    if kind in ("aggregate", "table aggregate") and func_type == "general":
        keyed = KeyedAggregate(target, table=kind == "table aggregate")
        state.functions[fid] = _Function(name, instance, keyed)
        methods = _AGGREGATE_METHODS + (_PINNED_METHODS if pinned else ())
        reply["methods"] = {m: _keep(getattr(keyed, m)) for m in methods}
        return reply
    state.functions[fid] = _Function(name, instance)
    if kind == "aggregate" and func_type == "pandas":
        from . import _batch  # a Pandas UDAF is called with a batch's addresses
        target = functools.partial(_batch.reduce_pandas, target)
    elif kind == "table":
        from . import _batch  # a table function's rows are collected into a list
        target = functools.partial(_batch.table_rows, target)
    reply["object"] = _keep(target)
    return reply


def _datastream_open(state, name, obj, options):
    from . import _datastream
    op = _datastream.open_operator(obj, name, MetricGroup(state.metrics, function=name),
                                   state.job_parameters, options)
    fid = next(_function_ids)
    state.functions[fid] = _Function(name, op.function)
    return {"function": fid, "kind": "datastream", "func_type": op.kind, "keyed": op.keyed,
            "life_cycle": _datastream.has_life_cycle(op.function),
            "methods": {m: _keep(getattr(op, attr)) for m, attr in _datastream.METHODS.items()}}


_AGGREGATE_METHODS = ("accumulate", "retract", "merge", "get_value", "remove", "size",
                      "accumulate_batch", "snapshot", "restore", "snapshot_key", "restore_key")
# ... and for the sub-interpreter pool ("pinned": each key's accumulator in one interpreter)
_PINNED_METHODS = ("export", "merge_from", "accumulate_rows", "join_snapshots", "split_snapshot",
                   "split_batch")


def _function_close(engine, function, state=None):
    state = state or _engines.get(engine)
    entry = state.functions.pop(function, None) if state else None
    if entry is not None and entry.state is not None:
        entry.state.clear()
    if entry is not None and entry.instance is not None:
        entry.instance.close()
    return {}


def _functions(engine, module):
    from . import _inspect
    return {"functions": _inspect.functions(_state(engine).modules[module])}


def _metrics(engine):
    return {"metrics": _state(engine).metrics.snapshot()}


_OPS = {
    "engine_open": _engine_open,
    "engine_close": _engine_close,
    "load_source": _load_source,
    "load_file": _load_file,
    "import": _import,
    "function": _function,
    "function_close": _function_close,
    "functions": _functions,
    "metrics": _metrics,
}


# --- errors and values ------------------------------------------------------

def describe_exception(exc):
    """(qualified type name, message, formatted traceback) of an exception.

    The traceback shows the user's frames only (see :func:`user_traceback`),
    the same text in thread and process mode."""
    cls = type(exc)
    module = cls.__module__
    type_name = cls.__qualname__ if module in ("builtins", "__main__") else module + "." + cls.__qualname__
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable %s>" % cls.__qualname__
    try:
        text = user_traceback(exc)
    except Exception:  # never fail to describe: fall back to Python's own text
        text = "".join(traceback.format_exception(cls, exc, exc.__traceback__))
    return type_name, message, text


# Frames in these directories are pyudf's own (the runtime package and its
# pyflink compatibility package: "<embedded>/pyudf/" embedded, the extracted
# runtime directory in a process-mode worker) and are left out of tracebacks.
_HERE = globals().get("__file__") or __spec__.origin  # embedded modules have no __file__
_RUNTIME_DIRS = tuple(os.path.join(os.path.dirname(os.path.dirname(_HERE)), package) + os.sep
                      for package in ("pyudf", "pyflink"))


def user_traceback(exc):
    """The formatted traceback of ``exc`` and its chained exceptions, without
    pyudf's own frames (the engine's wrappers, the worker's request loop):
    what the user's code did, and the exception lines."""
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    _drop_runtime_frames(te, set())
    return "".join(te.format())


def _drop_runtime_frames(te, seen):
    if te is None or id(te) in seen:
        return
    seen.add(id(te))
    frames = [f for f in te.stack if not (f.filename or "").startswith(_RUNTIME_DIRS)]
    te.stack = traceback.StackSummary.from_list(frames)
    if not frames:
        te.exc_traceback = None  # no "Traceback (most recent call last):" over no frames
    _drop_runtime_frames(te.__cause__, seen)
    _drop_runtime_frames(te.__context__, seen)
    for nested in getattr(te, "exceptions", None) or ():
        _drop_runtime_frames(nested, seen)


def normalize(obj):
    """Turn a result the C shim does not know into one it does, or raise TypeError."""
    cls = type(obj)
    module = cls.__module__
    if module == "numpy":
        if hasattr(obj, "tolist"):
            return obj.tolist()  # numpy scalars and arrays
    if module.startswith("pandas"):
        if obj is getattr(sys.modules.get("pandas"), "NA", object()) or cls.__name__ == "NaTType":
            return None
        if hasattr(obj, "tolist"):
            return obj.tolist()
    if cls.__name__ == "Row" and hasattr(obj, "_values"):  # pyflink.common.Row
        return Row.from_fields(getattr(obj, "_fields", None), tuple(obj._values))
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (ListView, MapView)):
        return plain(obj)
    raise TypeError("cannot convert a Python %s to a SQL value" % cls.__qualname__)


# --- logging and print ------------------------------------------------------

class _HostHandler(logging.Handler):
    """Sends each record to Go's slog with its logger name and level."""

    def emit(self, record):
        try:
            message = self.format(record)
            _native.log(record.levelno, record.name, message)
        except Exception:
            self.handleError(record)


class _HostStream(io.TextIOBase):
    """A text stream that sends each complete line to Go's slog."""

    def __init__(self, name, level):
        super().__init__()
        self._name = name
        self._level = level
        self._partial = ""
        self._lock = threading.Lock()

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
        for line in lines:
            _native.log(self._level, self._name, line)
        return len(text)

    def flush(self):
        with self._lock:
            line, self._partial = self._partial, ""
        if line:
            _native.log(self._level, self._name, line)


_bridge_installed = False


def _install_log_bridge(level):
    """Route logging and print to Go (once per interpreter); ``level`` is the lowest Go logs."""
    global _bridge_installed
    root = logging.getLogger()
    root.setLevel(level)
    if _native is None or _bridge_installed:
        return
    _bridge_installed = True
    handler = _HostHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.handlers[:] = [handler]
    sys.stdout = _HostStream("stdout", logging.INFO)
    sys.stderr = _HostStream("stderr", logging.WARNING)
