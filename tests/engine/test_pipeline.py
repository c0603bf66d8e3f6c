"""The Python API: generation, seeding, batching, progress, cancel, manifests and every bad input."""

import math

import numpy as np
import pytest
import torch

import genloom
from genloom import CancelToken, DeviceError, GenerationCancelled, InvalidRequest, ModelNotFound
from genloom.engine.seeding import ImageRNG


@pytest.fixture(scope="module")
def pipe():
    return genloom.load("smoke")


def test_generates_pil_pt_and_np(pipe):
    res = pipe(labels=[3, 7], seed=0)
    assert len(res.images) == 2 and res.images[0].size == (32, 32) and res.images[0].mode == "RGB"
    assert res.seeds == [0, 1] and res.labels == [3, 7] and res.nfe == [1, 1]
    pt = pipe(labels=[3, 7], seed=0, output_type="pt").images
    assert pt.shape == (2, 3, 32, 32) and pt.dtype == torch.float32 and 0 <= pt.min() and pt.max() <= 1
    arr = pipe(labels=[3, 7], seed=0, output_type="np").images
    assert arr.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(np.asarray(res.images[1]), (arr[1] * 255).round().astype(np.uint8))
    assert pt.std() > 0.05  # real images, not a constant


def test_same_seed_same_image_and_different_seed_differs(pipe):
    a = pipe(labels=[1], seed=42, output_type="pt").images
    b = pipe(labels=[1], seed=42, output_type="pt").images
    c = pipe(labels=[1], seed=43, output_type="pt").images
    d = pipe(labels=[2], seed=42, output_type="pt").images
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, d)


def test_noise_depends_only_on_the_seed():
    seeds = [11, 12, 13, 14, 15, 16, 17, 18]
    batch = ImageRNG(seeds).randn((4, 5))
    for i, s in enumerate(seeds):
        assert torch.equal(ImageRNG([s]).randn((4, 5))[0], batch[i])
    assert torch.equal(ImageRNG(seeds).subset([2, 5]).randn((3,)), ImageRNG([13, 16]).randn((3,)))
    shuffled = ImageRNG(seeds[::-1]).randn((4, 5))
    assert torch.equal(shuffled.flip(0), batch)


def test_image_alone_equals_image_in_a_batch_of_8(pipe):
    labels = [0, 1, 2, 3, 4, 5, 6, 7]
    exact = pipe(labels=labels, seed=100, batch_invariant=True)
    fast = pipe(labels=labels, seed=100, output_type="pt")
    for i in (0, 4, 7):
        alone = pipe(labels=[labels[i]], seed=[100 + i])
        assert np.array_equal(np.asarray(alone.images[0]), np.asarray(exact.images[i]))
        alone_pt = pipe(labels=[labels[i]], seed=[100 + i], output_type="pt").images[0]
        # batched arithmetic (BLAS/conv kernels chosen per batch size) stays within float rounding
        assert torch.allclose(alone_pt, fast.images[i], atol=1e-5, rtol=0)
    assert exact.manifest["request"]["batch_invariant"] is True


def test_batch_size_splits_do_not_change_results(pipe):
    whole = pipe(labels=[1, 2, 3, 4, 5], seed=7, batch_size=5, output_type="pt").images
    split = pipe(labels=[1, 2, 3, 4, 5], seed=7, batch_size=2, output_type="pt").images
    assert torch.allclose(whole, split, atol=1e-5, rtol=0)


def test_labels_by_name_broadcast_and_random(pipe):
    assert pipe(labels="class4", num_images=3, seed=0).labels == [4, 4, 4]
    assert pipe(labels=np.array([1, 2]), seed=0).labels == [1, 2]
    assert pipe(labels=torch.tensor([5]), seed=0).labels == [5]
    r1, r2 = pipe(num_images=6, seed=9), pipe(num_images=6, seed=9)
    assert r1.labels == r2.labels and all(0 <= lab < 10 for lab in r1.labels)


def test_progress_events_and_cancel(pipe):
    events = []
    pipe(labels=list(range(6)), seed=0, batch_size=2, progress=events.append)
    assert [(e.batch, e.step, e.num_steps) for e in events] == [(0, 1, 1), (1, 1, 1), (2, 1, 1)]
    assert events[-1].fraction == 1.0 and events[0].num_batches == 3 and events[1].images_done == 2

    token = CancelToken()
    seen = []

    def cancel_after_first(event):
        seen.append(event)
        token.cancel()

    with pytest.raises(GenerationCancelled):
        pipe(labels=list(range(6)), seed=0, batch_size=2, progress=cancel_after_first, cancel=token)
    assert len(seen) == 1  # stopped right after the step that saw the cancel
    pre = CancelToken()
    pre.cancel()
    with pytest.raises(GenerationCancelled):
        pipe(labels=[1], cancel=pre)


def test_manifest_reproduces_the_run(pipe, tmp_path):
    res = pipe(labels=[2, 9], seed=5)
    man = res.manifest
    assert man["model"] == "smoke" and man["paradigm"] == "one-step" and man["request"]["seed"] == [5, 6]
    sha = genloom.engine.weights.sha256_file(genloom.engine.weights.asset_path("smoke.safetensors"))
    assert man["weights"] == [{"source": "asset:smoke.safetensors", "file": "smoke.safetensors", "sha256": sha}]
    paths = res.save(tmp_path)
    assert [p.name for p in paths] == ["0000_s5_c2.png", "0001_s6_c9.png"]
    again = genloom.reproduce(tmp_path / "manifest.json")
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(res.images, again.images))


def test_timings_are_reported(pipe):
    t = pipe(labels=[0], seed=0).timings
    assert {"total_s", "sampling_s", "convert_s", "per_image_s"} <= set(t) and t["total_s"] > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"labels": [10]}, "out of range"),
        ({"labels": [-1]}, "out of range"),
        ({"labels": [1.5]}, "integer class index"),
        ({"labels": [True]}, "integer class index"),
        ({"labels": "dog"}, "Unknown class name 'dog'"),
        ({"labels": "clas3"}, "Did you mean 'class3'"),
        ({"labels": []}, "labels is empty"),
        ({"labels": {1: 2}}, "labels must be"),
        ({"labels": [1, 2], "num_images": 3}, "Got 2 labels but num_images=3"),
        ({"num_images": 0}, "at least 1"),
        ({"num_images": -2}, "at least 1"),
        ({"num_images": 2.0}, "positive integer"),
        ({"labels": [1], "guidance_scale": math.nan}, "finite"),
        ({"labels": [1], "guidance_scale": math.inf}, "finite"),
        ({"labels": [1], "guidance_scale": -1.0}, ">= 0"),
        ({"labels": [1], "guidance_scale": "3"}, "must be a number"),
        ({"labels": [1], "guidance_scale": 3.0}, "one-step generator"),
        ({"labels": [1], "guidance": "cfg"}, "one-step generator"),
        ({"labels": [1], "sampler": "ddmi"}, "Unknown sampler 'ddmi'"),
        ({"labels": [1], "sampler": "ddim"}, "Sampler 'ddim' is for diffusion models"),
        ({"labels": [1], "steps": 25}, "generates in one step"),
        ({"labels": [1], "steps": 0}, "at least 1"),
        ({"labels": [1], "batch_size": 0}, "at least 1"),
        ({"labels": [1], "output_type": "jpeg"}, "output_type"),
        ({"labels": [1], "rng": "global"}, "rng must be"),
        ({"labels": [1], "seed": -1}, "seed must be"),
        ({"labels": [1, 2], "seed": [1]}, "one seed per image"),
        ({"labels": [1], "seed": "0"}, "seed must be"),
        ({"labels": [1], "top_k": 5}, "Unknown option .top_k. for sampler .one-step."),
    ],
)
def test_bad_requests_are_typed_and_explained(pipe, kwargs, message):
    with pytest.raises(InvalidRequest, match=message):
        pipe(**kwargs)
    assert pipe(labels=[1], seed=0).nfe == [1]  # nothing else disturbed


def test_unknown_model_device_and_dtype():
    with pytest.raises(ModelNotFound, match="Did you mean 'smoke'"):
        genloom.load("smok")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            genloom.load("smoke", device="cuda")
    with pytest.raises(DeviceError, match="Unknown device"):
        genloom.load("smoke", device="tpu9")
    with pytest.raises(DeviceError, match="Unknown dtype"):
        genloom.load("smoke", dtype="fp8")
    bf16 = genloom.load("smoke", dtype="bf16")
    assert bf16.model.dtype == torch.bfloat16
    assert bf16(labels=[1], seed=0).manifest["dtype"] == "bfloat16"


def test_errors_share_one_hierarchy():
    for cls in (genloom.ModelNotFound, genloom.InvalidRequest, genloom.WeightsError, genloom.WeightsMismatch,
                genloom.UnsafeCheckpoint, genloom.PluginError, genloom.GenerationCancelled, genloom.DeviceError):
        assert issubclass(cls, genloom.GenloomError)
