"""Parity with the official DiMR on shared/golden/dimr (tolerances from its manifest)."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genloom
from genloom.engine.errors import WeightsMismatch
from genloom.engine.guidance import StepInfo
from genloom.engine.weights import save_state_dict
from genloom.plugins.dimr.config import infer_dimr_config
from genloom.plugins.dimr.model import load_dimr
from genloom.plugins.dimr.network import DiMRNetwork
from genloom.plugins.guidance.cfg import CFG
from genloom.samplers.dpm_solver_fast import dpm_solver_fast, fast_orders

GOLDEN = Path(__file__).parents[2] / "data" / "golden" / "dimr"
HEADS = {"tiny2r": 4, "tiny3r": 3}


def _net(cfg: str) -> DiMRNetwork:
    return load_dimr(load_file(GOLDEN / f"dimr_{cfg}.safetensors"), num_heads=HEADS[cfg])[0]


@pytest.fixture(scope="module")
def golden2():
    return load_file(GOLDEN / "golden_tiny2r.safetensors")


@pytest.fixture(scope="module")
def net2():
    return _net("tiny2r")


def test_config_is_inferred_from_shapes():
    sd = load_file(GOLDEN / "dimr_tiny3r.safetensors")
    c = infer_dimr_config(sd, num_heads=3)
    assert [s.block_type for s in c.stages] == ["transformer", "convnext", "convnext"]
    assert [s.image_input_ratio for s in c.stages] == [1, 2, 1]
    assert [s.input_feature_ratio for s in c.stages] == [4, 1, 1]
    assert [s.handoff_channels for s in c.stages[:2]] == [192, 128]
    assert c.num_classes == 1001 and c.null_label == 1000 and c.input_size == 16
    with pytest.raises(Exception, match="num_heads"):
        infer_dimr_config(sd)


@pytest.mark.parametrize("key", ["stages.0.blocks.0.block1.norm.scale", "stages.1.upsample.0.weight",
                                 "stages.0.output_layer.0.bias"])
def test_time_dependent_parameters(net2, golden2, key):
    module = net2.get_submodule(key)
    out = module(golden2["tdp.log_snr"] / 4)
    torch.testing.assert_close(out, golden2[f"tdp.{key}"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("group,module,x", [
    ("tdrms", "stages.0.blocks.1.block2.norm", "tdrms"), ("tdrms_same", "stages.0.blocks.1.block2.norm", "tdrms"),
    ("tdln0", "stages.0.output_layer.0", "tdln0"), ("tdln0_same", "stages.0.output_layer.0", "tdln0"),
    ("tdln1", "stages.1.upsample.0", "tdln1"), ("tdln1_same", "stages.1.upsample.0", "tdln1"),
])
def test_time_dependent_norms(net2, golden2, group, module, x):
    out = net2.get_submodule(module)(golden2[f"{x}.x"], golden2[f"{group}.log_snr"] / 4)
    torch.testing.assert_close(out, golden2[f"{group}.y"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("cfg,group", [("tiny2r", "fwd_mixed"), ("tiny2r", "fwd_same"), ("tiny2r", "fwd_same_t1"),
                                       ("tiny3r", "fwd_mixed")])
def test_network_outputs_every_stage(cfg, group):
    g = load_file(GOLDEN / f"golden_{cfg}.safetensors")
    net = _net(cfg)
    with torch.no_grad():
        outs = net(g[f"{group}.x"], g[f"{group}.log_snr"] / 4, g[f"{group}.y"])
    assert len(outs) == len(net.stages)
    for i, out in enumerate(outs):
        torch.testing.assert_close(out, g[f"{group}.out{i}"], atol=1e-4, rtol=0)


def test_intermediates(net2, golden2):
    seen = {}

    def keep(name, pick):  # hooks must return None, or they replace what they see
        def hook(module, args, *output):
            seen[name] = pick(args, *output)
        return hook

    hooks = [
        net2.stages[0].blocks[0].register_forward_pre_hook(keep("tokens", lambda a: a[0])),
        net2.stages[1].input_layer.register_forward_hook(keep("input1", lambda a, o: o)),
        net2.stages[0].register_forward_hook(keep("handoff", lambda a, o: o[1])),
        net2.stages[1].upsample[2].register_forward_hook(keep("up", lambda a, o: o)),
    ]
    with torch.no_grad():
        net2(golden2["fwd_same.x"], golden2["fwd_same.log_snr"] / 4, golden2["fwd_same.y"])
    for h in hooks:
        h.remove()
    for mine, theirs in (("tokens", "stage0_tokens_in"), ("input1", "stage1_input_layer"),
                         ("handoff", "stage0_handoff"), ("up", "stage1_upsampled")):
        torch.testing.assert_close(seen[mine], golden2[f"fwd_same.{theirs}"], atol=1e-4, rtol=0)


def _policy(run: str):
    if run == "cfg04":
        return CFG.create(0.4, formulation="original")  # the released config's constant guidance
    if run == "pow":
        return CFG.create(2.5, schedule="power_cosine", power=1.0)  # eval.py --cfg 2.5 --cfg_scale_pow 1
    return None


@pytest.mark.parametrize("run", ["cfg04", "pow", "nocfg"])
def test_official_dpm_solver_runs(net2, golden2, run):
    from genloom.engine.specs import ModelSpec, Paradigm
    from genloom.plugins.dimr.model import DiMRModel

    spec = ModelSpec(name="tiny2r", factory=None, paradigm=Paradigm.DIFFUSION, num_classes=1000, null_class=1000)
    model = DiMRModel(spec=spec, networks={"dimr": net2}, config=infer_dimr_config(net2.state_dict(), num_heads=4))
    p = f"sample.{run}."
    steps = len(golden2[p + "nfe_n"])
    assert sum(fast_orders(steps)) == steps and len(fast_orders(steps)) == len(golden2[p + "x_per_step"])
    policy = _policy(run)
    with torch.no_grad():
        out = dpm_solver_fast(model, golden2[p + "z_init"], golden2[p + "y"], steps, policy)
    torch.testing.assert_close(torch.tensor(out.times) * 1000, golden2[p + "nfe_n"], atol=1e-3, rtol=0)
    for mine, theirs in zip(out.per_update, golden2[p + "x_per_step"]):
        torch.testing.assert_close(mine, theirs, atol=2e-3, rtol=0)
    torch.testing.assert_close(out.x, golden2[p + "x_final"], atol=2e-3, rtol=0)
    if policy is not None:
        weights = [1 + policy.strength(StepInfo(step=i, num_steps=steps, batch_size=1, time=t, prediction_type="eps"))
                   for i, t in enumerate(out.times)]
        torch.testing.assert_close(torch.tensor(weights, dtype=torch.float32), golden2[p + "nfe_guidance_weight"],
                                   atol=1e-5, rtol=0)
        # evaluations with w = 1 skip the unconditional rows: fewer network rows than the official two calls
        assert out.nfe.tolist() == [steps + sum(w != 1.0 for w in weights)] * len(golden2[p + "y"])
    else:
        assert out.nfe.tolist() == [steps]


def _tiny_vae_config():
    return {"block_out_channels": (8, 8), "layers_per_block": 1, "norm_num_groups": 4,
            "down_block_types": ("DownEncoderBlock2D",) * 2, "up_block_types": ("UpDecoderBlock2D",) * 2,
            "sample_size": 32}


def test_official_pth_loads_through_the_api_in_latent_space(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(**dict(genloom.engine.autoencoder.SD_VAE_CONFIG, **_tiny_vae_config()))
    vae_path = save_state_dict(vae.state_dict(), tmp_path / "vae.safetensors")
    pipe = genloom.load("dimr", weights=GOLDEN / "dimr_tiny2r.pth", num_heads=4, vae=vae_path,
                        vae_config=_tiny_vae_config())
    assert pipe.spec.image_size == 32 and pipe.spec.null_class == 1000
    res = pipe(labels=[207, 88], seed=0, steps=6, output_type="pt")
    assert res.images.shape == (2, 3, 32, 32) and res.nfe == [12, 12]  # constant w 1.4: both branches
    g = load_file(GOLDEN / "golden_tiny2r.safetensors")
    with torch.no_grad():  # the network inside the pipeline is the official one
        out = pipe.model.net(g["fwd_mixed.x"], g["fwd_mixed.log_snr"] / 4, g["fwd_mixed.y"])[-1]
    torch.testing.assert_close(out, g["fwd_mixed.out1"], atol=1e-4, rtol=0)


def test_latent_model_without_vae_is_refused():
    with pytest.raises(genloom.WeightsError, match="vae="):
        genloom.load("dimr", weights=GOLDEN / "dimr_tiny2r.safetensors", num_heads=4)


@pytest.mark.parametrize("change", ["missing", "extra", "shape"])
def test_mismatched_checkpoint_lists_the_differences(tmp_path, change):
    sd = load_file(GOLDEN / "dimr_tiny2r.safetensors")
    config = infer_dimr_config(sd, num_heads=4)
    if change == "missing":
        del sd["stages.1.upsample.1.kernel.bias"]
    elif change == "extra":
        sd["stages.0.surprise"] = torch.zeros(3)
    else:
        sd["stages.0.skip_denses.0.bias"] = torch.zeros(7)
    with pytest.raises(WeightsMismatch) as err:
        load_dimr(sd, config)
    assert {"missing": "upsample.1.kernel.bias", "extra": "surprise", "shape": "skip_denses.0.bias"}[change] \
        in str(err.value)
