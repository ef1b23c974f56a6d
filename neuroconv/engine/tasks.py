"""Lightning modules of the engine: the optimizer and NaN guard every job shares, and
supervised training of any ``net(batch) -> outputs``.

Every task builds AdamW over :func:`neuroconv.param_groups` (kernel parameters get their
own learning rate and no weight decay; ``D`` skips, biases and norms no weight decay)
with a linear warm-up then a cosine decay over the run, and stops on a non-finite loss
with :class:`NonFiniteLossError` before a checkpoint of the broken state is written.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F

from neuroconv.optim import param_groups

__all__ = ["NonFiniteLossError", "TrainTask", "SupervisedTask"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "constant")


class TrainTask(L.LightningModule):
    """Base of every task: ``configure_optimizers`` from ``hparams.lr``,
    ``hparams.weight_decay``, ``hparams.warmup_steps`` and, when given,
    ``hparams.optimizer`` (``"adamw"``, the default, or ``"adam"``) and
    ``hparams.schedule`` (``"cosine"`` decay over the run, the default, or
    ``"constant"``), and :meth:`check_finite`."""

    # The optimizer settings of tagged parameters (``p._optim``, see
    # neuroconv.kernel_gen.register_optim) travel with the task when it is pickled:
    # torch.multiprocessing's pickler (ddp_spawn) rebuilds parameters without their
    # attributes, and the spawned processes would put kernels in the default groups.
    def __getstate__(self):
        state = super().__getstate__()
        state["_param_optim"] = {n: dict(p._optim) for n, p in self.named_parameters() if hasattr(p, "_optim")}
        return state

    def __setstate__(self, state):
        tags = state.pop("_param_optim", {})
        super().__setstate__(state)
        for name, p in self.named_parameters():
            if name in tags and not hasattr(p, "_optim"):
                p._optim = tags[name]

    def configure_optimizers(self):
        hp = self.hparams
        name, schedule = hp.get("optimizer", "adamw"), hp.get("schedule", "cosine")
        if name not in OPTIMIZERS:
            raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}; got {name!r}.")
        if schedule not in SCHEDULES:
            raise ValueError(f"`schedule` must be one of {SCHEDULES}; got {schedule!r}.")
        opt = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[name](param_groups(self, hp.lr, hp.weight_decay))
        total = max(int(self.trainer.estimated_stepping_batches), 1) if self._trainer else 1000
        warm = min(int(hp.warmup_steps), max(total - 1, 0))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / (warm + 1)
            if schedule == "constant":
                return 1.0
            progress = (step - warm) / max(total - warm, 1)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def check_finite(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {self.global_step}. The run "
                "stopped; the last good checkpoint is kept in the run folder. Lower the "
                "learning rate (e.g. --pretrain.lr / --decode.lr / --train.lr), keep gradient "
                "clipping on, or check the data for extreme values."
            )


class SupervisedTask(TrainTask):
    """Supervised training of ``net`` (``net(batch) -> outputs``) on ``batch["y"]``.

    ``kind``: ``classification`` (cross-entropy over ``(B, n_classes)`` logits; accuracy
    is logged), ``regression`` (MSE; ``(B,)`` or ``(B, 1)`` outputs), ``lm`` (next-token
    cross-entropy over ``(B, L, V)`` logits against ``batch["y"] (B, L)``, ignoring
    index -100) or ``steps`` (a class per step: cross-entropy over ``(B, L, K)`` logits
    against ``batch["y"] (B, L)``, class-weighted, ignoring index -100, the steps with no
    label). ``class_weights`` balances classes in the loss. ``optimizer`` and
    ``schedule``: see :class:`TrainTask`.

    ``val_score``: a callable scoring one whole validation pass, higher is better; it
    receives a list with one ``(proba, y)`` pair per validation sample (``proba``: the
    softmax of its outputs, ``(L, K)`` for ``steps`` or ``(K,)``; ``y``: its targets,
    -100 where unlabelled or padded). When given, the score is logged as ``val_score``
    after each validation and :attr:`monitor` makes it what early stopping and the kept
    state follow (:func:`neuroconv.engine.runner.fit`) instead of ``val_loss``.
    """

    def __init__(self, net: nn.Module, kind: str = "classification", lr: float = 2e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 50,
                 class_weights: list | None = None, optimizer: str = "adamw", schedule: str = "cosine",
                 val_score=None):
        super().__init__()
        if kind not in ("classification", "regression", "lm", "steps"):
            raise ValueError(f"`kind` must be classification, regression, lm or steps; got {kind!r}.")
        if val_score is not None and kind not in ("classification", "steps"):
            raise ValueError(f"`val_score` scores class probabilities: use it with kind classification or steps, "
                             f"not {kind!r}.")
        self.save_hyperparameters(ignore=["net", "val_score"])
        self.net = net
        self.val_score, self._val_items = val_score, []
        cw = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", cw, persistent=False)

    def forward(self, batch):
        return self.net(batch)

    def compute_loss(self, batch, out=None):
        out = self(batch) if out is None else out
        y = batch["y"]
        if self.hparams.kind == "classification":
            w = None if self.class_weights is None else self.class_weights.to(out.dtype)
            return F.cross_entropy(out, y.long(), weight=w), out
        if self.hparams.kind == "lm":
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1).long(), ignore_index=-100), out
        if self.hparams.kind == "steps":
            w = None if self.class_weights is None else self.class_weights.to(out.dtype)
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1).long(), weight=w,
                                   ignore_index=-100), out
        return F.mse_loss(out.reshape(y.shape), y.to(out.dtype)), out

    def _log_acc(self, name, out, batch):
        if self.hparams.kind == "steps":
            y = batch["y"].long()
            acc = (out.argmax(-1) == y)[y != -100].float().mean()
            self.log(name, acc, prog_bar=True, batch_size=out.shape[0], sync_dist=name.startswith("val"))
        elif self.hparams.kind == "classification":
            acc = (out.argmax(-1) == batch["y"].long()).float().mean()
            self.log(name, acc, prog_bar=True, batch_size=out.shape[0], sync_dist=name.startswith("val"))

    def training_step(self, batch, batch_idx):
        loss, out = self.compute_loss(batch)
        self.check_finite(loss)
        self.log("train_loss", loss, prog_bar=True, batch_size=out.shape[0])
        self._log_acc("train_acc", out, batch)
        return loss

    @property
    def monitor(self) -> tuple[str, str]:
        """What early stopping and the kept state follow: ``("val_loss", "min")``, or
        ``("val_score", "max")`` with a ``val_score``."""
        return ("val_score", "max") if self.val_score is not None else ("val_loss", "min")

    def on_validation_epoch_start(self):
        self._val_items = []

    def validation_step(self, batch, batch_idx):
        loss, out = self.compute_loss(batch)
        self.log("val_loss", loss, prog_bar=True, batch_size=out.shape[0], sync_dist=True)
        self._log_acc("val_acc", out, batch)
        if self.val_score is not None:
            proba = torch.softmax(out.detach().double(), -1).cpu().numpy()
            y = batch["y"].detach().cpu().numpy()
            self._val_items.extend(zip(proba, y))
        return loss

    def on_validation_epoch_end(self):
        if self.val_score is not None and self._val_items:
            self.log("val_score", float(self.val_score(self._val_items)), prog_bar=True)
        self._val_items = []

    def predict_step(self, batch, batch_idx):
        return self(batch)
