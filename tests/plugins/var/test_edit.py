"""Zero-shot editing with a keep-mask (in-painting, out-painting, class editing)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genloom import Engine, InvalidRequest
from genloom.samplers.next_scale import keep_masks

GOLDEN = Path(__file__).parents[2] / "data" / "golden" / "var"


@pytest.fixture(scope="module")
def pipe():
    return Engine(third_party=False, strict=True).load(
        "var", weights=GOLDEN / "var_tiny.safetensors", vae=GOLDEN / "vae.safetensors")


@pytest.fixture(scope="module")
def source():
    return load_file(GOLDEN / "golden_tiny.safetensors")["vq.img"][0].float()  # (3, 64, 64) in [-1, 1]


def test_keep_mask_per_scale():
    mask = torch.zeros(64, 64)
    mask[:, :32] = 1  # keep the left half
    masks = keep_masks(mask, (1, 2, 3, 4))
    assert masks[0].tolist() == [True]  # a one-token scale is always kept
    assert masks[1].view(2, 2).tolist() == [[True, False], [True, False]]
    assert masks[3].view(4, 4)[:, :2].all() and not masks[3].view(4, 4)[:, 2:].any()


def test_full_keep_reproduces_the_source_tokens(pipe, source):
    res = pipe.edit(source, torch.ones(64, 64), label=5, seed=0, output_type="pt", blend=False)
    src_idx = pipe.model.vae.img_to_indices(source[None])
    got = res.telemetry["indices"][0]
    assert all(torch.equal(a, b) for a, b in zip(got, src_idx))
    recon = (pipe.model.vae.indices_to_img(src_idx)[0] + 1) / 2
    torch.testing.assert_close(res.images, recon, atol=1e-5, rtol=0)


def test_inpainting_keeps_outside_and_regenerates_inside(pipe, source):
    keep = torch.ones(64, 64)
    keep[16:48, 16:48] = 0  # regenerate the centre
    res = pipe.edit(source, keep, label=3, num_images=2, seed=[1, 2], output_type="pt", guidance="none")
    src_idx = pipe.model.vae.img_to_indices(source[None])
    last = res.telemetry["indices"][0][-1].view(2, 4, 4)
    want = src_idx[-1].view(1, 4, 4)
    outside = keep_masks(keep, (1, 2, 3, 4))[-1].view(4, 4)
    assert torch.equal(last[:, outside], want.expand(2, 4, 4)[:, outside])
    assert not torch.equal(last[0][~outside], last[1][~outside])  # different seeds fill the hole differently
    again = pipe.edit(source, keep, label=3, num_images=2, seed=[1, 2], output_type="pt", guidance="none")
    assert torch.equal(again.images, res.images)


def test_pil_inputs_and_bad_inputs(pipe, source):
    from PIL import Image

    u8 = ((source.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    mask = Image.fromarray(np.full((64, 64), 255, np.uint8))
    assert len(pipe.edit(Image.fromarray(u8), mask, label=1, seed=0).images) == 1
    with pytest.raises(InvalidRequest, match="model works at 64×64"):
        pipe.edit(np.zeros((32, 32, 3), np.uint8), np.ones((32, 32)), label=1)
    with pytest.raises(InvalidRequest, match="must be \\(64, 64\\)"):
        pipe.edit(u8, np.ones((32, 32)), label=1)
    with pytest.raises(InvalidRequest, match="in \\[0, 1\\]"):
        pipe.edit(u8, np.full((64, 64), 2.0), label=1)
    with pytest.raises(InvalidRequest, match="uint8"):
        pipe.edit(u8.astype(np.float32), np.ones((64, 64)), label=1)
    with pytest.raises(InvalidRequest, match="out of range"):
        pipe.edit(u8, np.ones((64, 64)), label=5000)


def test_models_without_editing_say_so():
    smoke = Engine(third_party=False).load("smoke")
    with pytest.raises(InvalidRequest, match="does not support editing"):
        smoke.edit(np.zeros((32, 32, 3), np.uint8), np.ones((32, 32)), label=1)


def test_blending_keeps_the_kept_pixels_of_real_images_within_8_of_255():
    """On var-shapes and real test images: the kept region stays the source (the blend default), while without the
    blend the VQVAE alone changes it; the regenerated region still changes."""
    import genloom
    from genloom.data import load_split

    shapes = genloom.load("var-shapes")
    images, _ = load_split("test", 8, start=300)
    keep = torch.ones(32, 32)
    keep[8:24, 8:24] = 0  # regenerate the centre
    inside = keep == 0
    for i, image in enumerate(images):
        blended = shapes.edit(image, keep, label=i % 10, seed=i, output_type="pt").images[0] * 2 - 1
        raw = shapes.edit(image, keep, label=i % 10, seed=i, output_type="pt", blend=False).images[0] * 2 - 1
        kept_error = (blended - image).abs()[:, ~inside].mean() * 127.5
        assert kept_error <= 8, kept_error
        torch.testing.assert_close(blended[:, ~inside], image[:, ~inside], atol=1 / 127.5, rtol=0)  # uint8 rounding
        assert torch.equal(blended[:, 9:23, 9:23], raw[:, 9:23, 9:23])  # the hole's interior is the model's
