"""A recording played back: its clock and its player."""
