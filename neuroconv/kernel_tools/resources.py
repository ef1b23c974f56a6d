"""Compile the Triton kernels offline for an NVIDIA GPU and check their resources.

No GPU is needed: Triton compiles to PTX and cubin for a named target (default sm_90,
H100). This catches what the CPU interpreter cannot: kernels that do not compile for the
GPU, or that need more shared memory per block than the GPU has (a launch would fail
with "out of resources"). Registers and spill bytes come from ``ptxas -v`` when Triton's
bundled ptxas is found.

    python -m neuroconv.kernel_tools.resources            # the largest configuration of each kernel
    python -m neuroconv.kernel_tools.resources --all      # every on-chip FFT size too
    python -m neuroconv.kernel_tools.resources --small    # every kernel once, small (CI's check)
    python -m neuroconv.kernel_tools.resources --jobs 16 --json resources.json

Run it without ``TRITON_INTERPRET`` set (the interpreter replaces compiled kernels).
:data:`OFFLINE_SM90` is this command's table for sm_90 as last run without a GPU; the
validation command (``python -m neuroconv.kernel_tools.check``) prints it beside the figures
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

#: ``python -m neuroconv.kernel_tools.resources`` (largest configuration of each kernel, sm_90,
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
    """Compile configuration ``index`` of
    :func:`neuroconv.kernels.launches.compile_configs` for ``sm_<arch>``; one record."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from neuroconv.kernels.launches import compile_configs

    name, fn, sig, consts, nw = compile_configs(which, classes)[index]
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
    """Compile each configuration (see :func:`neuroconv.kernels.launches.compile_configs`)
    for ``sm_<arch>``; return one
    record per kernel: name, shared (bytes), limit, ok, regs, spill_bytes, seconds, error.
    ``usage=False`` skips the ptxas register report (faster); ``jobs > 1`` compiles in that
    many processes (records in configuration order either way). ``json_path``: the
    records done so far are rewritten there after each one (a stopped run keeps them)."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError("unset TRITON_INTERPRET: the interpreter cannot compile kernels")
    from neuroconv.kernels.launches import compile_configs

    classes = tuple(classes)
    todo = [i for i, c in enumerate(compile_configs(which, classes)) if not only or only in c[0]]

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
    ap = argparse.ArgumentParser(prog="python -m neuroconv.kernel_tools.resources", description=__doc__,
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
