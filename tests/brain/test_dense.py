"""Dense decoding (decode.task staging and detection): targets from events, scores from
one definition each (checked against scikit-learn and by-event counts), the fair
protocol over whole recordings, and the outputs the field reads (hypnograms, events.tsv)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neuroconv.engine.compare import ConfusionPredictions, EventPredictions, statistics

from .conftest import tiny_config

STAGES = ["W", "N1", "N2", "N3", "R"]


@pytest.fixture(scope="module")
def nights_store(tmp_path_factory):
    """8 nights of 4 subjects: 6 features per 30-s epoch (one step each, 1/30 Hz) whose
    means depend on the stage, stages that follow each other in runs, a few unscored
    epochs; stage events one per epoch, as the Sleep-EDF reader writes them."""
    from neuroconv.data import StoreWriter

    root = tmp_path_factory.mktemp("nights") / "store"
    writer = StoreWriter(root, "test", [{"name": "synthetic", "params": {}}])
    rng = np.random.default_rng(0)
    means = rng.standard_normal((5, 6)) * 1.5
    for n in range(8):
        L = int(rng.integers(150, 220))
        stages, s = [], 0
        while len(stages) < L:
            stages += [s] * int(rng.integers(5, 30))
            s = int(rng.choice([v for v in range(5) if v != s]))
        stages = np.asarray(stages[:L])
        x = means[stages] + rng.standard_normal((L, 6)) * 1.5 + 0.4 * n  # a night offset
        scored = np.ones(L, bool)
        scored[rng.choice(L, 5, replace=False)] = False
        ev = pd.DataFrame({"onset": np.flatnonzero(scored), "duration": 1,
                           "label": [f"stage:{STAGES[k]}" for k in stages[scored]]})
        writer.write(f"n{n}", x, {"subject": f"s{n // 2}", "session": str(n % 2), "dataset": "synthetic",
                                  "modality": "eeg", "sfreq": 1 / 30}, [f"f{k}" for k in range(6)], sources=[],
                     events=ev)
    writer.finalize()
    return root


@pytest.fixture(scope="module")
def bursts_store(tmp_path_factory):
    """6 recordings of 4 min of 1-channel EEG at 100 Hz (µV) with 13 Hz bursts of 0.5-1.5 s
    planted in noise, scored by "expert1" (every burst) and "expert2" (every other one)."""
    from neuroconv.data import StoreWriter

    root = tmp_path_factory.mktemp("bursts") / "store"
    writer = StoreWriter(root, "test", [{"name": "synthetic", "params": {}}])
    rng = np.random.default_rng(1)
    sf = 100.0
    for r in range(6):
        n = int(240 * sf)
        t = np.arange(n) / sf
        x = np.cumsum(rng.standard_normal(n)) * 0.5
        x = x - np.convolve(x, np.ones(101) / 101, mode="same") + rng.standard_normal(n) * 8
        events = []
        onset = int(rng.integers(200, 600))
        while onset < n - 300:
            dur = int(rng.integers(50, 150))
            x[onset:onset + dur] += 30 * np.sin(2 * np.pi * 13 * t[onset:onset + dur]) * np.hanning(dur)
            events.append((onset, dur))
            onset += dur + int(rng.integers(300, 900))
        ev = pd.DataFrame([{"onset": o, "duration": d, "label": "spindle:expert1"} for o, d in events]
                          + [{"onset": o, "duration": d, "label": "spindle:expert2"} for o, d in events[::2]])
        writer.write(f"e{r}", x[:, None], {"subject": f"e{r}", "dataset": "synthetic", "modality": "eeg",
                                           "sfreq": sf, "scorers": "expert1,expert2"}, ["EEG"], sources=[],
                     events=ev)
    writer.finalize()
    return root


# --------------------------------------------------------------------------- scores
def test_staging_scores_equal_sklearn():
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

    rng = np.random.default_rng(2)
    ys, ps, cells = [], [], []
    for _ in range(9):
        y = rng.integers(0, 5, int(rng.integers(50, 120)))
        p = np.where(rng.random(len(y)) < 0.6, y, rng.integers(0, 5, len(y)))
        ys.append(y), ps.append(p), cells.append(confusion_matrix(y, p, labels=range(5)).ravel())
    cp = ConfusionPredictions(np.array(cells), [f"u{i}" for i in range(9)], 5)
    Y, P = np.concatenate(ys), np.concatenate(ps)
    got = cp.score()
    assert got["macro_f1"] == pytest.approx(f1_score(Y, P, average="macro"), abs=1e-12)
    assert got["kappa"] == pytest.approx(cohen_kappa_score(Y, P), abs=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(Y, P), abs=1e-12)
    per = cp.unit_scores()
    for i in range(9):  # each unit's own score: its epochs only (classes it shows)
        assert per["macro_f1"][i] == pytest.approx(f1_score(ys[i], ps[i], average="macro"), abs=1e-12)
        assert per["kappa"][i] == pytest.approx(cohen_kappa_score(ys[i], ps[i]), abs=1e-12)


def test_event_scores_are_the_pooled_by_event_counts():
    from neuroconv.engine.events import event_scores

    counts = np.array([[5, 2, 1, 4, 3, 2], [0, 0, 0, 0, 0, 0], [3, 4, 0, 1, 6, 2]], float)
    ep = EventPredictions(counts, ["a", "b", "c"])
    got = ep.score()
    p, r, f = event_scores(counts[:, :3].sum(0))
    assert (got["event_precision"], got["event_recall"], got["event_f1"]) == pytest.approx((p, r, f))
    assert got["event_f1_50"] == pytest.approx(event_scores(counts[:, 3:].sum(0))[2])
    assert ep.unit_scores()["event_f1"][1] == 1.0  # no true and no predicted event: agreement


def test_the_statistics_door_serves_dense_predictions():
    """The same statistics call as for windows: unit means, paired sign flips, exact."""
    rng = np.random.default_rng(3)
    cells_a = rng.integers(0, 20, (6, 25)) + np.eye(5).ravel() * 60
    cells_b = rng.integers(0, 20, (6, 25)) + np.eye(5).ravel() * 40
    a, b = (ConfusionPredictions(c, [f"u{i}" for i in range(6)], 5, folds=np.arange(6)) for c in (cells_a, cells_b))
    block = statistics({"a": a, "b": b}, ["a"], n_boot=100, n_perm=100)
    assert block["models"]["a"]["macro_f1"]["headline"] == "unit_mean"
    row = block["paired"][0]["macro_f1"]
    assert row["permutation"] == "exact" and row["difference"] > 0 and row["ci95"] is None  # 6 units < 8


# --------------------------------------------------------------------------- targets
def test_stage_targets_sit_on_the_epoch_grid_and_unscored_epochs_are_masked(nights_store):
    from neuroconv.brain.config import load_config
    from neuroconv.brain.tasks import task
    from neuroconv.data import open_stores

    kc = load_config("sleep_edf", job="decode").decode
    stores = open_stores([nights_store])
    t = task("staging")
    samples = t.samples(stores, kc, None)
    targets = t.targets(stores, samples, np.zeros(len(samples), bool), kc)
    assert targets.classes == STAGES and (samples["hop"] == 1).all()
    ev = stores[0].events
    for i, rid in enumerate(samples["id"]):
        e = ev[ev.id == rid]
        y = targets.y[i]
        assert len(y) == stores[0].manifest.set_index("id").loc[rid, "n_times"]
        np.testing.assert_array_equal(y[e.onset.to_numpy()], [STAGES.index(v[6:]) for v in e.label])
        assert (y == -1).sum() == len(y) - len(e)


def test_detection_truth_is_the_reference_scorer(bursts_store):
    from neuroconv.brain.config import load_config
    from neuroconv.brain.tasks import task
    from neuroconv.data import open_stores

    stores = open_stores([bursts_store])
    t = task("detection")
    counts = {}
    for ref in ("expert1", "expert2", "union"):
        kc = load_config("dreams_spindles", {"decode.reference": ref}, job="decode").decode
        samples = t.samples(stores, kc, None)
        y = t.targets(stores, samples, np.zeros(len(samples), bool), kc).y
        counts[ref] = sum(len(v) for v in y)
    ev = stores[0].events
    assert counts["expert1"] == (ev.label == "spindle:expert1").sum()
    assert counts["expert2"] == (ev.label == "spindle:expert2").sum()
    assert counts["union"] == counts["expert1"]  # expert2's events are a subset here
    kc = load_config("dreams_spindles", {"decode.reference": "expert3"}, job="decode").decode
    with pytest.raises(ValueError, match="scored no recording"), pytest.warns(UserWarning, match="never scored"):
        t.samples(stores, kc, None)


# --------------------------------------------------------------------------- end to end
def test_staging_runs_every_model_on_the_same_nights_and_writes_hypnograms(nights_store, tmp_path):
    from neuroconv.brain.decode import run_decode

    cfg = tiny_config([nights_store], tmp_path, **{
        "decode.task": "staging", "decode.target": "stage", "decode.event_labels": STAGES,
        "decode.cv": "leave_group_out", "decode.group_by": "subject", "decode.batch_size": 2,
        "decode.models": ["sleepconv", "sleepconv_short", "stage_lr", "stage_lr_hmm", "stage_gru"],
        "decode.sleepconv.d_model": 8, "decode.sleepconv.n_layers": 1, "decode.sleepconv_short.d_model": 8,
        "decode.sleepconv_short.n_layers": 1, "decode.stage_gru.hidden_size": 8, "decode.stage_gru.crop": 0})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "staging" and m["classes"] == STAGES and m["protocol"]["n_folds"] == 4
    for name in ("sleepconv", "stage_lr_hmm"):
        blk = m["models"][name]
        assert blk["family"] == ("ours" if name == "sleepconv" else "baseline")
        assert set(blk["per_class_f1"]) == set(STAGES) and np.array(blk["confusion_matrix"]).shape == (5, 5)
        assert {"macro_f1", "kappa", "accuracy"} <= set(blk)
    preds = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    # every model predicts every epoch of every night once, the same epochs
    keys = {k: p[["fold", "id", "epoch"]].to_numpy().tolist() for k, p in preds.groupby("model")}
    assert len({str(sorted(v)) for v in keys.values()}) == 1
    assert len(preds[preds.model == "stage_lr"]) == sum(pd.read_csv(nights_store / "manifest.csv")["n_times"])
    # the scores are those of the predictions: stage_lr's pooled accuracy, from the rows
    lr = preds[(preds.model == "stage_lr") & (preds.y_true >= 0)]
    assert m["models"]["stage_lr"]["accuracy"]["pooled"] == pytest.approx((lr.y_true == lr.y_pred).mean())
    # the ablation differs from the whole-night model only in its kernels
    assert (run / "config.yaml").read_text().count("kernel_size: 5") >= 1
    hyp = pd.read_csv(run / "hypnograms" / "sleepconv" / "n0.tsv", sep="\t")
    assert list(hyp.columns) == ["onset", "duration", "stage", "true_stage"] and hyp.duration.iloc[0] == 30.0
    assert (run / "plots" / "hypnograms_sleepconv.png").is_file()
    assert (run / "models" / "sleepconv" / "fold0" / "kernels.png").is_file()  # what the kernels learned
    assert {(p["first"], p["second"]) for p in m["paired"]} >= {("sleepconv", "sleepconv_short"),
                                                               ("sleepconv", "stage_gru")}


def test_detection_scores_events_and_writes_events_tsv(bursts_store, tmp_path):
    pytest.importorskip("yasa")
    from neuroconv.brain.decode import run_decode

    cfg = tiny_config([bursts_store], tmp_path, **{
        "decode.task": "detection", "decode.target": "spindle", "decode.reference": "expert1",
        "decode.cv": "leave_group_out", "decode.group_by": "subject", "decode.models": ["sigma_lr", "spindleconv"],
        "decode.spindleconv.d_model": 8, "decode.spindleconv.n_layers": 1, "decode.spindleconv.crop": 600,
        "decode.spindleconv.kernel_size": 100})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    blk = m["models"]["sigma_lr"]
    assert m["task"] == "detection" and blk["event_f1"]["pooled"] > 0.5  # the planted bursts are found
    preds = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    preds = preds[preds.model == "sigma_lr"]
    assert blk["n_pred"] == preds.n_pred.sum() and blk["n_true"] == preds.n_true.sum()
    ev = pd.read_csv(run / "events" / "sigma_lr" / "e0_events.tsv", sep="\t")
    assert list(ev.columns) == ["onset", "duration", "trial_type", "sample"] and (ev.trial_type == "spindle").all()
    assert len(ev) == preds.set_index("id").loc["e0", "n_pred"]
    assert (run / "plots" / "events_sigma_lr.png").is_file()
    hp = m["models"]["spindleconv"]["hyperparameters"][0]
    assert 0 < hp["threshold"] < 1 and hp["min_duration"] in (0.3, 0.5, 0.7)  # chosen on the training recordings
    assert {(p["first"], p["second"]) for p in m["paired"]} == {("spindleconv", "sigma_lr")}


def test_early_stopping_on_the_task_metric_scores_stages_by_macro_f1():
    from sklearn.metrics import f1_score

    from neuroconv.brain.zoo.neural import task_score

    rng = np.random.default_rng(3)
    items = []
    for L in (37, 52):  # two nights of odd lengths, unlabelled and padded steps at -100
        y = rng.integers(0, 5, L)
        y[rng.random(L) < 0.2] = -100
        items.append((rng.dirichlet(np.ones(5), L), y))
    y = np.concatenate([t for _, t in items])
    p = np.concatenate([q for q, _ in items]).argmax(1)
    keep = y != -100
    assert task_score("staging", 5)(items) == pytest.approx(f1_score(y[keep], p[keep], average="macro",
                                                                      labels=range(5), zero_division=0))
    with pytest.raises(ValueError, match="early_stopping loss"):
        task_score("classification", 2)


def test_spindle_early_stopping_score_is_the_by_event_f1_at_the_best_threshold():
    from neuroconv.brain import zoo
    from neuroconv.engine.config import TrainerConfig

    dec = zoo.make("spindleconv", zoo.Context(trainer=TrainerConfig()))
    y = np.zeros(300, int)
    for on in (20, 100, 200):  # three 1-s spindles in 0.1-s bins
        y[on:on + 10] = 1
    padded = np.concatenate([y, np.full(40, -100)])
    perfect = np.stack([1.0 - padded.clip(0), padded.clip(0)], 1).astype(float)
    assert dec._val_score([(perfect, padded)]) == 1.0
    first = perfect.copy()  # only the first spindle found: precision 1, recall 1/3
    first[100:, 1], first[100:, 0] = 0.0, 1.0
    assert dec._val_score([(first, padded)]) == pytest.approx(0.5)
    # pooled over recordings, not averaged: 3 of 6 true events found, no false one
    assert dec._val_score([(perfect, padded), (np.stack([np.ones(340), np.zeros(340)], 1), padded)]) == \
        pytest.approx(2 * 0.5 / 1.5)


def test_staging_can_stop_on_its_metric_and_records_it(nights_store, tmp_path):
    from neuroconv.brain.decode import run_decode

    cfg = tiny_config([nights_store], tmp_path, **{
        "decode.task": "staging", "decode.target": "stage", "decode.event_labels": STAGES,
        "decode.cv": "leave_group_out", "decode.group_by": "subject", "decode.batch_size": 2,
        "decode.early_stopping": "metric", "decode.models": ["sleepconv_short", "stage_gru"],
        "decode.sleepconv_short.d_model": 8, "decode.sleepconv_short.n_layers": 1,
        "decode.stage_gru.hidden_size": 8, "decode.stage_gru.crop": 0})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    assert m["protocol"]["early_stopping"] == "metric" and "own score" in m["protocol"]["selection"]
    for name in ("sleepconv_short", "stage_gru"):  # every neural model follows the same criterion
        for fold in m["models"][name]["folds"]:
            t = fold["training"]
            assert t["monitor"] == "val_score" and 0 <= t["best_val_score"] <= 1 and t["best_val_loss"] > 0


def test_early_stopping_on_a_metric_is_refused_for_window_tasks(sites_store, tmp_path):
    from neuroconv.brain.decode import run_decode

    cfg = tiny_config([sites_store], tmp_path, **{"decode.early_stopping": "metric", "decode.target": "label",
                                                  "decode.models": ["scratch"]})
    with pytest.raises(ValueError, match="early_stopping metric"):
        run_decode(cfg, log=lambda *_: None)


def test_spindle_features_standardised_per_recording_ignore_its_gain_and_offset():
    from neuroconv.brain import zoo
    from neuroconv.engine.config import TrainerConfig

    dec = zoo.make("spindleconv", zoo.Context(trainer=TrainerConfig()))
    dec.settings.feature_norm = "recording"
    rng = np.random.default_rng(5)
    f = rng.standard_normal((101, 8)) * rng.uniform(0.5, 3, 8) + rng.uniform(-2, 2, 8)
    z = dec._norm(f)
    assert np.allclose(z.mean(0), 0) and np.allclose(z.std(0), 1)
    assert np.allclose(dec._norm(2.5 * f - 1.0), z)  # a recording's own scale and offset are gone
    dec.settings.feature_norm = "training"
    dec.mean_, dec.sd_ = f.mean(0), f.std(0)
    assert np.allclose(dec._norm(f), z) and not np.allclose(dec._norm(2.5 * f - 1.0), z)
    dec.settings.feature_norm = "per-night"
    with pytest.raises(ValueError, match="feature_norm"):
        dec._norm(f)
