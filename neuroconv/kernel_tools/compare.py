"""The learned-butterfly module against its kernel: the comparison shared by the tests
and the validation command.

It needs :class:`neuroconv.ButterflyFFTConv` (a layer the kernels do not know), so it
lives here rather than in :mod:`neuroconv.kernels.verify`, whose budget it uses.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from neuroconv.kernels.verify import budget, grads

__all__ = ["compare_butterfly"]


def compare_butterfly(L: int, l_max: int, Lk: int, causal: bool, *, perturb: bool = True,
                      with_D: bool = True, dtype: torch.dtype = torch.float32, seed: int = 0,
                      B: int = 2, H: int = 2, device="cpu",
                      budget_dtype: Optional[torch.dtype] = None) -> list[dict]:
    """The learned-butterfly kernel (``ButterflyFFTConv(backend="triton")``) against the
    module's torch path in ``dtype`` and its float64 reference, output and every gradient
    (``u``, ``k``, ``D`` and the six Monarch factors). ``perturb`` moves the factors away
    from the exact DFT (no symmetry left). Records as
    :func:`neuroconv.kernels.verify.compare_fftconv`."""
    from neuroconv.butterfly import ButterflyFFTConv
    from neuroconv.kernels.monarch import butterfly_conv_ref

    if not causal and Lk % 2 == 0:
        Lk += 1
    budget_dtype = budget_dtype or dtype
    torch.manual_seed(seed)
    m = ButterflyFFTConv(l_max, causal=causal, backend="torch").to(device)
    if perturb:
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1 * torch.randn_like(p))
    params = [m.dft.f1, m.dft.twiddle, m.dft.f2, m.idft.f1, m.idft.twiddle, m.idft.f2]
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, H, L, generator=g, dtype=torch.float64)
    k = torch.randn(H, Lk, generator=g, dtype=torch.float64) / math.sqrt(Lk)
    D = torch.randn(H, generator=g, dtype=torch.float64) if with_D else None
    dy = torch.randn(B, H, L, generator=g, dtype=torch.float64).to(device)

    def prep(t, dt):
        return None if t is None else t.to(dtype).to(device, dt).requires_grad_()

    def outputs(fn, ps, dt):
        ins = [prep(u, dt), prep(k, dt), prep(D, dt)]
        y = fn(*ins)
        return [y, *grads(y, [t for t in ins if t is not None] + ps, dy)]

    try:
        m.backend = "triton"
        kern = outputs(m, params, dtype)
        m.backend = "torch"
        twin = outputs(m, params, budget_dtype)
    finally:
        m.backend = "torch"
    p64 = [p.detach().double().requires_grad_() for p in params]
    exact = outputs(lambda u_, k_, D_: butterfly_conv_ref(u_, k_, D_, p64[:3], p64[3:], causal=causal),
                    p64, torch.float64)
    names = ["y", "du", "dk"] + (["dD"] if with_D else []) + ["df1", "dtw", "df2", "dg1", "dts", "dg2"]
    out = []
    for i, (name, a, b, e) in enumerate(zip(names, kern, twin, exact)):
        want = dtype if i < 3 + with_D else params[0].dtype
        r = dict(name=name, dtype_ok=a.dtype == want, **budget(a, b, e, budget_dtype))
        if not r["dtype_ok"]:
            r["ok"], r["problem"] = False, f"dtype {a.dtype} != {want}"
        out.append(r)
    return out
