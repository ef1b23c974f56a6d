"""Error budgets, and the kernels compared with their torch twins against float64.

One implementation for the tests (``tests/kernels``), the validation command
(``python -m neuroconv.kernel_tools.check``) and ``backend="auto"``'s self-check.

The budget (mamba's ``ops/triton`` convention): a kernel result passes when, against a
float64 reference computed from the same (rounded) inputs,

    err(kernel) <= 2 * err(plain PyTorch in that dtype) + ATOL[dtype] * scale

where ``err`` is the largest absolute difference, "plain PyTorch in that dtype" is the
``*_ref`` twin fed the same inputs in that dtype (computed in float32 for
float16/bfloat16, like the kernels), and ``scale`` is the reference's largest magnitude
(at least 1). float32 with TF32 dots (``tf32``: a 10-bit mantissa) is held to the float16
budget, its twin fed float16-rounded inputs: TF32 rounds every dot operand to float16's
precision, so float32's budget would be the wrong yardstick.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

__all__ = ["ATOL", "budget", "compare_fftconv", "compare_monarch", "failures", "budget_dtype_for", "grads"]

ATOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def budget_dtype_for(dtype: torch.dtype, fp32_precision: Optional[str] = None) -> torch.dtype:
    """The dtype whose budget a kernel run is held to (see the module docstring)."""
    return torch.float16 if dtype == torch.float32 and fp32_precision == "tf32" else dtype


def budget(got: torch.Tensor, base: torch.Tensor, exact: torch.Tensor, dtype: torch.dtype) -> dict:
    """Compare ``got`` (kernel) and ``base`` (torch twin) with ``exact`` (float64).

    Returns ``{"ok", "err", "err_torch", "budget", "scale", "problem"}``; ``problem`` says
    what failed (shape, non-finite values, or the error above its budget) or is None.
    """
    out = dict(ok=False, err=None, err_torch=None, budget=None, scale=None, problem=None)
    if tuple(got.shape) != tuple(exact.shape):
        out["problem"] = f"shape {tuple(got.shape)} != {tuple(exact.shape)}"
        return out
    exact = exact.detach().double().cpu()
    got, base = got.detach().double().cpu(), base.detach().double().cpu()
    if not bool(torch.isfinite(got).all()):
        out["problem"] = "non-finite values"
        return out
    if got.numel() == 0:
        out.update(ok=True, err=0.0, err_torch=0.0, budget=0.0, scale=1.0)
        return out
    err = (got - exact).abs().max().item()
    err_base = (base - exact).abs().max().item()
    scale = max(1.0, exact.abs().max().item())
    b = 2 * err_base + ATOL[dtype] * scale
    out.update(err=err, err_torch=err_base, budget=b, scale=scale, ok=err <= b)
    if not out["ok"]:
        out["problem"] = f"error {err:.3e} > budget {b:.3e} (torch twin {err_base:.3e})"
    return out


def failures(records: list[dict]) -> list[str]:
    """``"name: problem"`` for each failed record of a comparison."""
    return [f"{r['name']}: {r['problem']}" for r in records if not r["ok"]]


def grads(out: torch.Tensor, inputs: list[torch.Tensor], dy: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of ``out`` with respect to ``inputs`` for the output gradient ``dy``."""
    return list(torch.autograd.grad(out, inputs, dy.to(out.dtype)))


def _fftconv_inputs(B, H, L, Lk, causal, gates, with_D, seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    t = {"u": r(B, H, L), "k": r(H, Lk) / math.sqrt(Lk), "D": r(H) if with_D else None,
         "g1": r(B, H, L) if gates else None, "g2": r(B, H, L) if gates else None}
    return t, torch.randn(B, H, L, generator=g, dtype=torch.float64)


def compare_fftconv(B: int, H: int, L: int, Lk: int, causal: bool, *, gates: bool = True,
                    with_D: bool = True, dtype: torch.dtype = torch.float32, seed: int = 0,
                    max_onchip: Optional[int] = None, k_dtype: Optional[torch.dtype] = None,
                    device="cpu", budget_dtype: Optional[torch.dtype] = None, fn=None) -> list[dict]:
    """FlashButterfly ``fftconv_fn`` against its twin and float64, output and every gradient.

    Inputs are drawn in float64 (seeded), rounded to ``dtype`` (``k`` to ``k_dtype``) and
    put on ``device``; ``Lk`` is made odd for centred kernels. The kernel (``fn``, default
    ``fftconv_fn`` with ``max_onchip``) and the twin ``gated_fftconv_ref`` run on them; the
    float64 reference runs ``gated_fftconv_ref`` on the same rounded values in float64.
    ``budget_dtype`` (default ``dtype``): the dtype whose budget applies; when it differs,
    the twin is fed inputs rounded to it. Returns one record per tensor (``y``, ``du``,
    ``dk``, ``dD``, ``dg1``, ``dg2``) with :func:`budget`'s fields, ``name`` and
    ``dtype_ok`` (the result has its input's dtype).
    """
    from .flashbutterfly import fftconv_fn, gated_fftconv_ref

    if not causal and Lk % 2 == 0:
        Lk += 1
    budget_dtype = budget_dtype or dtype
    t, dy = _fftconv_inputs(B, H, L, Lk, causal, gates, with_D, seed)
    dts = {"k": k_dtype or dtype}
    c = {n: None if v is None else v.to(device, dts.get(n, dtype)).requires_grad_() for n, v in t.items()}
    c64 = {n: None if v is None else v.detach().double().requires_grad_() for n, v in c.items()}
    if budget_dtype != dtype:
        ctw = {n: None if v is None else v.detach().to(budget_dtype).requires_grad_() for n, v in c.items()}
    else:
        ctw = c
    dy = dy.to(device)

    def run(f, ins):
        y = f(ins["u"], ins["k"], ins["D"], causal=causal, g1=ins["g1"], g2=ins["g2"])
        return [y, *grads(y, [v for v in ins.values() if v is not None], dy)]

    kernel = fn or (lambda *a, **kw: fftconv_fn(*a, max_onchip=max_onchip, **kw))
    kern, twin, exact = run(kernel, c), run(gated_fftconv_ref, ctw), run(gated_fftconv_ref, c64)
    names = ["y"] + ["d" + n for n, v in c.items() if v is not None]
    inputs = [c["u"]] + [v for v in c.values() if v is not None]  # y has u's dtype
    out = []
    for name, a, b, e, inp in zip(names, kern, twin, exact, inputs):
        r = dict(name=name, dtype_ok=a.dtype == inp.dtype, **budget(a, b, e, budget_dtype))
        if not r["dtype_ok"]:
            r["ok"], r["problem"] = False, f"dtype {a.dtype} != input dtype {inp.dtype}"
        out.append(r)
    return out


def compare_monarch(B: int, H: int, L: int, n1: int, n2: int, Lk: int, causal: bool, *,
                    with_D: bool = True, dtype: torch.dtype = torch.float32, seed: int = 0, device="cpu",
                    budget_dtype: Optional[torch.dtype] = None) -> list[dict]:
    """The learned-butterfly kernel ``butterfly_conv_fn`` against its twin
    ``butterfly_conv_ref`` and float64, output and every gradient (``u``, ``k``, ``D`` and
    the six factor tensors), for a transform of size ``n = n1 * n2`` (``L <= n / 2``).

    The factors are random complex matrices (seeded; rows of unit norm in expectation), not
    the DFT: the kernel must compute the Monarch products for any factors, and no DFT
    symmetry hides an indexing error. Inputs are drawn in float64, rounded to ``dtype``;
    the factors are float32 for the kernel and the twin, float64 for the reference.
    ``Lk`` is made odd for centred kernels. Records as :func:`compare_fftconv`.
    """
    from .monarch import butterfly_conv_fn, butterfly_conv_ref

    if not causal and Lk % 2 == 0:
        Lk += 1
    budget_dtype = budget_dtype or dtype
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    shapes = [(n1, n1), (n1, n2), (n2, n2)] * 2
    scale = [n1 ** -0.5, 1.0, n2 ** -0.5] * 2  # complex normal entries; unit-norm rows
    factors = [r(a, b, 2) * (s / math.sqrt(2)) for (a, b), s in zip(shapes, scale)]
    u, k = r(B, H, L), r(H, Lk) / math.sqrt(Lk)
    D = r(H) if with_D else None
    dy = r(B, H, L).to(device)

    def outputs(fn, dt, fdt):
        ins = [None if t is None else t.to(dtype).to(device, dt).requires_grad_() for t in (u, k, D)]
        fs = [f.to(device, fdt).requires_grad_() for f in factors]
        y = fn(ins[0], ins[1], ins[2], fs[:3], fs[3:], causal=causal)
        return [y, *grads(y, [t for t in ins if t is not None] + fs, dy)]

    kern = outputs(butterfly_conv_fn, dtype, torch.float32)
    twin = outputs(butterfly_conv_ref, budget_dtype, torch.float32)
    exact = outputs(butterfly_conv_ref, torch.float64, torch.float64)
    names = ["y", "du", "dk"] + (["dD"] if with_D else []) + ["df1", "dtw", "df2", "dg1", "dts", "dg2"]
    out = []
    for i, (name, a, b, e) in enumerate(zip(names, kern, twin, exact)):
        want = dtype if i < 3 + with_D else torch.float32
        rec = dict(name=name, dtype_ok=a.dtype == want, **budget(a, b, e, budget_dtype))
        if not rec["dtype_ok"]:
            rec["ok"], rec["problem"] = False, f"dtype {a.dtype} != {want}"
        out.append(rec)
    return out
