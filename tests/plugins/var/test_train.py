"""The var-shapes trainer runs end to end (a few steps) and writes checkpoints the loader accepts."""

import torch

from genloom import Engine
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
