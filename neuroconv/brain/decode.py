"""``neuroconv decode``: every model on every fold, then one statistics block.

The run is three steps:

1. :func:`~neuroconv.brain.design.prepare` builds the :class:`~neuroconv.brain.design.
   Design` once: the task's samples and targets, the folds with their inner splits, the
   units, the models and their settings, the backbone, the overlap checks.
2. The loop (:func:`run_decode`): for each model and fold, a fresh decoder from the zoo
   (:mod:`neuroconv.brain.zoo`) is fitted on the fold's
   :class:`~neuroconv.brain.zoo.TrainingPart`, predicts the test fold, and reports what
   it chose; the task (:mod:`neuroconv.brain.tasks`) turns the predictions into rows of
   ``predictions.csv``.
3. :func:`neuroconv.engine.compare.statistics` scores every model over independent units
   (``decode.unit``) and compares each of ours with every other model on the same
   predictions; ``metrics.json`` records it with the protocol.

A model that fails is reported in ``metrics.json`` (with its traceback) and the others go
on; the command then exits non-zero (:class:`DecodeFailed`).
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

import pandas as pd

from neuroconv.engine.compare import fold_summary, format_table, statistics
from neuroconv.engine.runner import Run
from neuroconv.io import atomic_write_csv, jsonable

from . import zoo
from .design import prepare

__all__ = ["run_decode", "DecodeFailed"]


class DecodeFailed(RuntimeError):
    """At least one model failed; the others' results are in the run folder."""

    def __init__(self, run_dir: Path, failed: dict):
        self.run_dir, self.failed = run_dir, failed
        super().__init__(f"{len(failed)} model(s) failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
                         + f". The other models' results are in {run_dir}.")


_ROW_COLUMNS = ["store", "id", "start", "stop", "label", "group", "within", "unit", "hop"]


def run_decode(cfg, log=print) -> Path:
    """Decoding as configured; returns the run folder. Raises :class:`DecodeFailed`
    (after writing every result) when a model failed."""
    t0 = time.time()
    design = prepare(cfg, log)
    run = Run.create(cfg.decode.out, cfg.decode.name, f"{cfg.name}-decode")
    run.write_config(cfg)
    task, targets, protocol, units = design.task, design.targets, design.record["protocol"], design.units
    log(f"decode: {len(design.samples)} samples, {len(targets.classes) or 'continuous'} classes {targets.classes}, "
        f"{len(design.folds)} fold(s) ({protocol['cv']} by {protocol['group_by']}), models {list(design.models)}; "
        f"units for intervals: {units['column']} ({units['n']}); run folder {run.path}"
        + (f"\nnote: {units['note']}" if units["note"] else "")
        + ("\nnote: the inner split held out the end of each training recording in time in some folds (too few "
           "training groups for a group split); see metrics.json inner_splits" if "time" in protocol["inner_split"]
           else ""))
    rows, results, failed = [], {}, {}
    columns = [c for c in _ROW_COLUMNS if c in design.samples.columns]
    for name in design.models:  # every model on every fold; a failure is reported and the others go on
        reports, parts = [], []
        try:
            for position, fold in enumerate(design.folds):
                t1 = time.perf_counter()
                decoder = zoo.make(name, design.context, design.settings.get(name))
                decoder.fit(zoo.TrainingPart(design.data, fold.train, fold.inner, design.class_weight,
                                             design.context.seed, fold.index,
                                             backbone=lambda fold=fold: design.backbone.get(fold), log=log))
                out = decoder.predict(design.data, fold.test)
                reports.append({**decoder.report(design.data, fold.test), "seconds": round(time.perf_counter() - t1, 3)})
                decoder.save(run / "models" / name / f"fold{fold.index}")
                samples = design.samples.iloc[fold.test][columns].assign(model=name, fold=fold.index)
                parts.append(task.rows(samples, targets.y[fold.test], out, targets))
                hp = {k: v for k, v in reports[-1]["hyperparameters"].items() if k in ("C", "best_step")}
                log(f"  {name:<14} fold {position + 1}/{len(design.folds)}"  # its own index when folds were left out
                    + (f" (fold {fold.index})" if fold.index != position else "") + f": {reports[-1]['seconds']:.1f} s"
                    + "".join(f", {k}={v:.3g}" if isinstance(v, float) else f", {k}={v}" for k, v in hp.items()))
        except Exception as e:  # reported, the others go on, and the command exits non-zero
            log(f"  {name}: FAILED: {type(e).__name__}: {e}")
            failed[name] = f"{type(e).__name__}: {e}"
            results[name] = {"family": zoo.ZOO[name].traits.family, "error": failed[name],
                             "traceback": traceback.format_exc()}
            continue
        rows += parts
        results[name] = jsonable({"family": zoo.ZOO[name].traits.family, "folds": reports,
                                  **type(decoder).summarize(reports)})
    rows = pd.concat(rows, ignore_index=True) if rows else None
    by = "group" if protocol["test_stores"] else ("within" if protocol["within"] else None)
    block = (statistics(task.predictions(rows, targets, by), [m for m in results if m not in failed and
                                                               zoo.ZOO[m].traits.family == "ours"],
                        n_boot=cfg.decode.n_boot, n_perm=cfg.decode.n_perm, seed=cfg.decode.seed)
             if rows is not None else {"models": {}, "paired": []})
    names = task.metric_names(targets.kind)
    extras = task.extras(rows, targets) if rows is not None else {}
    for m in extras:
        results[m].update(jsonable(extras[m]))
    metrics = {"task": targets.kind, "task_reason": targets.reason, "target": cfg.decode.target,
               "classes": targets.classes, **design.record, "n_samples": len(design.samples),
               "seconds": round(time.time() - t0, 1), "paired": jsonable(block["paired"]), "failed": sorted(failed),
               "models": jsonable({m: _model_block(r, block["models"].get(m), names, by) for m, r in results.items()})}
    log(format_table(metrics["models"], names))
    if rows is not None:
        task.write(run, rows, design)
        atomic_write_csv(run / "predictions.csv", rows)
    run.write_json("metrics.json", metrics)
    if failed:
        raise DecodeFailed(run.path, failed)
    return run.path


def _model_block(result: dict, stats: dict | None, names, by) -> dict:
    """A model's section of metrics.json: its scores (over folds and units), what it chose
    per fold, its warnings, and its own keys."""
    if stats is None:
        return {**{k: fold_summary([]) for k in names}, **result}
    reports = result["folds"]
    out = {k: stats[k] for k in names}
    out.update(result, n_units=stats["n_units"], hyperparameters=[r.get("hyperparameters", {}) for r in reports],
               seconds=[r["seconds"] for r in reports])
    if by is not None:
        out["by_" + by] = stats["by"]
    warnings_ = sorted({w for r in reports for w in r.get("warnings", [])})
    if warnings_:
        out["warnings"] = warnings_
    if any("training" in r for r in reports):
        out["training"] = [r.get("training") for r in reports]
    return out
