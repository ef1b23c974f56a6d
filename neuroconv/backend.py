"""Which implementation a long convolution runs on: the one backend resolver.

:func:`neuroconv.fftconv`, :class:`neuroconv.GatedLongConv` (the fused gated kernel) and
:class:`neuroconv.ButterflyFFTConv` (the learned-butterfly kernel) all ask
:func:`resolve_backend`, so they share its rules: the same ``backend`` values, the same
``NEUROCONV_FFTCONV_BACKEND`` override, the same one-time self-check of the Triton
kernels under ``"auto"``, and the same errors.
"""

from __future__ import annotations

import os

import torch

from neuroconv import kernels
from neuroconv.kernels import availability

__all__ = ["BACKENDS", "OPS", "ENV_BACKEND", "check_backend", "env_backend", "resolve_backend"]

#: The values of every ``backend`` argument.
BACKENDS = ("auto", "torch", "triton")
#: The operations that have a Triton kernel: ``"fftconv"`` (FlashButterfly, with or
#: without fused gates) and ``"butterfly"`` (the learned-butterfly convolution).
OPS = ("fftconv", "butterfly")
#: Environment variable that sets what ``backend="auto"`` means: ``torch`` or ``triton``.
ENV_BACKEND = "NEUROCONV_FFTCONV_BACKEND"


def check_backend(backend: str, where: str = "fftconv") -> str:
    """Return ``backend`` when it is one of :data:`BACKENDS`; raise a ``ValueError`` that
    names ``where`` (the caller), the allowed values and the value received otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f"{where}: `backend` must be one of {BACKENDS}; got {backend!r}.")
    return backend


def env_backend() -> str | None:
    """The value of ``NEUROCONV_FFTCONV_BACKEND`` (``"torch"`` or ``"triton"``), or None
    when it is unset or empty; any other value raises a ``ValueError``."""
    value = os.environ.get(ENV_BACKEND, "")
    if value == "":
        return None
    if value not in ("torch", "triton"):
        raise ValueError(
            f"{ENV_BACKEND} must be 'torch' or 'triton' (or unset for the automatic choice); "
            f"got {value!r}."
        )
    return value


def _auto_candidate(u: torch.Tensor) -> bool:
    """Whether ``"auto"`` considers triton for ``u`` at all: CUDA tensors with triton
    installed (tests patch this to send interpreter tensors through the self-check)."""
    return u.is_cuda and availability.triton_available(u.device)


def resolve_backend(backend: str, u: torch.Tensor, *, causal: bool = True, gated: bool = False,
                    op: str = "fftconv", fits: bool = True) -> str:
    """The backend, ``"torch"`` or ``"triton"``, that ``backend`` means for input ``u``.

    - ``"torch"`` means itself.
    - ``"triton"`` means itself and never falls back: where the kernels cannot run (no
      triton, or a CPU tensor without the interpreter), this raises a ``RuntimeError``
      that says how to get them (:func:`neuroconv.kernels.require_triton`).
    - ``"auto"`` with ``NEUROCONV_FFTCONV_BACKEND`` set (``torch`` or ``triton``): that
      backend, as if passed explicitly (``triton`` skips the self-check below).
    - ``"auto"`` otherwise: torch for CPU tensors (the Triton interpreter is for tests),
      for float64 (cuFFT is exact there and the kernels' float64 dots are slow), where
      triton is not installed, and where the kernel does not take this shape
      (``fits=False``). For the first CUDA call of each (device, dtype, causal, gated,
      op) combination, the kernel runs a self-check on small shapes against its torch
      twin (:func:`neuroconv.kernels.self_check`): forward and every gradient, under the
      error budget of the tests. When it passes, triton; when it fails (a mismatch, or a
      compile or launch error), one warning says what failed and how to report it, and
      this combination uses torch from then on. Results are cached per process
      (:func:`neuroconv.kernels.self_check_results`).

    Arguments:
        backend: ``"auto"``, ``"torch"`` or ``"triton"``.
        u: the input ``(B, H, L)``: its device and dtype decide.
        causal: causal or centred convolution (the self-check runs the same).
        gated: the call fuses the H3/Hyena gates (``op="fftconv"`` only).
        op: ``"fftconv"`` (FlashButterfly) or ``"butterfly"`` (the learned butterfly).
        fits: whether the kernel takes this problem (the learned butterfly's transform
            size); ``"auto"`` uses torch when it does not.
    """
    check_backend(backend)
    if op not in OPS:
        raise ValueError(f"resolve_backend: `op` must be one of {OPS}; got {op!r}.")
    if gated and op != "fftconv":
        raise ValueError(f"resolve_backend: `gated` applies to op='fftconv' only; got op={op!r}.")
    if backend == "auto":
        backend = env_backend() or "auto"
        if backend == "auto":
            if u.dtype == torch.float64 or not fits or not _auto_candidate(u):
                return "torch"
            return kernels.auto_backend(u.device, u.dtype, bool(causal), bool(gated), op)
    if backend == "triton":
        availability.require_triton(u.device)
    return backend
