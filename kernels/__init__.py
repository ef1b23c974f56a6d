"""Triton FlashButterfly kernels for long convolutions (installed as ``neuroconv.kernels``).

The kernels know no layer: from the rest of neuroconv they import only the contract of
the long convolution (:mod:`neuroconv.contract`: input checks, effective kernel, compute
dtype, the plain reference). Modules (each imports triton; nothing here does at import
time, so ``import neuroconv`` stays cheap and works where triton does not exist):

- :mod:`.flashbutterfly`: ``fftconv_fn`` (the ``backend="triton"`` path of
  :func:`neuroconv.fftconv`, with optional fused gates) and its torch twin ``fftconv_ref``.
- :mod:`.monarch`: ``butterfly_conv_fn``, the learned-butterfly convolution of
  :class:`neuroconv.ButterflyFFTConv` (``backend="triton"``), and its twin.
- :mod:`.verify`: error budgets and the kernels compared with their torch twins (shared
  by the tests, the validation command and the self-check).
- :mod:`.selfcheck`: ``backend="auto"``'s one-time self-check (:func:`auto_backend`).
- :mod:`.launches`: what the kernels launch and compile, described for tools that need
  no GPU (launches on meta tensors, compile configurations, the launch hook).

The validation and benchmark tooling (``python -m neuroconv.kernel_tools.check``, the
GPU grid, the offline compile, the large-offset dry run, the parallel precompile) lives
in :mod:`neuroconv.kernel_tools`, which may import layers and models.
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


def auto_backend(device: torch.device, dtype: torch.dtype, causal: bool, gated: bool,
                 op: str = "fftconv") -> str:
    """``"triton"`` or ``"torch"`` for ``backend="auto"`` on a CUDA ``device``: the cached
    result of the one-time self-check of ``op`` (``"fftconv"`` or ``"butterfly"``;
    :func:`neuroconv.kernels.selfcheck.auto_backend`, which ``torch.compile`` runs once,
    eagerly, while tracing: its answer is a constant of the graph, no graph break)."""
    from . import selfcheck

    return selfcheck.auto_backend(device, dtype, causal, gated, op)


def self_check(device, dtype: torch.dtype, causal: bool = True, gated: bool = False, op: str = "fftconv"):
    """Run ``backend="auto"``'s self-check now (not cached); see
    :func:`neuroconv.kernels.selfcheck.self_check`."""
    from . import selfcheck

    return selfcheck.self_check(device, dtype, causal, gated, op=op)


def self_check_results() -> list[dict]:
    """The self-checks ``backend="auto"`` ran in this process, and their outcome."""
    from .selfcheck import results

    return results()
