"""How big one piece of an untrusted recording may be: the limits that every
reader of recordings (folders and bundles) shares, kept in one place."""

# One line of a recording file: one asciicast event, or a pane file's header.
# The writer makes an event of each pty read (at most 64 KiB, at most six
# bytes of JSON per byte), and a header holds the command twice (one argument
# is at most 128 KiB): 4 MiB is far above both, and small enough to hold.
MAX_LINE_BYTES = 4 * 1024 * 1024
