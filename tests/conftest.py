"""Test-wide settings: no third-party plugins unless a test asks, failures loud, Triton interpreted."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["GENLOOM_PLUGINS"] = "strict,off"  # the default engine: built-ins only, any failure raises
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TESTS = Path(__file__).parent
collect_ignore_glob = ["plugin_pkg*"]  # the plugin packages are installed and run by test_third_party
PLUGIN_PACKAGES = {
    "toy": TESTS / "plugin_pkg",
    "broken": TESTS / "plugin_pkg_broken",
    "future": TESTS / "plugin_pkg_future",
}


@pytest.fixture(scope="session")
def installed_plugins(tmp_path_factory) -> Path:
    """Install the three test plugin packages for real (pip, wheels, entry points) into a private folder.

    Returns the folder; put it on ``sys.path``/``PYTHONPATH`` to make the plugins visible.
    """
    target = tmp_path_factory.mktemp("site")
    sources = tmp_path_factory.mktemp("src")  # pip builds in-tree: build from copies, keep tests/ clean
    copies = [shutil.copytree(path, sources / name) for name, path in PLUGIN_PACKAGES.items()]
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
           "--disable-pip-version-check", "--target", str(target), *map(str, copies)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in ("genloom_toy", "genloom_broken", "genloom_future"):
        assert (target / name).is_dir(), f"{name} was not installed"
    return target


@pytest.fixture
def plugin_path(installed_plugins, monkeypatch) -> Path:
    """The installed test plugins on ``sys.path`` for this test only."""
    monkeypatch.syspath_prepend(str(installed_plugins))
    yield installed_plugins
    for mod in [m for m in sys.modules if m.startswith(("genloom_toy", "genloom_broken", "genloom_future"))]:
        del sys.modules[mod]


def launch_cli(*args: str, processes: int = 2, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``genloom ARGS`` on several processes with ``accelerate launch`` (gloo on a CPU)."""
    launcher = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    return subprocess.run([launcher, "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines",
                           "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "genloom", *args],
                          capture_output=True, text=True, timeout=900, cwd=cwd)


def run_cli(*args: str, env: dict[str, str] | None = None, pythonpath: Path | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``genloom ARGS`` in a fresh interpreter."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    if pythonpath is not None:
        full_env["PYTHONPATH"] = str(pythonpath) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "genloom.cli.main", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=300)
