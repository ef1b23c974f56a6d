"""Brain-data tasks: self-supervised pretraining (:class:`PretrainTask`). Decoding trains
its models with the engine's :class:`~neuroconv.engine.tasks.SupervisedTask`. The
optimizer, schedule and NaN guard come from :class:`~neuroconv.engine.tasks.TrainTask`."""

from __future__ import annotations

import torch

from neuroconv.engine.tasks import TrainTask
from neuroconv.model import masked_mean

from .models import BrainModel

__all__ = ["PretrainTask", "span_mask"]


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
