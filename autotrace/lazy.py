"""Modules imported at their first use rather than at startup.

psutil costs 15-30 ms to import, most of it building named tuples, and a
session needs it only once its panes run: before the first frame it is dead
weight. `defer` puts a stand-in for the module into sys.modules. Every module
of ours keeps its plain `import psutil` (type checkers see the real module),
and the real import runs, in place, at the first attribute anyone reads.

The standard library's LazyLoader does not do here: it imports at the first
attribute of any kind, and every `import psutil` statement reads `__spec__`.
The stand-in answers the few attributes the import system reads by itself.

What it does not do: the first use must be an attribute of the module itself,
not an import of one of its submodules (`import psutil._pslinux` first would
run the package's code inside the submodule's); `dir()` of the stand-in lists
only those few attributes. Nothing of ours does either; psutil is first used
from the session's loop, in its one thread.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types

# Nothing of ours reads these before its first frame.
DEFERRED = ("psutil",)

# What the import system reads of a module in sys.modules (an `import`
# statement, a submodule's import, module_from_spec), and what the module's
# own code reads of it while it runs.
_IMPORT_SYSTEM_READS = frozenset({
    "__spec__", "__name__", "__path__", "__dict__", "__class__", "__loader__",
    "__package__", "__file__", "__cached__"})

# One lock for every deferred module: a second thread that reads an attribute
# while the first runs the import waits for the whole module, never a half.
_lock = threading.RLock()
_running: set[str] = set()  # imports under way, in the thread that holds _lock
_initial: dict[str, dict[str, object]] = {}  # a stand-in's attributes before its import


class _Deferred(types.ModuleType):
    def __getattribute__(self, attribute: str) -> object:
        read = types.ModuleType.__getattribute__
        if attribute in _IMPORT_SYSTEM_READS:
            return read(self, attribute)
        with _lock:
            name = read(self, "__name__")
            if type(self) is _Deferred and name not in _running:
                _run_import(self, name)
        return read(self, attribute)


def _run_import(module: types.ModuleType, name: str) -> None:
    _running.add(name)
    namespace = types.ModuleType.__getattribute__(module, "__dict__")
    try:
        spec = types.ModuleType.__getattribute__(module, "__spec__")
        spec.loader.exec_module(module)
        module.__class__ = types.ModuleType
    except BaseException as error:
        # The stand-in stays (every module that imported it holds it), as it
        # was before: the next use tries afresh, and says why again.
        namespace.clear()
        namespace.update(_initial[name])
        if isinstance(error, AttributeError):  # not "no such attribute": a broken import
            raise ImportError(f"importing {name} failed: {error}") from error
        raise
    finally:
        _running.discard(name)


def defer(name: str) -> None:
    """NAME's import waits for its first use; nothing if it is imported already
    or cannot be found (the real import then says why, where it is needed)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _Deferred
    _initial[name] = dict(types.ModuleType.__getattribute__(module, "__dict__"))
    sys.modules[name] = module


def defer_all() -> None:
    for name in DEFERRED:
        defer(name)
