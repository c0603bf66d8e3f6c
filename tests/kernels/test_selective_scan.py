"""Both PyTorch forms of the selective scan against the official reference's vectors (shared/golden/selective_scan,
tolerances from its manifest), through the dispatcher, plus fresh random cases against a float64 loop."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genloom.engine.errors import InvalidRequest
from genloom.kernels.dispatch import default_dispatcher
from genloom.kernels.selective_scan import selective_scan_chunked, selective_scan_reference

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "selective_scan"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
TOLERANCE = {torch.float32: (1e-4, 1e-4), torch.float16: (1e-3, 2e-3), torch.bfloat16: (1e-2, 1.6e-2)}
ARGS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


@pytest.fixture(scope="module")
def golden():
    return load_file(GOLDEN / MANIFEST["golden_file"])


def _within(out, ref, dtype):
    atol, rtol = TOLERANCE[dtype]
    return bool(((out.float() - ref.float()).abs() <= atol + rtol * ref.float().abs()).all())


@pytest.mark.parametrize("backend", ["torch", "auto"])
@pytest.mark.parametrize("case", sorted(MANIFEST["cases"]))
def test_official_vectors(golden, case, backend):
    meta = MANIFEST["cases"][case]
    args = {k: golden.get(f"{case}.{k}") for k in ARGS}
    out = default_dispatcher()("selective_scan", **args, delta_softplus=meta["delta_softplus"],
                               return_last_state=meta["return_last_state"], backend=backend)
    y, last = out if meta["return_last_state"] else (out, None)
    ref = golden[f"{case}.out"]
    assert y.dtype == ref.dtype and y.shape == ref.shape
    assert _within(y, ref, ref.dtype)
    if last is not None:
        assert last.dtype == torch.float32 and _within(last, golden[f"{case}.last_state"], torch.float32)


def _float64_loop(u, delta, A, B, C, D, delta_bias):
    """An independent loop in float64 (grouped B/C, softplus, D; no z)."""
    u, delta, A, B, C, D, bias = (t.double() for t in (u, delta, A, B, C, D, delta_bias))
    b, d, length = u.shape
    g = B.shape[1]
    dt = torch.nn.functional.softplus(delta + bias[:, None])
    h = torch.zeros(b, d, A.shape[1], dtype=torch.float64)
    ys = []
    for i in range(length):
        bi = B[:, :, :, i].repeat_interleave(d // g, dim=1)
        ci = C[:, :, :, i].repeat_interleave(d // g, dim=1)
        h = torch.exp(dt[:, :, i, None] * A) * h + dt[:, :, i, None] * bi * u[:, :, i, None]
        ys.append((h * ci).sum(-1))
    return torch.stack(ys, 2) + u * D[:, None], h


@pytest.mark.parametrize("length,groups,states,chunk", [(1, 1, 1, None), (37, 4, 1, None), (100, 2, 3, 7),
                                                        (129, 8, 16, None), (64, 4, 1, 64)])
def test_random_cases_against_float64(length, groups, states, chunk):
    g = torch.Generator().manual_seed(length)
    b, d = 2, 16
    u, delta = torch.randn(b, d, length, generator=g), torch.randn(b, d, length, generator=g)
    A = -torch.exp(torch.rand(d, states, generator=g) * 2.5 - 1)
    B, C = torch.randn(b, groups, states, length, generator=g), torch.randn(b, groups, states, length, generator=g)
    D, bias = torch.randn(d, generator=g), torch.randn(d, generator=g) * 0.5
    ref, ref_h = _float64_loop(u, delta, A, B, C, D, bias)
    for y, h in (selective_scan_reference(u, delta, A, B, C, D, None, bias, True, True),
                 selective_scan_chunked(u, delta, A, B, C, D, None, bias, True, True, chunk=chunk)):
        torch.testing.assert_close(y.double(), ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(h.double(), ref_h, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("layout", ["grouped", "shared", "const"])
@pytest.mark.parametrize("softplus,with_z,last", [(True, False, False), (False, True, True)])
def test_chunked_analytic_gradients_match_autograd_through_the_reference(layout, softplus, with_z, last):
    g = torch.Generator().manual_seed(0)
    b, d, n, length = 2, 8, 3, 23
    bc_shape = {"grouped": (b, 2, n, length), "shared": (b, n, length), "const": (d, n)}[layout]
    shapes = {"u": (b, d, length), "delta": (b, d, length), "A": (d, n), "B": bc_shape, "C": bc_shape, "D": (d,),
              "delta_bias": (d,), **({"z": (b, d, length)} if with_z else {})}
    leaves = {k: torch.randn(s, generator=g, requires_grad=True) for k, s in shapes.items()}
    if not softplus:  # raw steps must be positive then (decays in (0, 1]), as in Mamba's own tests
        leaves["delta"] = torch.rand(b, d, length, generator=g).requires_grad_()
        leaves["delta_bias"] = torch.rand(d, generator=g).requires_grad_()
    weight = torch.randn(b, d, length, generator=g)
    grads = []
    for fn in (selective_scan_reference, selective_scan_chunked):
        args = dict(leaves, A=-torch.exp(leaves["A"]))
        out = fn(**args, delta_softplus=softplus, return_last_state=last)
        loss = (out[0] * weight).sum() + out[1].square().sum() if last else (out * weight).sum()
        grads.append(torch.autograd.grad(loss, list(leaves.values())))
    for name, ga, gb in zip(leaves, *grads):
        torch.testing.assert_close(gb, ga, atol=2e-4, rtol=2e-4, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("change,match", [
    ({"delta": torch.zeros(2, 8, 5)}, "delta must have u's shape"),
    ({"A": torch.zeros(4, 1)}, r"A must be \(D, N\)"),
    ({"B": torch.zeros(2, 3, 1, 7)}, "G dividing D"),
    ({"D": torch.zeros(3)}, "D must have shape"),
])
def test_mismatched_shapes_are_refused(change, match):
    args = {"u": torch.zeros(2, 8, 7), "delta": torch.zeros(2, 8, 7), "A": -torch.ones(8, 1),
            "B": torch.zeros(2, 4, 1, 7), "C": torch.zeros(2, 4, 1, 7), **change}
    for backend in ("torch", "auto"):
        with pytest.raises(InvalidRequest, match=match):
            default_dispatcher()("selective_scan", backend=backend, **args)


@pytest.mark.parametrize("length,chunk", [(1, None), (23, 5), (64, None), (100, 7)])
def test_reverse_chunked_states_equal_the_flipped_forward_ones(length, chunk):
    from genloom.kernels.selective_scan import scan_states

    g = torch.Generator().manual_seed(length)
    a = torch.rand(2, 3, 2, length, generator=g)
    bu = torch.randn(2, 3, 2, length, generator=g)
    rev, last = scan_states(a, bu, chunk, reverse=True)
    ref, ref_last = scan_states(a.flip(-1), bu.flip(-1), chunk)
    torch.testing.assert_close(rev, ref.flip(-1))
    torch.testing.assert_close(last, ref_last)


@pytest.mark.parametrize("b_shape,c_shape,length,chunk", [
    ((2, 2, 3, 29), (2, 4, 3, 29), 29, None),   # groups differ between B and C
    ((8, 3), (2, 3, 29), 29, 4),                # time-invariant B, shared C
    ((2, 8, 3, 50), (8, 3), 50, 7),             # one group per channel, time-invariant C
    ((2, 1, 16, 64), (2, 1, 16, 64), 64, None),  # a whole number of chunks
])
def test_inference_form_equals_the_differentiable_one(b_shape, c_shape, length, chunk):
    """Without gradients the chunked scan runs a chunk-major forward; it must agree with the autograd form (and
    with the reference) for every layout of B and C."""
    g = torch.Generator().manual_seed(length)
    n = b_shape[-2] if len(b_shape) > 2 else b_shape[-1]
    u, delta, z = (torch.randn(2, 8, length, generator=g) for _ in range(3))
    A = -torch.exp(torch.randn(8, n, generator=g))
    B, C = torch.randn(b_shape, generator=g), torch.randn(c_shape, generator=g)
    D, bias = torch.randn(8, generator=g), torch.randn(8, generator=g)
    kw = dict(D=D, z=z, delta_bias=bias, delta_softplus=True, return_last_state=True)
    with torch.no_grad():
        fast = selective_scan_chunked(u, delta, A, B, C, chunk=chunk, **kw)
    grad = selective_scan_chunked(u.requires_grad_(), delta, A, B, C, chunk=chunk, **kw)
    ref = selective_scan_reference(u, delta, A, B, C, **kw)
    for got in (fast, tuple(t.detach() for t in grad)):
        for x, r in zip(got, ref):
            torch.testing.assert_close(x, r.detach(), atol=1e-4, rtol=1e-4)
