"""Sleep models of the zoo: stages over whole nights and events in whole recordings
(the dense tasks of :mod:`neuroconv.brain.tasks.dense`).

========================  ========  =========  ===============================================
entry                     family    task       model
========================  ========  =========  ===============================================
stage_lr, stage_lgbm      baseline  staging    per-epoch logistic regression (standardised
                                               features, C on the inner split) / LightGBM
                                               (trees by early stopping on the inner split)
stage_lr_hmm,             baseline  staging    the same, then HMM (Viterbi) smoothing with
stage_lgbm_hmm                                 transitions learned on the training nights
stage_gru                 baseline  staging    a bidirectional GRU over the night
                                               (SeqSleepNet-style, :class:`~neuroconv.brain.
                                               sleep.SleepGRU`)
sleepconv                 ours      staging    bidirectional long convolutions over the whole
                                               night (kernels as long as the night)
sleepconv_short           ours      staging    the same network with its kernels cut to a
                                               short receptive field (9 epochs): the ablation
yasa                      baseline  detection  YASA's spindles_detect, thresholds chosen on
                                               the training recordings
sigma_lr                  baseline  detection  sigma-band features per window, logistic
                                               regression, threshold chosen on the training
                                               recordings
========================  ========  =========  ===============================================

Staging models read per-epoch feature stores (one step per epoch, e.g. ``neuroconv
preprocess sleep-edf``); detection models read raw single-channel EEG in µV (e.g.
``neuroconv preprocess dreams``). Every choice is made on the training part (and its
inner split) of each fold; the neural models train by the same loop, budget and early
stopping as every neural model of the zoo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .base import Decoder, DecodeData, Traits, TrainingPart, class_weights, proba_of, register
from .neural import fit_net, refit_steps, training_report

__all__ = ["EpochClassifierDecoder", "NightNetDecoder", "SpindleDecoder", "DenseSequenceNet", "SleepConvSettings",
           "GRUSettings", "YasaSettings", "SigmaSettings"]


# --------------------------------------------------------------------------- helpers
def _check_epochs(data: DecodeData, name: str) -> None:
    hop = data.columns.get("hop")
    if data.kind != "staging" or hop is None or (np.asarray(hop) != 1).any():
        raise ValueError(f"{name} stages per-epoch feature stores (one step per scored epoch, e.g. neuroconv "
                         "preprocess sleep-edf's features) with decode.task staging; these data are not.")


def _night(data: DecodeData, i: int) -> np.ndarray:
    """Sample ``i``'s normalised steps ``(L, C)`` float64."""
    return data.windows.subset([int(i)]).arrays(fixed_length=False)[0]


def _epochs(data: DecodeData, idx) -> tuple[np.ndarray, np.ndarray, list]:
    """``(X (n, C), y (n,), lengths)``: the labelled epochs of samples ``idx``, stacked."""
    X, y, lengths = [], [], []
    for i in idx:
        x, lab = _night(data, i), np.asarray(data.y[i])
        keep = lab >= 0
        X.append(x[: len(lab)][keep])
        y.append(lab[keep])
        lengths.append(int(keep.sum()))
    return np.concatenate(X), np.concatenate(y).astype(int), lengths


def _runs(labels: np.ndarray) -> list[np.ndarray]:
    """The runs of labelled epochs (label >= 0) of one night, each a stage sequence."""
    labels = np.asarray(labels)
    cut = np.flatnonzero(np.diff((labels >= 0).astype(int)) != 0) + 1
    return [r for r in np.split(labels, cut) if len(r) and r[0] >= 0]


# --------------------------------------------------------------------------- per-epoch classifiers
class EpochClassifierDecoder(Decoder):
    """A per-epoch classifier of the night's feature vectors (``model``: ``"lr"`` or
    ``"lgbm"``), optionally followed by HMM smoothing (``hmm``: Viterbi over the
    classifier's posteriors divided by its class prior, with transitions counted on the
    training nights; :class:`~neuroconv.brain.sleep.HMMSmoother`). With smoothing, each
    epoch's output is the one-hot of the Viterbi path."""

    def __init__(self, name: str, settings, context, *, model: str, hmm: bool = False):
        super().__init__(name, settings, context)
        self.model, self.hmm = model, hmm

    def fit(self, part: TrainingPart) -> "EpochClassifierDecoder":
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # many small solves: BLAS threads only contend
            return self._fit(part)

    def _fit(self, part: TrainingPart) -> "EpochClassifierDecoder":
        data = part.data
        _check_epochs(data, self.name)
        K = data.n_out
        balanced = part.class_weight == "balanced"
        X_all, y_all, _ = _epochs(data, part.train)
        if self.model == "lr":
            self.clf = self._fit_lr(part, X_all, y_all, balanced)
        else:
            self.clf = self._fit_lgbm(part, X_all, y_all, balanced)
        if self.hmm:
            from ..sleep import HMMSmoother

            runs = [r for i in part.train for r in _runs(data.y[i])]
            self.smoother = HMMSmoother(n_classes=K, classifier_prior="uniform" if balanced else "counts").fit(runs)
        return self

    def _fit_lr(self, part: TrainingPart, X_all, y_all, balanced: bool):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        data, inner = part.data, part.inner

        def est(C):
            return make_pipeline(StandardScaler(), LogisticRegression(
                C=C, max_iter=2000, random_state=part.seed, class_weight="balanced" if balanced else None))

        if len(inner.val):
            X_in, y_in, _ = _epochs(data, inner.train)
            X_va, y_va, _ = _epochs(data, inner.val)
            cw = class_weights(y_in, data.n_out, part.class_weight)
            C = self.choose_c(est(min(self.context.c_grid)), part, X_in, X_va, y_in=y_in, y_va=y_va,
                              sample_weight=None if cw is None else cw[y_va])
        else:
            C = self.choose_c(None, part, None, None)
        return est(C).fit(X_all, y_all)

    def _fit_lgbm(self, part: TrainingPart, X_all, y_all, balanced: bool):
        from ..sleep import require

        lightgbm = require("lightgbm")
        data, inner = part.data, part.inner
        s = self.settings
        kw = dict(learning_rate=s.learning_rate, num_leaves=s.num_leaves, class_weight="balanced" if balanced else None,
                  n_jobs=1, random_state=part.seed, verbose=-1)
        n = s.max_trees
        if len(inner.val):
            X_in, y_in, _ = _epochs(data, inner.train)
            X_va, y_va, _ = _epochs(data, inner.val)
            cw = class_weights(y_in, data.n_out, part.class_weight)
            m = lightgbm.LGBMClassifier(n_estimators=s.max_trees, **kw).fit(
                X_in, y_in, eval_set=[(X_va, y_va)], eval_sample_weight=None if cw is None else [cw[y_va]],
                callbacks=[lightgbm.early_stopping(s.patience, verbose=False)])
            n = max(1, int(m.best_iteration_ or s.max_trees))
        self.hyperparameters = {"n_estimators": n}
        return lightgbm.LGBMClassifier(n_estimators=n, **kw).fit(X_all, y_all)

    def predict(self, data: DecodeData, idx) -> list:
        from threadpoolctl import threadpool_limits

        out = []
        for i in idx:
            with threadpool_limits(limits=1, user_api="blas"):
                proba = proba_of(self.clf, _night(data, i)[: len(data.y[i])], data.n_out)
            if self.hmm:
                proba = np.eye(data.n_out)[self.smoother.predict(proba)]
            out.append(proba)
        return out


@dataclass
class LGBMSettings:
    """LightGBM per epoch: its trees chosen by early stopping on the inner split
    (class-weighted log loss), then refitted on the whole training part.

    Args:
        learning_rate: Boosting learning rate.
        num_leaves: Leaves per tree.
        max_trees: Most trees.
        patience: Early-stopping patience, in trees.
    """

    learning_rate: float = 0.05
    num_leaves: int = 31
    max_trees: int = 2000
    patience: int = 50


# --------------------------------------------------------------------------- neural over the night
class DenseSequenceNet:
    """Namespace of the builders of per-step networks (``batch -> (B, L, K)`` logits)."""

    @staticmethod
    def sequence(n_in: int, n_out: int, s, l_max: int):
        """Bidirectional long convolutions over the whole recording: input dropout ->
        :class:`neuroconv.SequenceModel` (``d_model``, ``n_layers``, centred long-conv
        kernels of ``kernel_size`` lags, or as long as ``l_max``) -> a per-step linear head."""
        import torch.nn as nn

        from neuroconv.model import SequenceModel

        kernel_args = dict(lam=s.lam, smooth_width=s.smooth_width, kernel_dropout=s.kernel_dropout, lr=s.kernel_lr,
                           init=s.kernel_init)
        model = SequenceModel(n_in, s.d_model, s.n_layers, "longconv", l_max=l_max, dropout=s.dropout,
                              head="regression", d_output=n_out,
                              layer_args=dict(bidirectional=True, channels=s.channels, dropout=s.dropout,
                                              kernel_args=kernel_args, kernel_size=s.kernel_size))

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop, self.model = nn.Dropout(s.in_dropout), model

            def forward(self, batch):
                """``batch = {"x": (B, L, C), "mask": (B, L)}`` -> logits ``(B, L, K)``."""
                return self.model(self.drop(batch["x"]), mask=batch.get("mask"))

        return Net()


@dataclass
class SleepConvSettings:
    """Bidirectional long convolutions over the whole night (ours).

    Args:
        d_model: Width of the residual stream.
        n_layers: Residual blocks.
        channels: Kernels per feature.
        kernel_size: Kernel length in epochs on each side (null: as long as the longest
            night, the whole-night context; 5: a 9-epoch receptive field per layer).
        lam: Squash threshold of the kernels.
        smooth_width: Moving-average width of the kernels (odd).
        kernel_dropout: Dropout on the kernel taps.
        kernel_lr: Learning rate of the kernels (no weight decay).
        kernel_init: Kernel initialisation: geometric (decaying) or random.
        dropout: Residual and layer dropout.
        in_dropout: Dropout on the input features.
        crop: Train on random crops of this many epochs (0: whole nights).
    """

    d_model: int = 64
    n_layers: int = 4
    channels: int = 1
    kernel_size: Optional[int] = None
    lam: float = 0.003
    smooth_width: int = 9
    kernel_dropout: float = 0.1
    kernel_lr: float = 1e-3
    kernel_init: str = "geometric"
    dropout: float = 0.2
    in_dropout: float = 0.1
    crop: int = 0


@dataclass
class SleepConvShortSettings(SleepConvSettings):
    """The same network with its kernels cut to a short receptive field: the ablation of
    whole-night context (ours).

    Args:
        d_model: Width of the residual stream.
        n_layers: Residual blocks.
        channels: Kernels per feature.
        kernel_size: Kernel length in epochs on each side (5: 9-epoch kernels).
        lam: Squash threshold of the kernels.
        smooth_width: Moving-average width of the kernels (odd).
        kernel_dropout: Dropout on the kernel taps.
        kernel_lr: Learning rate of the kernels (no weight decay).
        kernel_init: Kernel initialisation: geometric (decaying) or random.
        dropout: Residual and layer dropout.
        in_dropout: Dropout on the input features.
        crop: Train on random crops of this many epochs (0: whole nights).
    """

    kernel_size: Optional[int] = 5


@dataclass
class GRUSettings:
    """A bidirectional GRU over the night (SeqSleepNet-style recurrent baseline).

    Args:
        hidden_size: GRU units per direction.
        num_layers: Stacked GRU layers.
        dropout: Dropout after the projection, between layers and before the head.
        proj_size: Width of the per-epoch input projection.
        crop: Train on random crops of this many epochs (0: whole nights).
    """

    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.2
    proj_size: int = 64
    crop: int = 128


class NightNetDecoder(Decoder):
    """A per-step network over whole nights (``net``: ``"gru"`` or ``"sequence"``),
    trained with class-weighted cross-entropy on the labelled epochs, early-stopped on the
    inner split (whole nights), then refitted on the whole training part for the chosen
    budget, like every neural model of the zoo."""

    def __init__(self, name: str, settings, context, *, net: str):
        super().__init__(name, settings, context)
        self.net_kind = net

    def new_net(self, part: TrainingPart):
        import torch

        data = part.data
        n_in = len(data.channels()[1])
        torch.manual_seed(part.seed)
        if self.net_kind == "gru":
            from ..sleep import SleepGRU

            s = self.settings
            return SleepGRU(n_in, data.n_out, hidden_size=s.hidden_size, num_layers=s.num_layers, dropout=s.dropout,
                            proj_size=s.proj_size)
        return DenseSequenceNet.sequence(n_in, data.n_out, self.settings, l_max=int(data.stops.max()))

    def _datasets(self, data: DecodeData):
        from ..data import StepCrops

        crop = int(self.settings.crop)
        return (lambda idx: StepCrops(data.windows.subset(idx), crop) if crop else data.windows.subset(idx))

    def fit(self, part: TrainingPart) -> "NightNetDecoder":
        _check_epochs(part.data, self.name)
        tc, inner, data = self.context.trainer, part.inner, part.data
        train = self._datasets(data)
        net, result = fit_net(part, self.new_net(part), inner.train, inner.val, tc, kind="steps",
                              train_ds=train(inner.train), budget=self.context.budget)
        self.training = training_report(result, tc.weight_decay)
        self.hyperparameters = {"best_step": result.best_step}
        if self.context.refit and len(inner.val):
            steps = refit_steps(result.best_step, len(inner.train), len(part.train))
            self.training["refit_steps"] = steps
            net = self.new_net(part)
            if steps:
                net, _ = fit_net(part, net, part.train, part.train[:0], tc, kind="steps", train_ds=train(part.train),
                                 steps=steps, budget=self.context.budget)
        self.net = net.eval()
        return self

    def predict(self, data: DecodeData, idx) -> list:
        return predict_steps(self.net, data.windows.subset(idx), [len(data.y[i]) for i in idx])


def predict_steps(net, ds, lengths) -> list:
    """Per-step class probabilities of every sample of ``ds``: a list of ``(L_i, K)``
    float64 arrays (``lengths``: each sample's number of steps)."""
    import torch

    from ..data import loader

    net.eval()
    out = [None] * len(ds)
    with torch.no_grad():
        for batch in loader(ds, 4, False):
            p = torch.softmax(net(batch).double(), -1).cpu().numpy()
            for b, i in enumerate(batch["index"].tolist()):
                out[i] = p[b, : lengths[i]]
    return out


# --------------------------------------------------------------------------- spindles
@dataclass
class YasaSettings:
    """YASA's spindle detector, its thresholds chosen on the training recordings.

    Args:
        rel_pow: Candidate relative sigma-power thresholds.
        corr: Candidate sigma/broadband correlation thresholds.
        rms: Candidate sigma RMS thresholds (in standard deviations). Null (each): YASA's
            default and one step below and above.
    """

    rel_pow: Optional[list[float]] = None
    corr: Optional[list[float]] = None
    rms: Optional[list[float]] = None


@dataclass
class SigmaSettings:
    """Sigma-band features of short windows and a logistic regression.

    Args:
        window: Window length in seconds.
        step: Window hop in seconds.
        context: Neighbouring windows on each side added as features.
    """

    window: float = 0.5
    step: float = 0.1
    context: int = 2


class SpindleDecoder(Decoder):
    """A spindle detector of :mod:`neuroconv.brain.sleep` (``detector``: ``"yasa"`` or
    ``"sigma"``) on each recording's first channel in µV, fitted on the training
    recordings of the part (their reference events)."""

    def __init__(self, name: str, settings, context, *, detector: str):
        super().__init__(name, settings, context)
        self.detector = detector

    @staticmethod
    def _signal(data: DecodeData, i: int) -> tuple[np.ndarray, float]:
        x = data.windows.raw_window(int(i))[:, 0]
        return x, float(next(iter(data.windows.subset([int(i)]).sfreqs())))

    def fit(self, part: TrainingPart) -> "SpindleDecoder":
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # many small solves: BLAS threads only contend
            return self._fit(part)

    def _fit(self, part: TrainingPart) -> "SpindleDecoder":
        from .. import sleep

        data = part.data
        if data.kind != "detection":
            raise ValueError(f"{self.name} detects events: use it with decode.task detection.")
        sig = [self._signal(data, i) for i in part.train]
        events = [np.asarray(data.y[i]).reshape(-1, 2) for i in part.train]
        if self.detector == "yasa":
            s = self.settings
            grid = {k: list(v) for k, v in (("rel_pow", s.rel_pow), ("corr", s.corr), ("rms", s.rms)) if v}
            self.est = sleep.YasaSpindles(grid=grid or None).fit([x for x, _ in sig], [f for _, f in sig],
                                                                   [(e[:, 0], e[:, 1]) for e in events])
            self.hyperparameters = {"thresh": {k: float(v) for k, v in self.est.thresh_.items()},
                                    "train_f1": float(self.est.best_score_)}
        else:
            s = self.settings
            self.est = sleep.SigmaSpindleClassifier(window=s.window, step=s.step, context=s.context).fit(
                [x for x, _ in sig], [f for _, f in sig], [(e[:, 0], e[:, 1]) for e in events])
            self.hyperparameters = {"C": self.est.C_, "threshold": self.est.threshold_}
        return self

    def predict(self, data: DecodeData, idx) -> list:
        out = []
        for i in idx:
            x, sfreq = self._signal(data, i)
            on, off = self.est.predict(x, sfreq)
            out.append(np.stack([on, off], 1).astype(np.int64) if len(on) else np.zeros((0, 2), np.int64))
        return out


# --------------------------------------------------------------------------- registry
_EEG = ("eeg", "meg")
_STAGING = ("staging",)
for _name, _model, _hmm, _summary in (
        ("stage_lr", "lr", False, "per-epoch standardised features -> logistic regression (C on the inner split)"),
        ("stage_lr_hmm", "lr", True, "stage_lr -> HMM (Viterbi) smoothing, transitions from the training nights"),
        ("stage_lgbm", "lgbm", False, "per-epoch LightGBM (trees by early stopping on the inner split)"),
        ("stage_lgbm_hmm", "lgbm", True, "stage_lgbm -> HMM (Viterbi) smoothing, transitions from the training "
                                         "nights")):
    register(_name, Traits("baseline", "classical", _EEG, _STAGING, library="lightgbm" if _model == "lgbm" else
                           "scikit-learn", paradigm="sleep"), EpochClassifierDecoder,
             settings=LGBMSettings if _model == "lgbm" else None, summary=_summary, model=_model, hmm=_hmm)
register("stage_gru", Traits("baseline", "neural", _EEG, _STAGING, library="torch", paradigm="sleep"),
         NightNetDecoder, settings=GRUSettings, net="gru",
         summary="bidirectional GRU over the night (SeqSleepNet-style recurrent baseline)")
register("sleepconv", Traits("ours", "neural", _EEG, _STAGING, paradigm="sleep"), NightNetDecoder,
         settings=SleepConvSettings, net="sequence",
         summary="bidirectional long convolutions over the whole night, a stage per epoch")
register("sleepconv_short", Traits("ours", "neural", _EEG, _STAGING, paradigm="sleep"), NightNetDecoder,
         settings=SleepConvShortSettings, net="sequence",
         summary="sleepconv with its kernels cut to 9 epochs: the ablation of whole-night context")
register("yasa", Traits("baseline", "classical", _EEG, ("detection",), library="yasa", paradigm="sleep"),
         SpindleDecoder, settings=YasaSettings, detector="yasa",
         summary="YASA's spindles_detect, thresholds chosen on the training recordings")
register("sigma_lr", Traits("baseline", "classical", _EEG, ("detection",), library="mne", paradigm="sleep"),
         SpindleDecoder, settings=SigmaSettings, detector="sigma",
         summary="sigma-band features per window -> logistic regression -> events (threshold on the training "
                 "recordings)")
del _name, _model, _hmm, _summary
