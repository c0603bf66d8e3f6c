"""Adaptive Guidance: CFG until the branches agree, then conditional-only; per sample, one-way, fewer NFE."""

import pytest
import torch

import genloom
from genloom.engine.errors import InvalidRequest
from genloom.engine.guidance import BranchRequest
from genloom.engine.seeding import ImageRNG
from genloom.plugins.guidance.cfg import CFG
from genloom.samplers.next_scale import sample_next_scale

LABELS = [1, 4, 7, 2]


def _run(pipe, sampler="ddim", steps=8, **kw):
    return pipe(labels=LABELS, seed=3, sampler=sampler, steps=steps, guidance_scale=3.0, output_type="pt", **kw)


@pytest.mark.parametrize("sampler", ["ddim", "dpm-solver-fast", "heun"])
@pytest.mark.parametrize("similarity", ["eps", "x0-centred"])
def test_threshold_one_is_cfg_exactly(tiny_pipe, sampler, similarity):
    cfg = _run(tiny_pipe, sampler, guidance="cfg")
    ag = _run(tiny_pipe, sampler, guidance="adaptive", threshold=1.0, similarity=similarity)
    assert torch.equal(cfg.images, ag.images) and cfg.nfe == ag.nfe


def test_centred_similarity_ignores_per_channel_offsets():
    from genloom.plugins.guidance.adaptive import sample_cosine

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    offset = 10 * torch.randn(3, 4, 1, 1, generator=g)  # a shared background dominates the plain cosine
    plain = sample_cosine(a + offset, b + offset)
    centred = sample_cosine(a + offset, b + offset, centred=True)
    assert (plain > 0.9).all() and (centred.abs() < 0.5).all()
    torch.testing.assert_close(centred, sample_cosine(a, b, centred=True))
    torch.testing.assert_close(sample_cosine(a, a + 3.0, centred=True), torch.ones(3, dtype=torch.float64))


def test_threshold_minus_one_guides_the_first_step_only(tiny_pipe):
    ag = _run(tiny_pipe, guidance="adaptive", threshold=-1.0)
    assert ag.nfe == [8 + 1] * len(LABELS)
    cond_only = _run(tiny_pipe, guidance="cfg", schedule="step_window", start=0.0, stop=1 / 8)
    assert torch.equal(ag.images, cond_only.images)  # CFG at step 0, conditional after: the same updates


def test_a_middle_threshold_saves_nfe_and_records_one_way_switches(tiny_pipe):
    from genloom.plugins.guidance.adaptive import AdaptiveGuidance
    from genloom.samplers.diffusion import DiffusionSampler

    cfg = _run(tiny_pipe, guidance="cfg")
    ag = _run(tiny_pipe, guidance="adaptive", threshold=0.5)
    assert all(8 < n <= 16 for n in ag.nfe) and sum(ag.nfe) < sum(cfg.nfe)
    # the state records when each sample switched: NFE per sample = steps + (switch step + 1), 2·steps if never
    from genloom.engine.progress import RunContext
    from genloom.engine.sampling import SampleBatch
    from genloom.engine.seeding import ImageRNG

    class Recording:
        name, space = "adaptive", "affine"

        def __init__(self, policy):
            self.policy = policy

        def init_state(self, b):
            self.state = self.policy.init_state(b)
            return self.state

        def request(self, info, state):
            return self.policy.request(info, state)

        def combine(self, info, outputs, state):
            return self.policy.combine(info, outputs, state)

    policy = Recording(AdaptiveGuidance.create(scale=3.0, threshold=0.5))
    batch = SampleBatch(labels=torch.tensor(LABELS), rng=ImageRNG(list(range(3, 3 + len(LABELS)))), steps=8,
                        policy=policy)
    with torch.inference_mode():
        out = DiffusionSampler("ddim").sample(tiny_pipe.model, batch, RunContext())
    (report,) = ag.telemetry["guidance"]
    assert report["policy"] == "adaptive" and report["similarity_space"] == "eps"
    assert report["switch_step"] == policy.state.switch_step.tolist()
    # one row per step while some sample still pays for the unconditional pass
    steps_measured = 8 if -1 in report["switch_step"] else max(report["switch_step"]) + 1
    assert len(report["similarity"]) == steps_measured and all(len(row) == 4 for row in report["similarity"])
    assert all((v is None) == (i > k >= 0) for i, row in enumerate(report["similarity"])
               for v, k in zip(row, report["switch_step"]))  # None once switched (JSON-ready, like every report)
    switch = policy.state.switch_step.tolist()
    assert out.nfe.tolist() == ag.nfe == [8 + (k + 1 if k >= 0 else 8) for k in switch]
    similarities = torch.stack(policy.state.similarity)  # NaN once a row has switched: it is not evaluated
    assert all(torch.isnan(similarities[k + 1:, i]).all() for i, k in enumerate(switch) if k >= 0)


def test_switch_step_is_the_same_alone_or_in_a_batch(tiny_pipe):
    kw = dict(seed=11, sampler="ddim", steps=8, guidance="adaptive", guidance_scale=3.0, threshold=0.5,
              output_type="pt", batch_invariant=True)
    together = tiny_pipe(labels=LABELS, **kw)
    alone = [tiny_pipe(labels=[lab], **dict(kw, seed=11 + i)).nfe[0] for i, lab in enumerate(LABELS)]
    assert together.nfe == alone


@pytest.mark.parametrize("threshold", [1.5, -2.0])
def test_threshold_outside_the_cosine_range_is_refused(tiny_pipe, threshold):
    with pytest.raises(InvalidRequest, match=r"\[-1, 1\]"):
        _run(tiny_pipe, guidance="adaptive", threshold=threshold)


def test_adaptive_is_refused_on_one_step_models():
    with pytest.raises(InvalidRequest, match="one-step generator"):
        genloom.load("smoke")(labels=[1], guidance="adaptive", guidance_scale=2.0)


VAR_KW = dict(labels=[0, 3, 5, 8], seed=4, guidance_scale=4.0, output_type="pt")


def test_on_var_threshold_one_is_constant_cfg_exactly(var_pipe):
    cfg = var_pipe(guidance="cfg", schedule="constant", **VAR_KW)
    ag = var_pipe(guidance="adaptive", threshold=1.0, **VAR_KW)
    assert torch.equal(cfg.images, ag.images) and ag.nfe == cfg.nfe == [12] * 4


class _UncondThroughout(CFG):
    """CFG whose unconditional rows run at every scale, used or not: the reference without cache compaction."""

    def request(self, info, state):
        return [BranchRequest("uncond", rows=torch.ones(info.batch_size, dtype=torch.bool), null=True)]


def test_on_var_switched_rows_leave_the_kv_cache_and_the_rest_is_unchanged(var_pipe):
    """γ̄ = −1: CFG at the first scale, then the unconditional rows are compacted out of every KV cache; a CFG
    step window that ends after the first scale drops them the same way. The conditional rows must not notice:
    the same images as CFG that evaluates the unconditional rows at every scale but guides scale 0 only."""
    ag = var_pipe(guidance="adaptive", threshold=-1.0, **VAR_KW)
    window = var_pipe(guidance="cfg", schedule="step_window", start=0.0, stop=1 / 6, **VAR_KW)
    assert ag.nfe == window.nfe == [6 + 1] * 4
    assert torch.equal(ag.images, window.images)
    labels, rng = torch.tensor(VAR_KW["labels"]), ImageRNG(range(4, 8))
    kept = sample_next_scale(var_pipe.model, labels, rng, guidance=_UncondThroughout(
        scale=VAR_KW["guidance_scale"], schedule="step_window", stop=1 / 6))
    assert kept.nfe.tolist() == [12] * 4
    torch.testing.assert_close((kept.images + 1) / 2, window.images, atol=0, rtol=0)


def test_on_var_a_cfg_window_stops_costing_rows_after_its_last_scale(var_pipe):
    """A step window's unconditional rows start at the first scale (their KV cache) and leave after the last
    scale that uses them; a window that starts late still pays from the first scale."""
    late = var_pipe(guidance="cfg", start=0.5, **VAR_KW)
    early = var_pipe(guidance="cfg", stop=0.5, **VAR_KW)
    assert late.nfe == [12] * 4 and early.nfe == [6 + 3] * 4


def test_on_var_a_sample_switches_at_the_same_scale_alone_or_in_a_batch(var_pipe):
    kw = dict(VAR_KW, threshold=0.99, guidance="adaptive", batch_invariant=True)  # switches at different scales
    together = var_pipe(**kw)
    alone = [var_pipe(**dict(kw, labels=[lab], seed=4 + i)) for i, lab in enumerate(VAR_KW["labels"])]
    assert together.nfe == [a.nfe[0] for a in alone]
    assert torch.equal(together.images, torch.cat([a.images for a in alone]))


@pytest.mark.parametrize("policy", ["adaptive", "gfcg", "autoguidance"])
def test_a_policy_other_than_the_models_default_needs_its_scale_and_says_how(var_pipe, policy):
    """var-shapes' default w 5 is CFG's; another policy named without a scale gets the way to give one."""
    with pytest.raises(InvalidRequest, match=f"guidance='{policy}' needs a guidance scale .*--scale W"):
        var_pipe(labels=[1], seed=0, guidance=policy)
    assert var_pipe(labels=[1], seed=0, guidance="cfg").nfe == [12]  # the default policy brings its default scale


def test_cfg_without_a_scale_says_how_to_give_one():
    with pytest.raises(InvalidRequest, match="guidance='cfg' needs a guidance scale .*guidance_scale=W"):
        CFG.create()
