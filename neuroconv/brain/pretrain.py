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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neuroconv.engine.folds import Folds
from neuroconv.engine.runner import Run, export_model, fit
from neuroconv.engine.tasks import TrainTask
from neuroconv.model import masked_mean

from .config import ExperimentConfig
from .data import StoreWindows, loader, open_stores, pretrain_windows, sample_groups
from .models import BrainModel, backbone_config
from .overlap import recording_table
from .plots import plot_kernels, plot_losses
from .sources import prepare_sources

__all__ = ["run_pretrain", "pretrain_backbone", "naive_val_loss", "PretrainTask", "span_mask", "RECORD_FILE",
           "FoldBackbones", "fold_backbones", "newest_pretrain"]

#: the file in a pretrain run folder that lists the recordings pretraining saw
RECORD_FILE = "recordings.csv"


def span_mask(valid: torch.Tensor, ratio: float, span: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random spans of ``span`` steps covering about ``ratio`` of each sequence's valid steps.

    ``valid (B, L)`` bool -> ``hide (B, L)`` bool, a subset of ``valid``; at least one
    step per sequence is hidden.
    """
    B, L = valid.shape
    span = max(1, min(int(span), L))
    n_starts = max(1, round(ratio * L / span))
    starts = torch.randint(0, max(L - span + 1, 1), (B, n_starts), generator=generator,
                           device="cpu").to(valid.device)
    offsets = torch.arange(span, device=valid.device)
    idx = (starts[..., None] + offsets).reshape(B, -1).clamp_max(L - 1)
    hide = torch.zeros(B, L, dtype=torch.bool, device=valid.device)
    hide.scatter_(1, idx, True)
    hide &= valid
    empty = ~hide.any(1)
    if empty.any():  # short valid part: hide its first step
        first = valid.long().argmax(1)
        hide[empty, first[empty]] = True
    return hide


class PretrainTask(TrainTask):
    """Self-supervised pretraining of a :class:`BrainModel`.

    ``objective="next_step"``: a causal backbone predicts ``x[t+1]`` from ``x[:t+1]``.
    ``objective="masked"``: spans covering ``mask_ratio`` of the steps are replaced by a
    learned mask token at the input, and reconstructed. Loss ``l1`` or ``mse`` over the
    predicted (valid) steps and channels.
    """

    def __init__(self, model_config: dict, objective: str = "next_step", loss: str = "mse",
                 mask_ratio: float = 0.15, span_seconds: float = 0.5, lr: float = 2e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 50):
        super().__init__()
        if objective not in ("next_step", "masked"):
            raise ValueError(f"`objective` must be 'next_step' or 'masked'; got {objective!r}.")
        if loss not in ("l1", "mse"):
            raise ValueError(f"`loss` must be 'l1' or 'mse'; got {loss!r}.")
        bidir = model_config["backbone"].get("layer_args", {}).get("bidirectional", False)
        if objective == "next_step" and bidir:
            raise ValueError(
                "objective='next_step' needs a causal backbone, but model.bidirectional is true "
                "(the model would see the step it predicts). Set model.bidirectional false, or "
                "use objective 'masked'."
            )
        self.save_hyperparameters()
        self.model = BrainModel.from_config(model_config)

    def _pointwise(self, pred, target):
        return (pred - target).abs() if self.hparams.loss == "l1" else (pred - target) ** 2

    def compute_loss(self, batch: dict) -> torch.Tensor:
        x, mask, sfreq, key = batch["x"], batch["mask"], batch["sfreq"], batch["key"]
        if self.hparams.objective == "next_step":
            h = self.model.features(x[:, :-1], key, sfreq, mask[:, :-1])  # (B L-1 D)
            pred = self.model.reconstruct(h, key)  # (B L-1 C)
            return masked_mean(self._pointwise(pred, x[:, 1:]), mask[:, 1:] & mask[:, :-1])
        span = max(1, int(round(self.hparams.span_seconds * float(sfreq.min()))))
        hide = span_mask(mask, self.hparams.mask_ratio, span)
        h = self.model.features(x, key, sfreq, mask, hide=hide)
        pred = self.model.reconstruct(h, key)
        return masked_mean(self._pointwise(pred, x), hide)

    def training_step(self, batch, batch_idx):
        loss = self.compute_loss(batch)
        self.check_finite(loss)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["x"].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self.compute_loss(batch)
        self.log("val_loss", loss, prog_bar=True, batch_size=batch["x"].shape[0], sync_dist=True)
        return loss


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


# --------------------------------------------------------------------------- decode's backbones
def newest_pretrain(cfg) -> Path | None:
    """The newest pretrain run folder of this experiment that exported a model, or None."""
    try:
        return Run.find(cfg.pretrain.out, "", f"{cfg.name}-pretrain", require="model.safetensors").path
    except FileNotFoundError:
        return None


@dataclass
class FoldBackbones:
    """The pretrained backbone of each fold of a decode run: the model of one pretrain
    run folder (``run``, with its ``record`` of what it saw) for every fold, or, with
    in-fold pretraining (``in_fold``: the fold pretraining's config), one pretrained on
    the fold's training groups (once per fold, shared by finetune and probe)."""

    run: Path | None = None
    model: object = None
    record: pd.DataFrame | None = None
    in_fold: object = None
    stores: list = field(default_factory=list)
    groups: np.ndarray | None = None
    log: object = print
    _cache: dict = field(default_factory=dict)

    def get(self, fold):
        """The backbone of ``fold`` (a :class:`~neuroconv.brain.design.Fold`), or None."""
        if self.in_fold is None:
            return self.model
        if fold.index not in self._cache:
            self._cache[fold.index] = self._pretrain(set(self.groups[fold.test]))
        return self._cache[fold.index]

    def _pretrain(self, test_groups: set):
        cfg, dc, kc = self.in_fold, self.in_fold.data, self.in_fold.decode
        windows = pretrain_windows(self.stores, dc.window_seconds, dc.stride_seconds, dc.max_len, cfg.pretrain.query)
        wgroups = sample_groups(self.stores, windows, kc.group_by, "decode.group_by")
        keep = ~np.isin(wgroups, list(test_groups))
        if not keep.any():
            raise ValueError("pretraining inside the fold: every window belongs to a test group.")
        task, result, info = pretrain_backbone(cfg, self.stores, windows[keep].reset_index(drop=True), quiet=True,
                                               log=None)
        self.log(f"    pretrained in fold on {info['train_windows']} windows of {len(set(wgroups[keep]))} training "
                 f"groups ({result.steps} steps, val loss {result.best_val_loss:.4f} vs naive "
                 f"{info['naive_val_loss']:.4f})")
        return task.model.eval()


def fold_backbones(cfg, models: list, train_stores, groups, log=print) -> tuple[FoldBackbones, list]:
    """The backbone source of a decode run, and the models that can run with it (those
    that need a backbone are dropped, with a note, when there is none). An explicit
    ``decode.pretrained`` wins over the config's in-fold pretraining."""
    from . import zoo
    from .models import load_pretrained

    kc = cfg.decode
    if not any(zoo.ZOO[m].traits.needs_backbone for m in models):
        return FoldBackbones(log=log), models
    if kc.pretrained and kc.pretrain_in_fold:
        # an explicit backbone wins over the config's in-fold pretraining (muse_p300 and
        # muse_n170 pretrain in fold by default); the overlap check still applies
        log(f"note: decode.pretrained {kc.pretrained} serves every fold; decode.pretrain_in_fold is not used.")
    elif kc.pretrain_in_fold:
        return FoldBackbones(in_fold=fold_pretrain_config(cfg), stores=list(train_stores), groups=groups,
                             log=log), models
    run = Path(kc.pretrained) if kc.pretrained else newest_pretrain(cfg)
    if run is None:
        log("note: finetune/probe need a pretrained backbone (decode.pretrained, decode.pretrain_in_fold true, or a "
            "`neuroconv pretrain` run of this config); skipping them.")
        return FoldBackbones(log=log), [m for m in models if not zoo.ZOO[m].traits.needs_backbone]
    if not kc.pretrained:
        log(f"using the newest pretrain run of config {cfg.name!r}: {run}")
    record = run / RECORD_FILE
    if not record.is_file():
        if not kc.transductive:
            raise ValueError(
                f"{run} has no {RECORD_FILE}, so decode cannot check that its pretraining never saw a test group. "
                "Pretrain again with this version of neuroconv, or pass --transductive to accept the risk (it is "
                "recorded in metrics.json)."
            )
        return FoldBackbones(run=run, model=load_pretrained(run), log=log), models
    return FoldBackbones(run=run, model=load_pretrained(run), record=pd.read_csv(record, dtype=str), log=log), models
