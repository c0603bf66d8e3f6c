"""Numerical parity with the official VAR implementation on the golden vectors (shared/golden/var)."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genloom.engine.seeding import ImageRNG
from genloom.engine.specs import ModelSpec, Paradigm
from genloom.plugins.guidance.cfg import CFG
from genloom.plugins.var.config import phi_index_map
from genloom.plugins.var.model import VARModel, load_var
from genloom.samplers.next_scale import sample_next_scale

GOLDEN = Path(__file__).parents[2] / "data" / "golden" / "var"
SPEC = ModelSpec(name="golden", factory=lambda o: None, paradigm=Paradigm.NEXT_SCALE)
CONFIGS = ("tiny", "tiny_saln", "full")
# cfg.run: (labels or None, g_seed, cfg, top_k, top_p (official 0 = off), more_smooth)
RUNS = {
    ("tiny", "demo"): ([980, 437], 0, 4.0, 900, 0.95, False),
    ("tiny", "smooth"): ([980, 437], 0, 4.0, 900, 0.95, True),
    ("tiny", "randlabel"): (None, 7, 1.5, 0, 0.0, False),
    ("tiny", "uncond"): ([1000], 11, 1.5, 50, 0.0, False),
    ("tiny_saln", "topp"): ([22, 562], 3, 4.0, 0, 0.8, False),
    ("full", "fid"): ([207], 0, 1.5, 900, 0.96, False),
}


def var_cfg(cfg):
    """The official "cfg" knob: the original formulation on the linear ramp."""
    return CFG.create(cfg, formulation="original", schedule="linear")


@pytest.fixture(scope="module")
def models():
    torch.set_grad_enabled(False)
    vae_sd = load_file(GOLDEN / "vae.safetensors")
    out = {}
    for name in CONFIGS:
        var, vae, cfg = load_var(load_file(GOLDEN / f"var_{name}.safetensors"), vae_sd, None)
        out[name] = (VARModel(spec=SPEC, networks={"var": var, "vae": vae}, config=cfg),
                     load_file(GOLDEN / f"golden_{name}.safetensors"))
    yield out
    torch.set_grad_enabled(True)


def test_phi_table_matches_the_spec():
    assert phi_index_map(10, 4) == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert phi_index_map(14, 4) == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3]
    assert phi_index_map(4, 4) == [0, 1, 2, 3] and phi_index_map(5, 4) == [0, 1, 2, 2, 3]
    assert phi_index_map(6, 4) == [0, 0, 1, 2, 3, 3]
    assert all(phi_index_map(k, k) == list(range(k)) for k in range(2, 17))


def test_configs_are_inferred_from_the_checkpoints(models):
    tiny, saln, full = (models[n][0].config for n in CONFIGS)
    assert (tiny.depth, tiny.embed_dim, tiny.num_heads, tiny.patch_nums) == (2, 128, 2, (1, 2, 3, 4))
    assert tiny.attn_l2_norm and not tiny.shared_aln and tiny.vocab_size == 1024 and tiny.num_classes == 1000
    assert saln.shared_aln and not saln.attn_l2_norm
    assert full.patch_nums == (1, 2, 3, 4, 5, 6, 8, 10, 13, 16) and full.image_size == 256
    assert tiny.vae.share_quant_resi == 4 and tiny.vae.ch == 32


@pytest.mark.parametrize("name", ["tiny", "full"])
def test_vqvae_encode_decode(models, name):
    model, g = models[name]
    vae, pns = model.vae, model.patch_nums
    f = vae.encode_latent(g["vq.img"].float())
    torch.testing.assert_close(f, g["vq.f_BChw"], atol=1e-4, rtol=0)
    assert torch.equal(torch.cat(vae.quantize.encode(f), 1), g["vq.idx_BL"])
    torch.testing.assert_close(vae.quantize.encode(f, to_fhat=True)[-1], g["vq.fhat_BChw"], atol=1e-4, rtol=0)
    split = list(g["vq.idx_BL"].split([p * p for p in pns], 1))
    torch.testing.assert_close(vae.indices_to_img(split)[0], g["vq.recon_from_idx"], atol=1e-4, rtol=0)
    if "vq.recon_per_scale" in g:
        per_scale = torch.stack(vae.indices_to_img(split, last_one=False))
        torch.testing.assert_close(per_scale, g["vq.recon_per_scale"], atol=1e-4, rtol=0)
        fhats = torch.stack(vae.quantize.encode(f, to_fhat=True))
        torch.testing.assert_close(fhats, g["vq.fhat_per_scale"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", CONFIGS)
def test_teacher_forcing_forward(models, name):
    model, g = models[name]
    split = list(g["fwd.idx_BL"].split([p * p for p in model.patch_nums], 1))
    x = model.vae.quantize.teacher_forcing_input(split)
    torch.testing.assert_close(x, g["fwd.x_BLCv_wo_first_l"], atol=1e-4, rtol=0)
    logits = model.var(g["fwd.label_B"], g["fwd.x_BLCv_wo_first_l"])
    torch.testing.assert_close(logits, g["fwd.logits_BLV"], atol=1e-3, rtol=0)


@pytest.mark.parametrize("key", list(RUNS), ids=[f"{c}.{r}" for c, r in RUNS])
def test_official_sampling_runs_are_reproduced(models, key):
    model, g = models[key[0]]
    run = key[1]
    labels, seed, cfg, top_k, top_p, smooth = RUNS[key]
    batch = len(labels) if labels else 2
    out = sample_next_scale(model, torch.tensor(labels) if labels else None, ImageRNG([seed] * batch, "batch"),
                            guidance=var_cfg(cfg), top_k=top_k, top_p=top_p or None, more_smooth=smooth,
                            keep_guided_logits=True)
    images = (out.images + 1) / 2
    want = g[f"infer.{run}.img_B3HW"]
    if smooth:  # the Gumbel path is chaotic: the spec's smoke-test tolerances
        assert (images - want).abs().mean() <= 1e-3 and (images - want).abs().max() <= 5e-2
    else:
        assert torch.equal(torch.cat(out.indices, 1), g[f"infer.{run}.idx_BL"])
        torch.testing.assert_close(images, want, atol=1e-4, rtol=0)
        decoded = (model.vae.indices_to_img(out.indices)[0] + 1) / 2
        torch.testing.assert_close(images, decoded, atol=0, rtol=0)  # the image is a function of the indices
    if f"infer.{run}.cfg_logits_BLV" in g:
        torch.testing.assert_close(torch.cat(out.guided_logits, 1), g[f"infer.{run}.cfg_logits_BLV"], atol=1e-3,
                                   rtol=0)
    if f"infer.{run}.label_B" in g:
        assert out.labels.tolist() == g[f"infer.{run}.label_B"].tolist()


def test_cached_loop_matches_the_masked_forward(models):
    model, g = models["tiny"]
    labels = torch.tensor([3, 77])
    out = sample_next_scale(model, labels, ImageRNG([5, 6]), guidance=None, top_k=0)
    x = model.vae.quantize.teacher_forcing_input(out.indices)
    full = model.var(labels, x)
    cached = sample_next_scale(model, labels, ImageRNG([5, 6]), guidance=None, top_k=0, keep_guided_logits=True)
    torch.testing.assert_close(torch.cat(cached.guided_logits, 1), full, atol=1e-4, rtol=0)


def test_full_recompute_reference_equals_the_cached_loop(models):
    model, _ = models["full"]
    kw = {"guidance": var_cfg(1.5), "top_k": 900, "top_p": 0.96, "keep_guided_logits": True}
    cached = sample_next_scale(model, torch.tensor([207]), ImageRNG([0], "batch"), **kw)
    recomputed = sample_next_scale(model, torch.tensor([207]), ImageRNG([0], "batch"), kv_cache=False, **kw)
    assert all(torch.equal(a, b) for a, b in zip(cached.indices, recomputed.indices))
    torch.testing.assert_close(torch.cat(cached.guided_logits, 1), torch.cat(recomputed.guided_logits, 1),
                               atol=1e-4, rtol=0)
