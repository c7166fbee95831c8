"""The ``cellpipe`` command line."""
