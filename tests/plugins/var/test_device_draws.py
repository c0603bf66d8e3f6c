"""Next-scale codes drawn on the device (`draws="device"`): the inverse-CDF draw is exact in distribution and never
picks a filtered code, an image depends only on its seed, and the host path stays the official one."""

from pathlib import Path

import pytest
import torch

from genloom import Engine, InvalidRequest
from genloom.engine.seeding import ImageRNG
from genloom.samplers.next_scale import filter_logits_, inverse_cdf_draw, sample_next_scale

GOLDEN = Path(__file__).parents[2] / "data" / "golden" / "var"


def test_inverse_cdf_draws_follow_the_probabilities_and_skip_zero_mass_codes():
    probs = torch.tensor([0.0, 0.1, 0.0, 0.4, 0.2, 0.3, 0.0])
    n = 200_000
    u = torch.rand((1, n), generator=torch.Generator().manual_seed(0))
    idx = inverse_cdf_draw(probs.expand(1, n, -1), u)
    freq = torch.bincount(idx.flatten(), minlength=7).float() / n
    assert torch.allclose(freq, probs, atol=4e-3)  # ~4σ of a binomial at n = 200 000
    assert freq[[0, 2, 6]].sum() == 0
    edges = torch.tensor([[0.0, 0.1 - 1e-7, 0.1, 1 - 2 ** -24]])  # u = 0, just below/at a boundary, u·total → total
    assert inverse_cdf_draw(probs.expand(1, 4, -1), edges).tolist() == [[1, 1, 3, 5]]
    unnormalised = (probs * 7).expand(1, 4, -1)  # the draw scales u by the row total
    assert inverse_cdf_draw(unnormalised, edges).tolist() == [[1, 1, 3, 5]]


@pytest.fixture(scope="module")
def pipe():
    engine = Engine(third_party=False, strict=True)
    return engine.load("var", weights=GOLDEN / "var_tiny.safetensors", vae=str(GOLDEN / "vae.safetensors"))


def test_device_draws_depend_only_on_each_images_seed_and_respect_top_k_top_p(pipe):
    kw = dict(guidance="cfg", guidance_scale=3.0, top_k=50, top_p=0.9, draws="device", output_type="pt")
    pair = pipe(labels=[3, 7], seed=[11, 12], **kw)
    alone = pipe(labels=[7], seed=[12], **kw)
    again = pipe(labels=[3, 7], seed=[11, 12], **kw)
    assert torch.equal(pair.images, again.images)
    codes_pair, codes_alone = pair.telemetry["indices"][0], alone.telemetry["indices"][0]  # per batch, per scale
    assert all(torch.equal(a[1], b[0]) for a, b in zip(codes_pair, codes_alone, strict=True))
    assert torch.allclose(pair.images[1], alone.images[0], atol=1e-4)  # batched arithmetic: ~1e-5 (architecture)
    host = pipe(labels=[3, 7], seed=[11, 12], **dict(kw, draws="host"))
    assert not torch.equal(host.images, pair.images)  # other numbers, same distribution

    model = pipe.model
    out = sample_next_scale(model, torch.tensor([3, 7]), ImageRNG([11, 12]), top_k=50, top_p=0.9, draws="device",
                            keep_guided_logits=True)
    for logits, idx in zip(out.guided_logits, out.indices, strict=True):
        allowed = filter_logits_(logits.clone(), 50, 0.9) > -torch.inf
        assert bool(allowed.gather(-1, idx.unsqueeze(-1)).all())  # never a code the filters removed


def test_auto_draws_on_the_host_on_a_cpu_and_an_unknown_mode_is_refused(pipe):
    a = pipe(labels=[1], seed=5, output_type="pt")
    b = pipe(labels=[1], seed=5, draws="host", output_type="pt")
    assert torch.equal(a.images, b.images)
    with pytest.raises(InvalidRequest, match="draws"):
        pipe(labels=[1], seed=5, draws="gpu")
