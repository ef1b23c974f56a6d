"""``neuroconv bench``: speed and memory benchmarks.

``neuroconv bench conv`` times, for each length ``L``, the forward pass and the
forward+backward pass, and measures the peak memory of:

- ``reference``: rfft(n=2L) of u and k, multiply, irfft, slice, with plain autograd
  (:func:`neuroconv.fftconv.fftconv_ref`);
- ``torch``: neuroconv's torch backend (frequency-domain custom backward);
- ``triton``: the FlashButterfly kernels, where available (CUDA + triton);
- ``attention``: a causal :class:`neuroconv.AttentionLayer` of the same width, on
  ``(B, L, H)``.

Every row carries its ratio to the reference measured in the same run. Timings are the
median over ``--min-time`` seconds of runs after a warm-up (torch.utils.benchmark). Peak memory is the high-water mark of the
bytes allocated during one call, above what was allocated before it: from
``torch.cuda.max_memory_allocated`` on CUDA, and from the torch profiler's allocation
timeline on the CPU.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import shlex

DEFAULT_LENGTHS = [1024, 2048, 4096, 8192, 16384, 32768, 65536]


def machine_description(device: str = "cpu") -> str:
    """A one-line description of the machine: CPU model and cores, or the GPU name."""
    import os

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} (CUDA {torch.version.cuda})"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores, {platform.system()}"


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, min_time: float) -> float:
    """Median seconds per ``fn()`` call (torch.utils.benchmark, which syncs CUDA)."""
    from torch.utils.benchmark import Timer

    fn()  # warm-up: plans, caches, thread pools
    _sync(device)
    return Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_time).median


def _peak_bytes(fn, device) -> int | None:
    """Bytes allocated at the high-water mark of one ``fn()`` call, above the start."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    try:
        import numpy as np
        from torch.profiler import ProfilerActivity, profile
        from torch.profiler._memory_profiler import MemoryProfileTimeline

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                     record_shapes=True, with_stack=True) as prof:
            fn()
        _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(device)
        total = np.asarray(sizes, dtype=np.int64).sum(axis=1)
        return int(total.max() - total[0]) if len(total) else 0
    except Exception:  # the profiler's timeline API is private and may change
        return None


def _cases(B: int, H: int, L: int, dtype, device, backends: list[str], attn_max_len: int):
    """Yield (name, forward_fn, fwd_bwd_fn | None, skip_reason | None)."""
    import torch

    from neuroconv.fftconv import fftconv, fftconv_ref
    from neuroconv.layers import AttentionLayer

    u = torch.randn(B, H, L, device=device, dtype=dtype)
    k = (torch.randn(H, L, device=device) / L**0.5).to(dtype)
    D = torch.randn(H, device=device, dtype=dtype)
    ug, kg, Dg = (t.clone().requires_grad_(True) for t in (u, k, D))

    def pair(f):
        def fwd():
            with torch.no_grad():
                f(u, k, D)

        def fwd_bwd():
            for t in (ug, kg, Dg):
                t.grad = None
            f(ug, kg, Dg).sum().backward()

        return fwd, fwd_bwd

    yield ("reference", *pair(lambda a, b, c: fftconv_ref(a, b, c)), None)
    for be in backends:
        yield (be, *pair(lambda a, b, c, be=be: fftconv(a, b, c, backend=be)), None)
    if L > attn_max_len:
        yield ("attention", None, None, f"L > --attn-max-len {attn_max_len}")
        return
    n_heads = next(h for h in (8, 4, 2, 1) if H % h == 0 and (H // h) % 2 == 0)
    attn = AttentionLayer(H, n_heads=n_heads).to(device=device, dtype=dtype)
    x = u.transpose(1, 2).contiguous()  # (B L H)
    xg = x.clone().requires_grad_(True)

    def a_fwd():
        with torch.no_grad():
            attn(x)

    def a_fwd_bwd():
        xg.grad = None
        attn.zero_grad(set_to_none=True)
        attn(xg).sum().backward()

    yield ("attention", a_fwd, a_fwd_bwd, None)


def run_conv_bench(
    lengths=DEFAULT_LENGTHS,
    batch: int = 4,
    heads: int = 64,
    dtype: str = "float32",
    device: str = "cpu",
    min_time: float = 0.5,
    attn_max_len: int = 8192,
    memory: bool = True,
    log=print,
) -> list[dict]:
    """Run the convolution benchmark; return one dict per (method, L)."""
    import torch

    from neuroconv.fftconv import available_backends

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device.")
    tdtype = getattr(torch, dtype)
    # the Triton interpreter on CPU tensors is a test tool, not a speed path
    backends = [b for b in available_backends(dev) if not (b == "triton" and dev.type == "cpu")]
    rows = []
    for L in lengths:
        ref = None
        for name, fwd, fwd_bwd, skip in _cases(batch, heads, L, tdtype, dev, backends, attn_max_len):
            row = dict(method=name, L=L, B=batch, H=heads, dtype=dtype, device=device)
            if skip:
                row.update(fwd_ms=None, fwd_bwd_ms=None, peak_mb=None, skipped=skip)
            else:
                row["fwd_ms"] = 1e3 * _time(fwd, dev, min_time)
                row["fwd_bwd_ms"] = 1e3 * _time(fwd_bwd, dev, min_time)
                pb = _peak_bytes(fwd_bwd, dev) if memory else None
                row["peak_mb"] = None if pb is None else pb / 2**20
            if name == "reference":
                ref = row
            for key in ("fwd_ms", "fwd_bwd_ms", "peak_mb"):
                a, b = ref.get(key), row.get(key)
                # speed ratios: reference time / method time (>1 = faster than the reference);
                # memory ratio: method peak / reference peak (<1 = leaner)
                if key == "peak_mb":
                    row["mem_ratio"] = b / a if a and b is not None else None
                else:
                    row[f"{key}_speedup"] = a / b if a and b else None
            rows.append(row)
            log(_format_row(row))
    return rows


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


TABLE_HEADER = (
    f"{'L':>6} {'method':<10} {'fwd ms':>9} {'x ref':>6} {'fwd+bwd ms':>11} {'x ref':>6} "
    f"{'peak MiB':>9} {'/ ref':>6}"
)


def _format_row(r: dict) -> str:
    if r.get("skipped"):
        return f"{r['L']:>6} {r['method']:<10} skipped: {r['skipped']}"
    return (
        f"{r['L']:>6} {r['method']:<10} {_fmt(r['fwd_ms'], '9.2f')} {_fmt(r['fwd_ms_speedup'], '6.2f')} "
        f"{_fmt(r['fwd_bwd_ms'], '11.2f')} {_fmt(r['fwd_bwd_ms_speedup'], '6.2f')} "
        f"{_fmt(r['peak_mb'], '9.1f')} {_fmt(r['mem_ratio'], '6.2f')}"
    )


def _bench_conv(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    header = {
        "command": "neuroconv " + shlex.join(args.argv),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(args.device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    print(f"# {header['date']} | {header['machine']} | torch {header['torch']} | "
          f"{header['threads']} threads")
    print(f"# B={args.batch} H={args.heads} dtype={args.dtype} device={args.device} "
          f"min-time={args.min_time}s per case (median of blocks); speedup = reference time / method time")
    print(TABLE_HEADER)
    rows = run_conv_bench(
        lengths=args.lengths, batch=args.batch, heads=args.heads, dtype=args.dtype,
        device=args.device, min_time=args.min_time, attn_max_len=args.attn_max_len,
        memory=not args.no_memory,
    )
    if args.json:
        from neuroconv.io import atomic_write_json

        path = atomic_write_json(args.json, {**header, "rows": rows})
        print(f"# wrote {path}")
    return 0


def add_bench(sub) -> None:
    p = sub.add_parser("bench", help="speed and memory benchmarks",
                       description="Speed and memory benchmarks.")
    p.set_defaults(func=None, _parser=p)
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")

    c = bsub.add_parser(
        "conv", help="fftconv vs the plain reference and attention, per length",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--lengths", type=int, nargs="+", default=DEFAULT_LENGTHS, metavar="L",
                   help="sequence lengths (default: 1K to 64K, powers of two)")
    c.add_argument("--batch", "-B", type=int, default=4, help="batch size B (default 4)")
    c.add_argument("--heads", "-H", type=int, default=64, help="channels H (default 64)")
    c.add_argument("--dtype", default="float32", choices=["float32", "float64", "float16", "bfloat16"])
    c.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    c.add_argument("--min-time", type=float, default=0.5,
                   help="seconds of timed runs per case; the median block is kept (default 0.5)")
    c.add_argument("--attn-max-len", type=int, default=8192,
                   help="skip attention above this L (quadratic cost; default 8192)")
    c.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    c.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    c.add_argument("--json", metavar="PATH", default="bench_conv.json",
                   help="write the rows as JSON here (default bench_conv.json)")
    c.set_defaults(func=_bench_conv)

    from neuroconv.pipelines.bench import add_bench_preprocess

    add_bench_preprocess(bsub)
