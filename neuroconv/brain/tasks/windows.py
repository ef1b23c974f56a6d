"""The window task (``decode.task: windows``): one label per window around an event, or
per whole recording.

- **Samples**: windows ``[decode.tmin, decode.tmax]`` s around each event
  (``decode.target: events``; ``decode.event_labels`` picks and orders the classes), or
  whole recordings (``decode.target`` = a manifest column such as ``diagnosis``; at most
  ``data.max_len`` steps each).
- **Targets**: classes or a regression target, decided from the training labels
  (``decode.kind: auto``, see :func:`infer_kind`).
- **Scores**: accuracy, balanced accuracy, ROC AUC (binary, or one-vs-rest macro), macro
  F1; R², MAE, Pearson r for regression (one definition each, in
  :func:`neuroconv.engine.compare.metric_rows`).
- **Outputs**: ``predictions.csv`` rows with each class's probability, and a confusion
  matrix per model (``plots/confusion_<model>.png``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from neuroconv.engine.compare import CLASSIFICATION_METRICS, REGRESSION_METRICS, Predictions

from .base import Targets, Task, register_task

__all__ = ["WindowTask", "infer_kind", "window_samples"]


def window_samples(stores, kc, max_len: int) -> pd.DataFrame:
    """Rows ``store, id, start, stop, label`` for the configured target."""
    parts = []
    for s, store in enumerate(stores):
        man = store.select(kc.query, "decode.query").set_index("id")
        if len(man) == 0:
            continue
        w = _event_windows(store, man, kc) if kc.target == "events" else _recordings(store, man, kc, max_len)
        parts.append(w.assign(store=s))
    if not parts:
        from ..data import no_recording_error

        raise no_recording_error("decode.query", kc.query, stores)
    out = pd.concat(parts, ignore_index=True)
    if len(out) == 0:
        raise ValueError("no labelled samples to decode.")
    return out


def _event_windows(store, man: pd.DataFrame, kc) -> pd.DataFrame:
    if len(store.events) == 0:
        raise ValueError(f"{store.path} has no events; decode.target=events needs them. Pick a manifest "
                         "column as decode.target instead.")
    w = store.event_windows(kc.tmin, kc.tmax, labels=kc.event_labels or None, ids=list(man.index))
    w = w[["id", "start", "stop", "label"]]
    if len(w) == 0:
        raise ValueError(
            f"{store.path}: no event window of [{kc.tmin}, {kc.tmax}] s fits inside its recordings; the "
            "window is longer than the recordings or the events lie at their edges. Shorten "
            "decode.tmin/decode.tmax."
        )
    return w


def _recordings(store, man: pd.DataFrame, kc, max_len: int) -> pd.DataFrame:
    if kc.target not in man.columns:
        raise ValueError(
            f"decode.target={kc.target!r} is not a column of {store.path}/manifest.csv. Label columns "
            f"there: {sorted(c for c in man.columns if c not in ('path',))}; or use decode.target=events."
        )
    stop = np.minimum(man["n_times"].to_numpy(int), max_len)
    w = pd.DataFrame({"id": man.index.to_numpy(), "start": 0, "stop": stop, "label": man[kc.target].to_numpy()})
    missing = w["label"].isna()
    if missing.any():
        warnings.warn(f"{store.path}: {int(missing.sum())} recording(s) without a {kc.target!r} label "
                      "are left out.")
        w = w[~missing]
    return w


def infer_kind(labels, kind: str = "auto") -> tuple[str, str]:
    """``(kind, reason)``: classification or regression for these labels.

    ``auto``: text labels are classes; numbers with at most 2 distinct values are
    classes; integer-valued numbers with at most 10 distinct values, each seen at least
    5 times on average, are classes (ratings, group codes); any other numbers (age, IQ,
    scores) are a regression target.
    """
    labels = pd.Series(labels)
    if kind in ("classification", "regression"):
        return kind, f"decode.kind={kind}"
    if kind != "auto":
        raise ValueError(f"decode.kind must be auto, classification or regression; got {kind!r}.")
    numeric = pd.to_numeric(labels, errors="coerce")
    n_unique = labels.nunique()
    if numeric.isna().any():
        return "classification", f"the labels are text ({n_unique} distinct values)"
    if n_unique <= 2:
        return "classification", f"the labels take {n_unique} distinct values"
    integer = np.allclose(numeric, numeric.round())
    if integer and n_unique <= 10 and len(labels) / n_unique >= 5:
        return "classification", (f"the labels are integers with {n_unique} distinct values, each seen "
                                  f"{len(labels) / n_unique:.0f} times on average")
    return "regression", (f"the labels are numbers with {n_unique} distinct values"
                          + (" (integers, but too many distinct values for classes)" if integer else ""))


class WindowTask(Task):
    """Classification or regression of windows (or whole recordings); see the module doc."""

    name = "windows"

    def samples(self, stores, kc, dc) -> pd.DataFrame:
        return window_samples(stores, kc, dc.max_len)

    def targets(self, stores, samples: pd.DataFrame, is_test: np.ndarray, kc) -> Targets:
        train_labels = samples["label"][~is_test]
        kind, reason = infer_kind(train_labels, kc.kind)
        if kind == "regression":
            return Targets(kind, reason, [], pd.to_numeric(samples["label"]).astype(float).to_numpy())
        classes = sorted(train_labels.astype(str).unique())
        if len(classes) < 2:
            raise ValueError(f"the decode target {kc.target!r} has a single class ({classes[0]!r}) in the data; "
                             "decoding needs at least two.")
        unseen = set(samples["label"].astype(str)) - set(classes)
        if unseen:
            raise ValueError(f"decode.test_stores hold labels the training data never show: {sorted(unseen)}.")
        return Targets(kind, reason, classes,
                       samples["label"].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy())

    def metric_names(self, kind: str) -> tuple:
        return CLASSIFICATION_METRICS if kind == "classification" else REGRESSION_METRICS

    def rows(self, samples: pd.DataFrame, y, out, targets: Targets) -> pd.DataFrame:
        if targets.kind == "classification":
            return samples.assign(y_true=y, y_pred=out.argmax(1),
                                  **{f"proba_{c}": out[:, i] for i, c in enumerate(targets.classes)})
        return samples.assign(y_true=y, y_pred=out)

    def predictions(self, rows: pd.DataFrame, targets: Targets, by: str | None = None) -> dict:
        key = ["fold", "store", "id", "start"]
        out, first = {}, None
        for name, part in rows.groupby("model", sort=False):
            part = part.sort_values(key, kind="stable").reset_index(drop=True)
            if first is not None and not part[key].equals(first[key]):
                raise AssertionError(f"{name} and {next(iter(out))} were not scored on the same samples")
            first = part if first is None else first
            values = (part[[f"proba_{c}" for c in targets.classes]].to_numpy(float) if targets.kind == "classification"
                      else part["y_pred"].to_numpy(float))
            out[name] = Predictions(part["y_true"].to_numpy(), values, targets.kind, part["unit"].astype(str).to_numpy(),
                                    len(targets.classes) or None, folds=part["fold"].to_numpy(),
                                    by=None if by is None else part[by].astype(str).to_numpy())
        return out

    def write(self, run, rows: pd.DataFrame, design) -> None:
        targets = design.targets
        if targets.kind != "classification":
            return
        from sklearn.metrics import confusion_matrix

        from ..plots import plot_confusion

        for name, part in rows.groupby("model"):
            cm = confusion_matrix(part["y_true"], part["y_pred"], labels=list(range(len(targets.classes))))
            plot_confusion(cm, targets.classes, run / "plots" / f"confusion_{name}.png", title=f"{name}: all folds")


register_task(WindowTask())
