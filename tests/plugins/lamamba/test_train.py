"""`genloom train lamamba` end to end with a few steps on shapes-ae latents: reproducible, resumable, loadable."""

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

import genloom
from genloom.diffusion_settings import DiffusionTrainSettings
from genloom.engine.errors import InvalidRequest
from genloom.engine.weights import asset_path
from genloom.plugins.lamamba import SHAPES_NOISE
from genloom.plugins.lamamba.train import train_lamamba_shapes


def test_latent_training_resumes_bit_identically_and_loads_through_the_api(tmp_path):
    from genloom.plugins.autoencoder.settings import AutoencoderSettings
    from genloom.plugins.autoencoder.train import train_shapes_ae

    quiet = lambda _: None  # noqa: E731
    ae = train_shapes_ae(tmp_path / "ae", AutoencoderSettings(train_size=16, batch_size=4, steps=1), log=quiet)
    s = DiffusionTrainSettings(steps=4, train_size=32, batch_size=4, vae=str(ae), checkpoint_every=2,
                               diagnose_every=2)
    lines: list[str] = []
    a = train_lamamba_shapes(tmp_path / "a", s, log=lines.append)
    assert any("right / null / wrong label" in line for line in lines)
    leg = train_lamamba_shapes(tmp_path / "b", replace(s, max_minutes=1e-9), log=quiet)  # stops after one step
    assert leg.name == "lamamba_shapes_state.safetensors"
    b = train_lamamba_shapes(tmp_path / "b", s, resume=str(leg), log=quiet)
    sa, sb = load_file(a), load_file(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    pipe = genloom.load("lamamba", weights=a, vae=ae, noise_schedule=SHAPES_NOISE)
    assert pipe.spec.image_size == 32 and pipe.spec.null_class == 10 and pipe.model.latent_shape == (4, 8, 8)
    assert not pipe.model.noise_schedule.learned_variance  # the embedded recipe: fixed variance, v target
    res = pipe(labels=[1, 2], seed=0, sampler="ddim", steps=2, guidance="cfg", guidance_scale=2.0, output_type="pt")
    assert res.images.shape == (2, 3, 32, 32) and torch.isfinite(res.images).all() and res.nfe == [4, 4]


def test_init_continues_from_weights_and_refuses_another_configuration(tmp_path):
    pixel = DiffusionTrainSettings(steps=1, train_size=8, batch_size=2, checkpoint_every=0, diagnose_every=0)
    first = train_lamamba_shapes(tmp_path / "first", pixel, log=lambda _: None)
    start = load_file(first)
    lines: list[str] = []
    cont = train_lamamba_shapes(tmp_path / "cont", replace(pixel, init=str(first), lr=1e-6, seed=1),
                                log=lines.append)
    fresh = train_lamamba_shapes(tmp_path / "fresh", replace(pixel, seed=1), log=lambda _: None)
    assert any(f"starting from {first}" in line for line in lines)
    moved = max((load_file(cont)[k] - v).abs().max().item() for k, v in start.items())
    apart = max((load_file(fresh)[k] - v).abs().max().item() for k, v in start.items())
    assert moved < 1e-4 < apart  # one tiny step from the given weights, not a new initialisation

    lines.clear()
    latent = replace(pixel, init=str(first), vae=str(asset_path("shapes_ae.safetensors")))
    with pytest.raises(InvalidRequest, match="--init .* does not fit the lamamba network .*latent"):
        train_lamamba_shapes(tmp_path / "latent", latent, log=lines.append)
    assert not lines and not (tmp_path / "latent" / "lamamba_shapes.safetensors").exists()  # refused before work


def test_a_narrower_network_trains_and_guides_the_embedded_model(tmp_path):
    """``--width-divisor``: the same family at a fraction of the width (an autoguidance guide), refused up front
    when the widths do not divide, and a resumed leg must keep the divisor of its run."""
    s = DiffusionTrainSettings(steps=2, train_size=8, batch_size=2, checkpoint_every=1, diagnose_every=0,
                               vae=str(asset_path("shapes_ae.safetensors")), width_divisor=2)
    small = train_lamamba_shapes(tmp_path / "small", s, log=lambda _: None)
    full = load_file(asset_path("lamamba_shapes.safetensors"))
    narrowed = load_file(small)
    assert narrowed.keys() == full.keys()
    assert sum(v.numel() for v in narrowed.values()) < sum(v.numel() for v in full.values()) / 3
    assert narrowed["patch_embed.proj.weight"].shape[0] * 2 == full["patch_embed.proj.weight"].shape[0] == 64

    pipe = genloom.load("lamamba-shapes")
    res = pipe(labels=[3], seed=0, sampler="ddim", steps=2, guidance="autoguidance", guidance_scale=2.0,
               guide_weights=str(small), output_type="pt")
    assert res.nfe == [4] and torch.isfinite(res.images).all()

    lines: list[str] = []
    with pytest.raises(InvalidRequest, match="--width-divisor 3 does not divide the width 64"):
        train_lamamba_shapes(tmp_path / "odd", replace(s, width_divisor=3), log=lines.append)
    assert not lines and not (tmp_path / "odd" / "lamamba_shapes.safetensors").exists()
    with pytest.raises(InvalidRequest, match="width_divisor"):
        train_lamamba_shapes(tmp_path / "small", replace(s, width_divisor=1, steps=3),
                             resume=str(tmp_path / "small" / "lamamba_shapes_state.safetensors"), log=lines.append)
