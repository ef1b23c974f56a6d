"""``neuroconv decode``: supervised decoding with cross-validation, neural models and
classical baselines compared on the same folds.

Samples are either whole recordings (``decode.target`` = a manifest column such as
``dx_group``; at most ``data.max_len`` steps each) or windows around events
(``decode.target: events``). Folds keep groups (``decode.group_by``, e.g. subject, run
or site) apart: stratified group k-fold, or leave-one-group-out.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax

from .baselines import BASELINES, make_baseline
from .config import ExperimentConfig, to_dict
from .data import StoreWindows, open_stores
from .models import BrainModel, backbone_config
from .runner import find_run_dir, load_pretrained, new_run_dir, write_json, write_yaml
from .sources import prepare_sources
from .supervised import fit_supervised, predict
from .tasks import BrainClassifier

__all__ = ["run_decode", "build_net", "decode_samples", "cv_splits", "score", "NEURAL_MODELS"]

NEURAL_MODELS = ("scratch", "finetune", "probe", "attention")
METRICS_CLF = ("accuracy", "balanced_accuracy", "roc_auc", "f1")
METRICS_REG = ("r2", "mae", "pearson_r")


def build_net(model_cfg, channel_sets: dict, key: str, channels: list, n_out: int, l_max: int, *,
              pretrained: str | None = None, freeze: bool = False, pool: str = "mean") -> BrainClassifier:
    """A :class:`BrainClassifier`: a fresh backbone from ``model_cfg``, or the exported
    model of a pretrain run folder. With ``freeze``, every pretrained weight is frozen
    and only a new channel set's encoder and the head train (a linear probe)."""
    if pretrained:
        brain = load_pretrained(pretrained)
        pre_l_max = brain.config["backbone"]["l_max"]
        layer = brain.config["backbone"]["layer"]
        if l_max > pre_l_max and layer != "attention":
            raise ValueError(
                f"decode samples have up to {l_max} steps but the pretrained model in {pretrained} "
                f"covers l_max={pre_l_max}. Lower data.max_len (or decode.tmax) to {pre_l_max}, "
                "or pretrain with longer windows."
            )
        brain.backbone.pool = pool
    else:
        brain = BrainModel(backbone_config(model_cfg, l_max, pool), channel_sets,
                           time_embedding=model_cfg.time_embedding)
    net = BrainClassifier(brain, n_out, freeze_backbone=freeze)
    brain.add_channel_set(key, channels)  # after freezing: a new encoder stays trainable
    return net


def decode_samples(stores, decode_cfg, data_cfg) -> pd.DataFrame:
    """Rows ``store, id, start, stop, label, group`` for the configured target."""
    kc = decode_cfg
    parts = []
    for s, store in enumerate(stores):
        man = store.manifest.set_index("id")
        if kc.query:
            try:
                man = man.query(kc.query)
            except Exception as e:  # pandas raises many types for a bad expression
                raise ValueError(f"decode.query={kc.query!r} failed on {store.path}/manifest.csv: {e}. "
                                 f"Columns: {sorted(store.manifest.columns)}.") from None
            if len(man) == 0:
                continue
        if kc.group_by not in man.columns:
            raise ValueError(f"decode.group_by={kc.group_by!r} is not a column of {store.path}/manifest.csv; "
                             f"columns: {sorted(man.columns)}.")
        if kc.target == "events":
            if len(store.events) == 0:
                raise ValueError(f"{store.path} has no events; decode.target=events needs them. "
                                 "Pick a manifest column as decode.target instead.")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                w = store.event_windows(kc.tmin, kc.tmax, labels=kc.event_labels or None,
                                        ids=list(man.index))
            for c in caught:
                warnings.warn(str(c.message))
            w = w[["id", "start", "stop", "label"]]
            if len(w) == 0:
                raise ValueError(
                    f"{store.path}: no event window of [{kc.tmin}, {kc.tmax}] s fits inside its "
                    "recordings; the window is longer than the recordings or the events lie at their "
                    "edges. Shorten decode.tmin/decode.tmax."
                )
        else:
            if kc.target not in man.columns:
                raise ValueError(
                    f"decode.target={kc.target!r} is not a column of {store.path}/manifest.csv. "
                    f"Label columns there: {sorted(c for c in man.columns if c not in ('path',))}; "
                    "or use decode.target=events."
                )
            ids = man.index.to_numpy()
            stop = np.minimum(man["n_times"].to_numpy(int), data_cfg.max_len)
            w = pd.DataFrame({"id": ids, "start": 0, "stop": stop, "label": man[kc.target].to_numpy()})
            missing = w["label"].isna()
            if missing.any():
                warnings.warn(f"{store.path}: {int(missing.sum())} recording(s) without a "
                              f"{kc.target!r} label are left out.")
                w = w[~missing]
        w = w.assign(store=s, group=[f"{s}:{g}" for g in man.loc[w["id"], kc.group_by].astype(str)])
        parts.append(w)
    if not parts:
        raise ValueError(f"decode.query={kc.query!r} selects no recording.")
    out = pd.concat(parts, ignore_index=True)
    if len(out) == 0:
        raise ValueError("no labelled samples to decode.")
    return out


def _task_kind(labels: pd.Series, kind: str) -> str:
    if kind in ("classification", "regression"):
        return kind
    numeric = pd.to_numeric(labels, errors="coerce")
    if numeric.notna().all() and numeric.nunique() > 10 and not np.allclose(numeric, numeric.round()):
        return "regression"
    return "classification"


def cv_splits(y: np.ndarray, groups: np.ndarray, cv: str, n_splits: int, seed: int, classification: bool):
    """Train/test index pairs that never share a group."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(
            f"cross-validation needs at least 2 groups, but decode.group_by gives {n_groups}. Choose "
            "a finer group (e.g. run instead of subject)."
        )
    if cv == "leave_group_out":
        return list(LeaveOneGroupOut().split(np.zeros(len(y)), y, groups))
    if cv != "group_kfold":
        raise ValueError(f"decode.cv must be 'group_kfold' or 'leave_group_out'; got {cv!r}.")
    k = min(n_splits, n_groups)
    if k < n_splits:
        warnings.warn(f"only {n_groups} groups: using {k} folds instead of {n_splits}.")
    if classification:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = GroupKFold(n_splits=k)
    return list(splitter.split(np.zeros(len(y)), y, groups))


def score(y_true, proba_or_pred, kind: str, n_classes: int | None = None) -> dict:
    """Metrics with the same keys for every model (NaN where undefined in a fold)."""
    from sklearn import metrics as M

    if kind == "regression":
        pred = np.asarray(proba_or_pred, dtype=float)
        r = np.corrcoef(y_true, pred)[0, 1] if np.std(pred) > 0 and np.std(y_true) > 0 else np.nan
        return {"r2": M.r2_score(y_true, pred), "mae": M.mean_absolute_error(y_true, pred), "pearson_r": r}
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
    except ValueError:  # a class missing from this test fold
        out["roc_auc"] = float("nan")
    return out


def _inner_split(groups: np.ndarray, frac: float, seed: int):
    """Validation indices (by group) inside a training fold, for early stopping."""
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit

    if len(np.unique(groups)) >= 3:
        splitter = GroupShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
        tr, va = next(splitter.split(groups, groups=groups))
    else:
        tr, va = next(ShuffleSplit(n_splits=1, test_size=frac, random_state=seed).split(groups))
    return tr, va


def _neural_fold(name, cfg, base_ds, y, tr, te, kind, n_out, pretrained, l_max):
    kc = cfg.decode
    channel_sets = base_ds.channel_sets()
    if len(channel_sets) != 1:
        raise ValueError("neural decoding needs one channel set across the decode stores; map the "
                         "recordings onto a common set when preprocessing.")
    (key, chans), = channel_sets.items()
    model_cfg = cfg.model
    if name == "attention":
        import copy

        model_cfg = copy.copy(cfg.model)
        model_cfg.layer = "attention"
    net = build_net(model_cfg, {key: chans}, key, chans, n_out, l_max,
                    pretrained=pretrained if name in ("finetune", "probe") else None,
                    freeze=name == "probe", pool="mean")
    if name == "probe":
        return _linear_probe(net, base_ds, y, tr, te, kind, kc.seed)
    groups = base_ds.windows["group"].to_numpy()
    itr, iva = _inner_split(groups[tr], cfg.data.val_fraction, kc.seed)
    train_ds = base_ds.subset(tr[itr])
    val_ds = base_ds.subset(tr[iva])
    cw = None
    if kind == "classification":
        counts = np.bincount(y[tr].astype(int), minlength=n_out)
        cw = len(tr) / (n_out * np.maximum(counts, 1))
    net, info = fit_supervised(net, train_ds, val_ds, kc, kind=kind, batch_size=kc.batch_size,
                               class_weights=cw)
    out = predict(net, base_ds.subset(te))
    return softmax(out, axis=1) if kind == "classification" else out[:, 0]


def _linear_probe(net, base_ds, y, tr, te, kind, seed):
    """Frozen pretrained features (pooled backbone output) -> standardise -> logistic
    (or ridge) regression, fitted on the training fold only."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f_tr = predict(net, base_ds.subset(tr), method="features")  # (n D)
    f_te = predict(net, base_ds.subset(te), method="features")
    if kind == "classification":
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced",
                                                                 max_iter=5000, random_state=seed))
        clf.fit(f_tr, y[tr])
        proba = np.zeros((len(te), int(y.max()) + 1))
        proba[:, clf.classes_.astype(int)] = clf.predict_proba(f_te)
        return proba
    return make_pipeline(StandardScaler(), RidgeCV()).fit(f_tr, y[tr]).predict(f_te)


def _load_arrays(base_ds: StoreWindows, idx, fixed_length: bool):
    xs = [np.asarray(base_ds.stores[s].load(r)[a:b], dtype=np.float64)
          for s, r, a, b in base_ds.windows.iloc[idx][["store", "id", "start", "stop"]].itertuples(index=False)]
    if not fixed_length:
        return xs  # list of (T, C)
    lengths = {x.shape for x in xs}
    if len(lengths) != 1:
        raise ValueError(f"this baseline needs windows of one shape; got {sorted(lengths)[:3]}...")
    return np.stack([x.T for x in xs])  # (n C T)


def _baseline_fold(name, cfg, base_ds, y, tr, te, kind, sfreq):
    kc = cfg.decode
    if kind == "regression":
        raise ValueError(f"baseline {name!r} is a classifier; drop it from decode.models for regression.")
    est = make_baseline(name, sfreq=sfreq, connectivity_kind=kc.connectivity_kind, seed=kc.seed)
    fixed = name != "connectivity"
    Xtr, Xte = _load_arrays(base_ds, tr, fixed), _load_arrays(base_ds, te, fixed)
    from mne.utils import use_log_level

    with use_log_level("warning"):  # CSP's per-class covariance messages
        est.fit(Xtr, y[tr])
    proba = np.zeros((len(te), int(y.max()) + 1))
    proba[:, est.classes_.astype(int)] = est.predict_proba(Xte)
    return proba


def _resolve_pretrained(cfg: ExperimentConfig, models, log) -> str | None:
    kc = cfg.decode
    need = [m for m in models if m in ("finetune", "probe")]
    if not need:
        return None
    if kc.pretrained:
        return kc.pretrained
    try:
        run = find_run_dir(cfg.pretrain.out, "", f"{cfg.name}-pretrain")
        if (run / "model.safetensors").is_file():
            log(f"using the newest pretrain run of config {cfg.name!r}: {run}")
            return str(run)
    except FileNotFoundError:
        pass
    return None


def _evaluate_model(name, cfg, base_ds, samples, y, splits, kind, classes, pretrained, l_max, sfreqs,
                    run_dir, metric_names, log):
    """All folds of one model: (prediction rows, aggregated metrics)."""
    fold_scores, cms, pred_rows = [], [], []
    if name == "bandpower" and len(sfreqs) != 1:
        raise ValueError(f"baseline 'bandpower' needs one sampling rate; the data have {sorted(sfreqs)}.")
    for f, (tr, te) in enumerate(splits):
        if name in NEURAL_MODELS:
            out = _neural_fold(name, cfg, base_ds, y, tr, te, kind, len(classes) or 1, pretrained, l_max)
        else:
            out = _baseline_fold(name, cfg, base_ds, y, tr, te, kind, min(sfreqs))
        s = score(y[te], out, kind, len(classes))
        fold_scores.append(s)
        rows = samples.iloc[te][["store", "id", "start", "stop", "label", "group"]].assign(model=name, fold=f)
        if kind == "classification":
            from sklearn.metrics import confusion_matrix

            rows = rows.assign(y_true=y[te], y_pred=out.argmax(1),
                               **{f"proba_{c}": out[:, i] for i, c in enumerate(classes)})
            cms.append(confusion_matrix(y[te], out.argmax(1), labels=list(range(len(classes)))))
        else:
            rows = rows.assign(y_true=y[te], y_pred=out)
        pred_rows.append(rows)
        log(f"  {name:<12} fold {f + 1}/{len(splits)}: " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()))
    agg = {}
    for k in metric_names:
        vals = np.array([fs[k] for fs in fold_scores], dtype=float)
        ok = np.isfinite(vals).any()
        agg[k] = {"mean": float(np.nanmean(vals)) if ok else None, "sd": float(np.nanstd(vals)) if ok else None,
                  "folds": [None if not np.isfinite(v) else float(v) for v in vals]}
    if cms:
        from .plots import plot_confusion

        plot_confusion(np.sum(cms, 0), classes, run_dir / "plots" / f"confusion_{name}.png",
                       title=f"{name}: all folds")
    return pred_rows, agg


def run_decode(cfg: ExperimentConfig, log=print) -> Path:
    """Cross-validated decoding as configured; returns the run folder."""
    kc, dc = cfg.decode, cfg.data
    t0 = time.time()
    stores = open_stores(list(dc.stores) + prepare_sources(dc.sources, log=log))
    samples = decode_samples(stores, kc, dc)
    kind = _task_kind(samples["label"], kc.task)
    if kind == "classification":
        classes = sorted(samples["label"].astype(str).unique())
        if len(classes) < 2:
            raise ValueError(
                f"the decode target {kc.target!r} has a single class ({classes[0]!r}) in the data; "
                "decoding needs at least two."
            )
        y = samples["label"].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    else:
        classes = []
        y = samples["label"].astype(float).to_numpy()
    samples = samples.assign(y=y)
    base_ds = StoreWindows(stores, samples, dc.normalize)
    sfreqs = {float(st.sfreq(r)) for st, r in {(stores[s], r) for s, r in zip(samples["store"], samples["id"])}}
    l_max = int((samples["stop"] - samples["start"]).max())
    models = list(kc.models)
    unknown = [m for m in models if m not in NEURAL_MODELS + BASELINES]
    if unknown:
        raise ValueError(f"decode.models: unknown {unknown}; choose from {NEURAL_MODELS + BASELINES}.")
    pretrained = _resolve_pretrained(cfg, models, log)
    if pretrained is None and any(m in ("finetune", "probe") for m in models):
        log("note: finetune/probe need a pretrained run (decode.pretrained, or run `neuroconv pretrain` "
            "first with this config); skipping them.")
        models = [m for m in models if m not in ("finetune", "probe")]
    splits = cv_splits(y, samples["group"].to_numpy(), kc.cv, kc.n_splits, kc.seed, kind == "classification")
    run_dir = new_run_dir(kc.out, kc.name, f"{cfg.name}-decode")
    write_yaml(run_dir / "config.yaml", to_dict(cfg))
    log(f"decode: {len(samples)} samples, {len(classes) or 'continuous'} classes {classes}, "
        f"{len(splits)} folds ({kc.cv} by {kc.group_by}), models {models}; run folder {run_dir}")

    results, pred_rows = {}, []
    metric_names = METRICS_CLF if kind == "classification" else METRICS_REG
    for name in models:
        try:
            rows, agg = _evaluate_model(name, cfg, base_ds, samples, y, splits, kind, classes, pretrained,
                                        l_max, sfreqs, run_dir, metric_names, log)
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as e:  # report it, go on with the others
            log(f"  {name}: failed: {e}")
            results[name] = {k: {"mean": None, "sd": None, "folds": []} for k in metric_names}
            results[name]["error"] = str(e)
            continue
        results[name] = agg
        pred_rows.extend(rows)
    if not pred_rows:
        raise RuntimeError("every model failed: " + "; ".join(f"{n}: {r['error']}" for n, r in results.items()))
    preds = pd.concat(pred_rows, ignore_index=True)
    tmp = run_dir / ".predictions.csv.tmp"
    preds.to_csv(tmp, index=False)
    tmp.replace(run_dir / "predictions.csv")
    metrics = {"task": kind, "target": kc.target, "classes": classes, "cv": kc.cv, "group_by": kc.group_by,
               "n_folds": len(splits), "n_samples": len(samples), "pretrained": pretrained,
               "seconds": round(time.time() - t0, 1), "models": results}
    write_json(run_dir / "metrics.json", metrics)
    log(format_table(results, metric_names))
    return run_dir


def format_table(results: dict, metric_names) -> str:
    """Markdown table: one row per model, ``mean ± sd`` per metric."""
    head = "| model | " + " | ".join(metric_names) + " |"
    lines = [head, "|" + "---|" * (len(metric_names) + 1)]
    for name, agg in results.items():
        if "error" in agg:
            lines.append(f"| {name} | failed: {agg['error']} |" + " |" * (len(metric_names) - 1))
            continue
        cells = []
        for k in metric_names:
            m = agg[k]
            cells.append("n/a" if m["mean"] is None else f"{m['mean']:.3f} ± {m['sd']:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
