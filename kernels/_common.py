"""Shared pieces of the Triton kernels: dot precision, complex tile helpers, launch sizes.

Complex tiles are carried as two real tiles ``(re, im)``. Matrix products go through
``tl.dot`` with all three dimensions >= 16 (callers pad smaller factors).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

__all__ = ["dot_precision", "compute_dtype", "num_warps_for", "device_max_programs"]

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


def compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """float64 when any input is float64 (mirrors the torch path), float32 otherwise."""
    return torch.float64 if torch.float64 in dtypes else torch.float32


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
