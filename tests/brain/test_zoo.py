"""The model zoo: every registered model through the shared contract, the same chance
for every model (class weighting, regulariser choice on the inner split), and covconv's
inner fit and refit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from neuroconv.brain import zoo
from neuroconv.brain.config import ExperimentConfig, job_parser
from neuroconv.brain.data import ArrayWindows
from neuroconv.engine.folds import Folds

from .conftest import tiny_config


def _make(name, cfg):
    """Model ``name`` as decode makes it from the config ``cfg``."""
    from neuroconv.brain.design import context

    return zoo.make(name, context(cfg), cfg.decode.settings(name))


def _cfg(**overrides):
    base = {"model.d_model": 8, "model.n_layers": 1, "model.kernel_dropout": 0.0, "decode.max_epochs": 2,
            "decode.batch_size": 8, "decode.warmup_steps": 1, "decode.progress": "none", "decode.patience": 2,
            "decode.covconv.filter_seconds": 0.05, "decode.c_grid": [0.01, 0.1, 1.0]}
    return job_parser("decode").override(ExperimentConfig(name="t"), {**base, **overrides})


def _part(n_groups=8, per=6, C=4, T=128, sfreq=128.0, seed=0, kind="classification", imbalance=False,
          fmri=False):
    """Windows with a class effect in channel 0's 10 Hz power, groups of ``per`` windows."""
    rng = np.random.default_rng(seed)
    n = n_groups * per
    y = np.arange(n) % 2 if not imbalance else (rng.random(n) < 0.25).astype(int)
    t = np.arange(T) / sfreq
    X = rng.standard_normal((n, C, T))
    X[:, 0] += (1 + 2 * y[:, None]) * np.sin(2 * np.pi * 10 * t)[None]
    groups = np.repeat(np.arange(n_groups), per).astype(str)
    target = y.astype(float) if kind == "regression" else y
    windows = ArrayWindows(X.astype(np.float32), target, sfreq, f"input{C}")
    data = zoo.DecodeData(windows, target, kind, ["a", "b"] if kind == "classification" else [], groups,
                          np.arange(n).astype(str), np.zeros(n, int), np.full(n, T))
    train = np.arange(n - 2 * per)
    h = Folds(cv="none", seed=0, val_fraction=0.25, stratify=kind == "classification").holdout(
        target[train], groups[train])
    from neuroconv.engine.folds import Holdout

    inner = Holdout(train[h.train], train[h.val], h.by)
    return zoo.TrainingPart(data, train, inner, "balanced", 0), np.arange(n - 2 * per, n)


# --------------------------------------------------------------------------- contract
def _applicable(name):
    t = zoo.ZOO[name].traits
    return (not t.needs_backbone and t.paradigm != "ssvep" and "eeg" in t.modalities
            and "classification" in t.tasks)  # window classification; dense tasks: tests/brain/test_dense.py


@pytest.mark.parametrize("name", [n for n in zoo.ZOO if _applicable(n)])
def test_every_registered_model_follows_the_contract(name):
    """fit(part) -> predict(data, idx) gives probabilities for exactly the asked samples,
    and report() says what was chosen on the inner split."""
    part, test = _part()
    decoder = _make(name, _cfg())
    assert isinstance(decoder, zoo.Decoder)
    out = decoder.fit(part).predict(part.data, test)
    assert out.shape == (len(test), 2) and np.allclose(out.sum(1), 1.0, atol=1e-6) and (out >= 0).all()
    report = decoder.report()
    json.dumps(report)  # JSON-safe, as metrics.json needs
    assert "hyperparameters" in report
    if "C" in report["hyperparameters"]:
        losses = report["hyperparameters"]["selection_loss"]
        # chosen from the grid and the decades it was extended by at an edge, nothing else
        extended = [c for ext in report["hyperparameters"].get("grid_extended", []) for c in ext]
        np.testing.assert_allclose(sorted(losses), sorted([0.01, 0.1, 1.0] + extended))
        assert report["hyperparameters"]["C"] == min(losses, key=losses.get)
    # the same samples in another order give the same outputs, row for row
    order = test[::-1]
    np.testing.assert_allclose(decoder.predict(part.data, order), out[::-1], rtol=1e-5, atol=1e-6)


def test_traits_say_what_each_model_needs():
    assert zoo.ZOO["finetune"].traits.needs_backbone and zoo.ZOO["probe"].traits.needs_backbone
    assert zoo.ZOO["connectivity"].traits.modalities == ("fmri",)
    assert zoo.ZOO["ts_lr"].traits.library == "pyriemann"
    assert {n for n in zoo.ZOO if zoo.ZOO[n].traits.family == "ours"} >= {"scratch", "covconv", "finetune", "probe"}
    with pytest.raises(ValueError, match=r"unknown model 'svm'; the zoo has \["):
        _make("svm", _cfg())


# --------------------------------------------------------------------------- the same chance
@pytest.mark.parametrize("how", ["balanced", "none"])
def test_every_model_gets_the_same_class_weighting(eeg_store, tmp_path, monkeypatch, how):
    """On imbalanced events (left kept whole, 1 right in 3): every neural loss (ours and
    braindecode's) carries the balanced weights of its own training labels, every logistic
    regression is balanced, every LDA has uniform priors; with "none", nothing is weighted."""
    import shutil

    from sklearn.utils.class_weight import compute_class_weight

    import neuroconv.engine.runner as R

    store = tmp_path / "imbalanced"
    shutil.copytree(eeg_store, store)
    ev = pd.read_csv(store / "events.csv", dtype={"id": str})
    right = ev.index[ev.label == "right"]
    ev.drop(right[np.arange(len(right)) % 3 != 0]).to_csv(store / "events.csv", index=False)
    seen_nets, decoders = [], []
    real_fit = R.fit

    def spy_fit(task, train_loader, *a, **kw):
        labels = np.array([train_loader.dataset[i]["y"] for i in range(len(train_loader.dataset))]).astype(int)
        seen_nets.append((type(task.net).__name__, labels,
                          None if task.class_weights is None else task.class_weights.numpy()))
        return real_fit(task, train_loader, *a, **kw)

    real_make = zoo.make

    def spy_make(name, context, settings=None):
        decoders.append(real_make(name, context, settings))
        return decoders[-1]

    monkeypatch.setattr(R, "fit", spy_fit)
    monkeypatch.setattr(zoo, "make", spy_make)
    models = ["scratch", "covconv", "eegnet", "csp_lda", "erp_lda", "ts_lr", "bandpower", "xdawn_ts"]
    cfg = tiny_config([store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": models,
        "decode.class_weight": how, "decode.max_epochs": 1, "decode.covconv.readout": "logvar"})
    from neuroconv.brain.decode import run_decode

    run = run_decode(cfg, log=lambda *_: None)
    assert json.loads((run / "metrics.json").read_text())["protocol"]["class_weight"] == how
    assert {n for n, _, _ in seen_nets} >= {"BrainClassifier", "CovConvNet", "BraindecodeNet"}
    for net, labels, w in seen_nets:
        if how == "none":
            assert w is None, net
        else:
            want = compute_class_weight("balanced", classes=np.unique(labels), y=labels)
            np.testing.assert_allclose(w, want, rtol=1e-6, err_msg=net)
    classical = [d for d in decoders if hasattr(d, "head")]
    assert {d.name for d in classical} == {"csp_lda", "erp_lda", "ts_lr", "bandpower", "xdawn_ts"}
    for d in classical:
        if hasattr(d.head, "priors"):
            assert d.head.priors is None if how == "none" else np.allclose(d.head.priors, [0.5, 0.5]), d.name
        else:
            assert d.head.class_weight == ("balanced" if how == "balanced" else None), d.name


# --------------------------------------------------------------------------- covconv
def test_covconv_chooses_its_head_c_on_the_inner_split_and_refits_on_the_whole_part(monkeypatch):
    """The head's C is chosen from decode.c_grid by fits on the inner training part only,
    scored on the inner validation part (whose groups training never sees); the statistics
    of the starting filters are computed once and shared by the inner fit and the refit;
    the refit fits the reference on the whole part, warm-started from the inner one."""
    import neuroconv.brain.covconv as CC
    import neuroconv.brain.spd as B

    part, test = _part(n_groups=10, imbalance=True)
    y, inner = part.data.y, part.inner
    assert not set(part.data.groups[inner.train]) & set(part.data.groups[inner.val])
    fits, stats_calls, means = [], [], []
    real_head, real_stats, real_mean = CC.head_regression, CC.CovConvNet.batch_statistics, B.riemann_mean_nilearn

    def spy_head(C, seed=0, kind="classification", class_weight=None):
        est = real_head(C, seed, kind, class_weight)
        fit = est.fit

        def rec(X, yy):
            fits.append((est.C, np.asarray(yy).copy(), class_weight))
            return fit(X, yy)

        est.fit = rec
        return est

    def spy_stats(self, loader):
        stats_calls.append(len(loader.dataset))
        return real_stats(self, loader)

    def spy_mean(covs, **kw):
        means.append((len(covs), kw.get("init")))
        return real_mean(covs, **kw)

    monkeypatch.setattr(CC, "head_regression", spy_head)
    monkeypatch.setattr(CC.CovConvNet, "batch_statistics", spy_stats)
    monkeypatch.setattr(B, "riemann_mean_nilearn", spy_mean)
    decoder = _make("covconv", _cfg()).fit(part)
    extended = [c for ext in decoder.hyperparameters.get("grid_extended", []) for c in ext]
    grid = [0.01, 0.1, 1.0] + extended  # the grid, then the decades beyond an edge choice
    selection = fits[:len(grid)]
    np.testing.assert_allclose([c for c, _, _ in selection], grid)
    for _, yy, cw in selection:  # every candidate is fitted on the inner training part only
        np.testing.assert_array_equal(yy, y[inner.train])
        assert cw is not None and cw[0] != cw[1]  # balanced: the classes are weighted
    chosen = decoder.hyperparameters["C"]
    losses = decoder.hyperparameters["selection_loss"]
    assert chosen == min(losses, key=losses.get)
    # the head starts at the chosen C: on the inner part, then (refit) on the whole part
    n = len(grid)
    assert [c for c, _, _ in fits[n:]] == [chosen, chosen]
    np.testing.assert_array_equal(fits[n][1], y[inner.train])
    np.testing.assert_array_equal(fits[n + 1][1], y[part.train])
    assert stats_calls == [len(part.train)]  # one pass of the starting filters, shared
    n_f = decoder.net.n_filters
    assert [n for n, _ in means] == [len(inner.train)] * n_f + [len(part.train)] * n_f
    assert all(init is None for _, init in means[:n_f]) and all(init is not None for _, init in means[n_f:])
    assert decoder.training["refit_steps"] == (0 if not decoder.training["best_step"] else
                                               max(1, round(decoder.training["best_step"] * len(part.train)
                                                            / len(inner.train))))


def test_covconv_statistics_never_see_test_samples(eeg_store, tmp_path, monkeypatch):
    """In decode, every window covconv fits statistics on (reference, standardisation,
    prototypes) belongs to the training part of its fold."""
    import neuroconv.brain.covconv as CC
    from neuroconv.brain.decode import run_decode

    seen = []
    real = CC.CovConvNet.batch_statistics

    def spy(self, loader):
        w = loader.dataset.windows
        seen.append(set(zip(w["id"], w["start"])))
        return real(self, loader)

    monkeypatch.setattr(CC.CovConvNet, "batch_statistics", spy)
    cfg = tiny_config([eeg_store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["covconv"],
        "decode.cv": "leave_group_out", "decode.max_epochs": 1})
    run = run_decode(cfg, log=lambda *_: None)
    preds = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    assert len(seen) == preds["fold"].nunique() == 6
    for f, test in preds.groupby("fold"):
        assert seen[f] and not seen[f] & set(zip(test["id"], test["start"]))


def test_refit_trains_the_same_number_of_epochs_on_the_whole_part():
    from neuroconv.brain.zoo.neural import refit_steps

    assert refit_steps(0, 30, 40) == 0 and refit_steps(None, 30, 40) == 0
    assert refit_steps(30, 30, 40) == 40 and refit_steps(1, 100, 101) == 1


def test_probe_and_classical_heads_choose_c_by_the_same_criterion(monkeypatch):
    """Every regularised model scores its candidates with zoo.selection_loss on the inner
    validation part (the class-weighted log loss the neural models early-stop on)."""
    from neuroconv.brain.zoo import base

    calls = []
    real = base.selection_loss

    def spy(y_val, out, kind, n, sample_weight=None):
        calls.append((len(y_val), None if sample_weight is None else np.asarray(sample_weight)))
        return real(y_val, out, kind, n, sample_weight)

    monkeypatch.setattr(base, "selection_loss", spy)
    part, _ = _part()
    decoder = _make("ts_lr", _cfg()).fit(part)
    assert len(calls) == len(decoder.hyperparameters["selection_loss"]) >= 3
    assert all(n == len(part.inner.val) for n, _ in calls)
    cw = part.class_weights(part.inner.train)
    np.testing.assert_allclose(calls[0][1], cw[part.data.y[part.inner.val]])
    # the criterion is the class-weighted cross-entropy, as torch computes the neural val loss
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), 20)
    yy = rng.integers(0, 3, 20)
    w = np.array([1.0, 2.0, 0.5])
    want = torch.nn.functional.cross_entropy(torch.log(torch.as_tensor(p)), torch.as_tensor(yy),
                                             weight=torch.as_tensor(w))
    assert real(yy, p, "classification", 3, w[yy]) == pytest.approx(float(want))


def test_covconv_filters_mode_moves_only_the_band_edges_then_refits_the_head(monkeypatch):
    """decode.covconv.train filters: during training the head stays at its start (only the
    band edges move, without feature dropout); then the reference, standardisation and head
    are fitted again on the learned filters, with the C chosen before."""
    import neuroconv.brain.zoo.covconv as ZC
    from neuroconv.brain.data import loader

    seen = []
    real = ZC.fit_net

    def spy(part, net, idx, val_idx, tc, **kw):
        head0 = net.head.weight.detach().clone()
        edges0 = net.bank.edges().detach().clone()
        out = real(part, net, idx, val_idx, tc, **kw)
        seen.append((head0, out[0].head.weight.detach().clone(), edges0, out[0].bank.edges().detach().clone(),
                     out[0].drop.p))
        return out

    monkeypatch.setattr(ZC, "fit_net", spy)
    part, test = _part(n_groups=6)
    from neuroconv.engine.folds import Holdout

    part = zoo.TrainingPart(part.data, part.train, Holdout(part.train, part.train[:0], "none"), "balanced", 0)
    cfg = _cfg(**{"decode.covconv.bands": [None, [8.0, 13.0]], "decode.covconv.train": "filters",
                  "decode.covconv.head_c": 0.1, "decode.max_epochs": 3, "decode.covconv.band_lr": 0.05})
    decoder = _make("covconv", cfg).fit(part)
    (head0, head1, edges0, edges1, p_drop), = seen
    torch.testing.assert_close(head1, head0)  # frozen while the filters trained
    assert p_drop == 0.0 and not torch.allclose(edges1, edges0)  # the edges moved
    assert decoder.net.drop.p == cfg.decode.covconv.dropout  # dropout back for the model kept
    assert decoder.kernels["bands"][0] == pytest.approx(edges1[0].tolist())
    # the head kept is the logistic regression (C=0.1) of the learned filters' features
    net = decoder.net
    from neuroconv.brain.covconv import head_regression

    F = net.standardized(*net.batch_statistics(loader(part.data.windows.subset(part.train), 64, False)))
    lr = head_regression(0.1, 0, "classification", dict(enumerate(part.class_weights()))).fit(
        F, part.data.y[part.train])
    with torch.no_grad():
        logit = net.head(torch.as_tensor(F, dtype=torch.float32))
    p1 = torch.softmax(logit, 1)[:, 1].numpy()
    np.testing.assert_allclose(p1, lr.predict_proba(F)[:, 1], rtol=1e-4, atol=1e-5)


def test_probabilities_of_float32_features_sum_to_one_and_score_without_warning():
    """A linear head fitted on float32 features returns float32 probabilities; spread into
    the float64 array that every selection loss reads, their rows must still sum to 1
    (scikit-learn's log loss warns, and may renormalise, when they miss by more than
    sqrt(eps64))."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    from neuroconv.brain.zoo.base import proba_of, selection_loss

    rng = np.random.default_rng(3)
    X = rng.normal(size=(301, 7)).astype(np.float32) * 30
    y = (X[:, 0] + rng.normal(size=301) > 0).astype(int)
    est = LogisticRegression(C=100.0, max_iter=1000).fit(X, y)
    assert est.predict_proba(X).dtype == np.float32  # the case this guards against
    p = proba_of(est, X, 3)  # a third class the part lacks gets 0
    assert p.dtype == np.float64 and np.all(p[:, 2] == 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=4 * np.finfo(np.float64).eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        selection_loss(y, p, "classification", 3)


# --------------------------------------------------------------------------- one meaning per regulariser
def _standardised_features_test_part(name):
    """The fitted features of baseline ``name`` on the contract's windows (SSVEP classes
    named by frequency)."""
    part, _ = _part(C=4, T=256, sfreq=128.0)
    if zoo.ZOO[name].traits.paradigm == "ssvep":
        part.data.classes = ["20Hz", "30Hz"]
    decoder = _make(name, _cfg())
    return decoder.fit(part), part


@pytest.mark.parametrize("name", ["ts_lr", "xdawn_ts", "bandpower", "ssvep_ts_lr"])
def test_every_logistic_regression_reads_standardised_features(name):
    """One C grid means one thing: the features every logistic regression reads are
    standardised on the training part (zero mean, unit variance per feature)."""
    from sklearn.linear_model import LogisticRegression

    decoder, part = _standardised_features_test_part(name)
    assert isinstance(decoder.head, LogisticRegression)
    arrays = decoder._arrays(part.data, part.train) if hasattr(decoder, "_arrays") else \
        part.data.windows.subset(part.train).arrays()  # as the pipeline reads them (band-passed recordings)
    F = decoder.features.transform(arrays)
    np.testing.assert_allclose(F.mean(0), 0.0, atol=1e-8)
    np.testing.assert_allclose(F.std(0), 1.0, atol=1e-6)


def test_csp_lda_is_shrunk_like_erp_lda():
    for name in ("csp_lda", "erp_lda"):
        decoder, _ = _standardised_features_test_part(name)
        assert (decoder.head.solver, decoder.head.shrinkage) == ("lsqr", "auto"), name


def test_a_choice_at_the_grid_edge_extends_the_grid():
    """A C at the top of the grid extends it by a decade and chooses again; the report
    records the extension (a bare warning is not enough)."""
    from neuroconv.brain.zoo.base import MAX_EXTENSIONS, extend_grid

    assert extend_grid([0.01, 0.1, 1.0], 0.5) is None
    np.testing.assert_allclose(extend_grid([0.01, 0.1, 1.0], 1.0), [10.0])
    np.testing.assert_allclose(extend_grid(np.logspace(-4, 2, 13), 1e-4), [10 ** -5, 10 ** -4.5])
    part, _ = _part(n_groups=10, per=8)  # a strong, easy effect: the weakest regularisation wins
    decoder = _make("bandpower", _cfg(**{"decode.c_grid": [1e-4, 1e-3]})).fit(part)
    hp = decoder.hyperparameters
    assert hp["grid_extended"], hp
    assert hp["C"] > 1e-3 and hp["C"] == min(hp["selection_loss"], key=hp["selection_loss"].get)
    assert len(hp["grid_extended"]) <= MAX_EXTENSIONS
    assert set(np.round(np.log10([c for ext in hp["grid_extended"] for c in ext]), 6)) <= \
        set(np.round(np.log10(list(hp["selection_loss"])), 6))


# --------------------------------------------------------------------------- the same budget
@pytest.mark.parametrize("budget", ["steps", "epochs"])
def test_neural_models_get_the_same_step_budget(eeg_store, tmp_path, budget):
    """decode.budget steps: braindecode's networks (batch 64) get the same optimiser-step
    budget as the sequence model (batch 8), recorded per fold beside the steps taken;
    decode.budget epochs: each trains max_epochs epochs of its own batch size."""
    from neuroconv.brain.decode import run_decode

    cfg = tiny_config([eeg_store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["scratch", "eegnet"],
        "decode.cv": "leave_group_out", "decode.max_epochs": 2, "decode.batch_size": 8, "decode.patience": 0,
        "decode.refit": False, "decode.budget": budget})
    m = json.loads((run_decode(cfg, log=lambda *_: None) / "metrics.json").read_text())
    assert m["protocol"]["budget"] == budget
    for scratch, eegnet in zip(m["models"]["scratch"]["training"], m["models"]["eegnet"]["training"]):
        assert scratch["steps"] == scratch["step_budget"]  # no early stopping: the whole budget
        assert eegnet["steps"] <= eegnet["step_budget"]
        if budget == "steps":
            assert eegnet["step_budget"] == scratch["step_budget"] and eegnet["steps"] == scratch["steps"]
        else:
            assert eegnet["step_budget"] < scratch["step_budget"]
        assert eegnet["weight_decay"] == 0.0 and scratch["weight_decay"] == cfg.decode.weight_decay


# --------------------------------------------------------------------------- containment
@pytest.mark.parametrize("name", ["ts_lr", "bandpower"])
def test_covconv_starts_exactly_at_its_baseline(name):
    """decode.covconv.baseline: with train none, covconv's predictions are its baseline's
    (its features, its C chosen on the inner split, its head) to float64 rounding; the
    learned filters' features join with zero weights."""
    part, test = _part(C=4, T=256, sfreq=128.0)
    cfg = _cfg(**{"decode.covconv.baseline": name, "decode.covconv.train": "none"})
    cov = _make("covconv", cfg).fit(part)
    base = _make(name, cfg).fit(part)
    np.testing.assert_allclose(cov.predict(part.data, test), base.predict(part.data, test), rtol=0, atol=1e-10)
    assert cov.hyperparameters["C"] == base.hyperparameters["C"] and cov.training["steps"] == 0
    learned = cov.net.head.weight[:, cov.net.n_extra:]
    assert learned.abs().max() == 0 and cov.net.n_extra > 0
    with pytest.raises(ValueError, match="not a classical baseline"):
        _make("covconv", _cfg(**{"decode.covconv.baseline": "scratch"})).fit(part)


def test_covconv_trained_from_its_baseline_keeps_a_change_only_if_the_inner_split_prefers_it():
    """train all: the start (the baseline) competes on the inner split; a kept state is
    either the start (best_step 0: the baseline's predictions) or one with a lower inner
    validation loss."""
    part, test = _part(C=4, T=256, sfreq=128.0)
    cfg = _cfg(**{"decode.covconv.baseline": "ts_lr", "decode.max_epochs": 3, "decode.refit": False})
    cov = _make("covconv", cfg).fit(part)
    base = _make("ts_lr", cfg).fit(part)
    if cov.training["best_step"] == 0:
        np.testing.assert_allclose(cov.predict(part.data, test), base.predict(part.data, test), atol=1e-10)
    else:
        assert cov.training["best_val_loss"] is not None


# --------------------------------------------------------------------------- epochs as the field cuts them
def test_band_passed_windows_are_cut_from_the_filtered_recording(eeg_store):
    """A baseline's band: each recording is band-passed as a whole (MNE's IIR filter, as
    MOABB's paradigms filter), then normalised and windowed; the store stays broadband."""
    from mne.filter import filter_data

    from neuroconv.brain.data import StoreWindows
    from neuroconv.data import open_stores

    store = open_stores([eeg_store])[0]
    ev = store.event_windows(0.0, 2.0, labels=["left", "right"]).head(6).assign(store=0)
    ds = StoreWindows([store], ev, "recording")
    band = ds.filtered((8.0, 20.0))
    for i in range(len(ev)):
        rid, start, stop = ev.iloc[i][["id", "start", "stop"]]
        whole = filter_data(store.load(rid).astype(np.float64).T, store.sfreq(rid), 8.0, 20.0, method="iir",
                            verbose=False).T
        want = (whole - whole.mean(0)) / whole.std(0)
        np.testing.assert_allclose(band.window(i), want[start:stop], rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(band.raw_window(0)[:0], ds.raw_window(0)[:0])
    assert not np.allclose(band.window(0), ds.window(0))  # the broadband windows are unchanged
    np.testing.assert_allclose(ds.raw_window(0), store.load(ev.iloc[0]["id"])[ev.iloc[0]["start"]:ev.iloc[0]["stop"]])


def test_rejection_is_chosen_on_training_windows_and_applied_to_every_model(eeg_store, tmp_path):
    """decode.reject: a fold's threshold comes from its training windows alone; every
    model sees the same kept windows; metrics.json counts what was rejected."""
    from neuroconv.brain.decode import run_decode

    cfg = tiny_config([eeg_store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmax": 2.0, "decode.models": ["csp_lda", "bandpower"],
        "decode.cv": "leave_group_out", "decode.reject": "48"})  # the simulated windows span 38-56 µV
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    rej = m["rejection"]
    assert rej["rule"] == "48" and set(rej["folds"]) == {str(i) for i in range(6)}
    preds = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    a, b = (preds[preds.model == k][["fold", "id", "start"]].sort_values(["fold", "id", "start"]).to_numpy().tolist()
            for k in ("csp_lda", "bandpower"))
    assert a == b  # the same windows for every model
    total = sum(v["test_rejected"] for v in rej["folds"].values())
    n_all = len(pd.read_csv(eeg_store / "events.csv").query("label in ['left', 'right']"))
    assert total > 0 and len(a) <= n_all - total
    with pytest.raises(ValueError, match="decode.reject must be none, auto or"):
        run_decode(tiny_config([eeg_store], tmp_path, **{"decode.reject": "loud"}), log=lambda *_: None)
    with pytest.raises(ValueError, match="left no training or no test window in any fold"):
        run_decode(tiny_config([eeg_store], tmp_path, **{**{k: v for k, v in [("decode.event_labels", ["left", "right"]),
                                                                             ("decode.tmax", 2.0)]},
                                                         "decode.reject": "10"}), log=lambda *_: None)


def test_a_fold_whose_test_recording_is_all_rejected_is_left_out_and_the_run_goes_on():
    from neuroconv.brain.data import reject_windows
    from neuroconv.engine.folds import Fold, Holdout

    class Windows:  # 3 recordings of 4 windows; recording 2 is artefact throughout
        amp = np.array([40.0] * 4 + [45.0] * 4 + [400.0] * 4)

        def __len__(self):
            return 12

        def raw_window(self, i):
            return np.array([[0.0, 0.0], [self.amp[i], 1.0]])

    rec = np.repeat(np.arange(3), 4)
    folds = [Fold(k, np.flatnonzero(rec != k), np.flatnonzero(rec == k),
                  Holdout(np.flatnonzero((rec != k) & (rec != (k + 1) % 3)), np.flatnonzero(rec == (k + 1) % 3), "group"))
             for k in range(3)]
    notes = []
    kept, record = reject_windows(Windows(), folds, "100", log=notes.append)
    assert [f.index for f in kept] == [0, 1] and list(record["dropped_folds"]) == ["2"]
    assert "no test window" in record["dropped_folds"]["2"] and any("fold 2 left out" in n for n in notes)
    assert all(not np.isin(np.arange(8, 12), np.concatenate([f.train, f.test, f.inner.train, f.inner.val])).any()
               for f in kept)  # the loud recording is gone from every part of the other folds
    assert record["folds"]["0"]["train_rejected"] == 4 and record["folds"]["0"]["test_rejected"] == 0


def test_autoreject_threshold_is_autoreject_on_the_training_windows(eeg_store):
    pytest.importorskip("autoreject")
    import mne
    from autoreject import get_rejection_threshold

    from neuroconv.brain.data import StoreWindows, _autoreject_threshold
    from neuroconv.data import open_stores

    store = open_stores([eeg_store])[0]
    ev = store.event_windows(0.0, 2.0, labels=["left", "right"]).assign(store=0)
    ds = StoreWindows([store], ev, "recording")
    train = np.arange(0, len(ev), 2)
    X = np.stack([ds.raw_window(i).T for i in train]) * 1e-6
    ep = mne.EpochsArray(X, mne.create_info(store.channels(ev.iloc[0]["id"]), store.sfreq(ev.iloc[0]["id"]), "eeg"),
                         verbose="error")
    want = get_rejection_threshold(ep, random_state=0, ch_types="eeg", verbose=False)["eeg"] * 1e6
    assert _autoreject_threshold(ds, train, 0) == pytest.approx(want, rel=1e-12)
