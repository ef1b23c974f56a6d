"""Compile, in parallel and ahead of time, every kernel a workload will launch (GPU).

Triton compiles each kernel on its first launch, one after another in one process; the
largest FlashButterfly kernels take from seconds to minutes each, and the validation
command's GPU run uses over a hundred distinct ones. So, before it runs anything:

1. :func:`collect`: the workload's launchers run on *meta* tensors of the real shapes (no
   memory, no GPU work) under a launch hook (:func:`neuroconv.kernels.launches.launch_hook`)
   that records each launch: kernel, grid, argument dtypes, integers and constexprs.
2. The launches are reduced to Triton's specialisations (:func:`spec_key`: pointer
   dtypes, each integer's class, i.e. 32/64-bit, ``== 1``, divisible by 16, and the
   constexprs and launch options).
3. :func:`compile_all`: a pool of processes runs ``JITFunction.warmup`` for each (it
   compiles and fills Triton's on-disk cache, launching nothing). The workload's own
   launches then load the cached binaries.

A miss (a specialisation this model does not predict, e.g. a misaligned view) costs one
compile at launch time, nothing else. Compile errors are reported per kernel: this is
also "every configuration the run uses compiles".
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib
import multiprocessing
import os
import time
from typing import Callable, Iterable

import torch

__all__ = ["collect", "spec_key", "compile_all", "warm_one", "meta_fftconv", "meta_butterfly"]


# ----------------------------------------------------------------------------- workloads


def meta_fftconv(B: int, H: int, L: int, causal: bool = True, **kwargs) -> dict:
    """Run the FlashButterfly launchers as ``fftconv_fn`` would for these arguments
    (forward, and the backward with every gradient), on meta tensors; returns the plan's
    summary. Keyword arguments: :func:`neuroconv.kernels.launches.fftconv_launches`'s."""
    from neuroconv.kernels.launches import fftconv_launches

    return fftconv_launches(B, H, L, causal, **kwargs)


def meta_butterfly(B: int, H: int, L: int, causal: bool = True, *, l_max: int | None = None, **kwargs) -> dict:
    """Run the learned-butterfly launchers as ``ButterflyFFTConv(l_max)`` would (its
    transform size, ``fft_size(2 * l_max)``, split by ``factor_size``), on meta tensors.
    Keyword arguments: :func:`neuroconv.kernels.launches.butterfly_launches`'s."""
    from neuroconv.butterfly import factor_size
    from neuroconv.fftconv import fft_size
    from neuroconv.kernels.launches import butterfly_launches

    n1, n2 = factor_size(fft_size(2 * (l_max or L)))
    return butterfly_launches(B, H, L, n1, n2, causal, **kwargs)


def _int_class(v: int) -> tuple:
    bits = "i32" if -(2**31) <= v < 2**31 else ("i64" if -(2**63) <= v < 2**63 else "u64")
    return (bits, v == 1, v % 16 == 0)


def _arg(a):
    if isinstance(a, torch.Tensor):
        aligned = (a.storage_offset() * a.element_size()) % 16 == 0
        return ("tensor", str(a.dtype).replace("torch.", ""), aligned)
    if isinstance(a, bool) or a is None or isinstance(a, (float, str)):
        return ("value", a)
    if isinstance(a, int):
        return ("int", a)
    raise TypeError(f"precompile: unexpected kernel argument of type {type(a).__name__}")


def spec_key(spec: dict) -> tuple:
    """What Triton specialises a launch on (the grid is not part of it)."""
    args = tuple(("int",) + _int_class(a[1]) if a[0] == "int" else a for a in spec["args"])
    return (spec["module"], spec["name"], args, tuple(sorted(spec["kwargs"].items())))


class _Collector:
    def __init__(self):
        self.specs: dict[tuple, dict] = {}
        self.launches = 0

    def __call__(self, kernel, grid, args, kwargs):
        fn = kernel.fn
        spec = dict(module=fn.__module__, name=fn.__name__, grid=[int(g) for g in grid],
                    args=[_arg(a) for a in args], kwargs=dict(kwargs))
        self.launches += 1
        self.specs.setdefault(spec_key(spec), spec)


def collect(workloads: Iterable[Callable[[], object]], device_programs: int | None = None) -> tuple[list[dict], int]:
    """Run each workload (a callable that calls the launchers on meta tensors) under the
    recording hook; return the distinct launch specs and the number of launches seen.

    ``device_programs``: what ``device_max_programs`` returns on the real device (the
    launchers size some grids and integer arguments by it); meta tensors would get the CPU
    value otherwise."""
    from neuroconv.kernels import launches

    col = _Collector()
    with launches.device_programs(device_programs), launches.launch_hook(col):
        for w in workloads:
            w()
    return list(col.specs.values()), col.launches


def warm_one(spec: dict) -> dict:
    """Compile one spec with ``JITFunction.warmup`` in this process (needs the GPU's
    driver); returns name, ok, seconds, error."""
    t0 = time.perf_counter()
    out = dict(name=spec["name"], kwargs={k: v for k, v in spec["kwargs"].items()}, ok=False, error=None)
    try:
        kernel = getattr(importlib.import_module(spec["module"]), spec["name"])
        args = [getattr(torch, a[1]) if a[0] == "tensor" else a[1] for a in spec["args"]]
        kernel.warmup(*args, grid=tuple(spec["grid"]), **spec["kwargs"])
        out["ok"] = True
    except Exception as e:  # noqa: BLE001 - a kernel that does not compile is a finding
        text = str(e).strip().splitlines()
        out["error"] = f"{type(e).__name__}: {text[0][:300] if text else ''}"
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def _init_worker():
    os.environ.pop("TRITON_INTERPRET", None)
    torch.set_num_threads(1)


def compile_all(specs: list[dict], jobs: int | None = None, worker: Callable[[dict], dict] = warm_one,
                timeout_s: float | None = None, on_done: Callable[[dict], None] | None = None) -> list[dict]:
    """Compile every spec in ``jobs`` processes (default: the CPU count, at most 32);
    ``jobs=1`` compiles in this process. Largest kernels first (they bound the wall time).
    Returns one record per spec; specs not done within ``timeout_s`` are reported as such
    (their compile happens at launch instead)."""
    order = sorted(specs, key=lambda s: -max([v for v in s["kwargs"].values() if isinstance(v, int)
                                              and not isinstance(v, bool)] or [0]))
    jobs = jobs or min(32, os.cpu_count() or 1)
    if jobs <= 1:
        out = []
        for s in order:
            out.append(worker(s))
            if on_done:
                on_done(out[-1])
        return out
    out = []
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker)
    try:
        futs = {pool.submit(worker, s): s for s in order}
        with contextlib.suppress(cf.TimeoutError):
            for f in cf.as_completed(futs, timeout=timeout_s):
                try:
                    rec = f.result()
                except Exception as e:  # noqa: BLE001 - a dead worker, reported per spec
                    rec = dict(name=futs[f]["name"], ok=False, error=f"{type(e).__name__}: {e}", seconds=None)
                out.append(rec)
                if on_done:
                    on_done(rec)
        for f, s in futs.items():
            if not f.done():
                f.cancel()
                out.append(dict(name=s["name"], kwargs=s["kwargs"], ok=False, seconds=None,
                                error=f"not compiled within {timeout_s} s (compiles at launch instead)"))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return out
