"""The command line: listing without torch, generation to disk, readable errors."""

import json
import subprocess
import sys

from .conftest import run_cli

NO_TORCH = (
    "import sys; from genloom.cli.main import cli\n"
    "try:\n    cli(['{cmd}'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
    "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')"
)


def test_help_and_listing_do_not_import_torch():
    for cmd in ("--help", "plugins", "models", "samplers", "policies"):
        done = subprocess.run([sys.executable, "-c", NO_TORCH.format(cmd=cmd)], capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout.strip().endswith("ok"), cmd + done.stderr


def test_import_genloom_is_light():
    code = "import sys, genloom; assert 'torch' not in sys.modules and 'diffusers' not in sys.modules; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"


def test_generate_writes_pngs_and_a_manifest(tmp_path):
    out = tmp_path / "out"
    done = run_cli("generate", "--model", "smoke", "--labels", "3", "7", "--seed", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "wrote 2 image(s)" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["request"]["labels"] == [3, 7] and manifest["request"]["seed"] == [4, 5]
    assert manifest["files"] == ["0000_s4_c3.png", "0001_s5_c7.png"] and manifest["nfe"] == [1, 1]
    assert all((out / f).stat().st_size > 100 for f in manifest["files"])


def test_models_listing():
    done = run_cli("models")
    assert done.returncode == 0
    row = next(line for line in done.stdout.splitlines() if line.startswith("smoke"))
    assert "one-step" in row and "10" in row and "32px" in row
    data = {m["name"]: m for m in json.loads(run_cli("models", "--json").stdout)}
    assert data["smoke"]["default_weights"] == "asset:smoke.safetensors"
    assert data["dimr"]["paradigm"] == "diffusion" and data["dimr-xl-2r"]["image_size"] == 256
    student = data["lamamba-shapes-fdistill-js"]  # the embedded f-distill student
    assert student["paradigm"] == "one-step" and student["default_weights"].startswith("asset:")


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    for args, text in [
        (("generate", "-m", "smok"), "Did you mean 'smoke'"),
        (("generate", "-m", "smoke", "--labels", "12"), "out of range"),
        (("generate", "-m", "smoke", "--labels", "1", "--scale", "nan"), "finite"),
        (("generate", "-m", "smoke", "--weights", str(tmp_path / "x.safetensors")), "not found"),
    ]:
        done = run_cli(*args, "--out", str(tmp_path / "o"))
        assert done.returncode == 2 and text in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert not (tmp_path / "o").exists()


def test_convert_pth_to_safetensors(tmp_path):
    import torch

    from genloom.engine.weights import read_state_dict

    sd = {"w": torch.arange(6.0).view(2, 3), "b": torch.ones(2)}
    torch.save({"ema": sd, "step": 5}, tmp_path / "ckpt.pth")
    done = run_cli("convert", str(tmp_path / "ckpt.pth"), str(tmp_path / "ckpt.safetensors"), "--unwrap", "ema")
    assert done.returncode == 0, done.stderr
    back = read_state_dict(tmp_path / "ckpt.safetensors")
    assert set(back) == {"w", "b"} and torch.equal(back["w"], sd["w"])
    bad = run_cli("convert", str(tmp_path / "ckpt.pth"), str(tmp_path / "x.safetensors"))
    assert bad.returncode == 2 and "not a flat state dict" in bad.stderr


def test_kernels_lists_backends_and_refuses_an_unknown_backend():
    done = run_cli("kernels")
    assert done.returncode == 0, done.stderr
    for kernel in ("selective_scan", "modulated_layer_norm", "vq_nearest"):
        assert kernel in done.stdout
    assert "torch-fast" in done.stdout and "GENLOOM_KERNELS=auto" in done.stdout
    bad = run_cli("kernels", env={"GENLOOM_KERNELS": "cuda"})
    assert bad.returncode == 2 and "Unknown kernel backend 'cuda'" in bad.stderr
