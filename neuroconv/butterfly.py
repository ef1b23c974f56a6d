"""Learned butterfly (Monarch) FFT convolution: the paper's Section 3.3 extension.

A DFT of size ``N = N1 * N2`` factors (Cooley-Tukey, decimation in time) as::

    X[k1 + N1*k2] = sum_{n2} F2[k2, n2] * T[k1, n2] * sum_{n1} F1[k1, n1] * x[N2*n1 + n2]

with ``F1``, ``F2`` the small DFT matrices and ``T[k1, n2] = exp(-2πi k1 n2 / N)`` the
twiddles. :class:`MonarchDFT` holds ``F1``, ``T`` and ``F2`` as learnable parameters,
initialized to the exact DFT (or inverse DFT), so a :class:`ButterflyFFTConv` equals
``fftconv`` at initialisation and can learn away from it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from neuroconv.kernels import availability

from .backend import check_backend, resolve_backend
from .contract import check_inputs, effective_kernel
from .fftconv import fft_size
from .kernel_gen import register_optim

__all__ = ["MonarchDFT", "ButterflyFFTConv", "factor_size"]


def factor_size(n: int) -> tuple[int, int]:
    """Split ``n`` into ``n1 * n2`` with ``n1 <= n2`` as close to ``sqrt(n)`` as possible."""
    n1 = int(math.isqrt(n))
    while n % n1:
        n1 -= 1
    return n1, n // n1


def _dft(n: int, inverse: bool) -> torch.Tensor:
    idx = torch.arange(n, dtype=torch.float64)
    sign = 1.0 if inverse else -1.0
    return torch.exp(sign * 2j * math.pi * torch.outer(idx, idx) / n)


class MonarchDFT(nn.Module):
    """A learnable size-``n`` transform in Monarch form, initialised to the (inverse) DFT.

    ``forward(x)``: ``x`` ``(..., n)`` real or complex -> ``(..., n)`` complex. At init it
    equals ``torch.fft.fft`` (or ``ifft`` with ``inverse=True``) to float32 precision.
    """

    def __init__(self, n: int, *, inverse: bool = False, lr: float | None = None):
        super().__init__()
        self.n = int(n)
        self.n1, self.n2 = factor_size(self.n)
        self.inverse = inverse
        n1, n2 = self.n1, self.n2
        sign = 1.0 if inverse else -1.0
        k1 = torch.arange(n1, dtype=torch.float64)[:, None]
        j2 = torch.arange(n2, dtype=torch.float64)[None, :]
        twiddle = torch.exp(sign * 2j * math.pi * k1 * j2 / self.n)  # (n1 n2)
        scale = 1.0 / self.n if inverse else 1.0
        self.f1 = nn.Parameter(torch.view_as_real(_dft(n1, inverse).to(torch.cfloat)).clone())
        self.twiddle = nn.Parameter(torch.view_as_real(twiddle.to(torch.cfloat)).clone())
        self.f2 = nn.Parameter(torch.view_as_real((_dft(n2, inverse) * scale).to(torch.cfloat)).clone())
        for p in (self.f1, self.twiddle, self.f2):
            register_optim(p, lr)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Complex ``(F1 (n1, n1), T (n1, n2), F2 (n2, n2))``."""
        return (torch.view_as_complex(self.f1), torch.view_as_complex(self.twiddle),
                torch.view_as_complex(self.f2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        F1, T, F2 = self.factors()
        x = x.to(torch.cfloat).reshape(*x.shape[:-1], self.n1, self.n2)  # x[N2*n1 + n2]
        a = torch.einsum("kn,...nm->...km", F1, x) * T  # (... k1 n2)
        b = torch.einsum("jm,...km->...jk", F2, a)  # (... k2 k1)
        return b.reshape(*b.shape[:-2], self.n)  # index k1 + N1*k2


class ButterflyFFTConv(nn.Module):
    """FFT convolution ``u (B, H, L) -> (B, H, L)`` whose forward and inverse DFTs are
    learnable Monarch factors.

    Same contract as :func:`neuroconv.fftconv` for inputs of length ``L <= l_max``:
    ``forward(u (B, H, L), k (H, Lk), D (H,) | None) -> y (B, H, L)``. The transform size
    is fixed at build time (``n = fft_size(2 * l_max)``), so the factors are shared by
    all input lengths. ``lr`` is the factors' own learning rate (no weight decay).

    ``backend``: ``"torch"`` (einsum path, any device), ``"triton"`` (the fused
    learned-butterfly kernel, :func:`neuroconv.kernels.monarch.butterfly_conv_fn`; CUDA,
    or the Triton interpreter), or ``"auto"``: triton for CUDA tensors (other than
    float64) when it is installed, the transform fits the kernel and the kernel's
    one-time self-check passes, torch otherwise; ``NEUROCONV_FFTCONV_BACKEND`` overrides
    it. The rules are :func:`neuroconv.backend.resolve_backend`'s (``op="butterfly"``).
    """

    def __init__(self, l_max: int, *, causal: bool = True, lr: float | None = 1e-4,
                 backend: str = "auto"):
        super().__init__()
        if l_max < 1:
            raise ValueError(f"`l_max` must be >= 1; got {l_max!r}.")
        check_backend(backend, "ButterflyFFTConv")
        self.l_max, self.causal, self.backend = int(l_max), bool(causal), backend
        self.n = fft_size(2 * self.l_max)
        self.dft = MonarchDFT(self.n, lr=lr)
        self.idft = MonarchDFT(self.n, inverse=True, lr=lr)

    def _use_triton(self, u: torch.Tensor) -> bool:
        """Whether this input runs on the fused kernel (:func:`resolve_backend`)."""
        fits = True
        if self.backend == "auto" and availability.triton_available(u.device):
            from neuroconv.kernels.monarch import supported

            fits = supported(self.dft.n1, self.dft.n2, u.dtype, self.dft.f1.dtype)
        return resolve_backend(self.backend, u, causal=self.causal, op="butterfly", fits=fits) == "triton"

    def forward(self, u: torch.Tensor, k: torch.Tensor, D: torch.Tensor | None = None) -> torch.Tensor:
        """``u (B, H, L)``, ``k (H, Lk)``, ``D (H,)`` or None -> ``y (B, H, L)``, ``L <=
        l_max``: :func:`neuroconv.fftconv`'s contract (and errors), through the learned
        transforms."""
        check_inputs(u, k, D, self.causal)
        L = u.shape[-1]
        if L > self.l_max:
            raise ValueError(
                f"ButterflyFFTConv: input length L={L} exceeds l_max={self.l_max}; build the "
                f"layer with l_max >= {L}."
            )
        if self._use_triton(u):
            from neuroconv.kernels.monarch import butterfly_conv_fn

            return butterfly_conv_fn(
                u, k, D, (self.dft.f1, self.dft.twiddle, self.dft.f2),
                (self.idft.f1, self.idft.twiddle, self.idft.f2), causal=self.causal)
        k_eff, off = effective_kernel(k, L, self.causal)
        pad = lambda t: torch.nn.functional.pad(t.float(), (0, self.n - t.shape[-1]))  # noqa: E731
        Y = self.dft(pad(u)) * self.dft(pad(k_eff))  # (B H n)
        y = self.idft(Y).real[..., off : off + L]
        if D is not None:
            y = y + u.float() * D.float()[:, None]
        return y.to(u.dtype)
