"""A recording turned into something else: text, bundles."""
