"""Error budgets shared by the kernel tests (imported by the test modules beside it).

A kernel result passes when, against a float64 reference,

    err(kernel) <= 2 * err(plain PyTorch in that dtype) + atol * scale

where "plain PyTorch in that dtype" is the ``*_ref`` twin fed the same dtype inputs
(mamba's ops/triton test convention) and ``scale`` is the reference's largest magnitude.
"""

from __future__ import annotations

import pytest
import torch

ATOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}

needs_interpreter_or_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() or __import__("os").environ.get("TRITON_INTERPRET") == "1"),
    reason="needs CUDA or TRITON_INTERPRET=1",
)


def grads(out: torch.Tensor, inputs: list[torch.Tensor], dy: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(out, inputs, dy.to(out.dtype)))


def check_budget(name: str, got: torch.Tensor, base: torch.Tensor, exact: torch.Tensor, dtype) -> None:
    """``got`` (kernel) and ``base`` (torch twin in ``dtype``) against ``exact`` (float64)."""
    assert got.shape == exact.shape, (name, got.shape, exact.shape)
    assert torch.isfinite(got).all(), f"{name}: non-finite values"
    exact = exact.double()
    err = (got.double() - exact).abs().max().item()
    err_base = (base.double() - exact).abs().max().item()
    scale = max(1.0, exact.abs().max().item())
    budget = 2 * err_base + ATOL[dtype] * scale
    assert err <= budget, f"{name}: error {err:.3e} > budget {budget:.3e} (torch twin {err_base:.3e})"
