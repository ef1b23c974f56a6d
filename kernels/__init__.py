"""Triton FlashButterfly kernels for long convolutions (installed as ``neuroconv.kernels``).

This module only re-exports; the kernels' modules import each other and
:mod:`neuroconv.contract` (input checks, effective kernel, compute dtype, the plain
reference), never this face and never a layer. Importing it loads torch, not triton, so
``import neuroconv.kernels`` works where triton does not exist; the kernel functions load
triton on first use.

- :mod:`.availability`: :func:`triton_available`, :func:`require_triton` (no triton import).
- :mod:`.flashbutterfly`: ``fftconv_fn`` (the ``backend="triton"`` path of
  :func:`neuroconv.fftconv`, with optional fused gates; also exported as
  ``fftconv_triton``) and its torch twin with the gates, ``gated_fftconv_ref``.
- :mod:`.monarch`: ``butterfly_conv_fn``, the learned-butterfly convolution of
  :class:`neuroconv.ButterflyFFTConv` (``backend="triton"``), and its twin.
- :mod:`.verify`: error budgets and the kernels compared with their torch twins (shared
  by the tests, the validation command and the self-check).
- :mod:`.selfcheck`: ``backend="auto"``'s one-time self-check (:func:`auto_backend`,
  :func:`self_check`, :func:`self_check_results`).
- :mod:`.launches`: what the kernels launch and compile, described for tools that need
  no GPU (launches on meta tensors, compile configurations, the launch hook).

The validation and benchmark tooling (``python -m neuroconv.kernel_tools.check``, the
GPU grid, the offline compile, the large-offset dry run, the parallel precompile) lives
in :mod:`neuroconv.kernel_tools`, which may import layers and models.
"""

from __future__ import annotations

from .availability import require_triton, triton_available
from .selfcheck import auto_backend, self_check
from .selfcheck import results as self_check_results

__all__ = ["triton_available", "require_triton", "fftconv_triton", "fftconv_fn", "butterfly_conv_fn",
           "auto_backend", "self_check", "self_check_results"]

#: names whose modules import triton: loaded on first use
_LAZY = {
    "fftconv_fn": ("flashbutterfly", "fftconv_fn"),
    "fftconv_triton": ("flashbutterfly", "fftconv_fn"),
    "butterfly_conv_fn": ("monarch", "butterfly_conv_fn"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
