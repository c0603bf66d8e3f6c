"""The embedded dimr-shapes default: loads offline, conforms, and draws the classes it is asked for."""

import torch

import genloom
from genloom import Engine
from genloom.testing import check_model


def test_dimr_shapes_conforms():
    check_model(Engine(third_party=False, strict=True), "dimr-shapes")


def test_dimr_shapes_draws_the_requested_classes():
    pipe = genloom.load("dimr-shapes")
    assert pipe.spec.image_size == 32 and pipe.spec.null_class == 10
    labels = list(range(10)) * 2
    res = pipe(labels=labels, seed=0, steps=12, output_type="pt")  # default: dpm++2m with CFG
    classifier = genloom.default_engine().load_classifier("shapes-cnn")
    with torch.no_grad():
        predicted = classifier.logits(res.images * 2 - 1).argmax(dim=1)
    accuracy = (predicted == torch.tensor(labels)).float().mean().item()
    assert accuracy >= 0.8, f"class accuracy {accuracy:.2f} on 20 samples"
