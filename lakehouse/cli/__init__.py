"""The `ratatouille` command line and its `doctor`."""
