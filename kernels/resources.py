"""Compile the Triton kernels offline for an NVIDIA GPU and check their resources.

No GPU is needed: Triton compiles to PTX and cubin for a named target (default sm_90,
H100). This catches what the CPU interpreter cannot: kernels that do not compile for the
GPU, or that need more shared memory per block than the GPU has (a launch would fail
with "out of resources"). Registers and spill bytes come from ``ptxas -v`` when Triton's
bundled ptxas is found.

    python -m neuroconv.kernels.resources            # the largest configuration of each kernel
    python -m neuroconv.kernels.resources --all      # every on-chip FFT size too
    python -m neuroconv.kernels.resources --small    # every kernel once, small (CI's check)
    python -m neuroconv.kernels.resources --jobs 16 --json resources.json

Run it without ``TRITON_INTERPRET`` set (the interpreter replaces compiled kernels).
:data:`OFFLINE_SM90` is this command's table for sm_90 as last run without a GPU; the
validation command (``python -m neuroconv.kernels.check``) prints it beside the figures
it measures on a real device.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time

#: Shared memory per block available to a kernel, bytes (sm_80: 163 KB, sm_90: 227 KB).
SMEM_LIMIT = {80: 166912, 86: 101376, 89: 101376, 90: 232448}

#: ``python -m neuroconv.kernels.resources`` (largest configuration of each kernel, sm_90,
#: offline) as run on 2026-12-01, triton 3.9.0, no GPU: name -> (shared bytes, registers,
#: spill-store bytes). The validation command compares a device's compile with it.
OFFLINE_SM90 = {
    "half conv N=16384": (73728, 128, 68),
    "half dk N=16384": (81920, 128, 2208),
    "half three-pass N=262144 P=128 Q=2048 outer_fwd": (32768, 124, 0),
    "half three-pass N=262144 P=128 Q=2048 inner R=2": (77824, 255, 128),
    "half three-pass N=262144 P=128 Q=2048 xcorr R=1": (94208, 255, 108),
    "half three-pass N=262144 P=128 Q=2048 outer_inv taps=False": (65536, 114, 0),
    "half three-pass N=262144 P=128 Q=2048 outer_inv taps=True": (65536, 104, 0),
    "half monarch fwd 64x128": (204800, 128, 5360),
    "half monarch bwd 64x128": (204800, 128, 17256),
    "float32 conv N=8192": (32768, 236, 0),
    "float32 dk N=8192": (176128, 255, 1252),
    "float32 three-pass N=262144 P=128 Q=2048 outer_fwd": (49152, 200, 0),
    "float32 three-pass N=262144 P=128 Q=2048 inner R=2": (139264, 255, 1256),
    "float32 three-pass N=262144 P=128 Q=2048 xcorr R=1": (106496, 255, 1724),
    "float32 three-pass N=262144 P=128 Q=2048 outer_inv taps=False": (32768, 250, 0),
    "float32 three-pass N=262144 P=128 Q=2048 outer_inv taps=True": (32768, 255, 264),
    "float32 monarch fwd 64x64": (65536, 255, 2060),
    "float32 monarch bwd 64x64": (65536, 255, 7828),
    "float64 conv N=4096": (98304, 255, 344),
    "float64 dk N=4096": (163840, 255, 1208),
    "float64 three-pass N=262144 P=256 Q=1024 outer_fwd": (65536, 255, 1144),
    "float64 three-pass N=262144 P=256 Q=1024 inner R=2": (49152, 255, 600),
    "float64 three-pass N=262144 P=256 Q=1024 xcorr R=1": (81920, 255, 1680),
    "float64 three-pass N=262144 P=256 Q=1024 outer_inv taps=False": (131072, 32, 10124),
    "float64 three-pass N=262144 P=256 Q=1024 outer_inv taps=True": (131072, 32, 9408),
    "float64 monarch fwd 64x64": (98304, 128, 7380),
}

_PTR = {"half": "*bf16", "float32": "*fp32", "float64": "*fp64"}
_PREC = {"half": "tf32", "float32": "tf32x3", "float64": "ieee"}


def _configs(which: str = "limits", classes=("half", "float32", "float64")) -> list[tuple]:
    """(name, jit kernel, signature, constexprs, num_warps) at the sizes the launchers use.

    ``which``: ``"limits"`` (the largest size of each kernel: the shared-memory check),
    ``"all"`` (also every smaller on-chip size) or ``"small"`` (every kernel and code path
    at a small size: a quick does-it-compile check, as run in CI).
    """
    import torch

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


def can_compile() -> bool:
    """Whether triton's NVIDIA backend and its ptxas are here (offline compilation)."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas

        return os.path.exists(get_ptxas(90).path)
    except Exception:  # noqa: BLE001 - internal API; absent means no offline compile
        return False


def _ptxas_usage(ptx: str, arch: int) -> tuple[int | None, int | None]:
    try:
        from triton.backends.nvidia.compiler import get_ptxas

        path = get_ptxas(arch).path
    except Exception:  # internal API; optional
        return None, None
    suffix = "a" if arch >= 90 else ""
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    try:
        res = subprocess.run([path, "-v", f"--gpu-name=sm_{arch}{suffix}", f.name, "-o", os.devnull],
                             capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(f.name)
    text = res.stdout + res.stderr
    regs = re.search(r"Used (\d+) registers", text)
    spill = re.search(r"(\d+) bytes spill stores", text)
    return (int(regs.group(1)) if regs else None, int(spill.group(1)) if spill else None)


def _compile_one(arch: int, which: str, classes: tuple, index: int, usage: bool) -> dict:
    """Compile configuration ``index`` of :func:`_configs` for ``sm_<arch>``; one record."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    name, fn, sig, consts, nw = _configs(which, classes)[index]
    limit = SMEM_LIMIT.get(arch, SMEM_LIMIT[90])
    sig = {a: ("constexpr" if a in consts else sig[a]) for a in fn.arg_names}
    t0 = time.time()
    rec = dict(name=name, num_warps=nw, limit=limit, shared=None, ok=False, regs=None,
               spill_bytes=None, error=None)
    try:
        k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts),
                           target=GPUTarget("cuda", arch, 32), options={"num_warps": nw})
        rec["shared"] = int(k.metadata.shared)
        rec["ok"] = rec["shared"] <= limit
        if usage:
            rec["regs"], rec["spill_bytes"] = _ptxas_usage(k.asm["ptx"], arch)
    except Exception as e:  # a kernel that does not compile is a finding, not a crash
        rec["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    rec["seconds"] = round(time.time() - t0, 1)
    return rec


def _worker_init():
    os.environ.pop("TRITON_INTERPRET", None)


def check(arch: int = 90, which: str = "limits", only: str | None = None, verbose: bool = True,
          usage: bool = True, classes=("half", "float32", "float64"), jobs: int = 1,
          json_path: str | None = None) -> list[dict]:
    """Compile each configuration (see :func:`_configs`) for ``sm_<arch>``; return one
    record per kernel: name, shared (bytes), limit, ok, regs, spill_bytes, seconds, error.
    ``usage=False`` skips the ptxas register report (faster); ``jobs > 1`` compiles in that
    many processes (records in configuration order either way). ``json_path``: the
    records done so far are rewritten there after each one (a stopped run keeps them)."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError("unset TRITON_INTERPRET: the interpreter cannot compile kernels")
    classes = tuple(classes)
    todo = [i for i, c in enumerate(_configs(which, classes)) if not only or only in c[0]]

    done_so_far: list[dict] = []

    def show(rec):
        done_so_far.append(rec)
        if json_path:
            with open(json_path + ".tmp", "w") as f:
                json.dump(done_so_far, f, indent=1)
            os.replace(json_path + ".tmp", json_path)
        if verbose:
            status = "ok  " if rec["ok"] else "FAIL"
            use = f"regs={rec['regs']} spill={rec['spill_bytes']}B " if rec["regs"] is not None else ""
            print(f"{status} {rec['name']:58s} warps={rec['num_warps']:2d} shared={rec['shared'] or 0:7d}/"
                  f"{rec['limit']} {use}{rec['seconds']}s" + (f"  {rec['error']}" if rec["error"] else ""),
                  flush=True)

    if jobs <= 1:
        rows = []
        for i in todo:
            rows.append(_compile_one(arch, which, classes, i, usage))
            show(rows[-1])
        return rows
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init) as pool:
        futs = {pool.submit(_compile_one, arch, which, classes, i, usage): i for i in todo}
        done = {}
        for f in cf.as_completed(futs):
            done[futs[f]] = f.result()
            show(done[futs[f]])
    return [done[i] for i in todo]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neuroconv.kernels.resources", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, default=90, help="compute capability x10 (default 90: H100)")
    ap.add_argument("--all", action="store_true", help="every on-chip FFT size, not only the largest")
    ap.add_argument("--small", action="store_true", help="every kernel at a small size (quick)")
    ap.add_argument("--only", help="only configurations whose name contains this text")
    ap.add_argument("--classes", nargs="+", default=["half", "float32", "float64"],
                    choices=["half", "float32", "float64"])
    ap.add_argument("--no-usage", action="store_true", help="skip the ptxas register report")
    ap.add_argument("--jobs", type=int, default=1, help="compile in this many processes")
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args(argv)
    which = "small" if args.small else "all" if args.all else "limits"
    rows = check(args.arch, which, args.only, usage=not args.no_usage, classes=tuple(args.classes),
                 jobs=args.jobs, json_path=args.json)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    bad = [r["name"] for r in rows if not r["ok"]]
    print(f"{len(rows) - len(bad)}/{len(rows)} kernels compile for sm_{args.arch} within shared memory")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
