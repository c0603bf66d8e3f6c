"""The plugin's own test suite, as a plugin author would write it with genloom's conformance kit."""

import genloom_toy

from genloom.testing import check_plugin


def test_genloom_toy_conforms():
    engine = check_plugin("toy", genloom_toy)
    assert "toy-rings" in engine.models
