"""``neuroconv bench``: speed and memory benchmarks.

``neuroconv bench conv`` times, for each length ``L``, the forward pass (no gradient
recorded) and the forward+backward pass (gradients for every input), and measures the
peak memory of:

- ``reference``: rfft(n=2L) of u and k, multiply, irfft, slice, with plain autograd
  (:func:`neuroconv.contract.fftconv_ref`);
- ``torch``: neuroconv's torch backend (frequency-domain custom backward);
- ``triton``: the FlashButterfly kernels, where available (CUDA + triton);
- ``attention``: a causal :class:`neuroconv.AttentionLayer` of the same width, on
  ``(B, L, H)``.

Ratios that can be trusted on a busy machine: the methods are timed interleaved, in
``--blocks`` blocks. In each block the methods take turns, one call each per round, in
an order that reverses on every odd block and rotates every second one, until each has
spent about ``--min-time`` / ``--blocks`` seconds (``reps`` calls, at least one); its
time in the block is the median of those calls. So a slow spell of the machine falls on
every method alike, and a pause spoils one call, not a block. Each block gives a paired
ratio, reference time / method time (> 1: faster than the reference). A row reports the
median time per call over the blocks, the median of the block ratios and their range
(smallest, largest), and a verdict: ``faster`` when every block's ratio is above 1,
``slower`` when every one is below 1 (a sign test over the blocks: two-sided
p = 2^(1 - blocks), 0.016 for 7), and ``inconclusive`` when the blocks fall on both sides
of 1: that spread is too wide to conclude either way, whatever the median says. Fewer
than 6 blocks give no verdict.

Peak memory is the high-water mark of the bytes allocated during one forward+backward
call, above what was allocated before it: from ``torch.cuda.max_memory_allocated`` on
CUDA, and from the torch profiler's allocation timeline on the CPU.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import shlex
import statistics
import time

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


#: Fewest blocks for a verdict: with n blocks all on one side of 1, the sign test's
#: two-sided p is 2^(1 - n) (0.031 for 6).
MIN_BLOCKS_FOR_VERDICT = 6


def _timed(fn, reps: int, device) -> float:
    """Seconds per call of ``reps`` back-to-back calls of ``fn`` (CUDA synchronised)."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / reps


def block_order(names: list[str], block: int) -> list[str]:
    """The order of the methods in block ``block``: reversed on every odd block, and
    rotated by one every second block, so that each method takes every position and
    runs both before and after each other one (for two methods: ab, ba, ba, ab, ...)."""
    i = (block // 2) % len(names)
    order = names[i:] + names[:i]
    return order[::-1] if block % 2 else order


def time_interleaved(fns: dict, device, blocks: int, min_time: float) -> tuple[dict, dict]:
    """Time the callables of ``fns`` (name -> ``fn()``) interleaved in ``blocks`` blocks.

    Each is first called once (warm-up: plans, caches, thread pools), then timed on up to
    5 calls (fewer past 0.1 s; the median counts) to choose its calls per block, ``reps``
    (at least 1), so that each block spends about
    ``min_time / blocks`` seconds on it. Within a block the methods take turns, one call
    each per round (in :func:`block_order`), until each has made its ``reps`` calls; its
    time in the block is the median of its calls, so that a pause of the machine spoils
    one call rather than a block. Returns ``(times, reps)``: name -> the seconds per call
    in each block, in block order; name -> calls per block.
    """
    names = list(fns)
    one = {}
    for n in names:
        fns[n]()
        first, t0 = [], time.perf_counter()
        while len(first) < 5 and (not first or time.perf_counter() - t0 < 0.1):
            first.append(_timed(fns[n], 1, device))
        one[n] = statistics.median(first)
    target = min_time / max(blocks, 1)
    reps = {n: max(1, round(target / max(one[n], 1e-9))) for n in names}
    times = {n: [] for n in names}
    for b in range(blocks):
        order = block_order(names, b)
        calls = {n: [] for n in names}
        for r in range(max(reps.values())):  # round robin: one call of each method per round
            for n in order:
                if r < reps[n]:
                    calls[n].append(_timed(fns[n], 1, device))
        for n in names:
            times[n].append(statistics.median(calls[n]))
    return times, reps


def ratio_summary(ref_times: list[float], times: list[float]) -> dict:
    """The paired ratios of one method to the reference over blocks.

    ``ref_times[i]``, ``times[i]``: seconds per call in block ``i``. Each block's ratio is
    ``ref_times[i] / times[i]`` (> 1: faster than the reference). Returns ``ratio`` (their
    median), ``ratio_min``, ``ratio_max`` and ``verdict``: ``"faster"`` when every ratio
    is above 1, ``"slower"`` when every one is below 1, ``"inconclusive"`` otherwise, and
    ``"too few blocks"`` below :data:`MIN_BLOCKS_FOR_VERDICT`.
    """
    if len(ref_times) != len(times) or not times:
        raise ValueError(f"ratio_summary: need one time per block on both sides; got {len(ref_times)} "
                         f"and {len(times)}.")
    ratios = [r / t for r, t in zip(ref_times, times)]
    lo, hi = min(ratios), max(ratios)
    if len(ratios) < MIN_BLOCKS_FOR_VERDICT:
        verdict = "too few blocks"
    else:
        verdict = "faster" if lo > 1 else "slower" if hi < 1 else "inconclusive"
    return dict(ratio=statistics.median(ratios), ratio_min=lo, ratio_max=hi, verdict=verdict)


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

    from neuroconv.contract import fftconv_ref
    from neuroconv.fftconv import fftconv
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
    blocks: int = 7,
    attn_max_len: int = 8192,
    memory: bool = True,
    log=print,
) -> list[dict]:
    """Run the convolution benchmark; return one dict per (method, L).

    Keys of a row: ``method, L, B, H, dtype, device``; for each of ``fwd`` and
    ``fwd_bwd``: ``{mode}_ms`` (median over blocks of the time per call),
    ``{mode}_blocks_ms`` (the time per call in each block), ``{mode}_reps`` (calls per
    block), and against the reference of the same ``L`` (:func:`ratio_summary`):
    ``{mode}_ms_speedup`` (median block ratio), ``{mode}_ms_speedup_min``,
    ``{mode}_ms_speedup_max``, ``{mode}_verdict``; ``peak_mb`` and ``mem_ratio`` (method
    peak / reference peak, < 1 leaner); ``skipped`` with its reason when a method was not
    run. ``blocks``, ``min_time``: see the module docstring.
    """
    import torch

    from neuroconv.fftconv import available_backends

    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise ValueError(f"`blocks` must be an integer >= 1; got {blocks!r}.")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device.")
    tdtype = getattr(torch, dtype)
    # the Triton interpreter on CPU tensors is a test tool, not a speed path
    backends = [b for b in available_backends(dev) if not (b == "triton" and dev.type == "cpu")]
    rows = []
    for L in lengths:
        cases = list(_cases(batch, heads, L, tdtype, dev, backends, attn_max_len))
        run = [(name, fwd, fwd_bwd) for name, fwd, fwd_bwd, skip in cases if not skip]
        timed = {}
        for mode, k in (("fwd", 1), ("fwd_bwd", 2)):
            timed[mode] = time_interleaved({c[0]: c[k] for c in run}, dev, blocks, min_time)
        here = []
        for name, fwd, fwd_bwd, skip in cases:
            row = dict(method=name, L=L, B=batch, H=heads, dtype=dtype, device=device)
            if skip:
                row.update(fwd_ms=None, fwd_bwd_ms=None, peak_mb=None, skipped=skip)
                here.append(row)
                continue
            for mode in ("fwd", "fwd_bwd"):
                times, reps = timed[mode]
                row[f"{mode}_ms"] = 1e3 * statistics.median(times[name])
                row[f"{mode}_blocks_ms"] = [1e3 * t for t in times[name]]
                row[f"{mode}_reps"] = reps[name]
                summary = ratio_summary(times["reference"], times[name])
                row[f"{mode}_ms_speedup"] = summary["ratio"]
                row[f"{mode}_ms_speedup_min"] = summary["ratio_min"]
                row[f"{mode}_ms_speedup_max"] = summary["ratio_max"]
                row[f"{mode}_verdict"] = "reference" if name == "reference" else summary["verdict"]
            pb = _peak_bytes(fwd_bwd, dev) if memory else None
            row["peak_mb"] = None if pb is None else pb / 2**20
            here.append(row)
        ref_peak = here[0]["peak_mb"]
        for row in here:
            if not row.get("skipped"):
                b = row["peak_mb"]
                row["mem_ratio"] = b / ref_peak if ref_peak and b is not None else None
            rows.append(row)
            log(_format_row(row))
    return rows


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


TABLE_HEADER = (
    f"{'L':>6} {'method':<10} {'fwd ms':>9} {'x ref [min-max]':>18} {'verdict':<12} "
    f"{'fwd+bwd ms':>11} {'x ref [min-max]':>18} {'verdict':<12} {'peak MiB':>9} {'/ ref':>6}"
)


def _ratio_cell(r: dict, mode: str) -> str:
    if r.get(f"{mode}_ms_speedup") is None:
        return f"{'-':>18}"
    return (f"{r[f'{mode}_ms_speedup']:6.2f} [{r[f'{mode}_ms_speedup_min']:.2f}-"
            f"{r[f'{mode}_ms_speedup_max']:.2f}]").rjust(18)


def _format_row(r: dict) -> str:
    if r.get("skipped"):
        return f"{r['L']:>6} {r['method']:<10} skipped: {r['skipped']}"
    return (
        f"{r['L']:>6} {r['method']:<10} {_fmt(r['fwd_ms'], '9.2f')} {_ratio_cell(r, 'fwd')} "
        f"{r['fwd_verdict']:<12} {_fmt(r['fwd_bwd_ms'], '11.2f')} {_ratio_cell(r, 'fwd_bwd')} "
        f"{r['fwd_bwd_verdict']:<12} {_fmt(r['peak_mb'], '9.1f')} {_fmt(r.get('mem_ratio'), '6.2f')}"
    )


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other work on the machine), where known."""
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


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
        "blocks": args.blocks,
        "min_time": args.min_time,
        "load_average": _load_average(),
    }
    print(f"# {header['date']} | {header['machine']} | torch {header['torch']} | "
          f"{header['threads']} threads | load average {header['load_average']}")
    print(f"# B={args.batch} H={args.heads} dtype={args.dtype} device={args.device}; methods interleaved in "
          f"{args.blocks} blocks, about {args.min_time}s per method and mode; x ref = median over blocks of "
          "(reference time / method time) [smallest-largest block]; verdict: faster/slower when every block "
          "agrees, inconclusive when they fall on both sides of 1")
    print(TABLE_HEADER)
    rows = run_conv_bench(
        lengths=args.lengths, batch=args.batch, heads=args.heads, dtype=args.dtype,
        device=args.device, min_time=args.min_time, blocks=args.blocks, attn_max_len=args.attn_max_len,
        memory=not args.no_memory,
    )
    header["load_average_after"] = _load_average()
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
                   help="about this many seconds of timed calls per method and mode, spread over the "
                        "blocks (default 0.5; at least one call per block)")
    c.add_argument("--blocks", type=int, default=7,
                   help="interleaved blocks; each gives one paired ratio per method (default 7; a verdict "
                        f"needs at least {MIN_BLOCKS_FOR_VERDICT})")
    c.add_argument("--attn-max-len", type=int, default=8192,
                   help="skip attention above this L (quadratic cost; default 8192)")
    c.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    c.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    c.add_argument("--json", metavar="PATH", default="bench_conv.json",
                   help="write the rows as JSON here (default bench_conv.json)")
    c.set_defaults(func=_bench_conv)

    from neuroconv.extras import MissingExtraError

    try:
        from neuroconv.pipelines.bench import add_bench_preprocess
    except MissingExtraError as e:  # the sequence library alone: `bench conv` works, this says what to install
        from neuroconv.cli import add_unavailable

        add_unavailable(bsub, "preprocess", e, "neuroconv bench preprocess")
        return
    add_bench_preprocess(bsub)
