"""The recording format: reading, writing, indexing and unpacking recordings."""
