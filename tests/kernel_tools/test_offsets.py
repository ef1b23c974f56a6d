"""The large-offset dry run can fail: a kernel whose row offset is a 32-bit product is
caught both when the product wraps negative (an access outside the tensor) and when it
wraps to a small positive value (inside, but the last rows are never reached); the same
kernel with a 64-bit product passes. The real launchers' dry run runs in the validation
command (test_check.py)."""

from __future__ import annotations

import pytest
import torch
from tool_checks import needs_interpreter_or_cuda

pytestmark = [needs_interpreter_or_cuda,
              pytest.mark.skipif(torch.cuda.is_available(), reason="the dry run needs the interpreter")]

triton = pytest.importorskip("triton")
tl = triton.language

from neuroconv.kernel_tools.offsets import dry_run  # noqa: E402
from neuroconv.kernels.launches import launch  # noqa: E402


@triton.jit
def _copy_rows(X, Y, L, WIDE: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    if WIDE:
        base = row.to(tl.int64) * L
    else:
        base = row * L  # 32-bit: wraps past 2^31
    n = tl.arange(0, BLOCK)
    tl.store(Y + base + n, tl.load(X + base + n, mask=n < L), mask=n < L)


def _violations(rows: int, L: int, wide: bool) -> list[str]:
    x = torch.empty(rows, L, device="meta")
    y = torch.empty(rows, L, device="meta")
    with dry_run() as run:
        launch(_copy_rows, (rows,), x, y, L, WIDE=wide, BLOCK=16)
    assert len(run.launches) == 1 and run.launches[0]["programs"] == [[0, 0, 0], [rows - 1, 0, 0]]
    return run.violations


@pytest.mark.parametrize("rows", [(1 << 31) // 10 + 2,  # rows * L wraps negative
                                  (1 << 32) // 10 + 2])  # ... wraps to a small positive value
def test_32bit_offsets_are_caught_and_64bit_pass(rows):
    L = 10
    bad = _violations(rows, L, wide=False)
    assert bad and ("outside every argument" in bad[0] or "wrapped around" in bad[0]), bad
    assert _violations(rows, L, wide=True) == []


def test_small_shapes_have_nothing_to_report():
    assert _violations(5, 10, wide=False) == []
