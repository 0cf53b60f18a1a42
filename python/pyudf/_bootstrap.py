"""Make Python packages importable from sources held in memory.

The Go engine embeds the ``pyudf`` runtime (and the ``pyflink`` compatibility
package) with ``go:embed``.  Before anything else it executes this file and
calls :func:`install` with ``{relative path: source}``, so ``import pyudf``
needs no pip step and no files on disk.  ``pyudf`` is served first; the
``pyflink`` finder goes last on ``sys.meta_path``, so a real PyFlink
installation is always found before it and never shadowed.
"""

import importlib.abc
import importlib.util
import sys


class EmbeddedFinder(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Finder and loader for the packages under ``roots`` in ``files``."""

    def __init__(self, files, roots):
        self._files = dict(files)
        self._roots = frozenset(roots)

    def _locate(self, fullname):
        rel = fullname.replace(".", "/")
        if rel + "/__init__.py" in self._files:
            return rel + "/__init__.py", True
        if rel + ".py" in self._files:
            return rel + ".py", False
        return None, False

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] not in self._roots:
            return None
        parent = sys.modules.get(fullname.rpartition(".")[0]) if "." in fullname else None
        if parent is not None and getattr(parent.__spec__, "loader", None) is not self:
            return None  # a package found elsewhere (a real PyFlink): fill none of its gaps
        filename, is_package = self._locate(fullname)
        if filename is None:
            return None
        spec = importlib.util.spec_from_loader(fullname, self, is_package=is_package)
        spec.origin = "<embedded>/" + filename
        return spec

    def get_source(self, fullname):
        filename, _ = self._locate(fullname)
        if filename is None:
            raise ImportError("no embedded source for %s" % fullname, name=fullname)
        return self._files[filename]

    def is_package(self, fullname):
        return self._locate(fullname)[1]

    def get_code(self, fullname):
        filename, _ = self._locate(fullname)
        return compile(self.get_source(fullname), "<embedded>/" + filename, "exec")

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)


def install(files, first=("pyudf",), last=("pyflink",)):
    """Serve ``first`` roots before every other finder and ``last`` roots after them."""
    sys.meta_path.insert(0, EmbeddedFinder(files, first))
    sys.meta_path.append(EmbeddedFinder(files, last))
