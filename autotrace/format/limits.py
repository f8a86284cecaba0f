"""How big one piece of an untrusted recording may be: the limits that every
reader of recordings (folders and bundles) shares, kept in one place."""

# One line of a recording file: one asciicast event, or a pane file's header.
# The writer cuts output into events of at most MAX_EVENT_TEXT characters (at
# most six bytes of JSON each: \u0001), and a header holds the command twice
# (one argument is at most 128 KiB): 4 MiB is above both, and small enough to
# hold in memory.
MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_EVENT_TEXT = 256 * 1024
