"""The embedded generative models at a few hundred samples (slow: run with ``pytest -m slow``; the full 500-sample
tables are benchmarks, BENCHMARKS.md)."""

import pytest
import torch

import genloom

pytestmark = pytest.mark.slow


def _accuracy(images, labels):
    classifier = genloom.default_engine().load_classifier("shapes-cnn")
    return (classifier.logits(images * 2 - 1).argmax(1) == torch.tensor(labels)).float().mean().item()


def test_var_shapes_draws_the_asked_class_with_its_default_guidance():
    pipe = genloom.load("var-shapes")
    labels = [i % 10 for i in range(200)]
    guided = pipe(labels=labels, seed=5000, output_type="pt", batch_size=50)
    unguided = pipe(labels=labels, seed=5000, output_type="pt", batch_size=50, guidance="none")
    assert _accuracy(guided.images, labels) >= 0.6 > _accuracy(unguided.images, labels)  # 0.695 and 0.475 here


def test_lamamba_shapes_draws_the_asked_class_with_its_default_guidance():
    pipe = genloom.load("lamamba-shapes")
    labels = [i % 10 for i in range(200)]
    guided = _accuracy(pipe(labels=labels, seed=5000, output_type="pt", batch_size=50).images, labels)
    unguided = _accuracy(pipe(labels=labels, seed=5000, output_type="pt", batch_size=50, guidance="none").images,
                         labels)
    # 0.88 and 0.71 here (the shipping bar, on 500 samples: 0.70 and +15 points; the target 0.85)
    assert guided >= 0.8 and guided >= unguided + 0.12, (guided, unguided)
