"""GPU benchmark grid for the FlashButterfly kernels.

    python -m neuroconv.kernel_tools.bench                    # the full grid, markdown to stdout
    python -m neuroconv.kernel_tools.bench --quick --json out.json --markdown out.md

For each dtype (float32, bfloat16), mode (``fwd``, ``fwd+bwd``), batch ``B``, ``H`` and
length ``L`` it times ``neuroconv.fftconv`` with ``backend="triton"`` and
``backend="torch"`` (the rfft path), and FlashFFTConv when it is importable, and reports:

* ``ms``: median time (``triton.testing.do_bench``: CUDA events around repeated calls,
  the median of the repeats, after a warm-up; the L2 cache is flushed between calls);
* ``speedup``: torch ms / this backend's ms (same dtype, mode and shape, same run);
* ``peak_mb``: peak memory allocated during one call, above what was allocated before it;
  ``peak_vs_torch``: that over the torch path's;
* ``hbm_frac``: the HBM roofline time over the measured time, where the roofline moves
  ``bytes`` at the device's peak bandwidth and ``bytes`` counts each tensor once, with
  ``N = B·H·L`` and ``s`` bytes per element (``bytes_formula``): forward 2sN (read u,
  write y), forward+backward 5sN (plus read dy and u, write du); gated 4sN (read u, g1,
  g2, write y) and 11sN (plus read dy, u, g1, g2, write du, dg1, dg2). Lower bounds: a
  kernel that moves more than this shows below 100%;
* ``max_err``: largest difference from the torch path's output (a sanity check; the
  correctness checks are ``python -m neuroconv.kernel_tools.check``).

Needs a CUDA device; :func:`run_grid` also runs on the CPU with a wall-clock timer (the
validation command's tests exercise it there; such numbers mean nothing).
``neuroconv bench conv --device cuda`` shows a "triton" row too; this module is the
GPU grid with the roofline and memory columns.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

#: Peak HBM bandwidth (bytes/s) by device-name fragment; ``--peak-bw`` overrides.
PEAK_BW = {
    "H200": 4.8e12,
    "H100 SXM": 3.35e12,
    "H100 80GB HBM3": 3.35e12,
    "H100 PCIe": 2.0e12,
    "H100 NVL": 3.9e12,
    "H100": 3.35e12,
    "A100-SXM4-80GB": 2.04e12,
    "A100": 1.55e12,
    "L4": 0.3e12,
}

FULL = dict(batches=(8, 16, 32, 64), lengths=tuple(256 << i for i in range(9)))
QUICK = dict(batches=(8, 64), lengths=(256, 1024, 4096, 16384, 65536))


def peak_bandwidth(device: torch.device) -> float | None:
    name = torch.cuda.get_device_name(device)
    for frag, bw in PEAK_BW.items():
        if frag in name:
            return bw
    return None


def _flashfftconv():
    try:
        from flashfftconv import FlashFFTConv  # noqa: F401

        return FlashFFTConv
    except Exception:
        return None


def _make_fn(backend: str, u, k, D, mode: str, L: int, gates=None, causal: bool = True):
    from neuroconv.fftconv import fftconv

    g1, g2 = gates if gates is not None else (None, None)
    if backend == "triton" and gates is not None:
        from neuroconv.kernels.flashbutterfly import fftconv_fn

        def fwd():
            return fftconv_fn(u, k, D, causal=causal, g1=g1, g2=g2)
    elif backend in ("triton", "torch"):
        def fwd():
            v = u if g1 is None else u * g1
            y = fftconv(v, k, D, causal=causal, backend=backend)
            return y if g2 is None else y * g2
    else:  # FlashFFTConv: half-precision inputs, FFT size 2L, D added outside
        FlashFFTConv = _flashfftconv()
        conv = FlashFFTConv(2 * L, dtype=u.dtype).to(u.device)
        kk = k.float()

        def fwd():
            v = u if g1 is None else u * g1
            y = conv(v, kk) + v * D[:, None].to(u.dtype)
            return y if g2 is None else y * g2

    if mode == "fwd":
        return fwd
    dy = torch.randn_like(u)
    ins = [t for t in (u, k, D, g1, g2) if t is not None]

    def fwd_bwd():  # gradients returned, not accumulated into .grad (no extra traffic)
        y = fwd()
        torch.autograd.grad(y, ins, dy)
        return y

    return fwd_bwd


#: Bytes moved per element of ``N = B·H·L``, in units of the element size ``s``.
_UNITS = {("fwd", False): 2, ("fwd+bwd", False): 5, ("fwd", True): 4, ("fwd+bwd", True): 11}


def byte_formula(mode: str, gated: bool = False) -> str:
    """The roofline's byte count, e.g. ``"5sN"`` (see the module docstring)."""
    return f"{_UNITS[(mode, bool(gated))]}sN"


def _bytes(B: int, H: int, L: int, itemsize: int, mode: str, gated: bool = False) -> int:
    return _UNITS[(mode, bool(gated))] * B * H * L * itemsize


def _cuda_timer(fn, rep_ms: int) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, rep=rep_ms, return_mode="median"))


def wall_timer(fn, rep_ms: int, min_calls: int = 3) -> float:
    """Median wall-clock milliseconds of ``fn`` over about ``rep_ms`` (at least
    ``min_calls`` calls): the CPU stand-in for :func:`triton.testing.do_bench` (exercises
    the grid's code)."""
    times, t_end = [], time.perf_counter() + rep_ms / 1e3
    while len(times) < min_calls or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(sorted(times)[len(times) // 2])


def run_grid(
    dtypes=("float32", "bfloat16"),
    modes=("fwd", "fwd+bwd"),
    batches=FULL["batches"],
    H: int = 768,
    lengths=FULL["lengths"],
    backends=("triton", "torch", "flashfftconv"),
    device: str = "cuda",
    rep_ms: int = 100,
    peak_bw: float | None = None,
    gated: bool = False,
    verbose: bool = True,
    timer=None,
    on_row=None,
) -> list[dict]:
    """Time every point of the grid; one dict per (dtype, mode, B, L, backend).

    ``gated``: time ``y = (k * (u g1) + D u g1) g2`` instead (fused gates on triton; torch
    and FlashFFTConv multiply outside). Keys of each row: device, dtype, mode, gated, B, H,
    L, backend, ms, speedup, peak_mb, peak_vs_torch, bytes, bytes_formula, hbm_frac,
    max_err, status (``"ok"``, ``"oom"``, ``"unavailable"`` or an error message).

    ``device``: ``"cuda"`` (timer: ``triton.testing.do_bench``, CUDA events, median), or
    ``"cpu"`` with the Triton interpreter (timer: :func:`wall_timer`; no memory columns):
    only to exercise this code without a GPU. ``timer(fn, rep_ms) -> ms`` overrides.
    ``on_row(row)`` is called as each row is done (progress).
    """
    from neuroconv.fftconv import available_backends

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run_grid needs a CUDA device; none is visible.")
    if "triton" in backends and "triton" not in available_backends(dev):
        raise RuntimeError(f"the triton backend is not available on {dev} (is triton installed? on the "
                           "CPU it needs TRITON_INTERPRET=1)")
    on_gpu = dev.type == "cuda"
    timer = timer or (_cuda_timer if on_gpu else wall_timer)
    name = torch.cuda.get_device_name(dev) if on_gpu else "cpu (Triton interpreter)"
    bw = peak_bw or (peak_bandwidth(dev) if on_gpu else None)
    have_ffc = _flashfftconv() is not None
    sync = torch.cuda.synchronize if on_gpu else (lambda *a: None)
    rows = []
    if verbose:
        print(HEADER, flush=True)
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        for mode in modes:
            for B in batches:
                for L in lengths:
                    group = []
                    for backend in backends:
                        row = dict(device=name, dtype=dtype_name, mode=mode, gated=gated, B=B, H=H,
                                   L=L, backend=backend, ms=None, speedup=None, peak_mb=None,
                                   peak_vs_torch=None, bytes=_bytes(B, H, L, dtype.itemsize, mode, gated),
                                   bytes_formula=byte_formula(mode, gated), hbm_frac=None,
                                   max_err=None, status="ok")
                        if backend == "flashfftconv" and (not have_ffc or dtype == torch.float32 or not on_gpu):
                            row["status"] = "unavailable"
                            rows.append(row)
                            continue
                        fn = u = k = D = gates = ins = None
                        try:
                            if on_gpu:
                                torch.cuda.empty_cache()
                            g = torch.Generator(device=dev).manual_seed(0)
                            u = torch.randn(B, H, L, device=dev, generator=g).to(dtype)
                            k = (torch.randn(H, L, device=dev, generator=g) / L**0.5).to(dtype)
                            D = torch.randn(H, device=dev, generator=g).to(dtype)
                            if gated:
                                gates = tuple(torch.randn(B, H, L, device=dev, generator=g).to(dtype)
                                              for _ in range(2))
                            ins = (u, k, D) + (gates or ())
                            if mode != "fwd":
                                for t in ins:
                                    t.requires_grad_()
                            fn = _make_fn(backend, u, k, D, mode, L, gates)
                            fn()  # compile / warm up
                            sync()
                            if on_gpu:
                                base = torch.cuda.memory_allocated(dev)
                                torch.cuda.reset_peak_memory_stats(dev)
                            y = fn()
                            sync()
                            if on_gpu:
                                row["peak_mb"] = round((torch.cuda.max_memory_allocated(dev) - base) / 2**20, 1)
                            row["_y"] = y.detach()[-2:].float()  # the last rows: the largest offsets
                            del y
                            row["ms"] = timer(fn, rep_ms)
                            if bw:
                                row["hbm_frac"] = round(row["bytes"] / bw * 1e3 / row["ms"], 3)
                        except torch.cuda.OutOfMemoryError:
                            row["status"] = "oom"
                        except Exception as e:  # report, keep going
                            row["status"] = f"{type(e).__name__}: {str(e)[:120]}"
                        finally:
                            fn = u = k = D = gates = ins = None
                        group.append(row)
                        rows.append(row)
                        if on_row is not None:
                            on_row(row)
                    ref = next((r for r in group if r["backend"] == "torch" and r["ms"]), None)
                    for r in group:
                        if ref is not None and r["ms"]:
                            r["speedup"] = round(ref["ms"] / r["ms"], 2)
                        if ref is not None and r["peak_mb"] and ref["peak_mb"]:
                            r["peak_vs_torch"] = round(r["peak_mb"] / ref["peak_mb"], 3)
                        if ref is not None and "_y" in r and "_y" in ref:
                            r["max_err"] = float((r["_y"] - ref["_y"]).abs().max())
                    for r in group:
                        r.pop("_y", None)
                        if verbose:
                            print(_line(r), flush=True)
    for r in rows:
        r.pop("_y", None)
    return rows


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def _line(r: dict) -> str:
    mode = r["mode"] + (" gated" if r.get("gated") else "")
    return (f"| {r['dtype']} | {mode} | {r['B']} | {r['H']} | {r['L']} | {r['backend']} | "
            f"{_fmt(r['ms'], '.3f')} | {_fmt(r['speedup'], '.2f')} | {_fmt(r['peak_mb'], '.0f')} | "
            f"{_fmt(r.get('peak_vs_torch'), '.2f')} | {_fmt(r['hbm_frac'], '.0%')} | "
            f"{r.get('bytes_formula', '-')} | {_fmt(r['max_err'], '.1e')} | {r['status']} |")


HEADER = ("| dtype | mode | B | H | L | backend | ms | speedup vs torch | peak MB | peak / torch | "
          "HBM roofline | bytes | max err vs torch | status |\n"
          "|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---|---:|---|")


def markdown(rows: list[dict], command: str) -> str:
    dev = rows[0]["device"] if rows else "?"
    head = (f"Command: `{command}`  \nDate: {time.strftime('%Y-%m-%d')}  \nDevice: {dev}, "
            f"torch {torch.__version__}  \nBytes for the HBM roofline: N = B·H·L elements of s bytes; "
            "fwd 2sN, fwd+bwd 5sN, gated 4sN / 11sN\n\n")
    return head + HEADER + "\n" + "\n".join(_line(r) for r in rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neuroconv.kernel_tools.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"a smaller grid: {QUICK}")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--batches", nargs="+", type=int)
    ap.add_argument("--lengths", nargs="+", type=int)
    ap.add_argument("--H", type=int, default=768)
    ap.add_argument("--backends", nargs="+", default=["triton", "torch", "flashfftconv"])
    ap.add_argument("--gated", action="store_true", help="time the gated form (u g1, g2)")
    ap.add_argument("--rep-ms", type=int, default=100, help="timing budget per point (ms)")
    ap.add_argument("--peak-bw", type=float, help="peak HBM bandwidth in bytes/s (default: by device name)")
    ap.add_argument("--json", help="write the rows as JSON here")
    ap.add_argument("--markdown", help="write the markdown table here")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("neuroconv.kernel_tools.bench needs a CUDA GPU; none is visible.", file=sys.stderr)
        return 2
    grid = QUICK if args.quick else FULL
    rows = run_grid(dtypes=args.dtypes, modes=args.modes, batches=args.batches or grid["batches"],
                    H=args.H, lengths=args.lengths or grid["lengths"], backends=args.backends,
                    rep_ms=args.rep_ms, peak_bw=args.peak_bw, gated=args.gated, verbose=False)
    command = "python -m neuroconv.kernel_tools.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    md = markdown(rows, command.strip())
    print(md)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
