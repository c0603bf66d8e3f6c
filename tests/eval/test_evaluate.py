"""End-to-end evaluation against the embedded dataset with the reference classifier."""

import numpy as np
import pytest
import torch

from genloom import InvalidRequest, NotRegistered
from genloom.data import render
from genloom.eval import evaluate
from genloom.eval.inception import inception_metrics

N = 400


@pytest.fixture(scope="module")
def val_images():
    images, labels = render("val", 0, N)
    return images.permute(0, 2, 3, 1).numpy(), labels.numpy()


def test_real_images_score_well_and_deterministically(val_images):
    images, labels = val_images
    report = evaluate(images, labels, num_reference=N, subsets=4)
    assert report.accuracy >= 0.98 and report.num_samples == N and report.num_reference == N
    assert report.precision > 0.6 and report.recall > 0.6
    again = evaluate(images, labels, num_reference=N, subsets=4)
    assert report.to_dict() == again.to_dict()
    assert len(report.per_class) == 10 and sum(r["count"] for r in report.per_class) == N
    assert "class accuracy" in report.table() and "ring" in report.table(("circle", "square", "triangle", "ring"))


def test_corruption_raises_fd_and_lowers_accuracy(val_images):
    images, labels = val_images
    clean = evaluate(images, labels, num_reference=N, subsets=4)
    noise = np.random.default_rng(0).integers(0, 256, size=images.shape, dtype=np.uint8)
    noisy = evaluate(noise, labels, num_reference=N, subsets=4)
    assert noisy.fd > 20 * clean.fd and noisy.accuracy < 0.5
    one_class = np.repeat(images[labels == 0], 10, axis=0)[:N]
    collapsed = evaluate(one_class, np.zeros(N, dtype=np.int64), num_reference=N, subsets=4)
    assert collapsed.fd > 10 * clean.fd and collapsed.recall < 0.3
    wrong = evaluate(images, (labels + 1) % 10, num_reference=N, subsets=4)
    assert wrong.accuracy < 0.05 and wrong.fd == clean.fd


def test_bad_inputs(val_images):
    images, labels = val_images
    with pytest.raises(InvalidRequest, match="32×32"):
        evaluate(images[:, :16, :16], labels, num_reference=N)
    with pytest.raises(InvalidRequest, match="one label per image"):
        evaluate(images, labels[:-1], num_reference=N)
    with pytest.raises(InvalidRequest, match="Labels must lie in 0..9"):
        evaluate(images, labels + 5, num_reference=N)
    with pytest.raises(InvalidRequest, match="empty"):
        evaluate(images[:0])
    with pytest.raises(InvalidRequest, match="uint8 images shaped"):
        evaluate(images[..., :1])
    with pytest.raises(NotRegistered, match="Unknown classifier"):
        evaluate(images, labels, classifier="inception-ish")
    with pytest.raises(InvalidRequest, match="neither a shapes split"):
        evaluate(images, labels, reference="holdout")
    with pytest.raises(InvalidRequest, match="subsets"):
        evaluate(images[:4], labels[:4], subsets=3)


def test_standard_fid_needs_inception_weights(tmp_path):
    u8 = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(InvalidRequest, match="--inception-weights"):
        inception_metrics(u8, u8, None)
    with pytest.raises(InvalidRequest, match="not found"):
        inception_metrics(u8, u8, tmp_path / "pt_inception.pth")
