"""Dense decoding: a prediction per epoch or per event over whole recordings.

Two tasks, each a whole recording per sample (the same folds, units, fair protocol and
run folder as every task):

- **staging** (``decode.task: staging``): a class per epoch. The targets are the
  recording's events labelled ``<decode.target>:<class>`` (``stage:N2``...), one per
  scored epoch; the epoch length is their duration (one step for per-epoch feature
  stores, 30 s of samples for raw signals). Epochs without a label are masked (never
  trained on, never scored). Scores: macro F1, Cohen's kappa, accuracy
  (:class:`~neuroconv.engine.compare.ConfusionPredictions`), per-class F1 and the
  confusion matrix; outputs: each recording's predicted hypnogram
  (``hypnograms/<model>/<recording>.tsv``) and plots against the truth.
- **detection** (``decode.task: detection``): events such as sleep spindles. The truth is
  the events labelled ``<decode.target>:<scorer>`` of the reference scorer
  (``decode.reference``: a scorer such as ``expert1``, or ``union``, the union of every
  ``expert*`` scorer); a recording the reference never scored is left out. Models predict
  events (onset, offset in samples). Scores: by-event F1, precision and recall with
  one-to-one matching at IoU ≥ 0.2, and F1 at IoU ≥ 0.5
  (:class:`~neuroconv.engine.compare.EventPredictions`); outputs: each recording's
  predicted events as a BIDS-style ``events.tsv`` (``events/<model>/<recording>_events.tsv``)
  and plots of the events over the signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuroconv.engine.compare import DETECTION_METRICS, STAGING_METRICS, ConfusionPredictions, EventPredictions

from .base import Targets, Task, register_task

__all__ = ["StagingTask", "DetectionTask", "STAGE_ORDER", "recording_samples", "reference_labels"]

#: the usual order of sleep stages (AASM names), used for the classes when they are these
STAGE_ORDER = ("W", "N1", "N2", "N3", "R")


def recording_samples(stores, kc) -> pd.DataFrame:
    """One sample per recording selected by ``decode.query``: rows ``store, id, start,
    stop, label`` (the whole recording; ``label`` is its id)."""
    parts = []
    for s, store in enumerate(stores):
        man = store.select(kc.query, "decode.query")
        parts.append(pd.DataFrame({"store": s, "id": man["id"].astype(str).to_numpy(), "start": 0,
                                   "stop": man["n_times"].to_numpy(int), "label": man["id"].astype(str).to_numpy()}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(out) == 0:
        from ..data import no_recording_error

        raise no_recording_error("decode.query", kc.query, stores)
    return out


def _events_of(store, rid: str, prefix: str) -> pd.DataFrame:
    ev = store.events
    return ev[(ev["id"].astype(str) == rid) & ev["label"].astype(str).str.startswith(prefix)]


class StagingTask(Task):
    """A class per epoch of whole recordings (see the module doc)."""

    name = "staging"

    def samples(self, stores, kc, dc) -> pd.DataFrame:
        out = recording_samples(stores, kc)
        prefix = f"{kc.target}:"
        hops = []
        for s, rid in zip(out["store"], out["id"]):
            ev = _events_of(stores[s], rid, prefix)
            if not len(ev):
                raise ValueError(f"{stores[s].path}: recording {rid} has no {prefix}* events to stage against; "
                                 f"decode.target names the events' prefix (e.g. stage for stage:N2).")
            dur = ev["duration"].to_numpy(int)
            hop = int(np.bincount(dur).argmax())
            if (ev["onset"].to_numpy(int) % hop).any() or (dur % hop).any():
                raise ValueError(f"{stores[s].path}: recording {rid}'s {prefix}* events are not on a grid of "
                                 f"{hop}-sample epochs.")
            hops.append(hop)
        return out.assign(hop=hops)

    def targets(self, stores, samples: pd.DataFrame, is_test: np.ndarray, kc) -> Targets:
        prefix = f"{kc.target}:"
        ys, found = [], set()
        per = []
        for s, rid, stop, hop in zip(samples["store"], samples["id"], samples["stop"], samples["hop"]):
            ev = _events_of(stores[s], rid, prefix)
            per.append(ev)
            if not is_test[len(per) - 1]:
                found |= {str(v)[len(prefix):] for v in ev["label"]}
        classes = list(kc.event_labels) or ([c for c in STAGE_ORDER if c in found] +
                                            sorted(found - set(STAGE_ORDER)))
        if len(classes) < 2:
            raise ValueError(f"staging needs at least two classes of {prefix}* events; found {sorted(found)}.")
        index = {c: i for i, c in enumerate(classes)}
        for ev, stop, hop in zip(per, samples["stop"], samples["hop"]):
            y = np.full(int(stop) // int(hop), -1, dtype=np.int64)
            for onset, dur, label in zip(ev["onset"].to_numpy(int), ev["duration"].to_numpy(int), ev["label"]):
                c = index.get(str(label)[len(prefix):])
                if c is not None:
                    y[onset // hop: (onset + dur) // hop] = c
            ys.append(y)
        y = np.empty(len(ys), dtype=object)
        y[:] = ys
        return Targets("staging", f"one of {len(classes)} classes per epoch ({prefix}* events)", classes, y)

    def metric_names(self, kind: str) -> tuple:
        return STAGING_METRICS

    def rows(self, samples: pd.DataFrame, y, out, targets: Targets) -> pd.DataFrame:
        parts = []
        for (_, row), truth, proba in zip(samples.iterrows(), y, out):
            proba = np.asarray(proba, float)
            if proba.shape != (len(truth), len(targets.classes)):
                raise ValueError(f"a staging model must predict ({len(truth)}, {len(targets.classes)}) "
                                 f"probabilities for recording {row['id']}; got {proba.shape}.")
            part = pd.DataFrame({"epoch": np.arange(len(truth)), "y_true": truth, "y_pred": proba.argmax(1),
                                 **{f"proba_{c}": proba[:, i] for i, c in enumerate(targets.classes)}})
            parts.append(part.assign(**{k: row[k] for k in samples.columns}))
        return pd.concat(parts, ignore_index=True)

    def predictions(self, rows: pd.DataFrame, targets: Targets, by: str | None = None) -> dict:
        K = len(targets.classes)
        scored = rows[rows["y_true"] >= 0]
        out = {}
        for name, part in scored.groupby("model", sort=False):
            cells = part.groupby(["fold", "store", "id"], sort=True)
            counts = np.stack([np.bincount(c["y_true"].to_numpy() * K + c["y_pred"].to_numpy(), minlength=K * K)
                               for _, c in cells])
            first = cells.first()
            out[name] = ConfusionPredictions(counts, first["unit"].astype(str).to_numpy(), K,
                                             folds=first.index.get_level_values("fold").to_numpy(),
                                             by=None if by is None else first[by].astype(str).to_numpy())
        return out

    def extras(self, rows: pd.DataFrame, targets: Targets) -> dict:
        """Per model: the pooled confusion matrix (truth by prediction) and each class's F1."""
        from sklearn.metrics import confusion_matrix, f1_score

        out = {}
        scored = rows[rows["y_true"] >= 0]
        labels = list(range(len(targets.classes)))
        for name, part in scored.groupby("model", sort=False):
            f1 = f1_score(part["y_true"], part["y_pred"], labels=labels, average=None, zero_division=0)
            out[name] = {"per_class_f1": dict(zip(targets.classes, map(float, f1))),
                         "confusion_matrix": confusion_matrix(part["y_true"], part["y_pred"], labels=labels).tolist()}
        return out

    def write(self, run, rows: pd.DataFrame, design) -> None:
        from neuroconv.io import atomic_write_csv

        from ..plots import plot_confusion, plot_hypnograms

        classes = design.targets.classes
        for name, part in rows.groupby("model", sort=False):
            for (store, rid), rec in part.groupby(["store", "id"], sort=False):
                hop = int(rec["hop"].iloc[0])
                sfreq = float(design.stores[int(store)].sfreq(rid))
                tsv = pd.DataFrame({"onset": rec["epoch"].to_numpy() * hop / sfreq, "duration": hop / sfreq,
                                    "stage": [classes[i] for i in rec["y_pred"]],
                                    "true_stage": [classes[i] if i >= 0 else "n/a" for i in rec["y_true"]]})
                atomic_write_csv(run / "hypnograms" / name / f"{rid}.tsv", tsv, sep="\t")
            scored = part[part["y_true"] >= 0]
            from sklearn.metrics import confusion_matrix

            cm = confusion_matrix(scored["y_true"], scored["y_pred"], labels=list(range(len(classes))))
            plot_confusion(cm, classes, run / "plots" / f"confusion_{name}.png", title=f"{name}: all folds")
            plot_hypnograms(part, classes, run / "plots" / f"hypnograms_{name}.png", title=name)


def reference_labels(store, rid: str, target: str, reference: str) -> list[str] | None:
    """The event labels that are the truth of recording ``rid``: ``<target>:<reference>``,
    or for ``union`` every ``<target>:expert*`` label it has; None when the reference never
    scored it."""
    labels = set(_events_of(store, rid, f"{target}:")["label"].astype(str))
    scorers = None
    man = store.manifest.set_index("id")
    if "scorers" in man.columns and rid in man.index and isinstance(man.loc[rid, "scorers"], str):
        scorers = {s.strip() for s in man.loc[rid, "scorers"].split(",") if s.strip()}
    if reference == "union":
        known = scorers if scorers is not None else {lab.split(":", 1)[1] for lab in labels}
        chosen = sorted(f"{target}:{s}" for s in known if s.startswith("expert"))
        return chosen or None
    if scorers is not None:
        return [f"{target}:{reference}"] if reference in scorers else None
    return [f"{target}:{reference}"] if f"{target}:{reference}" in labels else None


def _union(onsets, offsets) -> np.ndarray:
    """The union of intervals ``[onset, offset)`` as sorted, disjoint events ``(n, 2)``."""
    order = np.argsort(onsets, kind="stable")
    out = []
    for a, b in zip(np.asarray(onsets)[order], np.asarray(offsets)[order]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


class DetectionTask(Task):
    """Events over whole recordings, scored by event (see the module doc)."""

    name = "detection"

    def samples(self, stores, kc, dc) -> pd.DataFrame:
        import warnings

        out = recording_samples(stores, kc)
        refs = [reference_labels(stores[s], rid, kc.target, kc.reference) for s, rid in zip(out["store"], out["id"])]
        missing = [rid for rid, r in zip(out["id"], refs) if r is None]
        if missing:
            warnings.warn(f"decode.reference {kc.reference!r} never scored {len(missing)} recording(s) "
                          f"({', '.join(missing[:5])}): they are left out.")
        keep = np.array([r is not None for r in refs])
        if not keep.any():
            raise ValueError(f"decode.reference {kc.reference!r} scored no recording: no {kc.target}:"
                             f"{kc.reference} events (decode.reference: a scorer such as expert1, or union).")
        out = out.assign(reference=[";".join(r) if r else "" for r in refs])
        return out[keep].reset_index(drop=True)

    def targets(self, stores, samples: pd.DataFrame, is_test: np.ndarray, kc) -> Targets:
        ys = []
        for s, rid, stop, ref in zip(samples["store"], samples["id"], samples["stop"], samples["reference"]):
            ev = stores[s].events
            ev = ev[(ev["id"].astype(str) == rid) & ev["label"].astype(str).isin(ref.split(";"))]
            on = ev["onset"].to_numpy(np.int64)
            off = np.minimum(on + np.maximum(ev["duration"].to_numpy(np.int64), 1), int(stop))
            ys.append(_union(on, off))
        y = np.empty(len(ys), dtype=object)
        y[:] = ys
        return Targets("detection", f"{kc.target} events of {kc.reference} (one-to-one matching at IoU >= 0.2 "
                                    "and 0.5)", [kc.target], y)

    def metric_names(self, kind: str) -> tuple:
        return DETECTION_METRICS

    def rows(self, samples: pd.DataFrame, y, out, targets: Targets) -> pd.DataFrame:
        from neuroconv.engine.events import format_events, match_events

        rows = []
        for (_, row), truth, pred in zip(samples.iterrows(), y, out):
            pred = np.asarray(pred, dtype=np.int64).reshape(-1, 2)
            m20, m50 = match_events(truth, pred, 0.2), match_events(truth, pred, 0.5)
            rows.append({**{k: row[k] for k in samples.columns}, "n_true": len(truth), "n_pred": len(pred),
                         "tp": m20.tp, "fp": m20.fp, "fn": m20.fn, "tp_50": m50.tp, "fp_50": m50.fp, "fn_50": m50.fn,
                         "pred_events": format_events(pred)})
        return pd.DataFrame(rows)

    def predictions(self, rows: pd.DataFrame, targets: Targets, by: str | None = None) -> dict:
        out = {}
        for name, part in rows.groupby("model", sort=False):
            part = part.sort_values(["fold", "store", "id"], kind="stable")
            out[name] = EventPredictions(part[["tp", "fp", "fn", "tp_50", "fp_50", "fn_50"]].to_numpy(float),
                                         part["unit"].astype(str).to_numpy(), folds=part["fold"].to_numpy(),
                                         by=None if by is None else part[by].astype(str).to_numpy())
        return out

    def extras(self, rows: pd.DataFrame, targets: Targets) -> dict:
        """Per model: the pooled counts (true, predicted, matched at each IoU)."""
        return {name: {k: int(part[k].sum()) for k in ("n_true", "n_pred", "tp", "fp", "fn", "tp_50")}
                for name, part in rows.groupby("model", sort=False)}

    def write(self, run, rows: pd.DataFrame, design) -> None:
        from neuroconv.engine.events import parse_events
        from neuroconv.io import atomic_write_csv

        from ..plots import plot_events

        for name, part in rows.groupby("model", sort=False):
            for _, r in part.iterrows():
                sfreq = float(design.stores[int(r["store"])].sfreq(r["id"]))
                ev = parse_events(r["pred_events"])
                tsv = pd.DataFrame({"onset": ev[:, 0] / sfreq, "duration": (ev[:, 1] - ev[:, 0]) / sfreq,
                                    "trial_type": design.targets.classes[0], "sample": ev[:, 0]})
                atomic_write_csv(run / "events" / name / f"{r['id']}_events.tsv", tsv, sep="\t")
        plot_events(rows, design, run / "plots")


register_task(StagingTask())
register_task(DetectionTask())
