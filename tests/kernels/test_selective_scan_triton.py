"""The Triton selective scan in Triton's CPU interpreter (TRITON_INTERPRET=1, set in conftest) against the
official vectors and the reference, and LaMamba's SS2D golden with GENLOOM_KERNELS=triton."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genloom.engine.errors import DeviceError
from genloom.kernels.dispatch import default_dispatcher
from genloom.kernels.selective_scan import selective_scan_reference

DATA = Path(__file__).parents[1] / "data" / "golden"
MANIFEST = json.loads((DATA / "selective_scan" / "manifest.json").read_text())
TOLERANCE = {torch.float32: (1e-4, 1e-4), torch.float16: (1e-3, 2e-3), torch.bfloat16: (1e-2, 1.6e-2)}
ARGS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _within(out, ref):
    atol, rtol = TOLERANCE[ref.dtype]
    return bool(((out.float() - ref.float()).abs() <= atol + rtol * ref.float().abs()).all())


@pytest.fixture(scope="module")
def golden():
    return load_file(DATA / "selective_scan" / MANIFEST["golden_file"])


@pytest.mark.parametrize("case", sorted(MANIFEST["cases"]))
def test_official_vectors(golden, case):
    meta = MANIFEST["cases"][case]
    args = {k: golden.get(f"{case}.{k}") for k in ARGS}
    y, last = default_dispatcher()("selective_scan", **args, delta_softplus=meta["delta_softplus"],
                                   return_last_state=True, backend="triton")
    assert y.dtype == golden[f"{case}.out"].dtype and _within(y, golden[f"{case}.out"])
    if f"{case}.last_state" in golden:
        assert _within(last, golden[f"{case}.last_state"])


@pytest.mark.parametrize("b,d,n,length,layout", [(1, 70, 3, 5, "grouped"), (3, 5, 1, 9, "shared"),
                                                 (2, 130, 2, 4, "const")])
def test_ragged_channel_blocks_against_the_reference(b, d, n, length, layout):
    """Channel counts that the 64-wide blocks do not divide, state sizes that are not powers of two."""
    g = torch.Generator().manual_seed(d)
    bc = {"grouped": (b, 2 if d % 2 == 0 else 1, n, length), "shared": (b, n, length), "const": (d, n)}[layout]
    args = dict(u=torch.randn(b, d, length, generator=g), delta=torch.randn(b, d, length, generator=g),
                A=-torch.rand(d, n, generator=g) - 0.1, B=torch.randn(bc, generator=g),
                C=torch.randn(bc, generator=g), D=torch.randn(d, generator=g), z=torch.randn(b, d, length, generator=g),
                delta_bias=torch.randn(d, generator=g))
    y, h = default_dispatcher()("selective_scan", **args, delta_softplus=True, return_last_state=True,
                                backend="triton")
    ry, rh = selective_scan_reference(**args, delta_softplus=True, return_last_state=True)
    torch.testing.assert_close(y, ry, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, rh, atol=1e-5, rtol=1e-5)


def test_unsupported_dtype_is_a_typed_error_naming_the_alternative():
    x = torch.zeros(1, 2, 3, dtype=torch.float64)
    with pytest.raises(DeviceError, match="float64.*GENLOOM_KERNELS=auto"):
        default_dispatcher()("selective_scan", x, x, -torch.ones(2, 1, dtype=torch.float64),
                             torch.zeros(2, 1, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64),
                             backend="triton")


def test_lamamba_ss2d_golden_with_triton_kernels(monkeypatch):
    from genloom.plugins.lamamba.model import load_lamamba

    monkeypatch.setenv("GENLOOM_KERNELS", "triton")
    golden = load_file(DATA / "lamamba" / "golden_tiny.safetensors")
    net = load_lamamba(load_file(DATA / "lamamba" / "lamamba_tiny.safetensors"))[0]
    with torch.no_grad():
        out = net.layers_up[2].blocks[0].op(golden["ss2d1.x"])
    torch.testing.assert_close(out, golden["ss2d1.out"], atol=1e-4, rtol=0)
