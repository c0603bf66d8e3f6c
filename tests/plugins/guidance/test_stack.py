"""Stacks of policies: one syntax, merged branches (no row evaluated twice), corrections added."""

import pytest
import torch

from genloom.engine.errors import InvalidRequest

LABELS = [1, 4, 7]
KW = dict(labels=LABELS, seed=2, sampler="ddim", steps=4, output_type="pt")


def test_cfg_plus_gfcg_equals_gfcg_with_its_own_cfg_term(tiny_pipe):
    stacked = tiny_pipe(guidance="cfg+gfcg", guidance_scale=2.0, **{"gfcg.scale": 3.0}, **KW)
    single = tiny_pipe(guidance="gfcg", guidance_scale=3.0, cfg_scale=2.0, **KW)
    torch.testing.assert_close(stacked.images, single.images, atol=1e-5, rtol=0)
    assert stacked.nfe == single.nfe == [12] * 3
    assert stacked.telemetry["guidance"][0]["policy"] == "cfg+gfcg"


def test_identical_branches_are_evaluated_once(tiny_pipe):
    """adaptive and cfg both ask for the unconditional rows: one evaluation serves both."""
    stacked = tiny_pipe(guidance="cfg+adaptive", guidance_scale=2.0, **{"adaptive.scale": 2.0,
                                                                        "adaptive.threshold": 1.0}, **KW)
    assert stacked.nfe == [8] * 3
    cfg3 = tiny_pipe(guidance="cfg", guidance_scale=3.0, **KW)  # (w−1) + (w−1) = 2 = 3 − 1
    torch.testing.assert_close(stacked.images, cfg3.images, atol=1e-5, rtol=0)


def test_stack_options_and_strengths_are_checked(tiny_pipe):
    with pytest.raises(InvalidRequest, match=r"gfcg\.scale"):
        tiny_pipe(guidance="cfg+gfcg", guidance_scale=2.0, **KW)
    with pytest.raises(InvalidRequest, match="twice"):
        tiny_pipe(guidance="cfg+cfg", guidance_scale=2.0, **KW)
    with pytest.raises(InvalidRequest, match="nosuch"):
        tiny_pipe(guidance="cfg+nosuch", guidance_scale=2.0, **KW)
    with pytest.raises(InvalidRequest, match="gfcg.mode"):
        tiny_pipe(guidance="cfg+gfcg", guidance_scale=2.0, **{"gfcg.scale": 1.0, "gfcg.mode": "sometimes"}, **KW)
