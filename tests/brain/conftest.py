"""Tiny simulated stores shared by the brain-data tests (built once per session)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def eeg_store(tmp_path_factory):
    """6 subjects x 40 s of simulated left/right motor-imagery EEG at 50 Hz."""
    from neuroconv.pipelines import preprocess_eeg
    from neuroconv.pipelines.simulate import simulate_eeg

    root = tmp_path_factory.mktemp("sim_eeg")
    files = simulate_eeg(root / "raw", n_subjects=6, n_runs=1, duration=40.0, sfreq=100.0, seed=1)
    out = root / "store"
    summary = preprocess_eeg(files, out, progress=False, l_freq=1.0, h_freq=24.0, resample=50.0)
    assert summary.ok, str(summary)
    return out


@pytest.fixture(scope="session")
def eeg_store_other(tmp_path_factory):
    """2 other subjects of simulated motor-imagery EEG (another seed, data set "other"):
    recordings the eeg_store never holds, for external test stores."""
    import pandas as pd

    from neuroconv.pipelines import preprocess_eeg
    from neuroconv.pipelines.simulate import simulate_eeg

    root = tmp_path_factory.mktemp("sim_eeg_other")
    files = simulate_eeg(root / "raw", n_subjects=2, n_runs=1, duration=40.0, sfreq=100.0, seed=7)
    out = root / "store"
    summary = preprocess_eeg(files, out, progress=False, l_freq=1.0, h_freq=24.0, resample=50.0)
    assert summary.ok, str(summary)
    man = pd.read_csv(out / "manifest.csv", dtype=str)
    man["dataset"] = "other"
    man.to_csv(out / "manifest.csv", index=False)
    return out


@pytest.fixture(scope="session")
def fmri_store(tmp_path_factory):
    """3 subjects of simulated fMRI, 16 regions, TR 2 s."""
    from neuroconv.pipelines import preprocess_fmri
    from neuroconv.pipelines.simulate import simulate_fmri

    root = tmp_path_factory.mktemp("sim_fmri")
    sim = simulate_fmri(root / "bids", n_subjects=3, n_times=60, seed=2)
    out = root / "store"
    summary = preprocess_fmri(sim.bold, sim.atlas, out, atlas_labels=sim.atlas_labels, progress=False)
    assert summary.ok, str(summary)
    return out


@pytest.fixture(scope="session")
def sites_store(tmp_path_factory):
    """18 recordings of 8 regions at 3 sites (6 each, labels a/b), with a site offset in
    the regions' coupling and a label effect on regions 0-1: written with StoreWriter."""
    import numpy as np

    from neuroconv.data import StoreWriter

    root = tmp_path_factory.mktemp("sites") / "store"
    writer = StoreWriter(root, "test", [{"name": "synthetic", "params": {}}])
    rng = np.random.default_rng(0)
    for i in range(18):
        site, label = "ABC"[i // 6], "ab"[i % 2]
        mix = np.eye(8) + 0.3 * rng.standard_normal((8, 8)) * 0.2
        mix[0, 1] += 0.6 if label == "a" else -0.6
        mix[2, 3] += {"A": 0.8, "B": 0.0, "C": -0.8}[site]
        x = rng.standard_normal((60, 8)) @ mix
        x = (x - x.mean(0)) / x.std(0)
        writer.write(f"s{i:02d}", x, {"subject": f"{i:02d}", "site": site, "dataset": "synthetic",
                                      "modality": "fmri", "sfreq": 0.5, "label": label},
                     [f"r{k}" for k in range(8)], sources=[])
    writer.finalize()
    return root


def tiny_config(stores, tmp_path, **overrides):
    """An ExperimentConfig with a tiny model and short training, for tests; ``overrides``
    are dotted keys (``**{"decode.cv": "leave_group_out"}``), checked like flags."""
    from neuroconv.brain.config import ExperimentConfig, job_parser

    base = {
        "data.stores": [str(s) for s in stores], "data.sources": [],
        "data.window_seconds": 2.0, "data.stride_seconds": 2.0, "data.max_len": 128,
        "model.d_model": 16, "model.n_layers": 1, "model.kernel_dropout": 0.0, "model.dropout": 0.0,
        "pretrain.max_epochs": 2, "pretrain.progress": "none", "pretrain.out": str(tmp_path / "runs"),
        "pretrain.warmup_steps": 1, "pretrain.batch_size": 8,
        "decode.max_epochs": 2, "decode.progress": "none", "decode.out": str(tmp_path / "runs"),
        "decode.n_splits": 2, "decode.batch_size": 8, "decode.warmup_steps": 1,
        "decode.n_boot": 200, "decode.n_perm": 200,
    }
    base.update(overrides)
    return job_parser("decode").override(ExperimentConfig(name="t"), base)
