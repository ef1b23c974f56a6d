"""``neuroconv pretrain``: self-supervised pretraining on sequence stores."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .config import ExperimentConfig, to_dict
from .data import ChannelSetBatchSampler, StoreWindows, collate, open_stores, pretrain_windows, split_windows
from .models import backbone_config
from .plots import plot_kernels, plot_losses
from .runner import export_model, find_run_dir, make_trainer, new_run_dir, write_json, write_yaml
from .sources import prepare_sources
from .tasks import NonFiniteLossError, PretrainTask

__all__ = ["run_pretrain", "loaders"]


def loaders(train_ds, val_ds, batch_size: int, num_workers: int, seed: int):
    def make(ds, shuffle):
        sampler = ChannelSetBatchSampler(ds.keys, batch_size, shuffle=shuffle, seed=seed)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
                          persistent_workers=num_workers > 0)

    return make(train_ds, True), make(val_ds, False)


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


def run_pretrain(cfg: ExperimentConfig, log=print) -> Path:
    """Run pretraining as configured; return the run folder."""
    import lightning as L

    pc, dc = cfg.pretrain, cfg.data
    t0 = time.time()
    L.seed_everything(pc.seed, workers=True, verbose=False)
    stores = open_stores(list(dc.stores) + prepare_sources(dc.sources, log=log))
    windows = pretrain_windows(stores, dc.window_seconds, dc.stride_seconds, dc.max_len)
    train_w, val_w = split_windows(windows, stores, dc.split_by, dc.val_fraction, pc.seed)
    train_ds = StoreWindows(stores, train_w, dc.normalize)
    val_ds = StoreWindows(stores, val_w, dc.normalize)
    longest = int((windows["stop"] - windows["start"]).max())
    # kernels cover data.max_len steps, so the backbone can later read whole recordings
    # (e.g. when decoding) that are longer than the pretraining windows
    l_max = max(int(dc.max_len), longest)
    log(f"data: {len(stores)} store(s), {len(train_ds)} training and {len(val_ds)} validation "
        f"windows of up to {longest} steps (split by {dc.split_by}); model l_max {l_max}")

    if pc.resume:
        run_dir = find_run_dir(pc.out, pc.name, f"{cfg.name}-pretrain")
        ckpt_path = str(run_dir / "checkpoints" / "last.ckpt")
        log(f"resuming {run_dir} from {ckpt_path}")
    else:
        run_dir = new_run_dir(pc.out, pc.name, f"{cfg.name}-pretrain")
        ckpt_path = None
    write_yaml(run_dir / "config.yaml", to_dict(cfg))

    channel_sets = {**train_ds.channel_sets(), **val_ds.channel_sets()}
    model_config = dict(backbone=backbone_config(cfg.model, l_max), channel_sets=channel_sets,
                        time_embedding=cfg.model.time_embedding)
    task = PretrainTask(model_config, objective=pc.objective, loss=pc.loss, mask_ratio=pc.mask_ratio,
                        span_seconds=pc.span_seconds, lr=pc.lr, weight_decay=pc.weight_decay,
                        warmup_steps=pc.warmup_steps)
    train_dl, val_dl = loaders(train_ds, val_ds, dc.batch_size, dc.num_workers, pc.seed)
    trainer = make_trainer(pc, run_dir)
    status = "completed"
    try:
        trainer.fit(task, train_dl, val_dl, ckpt_path=ckpt_path, weights_only=True)
    except NonFiniteLossError as e:
        status = f"stopped: {e}"
        log(f"error: {e}")
    if not trainer.is_global_zero:  # under DDP only rank 0 writes the run folder
        return run_dir
    ckpt_cb = trainer.checkpoint_callback
    best = Path(ckpt_cb.best_model_path) if ckpt_cb and ckpt_cb.best_model_path else None
    if best is not None and best.is_file():
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        task.load_state_dict(state)
    elif status != "completed":
        write_json(run_dir / "metrics.json", {"status": status})
        raise NonFiniteLossError(status)
    task.model.config["objective"] = pc.objective
    export_model(task.model, run_dir, extra={"pretrain": {"objective": pc.objective, "loss": pc.loss}})
    plot_losses(run_dir / "logs", run_dir / "plots" / "loss.png")
    plot_kernels(task.model, run_dir / "plots" / "kernels.png")
    epochs, steps = trainer.current_epoch, trainer.global_step
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():  # the worker's counters (a spawned DDP run returns none of them)
        meta = torch.load(last, map_location="cpu", weights_only=True)
        epochs, steps = max(epochs, meta["epoch"] + 1), max(steps, meta["global_step"])
    metrics = {
        "status": status,
        "best_val_loss": float(ckpt_cb.best_model_score) if ckpt_cb and ckpt_cb.best_model_score is not None else None,
        "naive_val_loss": naive_val_loss(val_dl, pc.objective, pc.loss),
        "epochs": epochs,
        "steps": steps,
        "train_windows": len(train_ds),
        "val_windows": len(val_ds),
        "seconds": round(time.time() - t0, 1),
        "stores": [str(s.path) for s in stores],
    }
    write_json(run_dir / "metrics.json", metrics)
    log(json.dumps(metrics, indent=1))
    return run_dir
