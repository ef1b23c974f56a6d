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
- **The headline** of each metric is decided from the predictions, per metric and per
  design (:func:`statistics`, ``"headline"`` in every block):

  - ``"unit_mean"``, the mean of the units' own scores, where a unit's own score is
    defined for more than half of the units (a site, run or recording holding every
    class). Pooling predictions across units would mix a per-unit score with how well
    the units' scores are calibrated against each other: with per-unit offsets, a pooled
    ROC AUC can double a per-unit gap. The units whose own score is undefined are left
    out of the mean and counted (``undefined_units``).
  - ``"pooled"``, the score of all predictions together, where a unit's own score is
    undefined for most units (subjects with one diagnosis each: a per-unit ROC AUC does
    not exist).

  Both values stay in the block (``pooled``, ``unit_mean``); the interval and the test
  are those of the headline.
- :func:`bootstrap` / :func:`unit_bootstrap`: the headline and its percentile interval
  over resamples of the units (a cluster bootstrap; Field & Welsh 2007): for a pooled
  headline every resample rescores the drawn units' predictions, for a unit mean it
  averages the drawn units' scores.
- :func:`paired` / :func:`paired_units`: the difference of two models on the same
  predictions and its interval (the same unit resamples for both models), and the paired
  test of the headline: for a unit mean, the sign-flip test of the mean of the per-unit
  differences; for a pooled headline, the clustered bootstrap p-value of the pooled
  difference (with, beside it, the sign-flip test that swaps each unit's predictions
  between the models). A sign-flip test enumerates every flip when ``2^U ≤ n_perm``
  (the p-value is then exact and never below ``2 / 2^U``), and draws ``n_perm`` flips
  otherwise. The Wilcoxon signed-rank test over the per-unit differences is reported
  beside it.
- With fewer than :data:`MIN_UNITS` units there is no interval (``ci95`` None, and
  ``interval`` says why), and :func:`target_met` never reports a target as met.
- :func:`mcnemar_units`: McNemar's test of **accuracy** on unit-level predictions. When
  each unit holds one class (a subject's diagnosis), its windows are aggregated by mean
  probability and the exact test runs over units; when classes vary inside units (a
  subject's trials), the clustered McNemar test of Durkalski et al. (2003) is used, with
  units as clusters.
- :func:`fold_summary`: mean and sd (ddof=1) of per-fold scores, with the folds whose
  score is undefined counted, not dropped.

:func:`mcnemar` is the plain exact test for independent examples (the LRA test sets).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["mcnemar", "mcnemar_units", "metric_rows", "Predictions", "statistics", "bootstrap", "paired",
           "unit_bootstrap", "paired_units", "fold_summary", "unit_weights", "format_table", "target_met",
           "CountPredictions", "ConfusionPredictions", "EventPredictions", "confusion_scores", "event_counts_scores",
           "CLASSIFICATION_METRICS", "REGRESSION_METRICS", "STAGING_METRICS", "DETECTION_METRICS", "MIN_UNITS",
           "TOO_FEW_UNITS"]

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "f1")
REGRESSION_METRICS = ("r2", "mae", "pearson_r")
#: dense staging (one class per epoch of a whole recording), from confusion matrices
STAGING_METRICS = ("macro_f1", "kappa", "accuracy")
#: dense event detection, from by-event counts: F1, precision and recall at IoU >= 0.2,
#: and F1 at IoU >= 0.5
DETECTION_METRICS = ("event_f1", "event_precision", "event_recall", "event_f1_50")
#: the fewest units for an interval, or for a target to count as met
MIN_UNITS = 8
#: what a block says in place of an interval over fewer than :data:`MIN_UNITS` units
TOO_FEW_UNITS = f"too few units for an interval (U < {MIN_UNITS})"
#: metrics where lower is better (the Wilcoxon win counts and :func:`target_met` read it)
LOWER_IS_BETTER = frozenset({"mae"})
#: classification metrics whose value on one unit needs every class in that unit
_NEEDS_EVERY_CLASS = ("balanced_accuracy", "roc_auc", "f1")
_CELLS = 4_000_000  # weights × predictions per metrics call (memory bound)


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
    """McNemar's test of the **accuracy** of two classifiers over units, never over windows.

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


def _varies(v: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``(R,)``: whether ``v (n,)`` takes two different values where a row of ``W (R, n)``
    puts weight."""
    on = W > 0
    return np.where(on, v[None], -np.inf).max(1) > np.where(on, v[None], np.inf).min(1)


def metric_rows(y, out, kind: str, W, n_classes: int | None = None) -> dict:
    """Every metric of ``kind`` for each row of weights ``W (R, n)``: ``{name: (R,)}``.

    ``y (n,)``: integer classes (classification) or numbers; ``out``: class probabilities
    ``(n, K)`` or predictions ``(n,)``. A row equals scikit-learn's metric computed with
    ``sample_weight`` = that row (NaN where scikit-learn's is undefined: a class with no
    weight for ROC AUC, fewer than two distinct weighted values for R² and r: there the
    value is NaN even where rounding would give scikit-learn a tiny non-zero variance).
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
            # whether the weighted values vary is decided on the values, not on a sum of
            # squares that rounding leaves a little above 0 for a constant
            vy, vp = _varies(y, W) & (sst > 0), _varies(p, W) & (sp > 0)
            return {"r2": np.where(vy, 1 - sse / np.where(vy, sst, 1), np.nan),
                    "mae": (W @ np.abs(y - p)) / tot,
                    "pearson_r": np.where(vy & vp, cov / np.sqrt(np.where(vy & vp, sst * sp, 1)), np.nan)}
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
    :meth:`unit_scores`, :meth:`swapped`, :meth:`mcnemar`), so :func:`statistics` is one
    definition for all:

    - ``codes (U,)``: the units, sorted;
    - ``metrics(W)``: every metric for each row of unit weights ``W (R, U)`` (a row of
      ones is the pooled score; a row of bootstrap counts a resample of the units; an
      indicator row one unit's own score), ``{name: (R,)}``;
    - ``unit_scores()``: each unit's own score, ``{name: (U,)}``, NaN where that score is
      undefined for the unit (optional: without it, the indicator rows of ``metrics``
      are used);
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

    def __len__(self) -> int:
        return len(self.y)

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

    def unit_scores(self) -> dict:
        """Each unit's own score, ``{name: (U,)}``, NaN where it is undefined for that unit:
        balanced accuracy, ROC AUC and macro F1 need every class in the unit (a unit of one
        class has no ROC AUC, and its "balanced" accuracy would be one class's recall);
        accuracy and MAE are defined for every unit; R² and Pearson r where the unit's
        targets (and, for r, its predictions) vary. Computing them raises no warning."""
        scores = _metrics(self, np.eye(len(self.codes)))
        if self.kind == "classification":
            K = int(self.n_classes or self.out.shape[1])
            present = np.zeros((len(self.codes), K), bool)
            present[self.inv, self.y.astype(int)] = True
            every = present.all(1)
            for k in _NEEDS_EVERY_CLASS:
                scores[k] = np.where(every, scores[k], np.nan)
        return scores

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


class CountPredictions:
    """Predictions summarised by counts: one count vector per cell (a recording in a fold,
    say), each cell in one unit, and every metric a function of summed counts. The
    statistics protocol of :class:`Predictions` holds: a weighting of the units sums the
    cells' counts with their unit's weight, a unit's own score is that of its cells
    alone, and a sign flip takes a unit's cells from the other model.

    ``counts (n_cells, M)``, ``units (n_cells,)``; ``folds`` and ``by`` label the cells.
    Subclasses define ``names`` and ``scores(C (R, M)) -> {name: (R,)}``."""

    names: tuple = ()

    def __init__(self, counts, units, folds=None, by=None):
        self.counts = np.atleast_2d(np.asarray(counts, float))
        self.codes, self.inv = np.unique(np.asarray(units), return_inverse=True)
        if len(self.counts) != len(self.inv):
            raise ValueError(f"{type(self).__name__}: one unit per cell; got {len(self.counts)} cells and "
                             f"{len(self.inv)} units.")
        self.folds = None if folds is None else np.asarray(folds)
        self.by = None if by is None else np.asarray(by)

    def __len__(self) -> int:
        return len(self.counts)

    def scores(self, C: np.ndarray) -> dict:
        raise NotImplementedError

    def _new(self, counts, units, folds, by):
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        CountPredictions.__init__(new, counts, units, folds, by)
        return new

    def metrics(self, W) -> dict:
        W = np.atleast_2d(np.asarray(W, float))
        return self.scores(W[:, self.inv] @ self.counts)

    def unit_scores(self) -> dict:
        return self.scores(np.eye(len(self.codes))[:, self.inv] @ self.counts)

    def subset(self, mask) -> "CountPredictions":
        m = np.asarray(mask, bool)
        return self._new(self.counts[m], self.codes[self.inv[m]], None if self.folds is None else self.folds[m],
                         None if self.by is None else self.by[m])

    def score(self) -> dict:
        return {k: float(v[0]) for k, v in self.scores(self.counts.sum(0, keepdims=True)).items()}

    def swapped(self, other: "CountPredictions", flip) -> "CountPredictions":
        f = np.asarray(flip, bool)[self.inv]
        new = self._new(self.counts, self.codes[self.inv], self.folds, self.by)
        new.counts = np.where(f[:, None], other.counts, self.counts)
        return new

    def mcnemar(self, other) -> None:
        return None


def confusion_scores(C: np.ndarray, n_classes: int) -> dict:
    """Staging metrics of flattened confusion matrices ``C (R, K·K)`` (rows: truth,
    columns: prediction): accuracy, Cohen's kappa, and macro F1 over the classes present
    in the truth or the predictions of each row (scikit-learn's default labels); NaN for a
    row with no count."""
    K = int(n_classes)
    M = np.asarray(C, float).reshape(-1, K, K)
    n = M.sum((1, 2))
    tp = np.diagonal(M, axis1=1, axis2=2)
    true, pred = M.sum(2), M.sum(1)  # (R K) support and predicted counts
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = tp.sum(1) / n
        pe = (true * pred).sum(1) / n**2
        kappa = np.where(pe < 1, (acc - pe) / (1 - pe), np.nan)
        present = (true + pred) > 0
        f1 = np.where(present, 2 * tp / np.where(present, true + pred, 1), np.nan)
        macro = np.nanmean(np.where(present, f1, np.nan), axis=1)
    return {"macro_f1": np.where(n > 0, macro, np.nan), "kappa": np.where(n > 0, kappa, np.nan),
            "accuracy": np.where(n > 0, acc, np.nan)}


class ConfusionPredictions(CountPredictions):
    """Dense staging predictions: a confusion matrix per cell (``counts (n_cells, K·K)``,
    truth by prediction, flattened), scored by :func:`confusion_scores`."""

    names = STAGING_METRICS

    def __init__(self, counts, units, n_classes: int, folds=None, by=None):
        self.n_classes = int(n_classes)
        super().__init__(counts, units, folds, by)

    def scores(self, C: np.ndarray) -> dict:
        return confusion_scores(C, self.n_classes)


def event_counts_scores(C: np.ndarray) -> dict:
    """Detection metrics of by-event counts ``C (R, 6)`` = ``(tp, fp, fn)`` at IoU ≥ 0.2
    then at IoU ≥ 0.5 (:func:`neuroconv.engine.events.event_scores`' conventions: with no
    true and no predicted event all three are 1)."""
    C = np.atleast_2d(np.asarray(C, float))
    out = {}
    for (tp, fp, fn), suffix in ((C[:, 0:3].T, ""), (C[:, 3:6].T, "_50")):
        with np.errstate(invalid="ignore", divide="ignore"):
            empty = tp + fp + fn == 0
            f1 = np.where(empty, 1.0, 2 * tp / np.where(empty, 1, 2 * tp + fp + fn))
            prec = np.where(empty, 1.0, np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), 0.0))
            rec = np.where(empty, 1.0, np.where(tp + fn > 0, tp / np.where(tp + fn > 0, tp + fn, 1), 0.0))
        out["event_f1" + suffix] = f1
        if not suffix:
            out["event_precision"], out["event_recall"] = prec, rec
    return out


class EventPredictions(CountPredictions):
    """Dense detection predictions: by-event counts per cell (``counts (n_cells, 6)``: tp,
    fp, fn at IoU ≥ 0.2, then at IoU ≥ 0.5), scored by :func:`event_counts_scores`."""

    names = DETECTION_METRICS

    def scores(self, C: np.ndarray) -> dict:
        return event_counts_scores(C)


def _metrics(p, W) -> dict:
    """``p.metrics(W)`` for ``W (R, U)`` in blocks of rows (a bounded memory), quietly:
    a row whose score is undefined gives NaN and no warning."""
    W = np.atleast_2d(np.asarray(W, float))
    size = len(p) if hasattr(p, "__len__") else W.shape[1]
    step = max(1, _CELLS // max(size, 1))
    with np.errstate(all="ignore"):
        parts = [p.metrics(W[i:i + step]) for i in range(0, len(W), step)]
    return {k: np.concatenate([np.asarray(q[k], float) for q in parts]) for k in parts[0]}


def _unit_scores(p) -> dict:
    if hasattr(p, "unit_scores"):
        with np.errstate(all="ignore"):
            return {k: np.asarray(v, float) for k, v in p.unit_scores().items()}
    return _metrics(p, np.eye(len(p.codes)))


def _plan(score_sets: list, names, headline) -> dict:
    """``{metric: (headline, ok (U,))}``: ``ok`` marks the units whose own score is defined
    in every one of ``score_sets``; the headline is ``headline`` (or its entry for the
    metric), and where that is ``"auto"``: the unit mean when more than half of the units
    (and at least 2) have a defined score, else the pooled score."""
    out = {}
    for k in names:
        ok = np.logical_and.reduce([np.isfinite(s[k]) for s in score_sets])
        h = headline.get(k, "auto") if isinstance(headline, dict) else headline
        if h == "auto":
            h = "unit_mean" if ok.sum() >= 2 and 2 * ok.sum() > len(ok) else "pooled"
        if h not in ("unit_mean", "pooled"):
            raise ValueError(f"headline must be 'auto', 'unit_mean' or 'pooled' (or a dict of them per metric); "
                             f"got {h!r} for {k}.")
        out[k] = (h, ok)
    return out


def _resample_counts(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_units)``: how often each unit is drawn in each resample with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_units, size=(n_boot, n_units))
    return np.stack([np.bincount(d, minlength=n_units) for d in draws]).astype(float)


def _unit_mean_draws(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot,)``: the mean of ``values`` (one per unit) over resamples of the units."""
    return _resample_counts(len(values), n_boot, seed) @ values / len(values)


def _check_counts(n_boot: int, n_perm: int) -> None:
    for name, v in (("n_boot", n_boot), ("n_perm", n_perm)):
        if int(v) != v or v < 0:
            raise ValueError(f"{name} must be a whole number >= 0 (0 skips it); got {v!r}.")


def unit_bootstrap(y, out, kind: str, units, *, n_classes: int | None = None, n_boot: int = 2000,
                   seed: int = 0, level: float = 0.95, headline="auto") -> dict:
    """The scores of one model and their percentile intervals over resamples of the
    units (:func:`bootstrap` of :class:`Predictions`)."""
    return bootstrap(Predictions(y, out, kind, units, n_classes), n_boot=n_boot, seed=seed, level=level,
                     headline=headline)


def bootstrap(p, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95, headline="auto") -> dict:
    """One model's headline scores and their percentile intervals over resamples of its
    units (a cluster bootstrap; Field & Welsh 2007).

    ``headline``: ``"auto"`` (decided per metric from the predictions, see the module
    docstring), ``"unit_mean"``, ``"pooled"``, or a dict of these per metric. Returns
    ``{metric: block, "n_units": U}``, each block::

        {"headline": "unit_mean" | "pooled",
         "value": the headline (None where undefined),
         "pooled": the score of all predictions, "unit_mean": the mean of the units' own
         scores over the units where it is defined (None where none is),
         "n_units": the units the headline is over,
         "undefined_units": units whose own score is undefined (left out of unit_mean),
         "ci95": [low, high] of the headline over resamples of those units, or None,
         "interval": why there is none (only then), "undefined_resamples": resamples
         where the headline is undefined (only with an interval)}

    A pooled headline rescores each resample's predictions; a unit mean averages the
    drawn units' scores. With fewer than :data:`MIN_UNITS` units there is no interval.
    """
    _check_counts(n_boot, 0)
    scores = _unit_scores(p)
    pooled = {k: v[0] for k, v in _metrics(p, np.ones((1, len(p.codes)))).items()}
    return _bootstrap(p, _plan([scores], list(pooled), headline), scores, pooled, n_boot, seed, level)


def _bootstrap(p, plan: dict, scores: dict, pooled: dict, n_boot: int, seed: int, level: float) -> dict:
    U = len(p.codes)
    rows = (_metrics(p, _resample_counts(U, n_boot, seed))
            if n_boot and U >= MIN_UNITS and any(h == "pooled" for h, _ in plan.values()) else None)
    res = {}
    for k, (h, ok) in plan.items():
        n_ok = int(ok.sum())
        unit_mean = float(scores[k][ok].mean()) if n_ok else None
        n_h = n_ok if h == "unit_mean" else U
        b = {"headline": h, "value": unit_mean if h == "unit_mean" else _value(pooled[k]),
             "pooled": _value(pooled[k]), "unit_mean": unit_mean, "n_units": n_h, "undefined_units": U - n_ok,
             "ci95": None}
        if n_h < MIN_UNITS:
            b["interval"] = TOO_FEW_UNITS
        elif n_boot:
            draws = rows[k] if h == "pooled" else _unit_mean_draws(scores[k][ok], n_boot, seed)
            b["ci95"], b["undefined_resamples"] = _interval(draws, level)
        res[k] = b
    res["n_units"] = int(U)
    return res


def paired_units(y, out_first, out_second, kind: str, units, *, n_classes: int | None = None,
                 n_boot: int = 2000, n_perm: int = 2000, seed: int = 0, level: float = 0.95,
                 headline="auto") -> dict:
    """Two models' outputs on the same predictions, compared over units (:func:`paired`
    of two :class:`Predictions`)."""
    a, b = np.asarray(out_first, float), np.asarray(out_second, float)
    if a.shape != b.shape or len(a) != len(y):
        raise ValueError(f"paired_units: both models must be scored on the same predictions; got {a.shape} and "
                         f"{b.shape} for {len(y)} labels.")
    return paired(Predictions(y, a, kind, units, n_classes), Predictions(y, b, kind, units, n_classes),
                  n_boot=n_boot, n_perm=n_perm, seed=seed, level=level, headline=headline)


def paired(first, second, *, n_boot: int = 2000, n_perm: int = 2000, seed: int = 0, level: float = 0.95,
           headline="auto") -> dict:
    """Two models' predictions of the same samples, compared over units.

    ``headline`` as in :func:`bootstrap`; with ``"auto"`` a unit counts where both
    models' own scores are defined. Returns ``{metric: block, "n_units": U}``, each
    block::

        {"headline": "unit_mean" | "pooled",
         "difference": first − second of the headline, "pooled": of the pooled scores,
         "unit_mean": mean of the per-unit differences (None where no unit has both),
         "n_units", "undefined_units": as in bootstrap,
         "ci95": interval of the headline difference over the same unit resamples for
                 both models (None, and "interval" says why, with fewer than MIN_UNITS),
         "p_value": the paired test of the headline, "test": which one:
             "sign-flip over units" (unit mean: each unit's difference flips sign with
             probability 1/2; the statistic is the mean difference) or
             "clustered bootstrap" (pooled: twice the smaller share of resampled
             differences on either side of 0, ``min(1, 2 min(1 + #d* ≤ 0, 1 + #d* ≥ 0)
             / (1 + B))``; None with fewer than MIN_UNITS units),
         "bootstrap_p": that bootstrap p-value (pooled only),
         "permutation_p": the sign-flip test of the headline (for a pooled headline each
             unit's predictions are swapped between the models with probability 1/2 and
             both are rescored), "permutation": "exact" | "monte carlo",
             "n_permutations", "smallest_p": the smallest p-value the test can give,
         "wilcoxon": {"p_value", "n_units", "first_wins", "second_wins"} over the
             per-unit differences where both are defined (p None with fewer than 2
             non-zero differences)}

    Exact: all ``2^U`` flips when ``2^U ≤ n_perm``, ``p = #(|d*| ≥ |d|) / 2^U`` (never
    below ``2 / 2^U``); otherwise ``n_perm`` random flips, ``p = (1 + #(|d*| ≥ |d|)) /
    (1 + n_perm)``. ``n_perm = 0`` skips the sign-flip test, ``n_boot = 0`` the bootstrap.
    """
    _check_counts(n_boot, n_perm)
    if len(first.codes) != len(second.codes) or not np.array_equal(first.codes, second.codes):
        raise ValueError("paired: both models must be scored over the same units; got "
                         f"{len(first.codes)} and {len(second.codes)} units.")
    sa, sb = _unit_scores(first), _unit_scores(second)
    ones = np.ones((1, len(first.codes)))
    pa = {k: v[0] for k, v in _metrics(first, ones).items()}
    pb = {k: v[0] for k, v in _metrics(second, ones).items()}
    return _paired(first, second, _plan([sa, sb], list(pa), headline), sa, sb, pa, pb, n_boot, n_perm, seed,
                   level)


def _paired(first, second, plan, sa, sb, pa, pb, n_boot, n_perm, seed, level) -> dict:
    from scipy.stats import wilcoxon

    U = len(first.codes)
    pooled_keys = [k for k, (h, _) in plan.items() if h == "pooled"]
    if pooled_keys and n_boot and U >= MIN_UNITS:
        W = _resample_counts(U, n_boot, seed)
        ba, bb = _metrics(first, W), _metrics(second, W)
    swap = _swap_test(first, second, pooled_keys, pa, pb, n_perm, seed + 1) if pooled_keys else {}
    rng = np.random.default_rng(seed + 1)
    res = {}
    for k, (h, ok) in plan.items():
        du = sa[k][ok] - sb[k][ok]
        d_pooled = _value(pa[k] - pb[k])
        d_unit = float(du.mean()) if len(du) else None
        n_h = len(du) if h == "unit_mean" else U
        row = {"headline": h, "difference": d_unit if h == "unit_mean" else d_pooled, "pooled": d_pooled,
               "unit_mean": d_unit, "n_units": int(n_h), "undefined_units": int(U - len(du)), "ci95": None}
        if n_h < MIN_UNITS:
            row["interval"] = TOO_FEW_UNITS
        if h == "unit_mean":
            if n_h >= MIN_UNITS and n_boot:
                row["ci95"], row["undefined_resamples"] = _interval(_unit_mean_draws(du, n_boot, seed), level)
            row.update(_sign_flip(du, n_perm, rng))
            row.update(p_value=row["permutation_p"], test="sign-flip over units")
        else:
            row.update(p_value=None, test="clustered bootstrap", bootstrap_p=None)
            if n_h >= MIN_UNITS and n_boot:
                dd = ba[k] - bb[k]
                row["ci95"], row["undefined_resamples"] = _interval(dd, level)
                row["bootstrap_p"] = row["p_value"] = _bootstrap_p(dd)
            row.update(swap.get(k, _NO_PERMUTATION))
        # per-unit scores are ratios of small counts: rounding away float noise keeps
        # their exact ties tied (the Wilcoxon ranks depend on them)
        dr = np.round(du, 12)
        sign = -1.0 if k in LOWER_IS_BETTER else 1.0
        w = {"n_units": int(len(dr)), "first_wins": int((sign * dr > 0).sum()),
             "second_wins": int((sign * dr < 0).sum()), "p_value": None}
        if (dr != 0).sum() >= 2:
            w["p_value"] = float(wilcoxon(dr, zero_method="wilcox", alternative="two-sided").pvalue)
        row["wilcoxon"] = w
        res[k] = row
    res["n_units"] = int(U)
    return res


_NO_PERMUTATION = {"permutation_p": None, "permutation": None, "n_permutations": 0, "smallest_p": None}


def _bootstrap_p(d: np.ndarray) -> float | None:
    """Two-sided p-value of a difference from its resampled values ``d (B,)``: twice the
    smaller share on either side of 0, each count and the total with one added."""
    d = d[np.isfinite(d)]
    if not len(d):
        return None
    return float(min(1.0, 2 * min(1 + np.sum(d <= 0), 1 + np.sum(d >= 0)) / (1 + len(d))))


@functools.lru_cache(maxsize=4)
def _all_signs(n_units: int) -> np.ndarray:
    """``(2^U, U)``: every sign flip of ``U`` units as signs ±1 (−1: flipped), row ``i``
    the binary digits of ``i``."""
    out = 1.0 - 2.0 * ((np.arange(2**n_units)[:, None] >> np.arange(n_units)[None]) & 1)
    out.flags.writeable = False
    return out


def _flips(n_units: int, n_perm: int, rng):
    """``(exact, blocks)``: every sign flip of ``n_units`` units when ``2^U ≤ n_perm``, else
    ``n_perm`` random ones; ``blocks`` yields boolean arrays ``(m, U)`` (True: flipped)."""
    exact = 2**n_units <= n_perm

    def blocks(step: int):
        total = 2**n_units if exact else n_perm
        for start in range(0, total, step):
            m = min(step, total - start)
            if exact:
                yield _all_signs(n_units)[start:start + m] < 0
            else:
                yield rng.random((m, n_units)) < 0.5

    return exact, blocks


def _permutation_result(extreme: int, total: int, exact: bool, n_units: int, n_perm: int) -> dict:
    if total == 0:
        return dict(_NO_PERMUTATION)
    if exact:
        return {"permutation_p": float(extreme / total), "permutation": "exact", "n_permutations": int(total),
                "smallest_p": float(min(1.0, 2 / 2**n_units))}
    return {"permutation_p": float((1 + extreme) / (1 + total)), "permutation": "monte carlo",
            "n_permutations": int(total), "smallest_p": float(1 / (1 + n_perm))}


def _sign_flip(d: np.ndarray, n_perm: int, rng) -> dict:
    """Sign-flip test of the mean of the per-unit differences ``d (U,)``."""
    if not len(d) or not n_perm:
        return dict(_NO_PERMUTATION)
    exact, blocks = _flips(len(d), n_perm, rng)
    obs = abs(d.sum())
    tol = 1e-12 * (1.0 + np.abs(d).sum())  # the same sum in another order
    if exact:
        stats = [np.abs(_all_signs(len(d)) @ d)]
    else:
        stats = (np.abs((1.0 - 2.0 * flip) @ d) for flip in blocks(max(1, _CELLS // len(d))))
    extreme = total = 0
    for stat in stats:
        extreme += int(np.sum(stat >= obs - tol))
        total += len(stat)
    return _permutation_result(extreme, total, exact, len(d), n_perm)


def _swap_test(first, second, keys, pa, pb, n_perm: int, seed: int) -> dict:
    """Sign-flip test of pooled differences: each unit's predictions swapped between the
    models with probability 1/2, both rescored (``{metric: permutation fields}``)."""
    U = len(first.codes)
    if not n_perm or U < 1:
        return {}
    exact, blocks = _flips(U, n_perm, np.random.default_rng(seed))
    ones = np.ones((1, U))
    stats = {k: [] for k in keys}
    for flip in blocks(1024):
        for f in flip:
            ra, rb = _metrics(first.swapped(second, f), ones), _metrics(second.swapped(first, f), ones)
            for k in keys:
                stats[k].append(ra[k][0] - rb[k][0])
    out = {}
    for k in keys:
        d, dp = pa[k] - pb[k], np.asarray(stats[k])
        dp = dp[np.isfinite(dp)]
        if not np.isfinite(d):
            out[k] = dict(_NO_PERMUTATION)
            continue
        out[k] = _permutation_result(int(np.sum(np.abs(dp) >= abs(d) - 1e-12)), len(dp), exact, U, n_perm)
    return out


def statistics(predictions: dict, ours, *, n_boot: int = 2000, n_perm: int = 2000, seed: int = 0,
               level: float = 0.95, headline="auto") -> dict:
    """The whole statistics block of a comparison, from one definition of each metric.

    ``predictions``: model name -> :class:`Predictions` (or any object with its protocol;
    every model's predictions of the same samples, in the same order, with the same
    units, folds and groups); ``ours``: the names whose comparisons are reported (each of
    ours against every other model, each pair once). The headline of each metric is one
    for all models (``headline="auto"``: the unit mean where more than half of the units
    have their own score in every model, else the pooled score). Returns::

        {"models": {name: {metric: {"mean", "sd", "folds", "n_undefined",   # over folds
                                    "headline", "value", "ci95", ["interval"],
                                    "pooled", "unit_mean", "n_units",
                                    "undefined_units", ...},               # over units
                           "n_units": U, "by": {group: {metric: score, "n": n}}}},
         "paired": [{"first", "second", metric: paired block..., "n_units",
                     "mcnemar_accuracy"}]}

    (see :func:`fold_summary`, :func:`bootstrap`, :func:`paired`; ``by`` only when the
    predictions carry groups, with the pooled score of each group; ``mcnemar_accuracy``,
    McNemar's test of accuracy over units, for classification)."""
    _check_counts(n_boot, n_perm)
    names = list(predictions)
    if not names:
        return {"models": {}, "paired": []}
    codes = predictions[names[0]].codes
    for m in names[1:]:
        if not np.array_equal(predictions[m].codes, codes):
            raise ValueError(f"statistics: every model must be scored over the same units; {m} and {names[0]} "
                             "differ.")
    scores = {m: _unit_scores(predictions[m]) for m in names}
    ones = np.ones((1, len(codes)))
    pooled = {m: {k: v[0] for k, v in _metrics(predictions[m], ones).items()} for m in names}
    plan = _plan(list(scores.values()), list(pooled[names[0]]), headline)
    models = {}
    for m in names:
        p = predictions[m]
        boot = _bootstrap(p, plan, scores[m], pooled[m], n_boot, seed, level)
        folds = ([p.subset(p.folds == f).score() for f in np.unique(p.folds)]
                 if getattr(p, "folds", None) is not None else [])
        models[m] = {k: {**fold_summary([s[k] for s in folds]), **boot[k]} for k in plan}
        models[m]["n_units"] = boot["n_units"]
        if getattr(p, "by", None) is not None:
            models[m]["by"] = {str(g): {**{k: _value(v) for k, v in p.subset(p.by == g).score().items()},
                                        "n": int((p.by == g).sum())} for g in np.unique(p.by)}
    ours = [m for m in names if m in set(ours)]
    rows = []
    for i, a in enumerate(ours):
        for b in [m for m in names if m != a and (m not in ours or ours.index(m) > i)]:
            pa, pb = predictions[a], predictions[b]
            row = {"first": a, "second": b, **_paired(pa, pb, plan, scores[a], scores[b], pooled[a], pooled[b],
                                                      n_boot, n_perm, seed, level)}
            mc = pa.mcnemar(pb) if hasattr(pa, "mcnemar") else None
            if mc is not None:
                row["mcnemar_accuracy"] = mc
            rows.append(row)
    return {"models": models, "paired": rows}


def target_met(block: dict, threshold: float, *, lower_is_better: bool = False, whole_interval: bool = False) -> bool:
    """Whether a headline reaches ``threshold``: ``block`` is one metric's block of a model
    (its ``value``) or of a paired row (its ``difference``). Never on fewer than
    :data:`MIN_UNITS` units (``n_units``), nor where the headline is undefined; with
    ``whole_interval`` the whole 95% interval must reach it (so never without one).
    ``lower_is_better`` for errors such as MAE."""
    n = block.get("n_units")
    if n is None:
        raise ValueError(f"target_met: the block has no 'n_units' (keys: {sorted(block)}); pass one metric's block "
                         "from statistics().")
    value = block.get("value", block.get("difference"))
    if n < MIN_UNITS or value is None:
        return False
    ci = block.get("ci95")
    if whole_interval:
        if not ci:
            return False
        value = ci[1] if lower_is_better else ci[0]
    return bool(value <= threshold if lower_is_better else value >= threshold)


_HEADLINE_WORDS = {"unit_mean": "mean over units", "pooled": "pooled"}


def _cell(m: dict) -> str:
    value = m.get("value", m.get("pooled"))
    if value is None:
        return "n/a"
    ci = m.get("ci95")
    if ci:
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return f"{value:.3f} (too few units for an interval)" if m.get("interval") else f"{value:.3f}"


def format_table(results: dict, metric_names) -> str:
    """Markdown table: one row per model, the headline score of each metric (the mean over
    units or the pooled score, as the header says) with its 95% interval over units, or
    "too few units for an interval", then the mean ± sd over folds of the first metric."""
    heads = []
    for k in metric_names:
        h = next((r[k].get("headline") for r in results.values() if k in r and "error" not in r), None)
        heads.append(f"{k}, {_HEADLINE_WORDS[h]} [95% CI]" if h in _HEADLINE_WORDS else f"{k} [95% CI]")
    head = "| model | " + " | ".join(heads) + f" | {metric_names[0]} by fold |"
    lines = [head, "|" + "---|" * (len(metric_names) + 2)]
    for name, agg in results.items():
        if "error" in agg:
            lines.append(f"| {name} | failed: {agg['error']} |" + " |" * len(metric_names))
            continue
        cells = [_cell(agg[k]) for k in metric_names]
        m0 = agg[metric_names[0]]
        sd = f" ± {m0['sd']:.3f}" if m0.get("sd") is not None else ""
        cells.append("n/a" if m0.get("mean") is None else f"{m0['mean']:.3f}{sd}")
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
