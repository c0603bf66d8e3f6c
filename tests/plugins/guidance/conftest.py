"""The tiny random DiMR of the sampler tests and the embedded var-shapes (with a weaker guide), for the policies."""

import pytest
import torch

import genloom
from genloom.engine.weights import save_state_dict

from ...tiny_dimr import TINY, save_tiny


@pytest.fixture(scope="session")
def tiny_pipe(tmp_path_factory):
    return genloom.load("dimr", weights=save_tiny(tmp_path_factory.mktemp("dimr")), config=TINY)


@pytest.fixture(scope="session")
def var_pipe():
    return genloom.load("var-shapes")


@pytest.fixture(scope="session")
def var_guide_weights(tmp_path_factory, var_pipe):
    """A weaker stand-in for an earlier checkpoint of var-shapes: its transformer with every float weight
    perturbed (same VQVAE, so the same tokens)."""
    g = torch.Generator().manual_seed(0)
    sd = {k: v + 0.05 * v.std().nan_to_num() * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
          for k, v in var_pipe.model.var.state_dict().items()}
    return str(save_state_dict(sd, tmp_path_factory.mktemp("var_guide") / "guide.safetensors"))
