"""A session for people without autotrace: the browser page, the live share, one-file exports."""
