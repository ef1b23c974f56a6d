"""`neuroconv bench conv`: runs on the CPU, writes rows whose ratios and spreads are the
arithmetic of their own interleaved block times (never a wall-clock assertion)."""

from __future__ import annotations

import json
import statistics

import pytest

from neuroconv.bench import (MIN_BLOCKS_FOR_VERDICT, block_order, ratio_summary, run_conv_bench,
                             time_interleaved)
from neuroconv.cli import main


def test_conv_bench_rows_ratios_and_spreads():
    rows = run_conv_bench(lengths=[64, 200], batch=2, heads=4, min_time=0.02, blocks=3, attn_max_len=100,
                          log=lambda *_: None)
    methods = {(r["method"], r["L"]) for r in rows}
    assert {("reference", 64), ("torch", 64), ("attention", 64), ("reference", 200), ("torch", 200)} <= methods
    ref = {r["L"]: r for r in rows if r["method"] == "reference"}
    for r in rows:
        if r.get("skipped"):
            assert r["method"] == "attention" and r["L"] == 200 and r["fwd_ms"] is None
            continue
        base = ref[r["L"]]
        for mode in ("fwd", "fwd_bwd"):
            blocks, base_blocks = r[f"{mode}_blocks_ms"], base[f"{mode}_blocks_ms"]
            assert len(blocks) == len(base_blocks) == 3 and r[f"{mode}_reps"] >= 1
            assert r[f"{mode}_ms"] == pytest.approx(statistics.median(blocks))
            # every ratio is paired within a block: reference time / this method's time
            ratios = [a / b for a, b in zip(base_blocks, blocks)]
            assert r[f"{mode}_ms_speedup"] == pytest.approx(statistics.median(ratios))
            assert r[f"{mode}_ms_speedup_min"] == pytest.approx(min(ratios))
            assert r[f"{mode}_ms_speedup_max"] == pytest.approx(max(ratios))
            assert r[f"{mode}_verdict"] == ("reference" if r["method"] == "reference" else "too few blocks")
        if base["peak_mb"]:
            assert r["mem_ratio"] == pytest.approx(r["peak_mb"] / base["peak_mb"])


def test_ratio_summary_verdicts():
    n = MIN_BLOCKS_FOR_VERDICT
    ref = [2.0] * n
    faster = ratio_summary(ref, [1.0, 1.9, 1.5, 1.0, 1.2, 1.1][:n] + [1.0] * (n - 6))
    assert faster["verdict"] == "faster" and faster["ratio_min"] == pytest.approx(2 / 1.9)
    assert faster["ratio_max"] == pytest.approx(2.0)
    slower = ratio_summary(ref, [2.5] * n)
    assert slower["verdict"] == "slower" and slower["ratio"] == pytest.approx(0.8)
    # one block on the other side of 1: the spread is too wide to conclude, whatever the median
    mixed = ratio_summary(ref, [1.0] * (n - 1) + [2.2])
    assert mixed["ratio"] == pytest.approx(2.0) and mixed["verdict"] == "inconclusive"
    assert ratio_summary(ref[:n - 1], [1.0] * (n - 1))["verdict"] == "too few blocks"
    with pytest.raises(ValueError, match="one time per block"):
        ratio_summary([1.0, 2.0], [1.0])


def test_block_order_rotates_and_reverses():
    names = ["a", "b", "c"]
    orders = [block_order(names, b) for b in range(6)]
    assert orders[:3] == [["a", "b", "c"], ["c", "b", "a"], ["b", "c", "a"]]
    for n in names:  # every method takes every position
        assert {o.index(n) for o in orders} == {0, 1, 2}
    # and each pair is timed in both orders
    assert {o.index("a") < o.index("b") for o in orders} == {True, False}


def test_time_interleaved_takes_turns():
    calls = []
    fns = {"x": lambda: calls.append("x"), "y": lambda: calls.append("y")}
    times, reps = time_interleaved(fns, __import__("torch").device("cpu"), blocks=4, min_time=0.0)
    assert reps == {"x": 1, "y": 1} and [len(t) for t in times.values()] == [4, 4]
    timed = calls[-8:]  # after the warm-up and the calibration calls
    assert timed == ["x", "y", "y", "x", "y", "x", "x", "y"]  # block_order: xy, yx, yx, xy


def test_conv_bench_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "conv", "--lengths", "32", "--batch", "1", "--heads", "2", "--min-time", "0.01",
               "--blocks", "2", "--no-memory", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["command"].startswith("neuroconv bench conv") and data["machine"] and data["date"]
    assert data["blocks"] == 2 and {r["method"] for r in data["rows"]} == {"reference", "torch", "attention"}
    printed = capsys.readouterr().out
    torch_row = next(r for r in data["rows"] if r["method"] == "torch")
    assert f"{torch_row['fwd_ms']:.2f}" in printed  # the table shows the JSON's numbers
    assert (f"{torch_row['fwd_ms_speedup']:.2f} [{torch_row['fwd_ms_speedup_min']:.2f}-"
            f"{torch_row['fwd_ms_speedup_max']:.2f}]") in printed


def test_blocks_must_be_positive():
    with pytest.raises(ValueError, match="`blocks` must be an integer >= 1; got 0"):
        run_conv_bench(lengths=[8], blocks=0, log=lambda *_: None)
