"""The tiny random DiMR of the sampler tests, for the policies."""

import pytest

import genloom

from ...tiny_dimr import TINY, save_tiny


@pytest.fixture(scope="session")
def tiny_pipe(tmp_path_factory):
    return genloom.load("dimr", weights=save_tiny(tmp_path_factory.mktemp("dimr")), config=TINY)
