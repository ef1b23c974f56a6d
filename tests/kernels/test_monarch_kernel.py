"""Learned-butterfly kernel (ButterflyFFTConv through Triton) against the torch path:
exact-DFT initialisation and perturbed factors, forward and every gradient (u, k, D and
all six Monarch factor tensors), with dtype error budgets."""

from __future__ import annotations

import random

import pytest
import torch
from kernel_checks import check_budget, needs_interpreter_or_cuda

from neuroconv.butterfly import ButterflyFFTConv

pytestmark = needs_interpreter_or_cuda

mk = pytest.importorskip("neuroconv.kernels.monarch")

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _module(l_max, causal, perturb, seed):
    torch.manual_seed(seed)
    m = ButterflyFFTConv(l_max, causal=causal, backend="torch").to(DEV)
    if perturb:  # learned factors: no longer a DFT, no symmetry left
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return m


def _params(m):
    return [m.dft.f1, m.dft.twiddle, m.dft.f2, m.idft.f1, m.idft.twiddle, m.idft.f2]


def _outputs(fn, params, u, k, D, dy):
    y = fn(u, k, D)
    ins = [t for t in (u, k, D) if t is not None] + params
    return [y, *torch.autograd.grad(y, ins, dy.to(y.dtype))]


def check_module(L, l_max, Lk, causal, perturb, *, with_D=True, dtype=torch.float32, seed=0, B=2):
    if not causal and Lk % 2 == 0:
        Lk += 1
    m = _module(l_max, causal, perturb, seed)
    g = torch.Generator().manual_seed(seed)
    H = 2
    u = torch.randn(B, H, L, generator=g, dtype=torch.float64)
    k = torch.randn(H, Lk, generator=g, dtype=torch.float64) / Lk**0.5
    D = torch.randn(H, generator=g, dtype=torch.float64) if with_D else None
    dy = torch.randn(B, H, L, generator=g, dtype=torch.float64).to(DEV)
    prep = lambda t, dt: None if t is None else t.to(DEV, dt).requires_grad_()  # noqa: E731

    m.backend = "triton"
    kern = _outputs(m, _params(m), prep(u, dtype), prep(k, dtype), prep(D, dtype), dy)
    m.backend = "torch"
    twin = _outputs(m, _params(m), prep(u, dtype), prep(k, dtype), prep(D, dtype), dy)
    p64 = [p.detach().double().requires_grad_() for p in _params(m)]
    ref = lambda u, k, D: mk.butterfly_conv_ref(u, k, D, p64[:3], p64[3:], causal=causal)  # noqa: E731
    exact = _outputs(ref, p64, prep(u, torch.float64), prep(k, torch.float64), prep(D, torch.float64), dy)
    names = ["y", "du", "dk"] + (["dD"] if with_D else []) + ["df1", "dtw", "df2", "dg1", "dts", "dg2"]
    assert kern[0].dtype == dtype
    for name, a, b, e in zip(names, kern, twin, exact):
        check_budget(f"{name} (L={L}, n={m.n}, causal={causal}, perturbed={perturb})", a, b, e, dtype)


@pytest.mark.parametrize("L", [1, 15, 16, 100, 256, 1000])
@pytest.mark.parametrize("perturb", [False, True])
def test_lengths_both_factor_forms(L, perturb):
    rnd = random.Random(L + 7 * perturb)
    l_max = L + rnd.choice([0, 3, L // 2])
    Lk = rnd.choice([1, max(1, L // 2), L + 5])
    check_module(L, l_max, Lk, causal=(L + perturb) % 2 == 0, perturb=perturb, seed=L)


def test_backward_grid_stride(monkeypatch):
    """Fewer programs than rows: each program strides over rows, the last ones ragged."""
    monkeypatch.setattr(mk, "device_max_programs", lambda device: 1)  # 4 programs, 6 rows
    check_module(40, 40, 13, True, True, seed=5, B=3)


def test_square_transform_without_D():
    check_module(50, 128, 31, True, True, with_D=False, seed=3)  # n = 256 = 16 x 16


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs(dtype):
    check_module(60, 60, 21, False, True, dtype=dtype, seed=4)


def test_equals_fftconv_at_init():
    from neuroconv.fftconv import fftconv

    m = ButterflyFFTConv(90, backend="triton").to(DEV)
    u, k = torch.randn(2, 3, 90, device=DEV), torch.randn(3, 90, device=DEV)
    torch.testing.assert_close(m(u, k), fftconv(u, k, backend="torch"), atol=1e-4, rtol=1e-4)


def test_backend_argument():
    with pytest.raises(ValueError, match="backend"):
        ButterflyFFTConv(10, backend="cuda")
    m = ButterflyFFTConv(10)  # auto: CPU tensors take the torch path (no interpreter)
    assert not m._use_triton(torch.randn(1, 1, 10))


def test_too_large_transform_raises(monkeypatch):
    monkeypatch.setitem(mk.MAX_TILE, "float32", 256)
    m = ButterflyFFTConv(200, backend="triton").to(DEV)  # n = 400 = 20 x 20 -> 32 x 32 tiles
    with pytest.raises(ValueError, match="backend='torch'"):
        m(torch.randn(1, 1, 10, device=DEV), torch.randn(1, 10, device=DEV))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("L", [1, 100, 1000, 2048, 4000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_learned_butterfly(L, dtype):
    for causal in (True, False):
        check_module(L, L, L, causal, True, dtype=dtype, seed=L)
