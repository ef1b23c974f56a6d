"""FlashButterfly: fused FFT convolution as dense DFT blocks on tensor cores (Triton).

``fftconv_fn(u, k, D, causal=..., g1=None, g2=None)`` computes exactly what
:func:`neuroconv.fftconv` computes (same shapes, truncation, centring, D skip, dtypes),
optionally with the H3/Hyena gates ``y = (k * (u g1) + D u g1) g2``.

Algorithm (Fu et al. 2023, "Simple Hardware-Efficient Long Convolutions", Sec. 3.2)
---------------------------------------------------------------------------------
A linear convolution of ``L`` samples is a *negacyclic* convolution of size
``N = pow2 >= 2L`` (nothing reaches the wrap-around). Its transform is the "odd" DFT
``X[k] = sum_n x[n] exp(-2 pi i n (k + 1/2) / N)``, whose spectrum of a real signal obeys
``X[N-1-k] = conj(X[k])`` with no self-paired bins. With ``N = N1 * M``, ``n = n1 M + m``
and ``k = k1 + N1 k'`` the transform is a Monarch product::

    X[k1 + N1 k'] = DFT_M( T[k1, m] * sum_{n1} F1[k1, n1] x[n1 M + m] )[k']

    F1[k1, n1] = exp(-2 pi i n1 (k1 + 1/2) / N1)        (odd DFT of size N1)
    T[k1, m]   = exp(-2 pi i m (k1 + 1/2) / N)          (twiddles)

and ``DFT_M`` is itself ``F2 (twiddle T2) F3`` when ``M = N2 * N3``. Because the input is
real, the rows ``k1 >= N1/2`` are conjugates of rows ``< N1/2`` and are never computed;
because the input is zero past ``L <= N/2``, ``F1`` only needs its first ``N1/2`` columns;
because only the first ``L`` outputs are kept, the last (inverse) stage computes only
the first ``N1/2`` output rows and only their real part. Every block is a ``tl.dot`` on
real and imaginary tiles; the tables are precomputed in float64 and cached per size.
One program reads a row of ``u``, runs forward transform, pointwise product with the
kernel's spectrum, and inverse transform in registers/shared memory, adds the D skip and
gates, and writes the row of ``y``: ``u`` and ``y`` cross HBM once.

Centred (non-causal) kernels need no special case: negative lags are stored at the end
of the length-``N`` kernel with a sign flip (negacyclic wrap), and the outputs we keep
are still the first ``L``.

Sizes and limits
----------------
* Every ``L >= 1``. The FFT size is ``N = max(512, next_pow2(2L))``; the kernels mask
  their loads and stores, so nothing is padded in memory.
* On chip (one fused kernel per direction) while ``N <= MAX_ONCHIP``: 16384 for
  float16/bfloat16 inputs (``L <= 8192``), 8192 for float32 (``L <= 4096``), 4096 for
  float64 (env ``NEUROCONV_FB_MAX_ONCHIP`` overrides). These limits keep every kernel
  inside sm_90 shared memory (227 KB), as checked by compiling offline for H100
  (``python -m neuroconv.kernel_tools.resources``).
* Larger ``N``: the three-pass scheme. Pass 1 runs the outer ``F1`` stage (``P >= 32``
  rows) and twiddles over HBM into a float32 scratch of ``N/2`` complex values per row;
  pass 2 runs independent on-chip convolutions of length ``Q = N / P <= 2048``; pass 3
  runs the inverse outer stage and the epilogue. Scratch is allocated for a chunk of the
  batch at a time (``SCRATCH_BYTES``). Any length works, bounded by memory (64-bit
  offsets); the interpreter tests run the three-pass path at small sizes, the GPU tests
  (not yet run on a GPU) cover every length class up to ``L = 65536``. The scratch round
  trip costs about four extra reads/writes of ``u``'s size in float32, so this path is
  well below the HBM roofline.
* Factor sizes are powers of two >= 16 (``tl.dot`` minimum); ``N1 >= 32``.

dtypes
------
float32 (dots in ``tf32x3`` by default, or ``ieee``: ``NEUROCONV_FB_FP32_PRECISION``),
float16/bfloat16 inputs (tiles upcast to float32, dots in TF32, accumulation in
float32), and float64 (everything in float64, ``ieee`` dots). The output has ``u``'s
dtype; gradients have their input's dtype.

Backward
--------
``du``/``dg1`` come from the same fused kernel run on ``dz = dy g2`` with the conjugate
spectrum (the adjoint convolution), with ``du = dv g1`` and ``dg1 = dv u`` written by its
epilogue; ``dg2 = dy (k * (u g1) + D u g1)`` from one more forward-kernel pass. ``dk`` and
``dD`` come from one kernel per ``(h, batch chunk)`` that transforms ``v`` and ``dz``,
accumulates ``F(dz) conj(F(v))`` over the batch in registers and inverts once at the
end. (A single fused backward kernel was tried first: at N >= 4096 it needed ~385 KB of
shared memory on sm_90, above the 227 KB limit.) The kernel's spectrum is computed once
per call (in torch, from ``k``), saved for the backward, and cached across calls while no
gradient is recorded for ``k`` (eval/inference) and ``k`` is unchanged.
"""

from __future__ import annotations

import functools
import math
import os
import weakref
from dataclasses import dataclass
from typing import Optional

import torch
import triton
import triton.language as tl

from neuroconv.contract import check_inputs, effective_kernel, fftconv_ref

from .availability import require_triton
from ._common import (
    _cdot,
    _cmul,
    _cmul_conj,
    _ld2,
    _ld2t,
    compute_dtype,
    define_op,
    device_max_programs,
    dot_precision,
    launch,
    launch_device,
    num_warps_for,
    tracing,
)

__all__ = ["fftconv_fn", "gated_fftconv_ref", "Plan", "make_plan", "kernel_spectrum", "MAX_ONCHIP",
           "max_onchip_for"]

#: Largest FFT size handled by the fused on-chip kernels, by compute class; larger sizes
#: use three passes. Chosen so that every kernel fits sm_90 shared memory (227 KB) when
#: compiled offline for H100 (``python -m neuroconv.kernel_tools.resources``): float32 tiles
#: with tf32x3 dots need about twice the space of TF32 dots on half inputs, float64 more.
#: ``NEUROCONV_FB_MAX_ONCHIP`` overrides all three.
_ENV_ONCHIP = os.environ.get("NEUROCONV_FB_MAX_ONCHIP")
MAX_ONCHIP = {"half": 16384, "float32": 8192, "float64": 4096}
if _ENV_ONCHIP:
    MAX_ONCHIP = dict.fromkeys(MAX_ONCHIP, int(_ENV_ONCHIP))
#: Largest inner (pass-2) transform of the three-pass path.
MAX_INNER = 2048
#: Smallest FFT size: N1 = 32 (16 live rows) times a 16-point inner transform.
MIN_N = 512
#: Target scratch size (bytes) per three-pass launch; the batch is chunked to fit.
SCRATCH_BYTES = int(os.environ.get("NEUROCONV_FB_SCRATCH_BYTES", str(256 << 20)))


# ============================================================================ reference


def gated_fftconv_ref(u, k, D=None, *, causal=True, g1=None, g2=None):
    """Plain-PyTorch twin of :func:`fftconv_fn`, gates included, computed in float32
    (float64 stays float64).

    ``y = (fftconv_ref(u * g1, k) + D * u * g1) * g2`` where ``fftconv_ref`` is the one
    plain definition, :func:`neuroconv.contract.fftconv_ref` (rfft of size 2L); without
    gates it is that function. Cast back to ``u``'s dtype.
    """
    cdt = compute_dtype(u.dtype, k.dtype)
    v = u.to(cdt) if g1 is None else u.to(cdt) * g1.to(cdt)
    y = fftconv_ref(v, k.to(cdt), None if D is None else D.to(cdt), causal=causal)
    if g2 is not None:
        y = y * g2.to(cdt)
    return y.to(u.dtype)


# ============================================================================ planning


@dataclass(frozen=True)
class Plan:
    """How a length is cut into DFT factors.

    ``N = N1 * N2 * N3`` (``N3 = 1``: a single dense inner stage). ``three_pass``: the
    outer factor ``N1`` (``P``) runs over HBM and the inner ``N2 * N3`` (``Q``) on chip.
    """

    N: int
    N1: int
    N2: int
    N3: int
    three_pass: bool

    @property
    def half(self) -> int:
        return self.N1 // 2

    @property
    def M(self) -> int:
        return self.N2 * self.N3


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _split_inner(M: int) -> tuple[int, int]:
    """Split the inner size into (N2, N3): one dense stage up to 128, else two >= 16."""
    if M <= 128:
        return M, 1
    n2 = 1 << (M.bit_length() - 1) // 2  # N2 <= N3, both powers of two
    return n2, M // n2


def _cost(N1: int, M: int) -> int:
    n2, n3 = _split_inner(M)
    return 4 * N1 + 16 * (n2 + (n3 if n3 > 1 else 0))


def max_onchip_for(in_dtype: torch.dtype, cdt: torch.dtype) -> int:
    """Default on-chip FFT-size limit for inputs of ``in_dtype`` computed in ``cdt``."""
    if cdt == torch.float64:
        return MAX_ONCHIP["float64"]
    return MAX_ONCHIP["float32" if in_dtype == torch.float32 else "half"]


def make_plan(L: int, max_onchip: int | None = None) -> Plan:
    """Factorisation for sequences of length ``L`` (see the module docstring)."""
    max_onchip = int(max_onchip or MAX_ONCHIP["float32"])
    if max_onchip < MIN_N or max_onchip & (max_onchip - 1):
        raise ValueError(f"max_onchip must be a power of two >= {MIN_N}; got {max_onchip}.")
    N = max(MIN_N, _pow2(2 * L))
    if N <= max_onchip:
        best = None
        N1 = 32
        while N // N1 >= 16:
            M = N // N1
            cand = (_cost(N1, M), N1)
            best = cand if best is None or cand < best else best
            N1 *= 2
        N1 = best[1]
        N2, N3 = _split_inner(N // N1)
        return Plan(N, N1, N2, N3, False)
    P = max(32, N // min(max_onchip // 4, MAX_INNER))
    N2, N3 = _split_inner(N // P)
    return Plan(N, P, N2, N3, True)


# ============================================================================ tables


@functools.lru_cache(maxsize=64)
def _tables(plan: Plan, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """DFT blocks and twiddles for ``plan``, each stored as ``[2, ...]`` (re, im)."""
    N, N1, N2, N3, half, M = plan.N, plan.N1, plan.N2, plan.N3, plan.half, plan.M
    f64 = torch.float64
    ar = lambda n: torch.arange(n, dtype=f64)  # noqa: E731

    def cplx(phase_turns: torch.Tensor) -> torch.Tensor:  # exp(2 pi i * turns), exact reduction
        ang = 2 * math.pi * torch.remainder(phase_turns, 1.0)
        return torch.stack([torch.cos(ang), torch.sin(ang)]).to(device=device, dtype=dtype).contiguous()

    k1 = ar(half)[:, None]
    out = {
        "F1": cplx(-ar(half)[None, :] * (k1 + 0.5) / N1),  # [k1, n1], n1 < N1/2
        # m (k1 + 1/2) / N, reduced exactly: (2 m k1 + m) / (2N) in integers
        "T": cplx(-torch.remainder(2 * ar(M)[None, :] * k1 + ar(M)[None, :], 2 * N) / (2 * N)),
        "F2": cplx(-torch.remainder(torch.outer(ar(N2), ar(N2)), N2) / N2),
        "F3": cplx(-torch.remainder(torch.outer(ar(N3), ar(N3)), N3) / N3),
        "T2": cplx(-torch.remainder(torch.outer(ar(N3), ar(N2)), M) / M),  # [n3, k2]
        # inverse outer stage with the 2/N scale and the conjugate-pair doubling
        "G": cplx(torch.remainder(ar(N1)[:, None] * (ar(half)[None, :] + 0.5), N1) / N1) * (2.0 / N),
    }
    return out


def kernel_spectrum(k: torch.Tensor, L: int, causal: bool, plan: Plan, cdt: torch.dtype) -> torch.Tensor:
    """Odd-DFT spectrum of the kernels in the kernel's tile layout.

    ``k``: ``(H, Lk)`` as given to :func:`fftconv_fn`. Returns ``(H, 2, N1/2, N2*N3)``
    (re, im) in ``cdt``: entry ``[h, :, k1, k2*N3 + k3]`` is bin ``k1 + N1 (k2 + N2 k3)``.
    """
    k_eff, off = effective_kernel(k, L, causal)
    H, lke = k_eff.shape
    N, N1, N2, N3 = plan.N, plan.N1, plan.N2, plan.N3
    k_eff = k_eff.to(cdt)
    # lag tau >= 0 at index tau, lag tau < 0 at N + tau with the negacyclic sign flip
    kw = torch.cat([k_eff[:, off:], k_eff.new_zeros(H, N - lke), -k_eff[:, :off]], dim=1)
    # odd-DFT weights exp(-i pi n / N), built in float64 (plain ops, so torch.compile
    # traces them instead of a cached table)
    ang = torch.arange(N, device=k.device, dtype=torch.float64) * (-math.pi / N)
    psi = torch.polar(torch.ones_like(ang), ang)
    psi = psi.to(torch.complex128 if cdt == torch.float64 else torch.complex64)
    K = torch.fft.fft(kw * psi, n=N)  # (H, N)
    K = K.reshape(H, N3, N2, N1).permute(0, 3, 2, 1)[:, : N1 // 2].reshape(H, N1 // 2, N2 * N3)
    return torch.stack([K.real, K.imag], dim=1).contiguous()


_SPEC_CACHE: dict = {}


def _cached_spectrum(k, L, causal, plan, cdt):
    """Kernel spectrum, reused while ``k`` is the same unchanged tensor and no gradient is
    recorded for it (eval / inference). An entry dies with its ``k``."""
    if torch.is_grad_enabled() and k.requires_grad:
        with torch.no_grad():
            return kernel_spectrum(k, L, causal, plan, cdt)
    try:
        if torch.compiler.is_compiling():
            raise RuntimeError
        key = (id(k), k._version, L, causal, plan, cdt)
    except RuntimeError:  # compiling, or an inference tensor (no version counter)
        with torch.no_grad():
            return kernel_spectrum(k, L, causal, plan, cdt)
    hit = _SPEC_CACHE.get(key)
    if hit is not None and hit[0]() is k:
        return hit[1]
    with torch.no_grad():
        spec = kernel_spectrum(k, L, causal, plan, cdt)
    if len(_SPEC_CACHE) >= 16:
        _SPEC_CACHE.pop(next(iter(_SPEC_CACHE)))
    _SPEC_CACHE[key] = (weakref.ref(k, lambda _, key=key: _SPEC_CACHE.pop(key, None)), spec)
    return spec


# ============================================================================ jit blocks


@triton.jit
def _inner_fwd(zr, zi, F2, F3, T2, R: tl.constexpr, N2: tl.constexpr, N3: tl.constexpr,
               PREC: tl.constexpr):
    """Size-M DFT of each row of an ``(R, M)`` tile (column ``m = n2 N3 + n3``).

    Returns the spectrum with column ``q = k2 N3 + k3`` holding bin ``k2 + N2 k3``.
    """
    if N3 == 1:
        sr, si = _cdot(zr, zi, _ld2(F2, N2, N2), _ld2(F2, N2, N2, N2 * N2), PREC)
    else:
        # contract n2 (the slow digit): bring it last
        ar = tl.reshape(tl.permute(tl.reshape(zr, (R, N2, N3)), (0, 2, 1)), (R * N3, N2))
        ai = tl.reshape(tl.permute(tl.reshape(zi, (R, N2, N3)), (0, 2, 1)), (R * N3, N2))
        ar, ai = _cdot(ar, ai, _ld2(F2, N2, N2), _ld2(F2, N2, N2, N2 * N2), PREC)  # [(r,n3), k2]
        tr = _ld2(T2, N3, N2)[None, :, :]
        ti = _ld2(T2, N3, N2, N3 * N2)[None, :, :]
        ar, ai = _cmul(tl.reshape(ar, (R, N3, N2)), tl.reshape(ai, (R, N3, N2)), tr, ti)
        ar = tl.reshape(tl.permute(ar, (0, 2, 1)), (R * N2, N3))
        ai = tl.reshape(tl.permute(ai, (0, 2, 1)), (R * N2, N3))
        sr, si = _cdot(ar, ai, _ld2(F3, N3, N3), _ld2(F3, N3, N3, N3 * N3), PREC)  # [(r,k2), k3]
        sr = tl.reshape(sr, (R, N2 * N3))
        si = tl.reshape(si, (R, N2 * N3))
    return sr, si


@triton.jit
def _inner_inv(yr, yi, F2, F3, T2, R: tl.constexpr, N2: tl.constexpr, N3: tl.constexpr,
               PREC: tl.constexpr):
    """Unnormalised inverse of :func:`_inner_fwd` (spectrum layout in, natural m out)."""
    if N3 == 1:
        br, bi = _cdot(yr, yi, _ld2(F2, N2, N2), -_ld2(F2, N2, N2, N2 * N2), PREC)
    else:
        ar = tl.reshape(yr, (R * N2, N3))
        ai = tl.reshape(yi, (R * N2, N3))
        ar, ai = _cdot(ar, ai, _ld2(F3, N3, N3), -_ld2(F3, N3, N3, N3 * N3), PREC)  # [(r,k2), n3]
        tr = _ld2t(T2, N2, N3)[None, :, :]  # T2[n3, k2] seen as [k2, n3]
        ti = _ld2t(T2, N2, N3, N3 * N2)[None, :, :]
        ar, ai = _cmul_conj(tl.reshape(ar, (R, N2, N3)), tl.reshape(ai, (R, N2, N3)), tr, ti)
        ar = tl.reshape(tl.permute(ar, (0, 2, 1)), (R * N3, N2))
        ai = tl.reshape(tl.permute(ai, (0, 2, 1)), (R * N3, N2))
        ar, ai = _cdot(ar, ai, _ld2(F2, N2, N2), -_ld2(F2, N2, N2, N2 * N2), PREC)  # [(r,n3), n2]
        br = tl.reshape(tl.permute(tl.reshape(ar, (R, N3, N2)), (0, 2, 1)), (R, N2 * N3))
        bi = tl.reshape(tl.permute(tl.reshape(ai, (R, N3, N2)), (0, 2, 1)), (R, N2 * N3))
    return br, bi


@triton.jit
def _outer_fwd(x, F1, T, HALF: tl.constexpr, BM: tl.constexpr, TCOL, TSTRIDE: tl.constexpr,
               PREC: tl.constexpr, ROW0, RB: tl.constexpr):
    """Rows ``ROW0 .. ROW0+RB`` of ``(F1 @ x) * T`` for a real ``(HALF, BM)`` tile whose
    columns start at ``TCOL``."""
    r = ROW0 + tl.arange(0, RB)[:, None]
    k = tl.arange(0, HALF)[None, :]
    ar = tl.dot(tl.load(F1 + r * HALF + k), x, input_precision=PREC, out_dtype=x.dtype)
    ai = tl.dot(tl.load(F1 + HALF * HALF + r * HALF + k), x, input_precision=PREC, out_dtype=x.dtype)
    c = TCOL + tl.arange(0, BM)[None, :]
    tr = tl.load(T + r * TSTRIDE + c)
    ti = tl.load(T + HALF * TSTRIDE + r * TSTRIDE + c)
    return _cmul(ar, ai, tr, ti)


@triton.jit
def _outer_inv(br, bi, G, T, HALF: tl.constexpr, BM: tl.constexpr, TCOL, TSTRIDE: tl.constexpr,
               OUT_ROWS: tl.constexpr, N1: tl.constexpr, PREC: tl.constexpr, OROW0=0):
    """Real part of ``G[OROW0 : OROW0+OUT_ROWS] @ (conj(T) * b)`` for an ``(HALF, BM)``
    complex tile whose columns start at ``TCOL``."""
    r = tl.arange(0, HALF)[:, None]
    c = TCOL + tl.arange(0, BM)[None, :]
    tr = tl.load(T + r * TSTRIDE + c)
    ti = tl.load(T + HALF * TSTRIDE + r * TSTRIDE + c)
    cr, ci = _cmul_conj(br, bi, tr, ti)
    o = OROW0 + tl.arange(0, OUT_ROWS)[:, None]
    k = tl.arange(0, HALF)[None, :]
    gr = tl.load(G + o * HALF + k)
    gi = tl.load(G + N1 * HALF + o * HALF + k)
    out = tl.dot(gr, cr, input_precision=PREC, out_dtype=cr.dtype)
    return tl.dot(-gi, ci, acc=out, input_precision=PREC, out_dtype=cr.dtype)


@triton.jit
def _row_transform(x, F1, T, F2, F3, T2, HALF: tl.constexpr, N2: tl.constexpr, N3: tl.constexpr,
                   PREC: tl.constexpr):
    """Odd-DFT half spectrum of one zero-padded real row held as an ``(HALF, M)`` tile."""
    ar, ai = _outer_fwd(x, F1, T, HALF, N2 * N3, 0, N2 * N3, PREC, 0, HALF)
    return _inner_fwd(ar, ai, F2, F3, T2, HALF, N2, N3, PREC)


@triton.jit
def _row_inverse(sr, si, F2, F3, T2, G, T, HALF: tl.constexpr, N2: tl.constexpr, N3: tl.constexpr,
                 OUT_ROWS: tl.constexpr, PREC: tl.constexpr):
    """Real signal (first ``OUT_ROWS * M`` samples) from a half spectrum tile."""
    br, bi = _inner_inv(sr, si, F2, F3, T2, HALF, N2, N3, PREC)
    return _outer_inv(br, bi, G, T, HALF, N2 * N3, 0, N2 * N3, OUT_ROWS, 2 * HALF, PREC, 0)


# ============================================================================ on-chip kernels


@triton.jit
def _fb_conv_kernel(X1, X2, Y1, Y2, C1, C2, K, D, F1, T, F2, F3, T2, G, L, H,
                    HALF: tl.constexpr, N2: tl.constexpr, N3: tl.constexpr,
                    HAS_X2: tl.constexpr, HAS_D: tl.constexpr, HAS_C1: tl.constexpr,
                    HAS_Y2: tl.constexpr, CONJ_K: tl.constexpr, PREC: tl.constexpr):
    """One program per row ``(b, h)``, everything on chip::

        v   = X1 * X2                                  (X2 = 1 unless HAS_X2)
        out = F^-1(F(v) * K) + D v                     (conj(K) when CONJ_K)
        Y1  = out * C1,   Y2 = out * C2                (C1 = 1 unless HAS_C1)

    forward: v = u g1, Y1 = y (C1 = g2). Backward: v = dy g2 with conj(K) gives dv,
    Y1 = du (C1 = g1) and Y2 = dg1 (C2 = u); v = u g1 with C1 = dy gives dg2.
    """
    M: tl.constexpr = N2 * N3
    CDT: tl.constexpr = F1.dtype.element_ty
    row = tl.program_id(0)
    h = row % H
    base = row.to(tl.int64) * L
    n = tl.arange(0, HALF)[:, None] * M + tl.arange(0, M)[None, :]
    mask = n < L
    v = tl.load(X1 + base + n, mask=mask, other=0.0).to(CDT)
    if HAS_X2:
        v = v * tl.load(X2 + base + n, mask=mask, other=0.0).to(CDT)
    sr, si = _row_transform(v, F1, T, F2, F3, T2, HALF, N2, N3, PREC)
    kb = h.to(tl.int64) * (2 * HALF * M)
    kr = _ld2(K + kb, HALF, M)
    ki = _ld2(K + kb, HALF, M, HALF * M)
    if CONJ_K:
        ki = -ki
    sr, si = _cmul(sr, si, kr, ki)
    out = _row_inverse(sr, si, F2, F3, T2, G, T, HALF, N2, N3, HALF, PREC)
    if HAS_D:
        out += tl.load(D + h).to(CDT) * v
    if HAS_Y2:
        y2 = out * tl.load(C2 + base + n, mask=mask, other=0.0).to(CDT)
        tl.store(Y2 + base + n, y2.to(Y2.dtype.element_ty), mask=mask)
    if HAS_C1:
        out = out * tl.load(C1 + base + n, mask=mask, other=0.0).to(CDT)
    tl.store(Y1 + base + n, out.to(Y1.dtype.element_ty), mask=mask)


@triton.jit
def _store_taps(DK, out, n, dk_row, LKE, OFF, N: tl.constexpr, CAUSAL: tl.constexpr):
    """Scatter kernel-gradient samples ``out`` at signal positions ``n`` onto taps."""
    if CAUSAL:
        tl.store(DK + dk_row + n, out, mask=n < LKE)
    else:
        # lag tau >= 0 sits at n = tau; lag tau < 0 at n = N + tau with a sign flip
        pos = n <= OFF
        neg = n >= N - OFF
        j = tl.where(pos, OFF + n, OFF + n - N)
        tl.store(DK + dk_row + j, tl.where(pos, out, -out), mask=(pos | neg) & (j >= 0) & (j < LKE))


@triton.jit
def _fb_dk_kernel(U, G1, DY, G2, DK, DD, F1, T, F2, F3, T2, G, B, L, H, BPC, LKE, OFF,
                  HALF: tl.constexpr, N2: tl.constexpr, N3: tl.constexpr,
                  HAS_G1: tl.constexpr, HAS_G2: tl.constexpr, NEED_DK: tl.constexpr,
                  NEED_DD: tl.constexpr, CAUSAL: tl.constexpr, PREC: tl.constexpr):
    """One program per ``(h, batch chunk)``, looping over its rows: with v = u g1 and
    dz = dy g2, accumulates ``F(dz) conj(F(v))`` and ``sum(dz v)`` on chip, then one
    inverse transform gives this chunk's dk taps; writes the partial dk and dD."""
    M: tl.constexpr = N2 * N3
    N1: tl.constexpr = 2 * HALF
    CDT: tl.constexpr = F1.dtype.element_ty
    h = tl.program_id(0)
    chunk = tl.program_id(1)
    n = tl.arange(0, HALF)[:, None] * M + tl.arange(0, M)[None, :]
    accr = tl.zeros((HALF, M), dtype=CDT)
    acci = tl.zeros((HALF, M), dtype=CDT)
    accd = tl.zeros((HALF, M), dtype=CDT)
    for i in range(0, BPC):
        b = chunk * BPC + i
        base = (b.to(tl.int64) * H + h) * L
        mask = n < tl.where(b < B, L, 0)  # rows past B read zeros
        v = tl.load(U + base + n, mask=mask, other=0.0).to(CDT)
        if HAS_G1:
            v = v * tl.load(G1 + base + n, mask=mask, other=0.0).to(CDT)
        dz = tl.load(DY + base + n, mask=mask, other=0.0).to(CDT)
        if HAS_G2:
            dz = dz * tl.load(G2 + base + n, mask=mask, other=0.0).to(CDT)
        if NEED_DD:
            accd += dz * v
        if NEED_DK:
            vr, vi = _row_transform(v, F1, T, F2, F3, T2, HALF, N2, N3, PREC)
            dr, di = _row_transform(dz, F1, T, F2, F3, T2, HALF, N2, N3, PREC)
            cr, ci = _cmul_conj(dr, di, vr, vi)
            accr += cr
            acci += ci
    if NEED_DK:
        dk_row = (chunk.to(tl.int64) * H + h) * LKE
        if CAUSAL:  # taps 0..L-1 live in the first half
            out = _row_inverse(accr, acci, F2, F3, T2, G, T, HALF, N2, N3, HALF, PREC)
            _store_taps(DK, out, n, dk_row, LKE, OFF, N1 * M, True)
        else:  # negative lags live at the end: all N1 output rows
            out = _row_inverse(accr, acci, F2, F3, T2, G, T, HALF, N2, N3, N1, PREC)
            nf = tl.arange(0, N1)[:, None] * M + tl.arange(0, M)[None, :]
            _store_taps(DK, out, nf, dk_row, LKE, OFF, N1 * M, False)
    if NEED_DD:
        tl.store(DD + chunk * H + h, tl.sum(tl.sum(accd, axis=1), axis=0))


# ============================================================================ three-pass kernels


@triton.jit
def _tp_outer_fwd_kernel(X, XG, W, F1, T, L,
                         HALF: tl.constexpr, Q: tl.constexpr, BQ: tl.constexpr, RB: tl.constexpr,
                         HAS_XG: tl.constexpr, PREC: tl.constexpr):
    """Pass 1: W[row, :, k1, m] = (F1 @ x)[k1, m] * T[k1, m] for a block of columns m and
    a block of ``RB`` rows k1.

    ``x[n1, m] = X[row, n1 Q + m] (* XG[...])``; W is ``(rows, 2, HALF, Q)``.
    """
    CDT: tl.constexpr = F1.dtype.element_ty
    row = tl.program_id(0)
    col = tl.program_id(1) * BQ
    k0 = tl.program_id(2) * RB
    r = tl.arange(0, HALF)[:, None]
    c = col + tl.arange(0, BQ)[None, :]
    n = r * Q + c
    base = row.to(tl.int64) * L
    mask = n < L
    x = tl.load(X + base + n, mask=mask, other=0.0).to(CDT)
    if HAS_XG:
        x = x * tl.load(XG + base + n, mask=mask, other=0.0).to(CDT)
    ar, ai = _outer_fwd(x, F1, T, HALF, BQ, col, Q, PREC, k0, RB)
    wb = row.to(tl.int64) * (2 * HALF * Q)
    o = (k0 + tl.arange(0, RB)[:, None]) * Q + c
    tl.store(W + wb + o, ar)
    tl.store(W + wb + HALF * Q + o, ai)


@triton.jit
def _tp_inner_kernel(W, K, F2, F3, T2, H,
                     HALF: tl.constexpr, R: tl.constexpr, N2: tl.constexpr, N3: tl.constexpr,
                     CONJ_K: tl.constexpr, PREC: tl.constexpr):
    """Pass 2, in place: rows k1 of W <- InnerDFT^-1(InnerDFT(W[k1]) * K[h, k1])."""
    Q: tl.constexpr = N2 * N3
    row = tl.program_id(0)
    k0 = tl.program_id(1) * R
    h = row % H
    off = k0 * Q + tl.arange(0, R)[:, None] * Q + tl.arange(0, Q)[None, :]
    wb = row.to(tl.int64) * (2 * HALF * Q)
    kb = h.to(tl.int64) * (2 * HALF * Q)
    sr, si = _inner_fwd(tl.load(W + wb + off), tl.load(W + wb + HALF * Q + off),
                        F2, F3, T2, R, N2, N3, PREC)
    kr = tl.load(K + kb + off)
    ki = tl.load(K + kb + HALF * Q + off)
    if CONJ_K:
        ki = -ki
    sr, si = _cmul(sr, si, kr, ki)
    br, bi = _inner_inv(sr, si, F2, F3, T2, R, N2, N3, PREC)
    tl.store(W + wb + off, br)
    tl.store(W + wb + HALF * Q + off, bi)


@triton.jit
def _tp_xcorr_kernel(WV, WD, OUT, F2, F3, T2, B, H, BPC,
                     HALF: tl.constexpr, R: tl.constexpr, N2: tl.constexpr, N3: tl.constexpr,
                     PREC: tl.constexpr):
    """Pass 2 for dk: OUT[chunk, h, :, k1] = InnerDFT^-1(sum_b InnerDFT(WD) conj(InnerDFT(WV)))."""
    Q: tl.constexpr = N2 * N3
    CDT: tl.constexpr = WV.dtype.element_ty
    h = tl.program_id(0)
    k0 = tl.program_id(1) * R
    chunk = tl.program_id(2)
    off = k0 * Q + tl.arange(0, R)[:, None] * Q + tl.arange(0, Q)[None, :]
    accr = tl.zeros((R, Q), dtype=CDT)
    acci = tl.zeros((R, Q), dtype=CDT)
    for i in range(0, BPC):
        b = chunk * BPC + i
        m = off < tl.where(b < B, HALF * Q, 0)
        wb = (b.to(tl.int64) * H + h) * (2 * HALF * Q)
        vr, vi = _inner_fwd(tl.load(WV + wb + off, mask=m, other=0.0),
                            tl.load(WV + wb + HALF * Q + off, mask=m, other=0.0),
                            F2, F3, T2, R, N2, N3, PREC)
        dr, di = _inner_fwd(tl.load(WD + wb + off, mask=m, other=0.0),
                            tl.load(WD + wb + HALF * Q + off, mask=m, other=0.0),
                            F2, F3, T2, R, N2, N3, PREC)
        cr, ci = _cmul_conj(dr, di, vr, vi)
        accr += cr
        acci += ci
    br, bi = _inner_inv(accr, acci, F2, F3, T2, R, N2, N3, PREC)
    ob = (chunk.to(tl.int64) * H + h) * (2 * HALF * Q)
    tl.store(OUT + ob + off, br)
    tl.store(OUT + ob + HALF * Q + off, bi)


@triton.jit
def _tp_outer_inv_kernel(W, Y1, Y2, A1, A2, C1, C2, D, G, T, L, H, LKE, OFF,
                         HALF: tl.constexpr, Q: tl.constexpr, BQ: tl.constexpr, RB: tl.constexpr,
                         TAPS: tl.constexpr, CAUSAL: tl.constexpr, HAS_D: tl.constexpr,
                         HAS_A2: tl.constexpr, HAS_C1: tl.constexpr, HAS_Y2: tl.constexpr,
                         PREC: tl.constexpr):
    """Pass 3: out = Re(G @ (conj(T) W)) for a block of columns and ``RB`` output rows,
    then the epilogue.

    Signal mode: ``Y1 = (out + D A1 A2) C1`` and ``Y2 = (out + D A1 A2) C2`` on the
    first L samples. Taps mode (``TAPS``): scatter ``out`` onto kernel taps of
    ``Y1[row, :LKE]`` (centred kernels read all N samples: negative lags sit at the end).
    """
    N1: tl.constexpr = 2 * HALF
    CDT: tl.constexpr = W.dtype.element_ty
    row = tl.program_id(0)
    col = tl.program_id(1) * BQ
    o0 = tl.program_id(2) * RB
    r = tl.arange(0, HALF)[:, None]
    c = col + tl.arange(0, BQ)[None, :]
    wb = row.to(tl.int64) * (2 * HALF * Q)
    br = tl.load(W + wb + r * Q + c)
    bi = tl.load(W + wb + HALF * Q + r * Q + c)
    out = _outer_inv(br, bi, G, T, HALF, BQ, col, Q, RB, N1, PREC, o0)
    n = (o0 + tl.arange(0, RB)[:, None]) * Q + c
    if TAPS:
        _store_taps(Y1, out, n, row.to(tl.int64) * LKE, LKE, OFF, N1 * Q, CAUSAL)
    else:
        base = row.to(tl.int64) * L
        mask = n < L
        if HAS_D:
            a = tl.load(A1 + base + n, mask=mask, other=0.0).to(CDT)
            if HAS_A2:
                a = a * tl.load(A2 + base + n, mask=mask, other=0.0).to(CDT)
            out += tl.load(D + row % H).to(CDT) * a
        if HAS_Y2:
            y2 = out * tl.load(C2 + base + n, mask=mask, other=0.0).to(CDT)
            tl.store(Y2 + base + n, y2.to(Y2.dtype.element_ty), mask=mask)
        if HAS_C1:
            out = out * tl.load(C1 + base + n, mask=mask, other=0.0).to(CDT)
        tl.store(Y1 + base + n, out.to(Y1.dtype.element_ty), mask=mask)


# ============================================================================ launchers


def _tabs(plan: Plan, device, cdt, like: Optional[torch.Tensor] = None):
    """The tables, cached per (plan, device, dtype) except while torch traces ``like``
    (under torch.compile they become graph operations instead of cached fake tensors)."""
    build = _tables.__wrapped__ if like is not None and tracing(like) else _tables
    t = build(plan, device, cdt)
    return t["F1"], t["T"], t["F2"], t["F3"], t["T2"], t["G"]


def _inner_rows(plan: Plan, cdt: torch.dtype = torch.float32, xcorr: bool = False) -> int:
    """Rows of the inner transform per pass-2 program: about 4K complex values (half that
    for float64 and for the two-input dk pass, to stay inside sm_90 shared memory)."""
    budget = 4096 // (2 if cdt == torch.float64 else 1) // (2 if xcorr else 1)
    lo = 16 if plan.N3 == 1 else 1
    return min(plan.half, max(lo, budget // plan.M))


def _outer_block(plan: Plan) -> int:
    """Columns per pass-1/pass-3 program."""
    return min(plan.M, max(16, 4096 // plan.half))


#: Rows of the outer stage per pass-1/pass-3 program (bounds the F1/G tiles for large P).
OUTER_ROWS = 64


def _batch_chunk(B: int, H: int, plan: Plan, cdt: torch.dtype, buffers: int) -> int:
    per_b = buffers * H * plan.N * torch.finfo(cdt).bits // 8
    return max(1, min(B, SCRATCH_BYTES // max(per_b, 1)))


def _conv_onchip(x1, x2, y1, y2, c1, c2, kspec, D, plan: Plan, tabs, prec, conj_k):
    """Launch :func:`_fb_conv_kernel` (one program per row)."""
    B, H, L = x1.shape
    launch(_fb_conv_kernel, (B * H,),
           x1, x2 if x2 is not None else x1, y1, y2 if y2 is not None else y1,
           c1 if c1 is not None else x1, c2 if c2 is not None else x1, kspec,
           D if D is not None else x1, *tabs, L, H,
           HALF=plan.half, N2=plan.N2, N3=plan.N3, HAS_X2=x2 is not None, HAS_D=D is not None,
           HAS_C1=c1 is not None, HAS_Y2=y2 is not None, CONJ_K=conj_k, PREC=prec,
           num_warps=num_warps_for(plan.N // 2))


def _fftconv_fwd(u, kspec, D, g1, g2, plan: Plan):
    """y (B, H, L) in u's dtype; all inputs contiguous, kspec in the compute dtype."""
    B, H, L = u.shape
    cdt = kspec.dtype
    prec = dot_precision(u.dtype, cdt)
    tabs = _tabs(plan, u.device, cdt, like=u)
    y = torch.empty_like(u, memory_format=torch.contiguous_format)
    if B * H == 0:
        return y
    if not plan.three_pass:
        _conv_onchip(u, g1, y, None, g2, None, kspec, D, plan, tabs, prec, conj_k=False)
        return y
    F1, T, F2, F3, T2, G = tabs
    half, Q = plan.half, plan.M
    BQ, R = _outer_block(plan), _inner_rows(plan, cdt)
    RB = min(half, OUTER_ROWS)
    nb = _batch_chunk(B, H, plan, cdt, 1)
    W = torch.empty(nb * H, 2, half, Q, device=u.device, dtype=cdt)
    for b0 in range(0, B, nb):
        b1 = min(B, b0 + nb)
        rows = (b1 - b0) * H
        ub = u[b0:b1]
        g1b = g1[b0:b1] if g1 is not None else ub
        g2b = g2[b0:b1] if g2 is not None else ub
        launch(_tp_outer_fwd_kernel, (rows, Q // BQ, half // RB), ub, g1b, W, F1, T, L, HALF=half, Q=Q, BQ=BQ,
               RB=RB, HAS_XG=g1 is not None, PREC=prec,
               num_warps=num_warps_for(half * BQ))
        launch(_tp_inner_kernel, (rows, half // R), W, kspec, F2, F3, T2, H, HALF=half, R=R, N2=plan.N2,
               N3=plan.N3, CONJ_K=False, PREC=prec,
               num_warps=num_warps_for(R * Q))
        launch(_tp_outer_inv_kernel, (rows, Q // BQ, half // RB),
               W, y[b0:b1], ub, ub, g1b, g2b, ub, D if D is not None else ub, G, T, L, H, 0, 0,
               HALF=half, Q=Q, BQ=BQ, RB=RB, TAPS=False, CAUSAL=True, HAS_D=D is not None,
               HAS_A2=g1 is not None, HAS_C1=g2 is not None, HAS_Y2=False, PREC=prec,
               num_warps=num_warps_for(half * BQ))
    return y


def _fftconv_bwd(u, dy, kspec, D, g1, g2, plan: Plan, causal: bool, lke: int, off: int,
                 need_du: bool, need_dk: bool):
    """Returns (du, dk_eff (H, lke) cdt, dD (H,) cdt, dg1, dg2); absent ones are empty."""
    B, H, L = u.shape
    cdt = kspec.dtype
    dev = u.device
    prec = dot_precision(u.dtype, cdt)
    F1, T, F2, F3, T2, G = _tabs(plan, dev, cdt, like=u)
    du = torch.empty_like(u) if need_du else u.new_empty(0)
    dg1 = torch.empty_like(g1) if (g1 is not None and need_du) else u.new_empty(0)
    dg2 = torch.empty_like(g2) if g2 is not None else u.new_empty(0)
    dk = torch.zeros(H, lke, device=dev, dtype=cdt) if need_dk else u.new_empty(0)
    dD = torch.zeros(H, device=dev, dtype=cdt) if D is not None else u.new_empty(0)
    if B * H == 0:
        return du, dk, dD, dg1, dg2
    dummy = u
    if not plan.three_pass:
        tabs = (F1, T, F2, F3, T2, G)
        if need_du:  # dv = conv^T(dy g2) + D dy g2;  du = dv g1,  dg1 = dv u
            _conv_onchip(dy, g2, du, dg1 if g1 is not None else None, g1, u if g1 is not None else None,
                         kspec, D, plan, tabs, prec, conj_k=True)
        if g2 is not None:  # dg2 = dy (conv(u g1) + D u g1)
            _conv_onchip(u, g1, dg2, None, dy, None, kspec, D, plan, tabs, prec, conj_k=False)
        if need_dk or D is not None:
            nck = max(1, min(B, -(-device_max_programs(dev) // H)))
            bpc = -(-B // nck)
            nck = -(-B // bpc)
            dk_part = torch.empty(nck, H, lke, device=dev, dtype=cdt) if need_dk else dummy
            dD_part = torch.empty(nck, H, device=dev, dtype=cdt) if D is not None else dummy
            launch(_fb_dk_kernel, (H, nck),
                   u, g1 if g1 is not None else dummy, dy, g2 if g2 is not None else dummy, dk_part,
                   dD_part, F1, T, F2, F3, T2, G, B, L, H, bpc, lke, off,
                   HALF=plan.half, N2=plan.N2, N3=plan.N3, HAS_G1=g1 is not None,
                   HAS_G2=g2 is not None, NEED_DK=need_dk, NEED_DD=D is not None, CAUSAL=causal,
                   PREC=prec, num_warps=num_warps_for(plan.N // 2))
            if need_dk:
                dk = dk_part.sum(0)
            if D is not None:
                dD = dD_part.sum(0)
        return du, dk, dD, dg1, dg2

    half, Q = plan.half, plan.M
    BQ, R, RX = _outer_block(plan), _inner_rows(plan, cdt), _inner_rows(plan, cdt, xcorr=True)
    RB = min(half, OUTER_ROWS)
    taps_rows = half if causal else 2 * half  # centred dk needs the second half too
    RBT = min(taps_rows, OUTER_ROWS)
    nw_outer, nw_inner = num_warps_for(half * BQ), num_warps_for(R * Q)
    nb = _batch_chunk(B, H, plan, cdt, 3 if need_dk else 2)
    Wv = torch.empty(nb * H, 2, half, Q, device=dev, dtype=cdt)
    Wd = torch.empty_like(Wv)
    Wk = torch.empty_like(Wv) if need_dk else None
    for b0 in range(0, B, nb):
        b1 = min(B, b0 + nb)
        nbc, rows = b1 - b0, (b1 - b0) * H
        ub, dyb = u[b0:b1], dy[b0:b1]
        g1b = g1[b0:b1] if g1 is not None else ub
        g2b = g2[b0:b1] if g2 is not None else ub
        grid_o = (rows, Q // BQ, half // RB)
        launch(_tp_outer_fwd_kernel, grid_o, ub, g1b, Wv, F1, T, L, HALF=half, Q=Q, BQ=BQ, RB=RB,
               HAS_XG=g1 is not None, PREC=prec, num_warps=nw_outer)
        launch(_tp_outer_fwd_kernel, grid_o, dyb, g2b, Wd, F1, T, L, HALF=half, Q=Q, BQ=BQ, RB=RB,
               HAS_XG=g2 is not None, PREC=prec, num_warps=nw_outer)
        if need_dk:
            nck = max(1, min(nbc, -(-device_max_programs(dev) // (H * (half // RX)))))
            bpc = -(-nbc // nck)
            nck = -(-nbc // bpc)
            Wk_ = Wk[: nck * H]
            launch(_tp_xcorr_kernel, (H, half // RX, nck), Wv, Wd, Wk_, F2, F3, T2, nbc, H, bpc, HALF=half,
                   R=RX, N2=plan.N2, N3=plan.N3, PREC=prec,
                   num_warps=num_warps_for(RX * Q))
            part = torch.empty(nck * H, lke, device=dev, dtype=cdt)
            launch(_tp_outer_inv_kernel, (nck * H, Q // BQ, taps_rows // RBT),
                   Wk_, part, part, ub, ub, ub, ub, ub, G, T, L, H, lke, off,
                   HALF=half, Q=Q, BQ=BQ, RB=RBT, TAPS=True, CAUSAL=causal, HAS_D=False, HAS_A2=False,
                   HAS_C1=False, HAS_Y2=False, PREC=prec, num_warps=num_warps_for(RBT * BQ))
            dk += part.view(nck, H, lke).sum(0)
        if g2 is not None:  # dg2 = dy * (conv(v) + D v), recomputed from V
            launch(_tp_inner_kernel, (rows, half // R), Wv, kspec, F2, F3, T2, H, HALF=half, R=R,
                   N2=plan.N2, N3=plan.N3, CONJ_K=False, PREC=prec,
                   num_warps=nw_inner)
            launch(_tp_outer_inv_kernel, grid_o,
                   Wv, dg2[b0:b1], ub, ub, g1b, dyb, ub, D if D is not None else ub, G, T, L, H, 0, 0,
                   HALF=half, Q=Q, BQ=BQ, RB=RB, TAPS=False, CAUSAL=True, HAS_D=D is not None,
                   HAS_A2=g1 is not None, HAS_C1=True, HAS_Y2=False, PREC=prec, num_warps=nw_outer)
        if need_du:  # dv = conv^T(dz) + D dz; du = dv g1; dg1 = dv u
            launch(_tp_inner_kernel, (rows, half // R), Wd, kspec, F2, F3, T2, H, HALF=half, R=R,
                   N2=plan.N2, N3=plan.N3, CONJ_K=True, PREC=prec,
                   num_warps=nw_inner)
            launch(_tp_outer_inv_kernel, grid_o,
                   Wd, du[b0:b1], dg1[b0:b1] if g1 is not None else ub, dyb, g2b, g1b, ub,
                   D if D is not None else ub, G, T, L, H, 0, 0,
                   HALF=half, Q=Q, BQ=BQ, RB=RB, TAPS=False, CAUSAL=True, HAS_D=D is not None,
                   HAS_A2=g2 is not None, HAS_C1=g1 is not None, HAS_Y2=g1 is not None,
                   PREC=prec, num_warps=nw_outer)
        if D is not None:
            v = ub.to(cdt) if g1 is None else ub.to(cdt) * g1b.to(cdt)
            dz = dyb.to(cdt) if g2 is None else dyb.to(cdt) * g2b.to(cdt)
            dD += (v * dz).sum(dim=(0, 2))
    return du, dk, dD, dg1, dg2


# ============================================================================ torch.library ops


def _fwd_impl(u: torch.Tensor, kspec: torch.Tensor, D: Optional[torch.Tensor],
              g1: Optional[torch.Tensor], g2: Optional[torch.Tensor],
              N: int, N1: int, N2: int, N3: int, three_pass: bool) -> torch.Tensor:
    with launch_device(u.device):
        return _fftconv_fwd(u, kspec, D, g1, g2, Plan(N, N1, N2, N3, three_pass))


def _fwd_fake(u, kspec, D, g1, g2, N, N1, N2, N3, three_pass):
    return torch.empty_like(u, memory_format=torch.contiguous_format)


def _bwd_impl(u: torch.Tensor, dy: torch.Tensor, kspec: torch.Tensor, D: Optional[torch.Tensor],
              g1: Optional[torch.Tensor], g2: Optional[torch.Tensor],
              N: int, N1: int, N2: int, N3: int, three_pass: bool, causal: bool, lke: int, off: int,
              need_du: bool, need_dk: bool
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    with launch_device(u.device):
        return _fftconv_bwd(u, dy, kspec, D, g1, g2, Plan(N, N1, N2, N3, three_pass), causal, lke,
                            off, need_du, need_dk)


def _bwd_fake(u, dy, kspec, D, g1, g2, N, N1, N2, N3, three_pass, causal, lke, off, need_du, need_dk):
    H = u.shape[1]
    return (torch.empty_like(u) if need_du else u.new_empty(0),
            kspec.new_empty(H, lke) if need_dk else u.new_empty(0),
            kspec.new_empty(H) if D is not None else u.new_empty(0),
            torch.empty_like(g1) if (g1 is not None and need_du) else u.new_empty(0),
            torch.empty_like(g2) if g2 is not None else u.new_empty(0))


def register_ops(namespace: str = "neuroconv", kind: Optional[str] = None):
    """Register ``<namespace>::flashbutterfly_fwd`` and ``_bwd`` as ``triton_op`` or
    ``custom_op`` (``kind``; default :data:`neuroconv.kernels._common.OPS_KIND`).

    Done once at import for ``neuroconv``; tests register the other kind under another
    namespace to check both."""
    from . import _common

    kind = kind or _common.OPS_KIND
    return (define_op(f"{namespace}::flashbutterfly_fwd", _fwd_impl, _fwd_fake, kind),
            define_op(f"{namespace}::flashbutterfly_bwd", _bwd_impl, _bwd_fake, kind))


_fwd_op, _bwd_op = register_ops()


# ============================================================================ autograd


def _contig(t):
    return None if t is None else t.contiguous()


def _taps(L: int, Lk: int, causal: bool) -> tuple[int, int, int]:
    """(lke, off, lead): effective taps, lag-zero index in them, first effective tap in k."""
    if causal:
        return min(Lk, L), 0, 0
    M = (Lk + 1) // 2
    Me = min(M, L)
    return 2 * Me - 1, Me - 1, M - Me


class FFTConvFn(torch.autograd.Function):
    """Autograd wrapper: spectrum in torch, forward/backward in the fused Triton ops."""

    @staticmethod
    def forward(ctx, u, k, kspec, D, g1, g2, causal: bool, N: int, N1: int, N2: int, N3: int,
                three_pass: bool):
        u, D, g1, g2 = _contig(u), _contig(D), _contig(g1), _contig(g2)
        y = torch.ops.neuroconv.flashbutterfly_fwd(u, kspec, D, g1, g2, N, N1, N2, N3, three_pass)
        ctx.save_for_backward(u, kspec, D, g1, g2)
        ctx.meta = (causal, N, N1, N2, N3, three_pass, k.shape[-1], k.dtype)
        return y

    @staticmethod
    def backward(ctx, dy):
        u, kspec, D, g1, g2 = ctx.saved_tensors
        causal, N, N1, N2, N3, three_pass, Lk, k_dtype = ctx.meta
        L = u.shape[-1]
        lke, off, lead = _taps(L, Lk, causal)
        need_du = ctx.needs_input_grad[0] or ctx.needs_input_grad[4]
        need_dk = ctx.needs_input_grad[1]
        du, dk, dD, dg1, dg2 = torch.ops.neuroconv.flashbutterfly_bwd(
            u, dy.contiguous(), kspec, D, g1, g2, N, N1, N2, N3, three_pass, causal, lke, off,
            need_du, need_dk)
        if need_dk:
            dk = torch.nn.functional.pad(dk, (lead, Lk - lke - lead)).to(k_dtype)
        else:
            dk = None
        return (du if ctx.needs_input_grad[0] else None, dk, None,
                dD.to(D.dtype) if D is not None and ctx.needs_input_grad[3] else None,
                dg1 if g1 is not None and ctx.needs_input_grad[4] else None,
                dg2 if g2 is not None and ctx.needs_input_grad[5] else None,
                None, None, None, None, None, None)


def _check_gate(name, g, u):
    if g is None:
        return
    if not isinstance(g, torch.Tensor) or g.shape != u.shape:
        raise ValueError(
            f"fftconv: `{name}` must be a tensor shaped like u {tuple(u.shape)} or None; got "
            f"{tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__}.")
    if g.device != u.device:
        raise ValueError(f"fftconv: `{name}` must be on u's device ({u.device}); got {g.device}.")
    if not g.is_floating_point():
        raise TypeError(f"fftconv: `{name}` must be a floating-point tensor; got {g.dtype}.")


def fftconv_fn(u, k, D=None, *, causal=True, g1=None, g2=None, max_onchip=None):
    """FlashButterfly long convolution, optionally gated; the Triton twin of ``fftconv``.

    Semantics are those of :func:`neuroconv.fftconv` (causal or centred, linear not
    circular, kernels truncated or zero-padded to the input, D skip), with optional
    elementwise gates around it (the H3/Hyena form)::

        v = u * g1                                    (g1 = 1 when None)
        y = (fftconv(v, k, causal=causal) + D * v) * g2   (g2 = 1 when None)

    Runs on CUDA tensors, or on CPU tensors under ``TRITON_INTERPRET=1`` (tests).
    Gradients flow to ``u``, ``k``, ``D``, ``g1`` and ``g2``.

    Arguments:
        u: ``(B, H, L)`` input, float32/float16/bfloat16/float64, any ``L >= 1``.
        k: ``(H, Lk)`` kernels, any ``Lk >= 1`` (odd when ``causal=False``; tap
            ``(Lk-1)/2`` is lag zero).
        D: ``(H,)`` skip weights, or ``None``.
        causal: causal (``True``) or centred convolution.
        g1: ``(B, H, L)`` gate on the input, or ``None``.
        g2: ``(B, H, L)`` gate on the output, or ``None``.
        max_onchip: largest FFT size done in one fused pass (power of two >= 512);
            default :func:`max_onchip_for` the dtypes (:data:`MAX_ONCHIP`). Larger sizes
            take the three-pass path.

    Returns:
        ``y``: ``(B, H, L)`` in ``u``'s dtype.
    """
    check_inputs(u, k, D, causal)
    _check_gate("g1", g1, u)
    _check_gate("g2", g2, u)
    require_triton(u.device)
    L = int(u.shape[-1])
    cdt = compute_dtype(u.dtype, k.dtype)
    plan = make_plan(L, max_onchip or max_onchip_for(u.dtype, cdt))
    kspec = _cached_spectrum(k, L, bool(causal), plan, cdt)
    return FFTConvFn.apply(u, k, kspec, D, g1, g2, bool(causal), plan.N, plan.N1, plan.N2,
                           plan.N3, plan.three_pass)
