"""covconv contains its baseline by construction: with ``train: none`` its test
predictions are the baseline's, on real data, for the configs that ship (ABIDE:
nilearn's connectivity; EEGBCI: MOABB's TS+LR), fold by fold."""

from __future__ import annotations

import pandas as pd
import pytest

from .conftest import tiny_config


def _predictions(run, model):
    p = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    return p[p.model == model].sort_values(["fold", "id", "start"]).reset_index(drop=True)


def _assert_same(run, first, second):
    a, b = _predictions(run, first), _predictions(run, second)
    cols = [c for c in a.columns if c.startswith("proba_")]
    assert len(a) == len(b) > 0 and a[["fold", "id", "start"]].equals(b[["fold", "id", "start"]])
    assert (a[cols] - b[cols]).abs().to_numpy().max() < 1e-6


@pytest.mark.slow
def test_covconv_train_none_is_connectivity_on_abide(shared_data, tmp_path):
    """Two ABIDE sites (real CC200 series), the abide config's covconv (slow-5/slow-4
    bands beside nilearn's tangent connectivity) with train none, 3 folds by subject."""
    from neuroconv.brain.config import load_config
    from neuroconv.brain.decode import run_decode
    from neuroconv.pipelines import preprocess_abide

    store = tmp_path / "abide"
    assert preprocess_abide(shared_data / "nilearn_data", store, sites=["LEUVEN_1", "OHSU"], progress=False).ok
    cfg = load_config("abide", {"data.stores": [str(store)], "data.sources": [],
                                "decode.models": ["covconv", "connectivity"], "decode.covconv.train": "none",
                                "decode.n_splits": 3, "decode.out": str(tmp_path / "runs"), "decode.progress": "none",
                                "decode.n_boot": 100, "decode.n_perm": 100, "decode.n_jobs": 1}, job="decode")
    assert cfg.decode.covconv.baseline == "connectivity"
    _assert_same(run_decode(cfg, log=lambda *_: None), "covconv", "connectivity")


@pytest.mark.slow
def test_covconv_train_none_is_ts_lr_on_eegbci(shared_data, tmp_path):
    """EEGBCI S001 imagined left/right (runs 4, 8, 12), leave one run out: the eegbci
    config's covconv (mu/beta bands beside MOABB's TS+LR) with train none."""
    from neuroconv.brain.config import load_config
    from neuroconv.brain.decode import run_decode
    from neuroconv.pipelines import preprocess_eegbci

    store = tmp_path / "eegbci"
    assert preprocess_eegbci(shared_data, store, subjects=[1], runs=[4, 8, 12], l_freq=1.0, h_freq=40.0,
                             resample=80.0, progress=False).ok
    cfg = load_config("eegbci", {"data.stores": [str(store)], "data.sources": [],
                                 "decode.models": ["covconv", "ts_lr"], "decode.covconv.train": "none",
                                 "decode.out": str(tmp_path / "runs"), "decode.progress": "none",
                                 "decode.n_boot": 100, "decode.n_perm": 100}, job="decode")
    assert cfg.decode.covconv.baseline == "ts_lr"
    _assert_same(run_decode(cfg, log=lambda *_: None), "covconv", "ts_lr")


def test_covconv_train_none_is_its_baseline_in_decode(eeg_store, tmp_path):
    from neuroconv.brain.decode import run_decode

    cfg = tiny_config([eeg_store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["covconv", "ts_lr"],
        "decode.cv": "leave_group_out", "decode.covconv.baseline": "ts_lr", "decode.covconv.train": "none"})
    _assert_same(run_decode(cfg, log=lambda *_: None), "covconv", "ts_lr")
