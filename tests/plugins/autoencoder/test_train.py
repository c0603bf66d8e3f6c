"""`genloom train autoencoder`: reproducible, self-describing weights; resumable bit for bit; typed errors first."""

import os

import pytest
import torch
from safetensors.torch import load_file

from genloom.engine.autoencoder import load_autoencoder_file
from genloom.engine.errors import InvalidRequest
from genloom.plugins.autoencoder.settings import AutoencoderSettings
from genloom.plugins.autoencoder.train import train_shapes_ae

TINY = dict(train_size=32, batch_size=4, steps=4, checkpoint_every=2)


def quiet(_: str) -> None:
    pass


def test_weights_describe_themselves_and_a_resumed_run_ends_bit_identical(tmp_path):
    straight = train_shapes_ae(tmp_path / "a", AutoencoderSettings(**TINY), log=quiet)
    assert (tmp_path / "a" / "shapes_ae_step2.safetensors").is_file()
    leg = train_shapes_ae(tmp_path / "b", AutoencoderSettings(**TINY, max_minutes=1e-9), log=quiet)  # one step
    assert leg.name == "shapes_ae_state.safetensors" and not (tmp_path / "b" / "shapes_ae.safetensors").exists()
    resumed = train_shapes_ae(tmp_path / "b", AutoencoderSettings(**TINY), resume=str(leg), log=quiet)
    a, b = load_file(straight), load_file(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ae, scale = load_autoencoder_file(straight)
    assert scale > 0
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z = ae.encode(x).latent_dist.mean
    assert z.shape == (2, 4, 8, 8)


def test_bad_settings_and_outputs_are_refused_before_training(tmp_path):
    with pytest.raises(InvalidRequest, match="--steps must be > 0"):
        train_shapes_ae(tmp_path, AutoencoderSettings(**{**TINY, "steps": 0}), log=quiet)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InvalidRequest, match="Cannot write to the output folder"):
        train_shapes_ae(blocker / "out", AutoencoderSettings(**TINY), log=quiet)
    if os.geteuid() != 0:  # root writes anywhere; the file-in-the-way case above covers it
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(InvalidRequest):
            train_shapes_ae(ro, AutoencoderSettings(**TINY), log=quiet)


def test_resuming_a_state_of_another_configuration_is_refused(tmp_path):
    train_shapes_ae(tmp_path / "a", AutoencoderSettings(**TINY), log=quiet)
    state = str(tmp_path / "a" / "shapes_ae_state.safetensors")
    with pytest.raises(InvalidRequest, match="another configuration.*lr"):
        train_shapes_ae(tmp_path / "b", AutoencoderSettings(**{**TINY, "lr": 5e-4}), resume=state, log=quiet)
    with pytest.raises(InvalidRequest, match="not a genloom training state"):
        weights_only = str(tmp_path / "a" / "shapes_ae.safetensors")
        train_shapes_ae(tmp_path / "b", AutoencoderSettings(**TINY), resume=weights_only, log=quiet)


def test_the_command_line_trains_and_resumes(tmp_path):
    from click.testing import CliRunner

    from genloom.cli.main import cli

    args = ["train", "autoencoder", "--out", str(tmp_path), "--steps", "2", "--train-size", "8", "--batch-size", "2",
            "--checkpoint-every", "1"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert (tmp_path / "shapes_ae.safetensors").is_file() and (tmp_path / "shapes_ae_state.safetensors").is_file()
    refused = CliRunner().invoke(cli, args)  # a fresh run would overwrite the trained weights
    assert refused.exit_code == 2 and "already holds shapes_ae.safetensors" in refused.output, refused.output
    again = CliRunner().invoke(cli, args + ["--resume", str(tmp_path / "shapes_ae_state.safetensors")])
    assert again.exit_code == 0 and "resuming at step 2" in again.output, again.output


def test_a_resumed_leg_keeps_the_runs_own_settings_unless_told_otherwise(tmp_path, monkeypatch):
    """`--resume STATE` alone continues the run as it was configured (not with the command's defaults) in the
    state's folder; a setting given again wins and is refused where the configuration must stay; a per-leg one
    (--max-minutes) is not taken."""
    import json

    from click.testing import CliRunner

    from genloom.cli.main import cli
    from genloom.engine.weights import read_metadata

    first = ["train", "autoencoder", "--out", str(tmp_path), "--steps", "2", "--train-size", "8", "--batch-size", "2",
             "--lr", "5e-4", "--checkpoint-every", "1", "--max-minutes", "50"]
    assert CliRunner().invoke(cli, first).exit_code == 0
    state = str(tmp_path / "shapes_ae_state.safetensors")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    leg = ["train", "autoencoder", "--resume", state, "--steps", "3"]
    again = CliRunner().invoke(cli, leg)
    assert again.exit_code == 0 and "resuming at step 2" in again.output, again.output
    assert not any(elsewhere.iterdir())  # the leg wrote beside its state
    assert json.loads(read_metadata(tmp_path / "shapes_ae.safetensors")["settings"])["steps"] == 3
    saved = json.loads(read_metadata(state)["settings"])
    assert (saved["steps"], saved["lr"], saved["train_size"], saved["batch_size"]) == (3, 5e-4, 8, 2)
    assert saved["max_minutes"] == 100.0
    refused = CliRunner().invoke(cli, leg + ["--lr", "1e-3"])
    assert refused.exit_code != 0 and "another configuration" in refused.output and "lr" in refused.output
