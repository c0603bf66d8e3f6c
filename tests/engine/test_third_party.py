"""Real third-party plugin packages, installed with pip, discovered through the `genloom` entry-point group."""

import json
import sys
import warnings

import pytest

from genloom import Engine, PluginError
from genloom.engine.plugins import PluginWarning

from ..conftest import TESTS, run_cli

ENV = {"GENLOOM_PLUGINS": ""}  # the CLI child processes: third-party plugins on, not strict


def _engine(**kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = Engine(third_party=True, strict=False, **kw)
    return engine, caught


def test_good_plugin_loads_next_to_broken_and_future_ones(plugin_path):
    engine, caught = _engine()
    report = {r.name: r for r in engine.plugin_report}
    assert report["toy"].status == "loaded" and report["toy"].version == "0.3.1"
    assert report["toy"].source == "entry-point" and report["toy"].module == "genloom_toy"
    assert report["toy"].contributions == {"models": ["toy-rings"], "commands": ["toy-hello"]}
    assert report["broken"].status == "failed"
    assert "RuntimeError: genloom-broken cannot start" in report["broken"].error
    assert report["future"].status == "refused" and "API 2.0" in report["future"].error
    assert "future-model" not in engine.models
    messages = " ".join(str(w.message) for w in caught if issubclass(w.category, PluginWarning))
    assert "'broken'" in messages and "'future'" in messages
    # the good plugin's model really works, through the real loading path
    pipe = engine.load("toy-rings")
    result = pipe(labels=["red", 3], seed=1, output_type="pt")
    assert tuple(result.images.shape) == (2, 3, 16, 16)
    assert result.manifest["plugin"] == "toy" and result.manifest["weights"][0]["file"] == "toy.safetensors"


def test_allow_list_restricts_what_loads(plugin_path):
    engine, caught = _engine(allow=["toy"])
    report = {r.name: r for r in engine.plugin_report}
    assert report["toy"].status == "loaded"
    assert report["broken"].status == "skipped" and report["future"].status == "skipped"
    assert not [w for w in caught if issubclass(w.category, PluginWarning)]


def test_no_third_party_at_all(plugin_path):
    engine = Engine(third_party=False, strict=True)
    assert {r.source for r in engine.plugin_report} == {"builtin"}
    assert "toy-rings" not in engine.models


def test_strict_mode_turns_a_broken_plugin_into_an_error(plugin_path):
    with pytest.raises(PluginError, match="broken"):
        Engine(third_party=True, strict=True)


def test_the_plugins_own_conformance_suite_passes(plugin_path):
    sys.path.insert(0, str(TESTS / "plugin_pkg" / "tests"))
    try:
        from test_conformance import test_genloom_toy_conforms
    finally:
        sys.path.pop(0)
    test_genloom_toy_conforms()


def test_cli_lists_the_plugins_and_their_errors(installed_plugins):
    done = run_cli("plugins", env=ENV, pythonpath=installed_plugins)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "loaded" in lines["toy"] and "0.3.1" in lines["toy"]
    assert "failed" in lines["broken"] and "refused" in lines["future"]
    assert "broken failed: import failed: RuntimeError: genloom-broken cannot start" in done.stdout
    as_json = json.loads(run_cli("plugins", "--json", env=ENV, pythonpath=installed_plugins).stdout)
    assert {r["name"]: r["status"] for r in as_json}["future"] == "refused"


def test_cli_models_generate_and_plugin_command(installed_plugins, tmp_path):
    models = run_cli("models", env=ENV, pythonpath=installed_plugins)
    assert models.returncode == 0 and "toy-rings" in models.stdout and "toy" in models.stdout
    gen = run_cli("generate", "-m", "toy-rings", "--labels", "0", "blue", "-O", str(tmp_path / "o"), "--seed", "0",
                  env=ENV, pythonpath=installed_plugins)
    assert gen.returncode == 0, gen.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["0000_s0_c0.png", "0001_s1_c2.png",
                                                                   "manifest.json"]
    hello = run_cli("toy-hello", "--name", "tests", env=ENV, pythonpath=installed_plugins)
    assert hello.returncode == 0 and hello.stdout.strip() == "hello tests from genloom-toy"
    assert "toy-hello" in run_cli("--help", env=ENV, pythonpath=installed_plugins).stdout


def test_cli_strict_reports_the_failure_and_exits_2(installed_plugins):
    done = run_cli("models", env={"GENLOOM_PLUGINS": "strict"}, pythonpath=installed_plugins)
    assert done.returncode == 2
    assert "error:" in done.stderr and "broken" in done.stderr and "Traceback" not in done.stderr
