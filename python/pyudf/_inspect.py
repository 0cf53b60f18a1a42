"""Listing a module's functions as the engine sees them, without opening any.

The engine's ``functions`` control request (Go's ``Module.Functions``, the
``pyudf inspect`` command) lists what a module offers: the same kind, func
type and declared types that opening each function would report, and
whether a scalar function is asynchronous.  No ``open`` runs; a class is
instantiated, as opening it would.
"""

import functools
import inspect

from .udf import UserDefinedFunction, _is_wrapper, is_async, signature


def functions(module):
    """Describe the functions of ``module``, in definition order.

    Returns a list of dicts: ``name``, ``kind``, ``func_type``, ``async``,
    ``input_types`` and ``result_type`` (DDL strings or ``None``), or ``name``
    and ``error`` (``"TypeError: ..."``) for a candidate whose signature
    cannot be read.  Candidates are the attributes that are udf/udaf/udtf/
    udtaf wrappers or function instances (wherever they were defined), and
    the public function classes, plain functions, partials and callable
    objects defined in the module itself (not the ones it imports).
    """
    out = []
    for name, obj in list(vars(module).items()):
        declared = _is_wrapper(obj) or isinstance(obj, UserDefinedFunction)
        if not declared and (name.startswith("_") or not _candidate(obj, module.__name__)):
            continue
        try:
            kind, _, _, input_types, result_type, func_type = signature(obj)
        except Exception as exc:  # one unreadable candidate does not hide the others
            out.append({"name": name, "error": "%s: %s" % (type(exc).__name__, exc)})
            continue
        out.append({"name": name, "kind": kind, "func_type": func_type,
                    "async": kind == "scalar" and is_async(obj),
                    "input_types": input_types, "result_type": result_type})
    return out


def _candidate(obj, module_name):
    if inspect.isclass(obj):
        return obj.__module__ == module_name and (
            issubclass(obj, UserDefinedFunction) or _pyflink_like(obj)) and not inspect.isabstract(obj)
    if isinstance(obj, functools.partial):
        return getattr(obj.func, "__module__", None) == module_name
    if inspect.isfunction(obj):
        return obj.__module__ == module_name
    if inspect.ismodule(obj) or inspect.isroutine(obj) or not callable(obj):
        return False
    return type(obj).__module__ == module_name or _pyflink_like(obj)  # a callable object


def _pyflink_like(obj):
    """A real PyFlink function class or instance: the methods, not our base class."""
    return (hasattr(obj, "open") and hasattr(obj, "close")
            and (hasattr(obj, "eval") or hasattr(obj, "create_accumulator")))
