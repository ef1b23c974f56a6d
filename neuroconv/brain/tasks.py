"""Lightning tasks: self-supervised pretraining and supervised decoding.

Both build their optimizer from :func:`neuroconv.param_groups` (kernel parameters get
their own learning rate and no weight decay) with a linear warm-up and cosine decay, and
both stop on a non-finite loss with :class:`NonFiniteLossError` before any checkpoint of
the broken state is written, so the last good checkpoint stays the last one on disk.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F

from neuroconv.optim import param_groups

from .models import BrainModel

__all__ = ["PretrainTask", "SupervisedTask", "BrainClassifier", "NonFiniteLossError", "span_mask"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


def _masked_mean(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    where = where.to(values.dtype)
    while where.dim() < values.dim():
        where = where[..., None]
    where = where.expand_as(values)
    return (values * where).sum() / where.sum().clamp_min(1.0)


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


class _OptimMixin:
    """AdamW over ``param_groups`` with linear warm-up then cosine decay."""

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.AdamW(param_groups(self, hp.lr, hp.weight_decay))
        total = max(int(self.trainer.estimated_stepping_batches), 1) if self._trainer else 1000
        warm = min(int(hp.warmup_steps), max(total - 1, 0))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / (warm + 1)
            progress = (step - warm) / max(total - warm, 1)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _check_finite(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {self.global_step}. The run "
                "stopped; the last good checkpoint is kept in the run folder. Lower the "
                "learning rate (--pretrain.lr / --decode.lr), keep gradient clipping on, or "
                "check the data for extreme values."
            )


class PretrainTask(_OptimMixin, L.LightningModule):
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
            return _masked_mean(self._pointwise(pred, x[:, 1:]), mask[:, 1:] & mask[:, :-1])
        span = max(1, int(round(self.hparams.span_seconds * float(sfreq.min()))))
        hide = span_mask(mask, self.hparams.mask_ratio, span)
        h = self.model.features(x, key, sfreq, mask, hide=hide)
        pred = self.model.reconstruct(h, key)
        return _masked_mean(self._pointwise(pred, x), hide)

    def training_step(self, batch, batch_idx):
        loss = self.compute_loss(batch)
        self._check_finite(loss)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["x"].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self.compute_loss(batch)
        self.log("val_loss", loss, prog_bar=True, batch_size=batch["x"].shape[0], sync_dist=True)
        return loss


class BrainClassifier(nn.Module):
    """A :class:`BrainModel` backbone with a linear head on mask-aware pooled features.

    ``forward(batch) -> (B, n_out)``. ``freeze_backbone=True`` trains the head only (a
    linear probe); the backbone then also stays in eval mode.
    """

    def __init__(self, brain: BrainModel, n_out: int, freeze_backbone: bool = False):
        super().__init__()
        self.brain, self.freeze_backbone = brain, freeze_backbone
        self.head = nn.Linear(brain.d_model, n_out)
        if freeze_backbone:
            for p in self.brain.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.brain.eval()
        return self

    def features(self, batch: dict) -> torch.Tensor:
        h = self.brain.features(batch["x"], batch["key"], batch["sfreq"], batch["mask"])
        return self.brain.backbone.pooled(h, batch["mask"])  # (B D)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.features(batch))


class SupervisedTask(_OptimMixin, L.LightningModule):
    """Supervised training of ``net`` (``net(batch) -> outputs``) on ``batch["y"]``.

    ``kind``: ``classification`` (cross-entropy over ``(B, n_classes)`` logits; accuracy
    is logged), ``regression`` (MSE; ``(B,)`` or ``(B, 1)`` outputs) or ``lm`` (next-token
    cross-entropy over ``(B, L, V)`` logits against ``batch["y"] (B, L)``, ignoring
    index -100). ``class_weights`` balances classes in the loss.
    """

    def __init__(self, net: nn.Module, kind: str = "classification", lr: float = 2e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 50,
                 class_weights: list | None = None):
        super().__init__()
        if kind not in ("classification", "regression", "lm"):
            raise ValueError(f"`kind` must be classification, regression or lm; got {kind!r}.")
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        cw = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", cw, persistent=False)

    def forward(self, batch):
        return self.net(batch)

    def compute_loss(self, batch, out=None):
        out = self(batch) if out is None else out
        y = batch["y"]
        if self.hparams.kind == "classification":
            return F.cross_entropy(out, y.long(), weight=self.class_weights), out
        if self.hparams.kind == "lm":
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1).long(), ignore_index=-100), out
        return F.mse_loss(out.reshape(y.shape).float(), y.float()), out

    def _log_acc(self, name, out, batch):
        if self.hparams.kind == "classification":
            acc = (out.argmax(-1) == batch["y"].long()).float().mean()
            self.log(name, acc, prog_bar=True, batch_size=out.shape[0], sync_dist=name.startswith("val"))

    def training_step(self, batch, batch_idx):
        loss, out = self.compute_loss(batch)
        self._check_finite(loss)
        self.log("train_loss", loss, prog_bar=True, batch_size=out.shape[0])
        self._log_acc("train_acc", out, batch)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, out = self.compute_loss(batch)
        self.log("val_loss", loss, prog_bar=True, batch_size=out.shape[0], sync_dist=True)
        self._log_acc("val_acc", out, batch)
        return loss

    def predict_step(self, batch, batch_idx):
        return self(batch)
