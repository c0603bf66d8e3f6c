"""Modulated LayerNorm: the Triton kernel in the interpreter against the reference, and VAR's and LaMamba's
golden vectors with GENLOOM_KERNELS=triton."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genloom.engine.errors import InvalidRequest
from genloom.kernels.dispatch import default_dispatcher
from genloom.kernels.modulated_norm import modulated_layer_norm

DATA = Path(__file__).parents[1] / "data" / "golden"


@pytest.mark.parametrize("shape,affine,dtype", [((2, 5, 48), False, torch.float32),
                                                ((3, 4, 4, 20), True, torch.float32),
                                                ((2, 7, 33), True, torch.float16), ((1, 3, 64), False, torch.bfloat16)])
def test_triton_matches_the_reference(shape, affine, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    x = (torch.randn(shape, generator=g) * 3 + 1).to(dtype)
    c = shape[-1]
    shift = torch.randn(shape[0], 1, c, generator=g).to(dtype)
    scale = (0.5 * torch.randn(shape[0], 1, c, generator=g)).to(dtype)
    weight = (1 + 0.2 * torch.randn(c, generator=g)).to(dtype) if affine else None
    bias = (0.2 * torch.randn(c, generator=g)).to(dtype) if affine else None
    got = default_dispatcher()("modulated_layer_norm", x, shift, scale, weight, bias, 1e-5, backend="triton")
    ref = modulated_layer_norm(x.float(), shift.float(), scale.float(), None if weight is None else weight.float(),
                               None if bias is None else bias.float(), 1e-5)
    tol = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 6e-2}[dtype]
    assert got.dtype == dtype and got.shape == x.shape
    torch.testing.assert_close(got.float(), ref, atol=tol, rtol=tol)


def test_shift_and_scale_must_be_per_sample():
    x = torch.zeros(2, 3, 8)
    with pytest.raises(InvalidRequest, match="one \\(8,\\) vector per sample"):
        default_dispatcher()("modulated_layer_norm", x, torch.zeros(2, 3, 8), torch.zeros(2, 1, 8))


def test_var_golden_forward_with_triton_kernels(monkeypatch):
    from genloom.plugins.var.model import load_var

    monkeypatch.setenv("GENLOOM_KERNELS", "triton")
    golden = DATA / "var"
    var, _, _ = load_var(load_file(golden / "var_tiny.safetensors"), load_file(golden / "vae.safetensors"), None)
    g = load_file(golden / "golden_tiny.safetensors")
    with torch.no_grad():
        logits = var(g["fwd.label_B"], g["fwd.x_BLCv_wo_first_l"])
    torch.testing.assert_close(logits, g["fwd.logits_BLV"], atol=1e-3, rtol=0)


def test_lamamba_golden_block_with_triton_kernels(monkeypatch):
    from genloom.plugins.lamamba.model import load_lamamba

    monkeypatch.setenv("GENLOOM_KERNELS", "triton")
    net = load_lamamba(load_file(DATA / "lamamba" / "lamamba_tiny.safetensors"))[0]
    g = load_file(DATA / "lamamba" / "golden_tiny.safetensors")
    with torch.no_grad():
        out = net.mid_layer.blocks[1](g["block2.x"], g["block2.c"])
    torch.testing.assert_close(out, g["block2.out"], atol=1e-4, rtol=0)

