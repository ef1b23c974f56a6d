"""``fftconv``: the long-convolution primitive.

The torch path lives here; the Triton FlashButterfly path lives in
``neuroconv.kernels`` and is reached through ``backend="triton"`` (or ``"auto"`` on
CUDA tensors, after a one-time self-check: :func:`resolve_backend`).

Shapes inside this module are ``(B, H, L)``: batch, channels ("heads"), time.
"""

from __future__ import annotations

import functools
import os

import torch
from scipy.fft import next_fast_len

__all__ = ["fftconv", "fftconv_ref", "available_backends", "fft_size", "resolve_backend",
           "ENV_BACKEND"]

_BACKENDS = ("auto", "torch", "triton")

#: Environment variable that sets what ``backend="auto"`` means: ``torch`` or ``triton``.
ENV_BACKEND = "NEUROCONV_FFTCONV_BACKEND"


@functools.lru_cache(maxsize=None)
def fft_size(n: int) -> int:
    """Smallest FFT length >= ``n`` that pocketFFT/cuFFT handle fast (2,3,5,7-smooth)."""
    return int(next_fast_len(max(int(n), 1), real=True))


def available_backends(device: torch.device | str | None = None) -> list[str]:
    """Backends that can run on ``device`` (default: CPU) in this environment."""
    device = torch.device(device if device is not None else "cpu")
    out = ["torch"]
    from neuroconv import kernels

    if kernels.triton_available(device):
        out.append("triton")
    return out


def _env_backend() -> str | None:
    value = os.environ.get(ENV_BACKEND, "")
    if value == "":
        return None
    if value not in ("torch", "triton"):
        raise ValueError(
            f"{ENV_BACKEND} must be 'torch' or 'triton' (or unset for the automatic choice); "
            f"got {value!r}."
        )
    return value


def resolve_backend(backend: str, u: torch.Tensor, *, causal: bool = True, gated: bool = False) -> str:
    """The backend, ``"torch"`` or ``"triton"``, that ``backend`` means for input ``u``.

    - ``"torch"`` and ``"triton"`` mean themselves. An explicit ``"triton"`` never falls
      back: where it cannot run, the call raises an error that says how to get it.
    - ``"auto"`` with ``NEUROCONV_FFTCONV_BACKEND`` set (``torch`` or ``triton``): that
      backend, as if passed explicitly (``triton`` skips the self-check below).
    - ``"auto"`` otherwise: torch for CPU tensors (the Triton interpreter is for tests),
      for float64 (cuFFT is exact there and the kernels' float64 dots are slow), and
      where triton is not installed. For the first CUDA call of each (device, dtype,
      causal, gated) combination, the FlashButterfly kernels run a self-check on a small
      shape against the torch path (:func:`neuroconv.kernels.self_check`): forward and
      every gradient, on chip and three-pass, under the error budget of the tests. When
      it passes, triton; when it fails (a mismatch, or a compile or launch error), one
      warning says what failed and how to report it
      (``python -m neuroconv.kernels.check --json report.json``), and this combination
      uses torch from then on. Results are cached per process
      (:func:`neuroconv.kernels.self_check_results`).

    ``gated``: whether the call fuses the H3/Hyena gates (``fftconv_fn(..., g1=, g2=)``);
    the self-check then runs the gated kernels. For callers of the fused gated kernel,
    such as ``GatedLongConv``, which should resolve ``"auto"`` through this function.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"fftconv: `backend` must be one of {_BACKENDS}; got {backend!r}.")
    if backend != "auto":
        return backend
    env = _env_backend()
    if env is not None:
        return env
    if u.dtype == torch.float64 or not _auto_candidate(u):
        return "torch"
    from neuroconv import kernels

    return kernels.auto_backend(u.device, u.dtype, bool(causal), bool(gated))


def _auto_candidate(u: torch.Tensor) -> bool:
    """Whether ``"auto"`` considers triton for ``u`` at all: CUDA tensors with triton
    installed (tests patch this to send interpreter tensors through the self-check)."""
    from neuroconv import kernels

    return u.is_cuda and kernels.triton_available(u.device)


def _check_inputs(u: torch.Tensor, k: torch.Tensor, D: torch.Tensor | None, causal: bool):
    if not isinstance(u, torch.Tensor) or u.dim() != 3:
        raise ValueError(
            f"fftconv: `u` must be a tensor of shape (B, H, L); got "
            f"{tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__}."
        )
    B, H, L = u.shape
    if L < 1:
        raise ValueError("fftconv: `u` has length L=0; pass at least one time step.")
    if not isinstance(k, torch.Tensor) or k.dim() != 2 or k.shape[0] != H:
        raise ValueError(
            f"fftconv: `k` must have shape (H, Lk) with H={H} matching u; got "
            f"{tuple(k.shape) if isinstance(k, torch.Tensor) else type(k).__name__}."
        )
    if k.shape[1] < 1:
        raise ValueError("fftconv: `k` has no taps (Lk=0); pass at least one.")
    if not causal and k.shape[1] % 2 == 0:
        raise ValueError(
            f"fftconv: with causal=False, `k` must be centred with an odd length 2M-1; "
            f"got Lk={k.shape[1]}. Pad one zero tap on the right of a length-2M kernel."
        )
    if D is not None and (not isinstance(D, torch.Tensor) or D.shape != (H,)):
        raise ValueError(
            f"fftconv: `D` must have shape (H,)=({H},) or be None; got "
            f"{tuple(D.shape) if isinstance(D, torch.Tensor) else type(D).__name__}."
        )
    if k.device != u.device or (D is not None and D.device != u.device):
        raise ValueError("fftconv: `u`, `k` and `D` must be on the same device.")
    for name, t in (("u", u), ("k", k), ("D", D)):
        if t is not None and not t.is_floating_point():
            raise TypeError(f"fftconv: `{name}` must be a floating-point tensor; got {t.dtype}.")


def _effective_kernel(k: torch.Tensor, L: int, causal: bool) -> tuple[torch.Tensor, int]:
    """Drop taps that cannot reach any output; return (k_eff, offset).

    ``offset`` is the index of the kernel's zero-lag tap in ``k_eff``: 0 when causal,
    ``M'-1`` for a centred kernel truncated to at most ``2L-1`` taps.
    """
    Lk = k.shape[-1]
    if causal:
        return (k[:, :L] if Lk > L else k), 0
    M = (Lk + 1) // 2
    if M > L:  # lags with |tau| >= L only ever multiply zero padding
        k = k[:, M - L : M + L - 1]
        M = L
    return k, M - 1


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


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
        cdt = _compute_dtype(torch.promote_types(u.dtype, k.dtype))
        k_eff, off = _effective_kernel(k, L, causal)
        Lk = k_eff.shape[-1]
        n = fft_size(L + Lk - 1 - off)  # no wrap-around onto the L outputs kept
        uc = u.to(cdt)
        U = torch.fft.rfft(uc, n=n)  # (B H n//2+1)
        K = torch.fft.rfft(k_eff.to(cdt), n=n)  # (H n//2+1)
        y = torch.fft.irfft(U * K, n=n)[..., off : off + L]  # (B H L)
        if D is not None:
            y = y + uc * D.to(cdt)[:, None]
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


def fftconv_ref(
    u: torch.Tensor, k: torch.Tensor, D: torch.Tensor | None = None, *, causal: bool = True
) -> torch.Tensor:
    """Plain autograd reference: rfft(n=2L) of u and k, multiply, irfft, slice.

    Same semantics as :func:`fftconv` (truncation, centring, D skip). Used as the baseline
    in ``neuroconv bench conv`` and as a readable twin in tests.
    """
    _check_inputs(u, k, D, causal)
    L = u.shape[-1]
    cdt = _compute_dtype(torch.promote_types(u.dtype, k.dtype))
    k_eff, off = _effective_kernel(k, L, causal)
    n = 2 * L  # the wrap-around of a linear conv this long never reaches [off, off+L)
    y = torch.fft.irfft(
        torch.fft.rfft(u.to(cdt), n=n) * torch.fft.rfft(k_eff.to(cdt), n=n), n=n
    )[..., off : off + L]
    if D is not None:
        y = y + u.to(cdt) * D.to(cdt)[:, None]
    return y.to(u.dtype)


def fftconv(
    u: torch.Tensor,
    k: torch.Tensor,
    D: torch.Tensor | None = None,
    *,
    causal: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """Long convolution of each channel of ``u`` with its own kernel, via the FFT.

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
            (see :func:`resolve_backend`).

    Returns:
        ``y``: ``(B, H, L)`` in the dtype of ``u``. float16/bfloat16 are computed in
        float32 on the torch path; float64 stays float64.

    Gradients flow to ``u``, ``k`` and ``D``; the torch path computes them in the
    frequency domain from the forward pass's spectra.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"fftconv: `backend` must be one of {_BACKENDS}; got {backend!r}.")
    _check_inputs(u, k, D, causal)
    backend = resolve_backend(backend, u, causal=causal)
    if backend == "triton":
        from neuroconv import kernels

        kernels.require_triton(u.device)
        return kernels.fftconv_triton(u, k, D, causal=causal)
    return _FFTConvFn.apply(u, k, D, bool(causal))
