"""What the kernels launch and compile, described for tools that need no GPU.

The validation tooling (:mod:`neuroconv.kernel_tools`: the parallel precompile, the
offline compile, the large-offset dry run, the validation command) drives the kernels
through this module only, so that it needs none of their private names:

- :func:`fftconv_launches`, :func:`butterfly_launches`: the launchers of a call, run on
  *meta* tensors of the real shapes (no memory, no GPU work), as ``fftconv_fn`` and
  ``butterfly_conv_fn`` would run them;
- :func:`launch_hook`: intercept every launch (:func:`launch` is the one launch path);
- :func:`device_programs`: what the launchers believe the device holds while sizing grids;
- :func:`compile_configs`: each kernel's compile configuration (signature, constexprs,
  warps) at the sizes the launchers use;
- :func:`compiled_kernels`: the kernels compiled in this process and their resources;
- :func:`settings`: how the ops register and the ``tl.dot`` precisions in force;
  :func:`dot_precisions` changes the latter for a block.
"""

from __future__ import annotations

import contextlib

import torch

from ._common import OPS_KIND, dot_precisions, launch, launch_hook

__all__ = ["fftconv_launches", "butterfly_launches", "launch", "launch_hook", "device_programs",
           "compile_configs", "compiled_kernels", "settings", "dot_precisions", "OPS_KIND"]


def settings() -> dict:
    """The registration kind of the ops and the dot precisions and on-chip limits in
    force now: ``ops``, ``dot_precision_fp32``, ``dot_precision_half``, ``max_onchip``."""
    from . import _common
    from . import flashbutterfly as fb

    return dict(ops=_common.OPS_KIND, dot_precision_fp32=_common.FP32_PRECISION,
                dot_precision_half=_common.HALF_PRECISION, max_onchip=dict(fb.MAX_ONCHIP))


@contextlib.contextmanager
def device_programs(n: int | None):
    """Within this block the launchers size their grids for a device that holds ``n``
    programs at once (``None``: leave them alone). Meta tensors would get the CPU value."""
    from . import flashbutterfly as fb
    from . import monarch as mk

    if n is None:
        yield
        return
    saved = [(mod, mod.device_max_programs) for mod in (fb, mk)]
    for mod, _ in saved:
        mod.device_max_programs = lambda device, n=n: n
    try:
        yield
    finally:
        for mod, f in saved:
            mod.device_max_programs = f


# ----------------------------------------------------------------------------- launches on meta tensors


def _meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, device="meta", dtype=dtype)


def fftconv_launches(B: int, H: int, L: int, causal: bool = True, *, gated: bool = False, with_D: bool = True,
                     dtype=torch.float32, Lk: int | None = None, max_onchip: int | None = None,
                     backward: bool = True, k_dtype=None) -> dict:
    """Run the FlashButterfly launchers as ``fftconv_fn`` would for these arguments (forward,
    and the backward with every gradient), on meta tensors. Returns the plan's summary.
    Call it under :func:`launch_hook`: meta tensors hold no data, so a launch that
    reaches Triton fails."""
    from . import flashbutterfly as fb
    from ._common import compute_dtype

    Lk = Lk or (L if causal else 2 * L - 1)
    cdt = compute_dtype(dtype, k_dtype or dtype)
    plan = fb.make_plan(L, max_onchip or fb.max_onchip_for(dtype, cdt))
    u = _meta(B, H, L, dtype=dtype)
    g1, g2 = (_meta(B, H, L, dtype=dtype), _meta(B, H, L, dtype=dtype)) if gated else (None, None)
    D = _meta(H, dtype=dtype) if with_D else None
    kspec = _meta(H, 2, plan.half, plan.M, dtype=cdt)
    fb._fftconv_fwd(u, kspec, D, g1, g2, plan)
    if backward:
        lke, off, _ = fb._taps(L, Lk, causal)
        fb._fftconv_bwd(u, _meta(B, H, L, dtype=dtype), kspec, D, g1, g2, plan, causal, lke, off, True, True)
    return dict(plan=f"N={plan.N} N1={plan.N1} N2={plan.N2} N3={plan.N3} "
                     f"{'three-pass' if plan.three_pass else 'on chip'}")


def butterfly_launches(B: int, H: int, L: int, n1: int, n2: int, causal: bool = True, *, with_D: bool = True,
                       dtype=torch.float32, backward: bool = True,
                       bwd_rows_per_program: int | None = None) -> dict:
    """Run the learned-butterfly launchers as ``butterfly_conv_fn`` would for a transform
    of size ``n1 * n2``, on meta tensors. ``bwd_rows_per_program``: size the backward
    grid so that each program strides over this many rows (the dry run's shortcut; the
    real grid is kept otherwise). Call it under :func:`launch_hook`, as
    :func:`fftconv_launches`."""
    from . import monarch as mk

    n = n1 * n2
    P1, P2 = mk._p2(n1), mk._p2(n2)
    cdt = torch.float64 if dtype == torch.float64 else torch.float32
    u = _meta(B, H, L, dtype=dtype)
    D = _meta(H, dtype=dtype) if with_D else None
    kspec = _meta(H, 2, P1, P2, dtype=cdt)
    tiles = tuple(_meta(2, a, b, dtype=cdt) for a, b in ((P1, P1), (P1, P2), (P2, P2)) * 2)
    off = 0 if causal else L - 1
    mk._monarch_fwd(u, kspec, D, tiles, n1, n2, off)
    if backward:
        real = mk.device_max_programs
        if bwd_rows_per_program:
            mk.device_max_programs = lambda device: max(1, B * H // (4 * bwd_rows_per_program))
        try:
            mk._monarch_bwd(u, _meta(B, H, L, dtype=dtype), kspec, D, tiles, n1, n2, off)
        finally:
            mk.device_max_programs = real
    return dict(plan=f"n={n} ({n1} x {n2}), tiles {P1} x {P2}")


# ----------------------------------------------------------------------------- compile configurations

_PTR = {"half": "*bf16", "float32": "*fp32", "float64": "*fp64"}
_PREC = {"half": "tf32", "float32": "tf32x3", "float64": "ieee"}


def compile_configs(which: str = "limits", classes=("half", "float32", "float64")) -> list[tuple]:
    """(name, jit kernel, signature, constexprs, num_warps) at the sizes the launchers use.

    ``which``: ``"limits"`` (the largest size of each kernel: the shared-memory check),
    ``"all"`` (also every smaller on-chip size) or ``"small"`` (every kernel and code path
    at a small size: a quick does-it-compile check, as run in CI).
    """
    from . import flashbutterfly as fb
    from . import monarch as mk
    from ._common import num_warps_for

    out = []
    small = which == "small"
    for cls in classes:
        io = _PTR[cls]
        cd = "*fp64" if cls == "float64" else "*fp32"
        cdt = torch.float64 if cls == "float64" else torch.float32
        prec = _PREC[cls]
        tabs = dict(F1=cd, T=cd, F2=cd, F3=cd, T2=cd, G=cd)
        top = fb.MAX_ONCHIP[cls]
        if small:
            sizes = [1024]
        elif which == "all":
            sizes = [n for n in (512, 1024, 2048, 4096, 8192, 16384) if n <= top]
        else:
            sizes = [top]
        for N in sizes:
            p = fb.make_plan(N // 2, top)
            nw = num_warps_for(p.N // 2)
            sig = dict(X1=io, X2=io, Y1=io, Y2=io, C1=io, C2=io, K=cd, D=io, **tabs, L="i32", H="i32")
            c = dict(HALF=p.half, N2=p.N2, N3=p.N3, HAS_X2=True, HAS_D=True, HAS_C1=True, HAS_Y2=True,
                     CONJ_K=True, PREC=prec)
            out.append((f"{cls} conv N={N}", fb._fb_conv_kernel, sig, c, nw))
            sig = dict(U=io, G1=io, DY=io, G2=io, DK=cd, DD=cd, **tabs, B="i32", L="i32", H="i32",
                       BPC="i32", LKE="i32", OFF="i32")
            c = dict(HALF=p.half, N2=p.N2, N3=p.N3, HAS_G1=True, HAS_G2=True, NEED_DK=True, NEED_DD=True,
                     CAUSAL=False, PREC=prec)
            out.append((f"{cls} dk N={N}", fb._fb_dk_kernel, sig, c, nw))
        # three-pass at its largest inner size (small: a 16 x 16 inner transform)
        p = fb.make_plan(8000, 1024) if small else fb.make_plan(1 << 17, top)
        half, Q = p.half, p.M
        BQ, R, RX = fb._outer_block(p), fb._inner_rows(p, cdt), fb._inner_rows(p, cdt, xcorr=True)
        RB = min(half, fb.OUTER_ROWS)
        name = f"{cls} three-pass N={p.N} P={p.N1} Q={Q}"
        out.append((f"{name} outer_fwd", fb._tp_outer_fwd_kernel,
                    dict(X=io, XG=io, W=cd, F1=cd, T=cd, L="i32"),
                    dict(HALF=half, Q=Q, BQ=BQ, RB=RB, HAS_XG=True, PREC=prec), num_warps_for(half * BQ)))
        out.append((f"{name} inner R={R}", fb._tp_inner_kernel,
                    dict(W=cd, K=cd, F2=cd, F3=cd, T2=cd, H="i32"),
                    dict(HALF=half, R=R, N2=p.N2, N3=p.N3, CONJ_K=True, PREC=prec), num_warps_for(R * Q)))
        out.append((f"{name} xcorr R={RX}", fb._tp_xcorr_kernel,
                    dict(WV=cd, WD=cd, OUT=cd, F2=cd, F3=cd, T2=cd, B="i32", H="i32", BPC="i32"),
                    dict(HALF=half, R=RX, N2=p.N2, N3=p.N3, PREC=prec), num_warps_for(RX * Q)))
        for taps in (False, True):
            rbt = min(2 * half if taps else half, fb.OUTER_ROWS)
            out.append((f"{name} outer_inv taps={taps}", fb._tp_outer_inv_kernel,
                        dict(W=cd, Y1=cd if taps else io, Y2=io, A1=io, A2=io, C1=io, C2=io, D=io, G=cd, T=cd,
                             L="i32", H="i32", LKE="i32", OFF="i32"),
                        dict(HALF=half, Q=Q, BQ=BQ, RB=rbt, TAPS=taps, CAUSAL=False, HAS_D=True, HAS_A2=True,
                             HAS_C1=True, HAS_Y2=True, PREC=prec),
                        num_warps_for((rbt if taps else half) * BQ)))
        # learned butterfly at its largest tile
        P1, P2 = (16, 32) if small else mk.tile_limit(cls)
        ints = dict(L="i32", H="i32", OFF="i32", N1="i32", N2="i32")
        fac = dict(F1=cd, T=cd, F2=cd, G1=cd, S=cd, G2=cd)
        out.append((f"{cls} monarch fwd {P1}x{P2}", mk._monarch_fwd_kernel,
                    dict(U=io, K=cd, D=io, Y=io, SCR=cd, **fac, B="i32", BPC="i32", **ints),
                    dict(P1=P1, P2=P2, HAS_D=True, PREC=prec), num_warps_for(P1 * P2)))
        out.append((f"{cls} monarch bwd {P1}x{P2}", mk._monarch_bwd_kernel,
                    dict(U=io, DY=io, K=cd, D=io, SCR=cd, DU=io, DK=cd, DD=cd, DF1=cd, DT=cd, DF2=cd,
                         DG1=cd, DS=cd, DG2=cd, **fac, ROWS="i32", PER_PROG="i32", **ints),
                    dict(P1=P1, P2=P2, HAS_D=True, PREC=prec), num_warps_for(P1 * P2)))
    return out


def compiled_kernels() -> list[dict]:
    """Shared memory, registers and spills of every kernel compiled in this process."""
    from . import flashbutterfly as fb
    from . import monarch as mk

    out = []
    for mod in (fb, mk):
        for name in dir(mod):
            fn = getattr(mod, name)
            caches = getattr(fn, "device_caches", None)
            if not name.endswith("_kernel") or caches is None:
                continue
            for dev_cache in list(caches.values()):
                for key, k in list(dev_cache[0].items()):
                    try:
                        k._init_handles()
                    except Exception:  # noqa: BLE001
                        pass
                    md = k.metadata
                    out.append(dict(kernel=name, config=str(key)[:160], shared=getattr(md, "shared", None),
                                    regs=getattr(k, "n_regs", None), spills=getattr(k, "n_spills", None),
                                    warps=getattr(md, "num_warps", None)))
    return out
