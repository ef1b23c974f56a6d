"""``neuroconv decode``: supervised decoding, neural models and baselines on the same folds
and the same inputs.

Samples are whole recordings (``decode.target`` = a manifest column such as
``diagnosis``; at most ``data.max_len`` steps each) or windows around events
(``decode.target: events``). The protocol, as :class:`~neuroconv.engine.folds.Folds`
makes it:

- folds keep ``decode.group_by`` groups (subject, session, run, site) apart;
- each model's early stopping uses a validation split of the training fold only, by
  group, or by time inside each training recording when the fold holds too few groups
  (recorded per fold in ``metrics.json``);
- normalisation statistics are per recording (never across recordings);
- a pretrained backbone is checked against every test fold: a recording or group it saw
  is an error unless ``decode.transductive`` is set, which records the overlap; with
  ``decode.pretrain_in_fold`` each fold pretrains on its own training groups;
- baselines get the same index arrays and the same normalised arrays as the models;
- ``decode.test_stores`` trains once on all the data and evaluates on other stores.

A model that fails is reported in ``metrics.json`` (with its traceback) and the others go
on; the command then exits non-zero (:class:`DecodeFailed`).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax

from neuroconv.engine.folds import Folds
from neuroconv.engine.runner import Run, fit, predict
from neuroconv.engine.tasks import SupervisedTask
from neuroconv.io import atomic_write_csv

from .baselines import BASELINES, NEURAL_BASELINES, braindecode_net, make_baseline
from .config import ExperimentConfig
from .data import StoreWindows, loader, open_stores, pretrain_windows, sample_groups, select
from .models import BrainModel, load_pretrained, make_classifier
from .sources import prepare_sources

__all__ = ["run_decode", "decode_samples", "infer_task", "score", "NEURAL_MODELS", "PRETRAINED_MODELS",
           "DecodeFailed", "check_pretraining_overlap"]

NEURAL_MODELS = ("scratch", "finetune", "probe", "attention", "covconv")
PRETRAINED_MODELS = ("finetune", "probe")
METRICS_CLF = ("accuracy", "balanced_accuracy", "roc_auc", "f1")
METRICS_REG = ("r2", "mae", "pearson_r")


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


# --------------------------------------------------------------------------- pretraining record
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
    """What a pretrained backbone saw of one test fold: ``{"recordings": [...], "groups":
    [...]}`` (empty lists when nothing). ``record``: the pretrain run's recordings.csv;
    ``test``: the test fold's recording table (:func:`recording_table`)."""
    rec_seen = set(_record_keys(record, None))
    overlap_rec = sorted(set(_record_keys(test, None)) & rec_seen)
    overlap_grp = []
    if group_by in record.columns and group_by in test.columns:
        overlap_grp = sorted(set(_record_keys(test, group_by)) & set(_record_keys(record, group_by)))
    return {"recordings": overlap_rec, "groups": overlap_grp}


# --------------------------------------------------------------------------- context
@dataclass
class _Context:
    cfg: ExperimentConfig
    stores: list
    samples: pd.DataFrame
    ds: StoreWindows
    y: np.ndarray
    groups: np.ndarray
    kind: str
    classes: list
    folds: Folds
    l_max: int
    log: object
    pretrained: BrainModel | None = None
    record: pd.DataFrame | None = None
    n_train_stores: int = 0
    fold_backbones: dict = field(default_factory=dict)
    subsets: dict = field(default_factory=dict)
    kernel_stats: dict = field(default_factory=dict)
    transductive: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    head_c: list = field(default_factory=list)
    inner: dict = field(default_factory=dict)
    overlap: dict = field(default_factory=dict)


def _channel_set(ctx: _Context):
    sets = ctx.ds.channel_sets()
    if len(sets) != 1:
        raise ValueError("neural decoding needs one channel set across the decode stores; map the recordings onto "
                         "a common set when preprocessing (e.g. --channel-set 10-20).")
    return next(iter(sets.items()))


def _backbone(ctx: _Context, name: str, f: int, te: np.ndarray):
    """The pretrained backbone for fold ``f``: pretrained inside the fold, or the given
    run's (checked against the fold's test recordings and groups)."""
    kc = ctx.cfg.decode
    if name not in PRETRAINED_MODELS:
        return None
    if kc.pretrain_in_fold:
        if f not in ctx.fold_backbones:
            ctx.fold_backbones[f] = _pretrain_in_fold(ctx, te)
        return ctx.fold_backbones[f]
    return ctx.pretrained


def _pretrain_in_fold(ctx: _Context, te: np.ndarray) -> BrainModel:
    from .pretrain import fold_pretrain_config, pretrain_backbone

    cfg, dc, kc = ctx.cfg, ctx.cfg.data, ctx.cfg.decode
    train_stores = ctx.stores[: ctx.n_train_stores]
    windows = pretrain_windows(train_stores, dc.window_seconds, dc.stride_seconds, dc.max_len, cfg.pretrain.query)
    wgroups = sample_groups(train_stores, windows, kc.group_by, "decode.group_by")
    test_groups = set(ctx.groups[te])
    keep = ~np.isin(wgroups, list(test_groups))
    if not keep.any():
        raise ValueError("pretraining inside the fold: every window belongs to a test group.")
    task, result, info = pretrain_backbone(fold_pretrain_config(cfg), train_stores, windows[keep].reset_index(drop=True),
                                           quiet=True, log=None)
    ctx.log(f"    pretrained in fold on {info['train_windows']} windows of {len(set(wgroups[keep]))} training "
            f"groups ({result.steps} steps, val loss {result.best_val_loss:.4f} vs naive "
            f"{info['naive_val_loss']:.4f})")
    return task.model.eval()


def _inner_split(ctx: _Context, f: int, tr: np.ndarray):
    """The early-stopping split of training fold ``f`` (by group, or in time; recorded)."""
    s = ctx.samples
    rec = s["store"].astype(str).to_numpy() + ":" + s["id"].astype(str).to_numpy()
    h = ctx.folds.holdout(ctx.y[tr], ctx.groups[tr], recordings=rec[tr], starts=s["start"].to_numpy()[tr],
                          stops=s["stop"].to_numpy()[tr])
    ctx.inner.setdefault(f, h.describe())
    return tr[h.train], tr[h.val]


def _fraction(ctx: _Context, f: int, tr: np.ndarray) -> np.ndarray:
    """The training fold, or with ``decode.train_fraction`` < 1 a seeded subset of its
    groups (the same subset for every model of fold ``f``; stratified by class when the
    groups have one class each, e.g. one label per subject)."""
    frac = ctx.cfg.decode.train_fraction
    if frac >= 1:
        return tr
    if f not in ctx.subsets:
        from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

        groups = ctx.groups[tr]
        uniq, first = np.unique(groups, return_index=True)
        n_keep = max(2, int(round(frac * len(uniq))))
        seed = ctx.cfg.decode.seed + f
        labels = ctx.y[tr][first] if ctx.kind == "classification" else None
        one_label = labels is not None and all(len(set(ctx.y[tr][groups == g])) == 1 for g in uniq)
        if n_keep >= len(uniq):
            keep = uniq
        elif one_label and min(np.bincount(labels.astype(int))[np.unique(labels.astype(int))]) >= 2:
            keep_idx, _ = next(StratifiedShuffleSplit(1, train_size=n_keep, random_state=seed).split(uniq, labels))
            keep = uniq[keep_idx]
        else:
            keep_idx, _ = next(GroupShuffleSplit(1, train_size=n_keep, random_state=seed).split(uniq, groups=uniq))
            keep = uniq[keep_idx]
        ctx.subsets[f] = tr[np.isin(groups, keep)]
    return ctx.subsets[f]


def _train(ctx: _Context, net, train_idx, val_idx, *, train_ds=None, validate_first: bool = False,
           name: str = "", steps: int | None = None, record_kernels: bool = True):
    """Train ``net`` on ``train_idx`` (or the dataset ``train_ds`` built on it, e.g.
    crops), early-stopping on ``val_idx`` (or, with ``steps``, for exactly that many
    optimizer steps and no validation); returns ``(net holding its kept state, fit
    result)`` and records the training and the roughness of the learned kernels."""
    import copy

    import lightning as L

    kc = ctx.cfg.decode
    if steps is not None:
        kc = copy.copy(kc)
        kc.max_steps, kc.max_epochs = steps, -1
    n_out = len(ctx.classes) or 1
    cw = None
    if ctx.kind == "classification":
        counts = np.bincount(ctx.y[train_idx].astype(int), minlength=n_out)
        cw = (len(train_idx) / (n_out * np.maximum(counts, 1))).tolist()
    task = SupervisedTask(net, kind=ctx.kind, lr=kc.lr, weight_decay=kc.weight_decay, warmup_steps=kc.warmup_steps,
                          class_weights=cw)
    L.seed_everything(kc.seed, workers=True, verbose=False)
    train_ds = train_ds if train_ds is not None else ctx.ds.subset(train_idx)
    val = loader(ctx.ds.subset(val_idx), kc.batch_size, False, kc.seed) if len(val_idx) else None
    result = fit(task, loader(train_ds, kc.batch_size, True, kc.seed), val, kc, quiet=True,
                 validate_first=validate_first)
    if steps is None:
        ctx.training.setdefault(name, []).append({"epochs": result.epochs, "steps": result.steps,
                                                  "best_step": result.best_step,
                                                  "best_val_loss": result.best_val_loss})
    if record_kernels:
        _record_kernels(ctx, name, task.net)
    return task.net, result


def _record_kernels(ctx: _Context, name: str, net) -> None:
    from .plots import kernel_summary

    summary = kernel_summary(net)
    if summary is not None:
        ctx.kernel_stats.setdefault(name, []).append(summary)


def _outputs(ctx: _Context, out: np.ndarray) -> np.ndarray:
    return softmax(out, axis=1) if ctx.kind == "classification" else out[:, 0]


def _neural_fold(ctx: _Context, name: str, f: int, tr: np.ndarray, te: np.ndarray) -> np.ndarray:
    import copy

    if name == "covconv":
        return _covconv_fold(ctx, f, tr, te)
    key, chans = _channel_set(ctx)
    model_cfg = ctx.cfg.model
    if name == "attention":
        model_cfg = copy.copy(ctx.cfg.model)
        model_cfg.layer = "attention"
    pre = _backbone(ctx, name, f, te)
    net = make_classifier(model_cfg, {key: chans}, key, chans, len(ctx.classes) or 1, ctx.l_max, pretrained=pre,
                          freeze=name == "probe", pool="mean")
    if name == "probe":
        return _linear_probe(ctx, net, tr, te)
    net, _ = _train(ctx, net, *_inner_split(ctx, f, tr), name=name)
    return _outputs(ctx, predict(net, loader(ctx.ds.subset(te), 64, False)))


def covconv_readout(cfg: ExperimentConfig) -> str:
    """The covconv readout ``auto`` resolves to: the tangent space (the Riemannian
    pipelines' readout, for connectivity, motor imagery and, with prototypes, ERPs)."""
    cc = cfg.decode.covconv
    return "tangent" if cc.readout == "auto" else cc.readout


def _covconv_fold(ctx: _Context, f: int, tr: np.ndarray, te: np.ndarray) -> np.ndarray:
    """CovConv (:mod:`neuroconv.brain.covconv`). On the inner split of the training fold:
    statistics and head fitted on the inner training part, then trained end to end, the
    state before training competing in early stopping (so a model that cannot improve on
    its start keeps the baseline's solution). With ``decode.covconv.refit`` the model is
    then rebuilt on the whole training fold and trained for the number of steps that the
    inner split chose (GridSearchCV's refit): what the inner split decides is the
    training budget, and no training sample is left out of the final model."""
    from .covconv import CovConvNet
    from .data import Crops

    cc, kc = ctx.cfg.decode.covconv, ctx.cfg.decode
    _, chans = _channel_set(ctx)
    sfreq = min(ctx.ds.sfreqs())
    crop = int(round(cc.crop_seconds * sfreq)) if cc.crop_seconds > 0 else 0
    if crop and cc.erp_prototypes:
        raise ValueError("decode.covconv: crops and erp_prototypes exclude each other (prototypes are time-locked).")

    def build(idx):
        net = CovConvNet(len(chans), len(ctx.classes) or 1, filter_len=max(2, int(round(cc.filter_seconds * sfreq))),
                         n_filters=cc.n_filters, identity=cc.identity, spatial=cc.spatial or None,
                         readout=covconv_readout(ctx.cfg), erp_prototypes=cc.erp_prototypes, diagonal=cc.diagonal,
                         means=cc.means, dropout=cc.dropout, lam=cc.lam, smooth_width=cc.smooth_width,
                         kernel_lr=ctx.cfg.model.kernel_lr, kernel_init=cc.kernel_init)
        feats = net.fit_statistics(loader(ctx.ds.subset(idx), 64, False))
        C = net.init_head(feats, ctx.y[idx], C=cc.head_c, seed=kc.seed, kind=ctx.kind) if cc.init_head else None
        return net, C, (Crops(ctx.ds.subset(idx), crop) if crop else None)

    train_idx, val_idx = _inner_split(ctx, f, tr)
    net, C, data = build(train_idx)
    net, result = _train(ctx, net, train_idx, val_idx, train_ds=data, validate_first=True, name="covconv",
                         record_kernels=False)
    if cc.refit and len(val_idx):
        net, C, data = build(tr)  # C chosen again on the whole fold when head_c is null
        if result.best_step:
            net, _ = _train(ctx, net, tr, tr[:0], train_ds=data, name="covconv", steps=result.best_step,
                            record_kernels=False)
    ctx.head_c.append(C)
    _record_kernels(ctx, "covconv", net)
    if crop:
        crops = Crops(ctx.ds.subset(te), crop, cc.test_crops)
        return _outputs(ctx, crops.average(predict(net, loader(crops, 64, False))))
    return _outputs(ctx, predict(net, loader(ctx.ds.subset(te), 64, False)))


def _linear_probe(ctx: _Context, net, tr, te) -> np.ndarray:
    """Frozen pretrained features (pooled backbone output) -> standardise -> logistic
    (or ridge) regression, fitted on the training fold only."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f_tr = predict(net, loader(ctx.ds.subset(tr), 64, False), method="features")  # (n D)
    f_te = predict(net, loader(ctx.ds.subset(te), 64, False), method="features")
    y = ctx.y
    if ctx.kind == "classification":
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000,
                                                                 random_state=ctx.cfg.decode.seed))
        clf.fit(f_tr, y[tr])
        proba = np.zeros((len(te), len(ctx.classes)))
        proba[:, clf.classes_.astype(int)] = clf.predict_proba(f_te)
        return proba
    return make_pipeline(StandardScaler(), RidgeCV()).fit(f_tr, y[tr]).predict(f_te)


def _one_sfreq(ctx: _Context, name: str) -> float:
    """The data's one sampling rate, which baseline ``name`` needs (an error otherwise)."""
    sfreqs = ctx.ds.sfreqs()
    if len(sfreqs) != 1:
        raise ValueError(f"baseline {name!r} needs one sampling rate; the data have {sorted(sfreqs)}.")
    return next(iter(sfreqs))


def _braindecode_fold(ctx: _Context, name: str, f: int, tr: np.ndarray, te: np.ndarray) -> np.ndarray:
    """braindecode's EEGNet or ShallowFBCSPNet, trained by our loop: the same inner
    split, early stopping, class weights and inputs as every neural model."""
    _, chans = _channel_set(ctx)
    net = braindecode_net(name, n_chans=len(chans), n_outputs=len(ctx.classes) or 1, n_times=ctx.l_max,
                          sfreq=_one_sfreq(ctx, name))
    net, _ = _train(ctx, net, *_inner_split(ctx, f, tr), name=name)
    return _outputs(ctx, predict(net, loader(ctx.ds.subset(te), 64, False)))


def _baseline_fold(ctx: _Context, name: str, f: int, tr: np.ndarray, te: np.ndarray) -> np.ndarray:
    kc = ctx.cfg.decode
    if ctx.kind == "regression":
        raise ValueError(f"baseline {name!r} is a classifier; drop it from decode.models for regression.")
    if name in NEURAL_BASELINES:
        return _braindecode_fold(ctx, name, f, tr, te)
    needs_one = name in ("bandpower", "erp_lda", "ts_lr", "xdawn_ts", "csp_lda")
    sfreq = _one_sfreq(ctx, name) if needs_one else min(ctx.ds.sfreqs())
    options = {"site_centering": True} if name == "connectivity" and kc.site_centering else {}
    est = make_baseline(name, sfreq=sfreq, connectivity_kind=kc.connectivity_kind, seed=kc.seed, **options)
    fixed = name != "connectivity"
    Xtr, Xte = ctx.ds.subset(tr).arrays(fixed), ctx.ds.subset(te).arrays(fixed)
    site_kw = {}
    if options:
        sites = sample_groups(ctx.stores, ctx.samples, "site", "decode.site_centering (the site column)")
        site_kw = {"groups": sites[tr]}
    from mne.utils import use_log_level

    with use_log_level("warning"):  # CSP's per-class covariance messages
        est.fit(Xtr, ctx.y[tr], **site_kw)
    if options:
        site_kw = {"groups": sites[te]}
    proba = np.zeros((len(te), len(ctx.classes)))
    proba[:, est.classes_.astype(int)] = est.predict_proba(Xte, **site_kw)
    if options and getattr(est, "transductive_sites_", None):
        ctx.transductive.setdefault(name, {})[str(f)] = sorted(map(str, est.transductive_sites_))
    return proba


# --------------------------------------------------------------------------- per model
def _aggregate(fold_scores: list[dict], metric_names) -> dict:
    agg = {}
    for k in metric_names:
        vals = np.array([fs[k] for fs in fold_scores], dtype=float)
        ok = np.isfinite(vals).any()
        agg[k] = {"mean": float(np.nanmean(vals)) if ok else None, "sd": float(np.nanstd(vals)) if ok else None,
                  "folds": [None if not np.isfinite(v) else float(v) for v in vals]}
    return agg


def _evaluate_model(ctx: _Context, name: str, splits, run: Run, metric_names, by: str | None):
    """All folds of one model: (prediction rows, metrics)."""
    fold_scores, cms, pred_rows = [], [], []
    for f, (tr, te) in enumerate(splits):
        tr = _fraction(ctx, f, tr)
        if name in NEURAL_MODELS:
            out = _neural_fold(ctx, name, f, tr, te)
        else:
            out = _baseline_fold(ctx, name, f, tr, te)
        s = score(ctx.y[te], out, ctx.kind, len(ctx.classes))
        fold_scores.append(s)
        rows = ctx.samples.iloc[te][["store", "id", "start", "stop", "label", "group", "within"]].assign(
            model=name, fold=f)
        if ctx.kind == "classification":
            from sklearn.metrics import confusion_matrix

            rows = rows.assign(y_true=ctx.y[te], y_pred=out.argmax(1),
                               **{f"proba_{c}": out[:, i] for i, c in enumerate(ctx.classes)})
            cms.append(confusion_matrix(ctx.y[te], out.argmax(1), labels=list(range(len(ctx.classes)))))
        else:
            rows = rows.assign(y_true=ctx.y[te], y_pred=out)
        pred_rows.append(rows)
        ctx.log(f"  {name:<14} fold {f + 1}/{len(splits)}: " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()))
    result = _aggregate(fold_scores, metric_names)
    if ctx.training.get(name):  # per fold: steps taken, and at which step the kept state was best
        result["training"] = ctx.training[name]
    if name == "covconv" and ctx.head_c:
        result["head_c"] = list(ctx.head_c)  # per fold: the head's L2 strength (chosen inside the fold)
    if ctx.kernel_stats.get(name):
        rough = [k["roughness"] for k in ctx.kernel_stats[name]]
        result["kernels"] = {"roughness": float(np.mean(rough)), "folds": rough,
                             "zero_fraction": float(np.mean([k["zero_fraction"] for k in ctx.kernel_stats[name]]))}
    if by is not None:  # external test stores (per group) or within-subject folds (per subject)
        preds = pd.concat(pred_rows)
        per = {}
        for g, part in preds.groupby(by):
            out = part[[c for c in part.columns if c.startswith("proba_")]].to_numpy() \
                if ctx.kind == "classification" else part["y_pred"].to_numpy()
            per[str(g)] = {k: (None if not np.isfinite(v) else float(v))
                           for k, v in score(part["y_true"].to_numpy(), out, ctx.kind, len(ctx.classes)).items()}
            per[str(g)]["n"] = int(len(part))
        result["by_" + ("group" if by == "group" else "within")] = per
    if cms:
        from .plots import plot_confusion

        plot_confusion(np.sum(cms, 0), ctx.classes, run / "plots" / f"confusion_{name}.png",
                       title=f"{name}: all folds")
    return pred_rows, result


# --------------------------------------------------------------------------- models to run
def _models(cfg: ExperimentConfig, kind: str, modalities: set, log) -> list[str]:
    kc = cfg.decode
    from .baselines import BASELINE_MODALITY

    models = list(kc.models)
    if kc.compare:
        neural = [m for m in NEURAL_MODELS if m not in PRETRAINED_MODELS or kc.pretrained or kc.pretrain_in_fold
                  or _newest_pretrain(cfg) is not None]
        base = [b for b in BASELINES if BASELINE_MODALITY.get(b) in modalities and kind == "classification"]
        models = list(dict.fromkeys(neural + [m for m in models if m not in neural] + base))
    unknown = [m for m in models if m not in NEURAL_MODELS + BASELINES]
    if unknown:
        raise ValueError(f"decode.models: unknown {unknown}; choose from {list(NEURAL_MODELS + BASELINES)}.")
    return models


def _newest_pretrain(cfg: ExperimentConfig):
    try:
        return Run.find(cfg.pretrain.out, "", f"{cfg.name}-pretrain", require="model.safetensors").path
    except FileNotFoundError:
        return None


def _resolve_pretrained(cfg: ExperimentConfig, models, log):
    """``(BrainModel, run folder, recordings record)`` or Nones when no model needs one."""
    kc = cfg.decode
    if not any(m in PRETRAINED_MODELS for m in models) or kc.pretrain_in_fold:
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


# --------------------------------------------------------------------------- run
def run_decode(cfg: ExperimentConfig, log=print) -> Path:
    """Decoding as configured; returns the run folder. Raises :class:`DecodeFailed`
    (after writing every result) when a model failed."""
    kc, dc = cfg.decode, cfg.data
    if not 0 < kc.train_fraction <= 1:
        raise ValueError(f"decode.train_fraction must be in (0, 1]; got {kc.train_fraction}.")
    t0 = time.time()
    train_stores = open_stores(list(dc.stores) + prepare_sources(dc.sources, log=log))
    samples = decode_samples(train_stores, kc, dc.max_len)
    stores = list(train_stores)
    external = bool(kc.test_stores)
    if external:
        test_stores = open_stores(kc.test_stores)
        test = decode_samples(test_stores, kc, dc.max_len)
        test = test.assign(store=test["store"] + len(train_stores))
        stores += test_stores
        samples = pd.concat([samples, test], ignore_index=True)
        is_test = np.r_[np.zeros(len(samples) - len(test), bool), np.ones(len(test), bool)]
    kind, reason = infer_task(samples["label"] if not external else samples["label"][~is_test], kc.task)
    log(f"decode: {kind} ({reason})")
    if kind == "classification":
        train_labels = samples["label"].astype(str) if not external else samples["label"][~is_test].astype(str)
        classes = sorted(train_labels.unique())
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
    samples = samples.assign(y=y, group=groups, within=within)
    ds = StoreWindows(stores, samples, dc.normalize)
    modalities = {str(m) for st in stores for m in st.manifest.get("modality", pd.Series(dtype=str)).dropna()}
    models = _models(cfg, kind, modalities, log)
    folds = Folds(cv="none" if external else kc.cv, n_splits=kc.n_splits, seed=kc.seed,
                  stratify=kind == "classification", val_fraction=dc.val_fraction)
    if external:
        if kc.cv != "none":
            log(f"decode.test_stores given: training once on all of the data (decode.cv {kc.cv} is not used)")
        splits, skipped = [(np.flatnonzero(~is_test), np.flatnonzero(is_test))], []
    else:
        if kc.cv == "none":
            raise ValueError("decode.cv none trains once on everything and needs decode.test_stores to evaluate on.")
        splits, skipped = _splits(folds, y, groups, within, log)
    pretrained, pre_run, record = _resolve_pretrained(cfg, models, log)
    if any(m in PRETRAINED_MODELS for m in models) and pretrained is None and not kc.pretrain_in_fold:
        log("note: finetune/probe need a pretrained backbone (decode.pretrained, decode.pretrain_in_fold true, or a "
            "`neuroconv pretrain` run of this config); skipping them.")
        models = [m for m in models if m not in PRETRAINED_MODELS]
    ctx = _Context(cfg, stores, samples, ds, y, groups, kind, classes, folds,
                   int((samples["stop"] - samples["start"]).max()), log, pretrained, record,
                   n_train_stores=len(train_stores))
    if pretrained is not None:
        _check_overlap(ctx, splits, pre_run)

    run = Run.create(kc.out, kc.name, f"{cfg.name}-decode")
    run.write_config(cfg)
    log(f"decode: {len(samples)} samples, {len(classes) or 'continuous'} classes {classes}, {len(splits)} fold(s) "
        f"({'external test stores' if external else f'{kc.cv} by {kc.group_by}'}), models {models}; run folder "
        f"{run.path}")

    results, pred_rows, failed = {}, [], {}
    metric_names = METRICS_CLF if kind == "classification" else METRICS_REG
    for name in models:
        try:
            rows, agg = _evaluate_model(ctx, name, splits, run, metric_names,
                                        "group" if external else ("within" if kc.within else None))
        except Exception as e:  # reported, the others go on, and the command exits non-zero
            log(f"  {name}: FAILED: {type(e).__name__}: {e}")
            failed[name] = f"{type(e).__name__}: {e}"
            results[name] = {k: {"mean": None, "sd": None, "folds": []} for k in metric_names}
            results[name]["error"] = failed[name]
            results[name]["traceback"] = traceback.format_exc()
            continue
        results[name] = agg
        pred_rows.extend(rows)
    if pred_rows:
        atomic_write_csv(run / "predictions.csv", pd.concat(pred_rows, ignore_index=True))
    inner_by = sorted({v["by"] for v in ctx.inner.values()})
    if "time" in inner_by:
        log("note: early stopping held out the end of each training recording in time in some folds (too few "
            "training groups for a group split); see metrics.json inner_splits")
    paired = _paired(results, pd.concat(pred_rows, ignore_index=True) if pred_rows else None, kind,
                     metric_names)
    metrics = {
        "task": kind, "task_reason": reason, "target": kc.target, "classes": classes,
        "protocol": {"cv": "external test stores" if external else kc.cv, "group_by": kc.group_by,
                     "within": kc.within or None, "skipped_within": skipped,
                     "train_fraction": kc.train_fraction,
                     "n_folds": len(splits), "test_stores": list(kc.test_stores),
                     "inner_split": inner_by, "normalize": dc.normalize,
                     "pretrained": str(pre_run) if pre_run else None,
                     "pretrain_in_fold": kc.pretrain_in_fold, "transductive": kc.transductive},
        "inner_splits": {str(f): v for f, v in ctx.inner.items()},
        "pretraining_overlap": ctx.overlap or None,
        "site_centering": {"enabled": kc.site_centering, "centred_on_their_own_test_samples": ctx.transductive}
        if kc.site_centering else None,
        "n_samples": len(samples), "seconds": round(time.time() - t0, 1), "models": results,
        "paired": paired,
        "failed": sorted(failed),
    }
    run.write_json("metrics.json", metrics)
    log(format_table(results, metric_names))
    if failed:
        raise DecodeFailed(run.path, failed)
    return run.path


def _paired(results: dict, preds, kind: str, metric_names) -> list[dict]:
    """Each neural model against each baseline, on the same folds and samples: fold-paired
    differences of every metric (Wilcoxon signed-rank) and, for classification, the exact
    McNemar test on the pooled per-sample correctness."""
    from neuroconv.engine.compare import fold_paired, mcnemar

    ok = [m for m in results if "error" not in results[m]]
    neural = [m for m in ok if m in NEURAL_MODELS]
    base = [m for m in ok if m not in NEURAL_MODELS]
    out = []
    for a in neural:
        for b in base:
            row = {"first": a, "second": b,
                   **{k: fold_paired(results[a][k]["folds"], results[b][k]["folds"]) for k in metric_names}}
            if kind == "classification" and preds is not None:
                keys = ["fold", "store", "id", "start"]
                pa = preds[preds.model == a].sort_values(keys)
                pb = preds[preds.model == b].sort_values(keys)
                row["mcnemar"] = mcnemar((pa.y_true == pa.y_pred).to_numpy(), (pb.y_true == pb.y_pred).to_numpy())
            out.append(row)
    return out


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


def _check_overlap(ctx: _Context, splits, pre_run) -> None:
    """Refuse (or, with decode.transductive, record) a pretrained backbone that saw test data."""
    from .data import recording_table

    kc = ctx.cfg.decode
    if ctx.record is None:
        ctx.overlap = {"unchecked": f"{pre_run} has no record of its pretraining recordings"}
        ctx.log(f"warning: {ctx.overlap['unchecked']}; --transductive accepted it")
        return
    for f, (_, te) in enumerate(splits):
        seen = check_pretraining_overlap(ctx.record, recording_table(ctx.stores, ctx.samples.iloc[te]), kc.group_by)
        if seen["recordings"] or seen["groups"]:
            ctx.overlap[str(f)] = seen
    if ctx.overlap and not kc.transductive:
        f, seen = next(iter(ctx.overlap.items()))
        what = seen["groups"][:3] or seen["recordings"][:3]
        raise ValueError(
            f"the pretrained backbone in {pre_run} saw test data of {len(ctx.overlap)} fold(s): fold {f} tests "
            f"{len(seen['recordings'])} recording(s) and {len(seen['groups'])} {kc.group_by} group(s) that "
            f"pretraining saw (e.g. {', '.join(map(str, what))}). Pretrain on other groups (other subjects, sites or "
            "data sets; see its recordings.csv), or set decode.pretrain_in_fold true to pretrain inside each fold, "
            "or pass --transductive to accept the overlap (it is recorded in metrics.json)."
        )
    if ctx.overlap:
        ctx.log(f"warning: transductive setting: the pretrained backbone saw test data of {len(ctx.overlap)} fold(s) "
                "(recorded in metrics.json pretraining_overlap)")


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
