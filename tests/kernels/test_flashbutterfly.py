"""FlashButterfly fftconv kernels against their torch twin, under TRITON_INTERPRET=1 on CPU
(CI) and on CUDA when present. Forward and every gradient, gated and ungated, causal and
centred, on-chip and three-pass, with dtype error budgets (see kernel_checks.py)."""

from __future__ import annotations

import random
import warnings

import pytest
import torch
from kernel_checks import ATOL, DEV, assert_all_ok, needs_interpreter_or_cuda

from neuroconv.kernels.verify import compare_fftconv

pytestmark = needs_interpreter_or_cuda

fb = pytest.importorskip("neuroconv.kernels.flashbutterfly")


def check_against_twin(B, H, L, Lk, causal, *, gates=True, with_D=True, dtype=torch.float32,
                       seed=0, max_onchip=None, k_dtype=None):
    recs = compare_fftconv(B, H, L, Lk, causal, gates=gates, with_D=with_D, dtype=dtype, seed=seed,
                           max_onchip=max_onchip, k_dtype=k_dtype, device=DEV)
    assert [r["name"] for r in recs][:2] == ["y", "du"]
    assert_all_ok(recs, f"L={L}, Lk={Lk}, causal={causal}, gates={gates}, D={with_D}, {dtype}")


# ------------------------------------------------------------------------------ lengths


@pytest.mark.parametrize("L", [1, 15, 16, 100, 256, 1000])
@pytest.mark.parametrize("causal", [True, False])
def test_lengths_gated_with_all_gradients(L, causal):
    rnd = random.Random(L * 2 + causal)
    B, H = rnd.randint(1, 2), rnd.randint(1, 3)
    Lk = rnd.choice([1, max(1, L // 3), L, 2 * L + 7])  # shorter, equal, longer than L
    check_against_twin(B, H, L, Lk, causal, seed=L)


@pytest.mark.parametrize("L,Lk,causal,with_D", [(37, 12, True, False), (129, 300, False, True),
                                                (511, 511, True, True)])
def test_ungated(L, Lk, causal, with_D):
    check_against_twin(3, 2, L, Lk, causal, gates=False, with_D=with_D, seed=7)  # B=3: a ragged batch chunk


def test_two_factor_inner_transform_on_chip():
    """N = 8192 = 32 x 16 x 16: the inner DFT is itself two tl.dot stages with twiddles."""
    plan = fb.make_plan(4000, fb.max_onchip_for(torch.float32, torch.float32))
    assert not plan.three_pass and plan.N3 > 1
    check_against_twin(1, 2, 4000, 333, False, seed=3)


@pytest.mark.parametrize("L,Lk,causal,max_onchip", [
    (1000, 1999, True, 512),  # P=32 outer over HBM, Q=64 dense inner
    (1000, 401, False, 512),
    (3001, 2000, False, 1024),  # Q = 16 x 16 inner
])
def test_three_pass(L, Lk, causal, max_onchip):
    plan = fb.make_plan(L, max_onchip)
    assert plan.three_pass
    check_against_twin(2, 2, L, Lk, causal, seed=L, max_onchip=max_onchip)


@pytest.mark.parametrize("causal", [True, False])
def test_three_pass_outer_row_blocks(monkeypatch, causal):
    """P = 64 outer rows split into blocks of 16 in passes 1 and 3 (as P >= 256 is on GPU)."""
    monkeypatch.setattr(fb, "OUTER_ROWS", 16)
    plan = fb.make_plan(4000, 512)
    assert plan.three_pass and plan.N1 == 64
    check_against_twin(1, 2, 4000, 1001, causal, seed=9, max_onchip=512)


def test_three_pass_batch_chunks(monkeypatch):
    """Scratch smaller than the batch: the three passes run chunk by chunk."""
    monkeypatch.setattr(fb, "SCRATCH_BYTES", 1)
    check_against_twin(3, 2, 300, 77, True, seed=5, max_onchip=512)  # N=1024 -> three-pass


# ------------------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(dtype):
    check_against_twin(2, 2, 100, 57, True, dtype=dtype, seed=11)


def test_mixed_dtypes_follow_the_inputs():
    check_against_twin(1, 2, 50, 21, False, dtype=torch.bfloat16, k_dtype=torch.float32, seed=2)


@pytest.mark.parametrize("seed", range(3))
def test_random_shapes(seed):
    rnd = random.Random(100 + seed)
    L = rnd.choice([rnd.randint(2, 300), rnd.randrange(1, 1200, 2)])
    check_against_twin(rnd.randint(1, 2), rnd.randint(1, 2), L, rnd.randint(1, 2 * L + 3),
                       rnd.random() < 0.5, gates=rnd.random() < 0.5, with_D=rnd.random() < 0.5, seed=seed)


# ------------------------------------------------------------------------------ semantics


def test_matches_public_fftconv_and_dispatch():
    from neuroconv.fftconv import fftconv

    u, k, D = torch.randn(2, 3, 77, device=DEV), torch.randn(3, 77, device=DEV), torch.randn(3, device=DEV)
    want = fftconv(u, k, D, backend="torch")
    got = fftconv(u, k, D, backend="triton")
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_causality_and_no_wraparound():
    L, f64 = 200, torch.float64
    u = torch.zeros(1, 1, L, device=DEV, dtype=f64)
    u[..., 0] = 1.0
    k = torch.zeros(1, 3 * L, device=DEV, dtype=f64)
    k[0, L:] = 100.0  # taps that can never reach an output
    assert fb.fftconv_fn(u, k).abs().max() < 1e-10
    u = torch.randn(1, 2, L, device=DEV, dtype=f64)
    k = torch.randn(2, L, device=DEV, dtype=f64)
    u2 = u.clone()
    u2[..., 120:] += 10
    y, y2 = fb.fftconv_fn(u, k), fb.fftconv_fn(u2, k)
    torch.testing.assert_close(y[..., :120], y2[..., :120], atol=1e-10, rtol=0)
    assert not torch.allclose(y[..., 120:], y2[..., 120:])
    # centred: an impulse at t0 shows the kernel around t0, lags -2..2
    u = torch.zeros(1, 1, 9, device=DEV, dtype=f64)
    u[..., 6] = 1.0
    k = torch.arange(1.0, 6.0, device=DEV, dtype=f64)[None]
    y = fb.fftconv_fn(u, k, causal=False)[0, 0].cpu()
    torch.testing.assert_close(y, torch.tensor([0, 0, 0, 0, 1, 2, 3, 4, 5.0], dtype=f64), atol=1e-10, rtol=0)


def test_plan_covers_every_length():
    for L in list(range(1, 70)) + [2**j + d for j in range(6, 17) for d in (-1, 0, 1)] + [65536, 100_000]:
        for mo in (None, 512, 1024):
            p = fb.make_plan(L, mo)
            assert p.N >= 2 * L and p.N & (p.N - 1) == 0 and p.N == p.N1 * p.N2 * p.N3
            assert p.N1 >= 32 and p.N2 >= 16 and (p.N3 == 1 or p.N3 >= 16)
            assert p.three_pass == (p.N > (mo or fb.MAX_ONCHIP["float32"]))
            assert not p.three_pass or p.M <= fb.MAX_INNER
            if p.three_pass:
                R, BQ = fb._inner_rows(p), fb._outer_block(p)
                assert p.half % R == 0 and p.M % BQ == 0 and R * p.M <= max(4096, 16 * p.M)
                assert (R if p.N3 == 1 else R * p.N3) >= 16


def test_spectrum_cached_only_without_grad():
    L, causal = 64, True
    k = torch.randn(2, 64, device=DEV)
    plan = fb.make_plan(L)
    with torch.no_grad():
        s1 = fb._cached_spectrum(k, L, causal, plan, torch.float32)
        assert fb._cached_spectrum(k, L, causal, plan, torch.float32) is s1
        k.mul_(2)  # in-place change: version bump -> recomputed
        s2 = fb._cached_spectrum(k, L, causal, plan, torch.float32)
        assert s2 is not s1
        torch.testing.assert_close(s2, 2 * s1)
    kg = torch.randn(2, 64, device=DEV, requires_grad=True)
    assert fb._cached_spectrum(kg, L, causal, plan, torch.float32) is not fb._cached_spectrum(
        kg, L, causal, plan, torch.float32)
    n = len(fb._SPEC_CACHE)
    del k
    assert len(fb._SPEC_CACHE) < n  # entries die with their kernel


def test_bad_inputs():
    u, k = torch.randn(2, 3, 10, device=DEV), torch.randn(3, 4, device=DEV)
    with pytest.raises(ValueError, match="g1"):
        fb.fftconv_fn(u, k, g1=torch.randn(2, 3, 9, device=DEV))
    with pytest.raises(TypeError, match="g2"):
        fb.fftconv_fn(u, k, g2=torch.ones(2, 3, 10, dtype=torch.long, device=DEV))
    with pytest.raises(ValueError, match="H=3"):
        fb.fftconv_fn(u, torch.randn(4, 4, device=DEV))
    with pytest.raises(ValueError, match="odd length"):
        fb.fftconv_fn(u, k, causal=False)
    with pytest.raises(ValueError, match="max_onchip"):
        fb.fftconv_fn(u, k, max_onchip=300)


def test_auto_falls_back_silently_without_triton(monkeypatch):
    from neuroconv.fftconv import available_backends, fftconv
    from neuroconv.kernels import availability

    monkeypatch.setattr(availability, "_triton_importable", lambda: False)
    u, k = torch.randn(1, 2, 8), torch.randn(2, 8)
    assert available_backends("cpu") == ["torch"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(fftconv(u, k, backend="auto"), fftconv(u, k, backend="torch"))
    with pytest.raises(RuntimeError, match=r"pip install 'neuroconv\[gpu\]'"):
        fftconv(u, k, backend="triton")


def test_interpreter_backend_is_listed():
    from neuroconv.fftconv import available_backends

    assert "triton" in available_backends(DEV)


# ------------------------------------------------------------------------------ GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("L", [1, 2, 15, 16, 17, 255, 256, 1000, 1024, 2049, 4096, 4097, 8192, 16384,
                               32768, 65536])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_gpu_full_length_range(L, dtype):
    B, H = (2, 4) if L <= 16384 else (1, 2)
    for causal in (True, False):
        check_against_twin(B, H, L, L, causal, dtype=dtype, seed=L)
    check_against_twin(B, H, L, max(1, L // 7), True, gates=False, dtype=dtype, seed=L + 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_float64_and_large_batch():
    check_against_twin(2, 3, 3000, 3000, False, dtype=torch.float64)
    check_against_twin(64, 8, 1024, 1024, True, dtype=torch.bfloat16)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_auto_dispatch_uses_triton(monkeypatch):
    from neuroconv import kernels
    from neuroconv.fftconv import fftconv

    called = []
    orig = kernels.fftconv_triton
    monkeypatch.setattr(kernels, "fftconv_triton", lambda *a, **kw: called.append(1) or orig(*a, **kw))
    fftconv(torch.randn(1, 2, 64, device="cuda"), torch.randn(2, 64, device="cuda"))
    assert called


def test_atol_table_covers_dtypes():
    assert set(ATOL) >= {torch.float32, torch.float16, torch.bfloat16, torch.float64}
