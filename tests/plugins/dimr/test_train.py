"""`genloom train dimr` end to end with a few steps: reproducible weights that the generic loader accepts."""

from dataclasses import replace

import torch
from safetensors.torch import load_file

import genloom
from genloom.diffusion_settings import DiffusionTrainSettings as TrainSettings
from genloom.plugins.dimr import SHAPES_NOISE
from genloom.plugins.dimr.train import train_dimr_shapes


def test_a_few_training_steps_give_reproducible_loadable_weights(tmp_path):
    settings = TrainSettings(steps=3, train_size=64, batch_size=4)
    a = train_dimr_shapes(tmp_path / "a", settings, log=lambda _: None)
    b = train_dimr_shapes(tmp_path / "b", settings, log=lambda _: None)
    sa, sb = load_file(a), load_file(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    pipe = genloom.load("dimr", weights=a, num_heads=4, noise_schedule=SHAPES_NOISE)
    assert pipe.spec.image_size == 32 and pipe.spec.null_class == 10
    assert pipe.model.noise_schedule.beta_schedule == "squaredcos_cap_v2"
    assert pipe.model.noise_schedule.prediction_type == "v"
    res = pipe(labels=[1, 2], seed=0, sampler="ddim", steps=2, guidance="cfg", guidance_scale=2.0, output_type="pt")
    assert res.images.shape == (2, 3, 32, 32) and torch.isfinite(res.images).all() and res.nfe == [4, 4]


def test_training_targets_invert_to_the_data_and_noise_the_sampler_recovers():
    from genloom.diffusion_training import training_target
    from genloom.engine.guidance import StepInfo
    from genloom.engine.parameterisation import to_eps, to_x0

    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 3, 8, 8, generator=g), torch.randn(3, 3, 8, 8, generator=g)
    abar = torch.tensor([0.999, 0.5, 1e-4])
    alpha, sigma = abar.sqrt().view(-1, 1, 1, 1), (1 - abar).sqrt().view(-1, 1, 1, 1)
    xt = alpha * x0 + sigma * eps
    for kind in ("eps", "v"):
        info = StepInfo(0, 1, 3, 0.0, kind, sigma=(1 - abar).sqrt(), alpha=abar.sqrt())
        target = training_target(x0, eps, alpha, sigma, kind)
        torch.testing.assert_close(to_eps(target, xt, info), eps, atol=1e-4, rtol=1e-4)
        if kind == "v":  # ε-models cannot recover x0 at abar = 1e-4 to this tolerance; v-models can
            torch.testing.assert_close(to_x0(target, xt, info), x0, atol=1e-4, rtol=1e-4)


def test_min_snr_weight_caps_the_data_space_weight_at_gamma():
    from genloom.diffusion_training import min_snr_weight

    abar = torch.tensor([0.99, 0.5, 0.01])
    snr = abar / (1 - abar)
    torch.testing.assert_close(min_snr_weight(abar, 5.0, "eps") * snr, snr.clamp(max=5.0))  # ε-loss = SNR·x0-loss
    torch.testing.assert_close(min_snr_weight(abar, 5.0, "v") * (snr + 1), snr.clamp(max=5.0))  # v: (SNR+1)·x0
    assert torch.equal(min_snr_weight(abar, None, "v"), torch.ones(3))


def test_latent_training_on_an_autoencoder_resumes_bit_identically_and_loads(tmp_path):
    from genloom.plugins.autoencoder.settings import AutoencoderSettings
    from genloom.plugins.autoencoder.train import train_shapes_ae

    quiet = lambda _: None  # noqa: E731
    ae = train_shapes_ae(tmp_path / "ae", AutoencoderSettings(train_size=16, batch_size=4, steps=1), log=quiet)
    s = TrainSettings(steps=4, train_size=32, batch_size=4, vae=str(ae), checkpoint_every=2, diagnose_every=2)
    lines: list[str] = []
    a = train_dimr_shapes(tmp_path / "a", s, log=lines.append)
    assert any("right / null / wrong label" in line for line in lines)
    leg = train_dimr_shapes(tmp_path / "b", replace(s, max_minutes=1e-9), log=quiet)  # stops after one step
    assert leg.name == "dimr_shapes_state.safetensors" and not (tmp_path / "b" / "dimr_shapes.safetensors").exists()
    b = train_dimr_shapes(tmp_path / "b", s, resume=str(leg), log=quiet)
    sa, sb = load_file(a), load_file(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    pipe = genloom.load("dimr", weights=a, vae=ae, num_heads=4, noise_schedule=SHAPES_NOISE)
    assert pipe.spec.image_size == 32 and pipe.model.latent_shape == (4, 8, 8)
    assert pipe.model.vae_scale != 0.18215  # the autoencoder's own scaling factor, from its metadata
    res = pipe(labels=[3], seed=0, sampler="ddim", steps=2, output_type="pt")
    assert res.images.shape == (1, 3, 32, 32)


def test_label_gap_is_zero_for_a_network_without_a_class_token_effect():
    from genloom.diffusion_training import label_gap
    from genloom.plugins.dimr.network import DiMRNetwork
    from genloom.plugins.dimr.train import DIMR_FAMILY, SHAPES_LATENT_DIMR, SHAPES_SCHEDULE

    torch.manual_seed(0)
    net = DiMRNetwork(SHAPES_LATENT_DIMR).eval()
    for stage in net.stages:
        if hasattr(stage, "class_embeds"):
            torch.nn.init.zeros_(stage.class_embeds.weight)  # every label the same token: no gap possible
    abar = torch.cumprod(1 - SHAPES_SCHEDULE.betas().float(), 0)
    gaps = label_gap(DIMR_FAMILY, net, torch.randn(4, 4, 8, 8), torch.tensor([0, 1, 2, 3]), abar, timesteps=(500,))
    right, null, wrong = gaps[500]
    assert right == null == wrong


def test_width_divisor_halves_every_stage_and_the_result_loads(tmp_path):
    from genloom.plugins.dimr.train import DIMR_FAMILY, SHAPES_DIMR

    narrow = DIMR_FAMILY.narrow(SHAPES_DIMR, 2)
    assert [(st.dim, st.hidden_dim) for st in narrow.stages] == [(st.dim // 2, st.hidden_dim // 2)
                                                                  for st in SHAPES_DIMR.stages]
    weights = train_dimr_shapes(tmp_path, TrainSettings(steps=1, train_size=8, batch_size=2, width_divisor=2,
                                                        checkpoint_every=0, diagnose_every=0), log=lambda _: None)
    pipe = genloom.load("dimr", weights=weights, num_heads=4, noise_schedule=SHAPES_NOISE)
    res = pipe(labels=[1], seed=0, sampler="ddim", steps=2, output_type="pt")
    assert res.images.shape == (1, 3, 32, 32) and torch.isfinite(res.images).all()
