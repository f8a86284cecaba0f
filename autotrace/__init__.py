"""autotrace: a multi-pane terminal debug recorder."""

__version__ = "0.1.0"
