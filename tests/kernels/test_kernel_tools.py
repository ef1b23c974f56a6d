"""The kernel tooling: offline sm_90 compilation (catches kernels that only the GPU would
reject, in CI without a GPU) and the GPU benchmark grid's helpers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton")


def _can_compile_for_nvidia() -> bool:
    try:
        from triton.backends.nvidia.compiler import get_ptxas

        return os.path.exists(get_ptxas(90).path)
    except Exception:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _can_compile_for_nvidia(), reason="triton's NVIDIA backend (ptxas) is absent")
def test_every_kernel_compiles_for_sm90_within_shared_memory():
    """Each kernel and code path, compiled offline for H100 at a small size, in a fresh
    process without TRITON_INTERPRET. (``python -m neuroconv.kernels.resources`` checks the
    largest sizes against the 227 KB shared-memory limit; slower, so not run here.)"""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    res = subprocess.run(
        [sys.executable, "-m", "neuroconv.kernels.resources", "--small", "--no-usage",
         "--classes", "half", "float32"],
        capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "18/18 kernels compile" in res.stdout


def test_bench_byte_model_and_table():
    from neuroconv.kernels import bench

    n = 2 * 3 * 5 * 2
    assert bench._bytes(2, 3, 5, 2, "fwd") == 2 * n  # read u, write y
    assert bench._bytes(2, 3, 5, 2, "fwd+bwd") == 5 * n  # + read dy, u; write du
    assert bench._bytes(2, 3, 5, 2, "fwd", gated=True) == 4 * n
    row = dict(device="X", dtype="bfloat16", mode="fwd", gated=False, B=8, H=768, L=1024,
               backend="triton", ms=0.5, speedup=3.0, peak_mb=10.0, bytes=1, hbm_frac=0.5,
               max_err=1e-3, status="ok")
    md = bench.markdown([row], "python -m neuroconv.kernels.bench --quick")
    assert "| bfloat16 | fwd | 8 | 768 | 1024 | triton | 0.500 | 3.00 | 10 | 50% |" in md
    assert "Device: X" in md


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_bench_main_without_gpu_says_so(capsys):
    from neuroconv.kernels import bench

    assert bench.main(["--quick"]) == 2
    assert "CUDA" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_grid_runs():
    from neuroconv.kernels.bench import run_gpu_grid

    rows = run_gpu_grid(dtypes=("float32", "bfloat16"), batches=(2,), H=8, lengths=(256, 8192),
                        backends=("triton", "torch"), rep_ms=5, verbose=False)
    assert len(rows) == 2 * 2 * 2 * 2
    assert all(r["status"] == "ok" and r["ms"] > 0 for r in rows), rows
    assert all(r["max_err"] < (1e-3 if r["dtype"] == "float32" else 0.1) for r in rows), rows
