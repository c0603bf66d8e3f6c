"""`genloom train dimr` end to end with a few steps: reproducible weights that the generic loader accepts."""

import torch
from safetensors.torch import load_file

import genloom
from genloom.plugins.dimr import SHAPES_NOISE
from genloom.plugins.dimr.train import TrainSettings, train_dimr_shapes


def test_a_few_training_steps_give_reproducible_loadable_weights(tmp_path):
    settings = TrainSettings(steps=3, train_size=64, batch_size=4)
    a = train_dimr_shapes(tmp_path / "a", settings, log=lambda _: None)
    b = train_dimr_shapes(tmp_path / "b", settings, log=lambda _: None)
    sa, sb = load_file(a), load_file(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    pipe = genloom.load("dimr", weights=a, num_heads=4, noise_schedule=SHAPES_NOISE)
    assert pipe.spec.image_size == 32 and pipe.spec.null_class == 10
    assert pipe.model.noise_schedule.beta_schedule == "squaredcos_cap_v2"
    res = pipe(labels=[1, 2], seed=0, sampler="ddim", steps=2, guidance="cfg", guidance_scale=2.0, output_type="pt")
    assert res.images.shape == (2, 3, 32, 32) and torch.isfinite(res.images).all() and res.nfe == [4, 4]
