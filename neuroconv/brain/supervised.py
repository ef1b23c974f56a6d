"""Supervised fitting shared by ``neuroconv decode``, the scikit-learn estimators and
the LRA suite: one Lightning loop that keeps the best validation state in memory."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .config import TrainerConfig
from .data import ChannelSetBatchSampler, collate
from .runner import make_trainer, quiet_lightning
from .tasks import SupervisedTask

__all__ = ["ArrayWindows", "fit_supervised", "predict", "BestState"]


class ArrayWindows(Dataset):
    """In-memory ``(n, channels, times)`` arrays in the batch format of
    :class:`neuroconv.brain.data.StoreWindows` (one channel set, ``key``)."""

    def __init__(self, X: np.ndarray, y=None, sfreq: float = 1.0, key: str = "input"):
        self.X = torch.as_tensor(np.asarray(X, dtype=np.float32)).transpose(1, 2).contiguous()  # (n T C)
        self.y = None if y is None else np.asarray(y)
        self.sfreq, self.key = float(sfreq), key
        self.keys = [key] * len(self.X)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        y = self.y[i] if self.y is not None else float("nan")
        return {"x": self.X[i], "key": self.key, "sfreq": self.sfreq, "y": y, "index": i}


def _callback_base():
    from lightning.pytorch.callbacks import Callback

    return Callback


class BestState(_callback_base()):
    """Keeps a CPU copy of the module's state at its lowest ``val_loss``."""

    def __init__(self):
        self.best = float("inf")
        self.state = None

    def on_validation_end(self, trainer, pl_module):
        v = trainer.callback_metrics.get("val_loss")
        if v is not None and torch.isfinite(v) and float(v) < self.best:
            self.best = float(v)
            self.state = {k: t.detach().cpu().clone() for k, t in pl_module.state_dict().items()}


def _loader(ds, batch_size, shuffle, seed):
    return DataLoader(ds, batch_sampler=ChannelSetBatchSampler(ds.keys, batch_size, shuffle, seed),
                      collate_fn=collate)


def fit_supervised(net: torch.nn.Module, train_ds, val_ds, tc: TrainerConfig, *, kind: str = "classification",
                   batch_size: int = 32, class_weights=None, quiet: bool = True, run_dir=None):
    """Train ``net`` (``net(batch) -> outputs``) on ``train_ds``; early-stop on ``val_ds``
    (when given) and restore the best validation state. Returns ``(net, info)``."""
    import lightning as L

    L.seed_everything(tc.seed, workers=True, verbose=False)
    net.train()  # e.g. a pretrained model loaded in eval mode
    task = SupervisedTask(net, kind=kind, lr=tc.lr,
                          weight_decay=tc.weight_decay, warmup_steps=tc.warmup_steps,
                          class_weights=list(map(float, class_weights)) if class_weights is not None else None)
    keeper = BestState()
    tc_run = copy.copy(tc)
    if val_ds is None:
        tc_run.patience = 0
    with quiet_lightning(quiet):
        trainer = make_trainer(tc_run, run_dir, quiet=quiet,
                               extra_callbacks=[keeper] if val_ds is not None else [])
        trainer.fit(task, _loader(train_ds, batch_size, True, tc.seed),
                    _loader(val_ds, batch_size, False, tc.seed) if val_ds is not None else None)
    if keeper.state is not None:
        task.load_state_dict(keeper.state)
    info = {"epochs": trainer.current_epoch, "steps": trainer.global_step,
            "best_val_loss": keeper.best if keeper.state is not None else None}
    return task.net.eval(), info


@torch.no_grad()
def predict(net: torch.nn.Module, ds, batch_size: int = 64, method: str = "forward") -> np.ndarray:
    """Outputs of ``net`` (or of its ``method``, e.g. ``"features"``) for every item of
    ``ds``, in dataset order."""
    net.eval()
    fn = getattr(net, method) if method != "forward" else net
    outs = [None] * len(ds)
    device = next(net.parameters()).device
    for batch in _loader(ds, batch_size, False, 0):
        for k in ("x", "mask", "sfreq"):
            batch[k] = batch[k].to(device)
        out = fn(batch).float().cpu().numpy()
        for i, o in zip(batch["index"].tolist(), out):
            outs[i] = o
    return np.stack(outs)
