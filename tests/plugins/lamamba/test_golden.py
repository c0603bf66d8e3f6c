"""Parity with the official LaMamba-Diff on shared/golden/lamamba (tolerances from its manifest)."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genloom
from genloom.engine.autoencoder import SD_VAE_CONFIG
from genloom.engine.errors import InvalidRequest, WeightsMismatch
from genloom.engine.weights import expected_shapes, float32_state, save_state_dict
from genloom.plugins.lamamba.config import DEFAULT_XL, LaMambaConfig, infer_lamamba_config
from genloom.plugins.lamamba.model import load_lamamba
from genloom.plugins.lamamba.network import LaMambaNetwork

GOLDEN = Path(__file__).parents[2] / "data" / "golden" / "lamamba"
WEIGHTS = GOLDEN / "lamamba_tiny.safetensors"
KEYS = json.loads((GOLDEN / "lamamba_checkpoint_keys.json").read_text())


@pytest.fixture(scope="module")
def golden():
    return load_file(GOLDEN / "golden_tiny.safetensors")


@pytest.fixture(scope="module")
def net():
    return load_lamamba(load_file(WEIGHTS))[0]


def test_config_is_inferred_from_shapes():
    build = json.loads((GOLDEN / "manifest.json").read_text())["configs"]["tiny"]["build"]
    c = infer_lamamba_config(load_file(WEIGHTS))
    assert list(c.dims) == build["dims"] and list(c.depths) == build["depths"]
    assert list(c.decoder_depths) == build["decoder_depths"] and c.bottleneck_depth == build["bottleneck_depth"]
    assert list(c.num_heads) == build["num_heads"] and list(c.ssm_dt_rank) == build["ssm_dt_rank"]
    assert (c.window_size, c.patch_size, c.latent_size, c.ssm_d_state) == (4, 1, 16, 1)
    assert c.num_classes == 1000 and c.null_label == 1000 and c.learn_sigma and c.out_channels == 8
    assert sum(p.numel() for p in LaMambaNetwork(c).parameters()) == build["params"]


@pytest.mark.parametrize("group,module", [("ss2d0", "layers.0.blocks.0.op"), ("ss2d1", "layers_up.2.blocks.0.op")])
def test_ss2d(net, golden, group, module):
    with torch.no_grad():
        out = net.get_submodule(module)(golden[f"{group}.x"])
    torch.testing.assert_close(out, golden[f"{group}.out"], atol=1e-4, rtol=0)


def test_ss2d_scan_operands_and_cross_merge(net, golden):
    op = net.layers[0].blocks[0].op
    with torch.no_grad():
        x, _ = op.in_proj(golden["ss2d0.x"]).chunk(2, dim=-1)
        x = torch.nn.functional.silu(op.conv2d(x.permute(0, 3, 1, 2).contiguous()))
        ops = op.scan_operands(x)
        merged = op.merge(golden["ss2d0.scan_out"].reshape(2, 4 * op.d_inner, -1), 16, 16)
    for name in ("u", "delta", "B", "C"):
        torch.testing.assert_close(ops[name], golden[f"ss2d0.scan_{name}"], atol=2e-4, rtol=0)
    torch.testing.assert_close(merged, golden["ss2d0.merged"], atol=2e-4, rtol=0)


@pytest.mark.parametrize("i,module,shifted", [(0, "layers.0.blocks.0", False), (1, "layers.0.blocks.1", True),
                                              (2, "layers_up.2.blocks.1", True), (3, "mid_layer.blocks.0", False)])
def test_window_attention_with_and_without_shift(net, golden, i, module, shifted):
    block = net.get_submodule(module)
    assert bool(block.shift) == shifted
    with torch.no_grad():
        out = block.window_attention(golden[f"attn{i}.x"])
    torch.testing.assert_close(out, golden[f"attn{i}.out"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("i,module", [(0, "layers.0.blocks.1"), (1, "layers_up.3.blocks.0"),
                                      (2, "mid_layer.blocks.1")])
def test_blocks(net, golden, i, module):
    with torch.no_grad():
        out = net.get_submodule(module)(golden[f"block{i}.x"], golden[f"block{i}.c"])
    torch.testing.assert_close(out, golden[f"block{i}.out"], atol=1e-4, rtol=0)


def test_whole_network_and_its_intermediates(net, golden):
    seen = {}
    hooks = [net.layers[i].register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(f"skip{i}", o))
             for i in range(4)]
    with torch.no_grad():
        out = net(golden["fwd.x"], golden["fwd.t"], golden["fwd.y"])
        cond = net.condition(golden["fwd.t"], golden["fwd.y"])
    for h in hooks:
        h.remove()
    torch.testing.assert_close(out, golden["fwd.out"], atol=1e-4, rtol=0)
    torch.testing.assert_close(cond, golden["fwd.c"], atol=2e-4, rtol=0)


def _tiny_vae(tmp_path):
    from diffusers import AutoencoderKL

    config = {"block_out_channels": (8, 8), "layers_per_block": 1, "norm_num_groups": 4,
              "down_block_types": ("DownEncoderBlock2D",) * 2, "up_block_types": ("UpDecoderBlock2D",) * 2,
              "sample_size": 32}
    torch.manual_seed(0)
    vae = AutoencoderKL(**dict(SD_VAE_CONFIG, **config))
    return save_state_dict(vae.state_dict(), tmp_path / "vae.safetensors"), config


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    vae, vae_config = _tiny_vae(tmp_path_factory.mktemp("vae"))
    return genloom.load("lamamba", weights=WEIGHTS, vae=vae, vae_config=vae_config)


def test_cfg_forward_through_the_branch_protocol(pipe, golden):
    """The official forward_with_cfg guides all 4 ε channels; the engine's CFG combine gives the same ε."""
    from genloom.engine.guidance import StepInfo
    from genloom.plugins.guidance.cfg import CFG
    from genloom.samplers.branches import GuidedDenoiser

    x, t, y, s = golden["cfg.x"], golden["cfg.t"], golden["cfg.y"], float(golden["cfg.scale"])
    n = x.shape[0] // 2
    policy = CFG(scale=s)
    info = StepInfo(step=0, num_steps=1, batch_size=n, time=0.5, prediction_type="eps",
                    sigma=torch.ones(n), alpha=torch.ones(n))
    denoiser = GuidedDenoiser(pipe.model, y[:n], 1000, policy, n)
    with torch.no_grad():
        eps = denoiser(lambda net: lambda xr, lr, idx: net.denoise(xr, t[:n][idx], lr)[:, :4], x[:n], info)
    assert denoiser.nfe.tolist() == [2] * n
    torch.testing.assert_close(eps, golden["cfg.out"][:n, :4], atol=1e-4, rtol=0)


def test_recorded_sampling_run_through_the_api(pipe, golden, monkeypatch):
    """DiT's 10-step respaced DDPM with learned variance and CFG 1.5, the recorded noise replayed."""
    import diffusers.schedulers.scheduling_ddpm as ddpm

    noise = iter(golden["sample.noise"][:, :2])
    monkeypatch.setattr(ddpm, "randn_tensor", lambda shape, **kw: next(noise).reshape(shape))
    out = pipe(labels=golden["sample.y"][:2].tolist(), latents=golden["sample.z"][:2], sampler="ddpm", steps=10,
               guidance="cfg", guidance_scale=1.5, output_type="latent")
    ref = golden["sample.x_final"][:2]
    assert (out.images - ref).abs().max() <= 1e-5 * ref.abs().max()
    assert out.nfe == [20, 20]
    assert pipe.spec.image_size == 32 and pipe.spec.null_class == 1000


def test_official_xl_layout_and_inference():
    for entry in ("LaMamba-Diff-XL 256x256 (latent 32x32)", "LaMamba-Diff-XL 512x512 (latent 64x64)"):
        official = {k: tuple(v) for k, v in KEYS[entry]["keys"].items()}
        side = official["pos_embed"][1]
        with torch.device("meta"):
            net = LaMambaNetwork(LaMambaConfig(latent_size=side))
        assert {k: tuple(v) for k, v in expected_shapes(net).items()} == official
        assert sum(p.numel() for p in net.parameters()) == KEYS[entry]["num_params"]
        inferred = infer_lamamba_config({k: torch.empty(v, device="meta") for k, v in official.items()})
        assert inferred == LaMambaConfig(latent_size=side, label_table_rows=1001, decoder_depths=(3, 3, 3, 3),
                                         num_heads=(16,) * 4, ssm_dt_rank=(20, 40, 80, 80))
    assert DEFAULT_XL.resolutions() == [32, 16, 8, 8]


def test_untileable_latent_is_refused():
    with pytest.raises(InvalidRequest, match="windows of 8"):
        LaMambaConfig(latent_size=40)
    with pytest.raises(InvalidRequest, match="patch size"):
        LaMambaConfig(latent_size=33, patch_size=2)


def test_checkpoint_of_another_configuration_lists_the_shapes():
    sd = float32_state(load_file(WEIGHTS))
    other = LaMambaConfig(dims=(16, 32, 64, 64), depths=(2, 1, 1, 1), num_heads=(2, 2, 4, 4), window_size=4,
                          latent_size=16, mlp_ratio=2.0)
    with pytest.raises(WeightsMismatch) as err:
        load_lamamba(sd, other)
    assert "mlp.fc1.weight" in str(err.value) and "(64, 16)" in str(err.value).replace("[", "(").replace("]", ")")


def test_config_and_json_config_through_the_api(tmp_path):
    vae, vae_config = _tiny_vae(tmp_path)
    config = infer_lamamba_config(load_file(WEIGHTS))
    pipe = genloom.load("lamamba", weights=WEIGHTS, config=config, vae=vae, vae_config=vae_config)
    assert pipe.model.config == config
    as_json = {"dims": [16, 32, 64, 64], "depths": [2, 1, 1, 1], "num_heads": [2, 2, 4, 4], "window_size": 4,
               "latent_size": 16, "ssm_dt_rank": [1, 2, 4, 4], "label_table_rows": 1001}
    assert genloom.load("lamamba", weights=WEIGHTS, config=as_json, vae=vae, vae_config=vae_config).model.config \
        == config
    with pytest.raises(WeightsMismatch, match="relative_position_bias_table"):
        genloom.load("lamamba", weights=WEIGHTS, config=dict(as_json, window_size=2), vae=vae,
                     vae_config=vae_config)


def test_cross_scan_and_merge_are_each_others_adjoint():
    from genloom.plugins.lamamba.ss2d import _CrossMerge, _CrossScan, snake_orders

    order = snake_orders(6, 6)
    inverse = torch.argsort(order, dim=1)
    x = torch.randn(2, 3, 36, dtype=torch.float64, requires_grad=True)
    ys = torch.randn(2, 4, 3, 36, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: _CrossScan.apply(t, order, inverse), (x,))
    assert torch.autograd.gradcheck(lambda t: _CrossMerge.apply(t, order, inverse), (ys,))
    assert torch.equal(_CrossMerge.apply(_CrossScan.apply(x, order, inverse), order, inverse), 4 * x)
