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


# --- next-scale models ------------------------------------------------------------------------------------------


def test_on_var_the_guide_runs_its_own_kv_cache_and_the_rule_holds_on_the_drawn_tokens(var_pipe, var_guide_weights):
    """Autoguidance on VAR: at every scale the guided logits are (1+s)·ℓ_c − s·ℓ_guide, where ℓ_c and ℓ_guide are
    the two transformers' teacher-forced logits of the tokens the run drew — the guide's KV cache follows the
    run's own tokens."""
    from genloom.engine.seeding import ImageRNG
    from genloom.plugins.guidance.autoguidance import AutoGuidance
    from genloom.samplers.next_scale import sample_next_scale

    model, labels = var_pipe.model, torch.tensor([0, 3, 5, 8])
    guide = genloom.load("var-shapes", weights=var_guide_weights).model
    run = sample_next_scale(model, labels, ImageRNG([4, 5, 6, 7]), guidance=AutoGuidance(scale=2.5, guide=guide),
                            keep_guided_logits=True)
    assert run.nfe.tolist() == [12] * 4  # 6 scales on each network
    with torch.inference_mode():
        x = model.vae.quantize.teacher_forcing_input(run.indices)
        main_logits, guide_logits = model.var(labels, x), guide.var(labels, x)
    for k, guided in enumerate(run.guided_logits):
        begin, end = model.var.begin_ends[k]
        expected = 2.5 * main_logits[:, begin:end] - 1.5 * guide_logits[:, begin:end]
        torch.testing.assert_close(guided, expected, atol=5e-4, rtol=0)


def test_on_var_autoguidance_alone_and_stacked_with_cfg_counts_each_networks_rows(var_pipe, var_guide_weights):
    kw = dict(labels=[0, 3, 5, 8], seed=4, output_type="pt")
    plain = var_pipe(guidance="none", **kw)
    atg = var_pipe(guidance="autoguidance", guidance_scale=2.0, guide_weights=var_guide_weights, **kw)
    assert atg.nfe == [12] * 4 and not torch.equal(atg.images, plain.images)
    stacked = var_pipe(guidance="cfg+autoguidance", guidance_scale=3.0,
                       **{"autoguidance.scale": 2.0, "autoguidance.guide_weights": var_guide_weights}, **kw)
    assert stacked.nfe == [18] * 4  # conditional, unconditional and guide rows at each of the 6 scales
    gfcg = var_pipe(guidance="gfcg", guidance_scale=3.0, choose_scale=2, reference_model="guide",
                    guide_weights=var_guide_weights, **kw)
    assert gfcg.nfe == [12] * 4  # the reference on the guide: started at scale 2, prefilled over scales 0-1


def test_on_var_a_guide_on_another_tokenizer_is_refused(var_pipe, tmp_path):
    """The guide reads the run's token maps, so it must share the model's scales and VQVAE codebook."""
    from genloom.engine.seeding import ImageRNG
    from genloom.engine.weights import save_state_dict
    from genloom.plugins.guidance.autoguidance import AutoGuidance
    from genloom.samplers.next_scale import sample_next_scale

    vae_sd = dict(var_pipe.model.vae.state_dict())
    vae_sd["quantize.embedding.weight"] = vae_sd["quantize.embedding.weight"].flip(0)
    other_vae = save_state_dict(vae_sd, tmp_path / "other_vae.safetensors")
    guide = genloom.load("var-shapes", vae=str(other_vae)).model
    with pytest.raises(InvalidRequest, match="same scales and VQVAE codebook"):
        sample_next_scale(var_pipe.model, torch.tensor([1]), ImageRNG([0]), guidance=AutoGuidance(2.0, guide))


def test_on_var_a_guide_that_is_the_model_itself_shares_its_kv_cache_and_cancels_out(var_pipe):
    """One network object under two names keeps one KV cache: its guide rows sit beside the conditional rows (a
    second cache would overwrite the first); with the model as its own guide, (1+s)·ℓ_c − s·ℓ_c is ℓ_c."""
    from genloom.engine.seeding import ImageRNG
    from genloom.plugins.guidance.autoguidance import AutoGuidance
    from genloom.samplers.next_scale import sample_next_scale

    model, labels = var_pipe.model, torch.tensor([2, 6, 9])
    own = sample_next_scale(model, labels, ImageRNG([1, 2, 3]), guidance=AutoGuidance(scale=3.0, guide=model),
                            keep_guided_logits=True)
    plain = sample_next_scale(model, labels, ImageRNG([1, 2, 3]), keep_guided_logits=True)
    assert own.nfe.tolist() == [12] * 3
    for a, b in zip(own.guided_logits, plain.guided_logits, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
