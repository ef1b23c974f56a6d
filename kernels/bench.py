"""GPU benchmark grid for the FlashButterfly kernels (issue 3's table).

    python -m neuroconv.kernels.bench                    # the full grid, markdown to stdout
    python -m neuroconv.kernels.bench --quick --json out.json --markdown out.md

For each dtype (float32, bfloat16), mode (``fwd``, ``fwd+bwd``), batch ``B``, ``H`` and
length ``L`` it times ``neuroconv.fftconv`` with ``backend="triton"`` and
``backend="torch"`` (the rfft path), and FlashFFTConv when it is importable, and reports:

* ``ms``: median time (``triton.testing.do_bench``);
* ``speedup``: torch ms / this backend's ms (same dtype, mode and shape);
* ``peak_mb``: peak memory allocated during one call, above the inputs;
* ``hbm_frac``: the HBM roofline time over the measured time, where the roofline moves
  ``bytes`` at the device's peak bandwidth and ``bytes`` counts each tensor once: read u
  and write y (fwd); plus read dy, read u, write du (bwd); plus the gates when gated;
* ``max_err``: largest difference from the torch path's output (a sanity check).

Needs a CUDA device. ``neuroconv bench conv --device cuda`` shows a "triton" row too;
this module is the issue's grid with the roofline and memory columns.
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


def _make_fn(backend: str, u, k, D, mode: str, L: int, gates=None):
    from neuroconv.fftconv import fftconv

    g1, g2 = gates if gates is not None else (None, None)
    if backend == "triton" and gates is not None:
        from neuroconv.kernels.flashbutterfly import fftconv_fn

        def fwd():
            return fftconv_fn(u, k, D, causal=True, g1=g1, g2=g2)
    elif backend in ("triton", "torch"):
        def fwd():
            v = u if g1 is None else u * g1
            y = fftconv(v, k, D, causal=True, backend=backend)
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

    def fwd_bwd():
        y = fwd()
        y.backward(dy)
        return y

    return fwd_bwd


def _bytes(B: int, H: int, L: int, itemsize: int, mode: str, gated: bool = False) -> int:
    n = B * H * L * itemsize
    fwd = 2 * n + (2 * n if gated else 0)
    return fwd if mode == "fwd" else fwd + 3 * n + (2 * n if gated else 0)


def run_gpu_grid(
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
) -> list[dict]:
    """Time every point of the grid; one dict per (dtype, mode, B, L, backend).

    ``gated``: time ``y = (k * (u g1) + D u g1) g2`` instead (fused gates on triton; torch
    and FlashFFTConv multiply outside). Keys of each row: device, dtype, mode, gated, B, H,
    L, backend, ms, speedup, peak_mb, bytes, hbm_frac, max_err, status (``"ok"``,
    ``"oom"``, ``"unavailable"`` or an error message).
    """
    import triton.testing

    from neuroconv.fftconv import available_backends

    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        raise RuntimeError("run_gpu_grid needs a CUDA device.")
    if "triton" not in available_backends(dev):
        raise RuntimeError("the triton backend is not available on this device (is triton installed?)")
    name = torch.cuda.get_device_name(dev)
    bw = peak_bw or peak_bandwidth(dev)
    have_ffc = _flashfftconv() is not None
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
                                   bytes=_bytes(B, H, L, dtype.itemsize, mode, gated), hbm_frac=None,
                                   max_err=None, status="ok")
                        if backend == "flashfftconv" and (not have_ffc or dtype == torch.float32):
                            row["status"] = "unavailable"
                            rows.append(row)
                            continue
                        try:
                            torch.cuda.empty_cache()
                            g = torch.Generator(device=dev).manual_seed(0)
                            u = torch.randn(B, H, L, device=dev, generator=g).to(dtype)
                            k = (torch.randn(H, L, device=dev, generator=g) / L**0.5).to(dtype)
                            D = torch.randn(H, device=dev, generator=g).to(dtype)
                            gates = None
                            if gated:
                                gates = tuple(torch.randn(B, H, L, device=dev, generator=g).to(dtype)
                                              for _ in range(2))
                            ins = (u, k, D) + (gates or ())
                            if mode != "fwd":
                                for t in ins:
                                    t.requires_grad_()
                            fn = _make_fn(backend, u, k, D, mode, L, gates)
                            fn()  # compile / warm up
                            torch.cuda.synchronize()
                            base = torch.cuda.memory_allocated(dev)
                            torch.cuda.reset_peak_memory_stats(dev)
                            y = fn()
                            torch.cuda.synchronize()
                            row["peak_mb"] = round((torch.cuda.max_memory_allocated(dev) - base) / 2**20, 1)
                            row["_y"] = y.detach()[:2].float()  # a slice: enough to spot errors
                            del y
                            for t in ins:
                                t.grad = None
                            row["ms"] = float(triton.testing.do_bench(fn, rep=rep_ms, return_mode="median"))
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
                    ref = next((r for r in group if r["backend"] == "torch" and r["ms"]), None)
                    for r in group:
                        if ref is not None and r["ms"]:
                            r["speedup"] = round(ref["ms"] / r["ms"], 2)
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
            f"{_fmt(r['hbm_frac'], '.0%')} | {_fmt(r['max_err'], '.1e')} | {r['status']} |")


HEADER = ("| dtype | mode | B | H | L | backend | ms | speedup vs torch | peak MB | HBM roofline | "
          "max err vs torch | status |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def markdown(rows: list[dict], command: str) -> str:
    dev = rows[0]["device"] if rows else "?"
    head = (f"Command: `{command}`  \nDate: {time.strftime('%Y-%m-%d')}  \nDevice: {dev}, "
            f"torch {torch.__version__}\n\n")
    return head + HEADER + "\n" + "\n".join(_line(r) for r in rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neuroconv.kernels.bench", description=__doc__,
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
        print("neuroconv.kernels.bench needs a CUDA GPU; none is visible.", file=sys.stderr)
        return 2
    grid = QUICK if args.quick else FULL
    rows = run_gpu_grid(dtypes=args.dtypes, modes=args.modes, batches=args.batches or grid["batches"],
                        H=args.H, lengths=args.lengths or grid["lengths"], backends=args.backends,
                        rep_ms=args.rep_ms, peak_bw=args.peak_bw, gated=args.gated, verbose=False)
    command = "python -m neuroconv.kernels.bench " + " ".join(argv if argv is not None else sys.argv[1:])
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
