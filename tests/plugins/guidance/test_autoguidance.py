"""Autoguidance: a weaker checkpoint of the same model as the guide, evaluated as its own packed forward."""

import pytest
import torch

import genloom
from genloom.engine.errors import InvalidRequest
from genloom.plugins.dimr.config import DiMRConfig

from ...tiny_dimr import TINY, save_tiny

LABELS = [1, 4, 7]


@pytest.fixture(scope="module")
def guide_weights(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("guide"), seed=5)


def _run(pipe, **kw):
    return pipe(labels=LABELS, seed=2, sampler="ddim", steps=4, output_type="pt", **kw)


def test_the_guide_is_combined_like_cfg_with_the_guide_in_place_of_the_unconditional_branch(tiny_pipe,
                                                                                             guide_weights):
    res = _run(tiny_pipe, guidance="autoguidance", guidance_scale=2.0, guide_weights=guide_weights)
    assert res.nfe == [8] * len(LABELS)  # one main and one guide row per step
    same = _run(tiny_pipe, guidance="autoguidance", guidance_scale=2.0, guide_weights=tiny_pipe.model.weights[0].path)
    plain = _run(tiny_pipe, guidance="none")
    torch.testing.assert_close(same.images, plain.images, atol=1e-5, rtol=0)  # guide = model: no guidance
    assert not torch.allclose(res.images, plain.images, atol=1e-3)
    scale_one = _run(tiny_pipe, guidance="autoguidance", guidance_scale=1.0, guide_weights=guide_weights)
    assert scale_one.nfe == [4] * len(LABELS) and torch.equal(scale_one.images, plain.images)


def test_the_guide_is_loaded_once_per_pipeline(tiny_pipe, guide_weights):
    _run(tiny_pipe, guidance="autoguidance", guidance_scale=2.0, guide_weights=guide_weights)
    loaded = dict(tiny_pipe._siblings)
    _run(tiny_pipe, guidance="autoguidance", guidance_scale=2.0, guide_weights=guide_weights)
    assert tiny_pipe._siblings.keys() == loaded.keys() and all(tiny_pipe._siblings[k] is v for k, v in loaded.items())


def test_a_guide_with_other_classes_or_no_guide_is_refused(tiny_pipe, tmp_path):
    other = DiMRConfig(channels=3, num_classes=6, stages=TINY.stages)
    wrong = genloom.load("dimr", weights=save_tiny(tmp_path, other), config=other)
    with pytest.raises(InvalidRequest, match="guide_weights"):
        _run(tiny_pipe, guidance="autoguidance", guidance_scale=2.0)
    with pytest.raises(Exception, match="classes|shape|config"):
        _run(tiny_pipe, guidance="autoguidance", guidance_scale=2.0, guide_weights=wrong.model.weights[0].path)
