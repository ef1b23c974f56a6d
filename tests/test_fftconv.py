"""fftconv against an independent float64 direct convolution (numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import neuroconv
from neuroconv.fftconv import available_backends, fftconv, fftconv_ref

PRIMES = [2, 3, 5, 7, 11, 13, 17, 31, 61, 97, 127, 251]


def direct_conv(u: np.ndarray, k: np.ndarray, D: np.ndarray | None, causal: bool) -> np.ndarray:
    """y[b,h,t] = sum_j k[h,j] u[b,h,t-j+off] in float64 by np.convolve (no FFT)."""
    u = u.astype(np.float64)
    k = k.astype(np.float64)
    B, H, L = u.shape
    off = 0 if causal else (k.shape[1] - 1) // 2
    y = np.zeros((B, H, L))
    for b in range(B):
        for h in range(H):
            full = np.convolve(u[b, h], k[h])  # length L + Lk - 1
            seg = full[off : off + L]
            y[b, h, : len(seg)] = seg
    if D is not None:
        y += D.astype(np.float64)[None, :, None] * u
    return y


shape_strategy = st.tuples(
    st.integers(1, 3),  # B
    st.integers(1, 4),  # H
    st.one_of(st.integers(1, 70), st.sampled_from(PRIMES + [128, 200, 257])),  # L
    st.integers(1, 300),  # Lk
)


@settings(max_examples=60, deadline=None)
@given(shape=shape_strategy, causal=st.booleans(), with_D=st.booleans(), seed=st.integers(0, 2**16))
def test_matches_direct_convolution_float64(shape, causal, with_D, seed):
    B, H, L, Lk = shape
    if not causal and Lk % 2 == 0:
        Lk += 1
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, H, L, generator=g, dtype=torch.float64)
    k = torch.randn(H, Lk, generator=g, dtype=torch.float64)
    D = torch.randn(H, generator=g, dtype=torch.float64) if with_D else None
    want = direct_conv(u.numpy(), k.numpy(), None if D is None else D.numpy(), causal)
    got = fftconv(u, k, D, causal=causal)
    assert got.shape == (B, H, L) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-9 * max(1, np.abs(want).max()))
    ref = fftconv_ref(u, k, D, causal=causal)
    np.testing.assert_allclose(ref.numpy(), want, rtol=1e-9, atol=1e-9 * max(1, np.abs(want).max()))


@pytest.mark.parametrize("L,Lk", [(1, 1), (1, 5), (2, 1), (13, 4), (97, 97), (97, 300), (128, 31)])
@pytest.mark.parametrize("causal", [True, False])
def test_edge_shapes(L, Lk, causal):
    if not causal and Lk % 2 == 0:
        Lk += 1
    u = torch.randn(1, 1, L, dtype=torch.float64)
    k = torch.randn(1, Lk, dtype=torch.float64)
    want = direct_conv(u.numpy(), k.numpy(), None, causal)
    np.testing.assert_allclose(fftconv(u, k, causal=causal).numpy(), want, atol=1e-10)


def _fp_error(dtype, causal, L=257, Lk=100):
    """Max error of fftconv in ``dtype`` and of plain torch rfft math in that dtype,
    both against float64."""
    u64 = torch.randn(2, 3, L, dtype=torch.float64)
    k64 = torch.randn(3, Lk + (not causal and Lk % 2 == 0), dtype=torch.float64) / Lk**0.5
    D64 = torch.randn(3, dtype=torch.float64)
    exact = torch.from_numpy(direct_conv(u64.numpy(), k64.numpy(), D64.numpy(), causal))
    got = fftconv(u64.to(dtype), k64.to(dtype), D64.to(dtype), causal=causal)
    assert got.dtype == dtype
    # plain PyTorch's own error: the same math done by the reference in this dtype's
    # compute precision, with inputs rounded to the dtype
    base = fftconv_ref(u64.to(dtype).float(), k64.to(dtype).float(), D64.to(dtype).float(), causal=causal).to(dtype)
    return (got.double() - exact).abs().max().item(), (base.double() - exact).abs().max().item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("causal", [True, False])
def test_low_precision_error_budget(dtype, causal):
    err, base = _fp_error(dtype, causal)
    atol = {torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 1e-2}[dtype]
    assert err <= 2 * base + atol, (err, base)


def test_causality():
    L, t0 = 300, 123
    u = torch.randn(2, 4, L, dtype=torch.float64)
    k = torch.randn(4, L, dtype=torch.float64)
    D = torch.randn(4, dtype=torch.float64)
    y = fftconv(u, k, D)
    u2 = u.clone()
    u2[..., t0:] += torch.randn_like(u2[..., t0:]) * 10
    y2 = fftconv(u2, k, D)
    assert torch.equal(y[..., :t0], y2[..., :t0]) or torch.allclose(y[..., :t0], y2[..., :t0], atol=1e-12, rtol=0)
    assert not torch.allclose(y[..., t0:], y2[..., t0:])


def test_noncausal_sees_the_future():
    u = torch.zeros(1, 1, 9, dtype=torch.float64)
    u[..., 6] = 1.0
    k = torch.arange(1.0, 6.0, dtype=torch.float64)[None]  # lags -2..2
    y = fftconv(u, k, causal=False)[0, 0]
    # impulse at 6 -> y[6 + tau] = k[tau + 2]
    np.testing.assert_allclose(y.numpy(), [0, 0, 0, 0, 1, 2, 3, 4, 5], atol=1e-12)


def test_long_kernel_never_wraps_around():
    """Taps beyond L must be dropped, not folded onto early outputs (circular FFT bug)."""
    L = 16
    u = torch.zeros(1, 1, L, dtype=torch.float64)
    u[..., 0] = 1.0
    k = torch.zeros(1, 64, dtype=torch.float64)
    k[0, L:] = 100.0  # only taps that cannot reach any output
    assert fftconv(u, k).abs().max() < 1e-10
    assert fftconv_ref(u, k).abs().max() < 1e-10


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("L,Lk", [(1, 1), (7, 3), (11, 11), (10, 25)])
def test_gradcheck(causal, L, Lk):
    if not causal and Lk % 2 == 0:
        Lk += 1
    u = torch.randn(2, 3, L, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, Lk, dtype=torch.float64, requires_grad=True)
    D = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: fftconv(a, b, c, causal=causal), (u, k, D))
    assert torch.autograd.gradcheck(lambda a, b: fftconv(a, b, causal=causal), (u, k))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_gradients_have_input_dtype(dtype):
    u = torch.randn(2, 3, 33).to(dtype).requires_grad_()
    k = torch.randn(3, 33).to(dtype).requires_grad_()
    D = torch.randn(3).to(dtype).requires_grad_()
    fftconv(u, k, D).float().pow(2).sum().backward()
    assert u.grad.dtype == k.grad.dtype == D.grad.dtype == dtype
    assert all(torch.isfinite(t.grad.float()).all() for t in (u, k, D))


def test_grad_matches_reference_autograd():
    u = torch.randn(3, 5, 129, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 200, dtype=torch.float64, requires_grad=True)
    D = torch.randn(5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 5, 129, dtype=torch.float64)
    g1 = torch.autograd.grad((fftconv(u, k, D) * w).sum(), (u, k, D))
    g2 = torch.autograd.grad((fftconv_ref(u, k, D) * w).sum(), (u, k, D))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    assert torch.all(g1[1][:, 129:] == 0)  # truncated taps get zero gradient


def test_bad_inputs_raise_clear_errors():
    u = torch.randn(2, 3, 10)
    with pytest.raises(ValueError, match=r"\(B, H, L\)"):
        fftconv(u[0], torch.randn(3, 4))
    with pytest.raises(ValueError, match="H=3"):
        fftconv(u, torch.randn(4, 4))
    with pytest.raises(ValueError, match="odd length"):
        fftconv(u, torch.randn(3, 4), causal=False)
    with pytest.raises(ValueError, match="D"):
        fftconv(u, torch.randn(3, 4), torch.randn(2))
    with pytest.raises(ValueError, match="backend"):
        fftconv(u, torch.randn(3, 4), backend="cuda")
    with pytest.raises(ValueError, match="L=0"):
        fftconv(torch.randn(2, 3, 0), torch.randn(3, 4))
    with pytest.raises(TypeError, match="floating"):
        fftconv(torch.ones(2, 3, 10, dtype=torch.long), torch.randn(3, 4))


def test_backend_selection(monkeypatch):
    u, k = torch.randn(1, 2, 8), torch.randn(2, 8)
    # auto on CPU tensors is always the torch path, even when the interpreter is on
    torch.testing.assert_close(fftconv(u, k, backend="auto"), fftconv(u, k, backend="torch"))
    assert available_backends("cpu")[0] == "torch"
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="(?i)cuda|triton"):
        fftconv(u, k, backend="triton")


def test_public_api():
    for name in ["fftconv", "LongConvKernel", "S4DKernel", "LongConv", "ButterflyConv",
                 "AttentionLayer", "SequenceModel", "param_groups"]:
        assert hasattr(neuroconv, name), name


def test_a_transposed_input_is_named():
    """(B, L, H) given to fftconv, whose layout is (B, H, L): named, with the fix."""
    k = torch.randn(64, 16)
    with pytest.raises(ValueError, match=r"got u \(B, L, H\) = \(2, 16, 64\); fftconv expects \(B, H, L\) with "
                                         r"H = k\.shape\[0\] = 64; pass u\.transpose\(1, 2\)\."):
        fftconv(torch.randn(2, 16, 64), k)
    with pytest.raises(ValueError, match=r"`k` must have shape \(H, Lk\) with H=5"):
        fftconv(torch.randn(2, 5, 16), k)


def test_fft_size_is_scipys_next_fast_len():
    """The torch path's FFT length is scipy's real-input fast length (2, 3, 5-smooth),
    computed without scipy."""
    from scipy.fft import next_fast_len

    from neuroconv.fftconv import fft_size

    rng = np.random.default_rng(0)
    ns = list(range(1, 5000)) + [int(n) for n in rng.integers(5000, 10**9, 500)] + [2**k + 1 for k in range(35)]
    assert [fft_size(n) for n in ns] == [next_fast_len(n, real=True) for n in ns]
    assert fft_size(0) == 1
