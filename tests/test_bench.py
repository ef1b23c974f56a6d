"""`neuroconv bench conv`: runs on the CPU, writes rows with ratios to the reference."""

from __future__ import annotations

import json

import pytest

from neuroconv.bench import run_conv_bench
from neuroconv.cli import main


def test_conv_bench_rows_and_ratios():
    rows = run_conv_bench(lengths=[64, 200], batch=2, heads=4, min_time=0.01, attn_max_len=100, log=lambda *_: None)
    methods = {(r["method"], r["L"]) for r in rows}
    assert {("reference", 64), ("torch", 64), ("attention", 64), ("reference", 200), ("torch", 200)} <= methods
    ref = {r["L"]: r for r in rows if r["method"] == "reference"}
    for r in rows:
        if r.get("skipped"):
            assert r["method"] == "attention" and r["L"] == 200 and r["fwd_ms"] is None
            continue
        # every ratio is this row's time (or memory) against the reference's, from the same run
        base = ref[r["L"]]
        assert r["fwd_ms_speedup"] == pytest.approx(base["fwd_ms"] / r["fwd_ms"])
        assert r["fwd_bwd_ms_speedup"] == pytest.approx(base["fwd_bwd_ms"] / r["fwd_bwd_ms"])
        if base["peak_mb"]:
            assert r["mem_ratio"] == pytest.approx(r["peak_mb"] / base["peak_mb"])


def test_conv_bench_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "conv", "--lengths", "32", "--batch", "1", "--heads", "2", "--min-time", "0.01",
               "--no-memory", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["command"].startswith("neuroconv bench conv") and data["machine"] and data["date"]
    assert {r["method"] for r in data["rows"]} == {"reference", "torch", "attention"}
    printed = capsys.readouterr().out
    torch_row = next(r for r in data["rows"] if r["method"] == "torch")
    assert f"{torch_row['fwd_ms']:.2f}" in printed  # the table shows the JSON's numbers
