"""The reference classifier and the transformers adapter."""

import pytest
import torch

from genloom import Engine, InvalidRequest, NotRegistered, WeightsError
from genloom.data import load_split


@pytest.fixture(scope="module")
def engine():
    return Engine(third_party=False, strict=True)


def test_reference_classifier_is_accurate(engine):
    clf = engine.load_classifier("shapes-cnn")
    x, y = load_split("test", 1000, start=5000)  # a slice the benchmark does not report
    logits, feats = clf.logits_and_features(x)
    assert logits.shape == (1000, 10) and feats.shape == (1000, clf.feature_dim)
    assert (logits.argmax(1) == y).float().mean() >= 0.98
    assert clf.class_names[3] == "ring"
    torch.testing.assert_close(clf.logits(x[:1]), logits[:1], atol=1e-4, rtol=0)  # alone vs batched


def test_reference_classifier_rejects_bad_images(engine):
    clf = engine.load_classifier("shapes-cnn")
    with pytest.raises(InvalidRequest, match="32×32"):
        clf.logits(torch.zeros(2, 3, 16, 16))
    with pytest.raises(InvalidRequest, match="RGB"):
        clf.logits(torch.zeros(2, 1, 32, 32))
    with pytest.raises(InvalidRequest, match="empty"):
        clf.logits(torch.zeros(0, 3, 32, 32))
    with pytest.raises(NotRegistered, match="Unknown classifier 'shapes-cnnn'"):
        engine.load_classifier("shapes-cnnn")


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    config = ViTConfig(image_size=16, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=37, num_labels=5, id2label={i: f"c{i}" for i in range(5)},
                       label2id={f"c{i}": i for i in range(5)})
    model = ViTForImageClassification(config).eval()
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.4, 0.5, 0.6],
                      image_std=[0.2, 0.25, 0.3]).save_pretrained(folder)
    return folder, model


def test_transformers_adapter_matches_the_model(engine, tiny_vit):
    folder, model = tiny_vit
    clf = engine.load_classifier("transformers", weights=folder)
    assert clf.num_classes == 5 and clf.class_names == ("c0", "c1", "c2", "c3", "c4") and clf.image_size == 16
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    logits, feats = clf.logits_and_features(images)
    pixel = ((images + 1) / 2 - torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(pixel_values=pixel, output_hidden_states=True)
    torch.testing.assert_close(logits, out.logits, atol=1e-5, rtol=1e-5)
    cls_token = model.vit.layernorm(out.hidden_states[-1])[:, 0]
    torch.testing.assert_close(feats, cls_token, atol=1e-5, rtol=1e-5)
    assert clf.logits(torch.rand(2, 3, 32, 32) * 2 - 1).shape == (2, 5)  # resized to the model's size


def test_transformers_adapter_errors(engine, tmp_path):
    with pytest.raises(WeightsError, match="needs weights"):
        engine.load_classifier("transformers")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(WeightsError, match="no config.json"):
        engine.load_classifier("transformers", weights=tmp_path)
