"""A live session: panes, processes, probes, attaching."""
