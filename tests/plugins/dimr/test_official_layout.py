"""The released DiMR-XL/2R and DiMR-G/2R: every official key and shape, built on the meta device."""

import json
from pathlib import Path

import pytest
import torch

from genloom.engine.weights import expected_shapes
from genloom.plugins.dimr.config import OFFICIAL, infer_dimr_config
from genloom.plugins.dimr.network import DiMRNetwork

KEYS = json.loads((Path(__file__).parents[2] / "data" / "golden" / "dimr" / "dimr_checkpoint_keys.json").read_text())


@pytest.mark.parametrize("name,entry,params", [
    ("dimr-xl-2r", "DiMR-XL/2R (DiMR-XL_2R_800epochs.pth)", 505_046_408),
    ("dimr-g-2r", "DiMR-G/2R (DiMR-G_2R_800epochs.pth)", 1_056_352_904),
])
def test_released_models_have_the_official_keys_and_shapes(name, entry, params):
    with torch.device("meta"):
        net = DiMRNetwork(OFFICIAL[name])
    official = {k: tuple(v) for k, v in KEYS[entry]["keys"].items()}
    assert {k: tuple(v) for k, v in expected_shapes(net).items()} == official
    assert sum(p.numel() for p in net.parameters()) == params == KEYS[entry]["num_params"]
    # and the config is recovered from those shapes alone (num_blocks 20 and 21 build the same 21 blocks)
    fake = {k: torch.empty(v, device="meta") for k, v in official.items()}
    inferred = infer_dimr_config(fake)
    assert [s.num_heads for s in inferred.stages] == [16, 0]
    with torch.device("meta"):
        assert {k: tuple(v) for k, v in expected_shapes(DiMRNetwork(inferred)).items()} == official
