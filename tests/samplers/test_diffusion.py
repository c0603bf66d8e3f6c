"""The diffusion loop and the branch protocol, on a tiny real DiMR."""

import dataclasses
import math

import pytest
import torch

from genloom import GenerationCancelled, InvalidRequest, PluginError
from genloom.engine.guidance import BranchRequest, StepInfo
from genloom.engine.parameterisation import from_x0, to_eps, to_x0
from genloom.engine.progress import CancelToken, RunContext
from genloom.engine.sampling import SampleBatch
from genloom.engine.seeding import ImageRNG
from genloom.plugins.guidance.cfg import CFG
from genloom.samplers.diffusion import DiffusionSampler

SAMPLERS = ["ddpm", "ddim", "dpm++2m", "dpm++3s", "euler", "heun", "unipc", "dpm-solver-fast"]


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_runs_guided_and_is_deterministic(tiny_pipe, name):
    kw = dict(labels=[3, 7], seed=[5, 6], sampler=name, steps=4, guidance="cfg", guidance_scale=2.0, output_type="pt")
    a, b = tiny_pipe(**kw), tiny_pipe(**kw)
    assert a.images.shape == (2, 3, 16, 16) and torch.isfinite(a.images).all()
    torch.testing.assert_close(a.images, b.images, atol=0, rtol=0)
    evaluations = 2 * 4 - 1 if name == "heun" else 4
    assert a.nfe == [2 * evaluations] * 2  # constant CFG: cond + uncond at every evaluation
    assert a.manifest["request"]["sampler"] == name


def test_cfg_scale_one_is_the_conditional_prediction(tiny_pipe):
    plain = tiny_pipe(labels=[1, 2], seed=0, steps=5, sampler="ddim", guidance="none", output_type="pt")
    unit = tiny_pipe(labels=[1, 2], seed=0, steps=5, sampler="ddim", guidance="cfg", guidance_scale=1.0,
                     output_type="pt")
    torch.testing.assert_close(unit.images, plain.images, atol=0, rtol=0)
    assert unit.nfe == plain.nfe == [5, 5]  # w = 1 never asks for the unconditional rows
    guided = tiny_pipe(labels=[1, 2], seed=0, steps=5, sampler="ddim", guidance="cfg", guidance_scale=4.0,
                       output_type="pt")
    assert (guided.images - plain.images).abs().max() > 1e-3


def test_one_network_call_per_step_when_both_branches_are_needed(tiny_pipe):
    net = tiny_pipe.model.net
    calls = []
    hook = net.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    try:
        res = tiny_pipe(labels=[1, 2, 3], seed=0, steps=6, sampler="dpm++2m", guidance="cfg", guidance_scale=3.0)
    finally:
        hook.remove()
    assert calls == [6] * 6  # one packed forward of 2 × 3 rows per step
    assert res.nfe == [12, 12, 12]


def test_step_window_saves_the_unconditional_rows(tiny_pipe):
    res = tiny_pipe(labels=[4], seed=0, steps=8, sampler="ddim", guidance="cfg", guidance_scale=3.0,
                    schedule="step_window", start=0.25, stop=0.75)
    assert res.nfe == [8 + 4]  # steps 2..5 guided


def test_window_options_imply_their_schedule(tiny_pipe):
    """start/stop without schedule= act (as diffusers' do) instead of being silently ignored."""
    kw = dict(labels=[4], seed=0, steps=8, sampler="ddim", guidance="cfg", guidance_scale=3.0, output_type="pt")
    implied = tiny_pipe(**kw, start=0.25, stop=0.75)
    explicit = tiny_pipe(**kw, schedule="step_window", start=0.25, stop=0.75)
    assert implied.nfe == explicit.nfe == [12]
    torch.testing.assert_close(implied.images, explicit.images, atol=0, rtol=0)


class _Reparameterised:
    """The same denoiser, predicting x0 or v instead of ε."""

    def __init__(self, base, kind):
        from dataclasses import replace

        self.base, self.kind = base, kind
        self.noise_schedule = replace(base.noise_schedule, prediction_type=kind)
        self.latent_shape, self.null_class = base.latent_shape, base.null_class
        self.device, self.dtype = base.device, base.dtype
        self.abar = torch.cumprod(1 - base.noise_schedule.betas(), 0).float()

    def denoise(self, x, timesteps, labels):
        eps = self.base.denoise(x, timesteps, labels)
        abar = self.abar[timesteps.long().clamp(0, len(self.abar) - 1)]
        info = StepInfo(0, 1, x.shape[0], 0.0, self.kind, sigma=(1 - abar).sqrt(), alpha=abar.sqrt())
        eps_info = StepInfo(0, 1, x.shape[0], 0.0, "eps", sigma=info.sigma, alpha=info.alpha)
        return from_x0(to_x0(eps, x, eps_info), x, info)

    def decode(self, latents):
        return latents


@pytest.mark.parametrize("kind", ["x0", "v"])
def test_cfg_gives_the_same_latents_in_every_parameterisation(tiny_pipe, kind):
    base = tiny_pipe.model
    wrapped = _Reparameterised(base, kind)
    plain = _Reparameterised(base, "eps")
    policy = CFG.create(3.0)
    outs = []
    for model in (plain, wrapped):
        batch = SampleBatch(labels=torch.tensor([2, 9]), rng=ImageRNG([0, 1]), steps=6, policy=policy)
        with torch.no_grad():
            outs.append(DiffusionSampler("ddim").sample(model, batch, RunContext()).images)
    torch.testing.assert_close(outs[1], outs[0], atol=1e-4, rtol=1e-4)


def test_parameterisation_round_trips():
    x, pred = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    for kind in ("eps", "x0", "v", "flow"):
        alpha = torch.tensor([0.6, 0.9]) if kind != "flow" else torch.tensor([0.3, 0.8])
        sigma = (1 - alpha ** 2).sqrt() if kind != "flow" else 1 - alpha
        info = StepInfo(0, 1, 2, 0.5, kind, sigma=sigma, alpha=alpha)
        torch.testing.assert_close(from_x0(to_x0(pred, x, info), x, info), pred, atol=1e-5, rtol=1e-5)
        x0, eps = to_x0(pred, x, info), to_eps(pred, x, info)
        torch.testing.assert_close(alpha.view(-1, 1, 1, 1) * x0 + sigma.view(-1, 1, 1, 1) * eps, x,
                                   atol=1e-5, rtol=1e-5)


def test_rescale_zero_is_the_identity_and_nonzero_is_not(tiny_pipe):
    kw = dict(labels=[5], seed=3, steps=4, sampler="ddim", guidance="cfg", guidance_scale=5.0, output_type="pt")
    base = tiny_pipe(**kw).images
    torch.testing.assert_close(tiny_pipe(**kw, rescale=0.0).images, base, atol=0, rtol=0)
    assert (tiny_pipe(**kw, rescale=0.7).images - base).abs().max() > 1e-4
    assert torch.isfinite(tiny_pipe(**kw, rescale=0.7, rescale_space="x0").images).all()


def test_cfg_imports_a_diffusers_guider_config():
    cfg = CFG.from_diffusers({"_class_name": "ClassifierFreeGuidance", "guidance_scale": 4.0,
                              "use_original_formulation": True, "start": 0.1, "stop": 0.9, "guidance_rescale": 0.5})
    assert (cfg.scale, cfg.schedule, cfg.start, cfg.stop, cfg.rescale) == (5.0, "step_window", 0.1, 0.9, 0.5)
    assert CFG.from_diffusers({"guidance_scale": 3.0}).schedule == "constant"
    with pytest.raises(InvalidRequest, match="PerturbedAttentionGuidance"):
        CFG.from_diffusers({"_class_name": "PerturbedAttentionGuidance"})


@pytest.mark.parametrize("kwargs,message", [
    ({"sampler": "dddim"}, "ddim"),
    ({"steps": 0}, "steps must be at least 1"),
    ({"sampler": "flow-euler"}, "does not support 'eps'-prediction"),
    ({"sampler": "ddim", "timestep_spacin": "trailing"}, "Unknown option"),
    ({"guidance": "cfg", "guidance_scale": math.nan}, "finite"),
    ({"guidance": "cfg", "guidance_scale": 2.0, "schedule": "step_window", "start": 0.8, "stop": 0.2}, "start"),
    ({"guidance": "cfg", "guidance_scale": 2.0, "schedule": "constant", "stop": 0.5},
     r"stop shape the step_window schedule, not schedule='constant'"),
    ({"guidance": "cfg", "guidance_scale": 2.0, "stop": 0.5, "power": 2.0}, "step_window/power_cosine"),
    ({"guidance": "cfg", "guidance_scale": 2.0, "schedule": "cosine"},
     "option 'schedule' of policy 'cfg' must be one of"),
])
def test_bad_requests_are_typed(tiny_pipe, kwargs, message):
    with pytest.raises(InvalidRequest, match=message):
        tiny_pipe(labels=[1], seed=0, **kwargs)


def test_cfg_on_a_model_without_null_class_is_refused(unconditional_pipe):
    assert unconditional_pipe.spec.null_class is None and unconditional_pipe.spec.num_classes == 0
    with pytest.raises(InvalidRequest, match="null-class"):
        unconditional_pipe(num_images=1, seed=0, guidance="cfg", guidance_scale=2.0)
    res = unconditional_pipe(num_images=2, seed=0, steps=3, sampler="ddim")
    assert res.nfe == [3, 3]


class _Raising:
    name, space = "explodes", "affine"

    def init_state(self, b):
        return None

    def request(self, info, state):
        return [BranchRequest("uncond", rows=torch.ones(info.batch_size, dtype=torch.bool), null=True)]

    def combine(self, info, outputs, state):
        raise ZeroDivisionError("boom")


def test_a_policy_that_raises_is_named(tiny_pipe):
    batch = SampleBatch(labels=torch.tensor([1]), rng=ImageRNG([0]), steps=3, policy=_Raising())
    with pytest.raises(PluginError, match="'explodes' raised ZeroDivisionError in combine"):
        DiffusionSampler("ddim").sample(tiny_pipe.model, batch, RunContext())


class _PartialRows(_Raising):
    name = "partial"

    def request(self, info, state):  # the unconditional branch for the first sample only
        return [BranchRequest("uncond", rows=torch.arange(info.batch_size) == 0, null=True)]

    def combine(self, info, outputs, state):
        assert torch.isnan(outputs["uncond"][1:]).all() and outputs.rows("uncond").tolist() == [True, False]
        guided = outputs["cond"].clone()
        guided[0] = 3 * outputs["cond"][0] - 2 * outputs["uncond"][0]
        return guided


def test_row_masks_evaluate_and_count_only_the_requested_rows(tiny_pipe):
    batch = SampleBatch(labels=torch.tensor([1, 2]), rng=ImageRNG([0, 1]), steps=4, policy=_PartialRows())
    out = DiffusionSampler("ddim").sample(tiny_pipe.model, batch, RunContext())
    assert out.nfe.tolist() == [8, 4]
    alone = tiny_pipe(labels=[2], seed=1, steps=4, sampler="ddim", guidance="none", output_type="pt")
    torch.testing.assert_close(out.images[1:], alone.images * 2 - 1, atol=1e-5, rtol=0)


def test_cancel_stops_within_one_step(tiny_pipe):
    token, seen = CancelToken(), []

    def progress(event):
        seen.append(event.step)
        if event.step == 2:
            token.cancel()

    with pytest.raises(GenerationCancelled):
        tiny_pipe(labels=[1], seed=0, steps=10, sampler="ddim", progress=progress, cancel=token)
    assert seen == [1, 2]


def test_progress_offers_a_preview_of_the_prediction(tiny_pipe):
    previews = []
    tiny_pipe(labels=[1], seed=0, steps=3, sampler="euler", progress=lambda e: previews.append(e.preview()))
    assert len(previews) == 3 and previews[-1].shape == (1, 3, 16, 16)


def test_flow_matching_euler_drives_a_flow_model(tiny_pipe):
    base = tiny_pipe.model
    flow = _Reparameterised(base, "eps")
    flow.noise_schedule = dataclasses.replace(base.noise_schedule, prediction_type="flow")
    batch = SampleBatch(labels=torch.tensor([2, 9]), rng=ImageRNG([0, 1]), steps=4, policy=CFG.create(2.0))
    with torch.no_grad():
        out = DiffusionSampler("flow-euler").sample(flow, batch, RunContext())
    assert torch.isfinite(out.images).all() and out.nfe.tolist() == [8, 8]
    with pytest.raises(InvalidRequest, match="does not support 'flow'-prediction"):
        DiffusionSampler("ddim").sample(flow, batch, RunContext())
