"""Guidance combine: the reference is CFG's official arithmetic bit for bit, per-sample strengths and several
references follow the formula, and the Triton kernel (interpreter) matches the reference, rescale included."""

import pytest
import torch

from genloom.engine.errors import InvalidRequest
from genloom.kernels.dispatch import default_dispatcher
from genloom.kernels.guidance_combine import guidance_combine


def _inputs(shape, refs, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    cond = torch.randn(shape, generator=g).to(dtype)
    return cond, [torch.randn(shape, generator=g).to(dtype) for _ in range(refs)]


def test_one_shared_strength_is_cfgs_official_operation_order_bit_for_bit():
    cond, (ref,) = _inputs((3, 4, 5, 5), 1, 0)
    for s in (0.5, 1.0 / 3.0, 4.0 * 2 / 9):  # VAR's ramp gives arbitrary strengths
        got = guidance_combine(cond, [ref], torch.full((1, 3), s, dtype=torch.float64))
        assert torch.equal(got, (1 + s) * cond - s * ref)


def test_per_sample_strengths_several_references_and_the_rescale_follow_the_formula():
    cond, refs = _inputs((4, 3, 6, 6), 2, 1, torch.float64)
    scales = torch.tensor([[0.0, 1.0, 2.5, 0.5], [0.0, 0.0, 1.0, 3.0]], dtype=torch.float64)
    got = guidance_combine(cond, refs, scales)
    want = cond + sum(scales[r].reshape(-1, 1, 1, 1) * (cond - refs[r]) for r in range(2))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert torch.equal(got[0], cond[0])  # strength 0: the conditional prediction
    phi = 0.7
    rescaled = guidance_combine(cond, refs, scales, rescale=phi)
    ratio = cond.std(dim=(1, 2, 3), keepdim=True) / want.std(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(rescaled, phi * want * ratio + (1 - phi) * want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,refs,rescale,dtype", [((2, 4, 8, 8), 1, 0.0, torch.float32),
                                                       ((3, 5, 37), 2, 0.0, torch.float32),
                                                       ((2, 3, 33, 33), 1, 0.7, torch.float32),
                                                       ((3, 1100), 3, 0.5, torch.float32),
                                                       ((2, 4, 9, 9), 2, 0.0, torch.bfloat16),
                                                       ((2, 4, 9, 9), 1, 0.7, torch.float16)])
def test_triton_matches_the_reference(shape, refs, rescale, dtype):
    cond, others = _inputs(shape, refs, sum(shape), dtype)
    scales = torch.rand((refs, shape[0]), generator=torch.Generator().manual_seed(3)) * 3
    got = default_dispatcher()("guidance_combine", cond, others, scales, rescale, backend="triton")
    ref = guidance_combine(cond.double(), [r.double() for r in others], scales.double(), rescale)
    tol = {torch.float32: 2e-5, torch.float16: 1e-2, torch.bfloat16: 8e-2}[dtype]
    assert got.dtype == dtype and got.shape == cond.shape
    torch.testing.assert_close(got.double(), ref, atol=tol * (1 + ref.abs().max().item()), rtol=tol)


def test_references_of_another_shape_and_misshaped_strengths_are_typed_errors():
    cond, (ref,) = _inputs((2, 3, 4), 1, 0)
    with pytest.raises(InvalidRequest, match="reference 0 has shape"):
        guidance_combine(cond, [ref[:1]], torch.ones(1, 2))
    with pytest.raises(InvalidRequest, match=r"scales must be \(references, batch\) = \(1, 2\)"):
        guidance_combine(cond, [ref], torch.ones(2))
    with pytest.raises(InvalidRequest, match="at least one reference"):
        guidance_combine(cond, [], torch.ones(0, 2))
