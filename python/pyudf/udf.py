"""Defining UDFs, with PyFlink's API (``pyflink.table.udf``).

Scalar functions can be written five ways, all accepted by the engine::

    class Add(ScalarFunction):                 # 1. a ScalarFunction with eval
        def eval(self, a, b): return a + b
    add1 = udf(Add(), result_type=DataTypes.BIGINT())

    @udf(result_type='BIGINT')                  # 2. a decorated function
    def add2(a, b): return a + b

    add3 = udf(lambda a, b: a + b, result_type='BIGINT')     # 3. a lambda

    class Adder:                                # 4. a callable object
        def __call__(self, a, b): return a + b
    add4 = udf(Adder(), result_type='BIGINT')

    add5 = udf(functools.partial(f, k=1), result_type='BIGINT')  # 5. a partial

A function's type hints are read only when it declares no result type
(``result_type`` omitted, and for an aggregate no ``get_result_type``): then
they give both its input and result types.  A function that declares its
result type takes every type from its declaration, as PyFlink does, which
never reads annotations: undeclared inputs then convert by the caller's
values, whatever ``eval``'s annotations say.

Aggregate functions (:class:`AggregateFunction`, ``udaf``), table aggregate
functions (:class:`TableAggregateFunction`, ``udtaf``), table functions
(:class:`TableFunction`, ``udtf``) and asynchronous scalar functions
(:class:`AsyncScalarFunction`, or ``udf`` over an ``async def``) are declared
here too.
"""

import abc
import functools
import inspect
import os
import typing

from .types import infer_type, to_ddl

__all__ = [
    "FunctionContext", "UserDefinedFunction", "ScalarFunction", "AsyncScalarFunction",
    "TableFunction", "ImperativeAggregateFunction", "AggregateFunction", "TableAggregateFunction",
    "udf", "udtf", "udaf", "udtaf", "UserDefinedFunctionWrapper",
]


class FunctionContext:
    """What ``open`` receives: job parameters, the metric group, the archives."""

    def __init__(self, metric_group, job_parameters, archives=None):
        self._metric_group = metric_group
        self._job_parameters = dict(job_parameters or {})
        self._archives = dict(archives or {})  # target -> extracted directory

    def get_metric_group(self):
        """The group to register this function's metrics in."""
        return self._metric_group

    def get_job_parameter(self, key, default_value=None):
        """A job parameter set from Go (``Config.JobParameters``), or ``default_value``."""
        return self._job_parameters.get(key, default_value)

    def get_archive_dir(self, target=None):
        """The absolute path of the directory archive ``target`` was extracted
        into (``Config.Archives``; the target defaults to the archive's file
        name), or with no ``target`` the directory holding them all, which is
        the working directory of process-mode workers. Thread mode runs in the
        Go program's working directory, so a relative ``"data/model.bin"``
        works in process mode only; ``os.path.join(ctx.get_archive_dir("data"),
        "model.bin")`` works in both. Raises LookupError for an unknown target."""
        if not self._archives:
            raise LookupError("this engine has no archives (Config.Archives)")
        if target is None:
            return os.path.dirname(next(iter(self._archives.values())))
        try:
            return self._archives[target]
        except KeyError:
            raise LookupError("no archive with target %r; this engine's targets: %s"
                              % (target, ", ".join(sorted(self._archives)))) from None


class UserDefinedFunction(abc.ABC):
    """Base of user-defined functions: lifecycle hooks."""

    def open(self, function_context):
        """Called once per function instance before the first call."""

    def close(self):
        """Called once when the function instance is closed."""

    def is_deterministic(self):
        return True


class ScalarFunction(UserDefinedFunction):
    """One row in, one value out: implement ``eval``."""

    @abc.abstractmethod
    def eval(self, *args):
        """Compute the result for one row."""


class AsyncScalarFunction(UserDefinedFunction):
    """One row in, one value out, computed by a coroutine: implement ``async def eval``.

    The engine awaits each call to completion on an event loop of the calling
    Python thread (one per thread, kept for later calls); a call's deadline and
    cancellation interrupt it while it awaits.  ``udf`` over a plain
    ``async def`` function declares the same kind of function.
    """

    @abc.abstractmethod
    async def eval(self, *args):
        """Compute the result for one row (a coroutine)."""


class TableFunction(UserDefinedFunction):
    """One row in, zero or more rows out: ``eval`` returns or yields rows."""

    @abc.abstractmethod
    def eval(self, *args):
        """Yield the rows for one input row."""


class ImperativeAggregateFunction(UserDefinedFunction):
    """What aggregate and table aggregate functions share: an accumulator per
    group, created, fed rows and (optionally) retracted from and merged."""

    @abc.abstractmethod
    def create_accumulator(self):
        """A new, empty accumulator."""

    @abc.abstractmethod
    def accumulate(self, accumulator, *args):
        """Add one row to the accumulator."""

    def retract(self, accumulator, *args):
        raise NotImplementedError("retract is not implemented by %s" % type(self).__name__)

    def merge(self, accumulator, accumulators):
        raise NotImplementedError("merge is not implemented by %s" % type(self).__name__)

    def get_result_type(self):
        return None

    def get_accumulator_type(self):
        return None


class AggregateFunction(ImperativeAggregateFunction):
    """Many rows in, one value out, through an accumulator."""

    @abc.abstractmethod
    def get_value(self, accumulator):
        """The result for the accumulator."""


class TableAggregateFunction(ImperativeAggregateFunction):
    """Many rows in, zero or more rows out, through an accumulator.

    ``emit_value`` yields (or returns an iterable of) the group's rows: a
    ``Row``, tuple or list each, or for a one-column result a bare value.
    """

    @abc.abstractmethod
    def emit_value(self, accumulator):
        """The rows for the accumulator."""


class UserDefinedFunctionWrapper:
    """What ``udf``, ``udtf`` and ``udaf`` return: a function plus its signature.

    Calling the wrapper calls the function, so decorated functions stay
    usable from plain Python (and from pytest).
    """

    def __init__(self, func, kind, input_types, result_type, func_type="general",
                 deterministic=None, name=None, accumulator_type=None):
        if func_type not in ("general", "pandas", "arrow"):
            raise ValueError("func_type must be 'general', 'pandas' or 'arrow', not %r" % (func_type,))
        if input_types is not None and not isinstance(input_types, (list, tuple)):
            input_types = [input_types]
        self._func = func
        self._kind = kind
        self._input_types = input_types
        self._result_type = result_type
        self._accumulator_type = accumulator_type
        self._func_type = func_type
        self._deterministic = deterministic
        self._name = name or _function_name(func)
        functools.update_wrapper(self, func if inspect.isfunction(func) else type(func),
                                 updated=())

    def __call__(self, *args):
        if isinstance(self._func, UserDefinedFunction):
            return self._func.eval(*args)
        return self._func(*args)

    def __repr__(self):
        return "<%s function %s>" % (self._kind, self._name)


def _function_name(func):
    if isinstance(func, functools.partial):
        return _function_name(func.func)
    name = getattr(func, "__name__", None)
    return name if name and name != "<lambda>" else type(func).__name__


def _wrap(kind, f, input_types, result_type, func_type, deterministic, name, **extra):
    if f is None:  # used as a decorator with arguments
        return lambda g: UserDefinedFunctionWrapper(
            g, kind, input_types, result_type, func_type, deterministic, name, **extra)
    return UserDefinedFunctionWrapper(
        f, kind, input_types, result_type, func_type, deterministic, name, **extra)


def udf(f=None, input_types=None, result_type=None, deterministic=None, name=None,
        func_type="general", udf_type=None):
    """Declare a scalar function: ``udf(f, result_type=...)`` or ``@udf(result_type=...)``.

    ``func_type="pandas"`` declares a vectorized function over ``pd.Series``.
    An :class:`AsyncScalarFunction` or an ``async def`` function is an
    asynchronous scalar function, which cannot be a Pandas one.
    """
    func_type = udf_type or func_type
    if f is None:
        return lambda g: udf(g, input_types, result_type, deterministic, name, func_type)
    if func_type != "general" and is_async(f):
        raise ValueError("an asynchronous scalar function takes func_type 'general', not %r" % (func_type,))
    return _wrap("scalar", f, input_types, result_type, func_type, deterministic, name)


def is_async(f):
    """Whether ``f`` (a function, an instance or a wrapper) computes its result with a coroutine."""
    if _is_wrapper(f):
        f = f._func
    if isinstance(f, functools.partial):
        f = f.func
    if isinstance(f, AsyncScalarFunction) or (inspect.isclass(f) and issubclass(f, AsyncScalarFunction)):
        return True
    target = getattr(f, "eval", None) if hasattr(f, "open") and hasattr(f, "close") else None
    if target is None:
        target = f if inspect.isfunction(f) or inspect.ismethod(f) else getattr(f, "__call__", None)
    return inspect.iscoroutinefunction(target)


def udtf(f=None, input_types=None, result_types=None, deterministic=None, name=None):
    """Declare a table function producing rows of ``result_types``.

    ``result_types`` is a list of types, one per result column (named f0, f1, ...),
    or, as in PyFlink, a single type meaning one column.
    """
    return _wrap("table", f, input_types, result_types, "general", deterministic, name)


def udaf(f=None, input_types=None, result_type=None, accumulator_type=None,
         deterministic=None, name=None, func_type="general"):
    """Declare an aggregate function (``func_type="pandas"`` for a vectorized one)."""
    return _wrap("aggregate", f, input_types, result_type, func_type, deterministic,
                 name, accumulator_type=accumulator_type)


def udtaf(f=None, input_types=None, result_type=None, accumulator_type=None,
          deterministic=None, name=None, func_type="general"):
    """Declare a table aggregate function (a :class:`TableAggregateFunction`).

    There is no vectorized kind: ``func_type`` must be ``"general"``, as in PyFlink.
    """
    if func_type != "general":
        raise ValueError("a table aggregate function takes func_type 'general', not %r" % (func_type,))
    return _wrap("table aggregate", f, input_types, result_type, func_type, deterministic,
                 name, accumulator_type=accumulator_type)


def signature(obj):
    """Describe ``obj`` for the engine.

    Returns ``(kind, target, instance, input_types, result_type, func_type)``:
    ``target`` is what a row call invokes (for the aggregate kinds, the
    function object itself), ``instance`` the object with ``open``/``close``
    (or ``None``), types are DDL strings or ``None``.  Kinds: ``"scalar"``,
    ``"table"``, ``"aggregate"``, ``"table aggregate"``.  An asynchronous
    scalar function's target runs its coroutine to completion, so it is
    called like any other.  Accepts wrappers, function instances and
    subclasses (pyudf's or a real PyFlink's), callable objects, partials and
    plain functions.
    """
    wrapper = None
    if _is_wrapper(obj):
        wrapper, obj = obj, obj._func
    if inspect.isclass(obj) and issubclass(obj, UserDefinedFunction):
        obj = obj()
    # A real PyFlink function is not ours but has the same methods.
    is_udf = isinstance(obj, UserDefinedFunction) or (
        hasattr(obj, "open") and hasattr(obj, "close")
        and (hasattr(obj, "eval") or hasattr(obj, "create_accumulator")))
    kind = _instance_kind(obj) if is_udf else None
    if kind is None and wrapper is not None:
        kind = getattr(wrapper, "_kind", None) or _pyflink_kind(wrapper)
    if kind is None:
        if not (is_udf or callable(obj)):
            raise TypeError("%r is not a function" % (obj,))
        kind = "scalar"
    aggregate = kind in ("aggregate", "table aggregate")
    instance = obj if is_udf else None
    target = obj.eval if is_udf and not aggregate else obj
    input_types = getattr(wrapper, "_input_types", None)
    result_type = getattr(wrapper, "_result_type", None)
    func_type = getattr(wrapper, "_func_type", "general") or "general"
    if aggregate and is_udf and result_type is None and hasattr(obj, "get_result_type"):
        result_type = obj.get_result_type()
    hinted_inputs = hinted_result = None
    if result_type is None:  # nothing declared: the annotations give the types
        if aggregate and is_udf:
            hinted_inputs = _hints(obj.accumulate, skip=1)[0]
            if kind == "aggregate":
                hinted_result = _hints(obj.get_value, skip=1)[1]
        else:
            hinted_inputs, hinted_result = _hints(target)
    if input_types is None:
        input_types = hinted_inputs
    else:
        input_types = [to_ddl(t) for t in input_types]
    if result_type is not None and not isinstance(result_type, (list, tuple)) and (
            kind == "table" or (kind == "table aggregate" and not _is_row(result_type))):
        # udtf(result_types=DataTypes.BIGINT()): as in PyFlink, a single type (a ROW
        # type too) is one result column, and each value the function yields is a
        # row; a table aggregate's ROW result is its rows' type, another type one column
        result_type = [result_type]
    if isinstance(result_type, (list, tuple)):  # udtf(result_types=[...]): columns f0, f1 ...
        result_type = "ROW<%s>" % ", ".join(
            "f%d %s" % (i, to_ddl(t)) for i, t in enumerate(result_type))
    result_type = to_ddl(result_type) if result_type is not None else hinted_result
    if kind == "scalar" and is_async(target):
        if func_type != "general":
            raise ValueError("an asynchronous scalar function takes func_type 'general', not %r" % (func_type,))
        from ._async import run_to_completion
        target = run_to_completion(target)
    elif kind == "aggregate" and func_type == "pandas" and is_udf:
        target = _vectorized_aggregate(obj)
    return kind, target, instance, input_types, result_type, func_type


def has_life_cycle(instance):
    """Whether ``instance``'s class defines its own ``open`` or ``close``.

    The ones of ``UserDefinedFunction`` (ours or PyFlink's) do nothing, so an
    instance that only inherits them makes nothing in ``open`` that could be
    bound to the thread it ran on (the engine's ``Config.Affinity``).
    """
    for name in ("open", "close"):
        for cls in type(instance).__mro__:
            if name in vars(cls):
                if cls.__name__ != "UserDefinedFunction":
                    return True
                break
    return False


def _instance_kind(obj):
    """The kind of a function instance (pyudf's or a real PyFlink's), or None."""
    if isinstance(obj, TableFunction):
        return "table"
    if isinstance(obj, (TableAggregateFunction, AggregateFunction)) or hasattr(obj, "create_accumulator"):
        return "table aggregate" if hasattr(obj, "emit_value") else "aggregate"
    return None


def _is_row(t):
    ddl = to_ddl(t)
    return ddl.upper().startswith("ROW")


def _vectorized_aggregate(function):
    """A Pandas UDAF written as an AggregateFunction, as one call over the
    group's columns (as PyFlink runs it): a fresh accumulator, one
    ``accumulate`` with a ``pd.Series`` per column, then ``get_value``."""
    def reduce(*columns):
        accumulator = function.create_accumulator()
        function.accumulate(accumulator, *columns)
        return function.get_value(accumulator)
    reduce.__name__ = reduce.__qualname__ = type(function).__name__
    return reduce


def _is_wrapper(obj):
    # Ours, or a real PyFlink wrapper (UserDefinedScalarFunctionWrapper & co.).
    return isinstance(obj, UserDefinedFunctionWrapper) or (
        hasattr(obj, "_func") and hasattr(obj, "_result_type")
        and type(obj).__name__.startswith("UserDefined"))


def _pyflink_kind(wrapper):
    name = type(wrapper).__name__
    if "Table" in name:
        return "table"
    if "Aggregate" in name:
        return "table aggregate" if getattr(wrapper, "_is_table_aggregate", False) else "aggregate"
    return "scalar"


def _hints(target, skip=0):
    """(input DDLs or None, result DDL or None) from the target's annotations,
    leaving out the first ``skip`` parameters (an aggregate's accumulator)."""
    func = target.func if isinstance(target, functools.partial) else target
    if not inspect.isfunction(func) and not inspect.ismethod(func):
        func = getattr(func, "__call__", None)
    try:
        hints = typing.get_type_hints(func)
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError, NameError):
        return None, None
    result = infer_type(hints["return"]) if "return" in hints else None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][skip:]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None, result
    inputs = [infer_type(hints[p.name]) if p.name in hints else None for p in positional]
    return (inputs if inputs and all(inputs) else None), result
