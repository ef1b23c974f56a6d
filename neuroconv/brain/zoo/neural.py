"""Neural models of the zoo: the sequence-model decoders (scratch, attention, finetune,
probe) and braindecode's networks (EEGNet, ShallowFBCSPNet).

All train through :func:`fit_net`, the engine's fit loop with the fold's class weights,
early-stopped on the fold's inner split; then, like every model of the zoo, they are
refitted on the whole training part for the budget the inner split chose
(:func:`refit_steps`: the same number of epochs on the larger set).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .base import Decoder, DecodeData, Traits, TrainingPart, proba_of, register

__all__ = ["fit_net", "refit_steps", "step_budget", "task_score", "training_report", "SequenceDecoder", "ProbeDecoder", "BraindecodeDecoder", "SequenceSettings",
           "BraindecodeSettings", "outputs", "kernel_report"]


def outputs(kind: str, raw: np.ndarray) -> np.ndarray:
    """Network outputs -> probabilities ``(n, K)`` (softmax) or predictions ``(n,)``."""
    from scipy.special import softmax

    return softmax(raw, axis=1) if kind == "classification" else raw[:, 0]


def refit_steps(best_step: int | None, n_inner: int, n_all: int) -> int:
    """Optimizer steps of the refit on the whole training part: the inner run's best
    step scaled by the size ratio, so the refit sees as many epochs as the kept state."""
    if not best_step:
        return 0
    return max(1, int(round(best_step * n_all / max(n_inner, 1))))


def step_budget(n_train: int, tc, batch_size: int | None = None) -> int:
    """The optimiser-step budget of the run: ``max_epochs`` epochs of ``n_train`` samples
    at the run's batch size (``tc.batch_size``), the same for every neural model whatever
    its own batch size (``batch_size``); -1 when ``max_epochs`` is -1 (``max_steps``
    then decides)."""
    if tc.max_epochs < 0:
        return int(tc.max_steps)
    steps = int(tc.max_epochs) * max(1, math.ceil(n_train / max(1, int(tc.batch_size))))
    return steps if tc.max_steps < 0 else min(steps, int(tc.max_steps))


def fit_net(part: TrainingPart, net, train_idx, val_idx, tc, *, recipe: dict | None = None,
            steps: int | None = None, validate_first: bool = False, train_ds=None, budget: str = "steps",
            dataset=None, kind: str | None = None, class_weights=None, early_stopping: str = "loss",
            val_score=None):
    """Train ``net`` (``net(batch) -> outputs``) on samples ``train_idx`` (or the
    dataset ``train_ds`` built on them, e.g. crops) with the fold's class weights,
    early-stopping on ``val_idx``; with ``steps``, for exactly that many optimizer steps
    and no validation. ``dataset(idx)`` builds the dataset of samples ``idx`` (default:
    the data's windows; e.g. with fixed features beside them). ``tc``: the trainer settings (:class:`~neuroconv.engine.config.
    TrainerConfig`); ``recipe`` overrides optimizer, lr, weight decay, batch size,
    schedule and warm-up (the braindecode networks).

    ``budget``: ``"steps"`` (every neural model gets :func:`step_budget` optimiser steps
    and the same patience in steps, whatever its own batch size) or ``"epochs"`` (each
    model ``max_epochs`` epochs of its own batch size: its authors' schedule). Returns
    ``(net holding its kept state, FitResult)``; the result's ``step_budget`` is the
    budget it ran under.

    ``early_stopping``: ``"loss"`` (the kept state and early stopping follow the
    validation loss) or ``"metric"``: they follow ``val_score`` (see
    :class:`~neuroconv.engine.tasks.SupervisedTask`), by default the task's own score
    (:func:`task_score`)."""
    import lightning as L

    from neuroconv.engine.runner import fit
    from neuroconv.engine.tasks import SupervisedTask

    from ..data import loader

    if budget not in ("steps", "epochs"):
        raise ValueError(f"decode.budget must be 'steps' or 'epochs'; got {budget!r}.")
    tc = copy.copy(tc)
    r = dict(recipe or {})
    n_train = len(train_ds) if train_ds is not None else len(train_idx)
    run_batch = int(tc.batch_size)
    limit = step_budget(n_train, tc)  # at the run's batch size
    for key in ("lr", "weight_decay", "batch_size", "warmup_steps"):
        if key in r:
            setattr(tc, key, r[key])
    if steps is not None:
        tc.max_steps, tc.max_epochs = int(steps), -1
        limit = int(steps)
    elif budget == "steps" and int(tc.batch_size) != run_batch and limit > 0:
        own = math.ceil(n_train / max(1, int(tc.batch_size)))
        run = math.ceil(n_train / run_batch)
        tc.max_steps, tc.max_epochs = limit, -1
        tc.patience = max(1, math.ceil(tc.patience * run / max(own, 1))) if tc.patience else 0
    elif budget == "epochs":
        limit = step_budget(n_train, tc)  # at its own batch size
    data = part.data
    cw = part.class_weights(train_idx) if class_weights is None else np.asarray(class_weights, float)
    score = None
    if early_stopping not in ("loss", "metric"):
        raise ValueError(f"decode.early_stopping must be 'loss' or 'metric'; got {early_stopping!r}.")
    if early_stopping == "metric" and len(val_idx):
        score = val_score or task_score(data.kind, data.n_out)
    task = SupervisedTask(net, kind=kind or data.kind, lr=tc.lr, weight_decay=tc.weight_decay, warmup_steps=tc.warmup_steps,
                          class_weights=None if cw is None else [float(v) for v in cw],
                          optimizer=r.get("optimizer", "adamw"), schedule=r.get("schedule", "cosine"),
                          val_score=score)
    L.seed_everything(part.seed, workers=True, verbose=False)
    dataset = dataset or data.windows.subset
    train_ds = train_ds if train_ds is not None else dataset(train_idx)
    val = loader(dataset(val_idx), tc.batch_size, False, part.seed) if len(val_idx) else None
    result = fit(task, loader(train_ds, tc.batch_size, True, part.seed), val, tc, quiet=True,
                 validate_first=validate_first)
    result.step_budget = limit
    return task.net, result


def task_score(kind: str, n_classes: int):
    """The task's own validation score for ``decode.early_stopping: metric``: for
    ``staging``, the macro-F1 of the argmax stages over every labelled step of the
    validation part (each of the ``n_classes`` weighs the same). Other tasks have no
    default (the detection models bring their own by-event score)."""
    if kind != "staging":
        raise ValueError(f"decode.early_stopping metric follows the dense tasks' own scores (staging, detection); "
                         f"this run's targets are {kind}: use decode.early_stopping loss.")

    def macro_f1(items) -> float:
        from sklearn.metrics import f1_score

        y = np.concatenate([np.asarray(t).reshape(-1) for _, t in items])
        p = np.concatenate([np.asarray(q).reshape(len(np.asarray(t).reshape(-1)), -1) for q, t in items])
        keep = y != -100
        return float(f1_score(y[keep], p[keep].argmax(1), labels=list(range(n_classes)), average="macro",
                              zero_division=0))

    return macro_f1


def training_report(result, weight_decay: float) -> dict:
    """What a neural model's inner fit did: epochs, steps, its step budget, the step and
    loss of the kept state (and its score, when the kept state followed one), and its
    (fixed, not chosen) weight decay."""
    out = {"epochs": result.epochs, "steps": result.steps, "step_budget": result.step_budget,
           "best_step": result.best_step, "best_val_loss": result.best_val_loss, "weight_decay": float(weight_decay)}
    if getattr(result, "monitor", "val_loss") != "val_loss":
        out.update(monitor=result.monitor, best_val_score=result.best_val_score)
    return out


def _predict(net, data: DecodeData, idx) -> np.ndarray:
    from neuroconv.engine.runner import predict

    from ..data import loader

    return outputs(data.kind, predict(net, loader(data.windows.subset(idx), 64, False)))


def kernel_report(net) -> dict | None:
    """The learned long-conv kernels' summary of ``net`` (roughness, zero fraction), or None."""
    from ..plots import kernel_summary

    return kernel_summary(net)


def _kernel_summary(reports: list[dict]) -> dict:
    """Mean roughness and zero fraction of the long-conv kernels over the folds."""
    kern = [r["kernels"] for r in reports if (r.get("kernels") or {}).get("roughness") is not None]
    if not kern:
        return {}
    return {"kernels": {"roughness": float(np.mean([k["roughness"] for k in kern])),
                        "folds": [k["roughness"] for k in kern],
                        "zero_fraction": float(np.mean([k["zero_fraction"] for k in kern]))}}


class _NeuralDecoder(Decoder):
    """Early-stopped on the inner split, then refitted on the whole training part for the
    chosen budget (``decode.refit``)."""

    recipe: dict | None = None

    def new_net(self, part: TrainingPart):
        """A fresh, untrained network for this part's data."""
        raise NotImplementedError

    def fit(self, part: TrainingPart) -> "_NeuralDecoder":
        tc, inner = self.context.trainer, part.inner
        net, result = fit_net(part, self.new_net(part), inner.train, inner.val, tc, recipe=self.recipe,
                              budget=self.context.budget)
        self.training = training_report(result, (self.recipe or {}).get("weight_decay", tc.weight_decay))
        self.hyperparameters = {"best_step": result.best_step}
        if self.recipe:
            self.hyperparameters["recipe"] = dict(self.recipe)
        if self.context.refit and len(inner.val):
            steps = refit_steps(result.best_step, len(inner.train), len(part.train))
            self.training["refit_steps"] = steps
            net = self.new_net(part)
            if steps:
                net, _ = fit_net(part, net, part.train, part.train[:0], tc, recipe=self.recipe, steps=steps,
                                 budget=self.context.budget)
        self.net = net.eval()
        self.kernels = kernel_report(self.net)
        return self

    def predict(self, data: DecodeData, idx) -> np.ndarray:
        return _predict(self.net, data, idx)

    @classmethod
    def summarize(cls, reports: list[dict]) -> dict:
        return _kernel_summary(reports)


@dataclass
class SequenceSettings:
    """A sequence-model decoder (the backbone of the ``model`` section with a linear head).

    Args:
        pool: How the sequence model pools its outputs over time before the head: mean
            (over the valid steps) or last.
    """

    pool: Literal["mean", "last"] = "mean"


def _backbone(part: TrainingPart, name: str, required: bool):
    pre = part.backbone() if part.backbone is not None else None
    if required and pre is None:
        raise ValueError(f"{name} needs a pretrained backbone: decode.pretrained, decode.pretrain_in_fold true, or a "
                         "`neuroconv pretrain` run of this config.")
    return pre


class SequenceDecoder(_NeuralDecoder):
    """A :class:`~neuroconv.brain.models.BrainClassifier`: a long-conv (or attention)
    backbone from the ``model`` section, fresh or pretrained, pooled, linear head."""

    def __init__(self, name: str, settings: SequenceSettings, context, layer: str | None = None,
                 pretrained: bool = False):
        super().__init__(name, settings, context)
        self.layer, self.pretrained = layer, pretrained

    def new_net(self, part: TrainingPart):
        from ..models import make_classifier

        model_cfg = self.context.backbone
        if self.layer is not None:
            model_cfg = copy.copy(model_cfg)
            model_cfg.layer = self.layer
        key, chans = part.data.channels()
        pre = _backbone(part, self.name, self.pretrained) if self.pretrained else None
        return make_classifier(model_cfg, {key: chans}, key, chans, part.data.n_out, part.data.l_max, pretrained=pre,
                               pool=self.settings.pool)


class ProbeDecoder(Decoder):
    """A linear probe: the frozen pretrained backbone's pooled features -> standardise ->
    logistic regression (ridge for regression), its ``C`` chosen on the inner split from
    ``decode.c_grid`` like every regulariser, then refitted on the whole training part."""

    def fit(self, part: TrainingPart) -> "ProbeDecoder":
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from ..models import make_classifier

        data = part.data
        key, chans = data.channels()
        pre = _backbone(part, self.name, True)
        self.net = make_classifier(self.context.backbone, {key: chans}, key, chans, data.n_out, data.l_max,
                                   pretrained=pre, freeze=True, pool=self.settings.pool).eval()
        self._cache = {}

        def head(C):
            if data.kind == "regression":
                return make_pipeline(StandardScaler(), Ridge(alpha=1.0 / C))
            cw = part.class_weights()
            return make_pipeline(StandardScaler(), LogisticRegression(
                C=C, max_iter=5000, random_state=part.seed,
                class_weight=None if cw is None else dict(enumerate(cw))))

        inner = part.inner
        C = self.choose_c(head(min(self.context.c_grid)), part,
                          *((self._features(data, inner.train), self._features(data, inner.val)) if len(inner.val)
                            else (None, None)))
        self.head = head(C).fit(self._features(data, part.train), data.y[part.train])
        return self

    def _features(self, data: DecodeData, idx) -> np.ndarray:
        """The frozen backbone's pooled features of samples ``idx``, computed once each."""
        from neuroconv.engine.runner import predict

        from ..data import loader

        idx = [int(i) for i in idx]
        missing = [i for i in idx if i not in self._cache]
        if missing:
            f = predict(self.net, loader(data.windows.subset(missing), 64, False), method="features")
            self._cache.update(zip(missing, f))
        return np.stack([self._cache[i] for i in idx])

    def predict(self, data: DecodeData, idx) -> np.ndarray:
        f = self._features(data, idx)
        return self.head.predict(f) if data.kind == "regression" else proba_of(self.head, f, data.n_out)


@dataclass
class BraindecodeSettings:
    """How a braindecode network is trained: its authors' recipe by default (the epoch
    budget and early stopping are the run's, the same for every neural model).

    Args:
        optimizer: adam or adamw.
        lr: Learning rate.
        weight_decay: Weight decay.
        batch_size: Examples per batch.
        schedule: Learning-rate schedule: constant or cosine.
        warmup_steps: Linear warm-up steps.
    """

    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0


@dataclass
class EEGNetSettings(BraindecodeSettings):
    """EEGNet's recipe (Lawhern et al. 2018): Adam at its default learning rate 1e-3,
    batch 64, no weight decay, the state of lowest validation loss kept.

    Args:
        optimizer: adam or adamw.
        lr: Learning rate.
        weight_decay: Weight decay.
        batch_size: Examples per batch.
        schedule: Learning-rate schedule: constant or cosine.
        warmup_steps: Linear warm-up steps.
    """


@dataclass
class ShallowFBCSPSettings(BraindecodeSettings):
    """ShallowFBCSPNet's recipe, from braindecode's trialwise decoding tutorial
    (Schirrmeister et al. 2017): AdamW, lr 0.0625 x 0.01, no weight decay, batch 64,
    cosine annealing.

    Args:
        optimizer: adam or adamw.
        lr: Learning rate.
        weight_decay: Weight decay.
        batch_size: Examples per batch.
        schedule: Learning-rate schedule: constant or cosine.
        warmup_steps: Linear warm-up steps.
    """

    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = 0.0625 * 0.01
    schedule: Literal["constant", "cosine"] = "cosine"


class BraindecodeDecoder(_NeuralDecoder):
    """braindecode's EEGNet or ShallowFBCSPNet, trained with its recipe (its settings) by
    the same loop, inner split and class weights as every neural model."""

    def __init__(self, name: str, settings: BraindecodeSettings, context, net: str):
        super().__init__(name, settings, context)
        self.net_name = net
        self.recipe = {f: getattr(settings, f) for f in ("optimizer", "lr", "weight_decay", "batch_size",
                                                           "schedule", "warmup_steps")}

    def new_net(self, part: TrainingPart):
        from ..baselines import braindecode_net

        _, chans = part.data.channels()
        return braindecode_net(self.net_name, n_chans=len(chans), n_outputs=part.data.n_out, n_times=part.data.l_max,
                               sfreq=part.data.sfreq(self.name))


# --------------------------------------------------------------------------- registry
_ANY = ("eeg", "meg", "fmri")
_BOTH = ("classification", "regression")

register("scratch", Traits("ours", "neural", _ANY, _BOTH), SequenceDecoder, settings=SequenceSettings,
         summary="long-conv backbone (model section) trained from scratch, pooled, linear head")
register("attention", Traits("ours", "neural", _ANY, _BOTH), SequenceDecoder, settings=SequenceSettings,
         summary="the same backbone with attention layers instead of long convolutions", layer="attention")
register("finetune", Traits("ours", "neural", _ANY, _BOTH, needs_backbone=True), SequenceDecoder,
         settings=SequenceSettings, summary="the pretrained backbone, fine-tuned end to end", pretrained=True)
register("probe", Traits("ours", "neural", _ANY, _BOTH, needs_backbone=True), ProbeDecoder,
         settings=SequenceSettings,
         summary="the frozen pretrained backbone's pooled features, logistic regression (C on the inner split)")
register("eegnet", Traits("baseline", "neural", ("eeg", "meg"), library="braindecode"), BraindecodeDecoder,
         settings=EEGNetSettings, summary="braindecode's EEGNet (Lawhern et al. 2018), with its authors' training "
                                          "recipe", net="eegnet")
register("shallow_fbcsp", Traits("baseline", "neural", ("eeg", "meg"), library="braindecode",
                                 paradigm="motor imagery"), BraindecodeDecoder, settings=ShallowFBCSPSettings,
         summary="braindecode's ShallowFBCSPNet (Schirrmeister et al. 2017), with braindecode's recipe",
         net="shallow_fbcsp")
