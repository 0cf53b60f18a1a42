import json
import sys

import pytest

from pyudf import _host
from pyudf._bootstrap import EmbeddedFinder
from pyudf.row import Row


def control(**request):
    return json.loads(_host.control(json.dumps(request)))


def test_engine_lifecycle_through_control():
    control(op="engine_open", engine=9001, job_parameters={"p": "v"}, path=[], log_level=20)
    module = control(op="load_source", engine=9001, name="t.py", source=(
        "from pyudf import udf, ScalarFunction\n"
        "class F(ScalarFunction):\n"
        "    def open(self, ctx):\n"
        "        self.p = ctx.get_job_parameter('p')\n"
        "        ctx.get_metric_group().counter('c').inc()\n"
        "    def eval(self, x):\n"
        "        return self.p + x\n"
        "f = udf(F(), result_type='STRING')\n"))
    described = control(op="function", engine=9001, module=module["module"], name="f")
    assert described["kind"] == "scalar" and described["result_type"] == "STRING"
    assert _host.take(described["object"])("!") == "v!"
    assert control(op="function", engine=9001, module=module["module"], name="nope") == {"missing": True}
    assert control(op="metrics", engine=9001)["metrics"][0]["value"] == 1
    name = module["name"]
    assert name in sys.modules
    assert control(op="engine_close", engine=9001) == {"errors": []}
    assert name not in sys.modules


def test_unknown_operation():
    with pytest.raises(ValueError, match="unknown control operation"):
        control(op="explode")


def test_describe_exception():
    try:
        {}["missing"]
    except KeyError as exc:
        kind, message, text = _host.describe_exception(exc)
    assert (kind, message) == ("KeyError", "'missing'")
    assert "Traceback" in text and "test_host.py" in text


def test_normalize():
    np = pytest.importorskip("numpy")
    assert _host.normalize(np.int32(3)) == 3 and type(_host.normalize(np.int32(3))) is int
    assert _host.normalize(np.array([1.5])) == [1.5]
    assert _host.normalize(frozenset([1])) == [1]
    with pytest.raises(TypeError, match="cannot convert a Python object"):
        _host.normalize(object())

    class Row:  # shaped like pyflink.common.Row
        _fields = ("a",)
        _values = [1]
    converted = _host.normalize(Row())
    assert type(converted).__module__ == "pyudf.row" and converted.as_dict() == {"a": 1}


def test_embedded_finder_serves_packages_from_memory():
    files = {"memonly/__init__.py": "VALUE = 1\n", "memonly/sub.py": "from . import VALUE\nX = VALUE + 1\n"}
    finder = EmbeddedFinder(files, ["memonly"])
    sys.meta_path.insert(0, finder)
    try:
        import memonly.sub
        assert memonly.sub.X == 2
        assert finder.get_source("memonly.sub").startswith("from .")
        assert finder.find_spec("othername") is None
    finally:
        sys.meta_path.remove(finder)
        for name in ("memonly", "memonly.sub"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize("stem", ["pyarrow", "numpy", "pandas", "json", "csv", "decimal"])
def test_user_module_never_takes_an_importable_name(stem):
    """A user module named like a package (imported or not yet) is renamed, and
    pickles of its classes resolve under the new name."""
    import pickle
    control(op="engine_open", engine=9002, job_parameters={}, path=[], log_level=20)
    before = sys.modules.get(stem)
    module = control(op="load_source", engine=9002, name=stem + ".py", source=(
        "class Acc:\n"
        "    def __init__(self, n):\n"
        "        self.n = n\n"
        "VALUE = 42\n"))
    try:
        assert module["name"] == "pyudf_user_" + stem
        assert sys.modules.get(stem) is before  # the real package's name is untouched
        loaded = sys.modules[module["name"]]
        assert loaded.VALUE == 42
        again = pickle.loads(pickle.dumps(loaded.Acc(7)))
        assert type(again) is loaded.Acc and again.n == 7
        __import__(stem)  # still importable: the real one
        assert sys.modules[stem] is not loaded
    finally:
        control(op="engine_close", engine=9002)


def test_user_module_keeps_a_free_name():
    control(op="engine_open", engine=9003, job_parameters={}, path=[], log_level=20)
    try:
        module = control(op="load_source", engine=9003, name="my_free_udfs.py", source="X = 1\n")
        assert module["name"] == "my_free_udfs"
        assert not _host._importable("my_free_udfs_never_seen")
        assert _host._importable("pyarrow") and _host._importable("os")
    finally:
        control(op="engine_close", engine=9003)


def test_loaded_file_on_sys_path_keeps_its_name(tmp_path, monkeypatch):
    path = tmp_path / "on_path_udfs.py"
    path.write_text("X = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    control(op="engine_open", engine=9004, job_parameters={}, path=[], log_level=20)
    try:
        module = control(op="load_file", engine=9004, path=str(path))
        assert module["name"] == "on_path_udfs"  # it is what an import of the name finds
    finally:
        control(op="engine_close", engine=9004)


def test_describe_exception_drops_runtime_frames():
    from pyudf import _host
    from pyudf._host import ResultError, as_result_error, describe_exception

    def user():
        raise KeyError("k")

    try:
        _host._OPS["metrics"].__call__  # a runtime frame between user frames
        (lambda: user())()
    except KeyError as exc:
        _, _, text = describe_exception(exc)
    assert "in user" in text and "KeyError: 'k'" in text
    assert "pyudf/" not in text
    marked = as_result_error(OverflowError("pyudf: result nested deeper"))
    assert isinstance(marked, ResultError) and isinstance(marked, TypeError) and isinstance(marked, ValueError)
    assert str(marked) == "result: nested deeper"
    memory = MemoryError()
    assert as_result_error(memory) is memory
    assert str(ResultError("result: x", 3)) == "row 3: result: x"
