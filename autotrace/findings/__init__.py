"""Findings: what a session's panes say happened, found by rules over the one event stream."""
