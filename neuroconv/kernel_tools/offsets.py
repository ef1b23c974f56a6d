"""Large offsets: the kernels' index arithmetic at B·H·L > 2³¹ elements, without the memory.

A kernel that computes ``row * L`` in 32-bit integers addresses the wrong memory once
``B·H·L`` passes 2³¹ elements (a 64 x 768 x 64K batch is 3.2·10⁹). On a GPU with the
memory, ``python -m neuroconv.kernel_tools.check`` runs such a shape for real. This module
checks the same arithmetic in isolation under the Triton interpreter, on any machine:

1. The real launchers (FlashButterfly's forward and backward on chip and three-pass,
   the learned butterfly's) run on *meta* tensors of such a shape (no memory), through
   :mod:`neuroconv.kernels.launches`.
2. Every launch is intercepted (:func:`neuroconv.kernels.launches.launch_hook`). The
   interpreter runs the corner programs of its grid (first and last index on each axis),
   executing the kernel's own index expressions, with every tensor argument given a
   synthetic address (storages 2⁴⁴ bytes apart) and every load, store and atomic
   recorded instead of performed (loads return zeros).
3. Each access must fall inside the tensor it belongs to (a 32-bit product that wrapped
   negative lands outside), and, for every argument of more than 2³¹ elements, the
   corner programs must reach past element 2³¹ (a product that wrapped to a small
   positive value stays inside but never reaches the top rows).

``python -m neuroconv.kernel_tools.offsets`` runs it (``TRITON_INTERPRET=1`` is set when no
other value is) and prints one line per launch; exit status 1 on a violation.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import os
import sys
import time

import numpy as np
import torch

__all__ = ["dry_run", "DryRun", "check_launchers", "CASES"]

_REGION = 1 << 44  # bytes between synthetic storages
_LIMIT = 1 << 31


class _Ptr:
    """What the interpreter sees of a tensor argument: an address and a dtype."""

    def __init__(self, address: int, dtype: torch.dtype):
        self.address, self.dtype = address, dtype

    def data_ptr(self) -> int:
        return self.address


class DryRun:
    """Records of one dry run: one dict per launch (kernel, grid, programs run, the
    arguments' extents and the highest element each access reached, violations)."""

    def __init__(self, max_programs: int = 8):
        self.launches: list[dict] = []
        self.max_programs = max_programs
        self._cur: dict | None = None

    # -- addresses ----------------------------------------------------------------------
    def _bind(self, name: str, t: torch.Tensor, storages: dict) -> _Ptr:
        key = t.untyped_storage()._cdata
        base = storages.setdefault(key, (len(storages) + 1) * _REGION)
        start = base + t.storage_offset() * t.element_size()
        self._cur["args"][name] = dict(start=start, end=start + t.numel() * t.element_size(),
                                       itemsize=t.element_size(), numel=t.numel(), reached=-1,
                                       accessed=False)
        return _Ptr(start, t.dtype)

    def _record(self, addrs: np.ndarray, mask: np.ndarray | None, kind: str) -> None:
        a = np.asarray(addrs, dtype=np.uint64)
        if mask is not None:
            a = a[np.broadcast_to(np.asarray(mask, dtype=bool), a.shape)]
        a = a.reshape(-1)
        if a.size == 0:
            return
        inside = np.zeros(a.shape, dtype=bool)
        for arg in self._cur["args"].values():
            hit = (a >= np.uint64(arg["start"])) & (a < np.uint64(arg["end"]))
            if hit.any():
                inside |= hit
                arg["accessed"] = True
                top = int(a[hit].max()) - arg["start"]
                arg["reached"] = max(arg["reached"], top // arg["itemsize"])
        if not inside.all():
            bad = int(a[~inside][0])
            self._cur["violations"].append(
                f"{kind} at address {bad:#x} outside every argument of program {self._cur['pid']}")

    # -- the launch hook ----------------------------------------------------------------
    def __call__(self, kernel, grid, args, kwargs):
        from triton.runtime import interpreter as ti

        if not isinstance(kernel, ti.InterpretedFunction):
            raise RuntimeError("the large-offset dry run needs TRITON_INTERPRET=1 set before triton "
                               "is imported (run `python -m neuroconv.kernel_tools.offsets`).")
        fn = kernel.rewrite()
        spec = inspect.getfullargspec(fn)
        kwargs = {k: v for k, v in kwargs.items() if k in spec.args or k in spec.kwonlyargs}
        call = inspect.getcallargs(fn, *args, **kwargs)
        constexprs = ti.GridExecutor(fn, kernel.arg_names, grid).constexprs
        g = tuple(int(x) for x in grid) + (1,) * (3 - len(grid))
        self._cur = dict(kernel=kernel.__name__, grid=list(g), programs=[], args={}, violations=[],
                         pid=None)
        storages: dict = {}
        conv = {}
        for name, a in call.items():
            if name in constexprs:
                conv[name] = a
            elif isinstance(a, torch.Tensor):
                conv[name] = ti._implicit_cvt(self._bind(name, a, storages))
            else:
                conv[name] = ti._implicit_cvt(a)
        corners = sorted(set(itertools.product(*[(0, n - 1) for n in g])))[: self.max_programs]
        b = ti.interpreter_builder
        scope = ti._patch_lang(fn)
        try:
            b.set_grid_dim(*g)
            for pid in corners:
                self._cur["pid"] = pid
                self._cur["programs"].append(list(pid))
                b.set_grid_idx(*pid)
                fn(**conv)
        finally:
            scope.restore()
        for name, arg in self._cur["args"].items():
            if arg["numel"] > _LIMIT and arg["accessed"] and arg["reached"] < _LIMIT:
                self._cur["violations"].append(
                    f"{name}: {arg['numel']} elements, but the last programs reached only element "
                    f"{arg['reached']} (< 2^31): index arithmetic wrapped around?")
        self._cur.pop("pid")
        self.launches.append(self._cur)
        self._cur = None

    @contextlib.contextmanager
    def _memory(self):
        """Loads, stores and atomics of the interpreter recorded, not performed."""
        from triton.runtime import interpreter as ti

        b = ti.interpreter_builder

        def load(ptrs, mask, other, cache_policy, is_volatile):
            self._record(ptrs.data, mask.data, "load")
            ty = ptrs.get_element_ty()
            return ti.TensorHandle(np.zeros(ptrs.data.shape, dtype=ti._get_np_dtype(ty)), ty)

        def store(ptrs, value, mask, cache_policy):
            self._record(ptrs.data, mask.data, "store")

        def atomic_rmw(op, ptr, val, mask, sem, scope):
            self._record(ptr.data, mask.data, "atomic")
            return ti.TensorHandle(np.zeros_like(val.data), val.dtype.scalar)

        def atomic_cas(ptr, cmp, val, sem, scope):
            self._record(ptr.data, None, "atomic")
            return ti.TensorHandle(np.zeros_like(cmp.data), cmp.dtype.scalar)

        patched = dict(create_masked_load=load, create_masked_store=store, create_atomic_rmw=atomic_rmw,
                       create_atomic_cas=atomic_cas)
        for name, f in patched.items():
            setattr(b, name, f)
        try:
            yield
        finally:
            for name in patched:
                delattr(b, name)

    @property
    def violations(self) -> list[str]:
        return [f"{r['kernel']}: {v}" for r in self.launches for v in r["violations"]]


@contextlib.contextmanager
def dry_run(max_programs: int = 8):
    """Within this context every kernel launch (through
    :func:`neuroconv.kernels.launches.launch`) runs as a recorded dry run on the
    interpreter; yields the :class:`DryRun` that collects it."""
    from neuroconv.kernels.launches import launch_hook

    run = DryRun(max_programs)
    with launch_hook(run), run._memory():
        yield run


# ----------------------------------------------------------------------------- the launchers


def _rows_over_limit(B: int, L: int) -> int:
    """Smallest H with B*H*L > 2^31."""
    return _LIMIT // (B * L) + 1


def _flashbutterfly(L: int, causal: bool, gated: bool, max_onchip: int | None, dtype=torch.bfloat16):
    from .precompile import meta_fftconv

    B = 2
    H = _rows_over_limit(B, L)
    info = meta_fftconv(B, H, L, causal, gated=gated, dtype=dtype, max_onchip=max_onchip)
    return dict(B=B, H=H, L=L, elements=B * H * L, **info)


def _monarch(L: int, causal: bool, dtype=torch.bfloat16):
    from .precompile import meta_butterfly

    B = 2
    H = _rows_over_limit(B, L)
    # two rows per backward program (the GPU strides over many; the arithmetic is the same)
    info = meta_butterfly(B, H, L, causal, dtype=dtype, bwd_rows_per_program=2)
    return dict(B=B, H=H, L=L, elements=B * H * L, **info)


#: (name, function, kwargs) of the dry-run cases: every launcher and code path.
CASES = (
    ("flashbutterfly on chip, causal, ungated", _flashbutterfly, dict(L=1000, causal=True, gated=False,
                                                                      max_onchip=None)),
    ("flashbutterfly on chip, centred, gated", _flashbutterfly, dict(L=1000, causal=False, gated=True,
                                                                     max_onchip=None)),
    ("flashbutterfly three-pass, causal, gated", _flashbutterfly, dict(L=1000, causal=True, gated=True,
                                                                       max_onchip=512)),
    ("flashbutterfly three-pass, centred, ungated", _flashbutterfly, dict(L=1000, causal=False, gated=False,
                                                                          max_onchip=512)),
    ("learned butterfly, causal", _monarch, dict(L=500, causal=True)),
)


def check_launchers(cases=CASES, max_programs: int = 8) -> list[dict]:
    """Dry-run every case; one record per case: name, shape, plan, launches (kernel, grid,
    programs run, the largest element index reached), violations, ok, seconds."""
    out = []
    for name, fn, kw in cases:
        t0 = time.perf_counter()
        rec = dict(name=name, ok=False, violations=[], launches=[], error=None)
        try:
            with dry_run(max_programs) as run:
                rec.update(fn(**kw))
            rec["violations"] = run.violations
            rec["launches"] = [dict(kernel=r["kernel"], grid=r["grid"], programs=len(r["programs"]),
                                    max_index=max([a["reached"] for a in r["args"].values()] or [-1]))
                               for r in run.launches]
            rec["ok"] = not rec["violations"] and bool(run.launches)
        except Exception as e:  # noqa: BLE001 - reported, the other cases go on
            rec["error"] = f"{type(e).__name__}: {str(e).strip()[:300]}"
        rec["seconds"] = round(time.perf_counter() - t0, 2)
        out.append(rec)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m neuroconv.kernel_tools.offsets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args(argv)
    recs = check_launchers()
    for r in recs:
        big = sum(1 for launch in r["launches"] if launch["max_index"] >= _LIMIT)
        status = "ok  " if r["ok"] else "FAIL"
        print(f"{status} {r['name']}: B·H·L = {r.get('elements', 0):.3e} ({r.get('plan', '?')}), "
              f"{len(r['launches'])} launches, {big} beyond element 2^31, {r['seconds']}s"
              + "".join(f"\n     {v}" for v in r["violations"]) + (f"\n     {r['error']}" if r["error"] else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(recs, f, indent=1)
    return 0 if all(r["ok"] for r in recs) else 1


if __name__ == "__main__":
    os.environ.setdefault("TRITON_INTERPRET", "1")
    sys.exit(main())
