"""Neural models of the zoo: the sequence-model decoders (scratch, attention, finetune,
probe) and braindecode's networks (EEGNet, ShallowFBCSPNet).

All train through :func:`fit_net`, the engine's fit loop with the fold's class weights,
early-stopped on the fold's inner split; then, like every model of the zoo, they are
refitted on the whole training part for the budget the inner split chose
(:func:`refit_steps`: the same number of epochs on the larger set).
"""

from __future__ import annotations

import copy

import numpy as np

from .base import Decoder, DecodeData, Traits, TrainingPart, proba_of, register

__all__ = ["fit_net", "refit_steps", "SequenceDecoder", "ProbeDecoder", "BraindecodeDecoder", "BRAINDECODE_RECIPES",
           "outputs"]

#: how braindecode's networks are trained: optimiser, learning rate, weight decay, batch
#: size and schedule as their authors' documentation gives them; the epoch budget and
#: early stopping are the experiment's, the same for every neural model
BRAINDECODE_RECIPES = {
    "shallow_fbcsp": {"optimizer": "adamw", "lr": 0.0625 * 0.01, "weight_decay": 0.0, "batch_size": 64,
                      "schedule": "cosine", "warmup_steps": 0,
                      "source": "braindecode's trialwise decoding tutorial for ShallowFBCSPNet (Schirrmeister et al. "
                                "2017): AdamW, lr 0.0625 x 0.01, no weight decay, batch 64, cosine annealing"},
    "eegnet": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "schedule": "constant",
               "warmup_steps": 0,
               "source": "Lawhern et al. 2018 (EEGNet): Adam at its default learning rate 1e-3, batch 64, no weight "
                         "decay, the state of lowest validation loss kept"},
}


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


def fit_net(part: TrainingPart, net, train_idx, val_idx, tc, *, recipe: dict | None = None,
            steps: int | None = None, validate_first: bool = False, train_ds=None):
    """Train ``net`` (``net(batch) -> outputs``) on samples ``train_idx`` (or the
    dataset ``train_ds`` built on them, e.g. crops) with the fold's class weights,
    early-stopping on ``val_idx``; with ``steps``, for exactly that many optimizer steps
    and no validation. ``tc``: the trainer settings (``decode`` section); ``recipe``
    overrides optimizer, lr, weight decay, batch size, schedule and warm-up (the
    braindecode networks). Returns ``(net holding its kept state, FitResult)``."""
    import lightning as L

    from neuroconv.engine.runner import fit
    from neuroconv.engine.tasks import SupervisedTask

    from ..data import loader

    tc = copy.copy(tc)
    r = dict(recipe or {})
    for key in ("lr", "weight_decay", "batch_size", "warmup_steps"):
        if key in r:
            setattr(tc, key, r[key])
    if steps is not None:
        tc.max_steps, tc.max_epochs = int(steps), -1
    data = part.data
    cw = part.class_weights(train_idx)
    task = SupervisedTask(net, kind=data.kind, lr=tc.lr, weight_decay=tc.weight_decay, warmup_steps=tc.warmup_steps,
                          class_weights=None if cw is None else [float(v) for v in cw],
                          optimizer=r.get("optimizer", "adamw"), schedule=r.get("schedule", "cosine"))
    L.seed_everything(part.seed, workers=True, verbose=False)
    train_ds = train_ds if train_ds is not None else data.windows.subset(train_idx)
    val = loader(data.windows.subset(val_idx), tc.batch_size, False, part.seed) if len(val_idx) else None
    result = fit(task, loader(train_ds, tc.batch_size, True, part.seed), val, tc, quiet=True,
                 validate_first=validate_first)
    return task.net, result


def _predict(net, data: DecodeData, idx) -> np.ndarray:
    from neuroconv.engine.runner import predict

    from ..data import loader

    return outputs(data.kind, predict(net, loader(data.windows.subset(idx), 64, False)))


def _kernels(net) -> dict | None:
    from ..plots import kernel_summary

    return kernel_summary(net)


class _NeuralDecoder(Decoder):
    """Early-stopped on the inner split, then refitted on the whole training part for the
    chosen budget (``decode.refit``)."""

    recipe: dict | None = None

    def build(self, part: TrainingPart):
        raise NotImplementedError

    def fit(self, part: TrainingPart) -> "_NeuralDecoder":
        tc, inner = self.cfg.decode, part.inner
        net, result = fit_net(part, self.build(part), inner.train, inner.val, tc, recipe=self.recipe)
        self.training = {"epochs": result.epochs, "steps": result.steps, "best_step": result.best_step,
                         "best_val_loss": result.best_val_loss}
        self.hyperparameters = {"best_step": result.best_step}
        if self.recipe:
            self.hyperparameters["recipe"] = {k: v for k, v in self.recipe.items() if k != "source"}
        if self.cfg.decode.refit and len(inner.val):
            steps = refit_steps(result.best_step, len(inner.train), len(part.train))
            self.training["refit_steps"] = steps
            net = self.build(part)
            if steps:
                net, _ = fit_net(part, net, part.train, part.train[:0], tc, recipe=self.recipe, steps=steps)
        self.net = net.eval()
        self.kernels = _kernels(self.net)
        return self

    def predict(self, data: DecodeData, idx) -> np.ndarray:
        return _predict(self.net, data, idx)


class SequenceDecoder(_NeuralDecoder):
    """A :class:`~neuroconv.brain.models.BrainClassifier`: a long-conv (or attention)
    backbone from ``cfg.model``, fresh or pretrained, mean-pooled, linear head."""

    def __init__(self, name: str, cfg, layer: str | None = None, pretrained: bool = False):
        super().__init__(name, cfg)
        self.layer, self.pretrained = layer, pretrained

    def build(self, part: TrainingPart):
        from ..models import make_classifier

        model_cfg = self.cfg.model
        if self.layer is not None:
            model_cfg = copy.copy(model_cfg)
            model_cfg.layer = self.layer
        key, chans = part.data.channels()
        pre = part.backbone() if self.pretrained else None
        if self.pretrained and pre is None:
            raise ValueError(f"{self.name} needs a pretrained backbone: decode.pretrained, decode.pretrain_in_fold "
                             "true, or a `neuroconv pretrain` run of this config.")
        return make_classifier(model_cfg, {key: chans}, key, chans, part.data.n_out, part.data.l_max, pretrained=pre,
                               pool=self.cfg.decode.pool)


class ProbeDecoder(Decoder):
    """A linear probe: the frozen pretrained backbone's pooled features -> standardise ->
    logistic regression (ridge for regression), its ``C`` chosen on the inner split from
    ``decode.c_grid`` like every regulariser, then refitted on the whole training part."""

    def fit(self, part: TrainingPart) -> "ProbeDecoder":
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from neuroconv.engine.runner import predict

        from ..data import loader
        from ..models import make_classifier

        data = part.data
        key, chans = data.channels()
        pre = part.backbone()
        if pre is None:
            raise ValueError("probe needs a pretrained backbone: decode.pretrained, decode.pretrain_in_fold true, or "
                             "a `neuroconv pretrain` run of this config.")
        self.net = make_classifier(self.cfg.model, {key: chans}, key, chans, data.n_out, data.l_max, pretrained=pre,
                                   freeze=True, pool=self.cfg.decode.pool).eval()
        feats = {}

        def features(idx):
            missing = [i for i in idx if i not in feats]
            if missing:
                f = predict(self.net, loader(data.windows.subset(missing), 64, False), method="features")
                feats.update(zip(missing, f))
            return np.stack([feats[i] for i in idx])

        def head(C):
            if data.kind == "regression":
                return make_pipeline(StandardScaler(), Ridge(alpha=1.0 / C))
            cw = part.class_weights()
            return make_pipeline(StandardScaler(), LogisticRegression(
                C=C, max_iter=5000, random_state=part.seed,
                class_weight=None if cw is None else dict(enumerate(cw))))

        inner = part.inner
        C = self.choose_c(head(min(self.cfg.decode.c_grid)), part,
                          *((features(inner.train), features(inner.val)) if len(inner.val) else (None, None)))
        self.head = head(C).fit(features(part.train), data.y[part.train])
        self._features = features
        return self

    def predict(self, data: DecodeData, idx) -> np.ndarray:
        f = self._features(list(idx))
        return self.head.predict(f) if data.kind == "regression" else proba_of(self.head, f, data.n_out)


class BraindecodeDecoder(_NeuralDecoder):
    """braindecode's EEGNet or ShallowFBCSPNet, trained with its recipe
    (:data:`BRAINDECODE_RECIPES`) by the same loop, inner split and class weights as
    every neural model."""

    def __init__(self, name: str, cfg):
        super().__init__(name, cfg)
        self.recipe = BRAINDECODE_RECIPES[name]

    def build(self, part: TrainingPart):
        from ..baselines import braindecode_net

        _, chans = part.data.channels()
        return braindecode_net(self.name, n_chans=len(chans), n_outputs=part.data.n_out, n_times=part.data.l_max,
                               sfreq=part.data.sfreq(self.name))


# --------------------------------------------------------------------------- registry
_ANY = ("eeg", "meg", "fmri")
_BOTH = ("classification", "regression")

register("scratch", Traits("ours", "neural", _ANY, _BOTH),
         "long-conv backbone (model section) trained from scratch, mean-pooled, linear head")(
    lambda cfg: SequenceDecoder("scratch", cfg))
register("attention", Traits("ours", "neural", _ANY, _BOTH),
         "the same backbone with attention layers instead of long convolutions")(
    lambda cfg: SequenceDecoder("attention", cfg, layer="attention"))
register("finetune", Traits("ours", "neural", _ANY, _BOTH, needs_backbone=True),
         "the pretrained backbone, fine-tuned end to end")(
    lambda cfg: SequenceDecoder("finetune", cfg, pretrained=True))
register("probe", Traits("ours", "neural", _ANY, _BOTH, needs_backbone=True),
         "the frozen pretrained backbone's pooled features, logistic regression (C on the inner split)")(
    lambda cfg: ProbeDecoder("probe", cfg))
register("eegnet", Traits("baseline", "neural", ("eeg", "meg"), one_sfreq=True, fixed_length=True,
                          library="braindecode"),
         "braindecode's EEGNet (Lawhern et al. 2018), with its authors' training recipe")(
    lambda cfg: BraindecodeDecoder("eegnet", cfg))
register("shallow_fbcsp", Traits("baseline", "neural", ("eeg", "meg"), one_sfreq=True, fixed_length=True,
                                 library="braindecode", paradigm="motor imagery"),
         "braindecode's ShallowFBCSPNet (Schirrmeister et al. 2017), with braindecode's recipe")(
    lambda cfg: BraindecodeDecoder("shallow_fbcsp", cfg))

