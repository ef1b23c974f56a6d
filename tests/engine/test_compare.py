"""Scores and paired comparisons over units, against their definitions: scikit-learn's
weighted metrics, a bootstrap written as a loop, exact enumeration, formulas by hand; the
headline chosen from the design, and a simulation of the sign-flip test's level."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as M

from neuroconv.engine.compare import (MIN_UNITS, TOO_FEW_UNITS, Predictions, fold_summary, format_table, mcnemar,
                                      mcnemar_units, metric_rows, paired, paired_units, statistics, target_met,
                                      unit_bootstrap, unit_weights)


def _sk(y, out, kind, w, K):
    """scikit-learn's metrics with sample_weight (the reference)."""
    if kind == "regression":
        return {"r2": M.r2_score(y, out, sample_weight=w), "mae": M.mean_absolute_error(y, out, sample_weight=w),
                "pearson_r": np.corrcoef(np.repeat(y, w.astype(int)), np.repeat(out, w.astype(int)))[0, 1]}
    pred = out.argmax(1)
    auc = (M.roc_auc_score(y, out[:, 1], sample_weight=w) if K == 2 else
           M.roc_auc_score(y, out, multi_class="ovr", labels=list(range(K)), sample_weight=w))
    return {"accuracy": M.accuracy_score(y, pred, sample_weight=w),
            "balanced_accuracy": M.balanced_accuracy_score(y, pred, sample_weight=w),
            "f1": M.f1_score(y, pred, average="macro", labels=list(range(K)), sample_weight=w, zero_division=0),
            "roc_auc": auc}


@pytest.mark.parametrize("K, n, seed", [(2, 37, 0), (3, 101, 1), (4, 64, 2)])
def test_weighted_metrics_equal_sklearn(K, n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    y[:K] = np.arange(K)  # every class present
    proba = rng.dirichlet(np.ones(K), n)
    proba[3] = proba[4]  # tied scores count one half
    W = rng.integers(1, 4, (6, n)).astype(float)
    rows = metric_rows(y, proba, "classification", W, K)
    for r in range(len(W)):
        want = _sk(y, proba, "classification", W[r], K)
        for k, v in want.items():
            # scikit-learn sums in another order: a few ulps of the weight total
            assert rows[k][r] == pytest.approx(v, rel=1e-12, abs=1e-12), (k, r)


def test_weighted_regression_metrics_equal_sklearn():
    rng = np.random.default_rng(3)
    y = rng.standard_normal(53)
    p = y + rng.standard_normal(53)
    W = rng.integers(1, 4, (5, 53)).astype(float)
    rows = metric_rows(y, p, "regression", W)
    for r in range(len(W)):
        for k, v in _sk(y, p, "regression", W[r], None).items():
            assert rows[k][r] == pytest.approx(v, rel=1e-10, abs=1e-12), k
    # a constant target (or prediction) has no R² and no r, whatever rounding leaves of
    # its variance (0.1 summed with weights 1..n is not exactly n·0.1)
    const = np.full(53, 0.1)
    rows = metric_rows(const, p, "regression", W)
    assert np.isnan(rows["r2"]).all() and np.isnan(rows["pearson_r"]).all()
    assert np.isnan(metric_rows(y, const, "regression", W)["pearson_r"]).all()
    assert rows["mae"] == pytest.approx(W @ np.abs(0.1 - p) / W.sum(1))


def _proba(s):
    """Two-class probabilities from scores (the ranking of the second column is that of ``s``)."""
    p1 = 1 / (1 + np.exp(-s))
    return np.c_[1 - p1, p1]


def test_unit_bootstrap_resamples_units_not_windows():
    """Each resample draws units with replacement and keeps all of a unit's windows: a
    loop over the same draws with scikit-learn's metric on the concatenated windows
    gives the same numbers (pooled headline), and the mean of the drawn units' own
    scores gives the interval of the unit mean."""
    rng = np.random.default_rng(4)
    names = np.array([f"s{i}" for i in range(9)])
    units = np.repeat(names, [5, 9, 3, 7, 6, 4, 8, 5, 6])
    y = rng.integers(0, 2, len(units))
    proba = rng.dirichlet(np.ones(2), len(units))
    W, codes = unit_weights(units, 50, seed=7)
    draws = np.random.default_rng(7).integers(0, len(codes), size=(50, len(codes)))
    for r in range(50):
        idx = np.concatenate([np.flatnonzero(units == codes[u]) for u in draws[r]])
        assert np.array_equal(np.bincount(idx, minlength=len(units)), W[r])
        acc = M.accuracy_score(y[idx], proba[idx].argmax(1))
        assert metric_rows(y, proba, "classification", W[r:r + 1], 2)["accuracy"][0] == pytest.approx(acc)
    res = unit_bootstrap(y, proba, "classification", units, n_boot=50, seed=7, headline="pooled")
    accs = [M.accuracy_score(y[np.concatenate([np.flatnonzero(units == codes[u]) for u in d])],
                             proba[np.concatenate([np.flatnonzero(units == codes[u]) for u in d])].argmax(1))
            for d in draws]
    assert res["accuracy"]["headline"] == "pooled"
    assert res["accuracy"]["ci95"] == pytest.approx(list(np.quantile(accs, [0.025, 0.975])))
    assert res["accuracy"]["value"] == res["accuracy"]["pooled"] == pytest.approx(M.accuracy_score(y, proba.argmax(1)))
    assert res["n_units"] == 9 and res["accuracy"]["n_units"] == 9
    # the unit mean: every unit has its own accuracy, so it is the headline by default
    own = np.array([M.accuracy_score(y[units == c], proba[units == c].argmax(1)) for c in codes])
    auto = unit_bootstrap(y, proba, "classification", units, n_boot=50, seed=7)
    assert auto["accuracy"]["headline"] == "unit_mean" and auto["accuracy"]["undefined_units"] == 0
    assert auto["accuracy"]["value"] == auto["accuracy"]["unit_mean"] == pytest.approx(own.mean())
    assert auto["accuracy"]["pooled"] == pytest.approx(res["accuracy"]["pooled"])
    assert auto["accuracy"]["ci95"] == pytest.approx(list(np.quantile(own[draws].mean(1), [0.025, 0.975])))
    one = unit_bootstrap(y, proba, "classification", np.full(len(y), "s"), n_boot=20)
    assert one["accuracy"]["ci95"] is None and one["n_units"] == 1  # nothing to resample
    assert one["accuracy"]["interval"] == TOO_FEW_UNITS


def _swap_enumeration(y, a, b, units, score):
    """``score(first) − score(second)`` for every sign flip of the units (scikit-learn)."""
    out = []
    for flips in itertools.product([False, True], repeat=len(np.unique(units))):
        f = np.asarray(flips)[units]
        sa, sb = np.where(f[:, None], b, a), np.where(f[:, None], a, b)
        out.append(score(y, sa.argmax(1)) - score(y, sb.argmax(1)))
    return np.asarray(out)


def test_paired_permutation_p_is_exact_when_every_flip_fits():
    """With 5 units there are 32 sign flips: n_perm = 4000 enumerates them, and the
    p-value equals the share of flips at least as extreme, for the pooled swap test and
    for the sign-flip test of the mean of per-unit differences; it can never go below
    2/32."""
    rng = np.random.default_rng(5)
    units = np.repeat(np.arange(5), 8)
    y = np.tile([0, 1], 20)
    a = rng.dirichlet(np.ones(2), 40)
    b = rng.dirichlet(np.ones(2), 40)
    a[y == 1, 1] += 0.3
    a /= a.sum(1, keepdims=True)
    res = paired_units(y, a, b, "classification", units, n_boot=200, n_perm=4000, seed=0, headline="pooled")
    r = res["balanced_accuracy"]
    d_obs = M.balanced_accuracy_score(y, a.argmax(1)) - M.balanced_accuracy_score(y, b.argmax(1))
    assert r["difference"] == r["pooled"] == pytest.approx(d_obs)
    stats = _swap_enumeration(y, a, b, units, M.balanced_accuracy_score)
    assert r["permutation"] == "exact" and r["n_permutations"] == 32 and r["smallest_p"] == pytest.approx(2 / 32)
    assert r["permutation_p"] == pytest.approx(np.mean(np.abs(stats) >= abs(d_obs) - 1e-12), abs=1e-12)
    # fewer than 8 units: no interval, no bootstrap p
    assert r["ci95"] is None and r["interval"] == TOO_FEW_UNITS and r["p_value"] is None
    # the unit mean (every unit holds both classes): flips of the per-unit differences
    auto = paired_units(y, a, b, "classification", units, n_boot=200, n_perm=4000, seed=0)["balanced_accuracy"]
    d = np.array([M.balanced_accuracy_score(y[units == u], a[units == u].argmax(1))
                  - M.balanced_accuracy_score(y[units == u], b[units == u].argmax(1)) for u in range(5)])
    flips = np.array(list(itertools.product([1, -1], repeat=5)))
    assert auto["headline"] == "unit_mean" and auto["difference"] == pytest.approx(d.mean())
    assert auto["permutation"] == "exact" and auto["test"] == "sign-flip over units"
    assert auto["p_value"] == auto["permutation_p"] == pytest.approx(
        np.mean(np.abs(flips @ d) >= abs(d.sum()) - 1e-12), abs=1e-12)


def test_paired_permutation_p_by_monte_carlo_matches_exact_enumeration():
    """With 10 units (1024 flips) and n_perm = 1000 the flips are drawn: the p-value must
    lie within its own sampling error (4 standard errors) of the exact one."""
    rng = np.random.default_rng(8)
    units = np.repeat(np.arange(10), 6)
    y = np.tile([0, 1], 30)
    a, b = rng.dirichlet(np.ones(2), 60), rng.dirichlet(np.ones(2), 60)
    a[y == 1, 1] += 0.2
    a /= a.sum(1, keepdims=True)
    n_perm = 1000
    pooled = paired_units(y, a, b, "classification", units, n_boot=50, n_perm=n_perm, headline="pooled")["accuracy"]
    d_obs = M.accuracy_score(y, a.argmax(1)) - M.accuracy_score(y, b.argmax(1))
    exact = np.mean(np.abs(_swap_enumeration(y, a, b, units, M.accuracy_score)) >= abs(d_obs) - 1e-12)
    unit = paired_units(y, a, b, "classification", units, n_boot=50, n_perm=n_perm)["roc_auc"]
    d = np.array([M.roc_auc_score(y[units == u], a[units == u, 1]) - M.roc_auc_score(y[units == u], b[units == u, 1])
                  for u in range(10)])
    flips = np.array(list(itertools.product([1, -1], repeat=10)))
    exact_unit = np.mean(np.abs(flips @ d) >= abs(d.sum()) - 1e-12)
    for r, want in ((pooled, exact), (unit, exact_unit)):
        assert r["permutation"] == "monte carlo" and r["n_permutations"] == n_perm
        assert r["smallest_p"] == pytest.approx(1 / (1 + n_perm))
        se = math.sqrt(want * (1 - want) / n_perm) + 1 / n_perm
        assert abs(r["permutation_p"] - want) <= 4 * se + 1 / (1 + n_perm)


def test_paired_wilcoxon_is_over_per_unit_scores():
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(6)
    units = np.repeat(np.arange(8), 12)
    y = np.tile([0, 1], 48)
    a = rng.dirichlet(np.ones(2), 96)
    b = rng.dirichlet(np.ones(2), 96)
    res = paired_units(y, a, b, "classification", units, n_boot=100, n_perm=100)
    per_a = [M.roc_auc_score(y[units == u], a[units == u, 1]) for u in range(8)]
    per_b = [M.roc_auc_score(y[units == u], b[units == u, 1]) for u in range(8)]
    d = np.round(np.subtract(per_a, per_b), 12)  # exact ties stay tied (ratios of small counts)
    w = res["roc_auc"]["wilcoxon"]
    assert w["n_units"] == 8 and w["first_wins"] == int((d > 0).sum())
    assert w["p_value"] == pytest.approx(wilcoxon(d).pvalue)
    # every unit holds both classes: the headline is the mean of the per-unit differences,
    # and its interval resamples the units' differences
    r = res["roc_auc"]
    assert r["headline"] == "unit_mean" and r["difference"] == pytest.approx(np.mean(d))
    assert r["pooled"] == pytest.approx(M.roc_auc_score(y, a[:, 1]) - M.roc_auc_score(y, b[:, 1]))
    draws = np.random.default_rng(0).integers(0, 8, size=(100, 8))
    assert r["ci95"] == pytest.approx(list(np.quantile(d[draws].mean(1), [0.025, 0.975])))
    # a pooled headline: the interval of the difference uses the same resamples for both models
    pooled = paired_units(y, a, b, "classification", units, n_boot=100, n_perm=100, headline="pooled")["roc_auc"]
    W, _ = unit_weights(units, 100, seed=0)
    da = metric_rows(y, a, "classification", W, 2)["roc_auc"] - metric_rows(y, b, "classification", W, 2)["roc_auc"]
    assert pooled["ci95"] == pytest.approx(list(np.quantile(da, [0.025, 0.975])))
    assert pooled["wilcoxon"] == w  # the same per-unit differences


def test_headline_is_the_unit_mean_where_units_hold_every_class_and_pooled_where_they_hold_one():
    """Decided per metric from the predictions: per-unit ROC AUC, balanced accuracy and
    macro F1 need both classes in a unit; accuracy is every unit's own. Most units with
    an undefined score: pooled; a few: the unit mean over the others, counted."""
    rng = np.random.default_rng(9)
    U, n = 10, 12
    units = np.repeat(np.arange(U), n)

    def preds(y):
        return (Predictions(y, rng.dirichlet(np.ones(2), len(y)), "classification", units, 2),
                Predictions(y, rng.dirichlet(np.ones(2), len(y)), "classification", units, 2))

    both = np.tile([0, 1], U * n // 2)
    one = np.repeat(np.arange(U) % 2, n)
    mixed = both.copy()
    mixed[units < 3] = units[units < 3] % 2  # 3 units of one class, 7 of both
    mostly_one = one.copy()
    mostly_one[units < 4] = both[units < 4]  # 4 of both, 6 of one
    want = {"both": ("unit_mean", 0), "one": ("pooled", U), "mixed": ("unit_mean", 3), "mostly_one": ("pooled", 6)}
    for name, y in (("both", both), ("one", one), ("mixed", mixed), ("mostly_one", mostly_one)):
        a, b = preds(y)
        s = statistics({"a": a, "b": b}, ["a"], n_boot=50, n_perm=64)
        auc, row = s["models"]["a"]["roc_auc"], s["paired"][0]["roc_auc"]
        h, undefined = want[name]
        assert (auc["headline"], auc["undefined_units"]) == (h, undefined), name
        assert row["headline"] == h and s["models"]["a"]["accuracy"]["headline"] == "unit_mean"
        assert auc["pooled"] == pytest.approx(M.roc_auc_score(y, a.out[:, 1]))
        own = [M.roc_auc_score(y[units == u], a.out[units == u, 1]) for u in range(U) if len(set(y[units == u])) == 2]
        assert auc["unit_mean"] == (pytest.approx(np.mean(own)) if own else None)
        assert auc["value"] == auc[h] and auc["n_units"] == (U - undefined if h == "unit_mean" else U)
        # the paired difference is that of the two headlines
        assert row["difference"] == pytest.approx(auc["value"] - s["models"]["b"]["roc_auc"]["value"])
        assert row["test"] == ("sign-flip over units" if h == "unit_mean" else "clustered bootstrap")
    # three classes: a unit missing one has no balanced accuracy or macro F1 of its own
    y3 = np.tile([0, 1, 2], U * n // 3)
    y3[units < 6] = np.where(y3[units < 6] == 2, 0, y3[units < 6])
    p3 = Predictions(y3, rng.dirichlet(np.ones(3), len(y3)), "classification", units, 3)
    s3 = statistics({"a": p3}, [], n_boot=20, n_perm=0)["models"]["a"]
    assert all(s3[k]["headline"] == "pooled" and s3[k]["undefined_units"] == 6
               for k in ("balanced_accuracy", "roc_auc", "f1"))
    # regression: a unit whose targets do not vary has no R² (nor r) of its own
    yr = np.repeat(rng.standard_normal(U), n)
    pr = Predictions(yr, yr + rng.standard_normal(len(yr)), "regression", units)
    sr = statistics({"a": pr}, [], n_boot=20, n_perm=0)["models"]["a"]
    assert sr["r2"]["headline"] == sr["pearson_r"]["headline"] == "pooled" and sr["r2"]["undefined_units"] == U
    assert sr["mae"]["headline"] == "unit_mean"
    assert sr["mae"]["value"] == pytest.approx(np.mean([M.mean_absolute_error(yr[units == u], pr.out[units == u])
                                                        for u in range(U)]))


def test_paired_test_of_a_pooled_auc_is_the_clustered_bootstrap():
    """Units of one class each (one diagnosis per subject): the pooled AUC difference is
    tested by the unit bootstrap, two-sided, twice the smaller tail share around 0 with
    the +1 correction, from the same resamples (scikit-learn on each)."""
    rng = np.random.default_rng(10)
    U, n = 12, 6
    units = np.repeat(np.arange(U), n)
    y = np.repeat(np.arange(U) % 2, n)
    a = _proba(0.8 * y + rng.standard_normal(len(y)))
    b = _proba(0.3 * y + rng.standard_normal(len(y)))
    r = paired_units(y, a, b, "classification", units, n_boot=300, n_perm=200)["roc_auc"]
    draws = np.random.default_rng(0).integers(0, U, size=(300, U))
    d = []
    for row in draws:
        idx = np.concatenate([np.flatnonzero(units == u) for u in row])
        d.append(M.roc_auc_score(y[idx], a[idx, 1]) - M.roc_auc_score(y[idx], b[idx, 1])
                 if len(set(y[idx])) == 2 else np.nan)
    d = np.asarray(d)
    ok = d[np.isfinite(d)]
    want = min(1.0, 2 * min(1 + (ok <= 0).sum(), 1 + (ok >= 0).sum()) / (1 + len(ok)))
    assert r["headline"] == "pooled" and r["test"] == "clustered bootstrap"
    assert r["p_value"] == r["bootstrap_p"] == pytest.approx(want)
    assert r["ci95"] == pytest.approx(list(np.quantile(ok, [0.025, 0.975])))
    assert r["undefined_resamples"] == int(np.isnan(d).sum())
    assert r["permutation"] == "monte carlo" and r["permutation_p"] is not None  # the swap test beside it


def _offset_data(rng, U=14, n=20, delta=1.0, offset=1.5):
    """Two models of the same per-unit quality: scores ``delta·y + noise``; the second's
    shifted by a per-unit offset (sd ``offset``), which changes no per-unit ranking."""
    units = np.repeat(np.arange(U), n)
    y = np.tile(np.repeat([0, 1], n // 2), U)
    sa = delta * y + rng.standard_normal(len(y))
    sb = delta * y + rng.standard_normal(len(y)) + offset * rng.standard_normal(U)[units]
    return (Predictions(y, _proba(sa), "classification", units, 2),
            Predictions(y, _proba(sb), "classification", units, 2))


def test_unit_mean_sign_flip_keeps_its_level_where_pooled_auc_does_not():
    """No per-unit gap, per-unit calibration offsets in one model: over 300 seeded data
    sets the unit-mean sign-flip test (exact, 14 units) rejects at 0.05 about 5% of the
    time (within 3 binomial sd), while a test of the pooled AUC difference rejects far
    more often (the offsets lower the second model's pooled AUC only)."""
    rng = np.random.default_rng(11)
    n_sets, alpha = 300, 0.05
    unit_p, pooled_p = [], []
    for i in range(n_sets):
        a, b = _offset_data(rng)
        r = paired(a, b, n_boot=0, n_perm=2**14)["roc_auc"]
        assert r["headline"] == "unit_mean" and r["permutation"] == "exact"
        unit_p.append(r["p_value"])
        if i < 100:
            pooled_p.append(paired(a, b, n_boot=200, n_perm=0, headline="pooled")["roc_auc"]["p_value"])
    rate = np.mean(np.asarray(unit_p) <= alpha)
    sd = math.sqrt(alpha * (1 - alpha) / n_sets)
    assert abs(rate - alpha) <= 3 * sd, rate
    pooled_rate = np.mean(np.asarray(pooled_p) <= alpha)
    assert pooled_rate > alpha + 5 * math.sqrt(alpha * (1 - alpha) / len(pooled_p)), pooled_rate


def test_fewer_than_8_units_give_no_interval_and_meet_no_target():
    rng = np.random.default_rng(12)
    for U in (MIN_UNITS - 1, MIN_UNITS):
        units = np.repeat(np.arange(U), 10)
        y = np.tile([0, 1], 5 * U)
        good = _proba(4.0 * y - 2.0 + 0.1 * rng.standard_normal(len(y)))  # AUC and accuracy 1
        bad = rng.dirichlet(np.ones(2), len(y))
        s = statistics({"good": Predictions(y, good, "classification", units, 2),
                        "bad": Predictions(y, bad, "classification", units, 2)}, ["good"], n_boot=50, n_perm=64)
        auc, row = s["models"]["good"]["roc_auc"], s["paired"][0]["roc_auc"]
        assert auc["value"] == pytest.approx(1.0) and auc["n_units"] == U
        table = format_table(s["models"], ["roc_auc", "accuracy"])
        assert "roc_auc, mean over units [95% CI]" in table
        if U < MIN_UNITS:
            assert auc["ci95"] is None and auc["interval"] == TOO_FEW_UNITS
            assert row["ci95"] is None and row["interval"] == TOO_FEW_UNITS
            assert "too few units for an interval" in table
            assert not target_met(auc, 0.5) and not target_met(row, 0.0)
        else:
            assert auc["ci95"] is not None and "interval" not in auc and "too few" not in table
            assert target_met(auc, 0.9) and target_met(auc, 0.9, whole_interval=True)
            assert not target_met(auc, 1.01)
            assert target_met(s["models"]["good"]["accuracy"], 0.9)
    assert target_met({"value": 0.2, "n_units": 9, "ci95": [0.1, 0.3]}, 0.25, lower_is_better=True)
    assert not target_met({"value": 0.2, "n_units": 9, "ci95": [0.1, 0.3]}, 0.25, lower_is_better=True,
                          whole_interval=True)
    with pytest.raises(ValueError, match="n_units"):
        target_met({"value": 0.9}, 0.5)


def test_statistics_labels_mcnemar_as_a_test_of_accuracy_and_reports_the_pooled_headline():
    rng = np.random.default_rng(13)
    units = np.repeat(np.arange(9), 4)
    y = np.repeat(np.arange(9) % 2, 4)
    p = {m: Predictions(y, rng.dirichlet(np.ones(2), 36), "classification", units, 2) for m in "ab"}
    s = statistics(p, ["a"], n_boot=50, n_perm=64)
    row = s["paired"][0]
    assert "mcnemar" not in row and row["mcnemar_accuracy"]["method"] == "units"
    assert row["mcnemar_accuracy"] == mcnemar_units(y, p["a"].out, p["b"].out, units)
    table = format_table(s["models"], ["roc_auc", "accuracy"])
    assert "roc_auc, pooled [95% CI]" in table and "accuracy, mean over units [95% CI]" in table


def test_units_of_one_class_are_scored_quietly():
    """A held-out design whose units each hold one class (or one target value): no
    warning at all, and the units whose own score is undefined are counted."""
    rng = np.random.default_rng(14)
    U, n = 40, 5
    units = np.repeat(np.arange(U), n)
    folds = units % 4
    cases = []
    for K in (2, 3):
        y = np.repeat(np.arange(U) % K, n)
        cases.append((K, {m: Predictions(y, rng.dirichlet(np.ones(K), len(y)), "classification", units, K,
                                         folds=folds, by=folds) for m in "abc"}))
    yr = np.repeat(rng.standard_normal(U), n)
    cases.append(("regression", {m: Predictions(yr, np.full(len(yr), 0.5) if m == "c" else rng.standard_normal(len(yr)),
                                                "regression", units, folds=folds) for m in "abc"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind, p in cases:
            s = statistics(p, ["a", "b"], n_boot=100, n_perm=100)
            block = s["models"]["a"]
            for k in (("r2", "pearson_r") if kind == "regression" else ("balanced_accuracy", "roc_auc", "f1")):
                assert block[k]["undefined_units"] == U and block[k]["headline"] == "pooled", (kind, k)
                assert block[k]["unit_mean"] is None and block[k]["ci95"] is not None
            assert len(s["paired"]) == 3


def test_mcnemar_is_the_exact_binomial_on_discordant_examples():
    rng = np.random.default_rng(0)
    a, b = rng.random(60) < 0.7, rng.random(60) < 0.5
    r = mcnemar(a, b)
    n01, n10 = int((a & ~b).sum()), int((~a & b).sum())
    n = n01 + n10
    want = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(n01, n10) + 1)) / 2**n)
    assert (r["only_first_correct"], r["only_second_correct"]) == (n01, n10)
    assert r["p_value"] == pytest.approx(want)
    assert mcnemar(a, a)["p_value"] == 1.0
    with pytest.raises(ValueError, match="same examples"):
        mcnemar(a, b[:-1])


def test_mcnemar_units_aggregates_windows_of_one_class_units():
    """Units holding one class each (a subject's diagnosis): each unit's prediction is
    the argmax of its windows' mean probability, and the exact test runs over units."""
    rng = np.random.default_rng(1)
    units = np.repeat(np.arange(20), 5)
    y = np.repeat(rng.integers(0, 2, 20), 5)
    a, b = rng.dirichlet(np.ones(2), 100), rng.dirichlet(np.ones(2), 100)
    r = mcnemar_units(y, a, b, units)
    mean_a = np.stack([a[units == u].mean(0) for u in range(20)])
    mean_b = np.stack([b[units == u].mean(0) for u in range(20)])
    yu = y[::5]
    want = mcnemar(mean_a.argmax(1) == yu, mean_b.argmax(1) == yu)
    assert r["method"] == "units" and r["n_units"] == 20
    assert (r["only_first_correct"], r["only_second_correct"], r["p_value"]) == \
        (want["only_first_correct"], want["only_second_correct"], pytest.approx(want["p_value"]))


def test_mcnemar_units_is_clustered_when_classes_vary_inside_units():
    """Durkalski et al. (2003): X² = (Σ (b_k − c_k))² / Σ (b_k − c_k)², χ²(1)."""
    from scipy.stats import chi2

    rng = np.random.default_rng(2)
    units = np.repeat(np.arange(6), 10)
    y = np.tile([0, 1], 30)
    a, b = rng.dirichlet(np.ones(2), 60), rng.dirichlet(np.ones(2), 60)
    r = mcnemar_units(y, a, b, units)
    ca, cb = a.argmax(1) == y, b.argmax(1) == y
    d = np.array([(ca & ~cb)[units == u].sum() - (~ca & cb)[units == u].sum() for u in range(6)], float)
    stat = d.sum() ** 2 / (d**2).sum()
    assert r["method"] == "clustered" and r["statistic"] == pytest.approx(stat)
    assert r["p_value"] == pytest.approx(chi2.sf(stat, 1))


def test_fold_summary_uses_ddof_1_and_counts_undefined_folds():
    s = fold_summary([0.7, None, 0.5, float("nan"), 0.6])
    assert s["mean"] == pytest.approx(0.6) and s["sd"] == pytest.approx(np.std([0.7, 0.5, 0.6], ddof=1))
    assert s["n_undefined"] == 2 and s["folds"] == [0.7, None, 0.5, None, 0.6]
    assert fold_summary([0.5])["sd"] is None and fold_summary([])["mean"] is None
