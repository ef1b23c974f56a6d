"""``fftconv``: the long-convolution primitive.

The torch path lives here; the Triton FlashButterfly path lives in
``neuroconv.kernels`` and is reached through ``backend="triton"`` (or ``"auto"`` on
CUDA tensors, after a one-time self-check: :func:`neuroconv.backend.resolve_backend`).
What a call accepts and computes is :mod:`neuroconv.contract`'s (``fftconv_ref``, the
plain definition, is re-exported here).

On calls that record no gradient the torch path runs without an autograd node and
computes the spectral product and the skip term in place; otherwise a custom autograd
function keeps the spectra for a frequency-domain backward.

Shapes inside this module are ``(B, H, L)``: batch, channels ("heads"), time.
"""

from __future__ import annotations

import functools

import torch

from neuroconv import kernels
from neuroconv.kernels import availability

from .backend import ENV_BACKEND, check_backend, resolve_backend
from .contract import check_inputs, compute_dtype, effective_kernel, fftconv_ref

__all__ = ["fftconv", "fftconv_ref", "available_backends", "fft_size", "resolve_backend",
           "ENV_BACKEND"]


@functools.lru_cache(maxsize=None)
def fft_size(n: int) -> int:
    """Smallest FFT length >= ``n`` (and >= 1) with no prime factor above 5, the lengths
    pocketFFT and cuFFT transform fast: ``scipy.fft.next_fast_len(n, real=True)``,
    computed here so that the layers need no scipy."""
    n = max(int(n), 1)
    best = 1 << (n - 1).bit_length()  # the power of two >= n
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p2 = 1 << (-(-n // p35) - 1).bit_length()  # smallest power of two with p2 * p35 >= n
            best = min(best, p2 * p35)
            p35 *= 3
        p5 *= 5
    return best


def available_backends(device: torch.device | str | None = None) -> list[str]:
    """Backends that can run on ``device`` (default: CPU) in this environment."""
    device = torch.device(device if device is not None else "cpu")
    out = ["torch"]
    if availability.triton_available(device):
        out.append("triton")
    return out


def _plan(u: torch.Tensor, k: torch.Tensor, causal: bool):
    """``(compute dtype, k_eff, lag-zero offset, FFT size)`` of one call."""
    L = u.shape[-1]
    cdt = compute_dtype(u.dtype, k.dtype)
    k_eff, off = effective_kernel(k, L, causal)
    n = fft_size(L + k_eff.shape[-1] - 1 - off)  # no wrap-around onto the L outputs kept
    return cdt, k_eff, off, n


def _fftconv_forward(u, k, D, causal: bool) -> torch.Tensor:
    """The forward alone, for calls that record no gradient: no autograd node, no saved
    spectra, the product and the skip term computed in place."""
    L = u.shape[-1]
    cdt, k_eff, off, n = _plan(u, k, causal)
    uc = u.to(cdt)
    Y = torch.fft.rfft(uc, n=n)  # (B H n//2+1)
    Y.mul_(torch.fft.rfft(k_eff.to(cdt), n=n))  # (H n//2+1), broadcast over the batch
    y = torch.fft.irfft(Y, n=n)[..., off : off + L]  # (B H L), a view
    if D is not None:
        y.addcmul_(uc, D.to(cdt)[:, None])
    return y.to(u.dtype)


class _FFTConvFn(torch.autograd.Function):
    """y = slice(irfft(rfft(u) * rfft(k))) + D*u with a frequency-domain backward.

    The forward keeps the spectra of ``u`` and ``k``; the backward reuses them, needing
    one rfft (of dy) and two irffts (du, dk), with dk's reduced over the batch before its
    inverse transform.
    """

    @staticmethod
    def forward(ctx, u, k, D, causal: bool):
        L = u.shape[-1]
        in_dtype = u.dtype
        cdt, k_eff, off, n = _plan(u, k, causal)
        Lk = k_eff.shape[-1]
        uc = u.to(cdt)
        U = torch.fft.rfft(uc, n=n)  # (B H n//2+1)
        K = torch.fft.rfft(k_eff.to(cdt), n=n)  # (H n//2+1)
        y = torch.fft.irfft(U * K, n=n)[..., off : off + L]  # (B H L)
        if D is not None:
            y = torch.addcmul(y, uc, D.to(cdt)[:, None])
        ctx.save_for_backward(uc if D is not None else None, D, U, K)
        ctx.meta = (n, L, Lk, off, k.shape[-1], k.dtype, in_dtype)
        return y.to(in_dtype)

    @staticmethod
    def backward(ctx, dy):
        uc, D, U, K = ctx.saved_tensors
        n, L, Lk, off, Lk_full, k_dtype, in_dtype = ctx.meta
        dy = dy.to(U.real.dtype)
        # Place dy at its lag offset in the length-n buffer, then correlate.
        if off:
            g = torch.nn.functional.pad(dy, (off, 0))
        else:
            g = dy
        G = torch.fft.rfft(g, n=n)  # (B H n//2+1)
        du = dk = dD = None
        if ctx.needs_input_grad[0]:
            du = torch.fft.irfft(G * K.conj(), n=n)[..., :L]
            if D is not None:
                du = du + dy * D.to(dy.dtype)[:, None]
            du = du.to(in_dtype)
        if ctx.needs_input_grad[1]:
            dK = (G * U.conj()).sum(0)  # (H n//2+1): reduce over batch before the inverse
            dk_eff = torch.fft.irfft(dK, n=n)[..., :Lk]
            if Lk_full != Lk:  # taps dropped by truncation get zero gradient
                lead = 0 if off == 0 else (Lk_full - Lk) // 2
                dk_eff = torch.nn.functional.pad(dk_eff, (lead, Lk_full - Lk - lead))
            dk = dk_eff.to(k_dtype)
        if D is not None and ctx.needs_input_grad[2]:
            dD = (dy * uc).sum(dim=(0, 2)).to(D.dtype)
        return du, dk, dD, None


def _records_grad(u, k, D) -> bool:
    return torch.is_grad_enabled() and (u.requires_grad or k.requires_grad
                                        or (D is not None and D.requires_grad))


def fftconv(
    u: torch.Tensor,
    k: torch.Tensor,
    D: torch.Tensor | None = None,
    *,
    causal: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """Long convolution ``u (B, H, L) -> y (B, H, L)``, each channel with its own kernel
    ``k (H, Lk)``, via the FFT.

    Causal (``causal=True``)::

        y[b, h, t] = sum_{0 <= s <= t} k[h, t - s] * u[b, h, s] + D[h] * u[b, h, t]

    Non-causal (``causal=False``): ``k`` has odd length ``2M - 1`` and is centred on tap
    ``M - 1``::

        y[b, h, t] = sum_{tau=-(M-1)}^{M-1} k[h, tau + M - 1] * u[b, h, t - tau] + D[h] * u[b, h, t]

    Both are linear (zero-padded) convolutions, never circular; taps outside the
    sequence read zeros. Any ``L >= 1`` works. Kernels longer than the input are
    truncated (causal: to the first ``L`` taps; centred: to lags ``|tau| < L``); shorter
    kernels behave as if padded with zero taps.

    Arguments:
        u: ``(B, H, L)`` input.
        k: ``(H, Lk)`` kernels, ``Lk >= 1`` (odd when ``causal=False``).
        D: ``(H,)`` skip weights, or ``None``.
        causal: causal or centred (bidirectional) convolution.
        backend: ``"torch"`` (rfft path, any device), ``"triton"`` (FlashButterfly
            kernels, CUDA; or the Triton interpreter with ``TRITON_INTERPRET=1``), or
            ``"auto"``: triton for CUDA tensors (other than float64) when it is
            installed and its one-time self-check on this device and dtype passes,
            torch otherwise; ``NEUROCONV_FFTCONV_BACKEND=torch|triton`` overrides it
            (see :func:`neuroconv.backend.resolve_backend`).

    Returns:
        ``y``: ``(B, H, L)`` in the dtype of ``u``. float16/bfloat16 are computed in
        float32 on the torch path; float64 stays float64.

    Gradients flow to ``u``, ``k`` and ``D``; the torch path computes them in the
    frequency domain from the forward pass's spectra.
    """
    check_backend(backend)
    check_inputs(u, k, D, causal)
    if resolve_backend(backend, u, causal=causal) == "triton":
        return kernels.fftconv_triton(u, k, D, causal=causal)
    if not _records_grad(u, k, D):
        return _fftconv_forward(u, k, D, bool(causal))
    return _FFTConvFn.apply(u, k, D, bool(causal))
