"""A tiny random pixel-space DiMR, saved and loaded through the public API like any checkpoint."""

import pytest
import torch

import genloom
from genloom.engine.weights import save_state_dict
from genloom.plugins.dimr.config import DiMRConfig, StageConfig
from genloom.plugins.dimr.network import DiMRNetwork

TINY = DiMRConfig(channels=3, num_classes=11, stages=(
    StageConfig("transformer", 32, 64, 3, 8, 8, num_heads=2, input_feature_ratio=2),
    StageConfig("convnext", 16, 32, 3, 16, 16),
))


def _randomised(config: DiMRConfig, seed: int) -> dict:
    """Random weights with time-dependent parameters that really depend on time (the official init does not)."""
    torch.manual_seed(seed)
    net = DiMRNetwork(config)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "param0" in name or "param1" in name or "nodecay" in name:
                p.add_(0.3 * torch.randn_like(p))
    return net.state_dict()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    return save_state_dict(_randomised(TINY, 0), tmp_path_factory.mktemp("dimr") / "tiny.safetensors")


@pytest.fixture(scope="session")
def tiny_pipe(tiny_weights):
    return genloom.load("dimr", weights=tiny_weights, config=TINY)


@pytest.fixture(scope="session")
def unconditional_pipe(tmp_path_factory):
    config = DiMRConfig(channels=3, num_classes=1, stages=TINY.stages)
    path = save_state_dict(_randomised(config, 1), tmp_path_factory.mktemp("dimr") / "uncond.safetensors")
    return genloom.load("dimr", weights=path, config=config)
