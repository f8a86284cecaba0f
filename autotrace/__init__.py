"""autotrace: a multi-pane terminal debug recorder."""

from autotrace.lazy import defer_all

__version__ = "0.1.0"

defer_all()
