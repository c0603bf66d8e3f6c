"""Models from files through the command line: the trainers' outputs load with --weights/--vae/--load-option,
and the family's declared load options are checked and listed."""

import json

import pytest

from .conftest import run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Files written by the real trainers, a few steps each."""
    from genloom.diffusion_settings import DiffusionTrainSettings as DiMRTrainSettings
    from genloom.plugins.autoencoder.settings import AutoencoderSettings
    from genloom.plugins.autoencoder.train import train_shapes_ae
    from genloom.plugins.dimr.train import train_dimr_shapes
    from genloom.plugins.var.train import TrainSettings, train_var_shapes

    root = tmp_path_factory.mktemp("trained")
    quiet = lambda _: None  # noqa: E731
    var, vqvae = train_var_shapes(root / "var", TrainSettings(train_size=32, vae_steps=1, var_steps=1, batch_size=4),
                                  log=quiet)
    ae = train_shapes_ae(root / "ae", AutoencoderSettings(train_size=16, batch_size=4, steps=1), log=quiet)
    dimr = train_dimr_shapes(root / "dimr", DiMRTrainSettings(train_size=16, batch_size=4, steps=1, vae=str(ae)),
                             log=quiet)
    return {"var": var, "vqvae": vqvae, "ae": ae, "dimr": dimr}


def test_var_from_trainer_files(trained, tmp_path):
    done = run_cli("generate", "-m", "var", "--weights", str(trained["var"]), "--vae", str(trained["vqvae"]),
                   "--labels", "1", "2", "--seed", "0", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert len(manifest["files"]) == 2 and manifest["request"]["steps"] == 6  # its own six scales


def test_latent_dimr_from_trainer_files(trained, tmp_path):
    schedule = json.dumps({"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v"})
    done = run_cli("generate", "-m", "dimr", "--weights", str(trained["dimr"]), "--vae", str(trained["ae"]),
                   "--load-option", "num_heads=4", "-L", f"noise_schedule={schedule}", "--sampler", "ddim",
                   "--steps", "2", "--labels", "3", "--seed", "0", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert len(manifest["files"]) == 1 and manifest["load_options"]["num_heads"] == 4
    # the manifest alone reproduces the run: weights, vae and load options included
    import numpy as np
    from PIL import Image

    import genloom

    again = genloom.reproduce(tmp_path / "o" / "manifest.json")
    saved = np.asarray(Image.open(tmp_path / "o" / manifest["files"][0]))
    assert np.array_equal(np.asarray(again.images[0]), saved)


def test_load_option_errors_are_typed_and_one_line(trained, tmp_path):
    cases = [
        (("-L", "num_head=4"), "Unknown load option(s) ['num_head']"),
        (("-L", "num_heads=four"), "option 'num_heads' of model 'dimr' must be a whole number"),
        (("-L", "num_heads"), "is not key=value"),
    ]
    for extra, message in cases:
        done = run_cli("generate", "-m", "dimr", "--weights", str(trained["dimr"]), "--vae", str(trained["ae"]),
                       *extra, "--labels", "1", "--out", str(tmp_path / "o"))
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    bad_config = tmp_path / "c.json"
    bad_config.write_text(json.dumps({"depth": 3, "widht": 2}))
    done = run_cli("generate", "-m", "var", "--weights", str(trained["var"]), "--vae", str(trained["vqvae"]),
                   "--config", str(bad_config), "--labels", "1", "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "Unknown VARConfig field(s) ['widht']" in done.stderr, done.stderr
    assert not (tmp_path / "o").exists()


def test_python_dash_m_genloom_is_the_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "genloom", "models"], capture_output=True, text=True)
    assert done.returncode == 0 and "var-shapes" in done.stdout
