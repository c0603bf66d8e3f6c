"""VAR through the public API: loading official-layout files, typed errors, guidance, seeding."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genloom
from genloom import Engine, InvalidRequest, WeightsError, WeightsMismatch
from genloom.engine.weights import save_state_dict
from genloom.plugins.var.config import VARConfig, VQVAEConfig

GOLDEN = Path(__file__).parents[2] / "data" / "golden" / "var"
VAE = str(GOLDEN / "vae.safetensors")


@pytest.fixture(scope="module")
def engine():
    return Engine(third_party=False, strict=True)


@pytest.fixture(scope="module")
def pipe(engine):
    return engine.load("var", weights=GOLDEN / "var_tiny.safetensors", vae=VAE)


def test_official_demo_run_through_the_pipeline(pipe):
    g = load_file(GOLDEN / "golden_tiny.safetensors")
    res = pipe(labels=[980, 437], seed=0, rng="batch", guidance="cfg", guidance_scale=5.0, top_k=900, top_p=0.95,
               output_type="pt")
    torch.testing.assert_close(res.images, g["infer.demo.img_B3HW"], atol=1e-4, rtol=0)
    assert torch.equal(torch.cat(res.telemetry["indices"][0], 1), g["infer.demo.idx_BL"])
    assert res.nfe == [8, 8]  # 4 scales × (cond + uncond)
    same = pipe(labels=[980, 437], seed=0, rng="batch", guidance="cfg", guidance_scale=4.0, formulation="original",
                top_k=900, top_p=0.95, output_type="pt")
    assert torch.equal(same.images, res.images)
    names = {w["file"] for w in res.manifest["weights"]}
    assert names == {"var_tiny.safetensors", "vae.safetensors"}


def test_pth_twin_loads_with_weights_only(engine):
    pipe = engine.load("var", weights=GOLDEN / "var_tiny.pth", vae=VAE)
    assert pipe.model.config.depth == 2


def test_per_image_seeds_and_no_guidance(pipe):
    batch = pipe(labels=[1, 2, 3], seed=[10, 11, 12], guidance="none", batch_invariant=True, output_type="pt")
    alone = pipe(labels=[2], seed=[11], guidance="none", output_type="pt")
    assert torch.equal(batch.images[1], alone.images[0])
    assert batch.nfe == [4, 4, 4]  # no guidance: the conditional rows only
    guided = pipe(labels=[2], seed=[11], guidance="cfg", guidance_scale=3.0, output_type="pt")
    assert not torch.equal(guided.images, alone.images)
    unit = pipe(labels=[2], seed=[11], guidance="cfg", guidance_scale=1.0, output_type="pt")
    assert torch.equal(unit.images, alone.images)  # w = 1 is the conditional model exactly
    default = pipe(labels=[2], seed=[11], output_type="pt")
    assert default.manifest["request"]["guidance"] == "cfg" and default.manifest["request"]["guidance_scale"] == 2.5


@pytest.mark.parametrize("kwargs, message", [
    ({"top_k": 5000}, "exceeds the vocabulary"),
    ({"top_k": -1}, r"option 'top_k' of sampler 'next-scale' must lie in \[0, inf\)"),
    ({"top_p": 0.0}, r"top_p' of sampler 'next-scale' must lie in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p' of sampler 'next-scale' must lie in \(0, 1\]"),
    ({"labels": [1000]}, "out of range"),
    ({"steps": 99}, r"scales: steps must be \d+ \(got 99\)"),
    ({"guidance_scale": float("nan")}, "finite"),
    ({"guidance": "cfg", "guidance_scale": 2.0, "schedule": "cosine"},
     "option 'schedule' of policy 'cfg' must be one of"),
])
def test_bad_requests(pipe, kwargs, message):
    with pytest.raises(InvalidRequest, match=message):
        pipe(**{"labels": [1], **kwargs})


def test_checkpoint_mismatches_are_listed(engine, tmp_path):
    sd = load_file(GOLDEN / "var_tiny.safetensors")
    missing = dict(sd)
    missing.pop("blocks.1.ffn.fc2.bias")
    missing["blocks.0.attn.extra"] = torch.zeros(1)
    save_state_dict(missing, tmp_path / "bad.safetensors")
    with pytest.raises(WeightsMismatch) as info:
        engine.load("var", weights=tmp_path / "bad.safetensors", vae=VAE)
    assert info.value.missing == ["blocks.1.ffn.fc2.bias"] and info.value.unexpected == ["blocks.0.attn.extra"]
    shaped = dict(sd)
    shaped["head.bias"] = torch.zeros(7)
    save_state_dict(shaped, tmp_path / "shape.safetensors")
    with pytest.raises(WeightsMismatch, match="head.bias: checkpoint \\[7\\] vs network \\[1024\\]"):
        engine.load("var", weights=tmp_path / "shape.safetensors", vae=VAE)


def test_config_objects_and_bad_configs(engine):
    cfg = VARConfig.from_depth(2, vocab_size=1024, patch_nums=(1, 2, 3, 4),
                               vae=VQVAEConfig(vocab_size=1024, ch=32, patch_nums=(1, 2, 3, 4)))
    pipe = engine.load("var", weights=GOLDEN / "var_tiny.safetensors", vae=VAE, config=cfg)
    assert pipe.model.config.embed_dim == 128
    wrong = VARConfig.from_depth(3, vocab_size=1024, patch_nums=(1, 2, 3, 4), vae=cfg.vae)
    with pytest.raises(WeightsMismatch, match="missing key"):
        engine.load("var", weights=GOLDEN / "var_tiny.safetensors", vae=VAE, config=wrong)
    one_scale = VARConfig.from_depth(2, vocab_size=1024, patch_nums=(1,), vae=cfg.vae)
    with pytest.raises(InvalidRequest, match="at least 2 scales"):
        engine.load("var", weights=GOLDEN / "var_tiny.safetensors", vae=VAE, config=one_scale)
    with pytest.raises(WeightsError, match="needs its multi-scale VQVAE"):
        engine.load("var", weights=GOLDEN / "var_tiny.safetensors")
    with pytest.raises(InvalidRequest, match="Unknown load option"):
        engine.load("var", weights=GOLDEN / "var_tiny.safetensors", vae=VAE, vea="typo")


def test_official_names_are_registered_and_offline_is_explained(engine):
    spec = engine.models["var-d16"]
    assert spec.paradigm is genloom.Paradigm.NEXT_SCALE and spec.null_class == 1000 and spec.image_size == 256
    assert engine.models["var-d36"].image_size == 512
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE"):
        engine.load("var-d16")  # conftest sets HF_HUB_OFFLINE=1: no download is attempted
