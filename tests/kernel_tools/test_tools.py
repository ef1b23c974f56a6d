"""The kernel tooling: the GPU benchmark grid's helpers, the parallel precompile's launch
collection, and the error budget itself. (The offline sm_90 compilation runs in the
validation command, tests/kernel_tools/test_check.py.)"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")


def test_bench_byte_model_and_table():
    from neuroconv.kernel_tools import bench

    n = 2 * 3 * 5 * 2
    assert bench._bytes(2, 3, 5, 2, "fwd") == 2 * n  # read u, write y
    assert bench._bytes(2, 3, 5, 2, "fwd+bwd") == 5 * n  # + read dy, u; write du
    assert bench._bytes(2, 3, 5, 2, "fwd", gated=True) == 4 * n  # read u, g1, g2; write y
    assert bench._bytes(2, 3, 5, 2, "fwd+bwd", gated=True) == 11 * n  # + dy, u, g1, g2; du, dg1, dg2
    assert [bench.byte_formula(m, g) for g in (False, True) for m in ("fwd", "fwd+bwd")] == \
        ["2sN", "5sN", "4sN", "11sN"]
    row = dict(device="X", dtype="bfloat16", mode="fwd", gated=False, B=8, H=768, L=1024,
               backend="triton", ms=0.5, speedup=3.0, peak_mb=10.0, peak_vs_torch=0.25, bytes=1,
               bytes_formula="2sN", hbm_frac=0.5, max_err=1e-3, status="ok")
    md = bench.markdown([row], "python -m neuroconv.kernel_tools.bench --quick")
    assert "| bfloat16 | fwd | 8 | 768 | 1024 | triton | 0.500 | 3.00 | 10 | 0.25 | 50% | 2sN |" in md
    assert "Device: X" in md and "fwd+bwd 5sN" in md


def test_wall_timer_is_a_median():
    from neuroconv.kernel_tools import bench

    calls = []
    assert bench.wall_timer(lambda: calls.append(1), rep_ms=1) >= 0 and len(calls) >= 3


def test_error_budget_flags_what_it_should():
    from neuroconv.kernels.verify import ATOL, budget

    exact = torch.linspace(-3, 3, 50, dtype=torch.float64)
    base = exact + 1e-4
    assert budget(exact.float() + 1e-4, base, exact, torch.float32)["ok"]  # as good as torch
    r = budget(exact.float() + 1e-3, base, exact, torch.float32)  # 10x torch's own error
    assert not r["ok"] and "> budget" in r["problem"]
    assert r["budget"] == pytest.approx(2e-4 + ATOL[torch.float32] * 3, rel=1e-6)
    bad = exact.clone()
    bad[3] = float("nan")
    assert budget(bad, base, exact, torch.float32)["problem"] == "non-finite values"
    assert "shape" in budget(exact[:10], base, exact, torch.float32)["problem"]


def test_precompile_reduces_launches_to_triton_specialisations():
    from neuroconv.kernel_tools import precompile as pc

    key = lambda *ints: pc.spec_key(dict(module="m", name="k", args=[("int", i) for i in ints],  # noqa: E731
                                         kwargs={}))
    assert key(16) == key(32) != key(17) == key(18) != key(1)  # divisible by 16, plain, == 1
    assert key(2**31) != key(2**31 - 16)  # 64-bit past 2^31
    specs, launches = pc.collect([lambda: pc.meta_fftconv(2, 3, 100, True, gated=True),
                                  lambda: pc.meta_fftconv(2, 3, 100, True, gated=True),  # the same again
                                  lambda: pc.meta_fftconv(1, 2, 300, False, max_onchip=512),
                                  lambda: pc.meta_butterfly(2, 2, 30, False)])
    names = sorted(s["name"] for s in specs)
    assert launches > len(specs) >= 8
    assert set(names) == {"_fb_conv_kernel", "_fb_dk_kernel", "_tp_outer_fwd_kernel", "_tp_inner_kernel",
                          "_tp_xcorr_kernel", "_tp_outer_inv_kernel", "_monarch_fwd_kernel",
                          "_monarch_bwd_kernel"}
    done = []
    recs = pc.compile_all(specs, jobs=1, worker=lambda s: dict(name=s["name"], ok=True, error=None, seconds=0.0),
                          on_done=done.append)
    assert len(recs) == len(done) == len(specs) and all(r["ok"] for r in recs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_bench_main_without_gpu_says_so(capsys):
    from neuroconv.kernel_tools import bench

    assert bench.main(["--quick"]) == 2
    assert "CUDA" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_grid_runs():
    from neuroconv.kernel_tools.bench import run_grid

    rows = run_grid(dtypes=("float32", "bfloat16"), batches=(2,), H=8, lengths=(256, 8192),
                    backends=("triton", "torch"), device="cuda", rep_ms=5, verbose=False)
    assert len(rows) == 2 * 2 * 2 * 2
    assert all(r["status"] == "ok" and r["ms"] > 0 for r in rows), rows
    assert all(r["max_err"] < (1e-3 if r["dtype"] == "float32" else 0.1) for r in rows), rows
