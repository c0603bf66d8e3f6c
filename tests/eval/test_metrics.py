"""Fréchet distance, precision/recall, accuracy tables and ADM npz files."""

import numpy as np
import pytest

from genloom import InvalidRequest
from genloom.eval import class_accuracy, frechet_distance, precision_recall, read_npz, write_npz


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, a + np.array([3.0, 0, 4.0])) == pytest.approx(25.0, abs=1e-6)
    b = rng.normal(size=(4000, 3)) * np.array([1.0, 2.0, 3.0])
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # a near-diagonal case: FD ≈ Σ (√σa − √σb)² + ‖μa − μb‖²
    approx = np.sum((np.sqrt(np.diag(ca)) - np.sqrt(np.diag(cb))) ** 2) + np.sum((a.mean(0) - b.mean(0)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(approx, rel=0.05)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    with pytest.raises(InvalidRequest, match="at least 2"):
        frechet_distance(a[:1], a)


def test_precision_recall_overlap_and_disjoint():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(600, 4)), rng.normal(size=(600, 4))
    p, r = precision_recall(real, fake, k=3)
    assert p > 0.8 and r > 0.8
    p, r = precision_recall(real, fake + 50.0, k=3)
    assert p == 0.0 and r == 0.0
    p, r = precision_recall(real, fake * 0.1, k=3)  # collapsed: precise, poor recall
    assert p > 0.9 and r < 0.3
    with pytest.raises(InvalidRequest, match="more than 3"):
        precision_recall(real[:3], fake)


def test_class_accuracy_table():
    acc, table = class_accuracy(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), num_classes=4)
    assert acc == 0.75
    assert [(row["count"], row["accuracy"]) for row in table[:3]] == [(1, 1.0), (1, 1.0), (2, 0.5)]
    assert table[3]["count"] == 0 and np.isnan(table[3]["accuracy"])


def test_npz_roundtrip_and_bad_files(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    path = write_npz(tmp_path / "s.npz", imgs, np.arange(5))
    back, labels = read_npz(path)
    assert np.array_equal(back, imgs) and labels.tolist() == [0, 1, 2, 3, 4]
    assert read_npz(write_npz(tmp_path / "nolabels.npz", imgs))[1] is None
    cases = {
        "rgba.npz": ({"arr_0": np.zeros((2, 8, 8, 4), np.uint8)}, "shaped"),
        "chw.npz": ({"arr_0": np.zeros((2, 3, 8, 8), np.uint8)}, "shaped"),
        "float.npz": ({"arr_0": np.zeros((2, 8, 8, 3), np.float32)}, "uint8"),
        "empty.npz": ({"arr_0": np.zeros((0, 8, 8, 3), np.uint8)}, "empty"),
        "mismatch.npz": ({"arr_0": imgs, "arr_1": np.arange(4)}, "one label per image"),
        "floatlabels.npz": ({"arr_0": imgs, "arr_1": np.zeros(5)}, "integers"),
        "other.npz": ({"images": imgs}, "no 'arr_0'"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(InvalidRequest, match=message):
            read_npz(tmp_path / name)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidRequest, match="not a readable"):
        read_npz(tmp_path / "junk.npz")
    with pytest.raises(InvalidRequest, match="not found"):
        read_npz(tmp_path / "missing.npz")
