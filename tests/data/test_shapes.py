"""The embedded dataset: deterministic, balanced, disjoint splits, varied, in [-1, 1]."""

import pytest
import torch

from genloom import InvalidRequest
from genloom.data import CLASS_NAMES, NUM_CLASSES, ShapesDataset, load_split, render


def test_render_is_deterministic_and_balanced():
    a, la = render("train", 0, 40)
    b, lb = render("train", 0, 40)
    assert a.dtype == torch.uint8 and a.shape == (40, 3, 32, 32)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert la.tolist() == [i % NUM_CLASSES for i in range(40)] and len(CLASS_NAMES) == NUM_CLASSES == 10
    tail, _ = render("train", 20, 5)
    assert torch.equal(tail, a[20:25])  # an image depends on (split, index) only


def test_splits_differ_and_images_vary():
    train, _ = render("train", 0, 30)
    test, _ = render("test", 0, 30)
    assert not any(torch.equal(train[i], test[i]) for i in range(30))
    # same class, different draws: colour, position, size differ
    same_class = train[[0, 10, 20]].float()
    assert (same_class[0] - same_class[1]).abs().mean() > 10 and (same_class[1] - same_class[2]).abs().mean() > 10
    assert train.float().std() > 40


def test_float_loader_and_dataset():
    x, y = load_split("val", 12)
    assert x.dtype == torch.float32 and -1.0 <= x.min() and x.max() <= 1.0 and y.shape == (12,)
    pre, lazy = ShapesDataset("val", size=12), ShapesDataset("val", size=12, preload=False)
    assert len(pre) == 12
    for i in (0, 7, 11):
        assert torch.equal(pre[i][0], lazy[i][0]) and pre[i][1] == lazy[i][1] == i % 10
        assert torch.equal(pre[i][0], x[i])
    batches = list(pre.batches(5))
    assert [len(b[0]) for b in batches] == [5, 5, 2] and torch.equal(torch.cat([b[0] for b in batches]), x)
    with pytest.raises(IndexError):
        pre[12]


def test_bad_split_and_range():
    with pytest.raises(InvalidRequest, match="Unknown split"):
        render("holdout", 0, 1)
    with pytest.raises(InvalidRequest, match="outside a split"):
        render("train", -1, 2)
