"""Triton FlashButterfly kernels for long convolutions (installed as ``neuroconv.kernels``).

Modules (each imports triton; nothing here does at import time, so ``import neuroconv``
stays cheap and works where triton does not exist):

- :mod:`.flashbutterfly`: ``fftconv_fn`` (the ``backend="triton"`` path of
  :func:`neuroconv.fftconv`, with optional fused gates) and its torch twin ``fftconv_ref``.
- :mod:`.monarch`: ``butterfly_conv_fn``, the learned-butterfly convolution of
  :class:`neuroconv.ButterflyFFTConv` (``backend="triton"``).
- :mod:`.check`: the validation command, every check in one run
  (``python -m neuroconv.kernels.check --json report.json [--quick]``).
- :mod:`.verify`: error budgets and the kernels compared with their torch twins (shared
  by the tests, the check and the self-check).
- :mod:`.selfcheck`: ``backend="auto"``'s one-time self-check (:func:`auto_backend`).
- :mod:`.bench`: the GPU benchmark grid (``python -m neuroconv.kernels.bench``).
- :mod:`.resources`: compile every kernel offline for H100 and check its shared memory
  (``python -m neuroconv.kernels.resources``; no GPU needed).
- :mod:`.offsets`: the large-offset dry run (64-bit index arithmetic, interpreter).
- :mod:`.precompile`: compile a run's kernel configurations in parallel before it runs.
"""

from __future__ import annotations

import importlib.util
import os

import torch

__all__ = ["triton_available", "require_triton", "fftconv_triton", "auto_backend", "self_check",
           "self_check_results"]


_HAS_TRITON = importlib.util.find_spec("triton") is not None  # a path lookup; no import


def _triton_importable() -> bool:
    return _HAS_TRITON


def _interpreter_on() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_available(device: torch.device | str | None = None) -> bool:
    """True when the triton backend can run on ``device``.

    CUDA tensors need triton and a CUDA device; CPU tensors need triton's interpreter
    (``TRITON_INTERPRET=1`` set before triton is imported), which is for tests only.
    """
    if not _triton_importable():
        return False
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda":
        return torch.cuda.is_available()
    return device.type == "cpu" and _interpreter_on()


def require_triton(device: torch.device | str | None = None) -> None:
    """Raise a helpful error when ``backend="triton"`` cannot run on ``device``."""
    if triton_available(device):
        return
    device = torch.device(device if device is not None else "cpu")
    if not _triton_importable():
        raise RuntimeError(
            "fftconv backend='triton' needs the `triton` package, which is not installed. "
            "Install it with `pip install triton` (Linux x86-64 with a CUDA GPU), or use "
            "backend='torch' / backend='auto'."
        )
    raise RuntimeError(
        f"fftconv backend='triton' runs on CUDA tensors; got a tensor on {device}. Move the "
        "inputs to a GPU (`.cuda()`), use backend='auto' to fall back to torch, or set "
        "TRITON_INTERPRET=1 before importing triton to run the kernels on the CPU "
        "interpreter (slow; meant for tests)."
    )


def fftconv_triton(u, k, D=None, *, causal=True):
    """FlashButterfly fftconv; see :func:`neuroconv.fftconv` for the contract."""
    from .flashbutterfly import fftconv_fn

    return fftconv_fn(u, k, D, causal=causal)


def auto_backend(device: torch.device, dtype: torch.dtype, causal: bool, gated: bool) -> str:
    """``"triton"`` or ``"torch"`` for ``backend="auto"`` on a CUDA ``device``: the cached
    result of the one-time self-check (:func:`neuroconv.kernels.selfcheck.auto_backend`,
    which ``torch.compile`` runs once, eagerly, while tracing: its answer is a constant of
    the graph, no graph break)."""
    from .selfcheck import auto_backend as _auto

    return _auto(device, dtype, causal, gated)


def self_check(device, dtype: torch.dtype, causal: bool = True, gated: bool = False):
    """Run ``backend="auto"``'s self-check now (not cached); see
    :func:`neuroconv.kernels.selfcheck.self_check`."""
    from .selfcheck import self_check as _check

    return _check(device, dtype, causal, gated)


def self_check_results() -> list[dict]:
    """The self-checks ``backend="auto"`` ran in this process, and their outcome."""
    from .selfcheck import results

    return results()
