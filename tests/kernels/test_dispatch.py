"""The kernel dispatcher: backend choice (per call, per dispatcher, GENLOOM_KERNELS), typed errors, plugins."""

import pytest
import torch

import genloom
from genloom.engine.errors import DeviceError, InvalidRequest, NotRegistered
from genloom.engine.specs import KernelSpec
from genloom.kernels.dispatch import Dispatcher, default_dispatcher


def _double(x):
    return 2 * x


def _double_fast(x):
    return x + x


SPEC = KernelSpec(name="double", reference=_double, fast=_double_fast)


def test_auto_prefers_the_fast_form_off_cuda_and_torch_forces_the_reference(monkeypatch):
    monkeypatch.delenv("GENLOOM_KERNELS", raising=False)
    d = Dispatcher([SPEC])
    x = torch.ones(3)
    assert d.choose("double", x).implementation is _double_fast
    assert d.choose("double", x, backend="torch").implementation is _double
    monkeypatch.setenv("GENLOOM_KERNELS", "torch")
    assert d.choose("double", x).implementation is _double
    assert d.choose("double", x, backend="auto").implementation is _double_fast  # the call wins over the env
    assert Dispatcher([SPEC], backend="auto").choose("double", x).implementation is _double_fast
    assert torch.equal(d("double", x), 2 * x)


def test_unknown_backend_and_kernel_are_typed_errors(monkeypatch):
    monkeypatch.setenv("GENLOOM_KERNELS", "cuda")
    with pytest.raises(InvalidRequest, match="GENLOOM_KERNELS.*auto"):
        Dispatcher([SPEC])("double", torch.ones(1))
    monkeypatch.delenv("GENLOOM_KERNELS")
    with pytest.raises(NotRegistered, match="selective_scan"):
        default_dispatcher()("selective_scna")


def test_triton_forced_where_it_cannot_run_names_the_alternative(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(DeviceError, match="no Triton implementation.*GENLOOM_KERNELS=auto"):
        Dispatcher([SPEC])("double", torch.ones(1), backend="triton")


def test_a_plugin_kernel_reaches_the_engine_dispatcher():
    class Plugin:
        GENLOOM_PLUGIN_API = "1.0"

        @genloom.hookimpl
        def register_kernels(self, register):
            register(SPEC)

    engine = genloom.Engine(third_party=False, strict=True, plugins=[("double", Plugin())])
    assert "double" in engine.kernels and "selective_scan" in engine.kernels
    assert torch.equal(engine.dispatcher("double", torch.ones(2)), torch.full((2,), 2.0))
    names = [row[0] for row in engine.dispatcher.report()]
    assert names == sorted(names) and "double" in names
