"""Bad input on the command line: one line, exit code 2, no traceback, nothing written — checked in-process."""

import json

import pytest
from click.testing import CliRunner

from genloom.cli.main import cli


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(cli, list(args))
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
            repr(result.exception)  # a raw exception is a traceback for the user
        return result
    return invoke


@pytest.mark.parametrize("args, message", [
    (("generate", "-m", "smoke", "-l", "1", "--out", "/proc/genloom-x"), "Cannot write to the output folder"),
    (("generate", "-m", "smoke", "-l", "٣"), "Unknown class name '٣'"),
    (("generate", "-m", "smoke", "-l", ""), "Empty label ''"),
    (("generate", "-m", "smoke", "-l", "1", "-o", "x"), "is not key=value"),
    (("generate", "-m", "smoke", "-l", "1", "-L", "vae=x"), "Unknown load option(s) ['vae'] for model 'smoke'"),
    (("generate", "-m", "var-shapes", "-l", "1", "--steps", "3"), "has 6 scales: steps must be 6"),
    (("generate", "-m", "var-shapes", "-l", "1", "-o", "top_k=-1"), "option 'top_k' of sampler 'next-scale'"),
    (("eval", "--samples", "{bad_npz}"), "is not a readable .npz file"),
    (("eval", "--samples", "{bad_npz}", "--k", "0"), "0 is not in the range x>=1"),
    (("convert", "{bad_npz}", "{bad_npz}"), "TARGET is the SOURCE"),
    (("data", "preview", "--rows", "0"), "0 is not in the range x>=1"),
    (("train", "autoencoder", "--steps", "0"), "--steps must be > 0"),
    (("train", "dimr", "--cond-drop", "1.5"), "--cond-drop must be in [0, 1)"),
])
def test_bad_input_is_one_typed_line(run, tmp_path, args, message):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    args = [a.format(bad_npz=bad) for a in args]
    out = tmp_path / "out"
    if args[0] in ("generate", "train"):
        args += ["--out", str(out)] if "--out" not in args else []
    result = run(*args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists()


def test_output_folders_are_never_mixed(run, tmp_path):
    out = tmp_path / "out"
    first = run("generate", "-m", "smoke", "-l", "1", "2", "--seed", "0", "--out", str(out))
    assert first.exit_code == 0, first.output
    again = run("generate", "-m", "smoke", "-l", "3", "--seed", "5", "--out", str(out))
    assert again.exit_code == 2 and "is not empty" in again.output
    (out / "notes.txt").write_text("mine")
    replaced = run("generate", "-m", "smoke", "-l", "3", "--seed", "5", "--out", str(out), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    manifest = json.loads((out / "manifest.json").read_text())
    # the earlier run's two PNGs are gone, the user's own file is kept, the manifest describes what is there
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest["files"] + ["manifest.json", "notes.txt"])
    assert manifest["files"] == ["0000_s5_c3.png"]


def test_sample_and_convert_refuse_to_overwrite(run, tmp_path):
    target = tmp_path / "s.npz"
    target.write_bytes(b"precious")
    result = run("sample", "-m", "smoke", "-n", "2", "--out", str(target))
    assert result.exit_code == 2 and "already exists" in result.output and target.read_bytes() == b"precious"
