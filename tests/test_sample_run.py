"""`genloom sample` at evaluation scale: shards, several processes through accelerate, resumption, bad input."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from genloom.engine.errors import InvalidRequest
from genloom.eval.npz import iter_npz, read_npz
from genloom.sample_run import SamplePlan, merge, prepare, shard_path, work_folder, write_shard

from .conftest import launch_cli, run_cli

SMOKE = ("-m", "smoke", "-n", "20", "--seed", "1", "--batch-size", "4", "--shard-size", "6")


def test_two_processes_give_the_same_bytes_as_one(tmp_path):
    one = run_cli("sample", *SMOKE, "--out", str(tmp_path / "one.npz"))
    assert one.returncode == 0, one.stderr
    two = launch_cli("sample", *SMOKE, "--out", str(tmp_path / "two.npz"), cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "process 1/2" in two.stderr  # both processes took part
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    images, labels = read_npz(tmp_path / "two.npz")
    assert images.shape == (20, 32, 32, 3) and labels.tolist() == [i % 10 for i in range(20)]
    assert not work_folder(tmp_path / "two.npz").exists()  # shards are removed once merged


def test_a_killed_run_resumes_to_exactly_the_uninterrupted_set(tmp_path):
    args = ["-m", "var-shapes", "-n", "48", "--seed", "2", "--batch-size", "4", "--shard-size", "4"]
    out = tmp_path / "killed.npz"
    proc = subprocess.Popen([sys.executable, "-m", "genloom", "sample", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = work_folder(out)
    deadline = time.monotonic() + 300
    while not shard_path(folder, 0).exists():  # wait for a state: the first shard is finished
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before a shard was written"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it was killed"
    kept = {p.name: p.read_bytes() for p in folder.glob("shard_*.npz")}
    (folder / "shard_000099.npz.tmp").write_bytes(b"partial")  # what a kill during a write leaves
    resumed = run_cli("sample", *args, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} finished earlier" in resumed.stderr
    whole = run_cli("sample", *args, "--out", str(tmp_path / "whole.npz"))
    assert whole.returncode == 0, whole.stderr
    assert out.read_bytes() == (tmp_path / "whole.npz").read_bytes()
    again = run_cli("sample", *args, "--out", str(out))
    assert again.returncode == 0 and "already complete" in again.stderr


def test_shards_of_another_configuration_are_refused_unless_overwrite(tmp_path):
    out = tmp_path / "s.npz"
    plan = SamplePlan(model="smoke", num_images=10, seed=0, shard_size=5)
    folder, done = prepare(out, plan, overwrite=False)
    assert not done and (folder / "plan.json").is_file()
    write_shard(folder, 0, np.zeros((5, 2, 2, 3), np.uint8), None)
    other = SamplePlan(model="smoke", num_images=10, seed=1, shard_size=5)
    with pytest.raises(InvalidRequest, match="another configuration.*--overwrite"):
        prepare(out, other, overwrite=False)
    assert shard_path(folder, 0).exists()  # nothing was touched
    prepare(out, other, overwrite=True)
    assert not shard_path(folder, 0).exists()


def test_a_failed_write_leaves_no_partial_shard_and_keeps_finished_ones(tmp_path, monkeypatch):
    import genloom.eval.npz as npz

    plan = SamplePlan(model="smoke", num_images=10, seed=0, shard_size=5)
    folder, _ = prepare(tmp_path / "s.npz", plan, overwrite=False)
    write_shard(folder, 0, np.zeros((5, 2, 2, 3), np.uint8), np.arange(5))

    def disk_full(self, images, labels=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(npz.NpzWriter, "write", disk_full)
    with pytest.raises(InvalidRequest, match="No space left.*rerun the same command"):
        write_shard(folder, 1, np.zeros((5, 2, 2, 3), np.uint8), np.arange(5))
    assert sorted(p.name for p in folder.iterdir()) == ["plan.json", "shard_000000.npz"]


def test_merge_streams_shards_in_order(tmp_path):
    plan = SamplePlan(model="smoke", num_images=7, seed=0, shard_size=3, labels=list(range(7)))
    folder, _ = prepare(tmp_path / "m.npz", plan, overwrite=False)
    images = np.arange(7 * 12, dtype=np.uint8).reshape(7, 2, 2, 3)
    for k in (2, 0, 1):  # finished in any order
        idx = plan.shard(k)
        write_shard(folder, k, images[idx.start:idx.stop], np.arange(idx.start, idx.stop))
    path = merge(folder, plan, tmp_path / "m.npz", {"plan": plan.as_json()})
    got = list(iter_npz(path, batch=2))
    assert np.concatenate([g for g, _ in got]).tobytes() == images.tobytes()
    assert np.concatenate([lab for _, lab in got]).tolist() == list(range(7))


@pytest.mark.parametrize("args,message", [
    (("-m", "smoke", "-n", "0"), "--num-images must be at least 1"),
    (("-m", "nosuch", "-n", "3"), "nosuch"),
    (("-m", "smoke", "-l", "1", "-l", "bogus", "-n", "4"), "Unknown class name 'bogus'"),
])
def test_bad_input_is_refused_before_any_work(tmp_path, args, message):
    done = run_cli("sample", *args, "--out", str(tmp_path / "x.npz"))
    assert done.returncode == 2 and message in done.stderr
    assert not any(tmp_path.iterdir())


def test_an_unwritable_output_is_a_typed_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    done = run_cli("sample", "-m", "smoke", "-n", "2", "--out", str(blocker / "x.npz"))
    assert done.returncode == 2 and "Cannot write" in done.stderr
