"""backend="auto": the one-time self-check, the warning and torch fallback on a faulty
kernel, the per-process cache, NEUROCONV_FFTCONV_BACKEND, and launches under the input's
device. Under the Triton interpreter, CPU tensors are sent through the self-check by
patching ``neuroconv.fftconv._auto_candidate`` (auto keeps CPU tensors on torch
otherwise)."""

from __future__ import annotations

import importlib
import warnings

import pytest
import torch
from kernel_checks import DEV, needs_interpreter_or_cuda

from neuroconv.fftconv import ENV_BACKEND, fftconv, resolve_backend

fc = importlib.import_module("neuroconv.fftconv")  # the module (neuroconv.fftconv is also the function)

pytestmark = needs_interpreter_or_cuda

fb = pytest.importorskip("neuroconv.kernels.flashbutterfly")
sc = pytest.importorskip("neuroconv.kernels.selfcheck")


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """No cached self-checks, no env override, every tensor a triton candidate, and a
    count of the self-checks run."""
    sc.reset()
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    monkeypatch.setattr(fc, "_auto_candidate", lambda u: True)
    runs = []
    real = sc.self_check
    monkeypatch.setattr(sc, "self_check", lambda *a, **kw: runs.append(a) or real(*a, **kw))
    yield runs
    sc.reset()


def _inputs(L=40, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 3, L, generator=g).to(DEV, dtype)
    return u, (torch.randn(3, L, generator=g) / L**0.5).to(DEV, dtype), torch.randn(3, generator=g).to(DEV, dtype)


def _corrupt_forward(monkeypatch):
    real = fb._fftconv_fwd
    monkeypatch.setattr(fb, "_fftconv_fwd", lambda *a, **kw: real(*a, **kw) * 1.01)


def test_self_check_passes_and_is_cached(fresh):
    u, k, D = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            assert resolve_backend("auto", u, causal=True) == "triton"
    assert len(fresh) == 1  # cached per (device, dtype, causal, gated)
    resolve_backend("auto", u, causal=False)
    resolve_backend("auto", u, causal=False, gated=True)
    assert len(fresh) == 3
    res = sc.results()
    assert [r["ok"] for r in res] == [True] * 3 and all(r["failed"] is None for r in res)
    assert {(r["causal"], r["gated"]) for r in res} == {(True, False), (False, False), (False, True)}


def test_faulty_result_warns_once_and_uses_torch(monkeypatch, fresh):
    _corrupt_forward(monkeypatch)
    u, k, D = _inputs()
    with pytest.warns(sc.FallbackWarning) as w:
        y = fftconv(u, k, D, backend="auto")
    msg = str(w[0].message)
    assert "self-check failed" in msg and "dtype=float32, causal=True, gated=False" in msg
    assert "mismatch" in msg and "y: error" in msg
    assert "python -m neuroconv.kernels.check --json report.json" in msg
    torch.testing.assert_close(y, fftconv(u, k, D, backend="torch"), rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cached: no second warning, no second check
        assert resolve_backend("auto", u) == "torch"
    assert len(fresh) == 1 and sc.results()[0]["ok"] is False
    # an explicit backend="triton" never falls back: the faulty kernel's result comes back
    y_bad = fftconv(u, k, D, backend="triton")
    assert not torch.allclose(y_bad, y, rtol=1e-3, atol=1e-3)


def test_launch_error_warns_and_falls_back_but_explicit_triton_raises(monkeypatch):
    def broken(*a, **kw):
        raise RuntimeError("out of resources: shared memory, required: 300000, hardware limit: 232448")

    monkeypatch.setattr(fb, "_fftconv_bwd", broken)  # the forward works; the backward cannot launch
    u, k, D = _inputs()
    with pytest.warns(sc.FallbackWarning, match="RuntimeError: out of resources"):
        assert resolve_backend("auto", u, gated=True) == "torch"
    u.requires_grad_()
    with pytest.raises(RuntimeError, match="out of resources"):
        fftconv(u, k, D, backend="triton").sum().backward()


def test_self_check_runs_in_inference_mode_and_no_grad(fresh):
    u, k, D = _inputs(dtype=torch.bfloat16)
    with torch.inference_mode():
        assert resolve_backend("auto", u) == "triton"
    with torch.no_grad():
        assert resolve_backend("auto", u, causal=False) == "triton"
    assert all(r["ok"] for r in sc.results()), sc.results()


def test_env_override(monkeypatch, fresh):
    _corrupt_forward(monkeypatch)
    u, k, D = _inputs()
    monkeypatch.setenv(ENV_BACKEND, "torch")
    assert resolve_backend("auto", u) == "torch"
    assert resolve_backend("triton", u) == "triton"  # the argument wins over the variable
    monkeypatch.setenv(ENV_BACKEND, "triton")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fftconv(u, k, D, backend="auto")  # triton without the self-check
    assert not torch.allclose(y, fftconv(u, k, D, backend="torch"), rtol=1e-3, atol=1e-3)
    assert fresh == []
    monkeypatch.setenv(ENV_BACKEND, "cuda")
    with pytest.raises(ValueError, match=r"NEUROCONV_FFTCONV_BACKEND must be 'torch' or 'triton'.*'cuda'"):
        fftconv(u, k, D)


def test_auto_keeps_float64_and_non_candidates_on_torch(monkeypatch, fresh):
    u, k, D = _inputs(dtype=torch.float64)
    assert resolve_backend("auto", u) == "torch"
    monkeypatch.setattr(fc, "_auto_candidate", lambda u: False)
    assert resolve_backend("auto", u.float()) == "torch"
    assert fresh == []


def test_torch_compile_traces_auto_without_graph_break(fresh):
    """auto_backend runs once while dynamo traces (assume_constant_result): fullgraph holds."""
    u, k, D = _inputs()
    torch._dynamo.reset()
    f = torch.compile(lambda u, k, D: fftconv(u, k, D, backend="auto"), backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(f(u, k, D), fftconv(u, k, D, backend="torch"), atol=1e-5, rtol=1e-5)
    assert len(fresh) == 1 and sc.results()[0]["ok"]


def test_launches_run_under_the_input_device(monkeypatch):
    from neuroconv.kernels import _common

    seen = []

    class Recorder:
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            seen.append(self.device)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "device", Recorder)
    assert isinstance(_common.launch_device(torch.device("cuda", 1)), Recorder)
    assert seen == [] and _common.launch_device(torch.device("cpu")).__enter__() is None
    monkeypatch.setattr(fb, "launch_device", lambda d: seen.append(d) or _common.launch_device(d))
    u, k, D = _inputs()
    u.requires_grad_()
    fb.fftconv_fn(u, k, D).sum().backward()
    assert seen == [u.device, u.device]  # forward op, backward op
