"""The ``genloom`` command line."""
