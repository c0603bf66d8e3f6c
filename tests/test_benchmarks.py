"""Benchmarks are code too: every script in benchmarks/ runs here at tiny sizes (no timing is asserted), so none
can rot unnoticed. Each script's docstring names its smoke mode."""

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
SMOKE = {
    "ag_similarity.py": ["--model", "var-shapes", "--n", "2"],
    "autoencoder_quality.py": ["--n", "20", "--num-reference", "100"],
    "cli_startup.py": ["--runs", "1"],
    "diffusion_loop_overhead.py": ["--batch", "2", "--steps", "2", "--repeats", "1", "--threads", "1"],
    "edit_kept_region.py": ["--n", "2"],
    "eval_sanity.py": ["--n", "60", "--subsets", "2"],
    "fdistill_table.py": ["--students", "checkpoints/lamamba_shapes_fdistill_js.safetensors", "--teacher-sampler",
                          "ddim", "--teacher-steps", "2", "--per-class", "1", "--num-reference", "50", "--batch-size",
                          "10"],
    "guidance_crosscheck.py": ["--other", "checkpoints/shapes_classifier_seed1.safetensors", "--n", "10", "--steps",
                               "2"],
    "guidance_table.py": ["--model", "var-shapes", "--per-class", "1", "--rows", "none", "cfg", "adaptive",
                          "linear-ag", "--num-reference", "50"],
    "kernel_timings.py": ["--repeats", "1", "--var-depth", "1", "--var-batch", "1", "--dimr-batch", "1", "--threads",
                          "1", "--small"],
    "lamamba_scaling.py": ["--sides", "8", "16", "--width", "16", "--repeats", "1", "--scan-length", "64",
                           "--threads", "1"],
    "sample_scaling.py": ["--model", "smoke", "--num", "8", "--processes", "1", "--batch-size", "4"],
    "shapes_quality.py": ["--model", "var-shapes", "--per-class", "1", "--scales", "1", "2", "-G", "stop=0.5",
                          "--num-reference", "50"],
    "var_temperature.py": ["--temperatures", "1", "1", "1", "1", "1", "0.5", "--", "--model", "var-shapes",
                           "--per-class", "1", "--scales", "5", "--num-reference", "50"],
    "var_kv_cache.py": ["--depth", "1", "--batch", "1", "--repeats", "1", "--vae-ch", "32", "--threads", "1"],
}


def test_every_benchmark_has_a_smoke_mode():
    scripts = [p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_")]  # _*.py: shared helpers
    assert sorted(scripts) == sorted(SMOKE)


def test_no_benchmark_shadows_an_installed_module():
    """A script's folder comes first on sys.path, so a benchmark named like a package (benchmarks/kernels.py once hid
    the `kernels` package that transformers imports) breaks every library that looks that package up."""
    installed = set(importlib.metadata.packages_distributions()) | set(sys.stdlib_module_names)
    names = {p.stem for p in BENCHMARKS.glob("*.py")}
    shadowing = sorted(n for n in names if n in installed or importlib.util.find_spec(n) is not None)
    assert not shadowing, f"rename these benchmark modules: {shadowing}"


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_benchmark_runs_in_smoke_mode(script):
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *SMOKE[script]], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "a benchmark must print its figures"


def test_fdistill_table_refuses_a_teacher_other_than_the_students():
    """The bar compares a student with the teacher it was distilled from: other weights (e.g. a registered teacher
    retrained since) are refused, by the sha256 the student recorded, before anything is sampled."""
    args = ["--students", "lamamba-shapes-fdistill-js", "--teacher-weights", "checkpoints/lamamba_shapes.safetensors",
            "--per-class", "1", "--num-reference", "50"]
    done = subprocess.run([sys.executable, str(BENCHMARKS / "fdistill_table.py"), *args], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 1 and not done.stdout
    assert "was distilled from 'lamamba-shapes' weights with sha256" in done.stderr
    assert "pass the teacher it was distilled from with --teacher-weights" in done.stderr
