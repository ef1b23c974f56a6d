"""`neuroconv decode`: CV over neural models and baselines, metrics, bad input, real data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neuroconv.brain.decode import cv_splits, run_decode, score
from neuroconv.brain.pretrain import run_pretrain

from .conftest import tiny_config

SAME_KEYS = {"accuracy", "balanced_accuracy", "roc_auc", "f1"}


@pytest.fixture(scope="module")
def pretrained_run(eeg_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pre")
    cfg = tiny_config([eeg_store], tmp, **{"data.max_len": 256, "pretrain.name": "pre", "pretrain.max_epochs": 1})
    return run_pretrain(cfg, log=lambda *_: None)


def test_decode_compares_models_on_the_same_folds(eeg_store, pretrained_run, tmp_path):
    cfg = tiny_config([eeg_store], tmp_path, **{
        "data.max_len": 256, "decode.event_labels": ["left", "right"], "decode.tmin": 0.0,
        "decode.tmax": 2.0, "decode.pretrained": str(pretrained_run),
        "decode.models": ["scratch", "finetune", "probe", "attention", "csp_lda", "bandpower"]})
    run = run_decode(cfg, log=lambda *_: None)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["classes"] == ["left", "right"] and metrics["n_folds"] == 2
    assert set(metrics["models"]) == set(cfg.decode.models)
    for name, agg in metrics["models"].items():
        assert set(agg) == SAME_KEYS, name
        assert len(agg["accuracy"]["folds"]) == 2
    preds = pd.read_csv(run / "predictions.csv")
    # every model predicted every sample exactly once, on identical folds
    per_model = preds.groupby("model").apply(lambda d: sorted(zip(d["fold"], d["id"], d["start"])))
    assert all(v == per_model.iloc[0] for v in per_model)
    assert np.allclose(preds[["proba_left", "proba_right"]].sum(1), 1.0, atol=1e-5)
    # subjects never straddle a fold's train and test sets: each group sits in one fold
    assert (preds.groupby(["model", "group"])["fold"].nunique() == 1).all()
    for name in cfg.decode.models:
        assert (run / "plots" / f"confusion_{name}.png").is_file()
    # fold metrics are recomputable from the saved predictions
    d = preds[(preds.model == "csp_lda") & (preds.fold == 0)]
    assert metrics["models"]["csp_lda"]["accuracy"]["folds"][0] == pytest.approx((d.y_true == d.y_pred).mean())


def test_probe_keeps_the_pretrained_backbone_frozen(eeg_store, pretrained_run):
    from neuroconv.brain.config import ModelConfig
    from neuroconv.brain.decode import build_net
    from neuroconv.brain.runner import load_pretrained

    pre = load_pretrained(pretrained_run)
    key, chans = next(iter(pre.config["channel_sets"].items()))
    net = build_net(ModelConfig(), {key: chans}, key, chans, 2, 100, pretrained=str(pretrained_run), freeze=True)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}
    net2 = build_net(ModelConfig(), {"new": ["a", "b"]}, "new", ["a", "b"], 2, 100,
                     pretrained=str(pretrained_run), freeze=True)
    trainable2 = {n for n, p in net2.named_parameters() if p.requires_grad}
    assert trainable2 == {"head.weight", "head.bias", "brain.encoders.new.weight", "brain.encoders.new.bias",
                          "brain.recon.new.weight", "brain.recon.new.bias"}


def test_recording_level_target_and_errors(fmri_store, tmp_path):
    # add a per-recording label column and a one-class column to a copy of the manifest
    import shutil

    store = tmp_path / "store"
    shutil.copytree(fmri_store, store)
    man = pd.read_csv(store / "manifest.csv", dtype={"subject": str})
    man["group_label"] = ["a", "b", "a"][: len(man)]
    man["constant"] = "x"
    man.to_csv(store / "manifest.csv", index=False)
    cfg = tiny_config([store], tmp_path, **{"decode.target": "group_label", "decode.models": ["scratch"],
                                            "decode.cv": "leave_group_out", "data.max_len": 64})
    run = run_decode(cfg, log=lambda *_: None)
    assert json.loads((run / "metrics.json").read_text())["n_samples"] == len(man)

    cfg.decode.target = "diagnosis"
    with pytest.raises(ValueError, match="not a column"):
        run_decode(cfg, log=lambda *_: None)
    cfg.decode.target = "constant"
    with pytest.raises(ValueError, match="single class"):
        run_decode(cfg, log=lambda *_: None)
    cfg.decode.target = "events"
    cfg.decode.tmin, cfg.decode.tmax = 0.0, 10_000.0
    with pytest.raises(ValueError, match="(?i)longer than the recordings|no event window"):
        run_decode(cfg, log=lambda *_: None)


def test_cv_splits_need_two_groups():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="at least 2 groups"):
        cv_splits(y, np.array(["s"] * 4), "group_kfold", 5, 0, True)
    splits = cv_splits(y, np.array(["a", "a", "b", "b"]), "leave_group_out", 5, 0, True)
    assert len(splits) == 2


def test_score_matches_sklearn():
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 50)
    p = rng.dirichlet(np.ones(3), 50)
    s = score(y, p, "classification", 3)
    assert s["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p.argmax(1)))
    assert s["roc_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))


def test_eegbci_real_data_baselines(shared_data, tmp_path):
    """Real EEG: S001 imagined left/right (runs 4, 8), CSP+LDA and one tiny neural fold each."""
    from neuroconv.brain.config import load_config

    cfg = load_config("eegbci")
    src = cfg.data.sources[0]
    src["store"] = str(tmp_path / "eegbci")
    src["args"]["data_dir"] = str(shared_data)
    src["args"]["runs"] = [4, 8]
    cfg = tiny_config([], tmp_path)
    cfg.data.sources = [src]
    cfg.decode.target, cfg.decode.query = "events", "imagery == True"
    cfg.decode.event_labels, cfg.decode.tmin, cfg.decode.tmax = ["left", "right"], 0.5, 2.5
    cfg.decode.cv, cfg.decode.group_by = "leave_group_out", "run"
    cfg.decode.models = ["scratch", "csp_lda", "bandpower"]
    cfg.decode.max_epochs = 1
    cfg.data.max_len = 256
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_folds"] == 2 and m["n_samples"] >= 25  # about 15 trials of T1/T2 per run
    assert set(m["models"]) == {"scratch", "csp_lda", "bandpower"}


def test_finetune_reads_recordings_longer_than_pretraining_windows(eeg_store, pretrained_run, tmp_path):
    """Pretraining saw 2 s windows (100 steps); decoding reads 256-step recordings."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(eeg_store, store)
    man = pd.read_csv(store / "manifest.csv", dtype={"subject": str})
    man["label"] = ["a", "b"] * (len(man) // 2)
    man.to_csv(store / "manifest.csv", index=False)
    cfg = tiny_config([store], tmp_path, **{"data.max_len": 256, "decode.target": "label",
                                            "decode.models": ["finetune"], "decode.cv": "leave_group_out",
                                            "decode.pretrained": str(pretrained_run)})
    run = run_decode(cfg, log=lambda *_: None)
    preds = pd.read_csv(run / "predictions.csv")
    assert (preds["stop"] - preds["start"]).max() == 256


def test_a_failing_model_is_reported_and_the_rest_go_on(eeg_store, tmp_path, monkeypatch):
    import neuroconv.brain.decode as D

    def broken(name, **kw):
        raise ValueError("simulated failure of this baseline")

    monkeypatch.setattr(D, "make_baseline", broken)
    cfg = tiny_config([eeg_store], tmp_path, **{"decode.event_labels": ["left", "right"], "decode.tmin": 0.0,
                                                "decode.tmax": 2.0, "decode.models": ["scratch", "csp_lda"]})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())["models"]
    assert "simulated failure" in m["csp_lda"]["error"] and m["csp_lda"]["accuracy"]["mean"] is None
    assert "error" not in m["scratch"] and m["scratch"]["accuracy"]["mean"] is not None
    assert set(pd.read_csv(run / "predictions.csv")["model"]) == {"scratch"}
