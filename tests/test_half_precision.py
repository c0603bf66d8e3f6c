"""Half precision on CPU, every family: ``dtype="bf16"`` loads, samples and stays close to float32."""

import pytest
import torch

import genloom
from genloom import Engine

from .tiny_dimr import save_tiny, tiny_plugin


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_var_shapes_in_half_precision(dtype):
    full = genloom.load("var-shapes")
    half = genloom.load("var-shapes", dtype=dtype)
    assert next(half.model.networks["var"].parameters()).dtype == getattr(torch, {"bf16": "bfloat16",
                                                                                   "fp16": "float16"}[dtype])
    res = half(labels=[0, 5], seed=0, output_type="pt")
    assert res.images.shape == (2, 3, 32, 32) and torch.isfinite(res.images).all() and res.nfe == [12, 12]
    # the first scale's guided logits agree with float32 to half-precision accuracy
    from genloom.engine.seeding import ImageRNG
    from genloom.samplers.next_scale import sample_next_scale

    logits = []
    for pipe in (full, half):
        out = sample_next_scale(pipe.model, torch.tensor([0]), ImageRNG([0]), keep_guided_logits=True)
        logits.append(out.guided_logits[0])
    assert torch.allclose(logits[0], logits[1], atol=0.15, rtol=0.05)


def test_dimr_in_bf16_matches_float32_predictions(tmp_path):
    engine = Engine(third_party=False, strict=True, plugins=[("tiny", tiny_plugin(save_tiny(tmp_path)))])
    full, half = engine.load("tiny-dimr"), engine.load("tiny-dimr", dtype="bf16")
    x = torch.randn(2, 3, 16, 16)
    t = torch.tensor([100.0, 700.0])
    labels = torch.tensor([1, 10])
    with torch.inference_mode():
        a = full.model.denoise(x, t, labels)
        b = half.model.denoise(x.bfloat16(), t, labels).float()
    assert torch.allclose(a, b, atol=0.1, rtol=0.05), (a - b).abs().max()
    res = half(labels=[1, 2], seed=0, output_type="pt", guidance_scale=2.0)
    assert torch.isfinite(res.images).all() and res.images.shape == (2, 3, 16, 16)


def test_smoke_in_bf16():
    res = genloom.load("smoke", dtype="bf16")(labels=[0, 1], seed=0, output_type="pt")
    assert torch.isfinite(res.images).all()
