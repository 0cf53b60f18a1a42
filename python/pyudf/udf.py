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

Without ``result_type`` the type hints of the function (or of ``eval``) are
used.  Aggregate and table functions are declared here too; the engine runs
them from the later aggregate/table support.
"""

import abc
import functools
import inspect
import os
import typing

from .types import infer_type, to_ddl

__all__ = [
    "FunctionContext", "UserDefinedFunction", "ScalarFunction", "TableFunction",
    "AggregateFunction", "udf", "udtf", "udaf", "UserDefinedFunctionWrapper",
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


class TableFunction(UserDefinedFunction):
    """One row in, zero or more rows out: ``eval`` returns or yields rows."""

    @abc.abstractmethod
    def eval(self, *args):
        """Yield the rows for one input row."""


class AggregateFunction(UserDefinedFunction):
    """Many rows in, one value out, through an accumulator."""

    @abc.abstractmethod
    def create_accumulator(self):
        """A new, empty accumulator."""

    @abc.abstractmethod
    def accumulate(self, accumulator, *args):
        """Add one row to the accumulator."""

    @abc.abstractmethod
    def get_value(self, accumulator):
        """The result for the accumulator."""

    def retract(self, accumulator, *args):
        raise NotImplementedError("retract is not implemented by %s" % type(self).__name__)

    def merge(self, accumulator, accumulators):
        raise NotImplementedError("merge is not implemented by %s" % type(self).__name__)

    def get_result_type(self):
        return None

    def get_accumulator_type(self):
        return None


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
    """
    return _wrap("scalar", f, input_types, result_type, udf_type or func_type,
                 deterministic, name)


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


def signature(obj):
    """Describe ``obj`` for the engine.

    Returns ``(kind, target, instance, input_types, result_type, func_type)``:
    ``target`` is what a row call invokes, ``instance`` the object with
    ``open``/``close`` (or ``None``), types are DDL strings or ``None``.
    Accepts wrappers, ScalarFunction instances and subclasses, callable
    objects, partials and plain functions.
    """
    wrapper = None
    if _is_wrapper(obj):
        wrapper, obj = obj, obj._func
    if inspect.isclass(obj) and issubclass(obj, UserDefinedFunction):
        obj = obj()
    # A real PyFlink ScalarFunction is not ours but has the same methods.
    is_udf = isinstance(obj, UserDefinedFunction) or (
        hasattr(obj, "eval") and hasattr(obj, "open") and hasattr(obj, "close"))
    if isinstance(obj, TableFunction):
        kind = "table"
    elif isinstance(obj, AggregateFunction):
        kind = "aggregate"
    elif wrapper is not None:
        kind = getattr(wrapper, "_kind", None) or _pyflink_kind(wrapper)
    elif is_udf or callable(obj):
        kind = "scalar"
    else:
        raise TypeError("%r is not a function" % (obj,))
    instance = obj if is_udf else None
    target = obj.eval if is_udf and kind != "aggregate" else obj
    input_types = getattr(wrapper, "_input_types", None)
    result_type = getattr(wrapper, "_result_type", None)
    func_type = getattr(wrapper, "_func_type", "general") or "general"
    if kind == "aggregate" and is_udf:
        if result_type is None and hasattr(obj, "get_result_type"):
            result_type = obj.get_result_type()
        hinted_inputs, hinted_result = _hints(obj.accumulate, skip=1)
    else:
        hinted_inputs, hinted_result = _hints(target)
    if input_types is None:
        input_types = hinted_inputs
    else:
        input_types = [to_ddl(t) for t in input_types]
    if kind == "table" and result_type is not None and not isinstance(result_type, (list, tuple)):
        # udtf(result_types=DataTypes.BIGINT()): as in PyFlink, a single type (a ROW
        # type too) is one result column, and each value the function yields is a row
        result_type = [result_type]
    if isinstance(result_type, (list, tuple)):  # udtf(result_types=[...]): columns f0, f1 ...
        result_type = "ROW<%s>" % ", ".join(
            "f%d %s" % (i, to_ddl(t)) for i, t in enumerate(result_type))
    result_type = to_ddl(result_type) if result_type is not None else hinted_result
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
        return "aggregate"
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
