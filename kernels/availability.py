"""Whether the Triton kernels can run here, and the error that says how to get them.

Imports torch only (never triton), so the torch side asks it before anything loads the
kernels: :func:`triton_available` (a path lookup for the ``triton`` package, and a CUDA
device or the interpreter) and :func:`require_triton` (the ``backend="triton"`` error).
"""

from __future__ import annotations

import importlib.util
import os

import torch

__all__ = ["triton_available", "require_triton"]

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
    """Raise a ``RuntimeError`` that says how to get the kernels when ``backend="triton"``
    cannot run on ``device``; return None when it can."""
    if triton_available(device):
        return
    device = torch.device(device if device is not None else "cpu")
    if not _triton_importable():
        raise RuntimeError(
            "fftconv backend='triton' needs the `triton` package, which is not installed. "
            "Install it with `pip install 'neuroconv[gpu]'` (Linux x86-64 with a CUDA GPU), or "
            "use backend='torch' / backend='auto'."
        )
    raise RuntimeError(
        f"fftconv backend='triton' runs on CUDA tensors; got a tensor on {device}. Move the "
        "inputs to a GPU (`.cuda()`), use backend='auto' to fall back to torch, or set "
        "TRITON_INTERPRET=1 before importing triton to run the kernels on the CPU "
        "interpreter (slow; meant for tests)."
    )
