"""The multi-pane view: screens, layout, drawing; no I/O, no session, no files."""
