"""Scores and paired comparisons over independent units.

Windows of one person are not independent samples, and neither are the folds of a
cross-validation that share people. Every interval and every paired test here resamples
or pairs **units**: the subject, the site when sites are left out, or the recording. The
caller says which unit each prediction belongs to (``units``, one label per prediction).

- Metrics (:func:`metric_rows`): accuracy, balanced accuracy, ROC AUC (binary, or
  one-vs-rest macro), macro F1; R², MAE, Pearson r for regression. Each is computed for
  many weightings of the same predictions at once (one row of weights per bootstrap
  resample). With integer weights, a resample of units is exactly a weighting of the
  predictions, so every row equals scikit-learn's metric with ``sample_weight`` (tested).
- :func:`unit_bootstrap`: the pooled score and its percentile interval over resamples of
  the units (a cluster bootstrap; Field & Welsh 2007).
- :func:`paired_units`: the pooled difference of two models on the same predictions, its
  interval (the same unit resamples for both models), a sign-flip permutation test over
  units (each unit's predictions swapped between the models at random), and the
  Wilcoxon signed-rank test over per-unit scores where a unit's score is defined.
- :func:`mcnemar_units`: McNemar's test on unit-level predictions. When each unit holds
  one class (a subject's diagnosis), its windows are aggregated by mean probability and
  the exact test runs over units; when classes vary inside units (a subject's trials),
  the clustered McNemar test of Durkalski et al. (2003) is used, with units as clusters.
- :func:`fold_summary`: mean and sd (ddof=1) of per-fold scores, with the folds whose
  score is undefined counted, not dropped.

:func:`mcnemar` is the plain exact test for independent examples (the LRA test sets).
"""

from __future__ import annotations

import numpy as np

__all__ = ["mcnemar", "mcnemar_units", "metric_rows", "Predictions", "statistics", "bootstrap", "paired",
           "unit_bootstrap", "paired_units", "fold_summary", "unit_weights", "format_table", "CLASSIFICATION_METRICS",
           "REGRESSION_METRICS"]

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "f1")
REGRESSION_METRICS = ("r2", "mae", "pearson_r")


# --------------------------------------------------------------------------- McNemar
def mcnemar(first_correct, second_correct) -> dict:
    """Exact McNemar test of two classifiers' per-example correctness (boolean arrays of
    the same, independent examples): a two-sided binomial test on the discordant ones."""
    from scipy.stats import binomtest

    a, b = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    if a.shape != b.shape:
        raise ValueError(f"mcnemar: the two models must be scored on the same examples; got {a.shape} and {b.shape}.")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_first_correct": only_a, "only_second_correct": only_b, "p_value": float(p)}


def mcnemar_units(y, proba_first, proba_second, units) -> dict:
    """McNemar's test of two classifiers over units, never over windows.

    ``y (n,)`` integer classes, ``proba_* (n, K)`` class probabilities of the same
    predictions, ``units (n,)`` the unit of each prediction.

    - Each unit holds one class: a unit's prediction is the argmax of its windows' mean
      probability, and the exact McNemar test (:func:`mcnemar`) runs over the units
      (``method="units"``).
    - Classes vary inside units: the clustered McNemar test (Durkalski, Palesch, Lipsitz
      & Rust 2003, Stat. Med. 22:2417) on the windows' correctness, with ``b_k`` and
      ``c_k`` the windows of unit ``k`` that only the first, resp. only the second model
      gets right: ``X² = (Σ_k (b_k − c_k))² / Σ_k (b_k − c_k)²``, χ² with 1 degree of
      freedom (``method="clustered"``).
    """
    from scipy.stats import chi2

    y, units = np.asarray(y), np.asarray(units)
    pa, pb = np.asarray(proba_first, float), np.asarray(proba_second, float)
    if not (len(y) == len(units) == len(pa) == len(pb)):
        raise ValueError("mcnemar_units: y, the two probability arrays and units must have one row per prediction; "
                         f"got {len(y)}, {len(pa)}, {len(pb)} and {len(units)}.")
    codes, inv = np.unique(units, return_inverse=True)
    n_classes_per_unit = np.array([len(np.unique(y[inv == u])) for u in range(len(codes))])
    if (n_classes_per_unit == 1).all():
        counts = np.bincount(inv).astype(float)
        mean_a = np.stack([np.bincount(inv, pa[:, k]) for k in range(pa.shape[1])], 1) / counts[:, None]
        mean_b = np.stack([np.bincount(inv, pb[:, k]) for k in range(pb.shape[1])], 1) / counts[:, None]
        y_unit = np.array([y[inv == u][0] for u in range(len(codes))])
        out = mcnemar(mean_a.argmax(1) == y_unit, mean_b.argmax(1) == y_unit)
        return {**out, "method": "units", "n_units": int(len(codes))}
    ca, cb = pa.argmax(1) == y, pb.argmax(1) == y
    d = np.bincount(inv, (ca & ~cb).astype(float)) - np.bincount(inv, (~ca & cb).astype(float))  # b_k - c_k
    denom = float((d**2).sum())
    stat = float(d.sum() ** 2 / denom) if denom > 0 else 0.0
    return {"only_first_correct": int((ca & ~cb).sum()), "only_second_correct": int((~ca & cb).sum()),
            "statistic": stat, "p_value": float(chi2.sf(stat, 1)) if denom > 0 else 1.0,
            "method": "clustered", "n_units": int(len(codes))}


# --------------------------------------------------------------------------- metrics
def _weighted_auc(y_pos, score, W):
    """Weighted binary ROC AUC (ties count one half), one value per row of ``W (R, n)``:
    the trapezoidal area under scikit-learn's weighted ROC curve. NaN where a row has no
    weight on one of the two classes."""
    order = np.argsort(score, kind="mergesort")
    s, pos = score[order], y_pos[order]
    Ws = W[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of tied scores
    P = np.add.reduceat(Ws * pos, starts, axis=1)  # (R G) positive weight per score group
    N = np.add.reduceat(Ws * ~pos, starts, axis=1)
    below = np.cumsum(N, axis=1) - N  # negative weight strictly below each group
    num = (P * (below + 0.5 * N)).sum(1)
    den = P.sum(1) * N.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def metric_rows(y, out, kind: str, W, n_classes: int | None = None) -> dict:
    """Every metric of ``kind`` for each row of weights ``W (R, n)``: ``{name: (R,)}``.

    ``y (n,)``: integer classes (classification) or numbers; ``out``: class probabilities
    ``(n, K)`` or predictions ``(n,)``. A row equals scikit-learn's metric computed with
    ``sample_weight`` = that row (NaN where scikit-learn's is undefined: a class with no
    weight for ROC AUC, fewer than two distinct weighted values for R² and r).
    """
    W = np.atleast_2d(np.asarray(W, float))
    tot = W.sum(1)
    if kind == "regression":
        y, p = np.asarray(y, float), np.asarray(out, float)
        with np.errstate(invalid="ignore", divide="ignore"):
            my, mp = (W @ y) / tot, (W @ p) / tot
            sst = (W * (y[None] - my[:, None]) ** 2).sum(1)
            sse = W @ (y - p) ** 2
            cov = (W * (y[None] - my[:, None]) * (p[None] - mp[:, None])).sum(1)
            sp = (W * (p[None] - mp[:, None]) ** 2).sum(1)
            return {"r2": np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.nan),
                    "mae": (W @ np.abs(y - p)) / tot,
                    "pearson_r": np.where((sst > 0) & (sp > 0), cov / np.sqrt(sst * sp), np.nan)}
    y = np.asarray(y).astype(int)
    proba = np.asarray(out, float)
    K = int(n_classes or proba.shape[1])
    pred = proba.argmax(1)
    correct = (pred == y).astype(float)
    onehot_y = y[:, None] == np.arange(K)[None]  # (n K)
    onehot_p = pred[:, None] == np.arange(K)[None]
    support = W @ onehot_y  # (R K)
    tp = W @ (onehot_y & onehot_p)
    fp = W @ (~onehot_y & onehot_p)
    fn = support - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / np.where(support > 0, support, 1), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.where(2 * tp + fp + fn > 0, 2 * tp + fp + fn, 1), 0.0)
        bal = np.nanmean(np.where(support > 0, recall, np.nan), axis=1)
    if K == 2:
        auc = _weighted_auc(y == 1, proba[:, 1], W)
    else:  # one-vs-rest, macro average; undefined when a class has no weight
        aucs = np.stack([_weighted_auc(y == k, proba[:, k], W) for k in range(K)], 1)
        auc = np.where(np.isnan(aucs).any(1), np.nan, aucs.mean(1))
    return {"accuracy": (W @ correct) / tot, "balanced_accuracy": bal, "roc_auc": auc, "f1": f1.mean(1)}


def unit_weights(units, n_boot: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(W (n_boot, n), codes)``: each row weights every prediction by how often its unit
    was drawn in one resample of the units with replacement."""
    codes, inv = np.unique(np.asarray(units), return_inverse=True)
    return _resample_counts(len(codes), n_boot, seed)[:, inv], codes


def _interval(values: np.ndarray, level: float = 0.95):
    ok = values[np.isfinite(values)]
    if len(ok) < 2:
        return None, int(len(values) - len(ok))
    lo, hi = np.quantile(ok, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)], int(len(values) - len(ok))


def _value(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


class Predictions:
    """One model's predictions, as the statistics see them: a score for any weighting of
    the units.

    ``y (n,)`` integer classes or numbers, ``out`` class probabilities ``(n, K)`` or
    predictions ``(n,)``, ``units (n,)`` the independent unit of each prediction. Every
    task's predictions follow the same protocol (:attr:`codes`, :meth:`metrics`,
    :meth:`swapped`, :meth:`mcnemar`), so :func:`statistics` is one definition for all:

    - ``metrics(W)``: every metric for each row of unit weights ``W (R, U)`` (a row of
      ones is the pooled score; a row of bootstrap counts a resample of the units; an
      indicator row one unit's own score), ``{name: (R,)}``;
    - ``swapped(other, flip)``: these predictions with those of the units ``flip (U,)``
      taken from ``other`` (a sign-flip permutation);
    - ``mcnemar(other)``: McNemar's test of accuracy on unit-level predictions, or None.
    """

    def __init__(self, y, out, kind: str, units, n_classes: int | None = None, folds=None, by=None):
        self.y, self.out, self.kind, self.n_classes = np.asarray(y), np.asarray(out, float), kind, n_classes
        self.codes, self.inv = np.unique(np.asarray(units), return_inverse=True)
        if len(self.y) != len(self.out) or len(self.y) != len(self.inv):
            raise ValueError(f"Predictions: y, out and units must have one row per prediction; got {len(self.y)}, "
                             f"{len(self.out)} and {len(self.inv)}.")
        self.folds = None if folds is None else np.asarray(folds)
        self.by = None if by is None else np.asarray(by)

    def subset(self, mask) -> "Predictions":
        """The predictions where ``mask`` is true (their units, folds and groups kept)."""
        m = np.asarray(mask, bool)
        return Predictions(self.y[m], self.out[m], self.kind, self.codes[self.inv[m]], self.n_classes,
                           None if self.folds is None else self.folds[m], None if self.by is None else self.by[m])

    def score(self) -> dict:
        """Every metric of all these predictions, pooled: ``{name: float}`` (NaN where undefined)."""
        return {k: float(v[0]) for k, v in self.metrics(np.ones((1, len(self.codes)))).items()}

    @property
    def names(self) -> tuple:
        return REGRESSION_METRICS if self.kind == "regression" else CLASSIFICATION_METRICS

    def metrics(self, W) -> dict:
        W = np.atleast_2d(np.asarray(W, float))
        return metric_rows(self.y, self.out, self.kind, W[:, self.inv], self.n_classes)

    def swapped(self, other: "Predictions", flip) -> "Predictions":
        f = np.asarray(flip, bool)[self.inv]
        new = Predictions.__new__(Predictions)
        new.__dict__.update(self.__dict__)
        new.out = np.where(f[:, None] if self.out.ndim == 2 else f, other.out, self.out)
        return new

    def mcnemar(self, other: "Predictions") -> dict | None:
        if self.kind != "classification":
            return None
        return mcnemar_units(self.y, self.out, other.out, self.codes[self.inv])


def unit_bootstrap(y, out, kind: str, units, *, n_classes: int | None = None, n_boot: int = 2000,
                   seed: int = 0, level: float = 0.95) -> dict:
    """Pooled scores of one model and their percentile intervals over resamples of the
    units: ``{metric: {"value", "ci95", "undefined_resamples"}}`` plus ``n_units``
    (:func:`bootstrap` of :class:`Predictions`)."""
    return bootstrap(Predictions(y, out, kind, units, n_classes), n_boot=n_boot, seed=seed, level=level)


def bootstrap(p: Predictions, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Pooled scores of one model's predictions ``p`` and their percentile intervals over
    resamples of its units (a cluster bootstrap; Field & Welsh 2007):
    ``{metric: {"value", "ci95", "undefined_resamples"}}`` plus ``n_units``. With a single
    unit there is nothing to resample: ``ci95`` is None."""
    U = len(p.codes)
    point = {k: v[0] for k, v in p.metrics(np.ones((1, U))).items()}
    res = {}
    if U >= 2:
        rows = p.metrics(_resample_counts(U, n_boot, seed))
    for k, v in point.items():
        ci, bad = _interval(rows[k], level) if U >= 2 else (None, 0)
        res[k] = {"value": _value(v), "ci95": ci, "undefined_resamples": bad}
    res["n_units"] = int(U)
    return res


def _resample_counts(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_units)``: how often each unit is drawn in each resample with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_units, size=(n_boot, n_units))
    return np.stack([np.bincount(d, minlength=n_units) for d in draws]).astype(float)


def paired_units(y, out_first, out_second, kind: str, units, *, n_classes: int | None = None,
                 n_boot: int = 2000, n_perm: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Two models' outputs on the same predictions, compared over units (:func:`paired`
    of two :class:`Predictions`)."""
    a, b = np.asarray(out_first, float), np.asarray(out_second, float)
    if a.shape != b.shape or len(a) != len(y):
        raise ValueError(f"paired_units: both models must be scored on the same predictions; got {a.shape} and "
                         f"{b.shape} for {len(y)} labels.")
    return paired(Predictions(y, a, kind, units, n_classes), Predictions(y, b, kind, units, n_classes),
                  n_boot=n_boot, n_perm=n_perm, seed=seed, level=level)


def paired(first: Predictions, second: Predictions, *, n_boot: int = 2000, n_perm: int = 2000, seed: int = 0,
           level: float = 0.95) -> dict:
    """Two models' predictions of the same samples, compared over units.

    Per metric: ``difference`` (pooled first − second), ``ci95`` (percentile interval of
    the difference over the same unit resamples for both models), ``permutation_p``
    (two-sided sign-flip test: in each permutation every unit's predictions are swapped
    between the models with probability 1/2; ``(1 + #|d*| ≥ |d|) / (1 + n_perm)``), and
    ``wilcoxon`` over the per-unit differences where each unit's score is defined
    (``{"p_value", "n_units", "first_wins", "second_wins"}``, ``p_value`` None with fewer
    than 2 defined non-zero differences).
    """
    from scipy.stats import wilcoxon

    U = len(first.codes)
    ones = np.ones((1, U))
    pa, pb = first.metrics(ones), second.metrics(ones)
    if U >= 2:
        W = _resample_counts(U, n_boot, seed)
        ba, bb = first.metrics(W), second.metrics(W)
    # sign-flip permutations over units
    rng = np.random.default_rng(seed + 1)
    perm = {k: [] for k in pa}
    if U >= 2:
        n = len(first.inv)
        block = max(1, int(2e6 // max(n, 1)))
        for start in range(0, n_perm, block):
            m = min(block, n_perm - start)
            flip = rng.random((m, U)) < 0.5
            for r in range(m):
                ra = first.swapped(second, flip[r]).metrics(ones)
                rb = second.swapped(first, flip[r]).metrics(ones)
                for k in perm:
                    perm[k].append(ra[k][0] - rb[k][0])
    eye = np.eye(U)
    ua, ub = first.metrics(eye), second.metrics(eye)
    res = {}
    for k in pa:
        d = pa[k][0] - pb[k][0]
        row = {"difference": _value(d), "ci95": None, "permutation_p": None}
        if U >= 2:
            row["ci95"], row["undefined_resamples"] = _interval(ba[k] - bb[k], level)
            dp = np.asarray(perm[k])
            dp = dp[np.isfinite(dp)]
            if np.isfinite(d) and len(dp):
                row["permutation_p"] = float((1 + np.sum(np.abs(dp) >= abs(d) - 1e-12)) / (1 + len(dp)))
        du = ua[k] - ub[k]
        # per-unit scores are ratios of small counts: rounding away float noise keeps
        # their exact ties tied (the Wilcoxon ranks depend on them)
        du = np.round(du[np.isfinite(du)], 12)
        sign = -1.0 if k == "mae" else 1.0  # lower is better for MAE
        w = {"n_units": int(len(du)), "first_wins": int((sign * du > 0).sum()),
             "second_wins": int((sign * du < 0).sum()), "p_value": None}
        if (du != 0).sum() >= 2:
            w["p_value"] = float(wilcoxon(du, zero_method="wilcox", alternative="two-sided").pvalue)
        row["wilcoxon"] = w
        res[k] = row
    res["n_units"] = int(U)
    return res


def statistics(predictions: dict, ours, *, n_boot: int = 2000, n_perm: int = 2000, seed: int = 0,
               level: float = 0.95) -> dict:
    """The whole statistics block of a comparison, from one definition of each metric.

    ``predictions``: model name -> :class:`Predictions` (every model's predictions of the
    same samples, in the same order, with the same units, folds and groups); ``ours``:
    the names whose comparisons are reported (each of ours against every other model,
    each pair once). Returns::

        {"models": {name: {metric: {"mean", "sd", "folds", "n_undefined",  # over folds
                                    "pooled", "ci95"},                     # over units
                           "n_units": U, "by": {group: {metric: score, "n": n}}}},
         "paired": [{"first", "second", metric: paired block..., "mcnemar"}]}

    (see :func:`fold_summary`, :func:`bootstrap`, :func:`paired`; ``by`` only when the
    predictions carry groups)."""
    names = list(predictions)
    models = {}
    for m in names:
        p = predictions[m]
        boot = bootstrap(p, n_boot=n_boot, seed=seed, level=level)
        folds = [p.subset(p.folds == f).score() for f in np.unique(p.folds)] if p.folds is not None else []
        models[m] = {k: {**fold_summary([s[k] for s in folds]), "pooled": boot[k]["value"], "ci95": boot[k]["ci95"]}
                     for k in p.names}
        models[m]["n_units"] = boot["n_units"]
        if p.by is not None:
            models[m]["by"] = {str(g): {**{k: _value(v) for k, v in p.subset(p.by == g).score().items()},
                                        "n": int((p.by == g).sum())} for g in np.unique(p.by)}
    ours = [m for m in names if m in set(ours)]
    rows = []
    for i, a in enumerate(ours):
        for b in [m for m in names if m != a and (m not in ours or ours.index(m) > i)]:
            pa, pb = predictions[a], predictions[b]
            row = {"first": a, "second": b, **paired(pa, pb, n_boot=n_boot, n_perm=n_perm, seed=seed, level=level)}
            mc = pa.mcnemar(pb)
            if mc is not None:
                row["mcnemar"] = mc
            rows.append(row)
    return {"models": models, "paired": rows}


def format_table(results: dict, metric_names) -> str:
    """Markdown table: one row per model, the pooled score and its 95% interval over
    units per metric, then the mean ± sd over folds of the first metric."""
    head = "| model | " + " | ".join(f"{m} [95% CI]" for m in metric_names) + f" | {metric_names[0]} by fold |"
    lines = [head, "|" + "---|" * (len(metric_names) + 2)]
    for name, agg in results.items():
        if "error" in agg:
            lines.append(f"| {name} | failed: {agg['error']} |" + " |" * len(metric_names))
            continue
        cells = []
        for k in metric_names:
            m = agg[k]
            if m.get("pooled") is None:
                cells.append("n/a")
                continue
            ci = m.get("ci95")
            cells.append(f"{m['pooled']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        m0 = agg[metric_names[0]]
        sd = f" ± {m0['sd']:.3f}" if m0.get("sd") is not None else ""
        cells.append("n/a" if m0["mean"] is None else f"{m0['mean']:.3f}{sd}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- folds
def fold_summary(values) -> dict:
    """Per-fold scores: ``mean``, ``sd`` (ddof=1; None with fewer than 2 defined folds),
    ``folds`` (None where undefined) and ``n_undefined`` (folds whose score is undefined,
    e.g. ROC AUC on a test fold holding one class: counted, not silently dropped)."""
    v = np.asarray([np.nan if x is None else x for x in values], float)
    ok = v[np.isfinite(v)]
    return {"mean": float(ok.mean()) if len(ok) else None,
            "sd": float(ok.std(ddof=1)) if len(ok) >= 2 else None,
            "folds": [None if not np.isfinite(x) else float(x) for x in v],
            "n_undefined": int(len(v) - len(ok))}
