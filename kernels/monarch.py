"""Learned-butterfly FFT convolution: FlashButterfly with the DFT factors as inputs.

``butterfly_conv_fn(u, k, D, dft, idft, causal=...)`` computes what
:class:`neuroconv.ButterflyFFTConv` computes, with its learnable Monarch factors::

    X  = F1 @ x            x[a, b] = u_pad[a n2 + b]         (n = n1 n2)
    C  = (X * T) @ F2^T    spectrum, bin s = k1 + n1 j at C[k1, j]
    Y  = C * K             K: the same transform of the zero-padded kernel (torch)
    P  = (G1 @ Z) * S      Z[a, b] = Y[a n2 + b]             (the inverse's own factors)
    y  = Re(P @ G2^T)[s]   for s = off + t, t < L;   y += D u

The factors are arbitrary complex matrices once they have trained away from the DFT,
so nothing is real or Hermitian: every block is a full complex ``tl.dot`` (four real
dots). One program per ``(h, batch chunk)`` keeps the kernel's spectrum and the factor
tiles on chip and loops over its rows; ``u`` and ``y`` cross HBM once. Between the two
transforms the spectrum changes tiling (``k1 + n1 j`` to ``a n2 + b``), which for
``n1 != n2`` is a general permutation: it goes through a per-program scratch row
(``2 n`` values, L2-resident) between two barriers.

Limits: ``n1, n2`` are padded to powers of two >= 16 (tiles ``P1 x P2``); the kernel
supports ``P1 * P2 <= MAX_TILE``: 8192 for float16/bfloat16 inputs, 4096 (64 x 64: e.g.
``l_max = 2048``, n = 4096) for float32 and float64, and raises
beyond that (``ButterflyFFTConv(backend="auto")`` then uses its torch path). Compute is
float32 (float64 when the factors are float64), dots as in :mod:`.flashbutterfly`.

The backward (grid-stride over rows) recomputes the forward per row and walks back
through it, adding each factor's and the spectrum's gradient to float32 accumulators with
atomics as soon as it is known (so few tiles are live at once; summation order, hence
the last bits, is not deterministic on GPU).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from neuroconv.contract import check_inputs, effective_kernel

from .availability import require_triton
from ._common import (_cdot, _cmul, _cmul_conj, _ld2, _ld2t, define_op, device_max_programs, dot_precision,
                      launch, launch_device, num_warps_for)

__all__ = ["butterfly_conv_fn", "butterfly_conv_ref", "MAX_TILE", "supported", "tile_limit"]

#: Largest padded tile ``P1 * P2`` the fused learned-butterfly kernel takes, by compute
#: class (as in :data:`neuroconv.kernels.flashbutterfly.MAX_ONCHIP`): the largest whose
#: forward and backward fit sm_90 shared memory when compiled offline
#: (``python -m neuroconv.kernel_tools.resources``). tf32x3 dots on float32 inputs need more
#: shared memory than the TF32 dots used for half inputs.
MAX_TILE = {"half": 8192, "float32": 4096, "float64": 4096}


def _p2(n: int) -> int:
    return max(16, 1 << max(0, n - 1).bit_length())


def _cls(in_dtype: torch.dtype, cdt: torch.dtype) -> str:
    if cdt == torch.float64:
        return "float64"
    return "float32" if in_dtype == torch.float32 else "half"


def tile_limit(cls: str) -> tuple[int, int]:
    """The largest ``(P1, P2)`` tile (``P1 <= P2``) for a compute class."""
    total = MAX_TILE[cls]
    p1 = 1 << (total.bit_length() - 1) // 2
    return p1, total // p1


def supported(n1: int, n2: int, in_dtype: torch.dtype = torch.float32,
              factor_dtype: torch.dtype = torch.float32) -> bool:
    """Whether the fused kernel handles a Monarch transform of size ``n1 * n2`` for inputs
    of ``in_dtype`` and factors of ``factor_dtype``."""
    return _p2(n1) * _p2(n2) <= MAX_TILE[_cls(in_dtype, factor_dtype)]


# ============================================================================ reference


def _monarch(x: torch.Tensor, F1, T, F2, n1: int, n2: int) -> torch.Tensor:
    """MonarchDFT.forward on complex factors: ``x`` (..., n) -> (..., n) natural order."""
    x = x.reshape(*x.shape[:-1], n1, n2)
    a = torch.einsum("kn,...nm->...km", F1, x) * T
    b = torch.einsum("jm,...km->...jk", F2, a)
    return b.reshape(*b.shape[:-2], n1 * n2)


def _complex(factors):
    return tuple(torch.view_as_complex(f) for f in factors)


def butterfly_conv_ref(u, k, D, dft, idft, *, causal=True):
    """Plain-PyTorch twin of :func:`butterfly_conv_fn` (the ButterflyFFTConv math)."""
    F1, T, F2 = _complex(dft)
    n1, n2 = T.shape
    n = n1 * n2
    L = u.shape[-1]
    k_eff, off = effective_kernel(k, L, causal)
    cdt = F1.dtype
    pad = lambda t: F.pad(t.to(F1.real.dtype), (0, n - t.shape[-1])).to(cdt)  # noqa: E731
    Y = _monarch(pad(u), F1, T, F2, n1, n2) * _monarch(pad(k_eff), F1, T, F2, n1, n2)
    G1, S, G2 = _complex(idft)
    y = _monarch(Y, G1, S, G2, n1, n2).real[..., off : off + L]
    if D is not None:
        y = y + u.to(y.dtype) * D.to(y.dtype)[:, None]
    return y.to(u.dtype)


# ============================================================================ kernels


@triton.jit
def _ldc(ptr, R: tl.constexpr, C: tl.constexpr):
    """(re, im) of a ``[2, R, C]`` factor tile."""
    return _ld2(ptr, R, C), _ld2(ptr, R, C, R * C)


@triton.jit
def _ldc_h(ptr, R: tl.constexpr, C: tl.constexpr):
    """(re, im) of the conjugate transpose of a ``[2, C, R]`` factor tile, as ``(R, C)``."""
    return _ld2t(ptr, R, C), -_ld2t(ptr, R, C, R * C)


@triton.jit
def _dft_side(x, F1, T, F2, P1: tl.constexpr, P2: tl.constexpr, PREC: tl.constexpr):
    """x (real ``[a, b]``) -> A = F1 x, A2 = A T, C = A2 F2t (bin k1 + n1 j at [k1, j])."""
    f1r, f1i = _ldc(F1, P1, P1)
    ar = tl.dot(f1r, x, input_precision=PREC, out_dtype=x.dtype)
    ai = tl.dot(f1i, x, input_precision=PREC, out_dtype=x.dtype)
    tr, ti = _ldc(T, P1, P2)
    a2r, a2i = _cmul(ar, ai, tr, ti)
    f2r, f2i = _ldc(F2, P2, P2)
    cr, ci = _cdot(a2r, a2i, f2r, f2i, PREC)
    return ar, ai, a2r, a2i, cr, ci


@triton.jit
def _permute(scr, vr, vi, src, dst, inb, P: tl.constexpr):
    """Move a complex tile from natural positions ``src`` to ``dst`` via scratch."""
    tl.debug_barrier()  # nobody still reads the previous contents
    tl.store(scr + src, vr, mask=inb)
    tl.store(scr + P + src, vi, mask=inb)
    tl.debug_barrier()
    return tl.load(scr + dst, mask=inb, other=0.0), tl.load(scr + P + dst, mask=inb, other=0.0)


@triton.jit
def _atomic_c(ptr, idx, vr, vi, P: tl.constexpr):
    tl.atomic_add(ptr + idx, vr, sem="relaxed")
    tl.atomic_add(ptr + P + idx, vi, sem="relaxed")


@triton.jit
def _monarch_fwd_kernel(U, K, D, Y, SCR, F1, T, F2, G1, S, G2, B, L, H, BPC, OFF, N1, N2,
                        P1: tl.constexpr, P2: tl.constexpr, HAS_D: tl.constexpr, PREC: tl.constexpr):
    """One program per ``(h, batch chunk)``; the spectrum of k[h] stays on chip."""
    CDT: tl.constexpr = F1.dtype.element_ty
    PP: tl.constexpr = P1 * P2
    h = tl.program_id(0)
    chunk = tl.program_id(1)
    a = tl.arange(0, P1)[:, None]
    c = tl.arange(0, P2)[None, :]
    inb = (a < N1) & (c < N2)
    s_in = a * N2 + c  # X[a, b], Z[a, b]
    s_sp = a + N1 * c  # C[k1, j], Q[k1, j]
    kb = h.to(tl.int64) * (2 * PP)
    kr, ki = _ld2(K + kb, P1, P2), _ld2(K + kb, P1, P2, PP)
    d = 0.0
    if HAS_D:
        d = tl.load(D + h).to(CDT)
    scr = SCR + (chunk.to(tl.int64) * H + h) * (2 * PP)
    for i in range(0, BPC):
        b = chunk * BPC + i
        lim = tl.where(b < B, L, 0)
        base = (b.to(tl.int64) * H + h) * L
        x = tl.load(U + base + s_in, mask=inb & (s_in < lim), other=0.0).to(CDT)
        ar, ai, a2r, a2i, cr, ci = _dft_side(x, F1, T, F2, P1, P2, PREC)
        yr, yi = _cmul(cr, ci, kr, ki)
        zr, zi = _permute(scr, yr, yi, s_sp, s_in, inb, PP)
        g1r, g1i = _ldc(G1, P1, P1)
        pr, pi = _cdot(g1r, g1i, zr, zi, PREC)
        sr, si = _ldc(S, P1, P2)
        pr, pi = _cmul(pr, pi, sr, si)
        g2r, g2i = _ldc(G2, P2, P2)
        q = tl.dot(pr, g2r, input_precision=PREC, out_dtype=CDT)
        q = tl.dot(-pi, g2i, acc=q, input_precision=PREC, out_dtype=CDT)
        t = s_sp - OFF
        om = inb & (t >= 0) & (t < lim)
        if HAS_D:
            q += d * tl.load(U + base + t, mask=om, other=0.0).to(CDT)
        tl.store(Y + base + t, q.to(Y.dtype.element_ty), mask=om)


@triton.jit
def _monarch_bwd_kernel(U, DY, K, D, SCR, DU, DK, DD, DF1, DT, DF2, DG1, DS, DG2,
                        F1, T, F2, G1, S, G2, ROWS, PER_PROG, L, H, OFF, N1, N2,
                        P1: tl.constexpr, P2: tl.constexpr, HAS_D: tl.constexpr,
                        PREC: tl.constexpr):
    """Grid-stride over rows ``(b, h)``. Recomputes the forward, then walks back through
    the inverse transform, the spectrum product and the forward transform, adding each
    gradient to its (fp32/fp64) accumulator with atomics as soon as it is known, so few
    tiles are live at once. The forward-DFT side is recomputed rather than kept."""
    CDT: tl.constexpr = F1.dtype.element_ty
    PP: tl.constexpr = P1 * P2
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    a = tl.arange(0, P1)[:, None]
    c = tl.arange(0, P2)[None, :]
    inb = (a < N1) & (c < N2)
    s_in = a * N2 + c
    s_sp = a + N1 * c
    i11 = tl.arange(0, P1)[:, None] * P1 + tl.arange(0, P1)[None, :]
    i12 = a * P2 + c
    i22 = tl.arange(0, P2)[:, None] * P2 + tl.arange(0, P2)[None, :]
    scr = SCR + pid.to(tl.int64) * (2 * PP)
    for i in range(0, PER_PROG):
        row = pid + i * nprog
        lim = tl.where(row < ROWS, L, 0)  # rows past the end read zeros, add zeros
        h = row % H
        base = row.to(tl.int64) * L
        kb = h.to(tl.int64) * (2 * PP)
        xm = inb & (s_in < lim)
        x = tl.load(U + base + s_in, mask=xm, other=0.0).to(CDT)
        # ---- forward up to Q = P2 @ G2t
        ar, ai, a2r, a2i, cr, ci = _dft_side(x, F1, T, F2, P1, P2, PREC)
        kr, ki = _ld2(K + kb, P1, P2), _ld2(K + kb, P1, P2, PP)
        yr, yi = _cmul(cr, ci, kr, ki)
        zr, zi = _permute(scr, yr, yi, s_sp, s_in, inb, PP)
        g1r, g1i = _ldc(G1, P1, P1)
        pr, pi = _cdot(g1r, g1i, zr, zi, PREC)
        sr, si = _ldc(S, P1, P2)
        p2r, p2i = _cmul(pr, pi, sr, si)
        # ---- y = Re Q[off + t]:  dQ real
        t = s_sp - OFF
        dq = tl.load(DY + base + t, mask=inb & (t >= 0) & (t < lim), other=0.0).to(CDT)
        _atomic_c(DG2, i22, tl.dot(tl.trans(p2r), dq, input_precision=PREC, out_dtype=CDT),
                  -tl.dot(tl.trans(p2i), dq, input_precision=PREC, out_dtype=CDT), P2 * P2)
        g2hr, g2hi = _ldc_h(G2, P2, P2)  # conj(G2t)^T
        dp2r = tl.dot(dq, g2hr, input_precision=PREC, out_dtype=CDT)
        dp2i = tl.dot(dq, g2hi, input_precision=PREC, out_dtype=CDT)
        # ---- P2 = P * S
        er, ei = _cmul_conj(dp2r, dp2i, pr, pi)
        _atomic_c(DS, i12, er, ei, PP)
        dpr, dpi = _cmul_conj(dp2r, dp2i, sr, si)
        # ---- P = G1 @ Z
        er, ei = _cdot(dpr, dpi, tl.trans(zr), -tl.trans(zi), PREC)
        _atomic_c(DG1, i11, er, ei, P1 * P1)
        g1hr, g1hi = _ldc_h(G1, P1, P1)
        dzr, dzi = _cdot(g1hr, g1hi, dpr, dpi, PREC)
        dyr, dyi = _permute(scr, dzr, dzi, s_in, s_sp, inb, PP)
        # ---- Y = C * K
        er, ei = _cmul_conj(dyr, dyi, cr, ci)
        _atomic_c(DK + kb, i12, er, ei, PP)
        dcr, dci = _cmul_conj(dyr, dyi, kr, ki)
        # ---- C = A2 @ F2t
        er, ei = _cdot(tl.trans(a2r), -tl.trans(a2i), dcr, dci, PREC)
        _atomic_c(DF2, i22, er, ei, P2 * P2)
        f2hr, f2hi = _ldc_h(F2, P2, P2)
        da2r, da2i = _cdot(dcr, dci, f2hr, f2hi, PREC)
        # ---- A2 = A * T
        er, ei = _cmul_conj(da2r, da2i, ar, ai)
        _atomic_c(DT, i12, er, ei, PP)
        tr, ti = _ldc(T, P1, P2)
        dar, dai = _cmul_conj(da2r, da2i, tr, ti)
        # ---- A = F1 @ x, x real
        xt = tl.trans(x)
        _atomic_c(DF1, i11, tl.dot(dar, xt, input_precision=PREC, out_dtype=CDT),
                  tl.dot(dai, xt, input_precision=PREC, out_dtype=CDT), P1 * P1)
        f1r, f1i = _ldc(F1, P1, P1)
        dx = tl.dot(tl.trans(f1r), dar, input_precision=PREC, out_dtype=CDT)
        dx = tl.dot(tl.trans(f1i), dai, acc=dx, input_precision=PREC, out_dtype=CDT)
        if HAS_D:
            dyn = tl.load(DY + base + s_in, mask=xm, other=0.0).to(CDT)
            dx += tl.load(D + h).to(CDT) * dyn
            tl.atomic_add(DD + h, tl.sum(tl.sum(dyn * x, axis=1), axis=0), sem="relaxed")
        tl.store(DU + base + s_in, dx.to(DU.dtype.element_ty), mask=xm)


# ============================================================================ launchers


def _grid(B: int, H: int, device) -> tuple[int, int]:
    nck = max(1, min(B, -(-device_max_programs(device) // H)))
    bpc = -(-B // nck)
    return -(-B // bpc), bpc


def _monarch_fwd(u, kspec, D, tiles, n1, n2, off):
    B, H, L = u.shape
    F1, T, F2, G1, S, G2 = tiles
    P1, P2 = T.shape[-2:]
    cdt = F1.dtype
    y = torch.empty_like(u, memory_format=torch.contiguous_format)
    if B * H == 0:
        return y
    nck, bpc = _grid(B, H, u.device)
    scr = torch.empty(nck * H, 2, P1 * P2, device=u.device, dtype=cdt)
    launch(_monarch_fwd_kernel, (H, nck), u, kspec, D if D is not None else u, y, scr, F1, T, F2, G1, S, G2,
           B, L, H, bpc, off, n1, n2, P1=P1, P2=P2, HAS_D=D is not None,
           PREC=dot_precision(u.dtype, cdt), num_warps=num_warps_for(P1 * P2))
    return y


def _monarch_bwd(u, dy, kspec, D, tiles, n1, n2, off):
    B, H, L = u.shape
    F1, T, F2, G1, S, G2 = tiles
    P1, P2 = T.shape[-2:]
    cdt = F1.dtype
    du = torch.empty_like(u, memory_format=torch.contiguous_format)
    dts = [torch.zeros_like(t) for t in tiles]
    dk = torch.zeros_like(kspec)
    dD = torch.zeros(H, device=u.device, dtype=cdt) if D is not None else u.new_empty(0)
    if B * H == 0:
        return (du, dk, dD, *dts)
    nprog = min(B * H, 4 * device_max_programs(u.device))
    scr = torch.empty(nprog, 2, P1 * P2, device=u.device, dtype=cdt)
    launch(_monarch_bwd_kernel, (nprog,), u, dy, kspec, D if D is not None else u, scr, du, dk, dD, *dts,
           F1, T, F2, G1, S, G2, B * H, -(-B * H // nprog), L, H, off, n1, n2,
           P1=P1, P2=P2,
           HAS_D=D is not None, PREC=dot_precision(u.dtype, cdt),
           num_warps=num_warps_for(P1 * P2))
    return (du, dk, dD, *dts)


def _fwd_impl(u: torch.Tensor, kspec: torch.Tensor, D: Optional[torch.Tensor], F1: torch.Tensor,
              T: torch.Tensor, F2: torch.Tensor, G1: torch.Tensor, S: torch.Tensor, G2: torch.Tensor,
              n1: int, n2: int, off: int) -> torch.Tensor:
    with launch_device(u.device):
        return _monarch_fwd(u, kspec, D, (F1, T, F2, G1, S, G2), n1, n2, off)


def _fwd_fake(u, kspec, D, F1, T, F2, G1, S, G2, n1, n2, off):
    return torch.empty_like(u, memory_format=torch.contiguous_format)


def _bwd_impl(u: torch.Tensor, dy: torch.Tensor, kspec: torch.Tensor, D: Optional[torch.Tensor],
              F1: torch.Tensor, T: torch.Tensor, F2: torch.Tensor, G1: torch.Tensor, S: torch.Tensor,
              G2: torch.Tensor, n1: int, n2: int, off: int) -> list[torch.Tensor]:
    with launch_device(u.device):
        return list(_monarch_bwd(u, dy, kspec, D, (F1, T, F2, G1, S, G2), n1, n2, off))


def _bwd_fake(u, dy, kspec, D, F1, T, F2, G1, S, G2, n1, n2, off):
    H = u.shape[1]
    return [torch.empty_like(u), torch.empty_like(kspec),
            kspec.new_empty(H) if D is not None else u.new_empty(0),
            *[torch.empty_like(t) for t in (F1, T, F2, G1, S, G2)]]


def register_ops(namespace: str = "neuroconv", kind: Optional[str] = None):
    """Register ``<namespace>::monarch_conv_fwd`` and ``_bwd`` (see
    :func:`neuroconv.kernels.flashbutterfly.register_ops`)."""
    from . import _common

    kind = kind or _common.OPS_KIND
    return (define_op(f"{namespace}::monarch_conv_fwd", _fwd_impl, _fwd_fake, kind),
            define_op(f"{namespace}::monarch_conv_bwd", _bwd_impl, _bwd_fake, kind))


_fwd_op, _bwd_op = register_ops()


# ============================================================================ autograd


class MonarchConvFn(torch.autograd.Function):
    """``y`` from ``u``, the spectrum tile, ``D`` and the six padded factor tiles."""

    @staticmethod
    def forward(ctx, u, kspec, D, F1, T, F2, G1, S, G2, n1: int, n2: int, off: int):
        u = u.contiguous()
        D = None if D is None else D.contiguous()
        y = torch.ops.neuroconv.monarch_conv_fwd(u, kspec, D, F1, T, F2, G1, S, G2, n1, n2, off)
        ctx.save_for_backward(u, kspec, D, F1, T, F2, G1, S, G2)
        ctx.meta = (n1, n2, off)
        return y

    @staticmethod
    def backward(ctx, dy):
        u, kspec, D, *tiles = ctx.saved_tensors
        n1, n2, off = ctx.meta
        du, dk, dD, *dtiles = torch.ops.neuroconv.monarch_conv_bwd(
            u, dy.contiguous(), kspec, D, *tiles, n1, n2, off)
        return (du, dk, dD.to(D.dtype) if D is not None else None, *dtiles, None, None, None)


def _tile(f: torch.Tensor, P: tuple[int, int], cdt, transpose: bool = False) -> torch.Tensor:
    """Complex ``(r, c)`` -> real ``[2, Pr, Pc]`` (re, im), zero-padded (differentiable)."""
    if transpose:
        f = f.transpose(0, 1)
    t = torch.stack([f.real, f.imag]).to(cdt)
    return F.pad(t, (0, P[1] - t.shape[-1], 0, P[0] - t.shape[-2])).contiguous()


def butterfly_conv_fn(u, k, D, dft, idft, *, causal=True):
    """Learned-butterfly convolution through the fused Triton kernel.

    Same result as :class:`neuroconv.ButterflyFFTConv` (forward transform ``dft``,
    inverse ``idft``; at the exact-DFT initialisation this equals ``fftconv``).

    Arguments:
        u: ``(B, H, L)`` input; ``L <= n / 2`` for a linear convolution.
        k: ``(H, Lk)`` kernels (odd ``Lk`` when ``causal=False``), as for ``fftconv``.
        D: ``(H,)`` skip weights, or ``None``.
        dft: ``(f1 (n1, n1, 2), twiddle (n1, n2, 2), f2 (n2, n2, 2))``, real views of the
            complex forward factors (``MonarchDFT`` parameters).
        idft: the same for the inverse transform.
        causal: causal or centred convolution.

    Returns:
        ``y``: ``(B, H, L)`` in ``u``'s dtype. Gradients reach ``u``, ``k``, ``D`` and all
        six factor tensors.
    """
    check_inputs(u, k, D, causal)
    require_triton(u.device)
    F1c, Tc, F2c = _complex(dft)
    G1c, Sc, G2c = _complex(idft)
    n1, n2 = Tc.shape
    if not supported(n1, n2, u.dtype, F1c.real.dtype):
        raise ValueError(
            f"butterfly_conv_fn: transform size {n1}x{n2} pads to {_p2(n1)}x{_p2(n2)} tiles, "
            f"above the fused kernel's {MAX_TILE[_cls(u.dtype, F1c.real.dtype)]} for {u.dtype} "
            "inputs; use backend='torch' for this l_max.")
    L = u.shape[-1]
    k_eff, off = effective_kernel(k, L, causal)
    n = n1 * n2
    cdt = F1c.real.dtype
    P = (_p2(n1), _p2(n2))
    K = _monarch(F.pad(k_eff.to(cdt), (0, n - k_eff.shape[-1])).to(F1c.dtype), F1c, Tc, F2c, n1, n2)
    K = K.reshape(-1, n2, n1).transpose(1, 2)  # (H, k1, j): bin k1 + n1 j
    kspec = F.pad(torch.stack([K.real, K.imag], 1), (0, P[1] - n2, 0, P[0] - n1)).contiguous()
    tiles = (_tile(F1c, (P[0], P[0]), cdt), _tile(Tc, P, cdt), _tile(F2c, (P[1], P[1]), cdt, True),
             _tile(G1c, (P[0], P[0]), cdt), _tile(Sc, P, cdt), _tile(G2c, (P[1], P[1]), cdt, True))
    return MonarchConvFn.apply(u, kspec, D, *tiles, n1, n2, off)
