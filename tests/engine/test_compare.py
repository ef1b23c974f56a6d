"""Scores and paired comparisons over units, against their definitions: scikit-learn's
weighted metrics, a bootstrap written as a loop, exact enumeration, formulas by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn import metrics as M

from neuroconv.engine.compare import (fold_summary, mcnemar, mcnemar_units, metric_rows, paired_units,
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


def test_unit_bootstrap_resamples_units_not_windows():
    """Each resample draws units with replacement and keeps all of a unit's windows: a
    loop over the same draws with scikit-learn's metric on the concatenated windows
    gives the same numbers."""
    rng = np.random.default_rng(4)
    units = np.repeat(np.array(["s1", "s2", "s3", "s4", "s5", "s6"]), [5, 9, 3, 7, 6, 4])
    y = rng.integers(0, 2, len(units))
    proba = rng.dirichlet(np.ones(2), len(units))
    W, codes = unit_weights(units, 50, seed=7)
    draws = np.random.default_rng(7).integers(0, len(codes), size=(50, len(codes)))
    for r in range(50):
        idx = np.concatenate([np.flatnonzero(units == codes[u]) for u in draws[r]])
        assert np.array_equal(np.bincount(idx, minlength=len(units)), W[r])
        acc = M.accuracy_score(y[idx], proba[idx].argmax(1))
        assert metric_rows(y, proba, "classification", W[r:r + 1], 2)["accuracy"][0] == pytest.approx(acc)
    res = unit_bootstrap(y, proba, "classification", units, n_boot=50, seed=7)
    accs = [M.accuracy_score(y[np.concatenate([np.flatnonzero(units == codes[u]) for u in d])],
                             proba[np.concatenate([np.flatnonzero(units == codes[u]) for u in d])].argmax(1))
            for d in draws]
    assert res["accuracy"]["ci95"] == pytest.approx(list(np.quantile(accs, [0.025, 0.975])))
    assert res["accuracy"]["value"] == pytest.approx(M.accuracy_score(y, proba.argmax(1)))
    assert res["n_units"] == 6
    one = unit_bootstrap(y, proba, "classification", np.full(len(y), "s"), n_boot=20)
    assert one["accuracy"]["ci95"] is None and one["n_units"] == 1  # nothing to resample


def test_paired_permutation_p_matches_exact_enumeration():
    """With 5 units there are 32 sign flips: the Monte-Carlo p-value must lie within its
    own sampling error (4 standard errors) of the exact one."""
    rng = np.random.default_rng(5)
    units = np.repeat(np.arange(5), 8)
    y = rng.integers(0, 2, 40)
    a = rng.dirichlet(np.ones(2), 40)
    b = rng.dirichlet(np.ones(2), 40)
    a[y == 1, 1] += 0.3
    a /= a.sum(1, keepdims=True)
    n_perm = 4000
    res = paired_units(y, a, b, "classification", units, n_boot=200, n_perm=n_perm, seed=0)
    d_obs = M.balanced_accuracy_score(y, a.argmax(1)) - M.balanced_accuracy_score(y, b.argmax(1))
    assert res["balanced_accuracy"]["difference"] == pytest.approx(d_obs)
    stats = []
    for flips in itertools.product([False, True], repeat=5):
        f = np.asarray(flips)[units]
        sa, sb = np.where(f[:, None], b, a), np.where(f[:, None], a, b)
        stats.append(M.balanced_accuracy_score(y, sa.argmax(1)) - M.balanced_accuracy_score(y, sb.argmax(1)))
    exact = np.mean(np.abs(stats) >= abs(d_obs) - 1e-12)
    se = math.sqrt(exact * (1 - exact) / n_perm) + 1 / n_perm
    assert abs(res["balanced_accuracy"]["permutation_p"] - exact) <= 4 * se + 1 / (1 + n_perm)


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
    # the interval of the difference uses the same resamples for both models
    W, _ = unit_weights(units, 100, seed=0)
    da = metric_rows(y, a, "classification", W, 2)["roc_auc"] - metric_rows(y, b, "classification", W, 2)["roc_auc"]
    assert res["roc_auc"]["ci95"] == pytest.approx(list(np.quantile(da, [0.025, 0.975])))


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
