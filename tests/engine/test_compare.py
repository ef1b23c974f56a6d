"""Paired comparisons, against their definitions computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuroconv.engine.compare import fold_paired, mcnemar


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


def test_fold_paired_differences_and_wilcoxon():
    from scipy.stats import wilcoxon

    a = [0.7, 0.65, 0.72, 0.6, 0.69]
    b = [0.66, 0.66, 0.70, 0.55, 0.64]
    r = fold_paired(a, b)
    d = np.subtract(a, b)
    assert r["mean_difference"] == pytest.approx(d.mean()) and (r["first_wins"], r["second_wins"]) == (4, 1)
    assert r["wilcoxon_p"] == pytest.approx(wilcoxon(d).pvalue)
    assert fold_paired(a, a)["wilcoxon_p"] is None
