"""Gradient-free classifier guidance with the reference classifier shapes-cnn on a tiny random DiMR."""

import pytest
import torch

from genloom.engine.errors import InvalidRequest
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
