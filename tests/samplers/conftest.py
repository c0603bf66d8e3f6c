"""A tiny random pixel-space DiMR, saved and loaded through the public API like any checkpoint."""

import pytest

import genloom
from genloom.plugins.dimr.config import DiMRConfig

from ..tiny_dimr import TINY, save_tiny


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("dimr"))


@pytest.fixture(scope="session")
def tiny_pipe(tiny_weights):
    return genloom.load("dimr", weights=tiny_weights, config=TINY)


@pytest.fixture(scope="session")
def unconditional_pipe(tmp_path_factory):
    config = DiMRConfig(channels=3, num_classes=1, stages=TINY.stages)
    return genloom.load("dimr", weights=save_tiny(tmp_path_factory.mktemp("dimr"), config, seed=1), config=config)
