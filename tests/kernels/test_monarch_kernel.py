"""Learned-butterfly kernel (ButterflyFFTConv through Triton) against the torch path:
exact-DFT initialisation and perturbed factors, forward and every gradient (u, k, D and
all six Monarch factor tensors), with dtype error budgets."""

from __future__ import annotations

import random

import pytest
import torch
from kernel_checks import DEV, assert_all_ok, needs_interpreter_or_cuda

from neuroconv.butterfly import ButterflyFFTConv
from neuroconv.kernel_tools.compare import compare_butterfly

pytestmark = needs_interpreter_or_cuda

mk = pytest.importorskip("neuroconv.kernels.monarch")


def check_module(L, l_max, Lk, causal, perturb, *, with_D=True, dtype=torch.float32, seed=0, B=2):
    recs = compare_butterfly(L, l_max, Lk, causal, perturb=perturb, with_D=with_D, dtype=dtype,
                             seed=seed, B=B, device=DEV)
    assert len(recs) == 9 + with_D
    assert_all_ok(recs, f"L={L}, l_max={l_max}, Lk={Lk}, causal={causal}, perturbed={perturb}, {dtype}")


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
