"""Shared pieces of the Triton kernels: dot precision, complex tile helpers, launch sizes,
and how kernels launch and register with ``torch.library``.

Complex tiles are carried as two real tiles ``(re, im)``. Matrix products go through
``tl.dot`` with all three dimensions >= 16 (callers pad smaller factors).

Launches
--------
Every launcher calls :func:`launch` (``launch(kernel, grid, *args, **kwargs)``), never
``kernel[grid]`` directly. It goes through ``torch.library.wrap_triton`` when the ops are
``triton_op``s, so that ``torch.compile`` sees the kernels inside the ops, and it gives
the validation command one place to intercept launches (:func:`launch_hook`: the
large-offset dry run and the parallel precompile). Each op body runs its launches under
:func:`launch_device`, the input's CUDA device.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Optional

import torch
import triton
import triton.language as tl

from neuroconv.contract import compute_dtype  # noqa: F401 - the torch path's rule, shared

__all__ = ["dot_precision", "compute_dtype", "num_warps_for", "device_max_programs", "launch",
           "launch_device", "launch_hook", "dot_precisions", "op_kind", "OPS_KIND", "define_op",
           "tracing"]

#: ``tl.dot`` input precision for float32 inputs. ``"tf32x3"`` (three TF32 tensor-core
#: passes, error ~ float32) is the default; ``"ieee"`` (CUDA cores) is exact-fp32 and
#: slower. Override with ``NEUROCONV_FB_FP32_PRECISION``.
FP32_PRECISION = os.environ.get("NEUROCONV_FB_FP32_PRECISION", "tf32x3")
#: ... for float16/bfloat16 inputs, which are upcast to float32 tiles on load. TF32 keeps
#: a 10-bit mantissa, finer than bfloat16's 7 bits, so the output rounding dominates.
HALF_PRECISION = os.environ.get("NEUROCONV_FB_HALF_PRECISION", "tf32")

_PRECISIONS = ("ieee", "tf32", "tf32x3")
for _name, _val in (("NEUROCONV_FB_FP32_PRECISION", FP32_PRECISION),
                    ("NEUROCONV_FB_HALF_PRECISION", HALF_PRECISION)):
    if _val not in _PRECISIONS:
        raise ValueError(f"{_name} must be one of {_PRECISIONS}; got {_val!r}.")


@contextlib.contextmanager
def dot_precisions(fp32: Optional[str] = None, half: Optional[str] = None):
    """Temporarily use other ``tl.dot`` input precisions (the validation command runs the
    float32 checks with each of ``"tf32"``, ``"tf32x3"`` and ``"ieee"``). Kernels compile
    per precision, so nothing is stale afterwards."""
    global FP32_PRECISION, HALF_PRECISION
    for name, val in (("fp32", fp32), ("half", half)):
        if val is not None and val not in _PRECISIONS:
            raise ValueError(f"dot_precisions: `{name}` must be one of {_PRECISIONS} or None; got {val!r}.")
    old = FP32_PRECISION, HALF_PRECISION
    FP32_PRECISION, HALF_PRECISION = fp32 or old[0], half or old[1]
    try:
        yield
    finally:
        FP32_PRECISION, HALF_PRECISION = old


def dot_precision(in_dtype: torch.dtype, cdt: torch.dtype) -> str:
    """``input_precision`` for ``tl.dot`` given the input dtype and the compute dtype."""
    if cdt == torch.float64:
        return "ieee"
    if in_dtype == torch.float32:
        return FP32_PRECISION
    return HALF_PRECISION


def num_warps_for(tile_elems: int) -> int:
    """Warps for a program whose largest complex tile has ``tile_elems`` entries."""
    if tile_elems <= 1024:
        return 4
    if tile_elems <= 4096:
        return 8
    return 16


def device_max_programs(device: torch.device) -> int:
    """About how many programs fill the device (4 per SM on CUDA; small on the CPU
    interpreter, where programs run one after another)."""
    if device.type == "cuda":
        return 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return 4


# ----------------------------------------------------------------------------- ops and launches


def op_kind(library=torch.library, interpreter: Optional[bool] = None,
            env: Optional[str] = None) -> str:
    """How the ops register with ``torch.library``: ``"triton_op"`` or ``"custom_op"``.

    ``triton_op`` (torch >= 2.6, with ``wrap_triton``) lets ``torch.compile`` see and compile
    the Triton kernels inside each op. ``custom_op`` is opaque to the compiler (one node,
    run eagerly); it is used on older torch and under the CPU interpreter, whose kernels
    cannot be traced (``wrap_triton`` passes interpreted kernels through unwrapped).
    ``NEUROCONV_FB_OPS=custom_op|triton_op`` overrides the choice (a debugging switch);
    arguments default to this process's torch, ``TRITON_INTERPRET`` and environment.
    """
    if env is None:
        env = os.environ.get("NEUROCONV_FB_OPS", "")
    if env not in ("", "custom_op", "triton_op"):
        raise ValueError(f"NEUROCONV_FB_OPS must be 'custom_op', 'triton_op' or unset; got {env!r}.")
    has_triton_op = hasattr(library, "triton_op") and hasattr(library, "wrap_triton")
    if env == "triton_op" and not has_triton_op:
        raise ValueError("NEUROCONV_FB_OPS=triton_op needs torch >= 2.6 (torch.library.triton_op); "
                         f"this is torch {torch.__version__}. Unset it to use custom_op.")
    if env:
        return env
    if interpreter is None:
        interpreter = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    return "triton_op" if has_triton_op and not interpreter else "custom_op"


#: The registration used by this process (see :func:`op_kind`).
OPS_KIND = op_kind()


def define_op(name: str, fn: Callable, fake: Callable, kind: str = OPS_KIND):
    """Register ``fn`` as the op ``name`` (``"namespace::op"``, no mutated arguments).

    ``triton_op``: ``fn`` is also the fake implementation (its launches are no-ops on fake
    tensors), and the compiler decomposes the op into its kernels. ``custom_op``: ``fake``
    is registered as the fake implementation.
    """
    if kind == "triton_op":
        return torch.library.triton_op(name, fn, mutates_args=())
    if kind != "custom_op":
        raise ValueError(f"define_op: `kind` must be 'triton_op' or 'custom_op'; got {kind!r}.")
    op = torch.library.custom_op(name, fn, mutates_args=())
    op.register_fake(fake)
    return op


_LAUNCH_HOOK: Optional[Callable] = None


@contextlib.contextmanager
def launch_hook(hook: Callable):
    """Route every :func:`launch` to ``hook(kernel, grid, args, kwargs)`` instead (used by
    the validation command: the large-offset dry run and the parallel precompile)."""
    global _LAUNCH_HOOK
    old, _LAUNCH_HOOK = _LAUNCH_HOOK, hook
    try:
        yield
    finally:
        _LAUNCH_HOOK = old


def launch(kernel, grid, *args, **kwargs):
    """``kernel[grid](*args, **kwargs)``, through ``wrap_triton`` for ``triton_op`` ops."""
    if _LAUNCH_HOOK is not None:
        return _LAUNCH_HOOK(kernel, grid, args, kwargs)
    if OPS_KIND == "triton_op":
        kernel = torch.library.wrap_triton(kernel)
    return kernel[grid](*args, **kwargs)


def launch_device(device: torch.device):
    """The context every op body launches under: ``torch.cuda.device(device)`` for CUDA
    tensors, so that inputs on ``cuda:1`` launch on GPU 1 and its current stream whatever
    the current device is; nothing on the CPU (interpreter)."""
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def tracing(t: torch.Tensor) -> bool:
    """True while torch traces rather than runs (dynamo, make_fx/AOT, fake tensors):
    caches of device tensors must not be filled or read then."""
    from torch._subclasses.fake_tensor import is_fake
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    return bool(torch.compiler.is_compiling() or is_fake(t) or get_proxy_mode() is not None)


# ----------------------------------------------------------------------------- jit helpers


@triton.jit
def _ld2(ptr, R: tl.constexpr, C: tl.constexpr, offset=0):
    """Load a contiguous ``(R, C)`` tile starting ``offset`` elements after ``ptr``."""
    r = tl.arange(0, R)[:, None]
    c = tl.arange(0, C)[None, :]
    return tl.load(ptr + offset + r * C + c)


@triton.jit
def _ld2t(ptr, R: tl.constexpr, C: tl.constexpr, offset=0):
    """Load the transpose of a contiguous ``(C, R)`` table as an ``(R, C)`` tile."""
    r = tl.arange(0, R)[:, None]
    c = tl.arange(0, C)[None, :]
    return tl.load(ptr + offset + c * R + r)


@triton.jit
def _cdot(ar, ai, br, bi, PREC: tl.constexpr):
    """Complex matrix product ``(ar + i ai) @ (br + i bi)`` as four real ``tl.dot``."""
    rr = tl.dot(ar, br, input_precision=PREC, out_dtype=ar.dtype)
    rr = tl.dot(ai, -bi, acc=rr, input_precision=PREC, out_dtype=ar.dtype)
    ii = tl.dot(ar, bi, input_precision=PREC, out_dtype=ar.dtype)
    ii = tl.dot(ai, br, acc=ii, input_precision=PREC, out_dtype=ar.dtype)
    return rr, ii


@triton.jit
def _cmul(ar, ai, br, bi):
    return ar * br - ai * bi, ar * bi + ai * br


@triton.jit
def _cmul_conj(ar, ai, br, bi):
    """``a * conj(b)``."""
    return ar * br + ai * bi, ai * br - ar * bi
