"""How big one piece of an untrusted recording may be: the limits that every
reader of recordings (folders and bundles) shares, kept in one place."""

# One line of a recording file: one asciicast event, or a pane file's header.
# The writer makes an event of what one drain of a pty brings (at most 1 MiB,
# at most six bytes of JSON per byte: \u0001), and a header holds the command
# twice (one argument is at most 128 KiB): 16 MiB is above both, and small
# enough to hold in memory.
MAX_LINE_BYTES = 16 * 1024 * 1024
