"""Gradient-free classifier guidance with the reference classifier shapes-cnn on a tiny random DiMR and on var-shapes
(a next-scale branch started late: prefilled)."""

import pytest
import torch

import genloom
from genloom.engine.errors import InvalidRequest
from genloom.engine.guidance import BranchRequest
from genloom.plugins.guidance.gfcg import confusion_scale

LABELS = [1, 4, 7]


def _run(pipe, **kw):
    return pipe(labels=LABELS, seed=2, sampler="ddim", steps=4, output_type="pt", guidance="gfcg", **kw)


def test_confusion_scale_rules():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.98, 0.01, 0.01]])
    target = torch.tensor([0, 0, 0])
    ref, w = confusion_scale(probs, target, "ratio", 4.0)
    assert ref.tolist() == [1, 2, 1] and (ref != target).all()  # never the target
    torch.testing.assert_close(w, 4.0 * torch.tensor([0.2 / 0.9, 0.8 / 0.9, 0.01 / 0.99]))
    assert confusion_scale(probs, target, "one_minus_pc", 2.0)[1].tolist() == pytest.approx([0.6, 1.8, 0.04])
    assert confusion_scale(probs, target, "margin", 1.0)[1].tolist() == pytest.approx([0.25, 0.85, 0.015])


def test_w_max_zero_is_conditional_sampling_and_costs_one_nfe(tiny_pipe):
    gfcg = _run(tiny_pipe, guidance_scale=0.0)
    plain = tiny_pipe(labels=LABELS, seed=2, sampler="ddim", steps=4, output_type="pt", guidance="none")
    assert torch.equal(gfcg.images, plain.images) and gfcg.nfe == plain.nfe == [4] * 3


def test_same_step_classifies_then_adds_the_reference_and_records_it(tiny_pipe):
    res = _run(tiny_pipe, guidance_scale=3.0)
    assert res.nfe == [8] * 3  # conditional + reference rows per step
    steps = res.telemetry["guidance"][0]["steps"]
    assert len(steps) == 4
    for record in steps:
        assert all(r != c for r, c in zip(record["reference"], LABELS))
        assert all(0.0 <= w <= 3.0 for w in record["scale"])
    with_cfg = _run(tiny_pipe, guidance_scale=3.0, cfg_scale=2.0)
    assert with_cfg.nfe == [12] * 3


def test_lagged_mode_packs_the_reference_with_the_next_step(tiny_pipe):
    res = _run(tiny_pipe, guidance_scale=3.0, mode="lagged")
    assert res.nfe == [4 + 3] * 3  # the first step has no reference yet
    same = _run(tiny_pipe, guidance_scale=3.0)
    assert not torch.equal(res.images, same.images)


def test_a_missing_or_unknown_classifier_is_refused(tiny_pipe):
    with pytest.raises(InvalidRequest, match="classifier"):
        _run(tiny_pipe, guidance_scale=3.0, classifier="")
    with pytest.raises(Exception, match="nosuch"):
        _run(tiny_pipe, guidance_scale=3.0, classifier="nosuch")


@pytest.mark.parametrize("kw,message", [({"guidance_scale": -1.0}, "guidance_scale must be >= 0"),
                                        ({"guidance_scale": 2.0, "reference_model": "guide"}, "guide_weights")])
def test_bad_options(tiny_pipe, kw, message):
    with pytest.raises(InvalidRequest, match=message):
        _run(tiny_pipe, **kw)


# --- next-scale models ------------------------------------------------------------------------------------------


class FixedReference:
    """A protocol policy guiding away from fixed reference labels from scale ``start`` on; its branch starts at
    ``branch_from`` (0: evaluated, unused, from the first scale; ``start``: prefilled when it starts), on the
    loaded model or on another network (``guide``)."""

    name, space = "fixed-reference", "affine"

    def __init__(self, labels, start, branch_from, weight=2.0, guide=None):
        self.labels, self.start, self.branch_from, self.weight = torch.tensor(labels), start, branch_from, weight
        self.networks = {"guide": guide} if guide is not None else {}

    def init_state(self, batch_size):
        return None

    def request(self, info, state):
        if info.step < self.branch_from:
            return []
        return [BranchRequest("ref", rows=torch.ones(info.batch_size, dtype=torch.bool), labels=self.labels,
                              network="guide" if self.networks else "main")]

    def combine(self, info, outputs, state):
        cond = outputs["cond"]
        return cond + self.weight * (cond - outputs["ref"]) if info.step >= self.start else cond


@pytest.mark.parametrize("kv_cache", [True, False])
@pytest.mark.parametrize("on_guide", [False, True])
def test_a_next_scale_branch_started_late_is_prefilled_to_the_same_logits(var_pipe, var_guide_weights, kv_cache,
                                                                          on_guide):
    """The same reference branch evaluated from the first scale or started (prefilled) at scale 3 gives the same
    guided logits and tokens — on the loaded model's KV caches, or on another network's, whose caches start
    empty (``on_guide``)."""
    from genloom.engine.seeding import ImageRNG
    from genloom.samplers.next_scale import sample_next_scale

    model, labels = var_pipe.model, torch.tensor([0, 3, 5])
    guide = genloom.load("var-shapes", weights=var_guide_weights).model if on_guide else None
    runs = [sample_next_scale(model, labels, ImageRNG([7, 8, 9]),
                              guidance=FixedReference([4, 4, 1], 3, start, guide=guide),
                              keep_guided_logits=True, kv_cache=kv_cache) for start in (0, 3)]
    early, late = runs
    assert early.nfe.tolist() == late.nfe.tolist() == [12, 12, 12]  # the prefill counts one NFE per earlier scale
    for a, b, ia, ib in zip(early.guided_logits, late.guided_logits, early.indices, late.indices, strict=True):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=0)
        assert torch.equal(ia, ib)


def test_gfcg_on_var_picks_a_reference_from_the_preview_once_and_records_it(var_pipe):
    kw = dict(labels=[0, 3, 5, 8], seed=4, output_type="pt")
    res = var_pipe(guidance="gfcg", guidance_scale=3.0, choose_scale=2, **kw)
    assert res.nfe == [12] * 4  # 6 conditional rows + the reference branch (2 prefilled + 4 scales)
    (report,) = res.telemetry["guidance"]
    (chosen,) = report["steps"]
    assert chosen["step"] == 2 and all(r != c for r, c in zip(chosen["reference"], kw["labels"], strict=True))
    assert all(0 <= w <= 3.0 for w in chosen["scale"])
    off = var_pipe(guidance="gfcg", guidance_scale=0.0, **kw)
    plain = var_pipe(guidance="none", **kw)
    assert off.nfe == [6] * 4 and torch.equal(off.images, plain.images)  # w_max = 0: conditional sampling
    stacked = var_pipe(guidance="cfg+gfcg", guidance_scale=3.0, **{"gfcg.scale": 2.0}, **kw)
    assert stacked.nfe == [18] * 4
    with pytest.raises(InvalidRequest, match="choose_scale must name a scale after the first"):
        var_pipe(guidance="gfcg", guidance_scale=3.0, choose_scale=6, **kw)
