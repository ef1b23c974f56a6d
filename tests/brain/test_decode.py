"""`neuroconv decode`: CV over neural models and baselines, metrics, bad input, real data."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from neuroconv.brain.decode import DecodeFailed, run_decode
from neuroconv.brain.tasks.windows import infer_kind
from neuroconv.brain.pretrain import run_pretrain
from neuroconv.engine.compare import TOO_FEW_UNITS
from neuroconv.engine.folds import Folds

from .conftest import tiny_config

SAME_KEYS = {"accuracy", "balanced_accuracy", "roc_auc", "f1"}


#: the fixture store has subjects 01-06: pretraining sees 01-02, decoding tests 03-06
PRETRAIN_SUBJECTS = "subject in ['01', '02']"
DECODE_SUBJECTS = "subject not in ['01', '02']"


@pytest.fixture(scope="module")
def pretrained_run(eeg_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pre")
    cfg = tiny_config([eeg_store], tmp, **{"data.max_len": 256, "pretrain.name": "pre", "pretrain.max_epochs": 1,
                                           "pretrain.query": PRETRAIN_SUBJECTS})
    return run_pretrain(cfg, log=lambda *_: None)


def _in_grid(h, cfg):
    """A choice of C from the run's grid, or from the decades it was extended by at an edge."""
    return h["C"] in list(cfg.decode.c_grid) + [c for ext in h.get("grid_extended", []) for c in ext]


def test_decode_compares_models_on_the_same_folds(eeg_store, pretrained_run, tmp_path):
    from scipy.stats import chi2
    from sklearn.metrics import accuracy_score

    ours = ("scratch", "finetune", "probe", "attention")
    cfg = tiny_config([eeg_store], tmp_path, **{
        "data.max_len": 256, "decode.event_labels": ["left", "right"], "decode.tmin": 0.0,
        "decode.tmax": 2.0, "decode.pretrained": str(pretrained_run), "decode.query": DECODE_SUBJECTS,
        "decode.models": [*ours, "csp_lda", "bandpower"]})
    run = run_decode(cfg, log=lambda *_: None)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["classes"] == ["left", "right"] and metrics["protocol"]["n_folds"] == 2
    assert metrics["pretraining_overlap"] is None
    assert metrics["units"]["column"] == "subject" and metrics["units"]["n"] == 4
    assert set(metrics["models"]) == set(cfg.decode.models)
    preds = pd.read_csv(run / "predictions.csv")
    for name, agg in metrics["models"].items():
        assert SAME_KEYS <= set(agg), name
        assert len(agg["accuracy"]["folds"]) == 2 and len(agg["hyperparameters"]) == 2 and len(agg["seconds"]) == 2
        # sd over folds with ddof=1; the pooled score is that of all predictions
        folds = agg["accuracy"]["folds"]
        assert agg["accuracy"]["sd"] == pytest.approx(np.std(folds, ddof=1))
        p = preds[preds.model == name]
        assert agg["accuracy"]["pooled"] == pytest.approx(accuracy_score(p.y_true, p.y_pred))
        # every subject holds both classes: the headline is the mean of the subjects' own
        # scores; four subjects are too few for an interval
        own = p.groupby("unit").apply(lambda d: accuracy_score(d.y_true, d.y_pred), include_groups=False)
        acc = agg["accuracy"]
        assert acc["headline"] == "unit_mean" and acc["value"] == pytest.approx(own.mean())
        assert acc["ci95"] is None and acc["interval"] == TOO_FEW_UNITS and agg["n_units"] == 4
    # the chosen regularisers and training budgets are recorded per fold
    assert all(_in_grid(h, cfg) for h in metrics["models"]["bandpower"]["hyperparameters"])
    assert all("best_step" in h for h in metrics["models"]["scratch"]["hyperparameters"])
    assert all(_in_grid(h, cfg) for h in metrics["models"]["probe"]["hyperparameters"])
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
    # each of ours is paired with every other model, on the same samples, over units
    pairs = {(r["first"], r["second"]): r for r in metrics["paired"]}
    want = {(a, b) for a in ours for b in ("csp_lda", "bandpower")}
    want |= {(a, b) for i, a in enumerate(ours) for b in ours[i + 1:]}
    assert set(pairs) == want
    r = pairs[("scratch", "csp_lda")]
    a = preds[preds.model == "scratch"].sort_values(["fold", "id", "start"])
    b = preds[preds.model == "csp_lda"].sort_values(["fold", "id", "start"])
    ok_a, ok_b = (a.y_true == a.y_pred).to_numpy(), (b.y_true == b.y_pred).to_numpy()
    # left and right trials in every subject: the clustered McNemar test over subjects
    dk = pd.Series((ok_a & ~ok_b).astype(int) - (~ok_a & ok_b).astype(int)).groupby(a["unit"].to_numpy()).sum()
    stat = dk.sum() ** 2 / (dk**2).sum() if (dk**2).sum() else 0.0
    mc = r["mcnemar_accuracy"]
    assert mc["method"] == "clustered" and mc["n_units"] == 4
    assert mc["p_value"] == pytest.approx(chi2.sf(stat, 1) if (dk**2).sum() else 1.0)
    assert r["accuracy"]["pooled"] == pytest.approx(ok_a.mean() - ok_b.mean())
    # the mean of the per-subject differences, tested by all 16 sign flips of 4 subjects
    d = (pd.Series(ok_a.astype(float)).groupby(a["unit"].to_numpy()).mean()
         - pd.Series(ok_b.astype(float)).groupby(a["unit"].to_numpy()).mean()).to_numpy()
    flips = np.array(list(itertools.product([1, -1], repeat=4)))
    assert r["accuracy"]["headline"] == "unit_mean" and r["accuracy"]["difference"] == pytest.approx(d.mean())
    assert r["accuracy"]["permutation"] == "exact" and r["accuracy"]["smallest_p"] == pytest.approx(2 / 16)
    assert r["accuracy"]["p_value"] == pytest.approx(np.mean(np.abs(flips @ d) >= abs(d.sum()) - 1e-12))
    assert r["accuracy"]["ci95"] is None and r["accuracy"]["interval"] == TOO_FEW_UNITS
    assert r["accuracy"]["wilcoxon"]["n_units"] == 4


def test_probe_keeps_the_pretrained_backbone_frozen(eeg_store, pretrained_run):
    from neuroconv.brain.config import ModelConfig
    from neuroconv.brain.models import load_pretrained, make_classifier

    pre = load_pretrained(pretrained_run)
    key, chans = next(iter(pre.config["channel_sets"].items()))
    net = make_classifier(ModelConfig(), {key: chans}, key, chans, 2, 100, pretrained=str(pretrained_run),
                          freeze=True)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}
    net2 = make_classifier(ModelConfig(), {"new": ["a", "b"]}, "new", ["a", "b"], 2, 100,
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
    cfg.decode.name = ""

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


def test_folds_need_two_groups():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="at least 2 groups"):
        Folds("group_kfold").split(y, np.array(["s"] * 4))
    splits = Folds("leave_group_out").split(y, np.array(["a", "a", "b", "b"]))
    assert len(splits) == 2


def test_eegbci_real_data_baselines_see_the_models_inputs(shared_data, tmp_path):
    """Real EEG, S001 imagined left/right (runs 4, 8), leave-one-run-out: decode's CSP+LDA
    predictions equal MNE's CSP + LDA fitted directly on the same folds and the same
    (normalised) windows, and the neural model's early stopping held out time (two runs
    leave one training group per fold)."""
    from mne.decoding import CSP
    from mne.filter import filter_data
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    from neuroconv.brain.data import open_stores

    src = {"pipeline": "eegbci", "store": str(tmp_path / "eegbci"),
           "args": {"data_dir": str(shared_data), "subjects": [1], "runs": [4, 8], "l_freq": 1.0, "h_freq": 40.0,
                    "resample": 80.0}}
    cfg = tiny_config([], tmp_path, **{
        "data.sources": [src], "data.stores": [], "decode.target": "events", "decode.query": "imagery == True",
        "decode.event_labels": ["left", "right"], "decode.tmin": 0.5, "decode.tmax": 2.5,
        "decode.cv": "leave_group_out", "decode.group_by": "run", "decode.models": ["scratch", "csp_lda"],
        "decode.max_epochs": 1, "data.max_len": 256})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    assert m["protocol"]["n_folds"] == 2 and m["n_samples"] >= 25  # about 15 trials of T1/T2 per run
    assert m["protocol"]["inner_split"] == ["time"]
    assert all("only 1 training group" in v["note"] for v in m["inner_splits"].values())
    preds = pd.read_csv(run / "predictions.csv")
    ours = preds[preds.model == "csp_lda"].sort_values(["fold", "id", "start"])
    (store,) = open_stores([tmp_path / "eegbci"])
    samples = preds[preds.model == "csp_lda"][["store", "id", "start", "stop", "fold", "y_true"]]
    # MOABB's motor-imagery recipe: each continuous recording 8-32 Hz IIR band-passed, then
    # cut (here also z-scored per channel by the filtered recording's own statistics, the
    # store's normalisation); shrinkage LDA with uniform priors (balanced classes)
    recordings = {}
    for rid in samples["id"].astype(str).unique():
        x = filter_data(np.asarray(store.load(rid), dtype=np.float64).T, 80.0, 8.0, 32.0, method="iir",
                        verbose=False)
        recordings[rid] = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)

    def cut(rows):
        return np.stack([recordings[str(r.id)][:, r.start:r.stop] for r in rows.itertuples()])

    for f, test in samples.groupby("fold"):
        train = samples[(samples.fold != f)].drop_duplicates(["id", "start"])
        direct = make_pipeline(CSP(n_components=4, reg="ledoit_wolf", log=True),
                               LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto", priors=[0.5, 0.5]))
        direct.fit(cut(train), train["y_true"].to_numpy())
        got = ours[ours.fold == f]["proba_right"].to_numpy()
        np.testing.assert_allclose(got, direct.predict_proba(cut(test.sort_values(["id", "start"])))[:, 1],
                                   rtol=1e-6, atol=1e-9)


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
                                            "decode.pretrained": str(pretrained_run), "decode.transductive": True})
    run = run_decode(cfg, log=lambda *_: None)
    preds = pd.read_csv(run / "predictions.csv")
    assert (preds["stop"] - preds["start"]).max() == 256


def test_a_failing_model_is_reported_the_rest_go_on_and_the_run_fails(eeg_store, tmp_path, monkeypatch, capsys):
    import dataclasses

    from neuroconv.brain import zoo
    from neuroconv.cli import main

    class Broken(zoo.Decoder):
        def __init__(self, *a, **kw):
            raise TypeError("simulated bug in this baseline")  # not a RuntimeError: any failure counts

    monkeypatch.setitem(zoo.ZOO, "csp_lda", dataclasses.replace(zoo.ZOO["csp_lda"], decoder=Broken, options={}))
    cfg = tiny_config([eeg_store], tmp_path, **{"decode.event_labels": ["left", "right"], "decode.tmin": 0.0,
                                                "decode.tmax": 2.0, "decode.models": ["scratch", "csp_lda"]})
    with pytest.raises(DecodeFailed, match="csp_lda") as e:
        run_decode(cfg, log=lambda *_: None)
    run = e.value.run_dir
    m = json.loads((run / "metrics.json").read_text())
    assert "simulated bug" in m["models"]["csp_lda"]["error"] and m["models"]["csp_lda"]["accuracy"]["mean"] is None
    assert "Traceback" in m["models"]["csp_lda"]["traceback"] and m["failed"] == ["csp_lda"]
    preds = pd.read_csv(run / "predictions.csv")
    assert set(preds["model"]) == {"scratch"} and "error" not in m["models"]["scratch"]
    assert m["models"]["scratch"]["accuracy"]["pooled"] == pytest.approx((preds.y_true == preds.y_pred).mean())
    # the command exits non-zero
    import yaml

    from neuroconv.engine.config import to_dict

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    assert main(["decode", "--config", str(path), "--decode.name", "cli"]) == 1
    assert "simulated bug" in capsys.readouterr().err


# --------------------------------------------------------------------------- protocol
def test_pretraining_that_saw_a_test_group_is_refused(eeg_store, tmp_path):
    """A backbone pretrained on every subject cannot be tested on any of them; with
    --transductive it can, and metrics.json records what it saw."""
    pre = run_pretrain(tiny_config([eeg_store], tmp_path, **{"pretrain.name": "all", "pretrain.max_epochs": 1}),
                       log=lambda *_: None)
    record = pd.read_csv(pre / "recordings.csv", dtype=str)
    assert set(record.columns) >= {"store_path", "id", "subject", "session", "run", "site", "dataset", "split"}
    assert sorted(record["subject"].unique()) == ["01", "02", "03", "04", "05", "06"]
    over = {"decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["finetune"],
            "decode.pretrained": str(pre)}
    with pytest.raises(ValueError, match="saw test data of 2 fold.*--transductive"):
        run_decode(tiny_config([eeg_store], tmp_path, **over), log=lambda *_: None)
    run = run_decode(tiny_config([eeg_store], tmp_path, **{**over, "decode.transductive": True}),
                     log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    assert m["protocol"]["transductive"] and set(m["pretraining_overlap"]) == {"0", "1"}
    assert all(v["groups"] and v["recordings"] for v in m["pretraining_overlap"].values())


def test_pretrain_in_fold_never_sees_the_fold_test_group(eeg_store, tmp_path, monkeypatch):
    import neuroconv.brain.pretrain as P

    seen = []
    real = P.pretrain_backbone

    def spy(cfg, stores, windows, **kw):
        man = stores[0].manifest.set_index("id")
        seen.append(set(man.loc[windows["id"], "subject"]))
        return real(cfg, stores, windows, **kw)

    monkeypatch.setattr(P, "pretrain_backbone", spy)
    cfg = tiny_config([eeg_store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["finetune", "probe"],
        "decode.pretrain_in_fold": True, "decode.fold_pretrain.max_epochs": 1})
    run = run_decode(cfg, log=lambda *_: None)
    preds = pd.read_csv(run / "predictions.csv")
    man = pd.read_csv(eeg_store / "manifest.csv", dtype={"subject": str}).set_index("id")
    assert len(seen) == 2  # once per fold, shared by finetune and probe
    for f, part in preds[preds.model == "finetune"].groupby("fold"):
        test_subjects = set(man.loc[part["id"], "subject"])
        assert seen[f].isdisjoint(test_subjects) and seen[f]
    assert json.loads((run / "metrics.json").read_text())["protocol"]["pretrain_in_fold"] is True


def test_an_explicit_backbone_wins_over_the_configs_in_fold_pretraining(eeg_store, pretrained_run, tmp_path,
                                                                         monkeypatch):
    """muse_p300/muse_n170 pretrain in fold by default; --decode.pretrained RUN must then
    use RUN (the cueing backbone), not silently pretrain again inside each fold."""
    import neuroconv.brain.pretrain as P

    def never(*a, **k):
        raise AssertionError("pretrained inside a fold although decode.pretrained was given")

    monkeypatch.setattr(P, "pretrain_backbone", never)
    notes = []
    cfg = tiny_config([eeg_store], tmp_path, **{
        "data.max_len": 256, "decode.event_labels": ["left", "right"], "decode.tmin": 0.0, "decode.tmax": 2.0,
        "decode.pretrained": str(pretrained_run), "decode.query": DECODE_SUBJECTS,
        "decode.models": ["finetune", "probe"], "decode.pretrain_in_fold": True})
    run = run_decode(cfg, log=notes.append)
    protocol = json.loads((run / "metrics.json").read_text())["protocol"]
    assert protocol["pretrained"] == str(pretrained_run) and protocol["pretrain_in_fold"] is False
    assert any("decode.pretrain_in_fold is not used" in str(n) for n in notes)


def test_external_test_stores_report_per_group(eeg_store, eeg_store_other, tmp_path):
    import shutil

    test_store = tmp_path / "other_site"
    shutil.copytree(eeg_store_other, test_store)
    man = pd.read_csv(test_store / "manifest.csv", dtype=str)
    man["site"] = ["A", "B"]
    man.to_csv(test_store / "manifest.csv", index=False)
    cfg = tiny_config([eeg_store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["scratch", "csp_lda"],
        "decode.test_stores": [str(test_store)], "decode.group_by": "site"})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    assert m["protocol"]["cv"] == "external test stores" and m["protocol"]["n_folds"] == 1
    assert m["test_store_overlap"] is None and m["units"]["column"] == "site"
    preds = pd.read_csv(run / "predictions.csv")
    for name in ("scratch", "csp_lda"):
        by = m["models"][name]["by_group"]
        assert sorted(by) == ["other:A", "other:B"]
        part = preds[(preds.model == name)]
        assert sum(v["n"] for v in by.values()) == len(part) == len(part.drop_duplicates(["id", "start"]))
        a = part[part.group == "other:A"]
        assert by["other:A"]["accuracy"] == pytest.approx((a.y_true == a.y_pred).mean())
        assert set(part["store"]) == {1}  # every prediction is on the test store


def _renamed_copy(store, dest, rename_ids: bool):
    """A copy of ``store`` under another data-set name (and, with ``rename_ids``, other
    recording ids and subjects): the same recordings by content."""
    import shutil

    shutil.copytree(store, dest)
    man = pd.read_csv(dest / "manifest.csv", dtype=str)
    man["dataset"], man["site"] = "renamed", "elsewhere"
    if rename_ids:
        ids = {i: f"x{k:02d}" for k, i in enumerate(man["id"])}
        man["id"] = man["id"].map(ids)
        man["subject"] = [f"p{k}" for k in range(len(man))]
        ev = pd.read_csv(dest / "events.csv", dtype={"id": str})
        ev["id"] = ev["id"].map(ids)
        ev.to_csv(dest / "events.csv", index=False)
    man.to_csv(dest / "manifest.csv", index=False)
    return dest


@pytest.mark.parametrize("rename_ids", [False, True])
def test_a_renamed_copy_of_a_training_store_is_not_a_test_set(eeg_store, tmp_path, rename_ids):
    """Test stores are recognised by content: the same source files (sha256) or, when the
    ids no longer lead to the recorded sources, the same stored arrays."""
    copy = _renamed_copy(eeg_store, tmp_path / "copy", rename_ids)
    over = {"decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["csp_lda"],
            "decode.test_stores": [str(copy)]}
    what = "same array" if rename_ids else "same source file"
    with pytest.raises(ValueError, match=f"6 recording\\(s\\) of decode.test_stores are training recordings by "
                                         f"content: .*{what}.*--transductive"):
        run_decode(tiny_config([eeg_store], tmp_path, **over), log=lambda *_: None)
    run = run_decode(tiny_config([eeg_store], tmp_path, **{**over, "decode.transductive": True}),
                     log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    assert len(m["test_store_overlap"]) == 6 and m["protocol"]["transductive"]


def test_a_recording_stored_twice_under_two_groups_is_refused(eeg_store, tmp_path):
    copy = _renamed_copy(eeg_store, tmp_path / "copy", rename_ids=True)
    over = {"decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["csp_lda"]}
    with pytest.raises(ValueError, match="appear twice in the decode data under different groups"):
        run_decode(tiny_config([eeg_store, copy], tmp_path, **over), log=lambda *_: None)


def test_pretraining_is_checked_by_content_not_names(eeg_store, pretrained_run, tmp_path):
    """The backbone saw subjects 01-02; the same recordings renamed (other ids, subjects and
    data set) are still recognised, through the checksums recordings.csv keeps."""
    record = pd.read_csv(pretrained_run / "recordings.csv", dtype=str)
    assert record["source_sha256"].str.len().eq(64).all() and record["array_sha256"].str.len().eq(64).all()
    copy = _renamed_copy(eeg_store, tmp_path / "copy", rename_ids=True)
    over = {"data.max_len": 256, "decode.event_labels": ["left", "right"], "decode.tmax": 2.0,
            "decode.models": ["finetune"], "decode.pretrained": str(pretrained_run)}
    with pytest.raises(ValueError, match=r"saw test data of 2 fold\(s\).* 0 recording\(s\), 0 subject group\(s\) "
                                         r"and 1 recording\(s\) by content.*\(array\)"):
        run_decode(tiny_config([copy], tmp_path, **over), log=lambda *_: None)
    # a group_by column that the record lacks is an error, not a silent skip
    bare = tmp_path / "bare"
    import shutil

    shutil.copytree(pretrained_run, bare)
    record.drop(columns=["session"]).to_csv(bare / "recordings.csv", index=False)
    with pytest.raises(ValueError, match="has no 'session' column"):
        run_decode(tiny_config([eeg_store], tmp_path, **{**over, "decode.pretrained": str(bare),
                                                         "decode.query": DECODE_SUBJECTS,
                                                         "decode.group_by": "session"}), log=lambda *_: None)


def test_kind_auto_states_its_choice():
    assert infer_kind(["left", "right", "left"])[0] == "classification"
    assert infer_kind([1, 2, 1, 2])[0] == "classification"
    ages = list(np.random.default_rng(0).integers(7, 60, 100))
    kind, reason = infer_kind(ages)
    assert kind == "regression" and "too many distinct values" in reason
    assert infer_kind([1, 2, 3] * 20)[0] == "classification"  # a 3-level rating, 20 times each
    assert infer_kind([0.5, 1.25, 3.0, 2.2])[0] == "regression"
    assert infer_kind(ages, "classification") == ("classification", "decode.kind=classification")


def test_integer_target_becomes_regression(eeg_store, tmp_path):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(eeg_store, store)
    man = pd.read_csv(store / "manifest.csv", dtype={"subject": str})
    man["age"] = [23, 31, 47, 58, 36, 62]
    man.to_csv(store / "manifest.csv", index=False)
    cfg = tiny_config([store], tmp_path, **{"decode.target": "age", "decode.models": ["scratch"],
                                            "decode.cv": "leave_group_out", "data.max_len": 64})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "regression" and "distinct values" in m["task_reason"]
    assert {"r2", "mae", "pearson_r"} <= set(m["models"]["scratch"])
    assert not {"accuracy", "roc_auc"} & set(m["models"]["scratch"])


def test_fmri_is_zscored_once_and_baselines_get_the_model_inputs(fmri_store):
    from neuroconv.brain.data import StoreWindows, open_stores, store_is_standardized

    stores = open_stores([fmri_store])
    assert store_is_standardized(stores[0])
    rid = stores[0].ids[0]
    n = int(stores[0].manifest.set_index("id").loc[rid, "n_times"])
    w = pd.DataFrame({"store": [0], "id": [rid], "start": [0], "stop": [n]})
    auto = StoreWindows(stores, w, "auto")
    raw = np.asarray(stores[0].load(rid), dtype=np.float64)
    np.testing.assert_array_equal(auto.window(0), raw)  # the pipeline z-scored it already: no second pass
    np.testing.assert_allclose(auto[0]["x"].numpy(), raw.astype(np.float32))
    np.testing.assert_array_equal(auto.arrays(fixed_length=False)[0], auto.window(0))
    forced = StoreWindows(stores, w, "recording").window(0)
    np.testing.assert_allclose(forced, (raw - raw.mean(0)) / raw.std(0), rtol=1e-12)


def test_within_subject_folds_never_mix_subjects(eeg_store, tmp_path):
    import shutil

    store = tmp_path / "two_people"
    shutil.copytree(eeg_store, store)
    man = pd.read_csv(store / "manifest.csv", dtype=str)
    man["subject"] = ["A", "A", "A", "B", "B", "C"]  # C has one recording: nothing to cross-validate
    man.to_csv(store / "manifest.csv", index=False)
    cfg = tiny_config([store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["csp_lda"],
        "decode.within": "subject", "decode.group_by": "id", "decode.cv": "leave_group_out"})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    preds = pd.read_csv(run / "predictions.csv", dtype={"within": str})
    assert m["protocol"]["n_folds"] == 5 and m["protocol"]["skipped_within"] == ["eeg:C"]
    assert set(preds["within"]) == {"eeg:A", "eeg:B"}
    assert (preds.groupby("fold")["within"].nunique() == 1).all()  # a fold stays inside one subject
    by = m["models"]["csp_lda"]["by_within"]
    for w, part in preds.groupby("within"):
        assert by[w]["n"] == len(part) and by[w]["accuracy"] == pytest.approx((part.y_true == part.y_pred).mean())


def test_train_fraction_subsamples_training_groups_the_same_for_every_model(eeg_store, tmp_path):
    """A label-efficiency point: each fold trains on a seeded half of its training subjects,
    the same half for every model; the test folds stay whole; kernels' roughness is kept."""
    from neuroconv.brain import zoo

    seen = {}
    real = zoo.make

    def spy(name, context, settings=None):
        decoder = real(name, context, settings)
        fit = decoder.fit

        def recording_fit(part):
            seen.setdefault(name, {})[part.fold] = set(part.data.groups[part.train])
            return fit(part)

        decoder.fit = recording_fit
        return decoder

    cfg = tiny_config([eeg_store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["covconv", "csp_lda",
                                                                                        "bandpower"],
        "decode.cv": "leave_group_out", "decode.train_fraction": 0.5, "decode.covconv.readout": "logvar"})
    import pytest as _pytest

    mp = _pytest.MonkeyPatch()
    mp.setattr(zoo, "make", spy)
    try:
        run = run_decode(cfg, log=lambda *_: None)
    finally:
        mp.undo()
    m = json.loads((run / "metrics.json").read_text())
    assert m["protocol"]["train_fraction"] == 0.5 and m["protocol"]["n_folds"] == 6
    for f in range(6):
        assert seen["csp_lda"][f] == seen["bandpower"][f] == seen["covconv"][f]
        assert len(seen["csp_lda"][f]) == 2  # round(0.5 * 5) groups
    preds = pd.read_csv(run / "predictions.csv")
    assert len(preds[preds.model == "csp_lda"]) == len(preds[preds.model == "covconv"])  # whole test folds
    assert len(m["models"]["covconv"]["kernels"]["folds"]) == 6
    with _pytest.raises(ValueError, match="train_fraction must be in"):
        run_decode(tiny_config([eeg_store], tmp_path, **{"decode.train_fraction": 0.0}), log=lambda *_: None)


def test_site_centering_is_fitted_inside_folds_and_recorded(sites_store, tmp_path):
    """Leave-site-out: each test site is new, so it is centred on its own test samples
    (without labels), and metrics.json says which site in which fold (the centring itself
    is checked against its definition in test_baselines.py)."""
    cfg = tiny_config([sites_store], tmp_path, **{
        "decode.target": "label", "decode.models": ["connectivity"], "decode.cv": "leave_group_out",
        "decode.group_by": "site", "decode.connectivity.site_centering": True, "decode.connectivity.kind": "correlation",
        "data.max_len": 64})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    sc = m["models"]["connectivity"]["site_centering"]
    assert sc["enabled"] and sorted(sc["centred_on_their_own_test_samples"]) == ["0", "1", "2"]
    for f, sites in sc["centred_on_their_own_test_samples"].items():
        assert len(sites) == 1  # the one held-out site of that fold
    plain = run_decode(tiny_config([sites_store], tmp_path, **{
        "decode.target": "label", "decode.models": ["connectivity"], "decode.cv": "leave_group_out",
        "decode.group_by": "site", "decode.connectivity.kind": "correlation", "data.max_len": 64}),
        log=lambda *_: None)
    assert "site_centering" not in json.loads((plain / "metrics.json").read_text())["models"]["connectivity"]


def test_euclidean_alignment_whitens_each_unit_and_never_crosses_folds(eeg_store, tmp_path):
    """data.align subject: each subject's windows, whitened by their own mean covariance,
    have the identity as mean covariance (He & Wu 2019); aligning by subject while folds
    split runs of one subject would mix test windows into training: refused."""
    from neuroconv.brain.data import StoreWindows
    from neuroconv.brain.design import prepare

    cfg = tiny_config([eeg_store], tmp_path, **{"decode.event_labels": ["left", "right"], "decode.tmax": 2.0,
                                                "decode.models": ["csp_lda"], "data.align": "subject"})
    exp = prepare(cfg, log=lambda *_: None)
    ds = exp.data.windows
    subjects = exp.samples["group"].to_numpy()
    plain = StoreWindows(exp.stores, exp.samples, cfg.data.normalize)
    for s in np.unique(subjects):
        rows = np.flatnonzero(subjects == s)
        R = np.mean([ds.window(i).T @ ds.window(i) / len(ds.window(i)) for i in rows], axis=0)
        # whitening is exact up to the eigendecomposition's rounding: n·eps·cond
        C0 = np.mean([plain.window(i).T @ plain.window(i) / len(plain.window(i)) for i in rows], axis=0)
        tol = 50 * C0.shape[0] * np.finfo(float).eps * np.linalg.cond(C0)
        np.testing.assert_allclose(R, np.eye(len(R)), atol=tol)
    # a subset (a fold's part) keeps the whole dataset's alignment
    np.testing.assert_array_equal(ds.subset([3, 1]).window(0), ds.window(3))
    # band-passed (a baseline's MOABB band): aligned again, on the band-passed windows of
    # the whole dataset, whichever subset asks
    band = ds.filtered((8.0, 30.0))
    unaligned = plain.filtered((8.0, 30.0))
    for s in np.unique(subjects):
        rows = np.flatnonzero(subjects == s)
        R = np.mean([band.window(i).T @ band.window(i) / len(band.window(i)) for i in rows], axis=0)
        C0 = np.mean([unaligned.window(i).T @ unaligned.window(i) / len(unaligned.window(i)) for i in rows], axis=0)
        tol = 50 * C0.shape[0] * np.finfo(float).eps * np.linalg.cond(C0)
        np.testing.assert_allclose(R, np.eye(len(R)), atol=tol)
    np.testing.assert_array_equal(ds.subset([3, 1]).filtered((8.0, 30.0)).window(0), band.window(3))
    assert not np.allclose(band.window(3), ds.window(3))
    run = run_decode(cfg, log=lambda *_: None)
    assert json.loads((run / "metrics.json").read_text())["protocol"]["align"] == "subject"
    bad = tiny_config([eeg_store], tmp_path, **{"decode.event_labels": ["left", "right"], "decode.tmax": 2.0,
                                                "decode.models": ["csp_lda"], "data.align": "subject",
                                                "decode.group_by": "id", "decode.within": "subject"})
    import shutil

    two = tmp_path / "two_runs"
    shutil.copytree(eeg_store, two)
    man = pd.read_csv(two / "manifest.csv", dtype=str)
    man["subject"] = ["A", "A", "B", "B", "C", "C"]
    man.to_csv(two / "manifest.csv", index=False)
    bad.data.stores = [str(two)]
    with pytest.raises(ValueError, match="data.align='subject': 3 unit\\(s\\).*mix test windows into training"):
        prepare(bad, log=lambda *_: None)


def test_train_fraction_of_samples_keeps_a_stratified_share_of_the_windows(eeg_store, tmp_path):
    from neuroconv.brain.design import prepare

    base = {"decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["csp_lda"],
            "decode.cv": "leave_group_out"}
    full = prepare(tiny_config([eeg_store], tmp_path, **base), log=lambda *_: None)
    part = prepare(tiny_config([eeg_store], tmp_path, **{**base, "decode.train_fraction": 0.25,
                                                         "decode.train_fraction_of": "samples"}),
                   log=lambda *_: None)
    for a, b in zip(full.folds, part.folds):
        assert set(b.train) <= set(a.train) and np.array_equal(a.test, b.test)  # test folds stay whole
        assert len(b.train) == round(0.25 * len(a.train))
        share = np.bincount(full.data.y[b.train]) / len(b.train)
        np.testing.assert_allclose(share, np.bincount(full.data.y[a.train]) / len(a.train), atol=1 / len(b.train))
        assert len(set(full.data.groups[b.train])) > 2  # windows of every training subject, not whole subjects


def test_unit_level_mcnemar_with_several_stores(eeg_store, eeg_store_other, tmp_path):
    """Two training stores (two data sets): the units are their 8 subjects (subject 01 of
    each data set is two people), and McNemar's test is the clustered one over them,
    recomputable from predictions.csv."""
    from scipy.stats import chi2

    cfg = tiny_config([eeg_store, eeg_store_other], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["covconv", "csp_lda"],
        "decode.covconv.readout": "logvar", "decode.n_splits": 4, "decode.max_epochs": 1})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    assert m["units"]["column"] == "subject" and m["units"]["n"] == 8
    preds = pd.read_csv(run / "predictions.csv")
    assert preds["unit"].nunique() == 8 and set(preds["store"]) == {0, 1}
    a = preds[preds.model == "covconv"].sort_values(["fold", "store", "id", "start"])
    b = preds[preds.model == "csp_lda"].sort_values(["fold", "store", "id", "start"])
    ok_a, ok_b = (a.y_true == a.y_pred).to_numpy(), (b.y_true == b.y_pred).to_numpy()
    dk = pd.Series((ok_a & ~ok_b).astype(int) - (~ok_a & ok_b).astype(int)).groupby(a["unit"].to_numpy()).sum()
    r = m["paired"][0]["mcnemar_accuracy"]
    assert (m["paired"][0]["first"], m["paired"][0]["second"]) == ("covconv", "csp_lda")
    assert r["method"] == "clustered" and r["n_units"] == 8
    want = chi2.sf(dk.sum() ** 2 / (dk**2).sum(), 1) if (dk**2).sum() else 1.0
    assert r["p_value"] == pytest.approx(want)
    assert m["models"]["covconv"]["n_units"] == 8
