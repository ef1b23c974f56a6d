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
from neuroconv.engine.folds import Fold, Folds, fold_design

from . import zoo
from .config import check_names
from .data import StoreWindows, reject_windows, sample_columns
from .overlap import check
from .pretrain import fold_backbones
from .sources import prepare_sources
from .tasks import Targets, Task, task

__all__ = ["Design", "Fold", "prepare", "context"]


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


def context(cfg) -> zoo.Context:
    """The :class:`~neuroconv.brain.zoo.Context` every model of a decode run of ``cfg`` shares."""
    kc = cfg.decode
    if not kc.c_grid or any(not c > 0 for c in kc.c_grid):
        raise ValueError(f"decode.c_grid must be a list of positive numbers; got {kc.c_grid!r}.")
    trainer = TrainerConfig(**{f.name: getattr(kc, f.name) for f in dataclasses.fields(TrainerConfig)})
    return zoo.Context(trainer=trainer, backbone=cfg.model, c_grid=tuple(kc.c_grid), seed=kc.seed, n_jobs=kc.n_jobs,
                       refit=kc.refit, budget=kc.budget, early_stopping=kc.early_stopping, settings={n: kc.settings(n) for n in zoo.ZOO})


def prepare(cfg, log=print) -> Design:
    """Read the data, decide the task, the folds, the inner splits, the units and the
    models, and run every overlap check: everything before any model is fitted."""
    kc, dc = cfg.decode, cfg.data
    check_names(cfg)
    if not 0 < kc.train_fraction <= 1:
        raise ValueError(f"decode.train_fraction must be in (0, 1]; got {kc.train_fraction}.")
    if not kc.test_stores and kc.cv == "none":
        raise ValueError("decode.cv none trains once on everything and needs decode.test_stores to evaluate on.")
    zoo.class_weights(np.zeros(0), 1, kc.class_weight)  # checks decode.class_weight
    shared = context(cfg)
    t = task(kc.task)
    paths = list(dc.stores) + prepare_sources(dc.sources, log=log, data_dir=dc.data_dir)
    stores, n_train, samples, targets, is_test = t.inputs(paths, list(kc.test_stores), kc, dc, log)
    log(f"decode: {targets.kind} ({targets.reason})")
    if kc.early_stopping == "metric" and targets.kind not in ("staging", "detection"):
        raise ValueError(f"decode.early_stopping metric follows a dense task's own score (staging, detection); "
                         f"this run's targets are {targets.kind}: use decode.early_stopping loss.")
    if kc.test_stores and kc.cv != "none":
        log(f"decode.test_stores given: training once on all of the data (decode.cv {kc.cv} is not used)")
    cols, units = sample_columns(stores, samples, group_by=kc.group_by, within=kc.within, unit=kc.unit, align=dc.align,
                                 is_test=is_test, transductive=kc.transductive, log=log)
    samples = samples.assign(y=targets.y, **{c: cols[c].to_numpy() for c in ("group", "within", "unit")})
    rec = samples["store"].astype(str).to_numpy() + ":" + samples["id"].astype(str).to_numpy()
    folds, skipped = fold_design(
        Folds(cv="none" if kc.test_stores else kc.cv, n_splits=kc.n_splits, seed=kc.seed,
              stratify=targets.kind == "classification", val_fraction=dc.val_fraction),
        targets.y if targets.y.dtype != object else np.zeros(len(samples)),  # dense targets: no strata
        samples["group"].to_numpy(), within=samples["within"].to_numpy(), is_test=is_test,
        recordings=rec, starts=samples["start"].to_numpy(), stops=samples["stop"].to_numpy(),
        train_fraction=kc.train_fraction, fraction_of=kc.train_fraction_of, log=log)
    windows = StoreWindows(stores, samples, dc.normalize, align=cols["align"].to_numpy() if "align" in cols else None)
    folds, rejected = reject_windows(windows, folds, kc.reject, kc.seed, log)
    modalities = {str(m) for st in stores for m in st.manifest.get("modality", pd.Series(dtype=str)).dropna()}
    models = zoo.choose(kc.models, compare=kc.compare, targets=targets, modalities=modalities)
    backbone, models = fold_backbones(cfg, models, stores[:n_train], samples["group"].to_numpy(), log)
    overlap = check(stores, n_train, samples, {f.index: f.test for f in folds}, backbone, kc.group_by,
                    kc.transductive, log)
    units["n"] = int(len(np.unique(samples["unit"].to_numpy()[np.concatenate([f.test for f in folds])])))
    data = zoo.DecodeData(windows, targets.y, targets.kind, targets.classes, samples["group"].to_numpy(), rec,
                          samples["start"].to_numpy(), samples["stop"].to_numpy(),
                          {**{c: cols[c].to_numpy() for c in ("site",) if c in cols},
                           **{c: samples[c].to_numpy() for c in ("hop",) if c in samples.columns}})
    record = {
        "protocol": {"task": kc.task, "cv": "external test stores" if kc.test_stores else kc.cv,
                     "group_by": kc.group_by, "within": kc.within or None, "skipped_within": list(skipped),
                     "train_fraction": kc.train_fraction, "train_fraction_of": kc.train_fraction_of,
                     "n_folds": len(folds), "test_stores": list(kc.test_stores),
                     "inner_split": sorted({f.inner.by for f in folds}), "normalize": dc.normalize, "align": dc.align,
                     "class_weight": kc.class_weight, "c_grid": list(kc.c_grid), "refit": kc.refit,
                     "budget": kc.budget, "comparator": kc.comparator or None, "weight_decay": "each neural model's own, fixed (none is chosen on the "
                                                          "inner split)",
                     "selection": ("class-weighted log loss on the inner validation part (MSE for regression)"
                                   if kc.early_stopping == "loss" else
                                   "regularisers: class-weighted log loss on the inner validation part; neural "
                                   "models' kept state and early stopping: the task's own score there"),
                     "early_stopping": kc.early_stopping,
                     "pretrained": str(backbone.run) if backbone.run else None,
                     "pretrain_in_fold": backbone.in_fold is not None, "transductive": kc.transductive},
        "units": {**units, "n_boot": kc.n_boot, "n_perm": kc.n_perm},
        "inner_splits": {str(f.index): f.inner.describe() for f in folds},
        "pretraining_overlap": overlap.get("pretraining") or None,
        "test_store_overlap": overlap.get("test_stores") or None,
        "duplicate_recordings": overlap.get("duplicates") or None, "rejection": rejected}
    return Design(t, targets, tuple(stores), samples, data, tuple(folds), tuple(models),
                  {m: kc.settings(m) for m in models}, shared, kc.class_weight, units, backbone, record)
