"""Paired comparisons of two models evaluated on the same examples and the same folds."""

from __future__ import annotations

import numpy as np

__all__ = ["mcnemar", "fold_paired"]


def mcnemar(first_correct, second_correct) -> dict:
    """Exact McNemar test of two classifiers' per-example correctness (boolean arrays of
    the same examples): a two-sided binomial test on the discordant examples."""
    from scipy.stats import binomtest

    a, b = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    if a.shape != b.shape:
        raise ValueError(f"mcnemar: the two models must be scored on the same examples; got {a.shape} and {b.shape}.")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_first_correct": only_a, "only_second_correct": only_b, "p_value": float(p)}


def fold_paired(first, second) -> dict:
    """Per-fold differences ``first - second`` of a score measured on the same folds:
    their mean, sd, how many folds each side wins, and the two-sided Wilcoxon signed-rank
    p-value (None when every difference is 0 or a fold lacks a score)."""
    from scipy.stats import wilcoxon

    a, b = np.asarray(first, float), np.asarray(second, float)
    if a.shape != b.shape:
        raise ValueError(f"fold_paired: the two models must share their folds; got {len(a)} and {len(b)} folds.")
    d = a - b
    ok = np.isfinite(d)
    p = None
    if ok.all() and np.any(d != 0):
        p = float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return {"mean_difference": float(np.nanmean(d)) if ok.any() else None,
            "sd_difference": float(np.nanstd(d)) if ok.any() else None,
            "first_wins": int((d[ok] > 0).sum()), "second_wins": int((d[ok] < 0).sum()),
            "wilcoxon_p": p, "n_folds": int(ok.sum())}
