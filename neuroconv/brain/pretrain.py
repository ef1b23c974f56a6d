"""``neuroconv pretrain``: self-supervised pretraining on sequence stores.

The run folder records what the model saw: ``recordings.csv`` lists every recording
whose windows reached training or validation (store, id, subject, session, run, site,
dataset, task, split), so that ``neuroconv decode`` can refuse a backbone that saw a
test group. :func:`pretrain_backbone` is the same training without a run folder, for
pretraining inside each fold of ``decode``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neuroconv.engine.folds import Folds
from neuroconv.engine.runner import Run, export_model, fit

from .config import ExperimentConfig
from .data import StoreWindows, loader, open_stores, pretrain_windows, recording_table, sample_groups
from .models import backbone_config
from .plots import plot_kernels, plot_losses
from .sources import prepare_sources
from .tasks import PretrainTask

__all__ = ["run_pretrain", "pretrain_backbone", "naive_val_loss", "RECORD_FILE"]

#: the file in a pretrain run folder that lists the recordings pretraining saw
RECORD_FILE = "recordings.csv"


@torch.no_grad()
def naive_val_loss(val_dl, objective: str, loss: str) -> float:
    """The validation loss of a model that learned nothing useful: "repeat the last step"
    for next-step prediction, "predict the recording mean" (zero after normalisation) for
    masked reconstruction. A trained model should beat it."""
    total, count = 0.0, 0.0
    for batch in val_dl:
        x, m = batch["x"], batch["mask"]
        if objective == "next_step":
            err, valid = x[:, 1:] - x[:, :-1], m[:, 1:] & m[:, :-1]
        else:
            err, valid = x, m
        err = err.abs() if loss == "l1" else err**2
        total += float((err * valid[..., None]).sum())
        count += float(valid.sum()) * x.shape[-1]
    return total / max(count, 1.0)


def _split(stores, windows, cfg: ExperimentConfig):
    """Train/validation windows, by ``data.split_by`` group (or in time, see Folds)."""
    dc = cfg.data
    groups = sample_groups(stores, windows, dc.split_by, "data.split_by")
    folds = Folds(cv="none", val_fraction=dc.val_fraction, seed=cfg.pretrain.seed, stratify=False)
    rec = windows["store"].astype(str).to_numpy() + ":" + windows["id"].astype(str).to_numpy()
    return folds.holdout(np.zeros(len(windows)), groups, recordings=rec, starts=windows["start"].to_numpy(),
                         stops=windows["stop"].to_numpy())


def pretrain_backbone(cfg: ExperimentConfig, stores, windows: pd.DataFrame, *, run_dir=None, quiet=False,
                      resume_from=None, log=print):
    """Pretrain a :class:`~neuroconv.brain.models.BrainModel` on the windows
    ``windows`` of ``stores`` with ``cfg.pretrain`` settings; returns
    ``(task, fit_result, info)`` with the task holding its best validation state."""
    import lightning as L

    pc, dc = cfg.pretrain, cfg.data
    L.seed_everything(pc.seed, workers=True, verbose=False)
    split = _split(stores, windows, cfg)
    train_ds = StoreWindows(stores, windows.iloc[split.train], dc.normalize)
    val_ds = StoreWindows(stores, windows.iloc[split.val], dc.normalize)
    longest = int((windows["stop"] - windows["start"]).max())
    # kernels cover data.max_len steps, so the backbone can later read whole recordings
    # (e.g. when decoding) that are longer than the pretraining windows
    l_max = max(int(dc.max_len), longest)
    if log:
        log(f"data: {len(stores)} store(s), {len(train_ds)} training and {len(val_ds)} validation windows of up "
            f"to {longest} steps (split by {dc.split_by}, {split.by}: {split.note}); model l_max {l_max}")
    channel_sets = {**train_ds.channel_sets(), **val_ds.channel_sets()}
    model_config = dict(backbone=backbone_config(cfg.model, l_max), channel_sets=channel_sets,
                        time_embedding=cfg.model.time_embedding, objective=pc.objective)
    task = PretrainTask(model_config, objective=pc.objective, loss=pc.loss, mask_ratio=pc.mask_ratio,
                        span_seconds=pc.span_seconds, lr=pc.lr, weight_decay=pc.weight_decay,
                        warmup_steps=pc.warmup_steps)
    train_dl = loader(train_ds, pc.batch_size, True, pc.seed, pc.num_workers)
    val_dl = loader(val_ds, pc.batch_size, False, pc.seed, pc.num_workers)
    result = fit(task, train_dl, val_dl, pc, run_dir=run_dir, quiet=quiet, ckpt_path=resume_from, log=log)
    info = {"split": split.describe(), "train_windows": len(train_ds), "val_windows": len(val_ds),
            "naive_val_loss": naive_val_loss(val_dl, pc.objective, pc.loss),
            "recordings": pd.concat([
                recording_table(stores, windows.iloc[split.train]).assign(split="train"),
                recording_table(stores, windows.iloc[split.val]).assign(split="val")], ignore_index=True)}
    return task, result, info


def run_pretrain(cfg: ExperimentConfig, log=print) -> Path:
    """Run pretraining as configured; returns the run folder."""
    pc, dc = cfg.pretrain, cfg.data
    t0 = time.time()
    stores = open_stores(list(dc.stores) + prepare_sources(dc.sources, log=log, data_dir=dc.data_dir))
    windows = pretrain_windows(stores, dc.window_seconds, dc.stride_seconds, dc.max_len, pc.query)
    if pc.resume:
        run = Run.find(pc.out, pc.name, f"{cfg.name}-pretrain")
        ckpt = str(run / "checkpoints" / "last.ckpt")
        log(f"resuming {run.path} from {ckpt}")
    else:
        run, ckpt = Run.create(pc.out, pc.name, f"{cfg.name}-pretrain"), None
    run.write_config(cfg)
    task, result, info = pretrain_backbone(cfg, stores, windows, run_dir=run.path, resume_from=ckpt, log=log)
    if not result.trainer.is_global_zero:  # under DDP only rank 0 writes the run folder
        return run.path
    from neuroconv.io import atomic_write_csv

    atomic_write_csv(run / RECORD_FILE, info.pop("recordings"))
    export_model(task.model, run.path, extra={"pretrain": {"objective": pc.objective, "loss": pc.loss}})
    plot_losses(run / "logs", run / "plots" / "loss.png")
    kernel_stats = plot_kernels(task.model, run / "plots" / "kernels.png")
    metrics = {
        "status": result.status,
        "best_val_loss": result.best_val_loss,
        **info,
        "epochs": result.epochs,
        "steps": result.steps,
        "seconds": round(time.time() - t0, 1),
        "stores": [str(s.path) for s in stores],
        "kernels": kernel_stats,
    }
    run.write_json("metrics.json", metrics)
    log("\n".join(f"  {k}: {v}" for k, v in metrics.items() if k not in ("kernels", "split", "stores")))
    return run.path


def fold_pretrain_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config of pretraining inside a fold: the pretrain section with the
    ``decode.fold_pretrain`` budget, quiet."""
    fc = copy.deepcopy(cfg)
    b = cfg.decode.fold_pretrain
    fc.pretrain.max_epochs, fc.pretrain.max_steps, fc.pretrain.max_time = b.max_epochs, b.max_steps, b.max_time
    fc.pretrain.progress = "none"
    return fc
