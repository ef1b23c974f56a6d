"""``neuroconv decode``: the experiment around the model zoo.

This module owns what is about the experiment; how each model is fitted belongs to the
zoo (:mod:`neuroconv.brain.zoo`), where every decoder and baseline has one interface.

- **Samples and targets**: whole recordings (``decode.target`` = a manifest column such
  as ``diagnosis``; at most ``data.max_len`` steps each) or windows around events
  (``decode.target: events``).
- **Folds and inner splits** (:class:`~neuroconv.engine.folds.Folds`): folds keep
  ``decode.group_by`` groups apart; each fold's inner split (by group, or by time inside
  each training recording when the fold holds too few groups) is made once and handed
  to every model, which makes all its choices on it (early stopping, regularisers).
  ``decode.train_fraction`` trains every model on the same seeded subset of each
  fold's training groups.
- **Overlap checks, by content**: test stores (``decode.test_stores``) and a pretrained
  backbone's ``recordings.csv`` are compared with the training data by the sha256 of
  each recording's source file and stored array (a renamed copy is refused), and by
  recording and group ids; an overlap is an error that names the recordings unless
  ``decode.transductive`` is set, which records it.
- **The loop over folds and models**: each model is built fresh by the zoo for each
  fold, fitted on the :class:`~neuroconv.brain.zoo.TrainingPart`, and scored on the
  test fold; its report (choices, training, kernels, seconds) is kept per fold.
- **Scoring and statistics** (:mod:`neuroconv.engine.compare`): per-fold scores (mean,
  sd with ddof=1, undefined folds counted), pooled scores with 95% bootstrap intervals
  over independent units (``decode.unit``: the subject, or the site when sites are left
  out), and every comparison of one of ours against another model paired over units
  (interval of the difference, sign-flip permutation test, Wilcoxon over units,
  McNemar on unit-level predictions).

A model that fails is reported in ``metrics.json`` (with its traceback) and the others go
on; the command then exits non-zero (:class:`DecodeFailed`).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from neuroconv.engine.compare import (CLASSIFICATION_METRICS, REGRESSION_METRICS, fold_summary, mcnemar_units,
                                      paired_units, unit_bootstrap)
from neuroconv.engine.folds import Folds, Holdout
from neuroconv.engine.runner import Run
from neuroconv.io import atomic_write_csv

from . import zoo
from .config import ExperimentConfig
from .data import (StoreWindows, content_overlap, open_stores, pretrain_windows, recording_table, sample_groups,
                   select)
from .models import BrainModel, load_pretrained
from .sources import prepare_sources

__all__ = ["run_decode", "prepare", "Experiment", "Fold", "decode_samples", "infer_task", "score", "DecodeFailed",
           "check_pretraining_overlap", "format_table", "METRICS_CLF", "METRICS_REG"]

METRICS_CLF = CLASSIFICATION_METRICS
METRICS_REG = REGRESSION_METRICS


class DecodeFailed(RuntimeError):
    """At least one model failed; the others' results are in the run folder."""

    def __init__(self, run_dir: Path, failed: dict):
        self.run_dir, self.failed = run_dir, failed
        super().__init__(f"{len(failed)} model(s) failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
                         + f". The other models' results are in {run_dir}.")


# --------------------------------------------------------------------------- samples
def decode_samples(stores, kc, max_len: int) -> pd.DataFrame:
    """Rows ``store, id, start, stop, label`` for the configured target."""
    parts = []
    for s, store in enumerate(stores):
        man = select(store, kc.query, "decode.query").set_index("id")
        if len(man) == 0:
            continue
        if kc.target == "events":
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
        else:
            if kc.target not in man.columns:
                raise ValueError(
                    f"decode.target={kc.target!r} is not a column of {store.path}/manifest.csv. Label columns "
                    f"there: {sorted(c for c in man.columns if c not in ('path',))}; or use decode.target=events."
                )
            stop = np.minimum(man["n_times"].to_numpy(int), max_len)
            w = pd.DataFrame({"id": man.index.to_numpy(), "start": 0, "stop": stop,
                              "label": man[kc.target].to_numpy()})
            missing = w["label"].isna()
            if missing.any():
                import warnings

                warnings.warn(f"{store.path}: {int(missing.sum())} recording(s) without a {kc.target!r} label "
                              "are left out.")
                w = w[~missing]
        parts.append(w.assign(store=s))
    if not parts:
        raise ValueError(f"decode.query={kc.query!r} selects no recording.")
    out = pd.concat(parts, ignore_index=True)
    if len(out) == 0:
        raise ValueError("no labelled samples to decode.")
    return out


def infer_task(labels, kind: str = "auto") -> tuple[str, str]:
    """``(kind, reason)``: classification or regression for these labels.

    ``auto``: text labels are classes; numbers with at most 2 distinct values are
    classes; integer-valued numbers with at most 10 distinct values, each seen at least
    5 times on average, are classes (ratings, group codes); any other numbers (age, IQ,
    scores) are a regression target.
    """
    labels = pd.Series(labels)
    if kind in ("classification", "regression"):
        return kind, f"decode.task={kind}"
    if kind != "auto":
        raise ValueError(f"decode.task must be auto, classification or regression; got {kind!r}.")
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


def score(y_true, proba_or_pred, kind: str, n_classes: int | None = None) -> dict:
    """Metrics with the same keys for every model (NaN where undefined)."""
    from sklearn import metrics as M

    if kind == "regression":
        pred = np.asarray(proba_or_pred, dtype=float)
        r = np.corrcoef(y_true, pred)[0, 1] if len(pred) > 1 and np.std(pred) > 0 and np.std(y_true) > 0 else np.nan
        return {"r2": M.r2_score(y_true, pred) if len(pred) > 1 else np.nan,
                "mae": M.mean_absolute_error(y_true, pred), "pearson_r": r}
    proba = np.asarray(proba_or_pred, dtype=float)
    pred = proba.argmax(1)
    out = {"accuracy": M.accuracy_score(y_true, pred),
           "balanced_accuracy": M.balanced_accuracy_score(y_true, pred),
           "f1": M.f1_score(y_true, pred, average="macro", labels=list(range(n_classes)), zero_division=0)}
    try:
        if n_classes == 2:
            out["roc_auc"] = M.roc_auc_score(y_true, proba[:, 1])
        else:
            out["roc_auc"] = M.roc_auc_score(y_true, proba, multi_class="ovr", labels=list(range(n_classes)))
    except ValueError:  # a class missing from this test set
        out["roc_auc"] = float("nan")
    return out


# --------------------------------------------------------------------------- overlap checks
def _record_keys(table: pd.DataFrame, column: str | None) -> pd.Series:
    """Identity of each row of a recording table: ``dataset-or-store:id`` (recordings) or
    ``dataset-or-store:value`` of ``column`` (groups), as :func:`sample_groups` builds them."""
    scope = table["store_path"].astype(str)
    if "dataset" in table.columns:
        ds = table["dataset"]
        scope = scope.where(ds.isna() | (ds.astype(str) == ""), ds.astype(str))
    if column is None:
        return scope + ":" + table["id"].astype(str)
    vals = table[column]
    missing = vals.isna() | vals.astype(str).str.strip().str.lower().isin(["", "nan", "none", "n/a", "na"])
    return (scope + ":" + vals.astype(str)).where(~missing, "recording:" + table["store_path"].astype(str) + ":"
                                                  + table["id"].astype(str))


def check_pretraining_overlap(record: pd.DataFrame, test: pd.DataFrame, group_by: str) -> dict:
    """What a pretrained backbone saw of one test fold: ``{"recordings": [...],
    "groups": [...], "content": [...]}`` (empty lists when nothing). ``record``: the
    pretrain run's recordings.csv; ``test``: the test fold's recording table
    (:func:`~neuroconv.brain.data.recording_table`). ``content`` lists test recordings
    whose source file or stored array pretraining saw under any name. A ``group_by``
    column that the record lacks is an error (the group check cannot be made)."""
    if group_by != "id" and group_by not in record.columns:
        raise ValueError(f"the pretraining record (recordings.csv) has no {group_by!r} column, so decode cannot check "
                         f"that pretraining never saw a test {group_by}. Pretrain again with this version of "
                         "neuroconv, or choose a decode.group_by the record has: "
                         f"{sorted(c for c in record.columns if c not in ('store_path', 'store', 'split'))}.")
    rec_seen = set(_record_keys(record, None))
    overlap_rec = sorted(set(_record_keys(test, None)) & rec_seen)
    overlap_grp = []
    if group_by != "id" and group_by in test.columns:
        overlap_grp = sorted(set(_record_keys(test, group_by)) & set(_record_keys(record, group_by)))
    content = [f"{a} = {b} ({what})" for a, b, what in content_overlap(record, test)]
    return {"recordings": overlap_rec, "groups": overlap_grp, "content": content}


def _check_test_stores(train_table: pd.DataFrame, test_table: pd.DataFrame, transductive: bool, log) -> list:
    """Refuse (or, transductive, record) external test recordings that are training ones."""
    hits = content_overlap(train_table, test_table)
    lines = [f"{a} is {b} (same {what})" for a, b, what in hits]
    if hits and not transductive:
        raise ValueError(
            f"{len(hits)} recording(s) of decode.test_stores are training recordings by content: "
            + "; ".join(lines[:5]) + (" ..." if len(lines) > 5 else "")
            + ". A renamed or re-preprocessed copy of training data is not a test set: test on recordings the "
              "training stores do not hold, or pass --transductive to accept it (recorded in metrics.json)."
        )
    if hits:
        log(f"warning: transductive setting: {len(hits)} test recording(s) are training recordings by content "
            "(recorded in metrics.json test_store_overlap)")
    return lines


def _check_duplicates(table: pd.DataFrame, groups_by_key: dict, transductive: bool, log) -> list:
    """One recording stored twice under two groups would sit on both sides of a fold."""
    lines = []
    for column, what in (("source_sha256", "source file"), ("array_sha256", "array")):
        if column not in table.columns:
            continue
        keys = table["store_path"].astype(str) + ":" + table["id"].astype(str)
        for value, part in pd.DataFrame({"v": table[column].fillna(""), "k": keys}).groupby("v"):
            if not value or len(part) < 2:
                continue
            groups = {groups_by_key.get(k) for k in part["k"]}
            if len(groups) > 1:
                lines.append(f"{' = '.join(part['k'])} (same {what}, groups {sorted(map(str, groups))})")
    if lines and not transductive:
        raise ValueError(
            f"{len(lines)} recording(s) appear twice in the decode data under different groups, so a fold could "
            "train on a copy of its test data: " + "; ".join(lines[:3]) + (" ..." if len(lines) > 3 else "")
            + ". Remove the copies from the stores, or pass --transductive to accept it (recorded in metrics.json)."
        )
    if lines:
        log(f"warning: {len(lines)} recording(s) appear twice under different groups (transductive)")
    return lines


# --------------------------------------------------------------------------- the experiment
@dataclass(frozen=True)
class Fold:
    """One outer fold: ``train`` (after ``decode.train_fraction``), ``test``, and the
    inner split of ``train`` that every model makes its choices on."""

    index: int
    train: np.ndarray
    test: np.ndarray
    inner: Holdout


@dataclass(frozen=True)
class Experiment:
    """Everything a decode run decides before any model is fitted."""

    cfg: ExperimentConfig
    stores: list
    n_train_stores: int
    samples: pd.DataFrame
    data: zoo.DecodeData
    reason: str
    folds: list
    skipped: list
    external: bool
    models: list
    units: np.ndarray
    unit_info: dict
    pretrained: BrainModel | None
    pre_run: Path | None
    overlap: dict

    @property
    def kind(self) -> str:
        return self.data.kind

    @property
    def classes(self) -> list:
        return self.data.classes


def _fraction(cfg, kind, y, groups, f: int, tr: np.ndarray) -> np.ndarray:
    """The training fold, or with ``decode.train_fraction`` < 1 a seeded subset of it:
    of its groups (``decode.train_fraction_of: groups``; stratified by class when the
    groups have one class each, e.g. one label per subject), or of its labelled samples
    (``samples``: a class-stratified subset of the windows, e.g. of one person's trials)."""
    frac = cfg.decode.train_fraction
    if frac >= 1:
        return tr
    from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

    if cfg.decode.train_fraction_of == "samples":
        n_keep = max(2, int(round(frac * len(tr))))
        if kind == "classification" and np.bincount(y[tr].astype(int)).max() < len(tr):
            keep, _ = next(StratifiedShuffleSplit(1, train_size=n_keep, random_state=cfg.decode.seed + f)
                           .split(tr, y[tr]))
        else:
            keep = np.random.default_rng(cfg.decode.seed + f).permutation(len(tr))[:n_keep]
        return np.sort(tr[keep])

    g = groups[tr]
    uniq, first = np.unique(g, return_index=True)
    n_keep = max(2, int(round(frac * len(uniq))))
    seed = cfg.decode.seed + f
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


def _units(cfg, stores, samples, groups, test_idx) -> tuple[np.ndarray, dict]:
    """The independent unit of every sample, for intervals and paired tests
    (``decode.unit``; auto: the site when sites are left out, else the subject)."""
    kc = cfg.decode
    column = kc.unit if kc.unit != "auto" else ("site" if kc.group_by == "site" else "subject")
    note = ""
    if column == kc.group_by:
        units = groups
    elif all(column in st.manifest.columns for st in stores):
        units = sample_groups(stores, samples, column, "decode.unit")
    elif kc.unit != "auto":
        raise ValueError(f"decode.unit={column!r} is not a column of every store's manifest.csv.")
    else:
        units, note = groups, f"the stores have no {column!r} column: units are the {kc.group_by} groups"
        column = kc.group_by
    if len(np.unique(units[test_idx])) < 2 and column != kc.group_by and kc.unit == "auto":
        note = (f"a single {column} is tested: intervals and paired tests resample its {kc.group_by} groups "
                f"(within-{column} inference, not a claim about other {column}s)")
        units, column = groups, kc.group_by
    return np.asarray(units, dtype=object), {"column": column, "n": int(len(np.unique(units[test_idx]))),
                                             "note": note}


def _models(cfg: ExperimentConfig, kind: str, modalities: set, classes: list, backbone_possible: bool) -> list[str]:
    kc = cfg.decode
    models = list(kc.models)
    if kc.compare:
        from .zoo.ssvep import classes_are_frequencies

        fits = []
        for name, e in zoo.ZOO.items():
            t = e.traits
            if kind not in t.tasks or not set(t.modalities) & modalities:
                continue
            if t.needs_backbone and not backbone_possible:
                continue
            if t.paradigm == "ssvep" and not classes_are_frequencies(classes):
                continue
            fits.append(name)
        ours = [m for m in fits if zoo.ZOO[m].traits.family == "ours"]
        models = list(dict.fromkeys(ours + models + [m for m in fits if m not in ours]))
    for m in models:
        zoo.entry(m)  # unknown names: an error listing the zoo
    return models


def _newest_pretrain(cfg: ExperimentConfig):
    try:
        return Run.find(cfg.pretrain.out, "", f"{cfg.name}-pretrain", require="model.safetensors").path
    except FileNotFoundError:
        return None


def _resolve_pretrained(cfg: ExperimentConfig, models, log):
    """``(BrainModel, run folder, recordings record)`` or Nones when no model needs one."""
    kc = cfg.decode
    if not any(zoo.ZOO[m].traits.needs_backbone for m in models) or kc.pretrain_in_fold:
        return None, None, None
    run = Path(kc.pretrained) if kc.pretrained else _newest_pretrain(cfg)
    if run is None:
        return None, None, None
    if not kc.pretrained:
        log(f"using the newest pretrain run of config {cfg.name!r}: {run}")
    from .pretrain import RECORD_FILE

    record = run / RECORD_FILE
    if not record.is_file():
        if not kc.transductive:
            raise ValueError(
                f"{run} has no {RECORD_FILE}, so decode cannot check that its pretraining never saw a test group. "
                "Pretrain again with this version of neuroconv, or pass --transductive to accept the risk (it is "
                "recorded in metrics.json)."
            )
        return load_pretrained(run), run, None
    return load_pretrained(run), run, pd.read_csv(record, dtype=str)


def _check_pretrained(cfg, stores, samples, folds, pre_run, record, log) -> dict:
    """Refuse (or, with decode.transductive, record) a pretrained backbone that saw test data."""
    kc = cfg.decode
    if record is None:
        seen = {"unchecked": f"{pre_run} has no record of its pretraining recordings"}
        log(f"warning: {seen['unchecked']}; --transductive accepted it")
        return seen
    if not set(("source_sha256", "array_sha256")) & set(record.columns) and not kc.transductive:
        raise ValueError(f"{pre_run}/recordings.csv records no content checksums, so decode cannot recognise a "
                         "test recording that pretraining saw under another name. Pretrain again with this version "
                         "of neuroconv, or pass --transductive to accept the risk (recorded in metrics.json).")
    overlap = {}
    for fold in folds:
        seen = check_pretraining_overlap(record, recording_table(stores, samples.iloc[fold.test]), kc.group_by)
        if seen["recordings"] or seen["groups"] or seen["content"]:
            overlap[str(fold.index)] = seen
    if overlap and not kc.transductive:
        f, seen = next(iter(overlap.items()))
        what = seen["groups"][:3] or seen["recordings"][:3] or seen["content"][:3]
        raise ValueError(
            f"the pretrained backbone in {pre_run} saw test data of {len(overlap)} fold(s): fold {f} tests "
            f"{len(seen['recordings'])} recording(s), {len(seen['groups'])} {kc.group_by} group(s) and "
            f"{len(seen['content'])} recording(s) by content that pretraining saw (e.g. {', '.join(map(str, what))}). "
            "Pretrain on other groups (other subjects, sites or data sets; see its recordings.csv), or set "
            "decode.pretrain_in_fold true to pretrain inside each fold, or pass --transductive to accept the overlap "
            "(it is recorded in metrics.json)."
        )
    if overlap:
        log(f"warning: transductive setting: the pretrained backbone saw test data of {len(overlap)} fold(s) "
            "(recorded in metrics.json pretraining_overlap)")
    return overlap


def prepare(cfg: ExperimentConfig, log=print) -> Experiment:
    """Read the data, decide the task, the folds, the inner splits, the units and the
    models, and run every overlap check: everything before any model is fitted."""
    kc, dc = cfg.decode, cfg.data
    if not 0 < kc.train_fraction <= 1:
        raise ValueError(f"decode.train_fraction must be in (0, 1]; got {kc.train_fraction}.")
    if kc.class_weight not in zoo.CLASS_WEIGHTS:
        raise ValueError(f"decode.class_weight must be one of {zoo.CLASS_WEIGHTS}; got {kc.class_weight!r}.")
    if not kc.c_grid or any(not c > 0 for c in kc.c_grid):
        raise ValueError(f"decode.c_grid must be a list of positive numbers; got {kc.c_grid!r}.")
    train_stores = open_stores(list(dc.stores) + prepare_sources(dc.sources, log=log))
    samples = decode_samples(train_stores, kc, dc.max_len)
    stores = list(train_stores)
    external = bool(kc.test_stores)
    overlap: dict = {}
    if external:
        test_stores = open_stores(kc.test_stores)
        test = decode_samples(test_stores, kc, dc.max_len)
        overlap["test_stores"] = _check_test_stores(recording_table(train_stores, samples),
                                                    recording_table(test_stores, test), kc.transductive, log)
        test = test.assign(store=test["store"] + len(train_stores))
        stores += test_stores
        samples = pd.concat([samples, test], ignore_index=True)
        is_test = np.r_[np.zeros(len(samples) - len(test), bool), np.ones(len(test), bool)]
    else:
        is_test = np.zeros(len(samples), bool)
    train_labels = samples["label"][~is_test]
    kind, reason = infer_task(train_labels, kc.task)
    log(f"decode: {kind} ({reason})")
    if kind == "classification":
        classes = sorted(train_labels.astype(str).unique())
        if len(classes) < 2:
            raise ValueError(f"the decode target {kc.target!r} has a single class ({classes[0]!r}) in the data; "
                             "decoding needs at least two.")
        unseen = set(samples["label"].astype(str)) - set(classes)
        if unseen:
            raise ValueError(f"decode.test_stores hold labels the training data never show: {sorted(unseen)}.")
        y = samples["label"].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    else:
        classes = []
        y = pd.to_numeric(samples["label"]).astype(float).to_numpy()
    groups = sample_groups(stores, samples, kc.group_by, "decode.group_by")
    within = sample_groups(stores, samples, kc.within, "decode.within") if kc.within else np.full(len(samples), "")
    if not external:
        table = recording_table(stores, samples)
        keys = samples["store"].map(lambda s: str(stores[s].path.resolve())) + ":" + samples["id"].astype(str)
        overlap["duplicates"] = _check_duplicates(table, dict(zip(keys, groups)), kc.transductive, log)
    folds_cfg = Folds(cv="none" if external else kc.cv, n_splits=kc.n_splits, seed=kc.seed,
                      stratify=kind == "classification", val_fraction=dc.val_fraction)
    if external:
        if kc.cv != "none":
            log(f"decode.test_stores given: training once on all of the data (decode.cv {kc.cv} is not used)")
        splits, skipped = [(np.flatnonzero(~is_test), np.flatnonzero(is_test))], []
    else:
        if kc.cv == "none":
            raise ValueError("decode.cv none trains once on everything and needs decode.test_stores to evaluate on.")
        splits, skipped = _splits(folds_cfg, y, groups, within, log)
    rec = samples["store"].astype(str).to_numpy() + ":" + samples["id"].astype(str).to_numpy()
    starts, stops = samples["start"].to_numpy(), samples["stop"].to_numpy()
    folds = []
    for f, (tr, te) in enumerate(splits):
        tr = _fraction(cfg, kind, y, groups, f, tr)
        h = folds_cfg.holdout(y[tr], groups[tr], recordings=rec[tr], starts=starts[tr], stops=stops[tr])
        inner = Holdout(tr[h.train], tr[h.val], h.by, h.dropped, h.note)
        folds.append(Fold(f, tr, te, inner))
    sites = None
    if kc.site_centering:
        sites = sample_groups(stores, samples, "site", "decode.site_centering (the site column)")
    samples = samples.assign(y=y, group=groups, within=within)
    align = _alignment_units(cfg, stores, samples, groups, rec, is_test, log)
    data = zoo.DecodeData(StoreWindows(stores, samples, dc.normalize, align=align), y, kind, classes, groups, rec,
                          starts, stops, sites)
    modalities = {str(m) for st in stores for m in st.manifest.get("modality", pd.Series(dtype=str)).dropna()}
    if kc.pretrained and kc.pretrain_in_fold:
        # an explicit backbone wins over the config's in-fold pretraining (muse_p300 and
        # muse_n170 pretrain in fold by default); the overlap check below still applies
        log(f"note: decode.pretrained {kc.pretrained} serves every fold; decode.pretrain_in_fold is turned off.")
        kc.pretrain_in_fold = False
    backbone_possible = bool(kc.pretrained or kc.pretrain_in_fold or _newest_pretrain(cfg) is not None)
    models = _models(cfg, kind, modalities, classes, backbone_possible)
    pretrained, pre_run, record = _resolve_pretrained(cfg, models, log)
    if any(zoo.ZOO[m].traits.needs_backbone for m in models) and pretrained is None and not kc.pretrain_in_fold:
        log("note: finetune/probe need a pretrained backbone (decode.pretrained, decode.pretrain_in_fold true, or a "
            "`neuroconv pretrain` run of this config); skipping them.")
        models = [m for m in models if not zoo.ZOO[m].traits.needs_backbone]
    if pre_run is not None:
        overlap["pretraining"] = _check_pretrained(cfg, stores, samples, folds, pre_run, record, log)
    test_idx = np.concatenate([f.test for f in folds])
    units, unit_info = _units(cfg, stores, samples, groups, test_idx)
    return Experiment(cfg, stores, len(train_stores), samples.assign(unit=units), data, reason, folds, skipped,
                      external, models, units, unit_info, pretrained, pre_run, overlap)


def _alignment_units(cfg, stores, samples, groups, rec, is_test, log):
    """The Euclidean-alignment unit of every sample (``data.align``), or None. A unit's
    reference uses all its windows, so a unit that straddled a fold's training and test
    sides would carry test statistics into training: refused (unless transductive)."""
    how = cfg.data.align
    if how in ("", "none"):
        return None
    units = rec if how == "recording" else sample_groups(stores, samples, how, "data.align")
    straddle = pd.Series(groups).groupby(np.asarray(units)).nunique()
    crossing = pd.Series(is_test).groupby(np.asarray(units)).nunique()
    bad = sorted(set(straddle.index[straddle > 1]) | set(crossing.index[crossing > 1]))
    if bad and not cfg.decode.transductive:
        raise ValueError(f"data.align={how!r}: {len(bad)} unit(s) (e.g. {bad[0]}) hold samples of several "
                         f"decode.group_by groups, so their alignment would mix test windows into training ones. "
                         "Align by a unit inside the groups (data.align recording, or group_by at least as coarse), "
                         "or pass --transductive to accept it (recorded in metrics.json).")
    log(f"aligning the windows of each {how} to their own mean covariance (Euclidean alignment, no labels)")
    return np.asarray(units, dtype=object)


# --------------------------------------------------------------------------- backbones
class Backbones:
    """The pretrained backbone of each fold: the given run's, or, with
    ``decode.pretrain_in_fold``, one pretrained on the fold's training groups (once per
    fold, shared by finetune and probe)."""

    def __init__(self, exp: Experiment, log):
        self.exp, self.log, self._cache = exp, log, {}

    def get(self, fold: Fold) -> BrainModel | None:
        exp = self.exp
        if not exp.cfg.decode.pretrain_in_fold:
            return exp.pretrained
        if fold.index not in self._cache:
            self._cache[fold.index] = self._pretrain(fold)
        return self._cache[fold.index]

    def _pretrain(self, fold: Fold) -> BrainModel:
        from .pretrain import fold_pretrain_config, pretrain_backbone

        exp = self.exp
        cfg, dc, kc = exp.cfg, exp.cfg.data, exp.cfg.decode
        train_stores = exp.stores[: exp.n_train_stores]
        windows = pretrain_windows(train_stores, dc.window_seconds, dc.stride_seconds, dc.max_len, cfg.pretrain.query)
        wgroups = sample_groups(train_stores, windows, kc.group_by, "decode.group_by")
        keep = ~np.isin(wgroups, list(set(exp.data.groups[fold.test])))
        if not keep.any():
            raise ValueError("pretraining inside the fold: every window belongs to a test group.")
        task, result, info = pretrain_backbone(fold_pretrain_config(cfg), train_stores,
                                               windows[keep].reset_index(drop=True), quiet=True, log=None)
        self.log(f"    pretrained in fold on {info['train_windows']} windows of {len(set(wgroups[keep]))} training "
                 f"groups ({result.steps} steps, val loss {result.best_val_loss:.4f} vs naive "
                 f"{info['naive_val_loss']:.4f})")
        return task.model.eval()


# --------------------------------------------------------------------------- per model
def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def evaluate(exp: Experiment, name: str, backbones: Backbones, log=print) -> tuple[pd.DataFrame, dict]:
    """Every fold of model ``name``: its predictions and its per-fold results."""
    cfg, data = exp.cfg, exp.data
    metric_names = METRICS_CLF if exp.kind == "classification" else METRICS_REG
    fold_scores, reports, rows = [], [], []
    for fold in exp.folds:
        part = zoo.TrainingPart(data, fold.train, fold.inner, cfg.decode.class_weight, cfg.decode.seed, fold.index,
                                backbone=lambda fold=fold: backbones.get(fold), log=log)
        t0 = time.perf_counter()
        decoder = zoo.build(name, cfg).fit(part)
        out = decoder.predict(data, fold.test)
        seconds = time.perf_counter() - t0
        report = {**decoder.report(), "seconds": round(seconds, 3)}
        reports.append(report)
        s = score(data.y[fold.test], out, exp.kind, len(exp.classes))
        fold_scores.append(s)
        part_rows = exp.samples.iloc[fold.test][["store", "id", "start", "stop", "label", "group", "within",
                                                  "unit"]].assign(model=name, fold=fold.index)
        if exp.kind == "classification":
            part_rows = part_rows.assign(y_true=data.y[fold.test], y_pred=out.argmax(1),
                                         **{f"proba_{c}": out[:, i] for i, c in enumerate(exp.classes)})
        else:
            part_rows = part_rows.assign(y_true=data.y[fold.test], y_pred=out)
        rows.append(part_rows)
        hp = report.get("hyperparameters", {})
        chosen = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.items()
                           if k in ("C", "best_step"))
        log(f"  {name:<14} fold {fold.index + 1}/{len(exp.folds)}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in s.items()) + (f" ({chosen})" if chosen else "")
            + f", {seconds:.1f} s")
    result = {k: fold_summary([fs[k] for fs in fold_scores]) for k in metric_names}
    result["folds"] = _jsonable(reports)
    result["hyperparameters"] = [r.get("hyperparameters", {}) for r in result["folds"]]
    result["seconds"] = [r["seconds"] for r in reports]
    warnings_ = sorted({w for r in reports for w in r.get("warnings", [])})
    if warnings_:
        result["warnings"] = warnings_
    if any("training" in r for r in reports):
        result["training"] = [r.get("training") for r in result["folds"]]
    kern = [r["kernels"] for r in result["folds"] if (r.get("kernels") or {}).get("roughness") is not None]
    if kern:  # long-conv kernels' smoothness (band filters report their edges per fold instead)
        result["kernels"] = {"roughness": float(np.mean([k["roughness"] for k in kern])),
                             "folds": [k["roughness"] for k in kern],
                             "zero_fraction": float(np.mean([k["zero_fraction"] for k in kern]))}
    return pd.concat(rows, ignore_index=True), result


def _outputs(preds: pd.DataFrame, kind: str, classes: list) -> np.ndarray:
    if kind == "classification":
        return preds[[f"proba_{c}" for c in classes]].to_numpy(float)
    return preds["y_pred"].to_numpy(float)


def _by(preds: pd.DataFrame, by: str, kind: str, classes: list) -> dict:
    """Scores per value of ``by`` (external test groups, or within-subject values)."""
    per = {}
    for g, part in preds.groupby(by):
        s = score(part["y_true"].to_numpy(), _outputs(part, kind, classes), kind, len(classes))
        per[str(g)] = {k: (None if not np.isfinite(v) else float(v)) for k, v in s.items()}
        per[str(g)]["n"] = int(len(part))
    return per


def _statistics(exp: Experiment, preds: pd.DataFrame, results: dict, log) -> list[dict]:
    """Pooled scores with unit intervals for every model, and paired comparisons over
    units of each of ours against every other model, on the same predictions."""
    kc = exp.cfg.decode
    K = len(exp.classes) or None
    key = ["fold", "store", "id", "start"]
    ok = [m for m in results if "error" not in results[m]]
    ordered = {}
    for m in ok:
        p = preds[preds.model == m].sort_values(key, kind="stable").reset_index(drop=True)
        ordered[m] = p
        boot = unit_bootstrap(p["y_true"].to_numpy(), _outputs(p, exp.kind, exp.classes), exp.kind,
                              p["unit"].astype(str).to_numpy(), n_classes=K, n_boot=kc.n_boot, seed=kc.seed)
        for metric, v in boot.items():
            if metric != "n_units":
                results[m][metric].update({"pooled": v["value"], "ci95": v["ci95"]})
        results[m]["n_units"] = boot["n_units"]
    ours = [m for m in ok if zoo.ZOO[m].traits.family == "ours"]
    paired = []
    for i, a in enumerate(ours):
        for b in [m for m in ok if m != a and (m not in ours or ours.index(m) > i)]:
            pa, pb = ordered[a], ordered[b]
            if not pa[key].equals(pb[key]):
                raise AssertionError(f"{a} and {b} were not scored on the same samples")
            units = pa["unit"].astype(str).to_numpy()
            row = {"first": a, "second": b,
                   **paired_units(pa["y_true"].to_numpy(), _outputs(pa, exp.kind, exp.classes),
                                  _outputs(pb, exp.kind, exp.classes), exp.kind, units, n_classes=K,
                                  n_boot=kc.n_boot, n_perm=kc.n_perm, seed=kc.seed)}
            if exp.kind == "classification":
                row["mcnemar"] = mcnemar_units(pa["y_true"].to_numpy(), _outputs(pa, exp.kind, exp.classes),
                                               _outputs(pb, exp.kind, exp.classes), units)
            paired.append(_jsonable(row))
    return paired


def run_decode(cfg: ExperimentConfig, log=print) -> Path:
    """Decoding as configured; returns the run folder. Raises :class:`DecodeFailed`
    (after writing every result) when a model failed."""
    kc = cfg.decode
    t0 = time.time()
    exp = prepare(cfg, log)
    run = Run.create(kc.out, kc.name, f"{cfg.name}-decode")
    run.write_config(cfg)
    log(f"decode: {len(exp.samples)} samples, {len(exp.classes) or 'continuous'} classes {exp.classes}, "
        f"{len(exp.folds)} fold(s) ({'external test stores' if exp.external else f'{kc.cv} by {kc.group_by}'}), "
        f"models {exp.models}; units for intervals: {exp.unit_info['column']} ({exp.unit_info['n']}); run folder "
        f"{run.path}")
    if exp.unit_info["note"]:
        log(f"note: {exp.unit_info['note']}")
    metric_names = METRICS_CLF if exp.kind == "classification" else METRICS_REG
    backbones = Backbones(exp, log)
    results, pred_parts, failed = {}, [], {}
    for name in exp.models:
        try:
            preds, result = evaluate(exp, name, backbones, log)
        except Exception as e:  # reported, the others go on, and the command exits non-zero
            log(f"  {name}: FAILED: {type(e).__name__}: {e}")
            failed[name] = f"{type(e).__name__}: {e}"
            results[name] = {k: fold_summary([]) for k in metric_names}
            results[name].update(error=failed[name], traceback=traceback.format_exc())
            continue
        results[name] = result
        pred_parts.append(preds)
        for w in result.get("warnings", []):
            log(f"warning: {w}")
    preds = pd.concat(pred_parts, ignore_index=True) if pred_parts else None
    if preds is not None:
        atomic_write_csv(run / "predictions.csv", preds)
        by = "group" if exp.external else ("within" if kc.within else None)
        for name in results:
            if "error" not in results[name] and by is not None:
                results[name]["by_" + by] = _by(preds[preds.model == name], by, exp.kind, exp.classes)
        _confusion(exp, preds, run)
    paired = _statistics(exp, preds, results, log) if preds is not None else []
    inner_by = sorted({f.inner.by for f in exp.folds})
    if "time" in inner_by:
        log("note: the inner split held out the end of each training recording in time in some folds (too few "
            "training groups for a group split); see metrics.json inner_splits")
    site = {}
    for name, r in results.items():
        fold_sites = {str(i): f["centred_on_their_own_test_samples"] for i, f in enumerate(r.get("folds", []))
                      if f.get("centred_on_their_own_test_samples")}
        if fold_sites:
            site[name] = fold_sites
    metrics = {
        "task": exp.kind, "task_reason": exp.reason, "target": kc.target, "classes": exp.classes,
        "protocol": {"cv": "external test stores" if exp.external else kc.cv, "group_by": kc.group_by,
                     "within": kc.within or None, "skipped_within": exp.skipped,
                     "train_fraction": kc.train_fraction, "train_fraction_of": kc.train_fraction_of,
                     "n_folds": len(exp.folds),
                     "test_stores": list(kc.test_stores), "inner_split": inner_by, "normalize": cfg.data.normalize,
                     "align": cfg.data.align,
                     "class_weight": kc.class_weight, "c_grid": list(kc.c_grid), "refit": kc.refit,
                     "selection": "class-weighted log loss on the inner validation part (MSE for regression)",
                     "pretrained": str(exp.pre_run) if exp.pre_run else None,
                     "pretrain_in_fold": kc.pretrain_in_fold, "transductive": kc.transductive},
        "units": {**exp.unit_info, "n_boot": kc.n_boot, "n_perm": kc.n_perm},
        "inner_splits": {str(f.index): f.inner.describe() for f in exp.folds},
        "pretraining_overlap": exp.overlap.get("pretraining") or None,
        "test_store_overlap": exp.overlap.get("test_stores") or None,
        "duplicate_recordings": exp.overlap.get("duplicates") or None,
        "site_centering": {"enabled": kc.site_centering, "centred_on_their_own_test_samples": site}
        if kc.site_centering else None,
        "n_samples": len(exp.samples), "seconds": round(time.time() - t0, 1), "models": _jsonable(results),
        "paired": paired,
        "failed": sorted(failed),
    }
    run.write_json("metrics.json", metrics)
    log(format_table(metrics["models"], metric_names))
    if failed:
        raise DecodeFailed(run.path, failed)
    return run.path


def _confusion(exp: Experiment, preds: pd.DataFrame, run: Run) -> None:
    if exp.kind != "classification":
        return
    from sklearn.metrics import confusion_matrix

    from .plots import plot_confusion

    for name, part in preds.groupby("model"):
        cm = confusion_matrix(part["y_true"], part["y_pred"], labels=list(range(len(exp.classes))))
        plot_confusion(cm, exp.classes, run / "plots" / f"confusion_{name}.png", title=f"{name}: all folds")


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
