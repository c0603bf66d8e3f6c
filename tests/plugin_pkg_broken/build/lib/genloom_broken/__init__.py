"""Fails at import on purpose."""

raise RuntimeError("genloom-broken cannot start: its configuration file is missing")
