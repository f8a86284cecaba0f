"""The terminal: keys in, frames out, and the loops that drive the view."""
