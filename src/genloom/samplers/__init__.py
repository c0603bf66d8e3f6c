"""Sampling loops, one module per paradigm; registered by ``genloom.plugins.builtin_samplers``."""
