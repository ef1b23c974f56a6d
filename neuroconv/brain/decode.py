"""``neuroconv decode``: every model on every fold, then one statistics block.

The run is three steps:

1. :func:`~neuroconv.brain.design.prepare` builds the :class:`~neuroconv.brain.design.
   Design` once: the task's samples and targets, the folds with their inner splits, the
   units, the models and their settings, the backbone, the overlap checks.
2. The loop (:func:`evaluate`): for each model and fold, a fresh decoder from the zoo
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

import numpy as np
import pandas as pd

from neuroconv.engine.compare import fold_summary, format_table, statistics
from neuroconv.engine.runner import Run
from neuroconv.io import atomic_write_csv

from . import zoo
from .design import Design, prepare

__all__ = ["run_decode", "evaluate", "DecodeFailed"]


class DecodeFailed(RuntimeError):
    """At least one model failed; the others' results are in the run folder."""

    def __init__(self, run_dir: Path, failed: dict):
        self.run_dir, self.failed = run_dir, failed
        super().__init__(f"{len(failed)} model(s) failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
                         + f". The other models' results are in {run_dir}.")


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


_ROW_COLUMNS = ["store", "id", "start", "stop", "label", "group", "within", "unit"]


def evaluate(design: Design, name: str, log=print) -> tuple[pd.DataFrame, dict]:
    """Every fold of model ``name``: its prediction rows and its per-fold results."""
    t, targets = design.task, design.targets
    fold_scores, reports, rows = [], [], []
    for fold in design.folds:
        t0 = time.perf_counter()
        decoder = design.make(name).fit(design.part(fold, log))
        out = decoder.predict(design.data, fold.test)
        seconds = time.perf_counter() - t0
        reports.append({**decoder.report(design.data, fold.test), "seconds": round(seconds, 3)})
        y = targets.y[fold.test]
        scores = {k: v[0] for k, v in t.predictions(y, out, targets, np.zeros(len(y))).metrics([[1.0]]).items()}
        fold_scores.append(scores)
        samples = design.samples.iloc[fold.test][_ROW_COLUMNS].assign(model=name, fold=fold.index)
        rows.append(t.rows(samples, y, out, targets))
        hp = reports[-1].get("hyperparameters", {})
        chosen = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.items()
                           if k in ("C", "best_step"))
        log(f"  {name:<14} fold {fold.index + 1}/{len(design.folds)}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()) + (f" ({chosen})" if chosen else "")
            + f", {seconds:.1f} s")
    result = {k: fold_summary([fs[k] for fs in fold_scores]) for k in t.metric_names(targets.kind)}
    result["folds"] = _jsonable(reports)
    result["hyperparameters"] = [r.get("hyperparameters", {}) for r in result["folds"]]
    result["seconds"] = [r["seconds"] for r in reports]
    warnings_ = sorted({w for r in reports for w in r.get("warnings", [])})
    if warnings_:
        result["warnings"] = warnings_
    if any("training" in r for r in reports):
        result["training"] = [r.get("training") for r in result["folds"]]
    result.update(_jsonable(zoo.entry(name).decoder.summarize(result["folds"])))
    return pd.concat(rows, ignore_index=True), result


def _by(design: Design, preds: pd.DataFrame, by: str) -> dict:
    """Scores per value of ``by`` (external test groups, or within-subject values)."""
    per = {}
    for g, part in preds.groupby(by):
        y, out = design.task.outputs(part, design.targets)
        s = design.task.predictions(y, out, design.targets, np.zeros(len(y))).metrics([[1.0]])
        per[str(g)] = {k: (None if not np.isfinite(v[0]) else float(v[0])) for k, v in s.items()}
        per[str(g)]["n"] = int(len(part))
    return per


def _statistics(design: Design, preds: pd.DataFrame, results: dict) -> list[dict]:
    """Pooled scores with unit intervals for every model, and paired comparisons over
    units of each of ours against every other model, on the same predictions."""
    kc_boot, kc_perm = design.record["units"]["n_boot"], design.record["units"]["n_perm"]
    key = ["fold", "store", "id", "start"]
    ok = [m for m in results if "error" not in results[m]]
    predictions, first = {}, None
    for m in ok:
        p = preds[preds.model == m].sort_values(key, kind="stable").reset_index(drop=True)
        if first is not None and not p[key].equals(first[key]):
            raise AssertionError(f"{m} and {ok[0]} were not scored on the same samples")
        first = p if first is None else first
        y, out = design.task.outputs(p, design.targets)
        predictions[m] = design.task.predictions(y, out, design.targets, p["unit"].astype(str).to_numpy())
    block = statistics(predictions, [m for m in ok if zoo.ZOO[m].traits.family == "ours"], n_boot=kc_boot,
                       n_perm=kc_perm, seed=design.context.seed)
    for m, boot in block["models"].items():
        for metric, v in boot.items():
            if metric != "n_units":
                results[m][metric].update({"pooled": v["value"], "ci95": v["ci95"]})
        results[m]["n_units"] = boot["n_units"]
    return _jsonable(block["paired"])


def run_decode(cfg, log=print) -> Path:
    """Decoding as configured; returns the run folder. Raises :class:`DecodeFailed`
    (after writing every result) when a model failed."""
    kc = cfg.decode
    t0 = time.time()
    design = prepare(cfg, log)
    run = Run.create(kc.out, kc.name, f"{cfg.name}-decode")
    run.write_config(cfg)
    protocol, units = design.record["protocol"], design.units
    log(f"decode: {len(design.samples)} samples, {len(design.targets.classes) or 'continuous'} classes "
        f"{design.targets.classes}, {len(design.folds)} fold(s) ({protocol['cv']} by {protocol['group_by']}), "
        f"models {list(design.models)}; units for intervals: {units['column']} ({units['n']}); run folder {run.path}")
    if units["note"]:
        log(f"note: {units['note']}")
    if "time" in protocol["inner_split"]:
        log("note: the inner split held out the end of each training recording in time in some folds (too few "
            "training groups for a group split); see metrics.json inner_splits")
    names = design.task.metric_names(design.targets.kind)
    results, parts, failed = {}, [], {}
    for name in design.models:
        try:
            preds, results[name] = evaluate(design, name, log)
        except Exception as e:  # reported, the others go on, and the command exits non-zero
            log(f"  {name}: FAILED: {type(e).__name__}: {e}")
            failed[name] = f"{type(e).__name__}: {e}"
            results[name] = {k: fold_summary([]) for k in names}
            results[name].update(error=failed[name], traceback=traceback.format_exc())
            continue
        parts.append(preds)
        for w in results[name].get("warnings", []):
            log(f"warning: {w}")
    paired = _write_predictions(design, run, parts, results) if parts else []
    metrics = {"task": design.targets.kind, "task_reason": design.targets.reason, "target": kc.target,
               "classes": design.targets.classes, **design.record, "n_samples": len(design.samples),
               "seconds": round(time.time() - t0, 1), "models": _jsonable(results), "paired": paired,
               "failed": sorted(failed)}
    run.write_json("metrics.json", metrics)
    log(format_table(metrics["models"], names))
    if failed:
        raise DecodeFailed(run.path, failed)
    return run.path


def _write_predictions(design: Design, run: Run, parts: list, results: dict) -> list:
    """``predictions.csv``, the per-group scores, the task's outputs and the statistics."""
    preds = pd.concat(parts, ignore_index=True)
    atomic_write_csv(run / "predictions.csv", preds)
    external, within = design.record["protocol"]["test_stores"], design.record["protocol"]["within"]
    by = "group" if external else ("within" if within else None)
    if by is not None:
        for name in results:
            if "error" not in results[name]:
                results[name]["by_" + by] = _by(design, preds[preds.model == name], by)
    design.task.write(run, preds, design.targets)
    return _statistics(design, preds, results)
