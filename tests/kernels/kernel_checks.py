"""Test helpers for the kernel tests (imported by the test modules beside it).

The error budgets and the kernel-versus-twin comparisons live in the package
(:mod:`neuroconv.kernels.verify`), shared with ``python -m neuroconv.kernel_tools.check``
and ``backend="auto"``'s self-check; this module re-exports them for the tests.
"""

from __future__ import annotations

import os

import pytest
import torch

from neuroconv.kernels.verify import ATOL, budget, failures  # noqa: F401

DEV = "cuda" if torch.cuda.is_available() else "cpu"

needs_interpreter_or_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="needs CUDA or TRITON_INTERPRET=1",
)


def assert_all_ok(records: list[dict], where: str = "") -> None:
    """Fail with every record that broke its budget (name, error, budget, torch's error)."""
    bad = failures(records)
    assert not bad, f"{where}: " + "; ".join(bad)
    assert records and all(r["err"] is not None for r in records)  # something was compared
