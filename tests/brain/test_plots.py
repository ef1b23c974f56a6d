"""Plots across decode runs: label efficiency and kernel roughness against score."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from neuroconv.brain.plots import plot_label_efficiency, plot_roughness, roughness
from neuroconv.cli import main


def _run(folder, frac, scores, lam=0.0, width=5):
    folder.mkdir(parents=True)
    models = {name: {"accuracy": {"mean": float(np.mean(v)), "sd": float(np.std(v)), "folds": v},
                     "kernels": {"roughness": 0.1 * width, "folds": [0.1 * width], "zero_fraction": 0.0}}
              for name, v in scores.items()}
    (folder / "metrics.json").write_text(json.dumps({"protocol": {"train_fraction": frac}, "models": models}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"decode": {"covconv": {"lam": lam, "smooth_width": width}},
                                                        "model": {"lam": lam, "smooth_width": width}}))
    return folder


def test_label_efficiency_table_and_plot(tmp_path, capsys):
    runs = [_run(tmp_path / f"r{f}", f, {"covconv": [0.6 + f / 10, 0.62 + f / 10], "connectivity": [0.55, 0.57]})
            for f in (0.1, 0.5, 1.0)]
    # a run with pooled scores and unit intervals (what decode writes now)
    m = json.loads((runs[1] / "metrics.json").read_text())
    m["models"]["covconv"]["accuracy"].update(pooled=0.655, ci95=[0.6, 0.7])
    (runs[1] / "metrics.json").write_text(json.dumps(m))
    table = plot_label_efficiency(runs, tmp_path / "le.png")
    assert table["covconv"][0.5] == pytest.approx((0.655, 0.6, 0.7))
    assert table["covconv"][0.1] == pytest.approx((0.62, 0.62, 0.62))  # an older run: the fold mean, no bar
    assert sorted(table["connectivity"]) == [0.1, 0.5, 1.0] and (tmp_path / "le.png").stat().st_size > 0
    assert main(["plot", "label-efficiency", *map(str, runs), "--out", str(tmp_path / "cli.png")]) == 0
    assert (tmp_path / "cli.png").is_file()
    assert main(["plot", "label-efficiency", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.png")]) == 1
    assert "metrics.json does not exist" in capsys.readouterr().err
    # one curve is one protocol: runs that subsample groups and runs that subsample windows do not mix
    m = json.loads((runs[0] / "metrics.json").read_text())
    m["protocol"]["train_fraction_of"] = "samples"
    (runs[0] / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="subsample different things"):
        plot_label_efficiency(runs, tmp_path / "mixed.png")


def test_roughness_points_carry_their_settings(tmp_path):
    runs = [_run(tmp_path / f"w{w}", 1.0, {"covconv": [0.7, 0.72]}, lam=0.003, width=w) for w in (1, 9)]
    pts = plot_roughness(runs, tmp_path / "r.png")
    assert sorted((p["smooth_width"], p["roughness"]) for p in pts) == [(1, pytest.approx(0.1)), (9, pytest.approx(0.9))]


def test_roughness_figure():
    t = np.arange(400)
    assert roughness(np.sin(2 * np.pi * t / 200)) < 1e-3          # slow: smooth
    assert 5 < roughness(np.random.default_rng(0).standard_normal(4000)) < 7  # white noise: about 6
    assert roughness(np.zeros(10)) != roughness(np.zeros(10))   # NaN for an all-zero kernel


def test_band_filter_plot_reads_the_learned_edges(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    folds = [{"kernels": {"bands": [[0.012, 0.03], [0.025, 0.07]], "start": [[0.01, 0.027], [0.027, 0.073]]}},
             {"kernels": {"bands": [[0.01, 0.027], [0.027, 0.073]], "start": [[0.01, 0.027], [0.027, 0.073]]}}]
    (d / "metrics.json").write_text(json.dumps({"models": {"covconv": {"folds": folds}}}))
    from neuroconv.brain.plots import plot_band_filters

    out = plot_band_filters([d], tmp_path / "f.png")
    assert out[str(d)]["folds"][0] == [[0.012, 0.03], [0.025, 0.07]] and (tmp_path / "f.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no run has covconv band filters"):
        plot_band_filters([_run(tmp_path / "plain", 1.0, {"covconv": [0.7]})], tmp_path / "g.png")
