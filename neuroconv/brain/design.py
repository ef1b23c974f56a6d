"""The design of a decode run: everything decided before any model is fitted, once.

:func:`prepare` reads the config and the stores and builds an immutable :class:`Design`:

- the task (:mod:`neuroconv.brain.tasks`), its samples and targets;
- every per-sample column (groups, within-values, units, alignment units, sites) from
  one call into :func:`neuroconv.brain.data.sample_columns`;
- the folds (:class:`~neuroconv.engine.folds.Folds`): groups kept apart, each fold with
  its inner split, made once and handed to every model (``decode.train_fraction``
  subsamples each fold's training groups the same way for every model);
- the units of the statistics (``decode.unit``);
- the models (``decode.models``, ``--compare``), their settings and the context they
  share;
- the pretrained backbone (a run folder, or pretraining inside each fold);
- the overlap checks (:mod:`neuroconv.brain.overlap`): test data recognised by content.

Nothing downstream recomputes a column or changes the config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from neuroconv.engine.config import TrainerConfig
from neuroconv.engine.folds import Folds, Holdout

from . import zoo
from .data import StoreWindows, open_stores, recording_table, sample_columns
from .overlap import check_duplicates, check_pretrained, check_test_stores
from .sources import prepare_sources
from .tasks import Targets, Task, task

__all__ = ["Design", "Fold", "prepare", "context"]


@dataclass(frozen=True)
class Fold:
    """One outer fold: ``train`` (after ``decode.train_fraction``), ``test``, and the
    inner split of ``train`` that every model makes its choices on."""

    index: int
    train: np.ndarray
    test: np.ndarray
    inner: Holdout


@dataclass(frozen=True)
class Design:
    """Everything a decode run decides before any model is fitted (see the module doc).

    ``samples`` has one row per sample: ``store, id, start, stop, label`` and the
    per-sample columns ``y, group, within, unit``; ``data`` is what the models see;
    ``backbone`` gives each fold's pretrained backbone; ``record`` is the protocol as
    ``metrics.json`` records it."""

    task: Task
    targets: Targets
    stores: tuple
    samples: pd.DataFrame
    data: zoo.DecodeData
    folds: tuple
    models: tuple
    settings: dict
    context: zoo.Context
    class_weight: str
    units: dict
    backbone: object
    record: dict

    def part(self, fold: Fold, log) -> zoo.TrainingPart:
        """The training side of ``fold`` as every model receives it."""
        return zoo.TrainingPart(self.data, fold.train, fold.inner, self.class_weight, self.context.seed, fold.index,
                                backbone=lambda: self.backbone.get(fold), log=log)

    def make(self, name: str) -> zoo.Decoder:
        """A fresh decoder ``name`` with its settings and the shared context."""
        return zoo.make(name, self.context, self.settings.get(name))


# --------------------------------------------------------------------------- samples
def _stores(cfg, log):
    """``(stores, n_train_stores, samples, is_test, test_store_overlap)``: the training
    stores' samples, then those of ``decode.test_stores`` (checked by content against the
    training ones)."""
    kc, dc = cfg.decode, cfg.data
    t = task(kc.task)
    train_stores = open_stores(list(dc.stores) + prepare_sources(dc.sources, log=log, data_dir=dc.data_dir))
    samples = t.samples(train_stores, kc, dc)
    if not kc.test_stores:
        return train_stores, len(train_stores), samples, np.zeros(len(samples), bool), None
    test_stores = open_stores(kc.test_stores)
    test = t.samples(test_stores, kc, dc)
    hits = check_test_stores(recording_table(train_stores, samples), recording_table(test_stores, test),
                             kc.transductive, log)
    samples = pd.concat([samples, test.assign(store=test["store"] + len(train_stores))], ignore_index=True)
    is_test = np.r_[np.zeros(len(samples) - len(test), bool), np.ones(len(test), bool)]
    return train_stores + test_stores, len(train_stores), samples, is_test, hits


def _columns(cfg, stores, samples) -> pd.DataFrame:
    """The per-sample columns: ``group``, ``within``, ``unit`` (when the stores have the
    unit column), ``align`` and ``site`` (when the stores have one)."""
    kc, align = cfg.decode, cfg.data.align
    unit = kc.unit if kc.unit != "auto" else ("site" if kc.group_by == "site" else "subject")
    return sample_columns(stores, samples, {
        "group": (kc.group_by, "decode.group_by"), "within": (kc.within or None, "decode.within"),
        "unit": (unit, "decode.unit"), "align": (None if align in ("", "none") else align, "data.align"),
        "site": ("site", "site")}, optional=("unit", "site") if kc.unit == "auto" else ("site",))


def _units(kc, cols: pd.DataFrame, test_idx) -> tuple[np.ndarray, dict]:
    """The independent unit of every sample, for intervals and paired tests
    (``decode.unit``; auto: the site when sites are left out, else the subject)."""
    groups = cols["group"].to_numpy()
    column = kc.unit if kc.unit != "auto" else ("site" if kc.group_by == "site" else "subject")
    note = ""
    if column == kc.group_by:
        units = groups
    elif "unit" in cols:
        units = cols["unit"].to_numpy()
    else:
        units, note = groups, f"the stores have no {column!r} column: units are the {kc.group_by} groups"
        column = kc.group_by
    if len(np.unique(units[test_idx])) < 2 and column != kc.group_by and kc.unit == "auto":
        note = (f"a single {column} is tested: intervals and paired tests resample its {kc.group_by} groups "
                f"(within-{column} inference, not a claim about other {column}s)")
        units, column = groups, kc.group_by
    return np.asarray(units, dtype=object), {"column": column, "n": int(len(np.unique(units[test_idx]))),
                                             "note": note}


def _alignment(cfg, cols: pd.DataFrame, is_test, log):
    """The Euclidean-alignment unit of every sample (``data.align``), or None. A unit's
    reference uses all its windows, so a unit that straddled a fold's training and test
    sides would carry test statistics into training: refused (unless transductive)."""
    how = cfg.data.align
    if how in ("", "none"):
        return None
    units = cols["align"].to_numpy()
    straddle = pd.Series(cols["group"].to_numpy()).groupby(units).nunique()
    crossing = pd.Series(is_test).groupby(units).nunique()
    bad = sorted(set(straddle.index[straddle > 1]) | set(crossing.index[crossing > 1]))
    if bad and not cfg.decode.transductive:
        raise ValueError(f"data.align={how!r}: {len(bad)} unit(s) (e.g. {bad[0]}) hold samples of several "
                         f"decode.group_by groups, so their alignment would mix test windows into training ones. "
                         "Align by a unit inside the groups (data.align recording, or group_by at least as coarse), "
                         "or pass --transductive to accept it (recorded in metrics.json).")
    log(f"aligning the windows of each {how} to their own mean covariance (Euclidean alignment, no labels)")
    return np.asarray(units, dtype=object)


# --------------------------------------------------------------------------- folds
def _fraction(kc, kind, y, groups, f: int, tr: np.ndarray) -> np.ndarray:
    """The training fold, or with ``decode.train_fraction`` < 1 a seeded subset of it:
    of its groups (``decode.train_fraction_of: groups``; stratified by class when the
    groups have one class each, e.g. one label per subject), or of its labelled samples
    (``samples``: a class-stratified subset of the windows, e.g. of one person's trials)."""
    frac = kc.train_fraction
    if frac >= 1:
        return tr
    from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

    if kc.train_fraction_of == "samples":
        n_keep = max(2, int(round(frac * len(tr))))
        if kind == "classification" and np.bincount(y[tr].astype(int)).max() < len(tr):
            keep, _ = next(StratifiedShuffleSplit(1, train_size=n_keep, random_state=kc.seed + f)
                           .split(tr, y[tr]))
        else:
            keep = np.random.default_rng(kc.seed + f).permutation(len(tr))[:n_keep]
        return np.sort(tr[keep])
    g = groups[tr]
    uniq, first = np.unique(g, return_index=True)
    n_keep = max(2, int(round(frac * len(uniq))))
    seed = kc.seed + f
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


def _folds(cfg, targets: Targets, samples: pd.DataFrame, is_test, log) -> tuple[list, list]:
    """Every fold with its inner split, and the within-values left out."""
    kc, y = cfg.decode, targets.y
    groups, external = samples["group"].to_numpy(), bool(is_test.any()) or bool(kc.test_stores)
    folds = Folds(cv="none" if external else kc.cv, n_splits=kc.n_splits, seed=kc.seed,
                  stratify=targets.kind == "classification", val_fraction=cfg.data.val_fraction)
    if external:
        if kc.cv != "none":
            log(f"decode.test_stores given: training once on all of the data (decode.cv {kc.cv} is not used)")
        splits, skipped = [(np.flatnonzero(~is_test), np.flatnonzero(is_test))], []
    elif kc.cv == "none":
        raise ValueError("decode.cv none trains once on everything and needs decode.test_stores to evaluate on.")
    else:
        splits, skipped = _splits(folds, y, groups, samples["within"].to_numpy(), log)
    rec = samples["store"].astype(str).to_numpy() + ":" + samples["id"].astype(str).to_numpy()
    starts, stops = samples["start"].to_numpy(), samples["stop"].to_numpy()
    out = []
    for f, (tr, te) in enumerate(splits):
        tr = _fraction(kc, targets.kind, y, groups, f, tr)
        h = folds.holdout(y[tr], groups[tr], recordings=rec[tr], starts=starts[tr], stops=stops[tr])
        out.append(Fold(f, tr, te, Holdout(tr[h.train], tr[h.val], h.by, h.dropped, h.note)))
    return out, skipped


# --------------------------------------------------------------------------- models
def _models(kc, targets: Targets, modalities: set, backbone_possible: bool) -> list[str]:
    """``decode.models``, and with ``--compare`` ours first and every model that applies."""
    models = list(kc.models)
    if kc.compare:
        fits = [name for name, e in zoo.ZOO.items()
                if targets.kind in e.traits.tasks and set(e.traits.modalities) & modalities
                and (backbone_possible or not e.traits.needs_backbone) and e.decoder.applies(targets)]
        ours = [m for m in fits if zoo.ZOO[m].traits.family == "ours"]
        models = list(dict.fromkeys(ours + models + [m for m in fits if m not in ours]))
    for m in models:
        zoo.entry(m)  # unknown names: an error listing the zoo
    return models


def context(cfg) -> zoo.Context:
    """The :class:`~neuroconv.brain.zoo.Context` every model of a decode run of ``cfg`` shares."""
    kc = cfg.decode
    if not kc.c_grid or any(not c > 0 for c in kc.c_grid):
        raise ValueError(f"decode.c_grid must be a list of positive numbers; got {kc.c_grid!r}.")
    trainer = TrainerConfig(**{f.name: getattr(kc, f.name) for f in dataclasses.fields(TrainerConfig)})
    return zoo.Context(trainer=trainer, backbone=cfg.model, c_grid=tuple(kc.c_grid), seed=kc.seed, n_jobs=kc.n_jobs,
                       refit=kc.refit)


def prepare(cfg, log=print) -> Design:
    """Read the data, decide the task, the folds, the inner splits, the units and the
    models, and run every overlap check: everything before any model is fitted."""
    from .pretrain import backbone_possible, fold_backbones

    kc = cfg.decode
    if not 0 < kc.train_fraction <= 1:
        raise ValueError(f"decode.train_fraction must be in (0, 1]; got {kc.train_fraction}.")
    zoo.class_weights(np.zeros(0), 1, kc.class_weight)  # checks decode.class_weight
    shared = context(cfg)
    stores, n_train, samples, is_test, test_hits = _stores(cfg, log)
    t = task(kc.task)
    targets = t.targets(samples, is_test, kc)
    log(f"decode: {targets.kind} ({targets.reason})")
    cols = _columns(cfg, stores, samples)
    samples = samples.assign(y=targets.y, group=cols["group"].to_numpy(), within=cols["within"].to_numpy())
    overlap = {"test_stores": test_hits}
    if not kc.test_stores:
        keys = samples["store"].map(lambda s: str(stores[s].path.resolve())) + ":" + samples["id"].astype(str)
        overlap["duplicates"] = check_duplicates(recording_table(stores, samples),
                                                 dict(zip(keys, samples["group"])), kc.transductive, log)
    folds, skipped = _folds(cfg, targets, samples, is_test, log)
    units, unit_info = _units(kc, cols, np.concatenate([f.test for f in folds]))
    samples = samples.assign(unit=units)
    rec = samples["store"].astype(str).to_numpy() + ":" + samples["id"].astype(str).to_numpy()
    data = zoo.DecodeData(StoreWindows(stores, samples, cfg.data.normalize, align=_alignment(cfg, cols, is_test, log)),
                          targets.y, targets.kind, targets.classes, samples["group"].to_numpy(), rec,
                          samples["start"].to_numpy(), samples["stop"].to_numpy(),
                          {c: cols[c].to_numpy() for c in ("site",) if c in cols})
    modalities = {str(m) for st in stores for m in st.manifest.get("modality", pd.Series(dtype=str)).dropna()}
    models = _models(kc, targets, modalities, backbone_possible(cfg))
    source, models = fold_backbones(cfg, models, stores[:n_train], samples["group"].to_numpy(), log)
    if source.run is not None:
        tests = {f.index: recording_table(stores, samples.iloc[f.test]) for f in folds}
        overlap["pretraining"] = check_pretrained(source.record, source.run, tests, kc.group_by, kc.transductive, log)
    record = _record(cfg, folds, skipped, unit_info, source, overlap, bool(kc.test_stores))
    return Design(t, targets, tuple(stores), samples, data, tuple(folds), tuple(models),
                  {m: kc.settings(m) for m in models}, shared, kc.class_weight, unit_info, source, record)


def _record(cfg, folds, skipped, unit_info, source, overlap: dict, external: bool) -> dict:
    """The protocol as ``metrics.json`` records it."""
    kc = cfg.decode
    return {
        "protocol": {"task": kc.task, "cv": "external test stores" if external else kc.cv, "group_by": kc.group_by,
                     "within": kc.within or None, "skipped_within": list(skipped),
                     "train_fraction": kc.train_fraction, "train_fraction_of": kc.train_fraction_of,
                     "n_folds": len(folds), "test_stores": list(kc.test_stores),
                     "inner_split": sorted({f.inner.by for f in folds}), "normalize": cfg.data.normalize,
                     "align": cfg.data.align, "class_weight": kc.class_weight, "c_grid": list(kc.c_grid),
                     "refit": kc.refit,
                     "selection": "class-weighted log loss on the inner validation part (MSE for regression)",
                     "pretrained": str(source.run) if source.run else None,
                     "pretrain_in_fold": source.in_fold is not None, "transductive": kc.transductive},
        "units": {**unit_info, "n_boot": kc.n_boot, "n_perm": kc.n_perm},
        "inner_splits": {str(f.index): f.inner.describe() for f in folds},
        "pretraining_overlap": overlap.get("pretraining") or None,
        "test_store_overlap": overlap.get("test_stores") or None,
        "duplicate_recordings": overlap.get("duplicates") or None,
    }

