"""The var-shapes trainer runs end to end (a few steps) and writes checkpoints the loader accepts."""

import pytest
import torch

from genloom import Engine
from genloom.engine.errors import InvalidRequest
from genloom.plugins.var.train import SHAPES_VAR, TrainSettings, train_var_shapes, vqvae_loss
from genloom.plugins.var.vqvae import VQVAE


def test_vq_loss_has_gradients_for_encoder_decoder_and_codebook():
    torch.manual_seed(0)
    vae = VQVAE(SHAPES_VAR.vae)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    loss, mse, indices = vqvae_loss(vae, x, beta=0.25)
    loss.backward()
    assert [i.shape[1] for i in indices] == [p * p for p in SHAPES_VAR.patch_nums]
    for module in (vae.encoder.conv_in, vae.decoder.conv_out, vae.quantize.embedding):
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0
    assert 0 < mse.item() <= loss.item()


def test_tiny_training_run_writes_loadable_weights(tmp_path):
    logs = []
    s = TrainSettings(train_size=64, vae_steps=3, var_steps=3, batch_size=8, restart_every=2)
    var_path, vae_path = train_var_shapes(tmp_path, s, log=logs.append)
    assert any("codes used" in line for line in logs) and any("var step" in line or "wrote" in line for line in logs)
    pipe = Engine(third_party=False, strict=True).load("var", weights=var_path, vae=vae_path)
    assert pipe.model.config.patch_nums == SHAPES_VAR.patch_nums and pipe.spec.num_classes == 10
    res = pipe(labels=[0, 9], seed=0, guidance="cfg", guidance_scale=3.0, output_type="pt")
    assert res.images.shape == (2, 3, 32, 32)


def test_a_run_continues_from_a_vqvae_and_transformer_and_writes_checkpoints(tmp_path):
    from safetensors.torch import load_file

    first = TrainSettings(train_size=64, vae_steps=2, var_steps=2, batch_size=4)
    var_path, vae_path = train_var_shapes(tmp_path / "a", first, log=lambda _: None)
    logs = []
    again = TrainSettings(train_size=64, var_steps=4, batch_size=4, vae=str(vae_path), init=str(var_path),
                          checkpoint_every=2, warmup=1)
    var2, vae2 = train_var_shapes(tmp_path / "b", again, log=logs.append)
    assert not any("codes used" in line for line in logs)  # the given VQVAE is used as is, not trained
    assert all(torch.equal(a, b) for a, b in zip(load_file(vae_path).values(), load_file(vae2).values()))
    assert sorted(p.name for p in (tmp_path / "b").glob("var_shapes_step*")) == ["var_shapes_step2.safetensors"]
    start, end = load_file(var_path), load_file(var2)
    assert start.keys() == end.keys() and not all(torch.equal(start[k], end[k]) for k in start)
    wrong = TrainSettings(train_size=64, var_steps=1, batch_size=4, vae=str(vae_path), init=str(vae_path))
    with pytest.raises(InvalidRequest, match="--init .* does not fit the var-shapes transformer"):
        train_var_shapes(tmp_path / "c", wrong, log=lambda _: None)  # a VQVAE file is not a transformer
