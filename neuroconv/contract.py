"""The long-convolution contract, shared by every implementation.

What the torch path (:func:`neuroconv.fftconv`), the Triton FlashButterfly kernels
(``neuroconv.kernels.flashbutterfly``) and the learned butterfly
(:class:`neuroconv.ButterflyFFTConv`, ``neuroconv.kernels.monarch``) accept and compute:

- :func:`check_inputs`: the shapes, devices and dtypes a call accepts, with the errors
  that say what to pass instead;
- :func:`effective_kernel`: which taps can reach an output, and where lag zero sits;
- :func:`compute_dtype`: the dtype the arithmetic runs in;
- :func:`fftconv_ref`: the plain-autograd definition of the result, the readable twin
  that the other paths are tested against.

Shapes are ``(B, H, L)`` (batch, channels, time) for signals and ``(H, Lk)`` for kernels.
This module imports torch only: the kernels import it, and it imports nothing above them.
"""

from __future__ import annotations

import torch

__all__ = ["check_inputs", "effective_kernel", "compute_dtype", "fftconv_ref"]


def check_inputs(u: torch.Tensor, k: torch.Tensor, D: torch.Tensor | None, causal: bool) -> None:
    """Raise a ``ValueError`` (``TypeError`` for a non-float dtype) unless the arguments
    make a valid long convolution.

    Arguments:
        u: ``(B, H, L)`` input, ``L >= 1``.
        k: ``(H, Lk)`` kernels, ``Lk >= 1``; odd ``Lk = 2M - 1`` when ``causal=False``
            (centred on tap ``M - 1``).
        D: ``(H,)`` skip weights, or ``None``.
        causal: causal or centred convolution.

    All on one device, all floating point.
    """
    if not isinstance(u, torch.Tensor) or u.dim() != 3:
        raise ValueError(
            f"fftconv: `u` must be a tensor of shape (B, H, L); got "
            f"{tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__}."
        )
    B, H, L = u.shape
    if L < 1:
        raise ValueError("fftconv: `u` has length L=0; pass at least one time step.")
    if isinstance(k, torch.Tensor) and k.dim() == 2 and k.shape[0] != H and u.shape[2] == k.shape[0]:
        raise ValueError(
            f"fftconv: got u (B, L, H) = {tuple(u.shape)}; fftconv expects (B, H, L) with H = k.shape[0] = "
            f"{k.shape[0]}; pass u.transpose(1, 2)."
        )
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


def effective_kernel(k: torch.Tensor, L: int, causal: bool) -> tuple[torch.Tensor, int]:
    """The taps of ``k (H, Lk)`` that can reach one of ``L`` outputs, and the index of
    lag zero among them: ``(k_eff (H, Lk'), offset)``.

    Causal: the first ``min(Lk, L)`` taps, offset 0. Centred (``Lk = 2M - 1``): lags
    ``|tau| < min(M, L)``, so ``Lk' = 2 min(M, L) - 1`` and offset ``min(M, L) - 1``; taps
    further out only ever multiply the zero padding. ``k_eff`` is a view of ``k``.
    """
    Lk = k.shape[-1]
    if causal:
        return (k[:, :L] if Lk > L else k), 0
    M = (Lk + 1) // 2
    if M > L:  # lags with |tau| >= L only ever multiply zero padding
        k = k[:, M - L : M + L - 1]
        M = L
    return k, M - 1


def compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """float64 when any of ``dtypes`` is float64, float32 otherwise (float16 and
    bfloat16 inputs are computed in float32)."""
    return torch.float64 if torch.float64 in dtypes else torch.float32


def fftconv_ref(
    u: torch.Tensor, k: torch.Tensor, D: torch.Tensor | None = None, *, causal: bool = True
) -> torch.Tensor:
    """Plain autograd definition of :func:`neuroconv.fftconv`: rfft (size ``2L``) of
    ``u`` and of the effective kernel, multiply, irfft, keep the ``L`` outputs from lag
    zero on, add ``D * u``.

    Same semantics as :func:`neuroconv.fftconv` (truncation, centring, D skip, dtypes):

    Arguments:
        u: ``(B, H, L)`` input.
        k: ``(H, Lk)`` kernels (odd ``Lk`` when ``causal=False``).
        D: ``(H,)`` skip weights, or ``None``.
        causal: causal or centred convolution.

    Returns:
        ``y``: ``(B, H, L)`` in ``u``'s dtype, computed in :func:`compute_dtype`.

    The baseline of ``neuroconv bench conv`` and the twin the kernels are tested against.
    """
    check_inputs(u, k, D, causal)
    L = u.shape[-1]
    cdt = compute_dtype(u.dtype, k.dtype)
    k_eff, off = effective_kernel(k, L, causal)
    n = 2 * L  # the wrap-around of a linear conv this long never reaches [off, off+L)
    y = torch.fft.irfft(
        torch.fft.rfft(u.to(cdt), n=n) * torch.fft.rfft(k_eff.to(cdt), n=n), n=n
    )[..., off : off + L]
    if D is not None:
        y = y + u.to(cdt) * D.to(cdt)[:, None]
    return y.to(u.dtype)
