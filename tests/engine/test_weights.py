"""Safe weight loading: formats, corruption, strict key/shape checks, meta construction, unsafe pickles."""

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import genloom
from genloom import UnsafeCheckpoint, WeightsError, WeightsMismatch
from genloom.engine import weights


class Tiny(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.a = nn.Linear(3, width)
        self.b = nn.Linear(width, 2)
        self.register_buffer("scale", torch.ones(2))


def _sd(width=4, seed=0):
    torch.manual_seed(seed)
    return Tiny(width).state_dict()


def test_safetensors_roundtrip_and_sha256(tmp_path):
    path = weights.save_state_dict(_sd(), tmp_path / "w.safetensors")
    loaded = weights.read_state_dict(path)
    assert set(loaded) == set(_sd()) and all(torch.equal(loaded[k], v) for k, v in _sd().items())
    assert weights.sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_legacy_pth_loads_with_weights_only(tmp_path):
    torch.save({"model": _sd()}, tmp_path / "w.pth")
    loaded = weights.read_state_dict(tmp_path / "w.pth", unwrap=("ema", "model"))
    assert torch.equal(loaded["a.weight"], _sd()["a.weight"])


def test_missing_unknown_and_not_a_state_dict(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        weights.read_state_dict(tmp_path / "nope.safetensors")
    with pytest.raises(WeightsError, match="not found"):
        weights.resolve(tmp_path / "nope.safetensors")
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(WeightsError, match="unknown format"):
        weights.read_state_dict(tmp_path / "w.onnx")
    torch.save({"step": 3, "weights": _sd()}, tmp_path / "train.pt")
    with pytest.raises(WeightsError, match="not a flat state dict"):
        weights.read_state_dict(tmp_path / "train.pt")


def test_truncated_safetensors_is_a_typed_error(tmp_path):
    path = weights.save_state_dict(_sd(), tmp_path / "w.safetensors")
    data = path.read_bytes()
    for cut in (len(data) // 2, 5):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(WeightsError, match="corrupted or truncated"):
            weights.read_state_dict(bad)
    torch.save(_sd(), tmp_path / "w.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "w.pth").read_bytes()[:100])
    with pytest.raises(WeightsError, match="could not be read"):
        weights.read_state_dict(tmp_path / "cut.pth")


MALICIOUS = textwrap.dedent(
    """
    import pickle, sys, torch

    class Payload:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('pwned')" % sys.argv[2],))

    torch.save({"a.weight": torch.zeros(1), "evil": Payload()}, sys.argv[1])
    """
)


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    ckpt, marker = tmp_path / "evil.pth", tmp_path / "marker.txt"
    subprocess.run([sys.executable, "-c", MALICIOUS, str(ckpt), str(marker)], check=True)
    assert ckpt.exists() and not marker.exists()
    with pytest.raises(UnsafeCheckpoint, match="needs arbitrary code") as info:
        weights.read_state_dict(ckpt)
    assert "never runs code" in str(info.value)
    assert not marker.exists(), "the payload ran"
    with pytest.raises(UnsafeCheckpoint):
        genloom.load("smoke", weights=ckpt)
    assert not marker.exists(), "the payload ran"
    # the file is a real exploit: an unsafe load does run it (in a child process), so the test above can fail
    unsafe = f"import torch; torch.load({str(ckpt)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", unsafe], check=True)
    assert marker.read_text() == "pwned"


def test_mismatch_lists_missing_unexpected_and_shapes():
    sd = _sd(width=5)
    sd.pop("b.bias")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsMismatch) as info:
        weights.check_state_dict(weights.expected_shapes(Tiny(4)), sd)
    err = info.value
    assert err.missing == ["b.bias"] and err.unexpected == ["extra.weight"]
    assert ("a.weight", (5, 3), (4, 3)) in err.shape_mismatches
    text = str(err)
    assert "1 missing key(s): b.bias" in text and "1 unexpected key(s): extra.weight" in text
    assert "a.weight: checkpoint [5, 3] vs network [4, 3]" in text


def test_build_and_load_constructs_on_meta_and_assigns():
    seen = []

    class Recording(Tiny):
        def __init__(self):
            super().__init__()
            seen.append(self.a.weight.device.type)

    sd = _sd()
    net = weights.build_and_load(Recording, sd)
    assert seen == ["meta"], "the network was materialised before loading"
    assert torch.equal(net.a.weight, sd["a.weight"]) and not net.training
    assert all(not p.requires_grad for p in net.parameters())
    half = weights.build_and_load(Tiny, sd, dtype=torch.bfloat16)
    assert half.a.weight.dtype == torch.bfloat16


def test_index_buffers_stored_as_floats_get_their_integer_dtype_back_or_are_refused():
    class Indexed(Tiny):
        def __init__(self):
            super().__init__()
            self.register_buffer("level", torch.tensor([0, 1, 1, 2]))

    sd = Indexed().state_dict()
    sd["level"] = sd["level"].float()  # what a checkpoint average or a careless cast writes
    net = weights.build_and_load(Indexed, sd)
    assert net.level.dtype == torch.int64 and net.level.tolist() == [0, 1, 1, 2]
    sd["level"] = sd["level"] + 0.5
    with pytest.raises(WeightsError, match="'level' as torch.float32 with fractional values .* torch.int64 indices"):
        weights.build_and_load(Indexed, sd)


def test_resolve_assets_folders_and_hub_offline(tmp_path):
    asset = weights.resolve("asset:smoke.safetensors")
    assert asset.path.name == "smoke.safetensors" and asset.source == "asset:smoke.safetensors"
    with pytest.raises(WeightsError, match="missing"):
        weights.resolve("asset:nope.safetensors")
    weights.save_state_dict(_sd(), tmp_path / "model.safetensors")
    assert weights.resolve(tmp_path).path == tmp_path / "model.safetensors"
    weights.save_state_dict(_sd(), tmp_path / "other.safetensors")
    with pytest.raises(WeightsError, match="several checkpoints"):
        weights.resolve(tmp_path)
    with pytest.raises(WeightsError, match="must look like"):
        weights.resolve("hf://just-a-repo")


def test_hub_download_respects_offline_mode(tmp_path):
    code = textwrap.dedent(
        """
        from genloom.engine.weights import resolve
        from genloom import WeightsError
        try:
            resolve("hf://FoundationVision/var/var_d16.pth@main")
        except WeightsError as e:
            print("WeightsError:", e)
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "WeightsError:" in out.stdout and "HF_HUB_OFFLINE is set" in out.stdout, out.stdout + out.stderr


def test_load_with_mismatched_or_truncated_checkpoint(tmp_path):
    sd = weights.read_state_dict(weights.asset_path("smoke.safetensors"))
    sd["fc.weight"] = sd["fc.weight"][:, :10]
    weights.save_state_dict(sd, tmp_path / "bad.safetensors")
    with pytest.raises(WeightsMismatch, match="fc.weight: checkpoint"):
        genloom.load("smoke", weights=tmp_path / "bad.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(weights.asset_path("smoke.safetensors").read_bytes()[:1000])
    with pytest.raises(WeightsError, match="truncated"):
        genloom.load("smoke", weights=tmp_path / "cut.safetensors")
    with pytest.raises(WeightsError, match="not found"):
        genloom.load("smoke", weights=tmp_path / "missing.safetensors")
