"""The interpreter's side of dependency management (pyudf._deps) and the
archive accessor of FunctionContext."""

import json
import os
import sys
import types

import pytest

from pyudf import _deps, _host
from pyudf.udf import FunctionContext


def control(**request):
    return json.loads(_host.control(json.dumps(request)))


def fake_install(root, name, version, files):
    """A directory laid out as pip --target leaves it: the package and its dist-info."""
    os.makedirs(root, exist_ok=True)
    dist_info = os.path.join(root, "%s-%s.dist-info" % (name, version))
    os.makedirs(dist_info)
    with open(os.path.join(dist_info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version))
    record = []
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        record.append(rel + ",,")
    record.append("%s-%s.dist-info/METADATA,," % (name, version))
    with open(os.path.join(dist_info, "RECORD"), "w") as f:
        f.write("\n".join(record) + "\n")
    return root


def test_installed_distributions_names_versions_and_top_level_modules(tmp_path):
    root = str(tmp_path / "req")
    fake_install(root, "Fancy_Pkg", "1.2", {"fancy/__init__.py": "", "fancy_single.py": "",
                                            "_fancy_c.cpython-311-x86_64-linux-gnu.so": "",
                                            "bin/fancy": "", "fancy_pkg-1.2.data/x": ""})
    assert _deps.installed_distributions(root) == {
        "fancy-pkg": ("Fancy_Pkg", "1.2", ["_fancy_c", "fancy", "fancy_single"])}


def test_front_entries_go_first_and_leave_with_their_last_engine(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    try:
        _deps.open_engine(101, {"front": [a, b]})
        _deps.open_engine(102, {"front": [a]})
        assert sys.path[:2] == [a, b]
        _deps.close_engine(101)
        assert a in sys.path and b not in sys.path  # 102 still needs a
        _deps.close_engine(102)
        assert a not in sys.path
    finally:
        _deps.close_engine(101)
        _deps.close_engine(102)


def test_requirement_conflicting_with_an_imported_module_is_refused(tmp_path, monkeypatch):
    site = fake_install(str(tmp_path / "site"), "pyudf_pt_conflict", "1.0", {"pyudf_pt_conflict/__init__.py": ""})
    req = fake_install(str(tmp_path / "req"), "pyudf_pt_conflict", "2.0", {"pyudf_pt_conflict/__init__.py": ""})
    monkeypatch.syspath_prepend(site)
    loaded = types.ModuleType("pyudf_pt_conflict")
    loaded.__file__ = os.path.join(site, "pyudf_pt_conflict", "__init__.py")
    monkeypatch.setitem(sys.modules, "pyudf_pt_conflict", loaded)
    before = list(sys.path)
    with pytest.raises(_deps.RequirementConflict) as info:
        _deps.open_engine(103, {"front": [req], "requirements": req})
    assert str(info.value) == (
        "requirement pyudf_pt_conflict 2.0 conflicts with pyudf_pt_conflict 1.0, already imported in this "
        "interpreter (from %s); %s" % (loaded.__file__, _deps._ADVICE))
    assert sys.path == before  # nothing changed
    # The same version as the loaded one is no conflict.
    same = fake_install(str(tmp_path / "same"), "pyudf_pt_conflict", "1.0", {"pyudf_pt_conflict/__init__.py": ""})
    try:
        _deps.open_engine(104, {"front": [same], "requirements": same})
        assert sys.path[0] == same
    finally:
        _deps.close_engine(104)


def test_two_open_engines_with_two_versions_are_refused(tmp_path):
    one = fake_install(str(tmp_path / "one"), "pyudf_pt_two", "1.0", {"pyudf_pt_two.py": ""})
    two = fake_install(str(tmp_path / "two"), "pyudf_pt_two", "2.0", {"pyudf_pt_two.py": ""})
    try:
        _deps.open_engine(105, {"front": [one], "requirements": one})
        with pytest.raises(_deps.RequirementConflict, match="which another open engine installed"):
            _deps.open_engine(106, {"front": [two], "requirements": two})
        _deps.close_engine(105)
        _deps.open_engine(106, {"front": [two], "requirements": two})  # free once the first closed
    finally:
        _deps.close_engine(105)
        _deps.close_engine(106)


def test_engine_open_hands_the_archives_to_function_context(tmp_path):
    data = str(tmp_path / "arch" / "data")
    os.makedirs(data)
    with open(os.path.join(data, "model.txt"), "w") as f:
        f.write("weights")
    control(op="engine_open", engine=9101, job_parameters={}, path=[], log_level=20,
            dependencies={"front": [], "requirements": "", "archives_dir": str(tmp_path / "arch"),
                          "archives": {"data": data}})
    try:
        module = control(op="load_source", engine=9101, name="arch.py", source=(
            "import os\n"
            "from pyudf import udf, ScalarFunction\n"
            "class F(ScalarFunction):\n"
            "    def open(self, ctx):\n"
            "        self.root = ctx.get_archive_dir()\n"
            "        with open(os.path.join(ctx.get_archive_dir('data'), 'model.txt')) as f:\n"
            "            self.model = f.read()\n"
            "    def eval(self):\n"
            "        return self.model + ' in ' + self.root\n"
            "f = udf(F(), result_type='STRING')\n"))
        described = control(op="function", engine=9101, module=module["module"], name="f")
        assert _host.take(described["object"])() == "weights in " + str(tmp_path / "arch")
    finally:
        control(op="engine_close", engine=9101)


def test_get_archive_dir_errors():
    with pytest.raises(LookupError, match=r"this engine has no archives \(Config.Archives\)"):
        FunctionContext(None, {}).get_archive_dir("data")
    ctx = FunctionContext(None, {}, {"data": "/x/data", "vocab": "/x/vocab"})
    assert ctx.get_archive_dir("vocab") == "/x/vocab"
    assert ctx.get_archive_dir() == "/x"
    with pytest.raises(LookupError, match="no archive with target 'nope'; this engine's targets: data, vocab"):
        ctx.get_archive_dir("nope")


def test_namespace_packages_and_unknown_modules(tmp_path, monkeypatch):
    # A namespace package already imported is no conflict: its portions merge.
    req = fake_install(str(tmp_path / "ns"), "pyudf_pt_nsportion", "1.0", {"pyudf_pt_ns/portion.py": ""})
    namespace = types.ModuleType("pyudf_pt_ns")
    namespace.__path__ = [str(tmp_path / "elsewhere")]
    monkeypatch.setitem(sys.modules, "pyudf_pt_ns", namespace)
    try:
        _deps.open_engine(107, {"front": [req], "requirements": req})
    finally:
        _deps.close_engine(107)
    # A module of no installed distribution (the standard library's json) is one.
    shadow = fake_install(str(tmp_path / "shadow"), "pyudf_pt_json", "9.0", {"json/__init__.py": ""})
    with pytest.raises(_deps.RequirementConflict) as info:
        _deps.open_engine(108, {"front": [shadow], "requirements": shadow})
    assert str(info.value).startswith(
        "requirement pyudf_pt_json 9.0 conflicts with module json (not from any version of pyudf_pt_json), "
        "already imported in this interpreter (from %s)" % json.__file__)
    assert shadow not in sys.path
