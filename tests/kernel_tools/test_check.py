"""The validation command, ``python -m neuroconv.kernel_tools.check``: the quick run passes
under the interpreter (as CI runs it), a faulty kernel or a crashed section makes it fail
with the reason, the time budget skips and records, the timing code runs on the CPU, and
the GPU run's plan covers what the issue asks for (it cannot run here)."""

from __future__ import annotations

import json

import pytest
import torch
from tool_checks import needs_interpreter_or_cuda

pytestmark = needs_interpreter_or_cuda

check = pytest.importorskip("neuroconv.kernel_tools.check")
fb = pytest.importorskip("neuroconv.kernels.flashbutterfly")

GPU = torch.cuda.is_available()


def _run(tmp_path, *args):
    out = tmp_path / "report.json"
    rc = check.main([*args, "--json", str(out), "--markdown", str(tmp_path / "report.md")])
    return rc, json.loads(out.read_text()), (tmp_path / "report.md").read_text()


@pytest.mark.skipif(GPU, reason="the GPU runs the full check by hand (BENCHMARKS.md)")
def test_quick_check_passes_under_the_interpreter(tmp_path):
    rc, rep, md = _run(tmp_path, "--quick")
    bad = [f"{r['section']}: {r['name']}: {r['detail']}" for r in rep["records"] if r["status"] == "fail"]
    assert rc == 0 and rep["ok"] and not bad, bad
    assert list(rep["sections"]) == list(check.SECTIONS)
    by = lambda s, st="pass": [r for r in rep["records"] if r["section"] == s and r["status"] == st]  # noqa: E731
    assert len(by("correctness")) == len(check.correctness_cases(False, True))
    assert len(by("auto")) >= 1 and len(by("determinism")) == 3
    assert len(by("offsets")) == 5  # every launcher's dry run past 2^31 elements
    assert len(by("compile")) == 18  # every kernel compiled offline for sm_90
    assert len(by("torch_compile")) == 7  # 4 opchecks, LongConv (custom_op), triton_op traced, SequenceModel
    assert {r["section"] for r in rep["records"] if r["status"] == "skip"} == {
        "precompile", "offsets", "compile", "torch_compile", "timing"}  # GPU-only steps, said so
    for key in ("device", "torch", "triton", "cuda", "ops", "dot_precision_fp32"):
        assert key in rep["environment"]
    assert "## correctness" in md and "| section | status |" in md


def test_faulty_kernel_and_crashed_section_fail_the_run(tmp_path, monkeypatch):
    real = fb._fftconv_fwd
    monkeypatch.setattr(fb, "_fftconv_fwd", lambda *a, **kw: real(*a, **kw) * 1.01)
    monkeypatch.setattr(check, "correctness_cases", lambda gpu, quick: [check.Case(40, True, True)])

    def crash(rep, plan):
        raise RuntimeError("boom")

    monkeypatch.setattr(check, "section_determinism", crash)
    rc, rep, _ = _run(tmp_path, "--only", "correctness", "determinism")
    assert rc == 1 and not rep["ok"]
    (case,) = [r for r in rep["records"] if r["section"] == "correctness"]
    assert case["status"] == "fail" and case["detail"].startswith("y: error")
    assert [t["name"] for t in case["tensors"] if not t["ok"]][0] == "y"
    crashed = [r for r in rep["records"] if r["section"] == "determinism"]
    assert crashed[0]["name"] == "section crashed" and "RuntimeError: boom" in crashed[0]["detail"]


def test_time_budget_skips_and_records(tmp_path):
    rc, rep, _ = _run(tmp_path, "--only", "correctness", "--time-budget", "0.001")
    assert rc == 0
    assert {r["status"] for r in rep["records"] if r["section"] == "correctness"} == {"skip"}


@pytest.mark.skipif(GPU, reason="checks the CPU stand-in")
def test_timing_code_path_on_the_cpu(tmp_path):
    rc, rep, md = _run(tmp_path, "--only", "timing", "--cpu-timing")
    assert rc == 0
    rows = rep["timing"]
    assert {(r["mode"], r["gated"], r["bytes_formula"]) for r in rows} == {
        ("fwd", False, "2sN"), ("fwd+bwd", False, "5sN"), ("fwd", True, "4sN"), ("fwd+bwd", True, "11sN")}
    assert all(r["status"] == "ok" and r["ms"] > 0 and r["speedup"] is not None for r in rows)
    infos = [r for r in rep["records"] if r["section"] == "timing"]
    assert len(infos) == 4 and all("not a GPU number" in r["detail"] for r in infos)
    assert "| dtype | mode |" in md


def test_gpu_plan_covers_the_issue():
    """What the GPU run will do, checked here because it cannot run here."""
    for quick in (True, False):
        plan = check.make_plan(gpu=True, quick=quick)
        fft = [c for c in plan.cases if c.kind == "fftconv"]
        assert {c.dtype for c in fft} >= {"float32", "bfloat16", "float16"}
        assert {c.prec for c in fft if c.dtype == "float32"} == {None, "ieee", "tf32"}
        assert {(c.causal, c.gated) for c in fft} == {(True, True), (True, False), (False, True), (False, False)}
        lengths = {c.L for c in fft}
        assert 1 in lengths and {17, 97} & lengths and 65536 in lengths
        assert lengths & {255, 256, 257} and lengths & {4095, 4096, 4097}
        # every FFT size class, on chip and three-pass, for float32 and for half inputs
        for dts, top in ((("float32",), 131072), (("bfloat16", "float16"), 131072)):
            sizes = {fb.make_plan(c.L, fb.max_onchip_for(check._dt(c.dtype), torch.float32)).N
                     for c in fft if c.dtype in dts}
            assert {512, 2048, 8192, top} <= sizes
            assert any(fb.make_plan(c.L, fb.max_onchip_for(check._dt(c.dtype), torch.float32)).three_pass
                       for c in fft if c.dtype in dts)
        assert any(c.kind == "butterfly" for c in plan.cases)
        assert len(plan.auto) == 12
        assert all(b["B"] * b["H"] * b["L"] > 2**31 for b in plan.big)
        assert plan.timing["B"] == 64 and plan.timing["H"] == 768
        assert plan.timing["lengths"][0] == 256 and plan.timing["lengths"][-1] == 65536
        assert set(plan.timing["dtypes"]) == {"bfloat16", "float32"}


def _report():
    return check.Report([], True, None, None, None, stream=open("/dev/null", "w"))


def test_gpu_precompile_sees_every_launch_of_the_run():
    """The GPU run's precompile section, with a stand-in compiler: every launch of the
    run is collected (on meta tensors, sized for a 132-SM GPU) and reduced to Triton's
    specialisations."""
    plan = check.make_plan(gpu=True, quick=True)
    seen = []
    rep = _report()
    check.section_precompile(rep, plan, {}, device_programs=4 * 132, jobs=1,
                             worker=lambda s: seen.append(s) or dict(name=s["name"], ok=True, seconds=0.1))
    (rec,) = rep.records
    assert rec["status"] == "pass" and rec["launches"] > rec["kernels"] == len(seen) > 100, rec["detail"]
    assert {s["name"] for s in seen} >= {"_fb_conv_kernel", "_fb_dk_kernel", "_tp_xcorr_kernel",
                                         "_monarch_bwd_kernel"}
    assert {s["kwargs"]["PREC"] for s in seen} == {"tf32", "tf32x3", "ieee"}


@pytest.mark.parametrize("kind", ["fftconv", "butterfly"])
def test_large_offset_run_checks_the_last_row(kind, monkeypatch):
    """The GPU's B·H·L > 2^31 check, on a small shape here: passes on the kernels, fails
    when the last row is wrong, skips without the memory."""
    b = dict(name=kind, kind=kind, B=3, H=2, L=40)
    rep = _report()
    check._big_run(rep, b, torch.device("cpu"), free=1 << 40)
    check._big_run(rep, b, torch.device("cpu"), free=1 << 20)
    if kind == "fftconv":
        real = fb._fftconv_fwd

        def wrong_last_row(*a, **kw):
            y = real(*a, **kw)
            y[-1] += 0.5
            return y

        monkeypatch.setattr(fb, "_fftconv_fwd", wrong_last_row)
        check._big_run(rep, b, torch.device("cpu"), free=1 << 40)
    statuses = [r["status"] for r in rep.records]
    assert statuses == (["pass", "skip", "fail"] if kind == "fftconv" else ["pass", "skip"]), rep.records
    assert "not enough memory" in rep.records[1]["detail"]
