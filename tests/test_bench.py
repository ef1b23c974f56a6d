"""`neuroconv bench conv`: runs on the CPU, writes rows with ratios to the reference."""

from __future__ import annotations

import json

from neuroconv.bench import run_conv_bench
from neuroconv.cli import main


def test_conv_bench_rows_and_ratios():
    rows = run_conv_bench(lengths=[64, 200], batch=2, heads=4, min_time=0.01, attn_max_len=100, log=lambda *_: None)
    methods = {(r["method"], r["L"]) for r in rows}
    assert {("reference", 64), ("torch", 64), ("attention", 64), ("reference", 200), ("torch", 200)} <= methods
    for r in rows:
        if r["method"] == "reference":
            assert r["fwd_ms_speedup"] == 1.0 and r["mem_ratio"] == 1.0
        if r.get("skipped"):
            assert r["method"] == "attention" and r["L"] == 200
            continue
        assert r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0
        assert r["peak_mb"] is None or r["peak_mb"] >= 0


def test_conv_bench_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "conv", "--lengths", "32", "--batch", "1", "--heads", "2", "--min-time", "0.01",
               "--no-memory", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["command"].startswith("neuroconv bench conv") and data["machine"] and data["date"]
    assert {r["method"] for r in data["rows"]} == {"reference", "torch", "attention"}
    assert "speedup" in capsys.readouterr().out
