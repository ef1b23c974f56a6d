"""Splits that keep groups apart, on scikit-learn's splitters.

One object, :class:`Folds`, makes every split of every job: decode's cross-validation,
the inner early-stopping split inside each training fold, pretraining's validation split
and the baselines' folds (the baselines get the very same index arrays as the models).

Groups are the values of one manifest column (subject, session, run, site...). **The rule
for missing values**: a sample whose group value is missing (NaN, None, empty, "nan",
"n/a") is a group of its own, keyed by its recording (``fallback``). It is never merged
with other samples of unknown group, and never shares a fold side with another recording
unless they share a known group value.

Inner (validation) splits are always by group. When the training side holds fewer than
``min_groups`` groups (EEGBCI leave-one-run-out trains on two runs), a group split would
leave one group for training or none for validation; then the end of each training
recording in time is held out instead, and no window crosses the boundary (windows that
straddle it are dropped). :class:`Holdout` says which rule was used, so jobs can log it
and write it to ``metrics.json``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["Folds", "Holdout", "Fold", "fold_design", "group_values", "time_holdout", "MISSING_GROUP", "CVS"]

CVS = ("group_kfold", "leave_group_out", "none")
MISSING_GROUP = ("", "nan", "none", "n/a", "na", "<na>")


def group_values(values: Sequence, fallback: Sequence) -> np.ndarray:
    """Group labels as strings; a missing value becomes ``"recording:" + fallback[i]``."""
    out = []
    for v, fb in zip(values, fallback):
        missing = v is None or (isinstance(v, float) and not np.isfinite(v)) or str(v).strip().lower() in MISSING_GROUP
        out.append(f"recording:{fb}" if missing else str(v))
    return np.asarray(out, dtype=object)


@dataclass
class Holdout:
    """An inner split: ``train`` and ``val`` index arrays (into the arrays given), ``by``
    (``"group"``, ``"time"``, or ``"none"`` when nothing can be held out: ``val`` is
    empty and training runs without early stopping) and ``dropped`` (windows that
    straddled a time boundary)."""

    train: np.ndarray
    val: np.ndarray
    by: str
    dropped: int = 0
    note: str = ""

    def describe(self) -> dict:
        return {"by": self.by, "n_train": int(len(self.train)), "n_val": int(len(self.val)),
                "dropped": int(self.dropped), "note": self.note}


@dataclass
class Folds:
    """Cross-validation and hold-out splits that never put one group on both sides.

    Args:
        cv: "group_kfold" (k folds of groups; stratified by class for classification),
            "leave_group_out" (one fold per group) or "none" (no test split: train on
            everything, e.g. to evaluate on external test stores).
        n_splits: Folds of group_kfold (lowered, with a warning, to the number of groups).
        seed: Seed of the shuffles.
        stratify: Stratify group_kfold and the inner split by class (classification).
        val_fraction: Fraction of the training groups (or of each recording's time, see the
            module doc) held out for early stopping.
        min_groups: Fewest training groups for a group split of the validation set.
    """

    cv: str = "group_kfold"
    n_splits: int = 5
    seed: int = 0
    stratify: bool = True
    val_fraction: float = 0.2
    min_groups: int = 3

    def __post_init__(self):
        if self.cv not in CVS:
            raise ValueError(f"`cv` must be one of {list(CVS)}; got {self.cv!r}.")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"`val_fraction` must be in (0, 1); got {self.val_fraction!r}.")
        if isinstance(self.n_splits, bool) or not isinstance(self.n_splits, int) or self.n_splits < 2:
            raise ValueError(f"`n_splits` must be an integer >= 2; got {self.n_splits!r}.")

    # ------------------------------------------------------------------ outer
    def split(self, y, groups) -> list[tuple[np.ndarray, np.ndarray]]:
        """Train/test index pairs (test is empty for ``cv="none"``)."""
        from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedGroupKFold

        y, groups = np.asarray(y), np.asarray(groups, dtype=object)
        n = len(y)
        if self.cv == "none":
            return [(np.arange(n), np.arange(0))]
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError(
                f"cross-validation needs at least 2 groups, but the group column gives {n_groups}. Choose a "
                "finer group (e.g. run or session instead of subject), or cv none with external test stores."
            )
        if self.cv == "leave_group_out":
            return list(LeaveOneGroupOut().split(np.zeros(n), y, groups))
        k = min(self.n_splits, n_groups)
        if k < self.n_splits:
            warnings.warn(f"only {n_groups} groups: using {k} folds instead of {self.n_splits}.")
        stratifiable = _is_classes(y) and np.unique(y, return_counts=True)[1].min() >= k
        if self.stratify and _is_classes(y) and not stratifiable:
            warnings.warn(f"a class has fewer than {k} samples: the folds are not stratified by class.")
        if self.stratify and stratifiable:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=self.seed)
        else:
            splitter = GroupKFold(n_splits=k, shuffle=True, random_state=self.seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*least populated class.*")
            return list(splitter.split(np.zeros(n), y, groups))

    # ------------------------------------------------------------------ inner
    def holdout(self, y, groups, *, recordings=None, starts=None, stops=None) -> Holdout:
        """A validation split of one training side, by group, or by time when it holds
        fewer than ``min_groups`` groups (needs ``recordings``, ``starts``, ``stops``).

        For classes (``stratify``), a split whose training part would lack one of the
        side's classes is not used: nothing is held out (``by="none"``) and the note
        says why, since no model can be fitted on the remaining part."""
        h = self._holdout(y, groups, recordings=recordings, starts=starts, stops=stops)
        y = np.asarray(y)
        if self.stratify and _is_classes(y) and len(h.val):
            missing = sorted(set(np.unique(y).tolist()) - set(np.unique(y[h.train]).tolist()), key=str)
            if missing:
                return Holdout(np.arange(len(y)), np.arange(0), "none", 0,
                               f"the {h.by} split ({h.note}) would leave class(es) {missing} out of the inner "
                               "training part: nothing is held out, training runs its full budget without "
                               "early stopping and regularisers keep their defaults")
        return h

    def _holdout(self, y, groups, *, recordings=None, starts=None, stops=None) -> Holdout:
        from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

        y, groups = np.asarray(y), np.asarray(groups, dtype=object)
        uniq = np.unique(groups)
        if len(uniq) >= self.min_groups:
            k = max(2, int(round(1 / self.val_fraction)))
            stratifiable = _is_classes(y) and np.unique(y, return_counts=True)[1].min() >= k
            if self.stratify and stratifiable and len(uniq) >= k:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*least populated class.*")
                    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=self.seed)
                    tr, va = next(sgkf.split(np.zeros(len(y)), y, groups))
            else:
                n_val = min(len(uniq) - 1, max(1, int(round(self.val_fraction * len(uniq)))))
                gss = GroupShuffleSplit(n_splits=1, test_size=n_val, random_state=self.seed)
                tr, va = next(gss.split(np.zeros(len(y)), y, groups))
            return Holdout(tr, va, "group", note=f"{len(np.unique(groups[va]))} of {len(uniq)} groups held out")
        if recordings is None or starts is None or stops is None:
            raise ValueError(
                f"the training side has {len(uniq)} group(s), too few (< {self.min_groups}) to hold groups out, "
                "and no window times were given to hold out the end of each recording instead."
            )
        h = time_holdout(recordings, starts, stops, self.val_fraction)
        if h.by == "time":
            h.note = (f"only {len(uniq)} training group(s) (< {self.min_groups}): held out the last "
                      f"{self.val_fraction:.0%} of each training recording in time; {h.dropped} window(s) "
                      "straddling the boundary dropped") + (f"; {h.note}" if h.note else "")
        else:
            h.note = f"only {len(uniq)} training group(s) (< {self.min_groups}); {h.note}"
        return h


def time_holdout(recordings, starts, stops, fraction: float) -> Holdout:
    """Hold out the end of each recording: per recording, the windows after a boundary
    placed so that about ``fraction`` of its windows are later; windows that straddle
    the boundary are dropped, so no training window overlaps a validation one.
    Recordings with a single window stay on the training side."""
    recordings = np.asarray(recordings, dtype=object)
    starts, stops = np.asarray(starts, dtype=np.int64), np.asarray(stops, dtype=np.int64)
    train, val, dropped, single = [], [], 0, 0
    for rec in dict.fromkeys(recordings):
        idx = np.flatnonzero(recordings == rec)
        if len(idx) < 2:
            train.extend(idx)
            single += 1
            continue
        idx = idx[np.argsort(starts[idx], kind="stable")]
        n_val = max(1, int(round(fraction * len(idx))))
        boundary = starts[idx[len(idx) - n_val]]
        v = idx[starts[idx] >= boundary]
        t = idx[stops[idx] <= boundary]
        dropped += len(idx) - len(v) - len(t)
        train.extend(t)
        val.extend(v)
    note = f"{single} single-window recording(s) kept for training" if single else ""
    if not train or not val:  # e.g. one sample per recording: nothing to hold out in time
        return Holdout(np.arange(len(recordings)), np.arange(0), "none", 0,
                       "no validation split is possible (one window per recording and too few groups): "
                       "training runs its full budget without early stopping")
    return Holdout(np.sort(np.asarray(train)), np.sort(np.asarray(val)), "time", dropped, note)


def _is_classes(y) -> bool:
    y = np.asarray(y)
    return y.dtype.kind in "iub" or (y.dtype.kind == "O")


# --------------------------------------------------------------------------- a fold design
@dataclass(frozen=True)
class Fold:
    """One outer fold: ``train`` (after any subsampling), ``test``, and the inner split
    of ``train`` that every model makes its choices on."""

    index: int
    train: np.ndarray
    test: np.ndarray
    inner: Holdout


def _fraction(frac: float, of: str, seed: int, kind, y, groups, f: int, tr: np.ndarray) -> np.ndarray:
    """The training fold, or with ``frac`` < 1 a seeded subset of it: of its groups
    (``of="groups"``; stratified by class when the groups have one class each, e.g. one
    label per subject), or of its labelled samples (``"samples"``: a class-stratified
    subset, e.g. of one person's trials)."""
    if frac >= 1:
        return tr
    from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

    if of == "samples":
        n_keep = max(2, int(round(frac * len(tr))))
        if kind == "classification" and np.bincount(y[tr].astype(int)).max() < len(tr):
            keep, _ = next(StratifiedShuffleSplit(1, train_size=n_keep, random_state=seed + f)
                           .split(tr, y[tr]))
        else:
            keep = np.random.default_rng(seed + f).permutation(len(tr))[:n_keep]
        return np.sort(tr[keep])
    g = groups[tr]
    uniq, first = np.unique(g, return_index=True)
    n_keep = max(2, int(round(frac * len(uniq))))
    seed = seed + f
    labels = y[tr][first] if kind == "classification" else None
    one_label = labels is not None and all(len(set(y[tr][g == u])) == 1 for u in uniq)
    if n_keep >= len(uniq):
        keep = uniq
    elif one_label and min(np.bincount(labels.astype(int))[np.unique(labels.astype(int))]) >= 2:
        keep_idx, _ = next(StratifiedShuffleSplit(1, train_size=n_keep, random_state=seed).split(uniq, labels))
        keep = uniq[keep_idx]
    else:
        keep_idx, _ = next(GroupShuffleSplit(1, train_size=n_keep, random_state=seed).split(uniq, groups=uniq))
        keep = uniq[keep_idx]
    return tr[np.isin(g, keep)]


def _splits(folds: Folds, y, groups, within, log):
    """Folds over all samples, or, with decode.within, separately inside each value of
    that column (e.g. one set of folds per subject); values with too few groups to split
    are skipped and reported."""
    values = list(dict.fromkeys(within))
    if len(values) == 1 and values[0] == "":
        return folds.split(y, groups), []
    splits, skipped = [], []
    for v in values:
        idx = np.flatnonzero(within == v)
        if len(np.unique(groups[idx])) < 2:
            skipped.append(v)
            log(f"note: decode.within {v}: a single group; left out (nothing to cross-validate)")
            continue
        splits += [(idx[tr], idx[te]) for tr, te in folds.split(y[idx], groups[idx])]
    if not splits:
        raise ValueError("decode.within: no value of that column has 2 or more groups to cross-validate.")
    return splits, skipped


def fold_design(folds: "Folds", y, groups, *, within=None, is_test=None, recordings, starts, stops,
                train_fraction: float = 1.0, fraction_of: str = "groups", log=print) -> tuple[list[Fold], list]:
    """Every outer fold with its inner split, made once for every model, and the values
    of ``within`` left out (too few groups to split).

    - ``is_test`` (external test data): one fold that trains on the rest and tests there;
    - else ``folds.split`` over all samples, or, with ``within``, separately inside each
      of its values (e.g. one set of folds per subject);
    - each fold's training side is subsampled to ``train_fraction`` of its groups or
      samples (``fraction_of``), the same seeded subset for every model;
    - each fold's inner split is :meth:`Folds.holdout` of its training side (by group, or
      in time inside each recording: ``recordings``, ``starts``, ``stops``).
    """
    y, groups = np.asarray(y), np.asarray(groups, dtype=object)
    kind = "classification" if folds.stratify else "regression"
    if is_test is not None and np.asarray(is_test).any():
        splits, skipped = [(np.flatnonzero(~np.asarray(is_test)), np.flatnonzero(is_test))], []
    else:
        within = np.full(len(y), "", dtype=object) if within is None else np.asarray(within, dtype=object)
        splits, skipped = _splits(folds, y, groups, within, log)
    recordings = np.asarray(recordings, dtype=object)
    starts, stops = np.asarray(starts), np.asarray(stops)
    out = []
    for f, (tr, te) in enumerate(splits):
        tr = _fraction(train_fraction, fraction_of, folds.seed, kind, y, groups, f, tr)
        h = folds.holdout(y[tr], groups[tr], recordings=recordings[tr], starts=starts[tr], stops=stops[tr])
        out.append(Fold(f, tr, te, Holdout(tr[h.train], tr[h.val], h.by, h.dropped, h.note)))
    return out, skipped
