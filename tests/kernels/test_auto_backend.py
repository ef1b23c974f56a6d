"""backend="auto": the one-time self-check, the warning and torch fallback on a faulty
kernel, the per-process cache, NEUROCONV_FFTCONV_BACKEND, and launches under the input's
device. Under the Triton interpreter, CPU tensors are sent through the self-check by
patching ``neuroconv.backend._auto_candidate`` (auto keeps CPU tensors on torch
otherwise)."""

from __future__ import annotations

import importlib
import warnings

import pytest
import torch
from kernel_checks import DEV, needs_interpreter_or_cuda

from neuroconv.fftconv import ENV_BACKEND, fftconv, resolve_backend

bk = importlib.import_module("neuroconv.backend")

pytestmark = needs_interpreter_or_cuda

fb = pytest.importorskip("neuroconv.kernels.flashbutterfly")
sc = pytest.importorskip("neuroconv.kernels.selfcheck")


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """No cached self-checks, no env override, every tensor a triton candidate, and a
    count of the self-checks run."""
    sc.reset()
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    monkeypatch.setattr(bk, "_auto_candidate", lambda u: True)
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
    assert "python -m neuroconv.kernel_tools.check --json report.json" in msg
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
    monkeypatch.setattr(bk, "_auto_candidate", lambda u: False)
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


# ------------------------------------------------------------------ one resolver, three callers
# fftconv, GatedLongConv (the fused gated kernel) and ButterflyFFTConv (the learned
# butterfly) all resolve "auto" through neuroconv.backend.resolve_backend: the same
# self-check (per op), the same override variable, the same errors.

mk = pytest.importorskip("neuroconv.kernels.monarch")


class _Caller:
    """One of the three convolutions with its inputs; ``run(backend)`` -> output."""

    def __init__(self, name):
        from neuroconv import ButterflyFFTConv, GatedLongConv

        self.name = name
        g = torch.Generator().manual_seed(1)
        if name == "gated":
            torch.manual_seed(1)
            self.module = GatedLongConv(4, 24, backend="auto").to(DEV)
            self.inputs = (torch.randn(2, 24, 4, generator=g).to(DEV),)
        elif name == "butterfly":
            torch.manual_seed(1)
            self.module = ButterflyFFTConv(24, backend="auto").to(DEV)
            self.inputs = (torch.randn(2, 3, 24, generator=g).to(DEV), torch.randn(3, 24, generator=g).to(DEV),
                           torch.randn(3, generator=g).to(DEV))
        else:
            self.module = None
            self.inputs = _inputs(24)
        # what the self-check records for this caller: (op, gated)
        self.key = {"fftconv": ("fftconv", False), "gated": ("fftconv", True), "butterfly": ("butterfly", False)}[name]

    def run(self, backend):
        with torch.no_grad():
            if self.module is None:
                return fftconv(*self.inputs, backend=backend)
            self.module.backend = backend
            return self.module(*self.inputs)

    @property
    def launcher(self):
        """``(module, name)`` of the Triton forward launcher this caller runs."""
        return (mk, "_monarch_fwd") if self.name == "butterfly" else (fb, "_fftconv_fwd")

    def corrupt(self, monkeypatch):
        mod, name = self.launcher
        real = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, **kw: real(*a, **kw) * 1.01)

    def spy(self, monkeypatch) -> list:
        """Count the Triton forward launches of this caller (one entry per launch)."""
        mod, name = self.launcher
        real, calls = getattr(mod, name), []
        monkeypatch.setattr(mod, name, lambda *a, **kw: calls.append(1) or real(*a, **kw))
        return calls


CALLERS = ["fftconv", "gated", "butterfly"]


@pytest.mark.parametrize("name", CALLERS)
def test_each_caller_self_checks_once_then_uses_triton(name, fresh, monkeypatch):
    """Which path ran is counted by a spy on the kernel's launcher, never told apart by
    floating-point differences (the two paths may agree bitwise)."""
    c = _Caller(name)
    launches = c.spy(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y_auto = c.run("auto")
        n_first = len(launches)  # the self-check's launches, then the call's own
        c.run("auto")
    assert len(launches) - n_first == 1  # the second call: one launch, the kernel's path
    assert n_first >= 2  # the self-check launched the kernel, and so did the call
    torch.testing.assert_close(y_auto, c.run("triton"), rtol=0, atol=0)  # the kernel's own result
    before = len(launches)
    c.run("torch")
    assert len(launches) == before  # the torch path launches nothing
    assert len(fresh) == 1  # one self-check, cached
    (res,) = sc.results()
    assert res["ok"] and (res["op"], res["gated"]) == c.key and res["causal"] is True


@pytest.mark.parametrize("name", CALLERS)
def test_each_caller_falls_back_to_torch_on_a_faulty_kernel(name, monkeypatch, fresh):
    c = _Caller(name)
    c.corrupt(monkeypatch)
    with pytest.warns(sc.FallbackWarning) as w:
        y = c.run("auto")
    msg = str(w[0].message)
    assert "self-check failed" in msg and "mismatch" in msg and sc.REPORT_COMMAND in msg
    torch.testing.assert_close(y, c.run("torch"), rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cached: no second warning, no second check
        torch.testing.assert_close(c.run("auto"), y, rtol=0, atol=0)
    assert len(fresh) == 1 and (sc.results()[0]["op"], sc.results()[0]["gated"]) == c.key


@pytest.mark.parametrize("name", CALLERS)
def test_each_caller_obeys_the_override_variable(name, monkeypatch, fresh):
    c = _Caller(name)
    c.corrupt(monkeypatch)
    monkeypatch.setenv(ENV_BACKEND, "torch")
    torch.testing.assert_close(c.run("auto"), c.run("torch"), rtol=0, atol=0)
    monkeypatch.setenv(ENV_BACKEND, "triton")  # the (faulty) kernel, without a self-check
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(c.run("auto"), c.run("triton"), rtol=0, atol=0)
    assert fresh == []
    monkeypatch.setenv(ENV_BACKEND, "cuda")
    with pytest.raises(ValueError, match=r"NEUROCONV_FFTCONV_BACKEND must be 'torch' or 'triton'.*'cuda'"):
        c.run("auto")


@pytest.mark.parametrize("name", CALLERS)
def test_each_caller_raises_the_same_errors(name, monkeypatch):
    from neuroconv import ButterflyFFTConv, GatedLongConv, kernels
    from neuroconv.kernels import availability

    c = _Caller(name)
    with pytest.raises(ValueError, match=r"`backend` must be one of \('auto', 'torch', 'triton'\); got 'cuda'"):
        if name == "fftconv":
            fftconv(*c.inputs, backend="cuda")
        elif name == "gated":
            GatedLongConv(4, 24, backend="cuda")
        else:
            ButterflyFFTConv(24, backend="cuda")
    monkeypatch.setattr(availability, "_triton_importable", lambda: False)
    monkeypatch.setattr(bk, "_auto_candidate", lambda u: kernels.triton_available(u.device))  # unpatched
    with pytest.raises(RuntimeError, match=r"needs the `triton` package.*pip install 'neuroconv\[gpu\]'"):
        c.run("triton")
    torch.testing.assert_close(c.run("auto"), c.run("torch"), rtol=0, atol=0)  # auto: silently torch


def test_butterfly_auto_uses_torch_when_the_transform_does_not_fit(monkeypatch, fresh):
    c = _Caller("butterfly")
    monkeypatch.setitem(mk.MAX_TILE, "float32", 16 * 16 - 1)  # n = 48 = 6 x 8 pads to 16 x 16 tiles
    torch.testing.assert_close(c.run("auto"), c.run("torch"), rtol=0, atol=0)
    assert fresh == []  # nothing to check: the kernel does not take this size
    with pytest.raises(ValueError, match="backend='torch'"):
        c.run("triton")  # explicit: the kernel's own error
