"""The var-shapes trainer runs end to end (a few steps) and writes checkpoints the loader accepts."""

import pytest
import torch

from genloom import Engine
from genloom.engine.errors import InvalidRequest
from genloom.plugins.var.train import (
    SHAPES_VAR,
    TrainSettings,
    scale_weights,
    start_transformer,
    train_var_shapes,
    vqvae_loss,
)
from genloom.plugins.var.vqvae import VQVAE
from genloom.training import set_learning_rate


def quiet(_: str) -> None:
    """A training log the tests do not read."""


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
    s = TrainSettings(train_size=64, vae_steps=3, var_steps=3, batch_size=8, restart_every=2, diagnose_every=2)
    var_path, vae_path = train_var_shapes(tmp_path, s, log=logs.append)
    assert any("codes used" in line for line in logs) and any("var step" in line or "wrote" in line for line in logs)
    gap = [line for line in logs if "token loss right / null / wrong label" in line]
    assert len(gap) == 1 and all(f"{p}×{p}: " in gap[0] for p in SHAPES_VAR.patch_nums)  # at step 2 only
    pipe = Engine(third_party=False, strict=True).load("var", weights=var_path, vae=vae_path)
    assert pipe.model.config.patch_nums == SHAPES_VAR.patch_nums and pipe.spec.num_classes == 10
    res = pipe(labels=[0, 9], seed=0, guidance="cfg", guidance_scale=3.0, output_type="pt")
    assert res.images.shape == (2, 3, 32, 32)


def test_a_run_continues_from_a_vqvae_and_transformer_and_writes_checkpoints(tmp_path):
    from safetensors.torch import load_file

    first = TrainSettings(train_size=64, vae_steps=2, var_steps=2, batch_size=4)
    var_path, vae_path = train_var_shapes(tmp_path / "a", first, log=quiet)
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
        train_var_shapes(tmp_path / "c", wrong, log=quiet)  # a VQVAE file is not a transformer


TINY = dict(train_size=64, vae_steps=2, var_steps=4, batch_size=4, warmup=1, checkpoint_every=2)


def test_a_resumed_transformer_leg_ends_bit_identical_to_a_straight_run(tmp_path):
    from safetensors.torch import load_file

    straight, vae = train_var_shapes(tmp_path / "a", TrainSettings(**TINY), log=quiet)
    assert (tmp_path / "a" / "var_shapes_step2.safetensors").is_file()
    leg, leg_vae = train_var_shapes(tmp_path / "b", TrainSettings(**TINY, max_minutes=1e-9), log=quiet)  # one step
    assert leg.name == "var_shapes_state.safetensors" and not (tmp_path / "b" / "var_shapes.safetensors").exists()
    assert (tmp_path / "b" / "var_shapes_step1.safetensors").is_file()  # the weights where the leg stopped
    logs = []
    resumed, _ = train_var_shapes(tmp_path / "b", TrainSettings(**TINY), resume=str(leg), log=logs.append)
    assert any("resuming the transformer at step 1" in line for line in logs)
    assert not any("codes used" in line for line in logs)  # the run's VQVAE is read, not trained again
    a, b = load_file(straight), load_file(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(x, y) for x, y in zip(load_file(vae).values(), load_file(leg_vae).values()))


def test_with_ema_the_run_writes_the_average_and_a_resumed_leg_keeps_it_bit_identical(tmp_path):
    from safetensors.torch import load_file

    raw, vae = train_var_shapes(tmp_path / "raw", TrainSettings(**TINY), log=quiet)
    straight, _ = train_var_shapes(tmp_path / "a", TrainSettings(**TINY, ema=0.9), log=quiet)
    a, r = load_file(straight), load_file(raw)
    assert a.keys() == r.keys() and not all(torch.equal(a[k], r[k]) for k in a)  # the average, not the last step
    state = load_file(tmp_path / "a" / "var_shapes_state.safetensors")
    assert all(torch.equal(state[f"ema.{k}"], a[k]) for k in a) and all(f"var.{k}" in state for k in a)
    leg, _ = train_var_shapes(tmp_path / "b", TrainSettings(**TINY, ema=0.9, max_minutes=1e-9), log=quiet)
    resumed, _ = train_var_shapes(tmp_path / "b", TrainSettings(**TINY, ema=0.9), resume=str(leg), log=quiet)
    b = load_file(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(InvalidRequest, match="another configuration.*ema"):
        train_var_shapes(tmp_path / "b", TrainSettings(**TINY), resume=str(leg), log=quiet)
    pipe = Engine(third_party=False, strict=True).load("var", weights=straight, vae=vae)
    assert pipe(labels=[1], seed=0, output_type="pt").images.shape == (1, 3, 32, 32)


def test_the_transformer_size_is_a_setting_the_loader_reads_back(tmp_path):
    s = TrainSettings(**{**TINY, "var_steps": 1}, depth=2, width=64, heads=2)
    var_path, vae_path = train_var_shapes(tmp_path, s, log=quiet)
    pipe = Engine(third_party=False, strict=True).load("var", weights=var_path, vae=vae_path)
    config = pipe.model.config
    assert (config.depth, config.embed_dim, config.num_heads) == (2, 64, 2)
    assert pipe(labels=[3], seed=0, output_type="pt").images.shape == (1, 3, 32, 32)


def test_bad_sizes_and_resumes_are_refused_before_training(tmp_path):
    with pytest.raises(InvalidRequest, match="--heads 5 does not divide --width 64"):
        train_var_shapes(tmp_path / "x", TrainSettings(**TINY, width=64, heads=5), log=quiet)
    assert not (tmp_path / "x" / "var_shapes_vae.safetensors").exists()
    train_var_shapes(tmp_path / "a", TrainSettings(**TINY), log=quiet)
    small = str(tmp_path / "a" / "var_shapes.safetensors")
    logs = []
    with pytest.raises(InvalidRequest, match="is a transformer of --depth 3 --width 192 --heads 3; this run builds "
                                             "--depth 2 --width 64 --heads 2"):
        train_var_shapes(tmp_path / "y", TrainSettings(**TINY, init=small, depth=2, width=64, heads=2),
                         log=logs.append)
    assert logs == [] and not (tmp_path / "y").exists()  # refused before rendering or training the VQVAE
    state = str(tmp_path / "a" / "var_shapes_state.safetensors")
    with pytest.raises(InvalidRequest, match="another configuration.*depth"):
        train_var_shapes(tmp_path / "a", TrainSettings(**TINY, depth=4), resume=state, log=quiet)
    with pytest.raises(InvalidRequest, match="needs the run's VQVAE"):
        train_var_shapes(tmp_path / "elsewhere", TrainSettings(**TINY), resume=state, log=quiet)
    other_vae = train_var_shapes(tmp_path / "o", TrainSettings(**{**TINY, "var_steps": 1}, seed=7), log=quiet)[1]
    with pytest.raises(InvalidRequest, match="is not the VQVAE of the run being resumed"):
        train_var_shapes(tmp_path / "a", TrainSettings(**TINY, vae=str(other_vae)), resume=state, log=quiet)
    own_vae = str(tmp_path / "a" / "var_shapes_vae.safetensors")  # repeating the run's own VQVAE is fine
    train_var_shapes(tmp_path / "a", TrainSettings(**{**TINY, "var_steps": 5}, vae=own_vae), resume=state, log=quiet)
    with pytest.raises(InvalidRequest, match="already holds var_shapes.safetensors"):
        train_var_shapes(tmp_path / "a", TrainSettings(**TINY), log=quiet)  # a fresh run never overwrites


def test_scale_balance_moves_loss_weight_from_the_fine_scales_to_the_coarse_ones():
    counts = [p * p for p in SHAPES_VAR.patch_nums]
    per_scale = lambda w: torch.stack([part.sum() for part in w.split(counts)])  # noqa: E731
    plain, half, even = (scale_weights(SHAPES_VAR.patch_nums, b) for b in (0.0, 0.5, 1.0))
    for w in (plain, half, even):
        assert w.shape == (sum(counts),) and w.sum().item() == pytest.approx(1.0)
    assert torch.allclose(plain, torch.full_like(plain, 1 / sum(counts)))  # 0: the official token mean
    assert torch.allclose(per_scale(even), torch.full((len(counts),), 1 / len(counts)))  # 1: every scale alike
    assert torch.allclose(per_scale(half), torch.tensor(counts).float().sqrt() / sum(c ** 0.5 for c in counts))
    assert per_scale(half)[0] > per_scale(plain)[0] and per_scale(half)[-1] < per_scale(plain)[-1]


def test_class_lr_mult_gives_the_class_embedding_its_own_rate_without_weight_decay():
    plain = start_transformer(TrainSettings(**TINY), torch.device("cpu"), None, quiet)
    assert len(plain.opt.param_groups) == 1  # the layout older states hold
    run = start_transformer(TrainSettings(**TINY, class_lr_mult=10.0), torch.device("cpu"), None, quiet)
    rest, table = run.opt.param_groups
    assert table["params"] == [run.var.class_emb.weight] and table["weight_decay"] == 0.0
    assert len(rest["params"]) == len(list(run.var.parameters())) - 1 and rest["weight_decay"] == 0.05
    set_learning_rate(run.opt, 2e-4)
    assert (rest["lr"], table["lr"]) == pytest.approx((2e-4, 2e-3))


def test_a_leg_with_other_loss_levers_does_not_resume_a_state(tmp_path):
    state = train_var_shapes(tmp_path, TrainSettings(**TINY, max_minutes=1e-9), log=quiet)[0]
    for change in ({"class_lr_mult": 3.0}, {"scale_balance": 0.5}):
        with pytest.raises(InvalidRequest, match=f"another configuration.*{next(iter(change))}"):
            train_var_shapes(tmp_path, TrainSettings(**TINY, **change), resume=str(state), log=quiet)
    with pytest.raises(InvalidRequest, match=r"--scale-balance must be in \[0, 1\]"):
        train_var_shapes(tmp_path / "x", TrainSettings(**TINY, scale_balance=1.5), log=quiet)
    assert not (tmp_path / "x").exists()


def test_the_command_line_resumes_a_var_run(tmp_path):
    from click.testing import CliRunner

    from genloom.cli.main import cli

    args = ["train", "var", "--out", str(tmp_path), "--vae-steps", "1", "--var-steps", "2", "--train-size", "8",
            "--batch-size", "2", "--threads", "1"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    state = tmp_path / "var_shapes_state.safetensors"
    again = CliRunner().invoke(cli, ["train", "var", "--resume", str(state), "--var-steps", "3", "--threads", "1"])
    assert again.exit_code == 0 and "resuming the transformer at step 2" in again.output, again.output
