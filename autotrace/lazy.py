"""Modules imported at their first use rather than at startup.

psutil costs 20-30 ms to import, most of it building named tuples, and a
session needs it only once panes run: for the first frame it is dead weight.
The standard library's LazyLoader (the recipe in importlib's documentation)
puts a stand-in into sys.modules, so every module of ours keeps a plain
`import psutil` (and type checkers see the real module) while the real import
happens at the first attribute anyone reads.
"""

from __future__ import annotations

import importlib.util
import sys

# Modules of this list that nothing of ours needs before a first frame.
DEFERRED = ("psutil",)


def defer(name: str) -> None:
    """Make NAME's import wait for its first use; nothing if it is imported already
    or cannot be found (the real import then says why, where it is needed)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)


def defer_all() -> None:
    for name in DEFERRED:
        defer(name)
