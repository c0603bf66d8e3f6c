"""`genloom sample` → ADM npz → `genloom eval`, and `genloom data preview`."""

import json

import numpy as np

from genloom.eval import read_npz

from ..conftest import run_cli


def test_sample_then_eval(tmp_path):
    npz = tmp_path / "samples.npz"
    done = run_cli("sample", "-m", "smoke", "-n", "30", "--seed", "3", "--out", str(npz))
    assert done.returncode == 0, done.stderr
    images, labels = read_npz(npz)
    assert images.shape == (30, 32, 32, 3) and labels.tolist() == [i % 10 for i in range(30)]
    plan = json.loads(npz.with_suffix(".json").read_text())["plan"]
    assert plan["seed"] == 3 and plan["num_images"] == 30 and plan["model"] == "smoke"
    out = run_cli("eval", "--samples", str(npz), "--num-reference", "300", "--subsets", "3", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["num_samples"] == 30 and report["fd"] > 0 and 0 <= report["accuracy"] <= 1
    table = run_cli("eval", "--samples", str(npz), "--num-reference", "300", "--subsets", "3")
    assert "FD (3 subsets)" in table.stdout and "semicircle" in table.stdout


def test_generate_npz_is_readable_by_eval(tmp_path):
    done = run_cli("generate", "-m", "smoke", "--labels", "1", "2", "3", "4", "--out", str(tmp_path), "--npz")
    assert done.returncode == 0, done.stderr
    images, labels = read_npz(tmp_path / "samples.npz")
    assert labels.tolist() == [1, 2, 3, 4] and images.dtype == np.uint8


def test_eval_errors_and_preview(tmp_path):
    missing = run_cli("eval", "--samples", str(tmp_path / "none.npz"))
    assert missing.returncode == 2 and "not found" in missing.stderr
    np.savez(tmp_path / "bad.npz", arr_0=np.zeros((3, 16, 16, 3), np.uint8))
    bad = run_cli("eval", "--samples", str(tmp_path / "bad.npz"), "--num-reference", "50", "--subsets", "1")
    assert bad.returncode == 2 and "32×32" in bad.stderr
    preview = run_cli("data", "preview", "--rows", "2", "--out", str(tmp_path / "grid.png"))
    assert preview.returncode == 0 and (tmp_path / "grid.png").stat().st_size > 1000
