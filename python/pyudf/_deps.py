"""An engine's Python dependencies, inside the interpreter.

The Go side prepares everything on disk before an engine opens: the python
files (``Config.PythonFiles``), the directory its requirements were
installed into (``Config.Requirements``), the extracted archives
(``Config.Archives``).  :func:`open_engine` puts the first two in front of
``sys.path`` (python files first, then the requirements, then
site-packages; ``Config.Path`` is appended after those), after checking the
requirements against what this interpreter already runs, and
:func:`close_engine` takes them off again when no open engine needs them.

In thread mode every engine of a process shares one interpreter, so one
``sys.modules``: a second engine that asks for another version of a package
already imported would silently get the loaded one.  :func:`open_engine`
refuses that with :class:`RequirementConflict`, naming the package and both
versions, as it refuses two open engines whose requirements install two
versions of one package.  Process mode gives each engine its own workers.
"""

import importlib
import importlib.metadata
import os
import re
import sys
import threading

__all__ = ["RequirementConflict", "open_engine", "close_engine", "installed_distributions"]


class RequirementConflict(ImportError):
    """A requirement whose version differs from the one this interpreter has
    already imported, or that another open engine installed."""


_lock = threading.Lock()
_front_users = {}    # sys.path entry -> how many open engines put it in front
_engine_front = {}   # engine id -> the entries it put in front
_engine_requirements = {}  # engine id -> (requirements dir, installed_distributions of it)

_ADVICE = ("thread mode has one interpreter per process, shared by every engine: "
           "use process mode (Config.Mode = Process) to give an engine its own versions")


def open_engine(engine, dependencies):
    """Check ``dependencies`` (the Go side's ``front``, ``requirements``) and
    put ``front`` in front of ``sys.path``; nothing changes if it raises."""
    if not dependencies:
        return
    front = [entry for entry in dependencies.get("front") or () if entry]
    requirements = dependencies.get("requirements") or ""
    with _lock:
        if requirements:
            wanted = installed_distributions(requirements)
            _check_conflicts(requirements, wanted)
            _engine_requirements[engine] = (requirements, wanted)
        for entry in reversed(front):
            if entry in sys.path:
                sys.path.remove(entry)  # to the front again: the newest engine's order holds
            sys.path.insert(0, entry)
            _front_users[entry] = _front_users.get(entry, 0) + 1
        _engine_front[engine] = front
    importlib.invalidate_caches()


def close_engine(engine):
    """Take the entries only ``engine`` needed off ``sys.path`` (modules
    imported from them stay in ``sys.modules``)."""
    with _lock:
        _engine_requirements.pop(engine, None)
        for entry in _engine_front.pop(engine, ()):
            users = _front_users.get(entry, 0) - 1
            if users > 0:
                _front_users[entry] = users
                continue
            _front_users.pop(entry, None)
            try:
                sys.path.remove(entry)
            except ValueError:
                pass


def _normalize(name):
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name or "").lower()


def installed_distributions(path):
    """``{normalized name: (name, version, top-level modules)}`` of the
    distributions installed in directory ``path``."""
    out = {}
    for dist in importlib.metadata.distributions(path=[path]):
        name = dist.metadata["Name"]
        if name:
            out[_normalize(name)] = (name, dist.version, sorted(_top_level(dist)))
    return out


def _top_level(dist):
    """The importable top-level names a distribution provides (from its RECORD)."""
    names = set()
    top_level = dist.read_text("top_level.txt")
    if top_level:
        names.update(line.strip() for line in top_level.splitlines() if line.strip())
    for file in dist.files or ():
        parts = file.parts
        first = parts[0] if parts else ""
        if not first or first in ("..", "__pycache__", "bin") or first.endswith((".dist-info", ".egg-info", ".data")):
            continue
        if len(parts) == 1:
            if first.endswith((".py", ".so", ".pyd")):
                names.add(first.split(".", 1)[0])
        else:
            names.add(first)
    return names


def _under(location, directory):
    location, directory = os.path.realpath(location), os.path.realpath(directory)
    return location == directory or location.startswith(directory.rstrip(os.sep) + os.sep)


def _check_conflicts(requirements, wanted):
    for key, (name, version, tops) in sorted(wanted.items()):
        for top in tops:
            module = sys.modules.get(top)
            file = getattr(module, "__file__", None)
            if module is None or file is None:
                continue  # not imported, or a namespace package: its portions merge, none shadows
            if _under(file, requirements):
                continue  # imported from this very install
            loaded = _loaded_version(key, file)
            if loaded != version:
                what = "%s %s" % (name, loaded) if loaded else "module %s (not from any version of %s)" % (top, name)
                raise RequirementConflict(
                    "requirement %s %s conflicts with %s, already imported in this interpreter (from %s); %s"
                    % (name, version, what, file, _ADVICE))
        for other_dir, other in _engine_requirements.values():
            if other_dir != requirements and key in other and other[key][1] != version:
                raise RequirementConflict(
                    "requirement %s %s conflicts with %s %s, which another open engine installed (%s); %s"
                    % (name, version, other[key][0], other[key][1], other_dir, _ADVICE))


def _loaded_version(key, file):
    """The version of distribution ``key`` whose installation holds ``file``, or None."""
    for dist in importlib.metadata.distributions():
        if _normalize(dist.metadata["Name"]) == key and _under(file, str(dist.locate_file(""))):
            return dist.version
    return None
