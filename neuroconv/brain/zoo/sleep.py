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
                                               night (29-epoch kernels: about an hour of
                                               context over 4 layers)
sleepconv_short           ours      staging    the same network with its kernels cut to a
                                               short receptive field (9 epochs): the ablation
yasa                      baseline  detection  YASA's spindles_detect, thresholds chosen on
                                               the training recordings
sigma_lr                  baseline  detection  sigma-band features per window, logistic
                                               regression, threshold chosen on the training
                                               recordings
spindleconv               ours      detection  band envelopes (0.1-s bins, standardised per
                                               recording) -> bidirectional
                                               long convolutions over the whole recording
                                               (300-s kernels) -> events (threshold and
                                               shortest event chosen on the training part)
spindleconv_short         ours      detection  the same network with 9-bin (0.9-s) kernels:
                                               the ablation
========================  ========  =========  ===============================================

Staging models read per-epoch feature stores (one step per epoch, e.g. ``neuroconv
preprocess sleep-edf``); detection models read raw single-channel EEG in µV (e.g.
``neuroconv preprocess dreams``). Every choice is made on the training part (and its
inner split) of each fold; the neural models train by the same loop, budget and early
stopping as every neural model of the zoo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from .base import Decoder, DecodeData, Traits, TrainingPart, class_weights, proba_of, register
from .neural import fit_net, refit_steps, training_report

__all__ = ["EpochClassifierDecoder", "NightNetDecoder", "SpindleDecoder", "SpindleConvDecoder", "DenseSequenceNet",
           "SleepConvSettings", "GRUSettings", "YasaSettings", "SigmaSettings", "SpindleConvSettings",
           "envelope_features", "bin_labels", "SPINDLE_BANDS"]


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
    """Bidirectional long convolutions over the whole night (ours): every epoch of the
    night is staged in one pass; each layer's kernel reaches ``kernel_size`` epochs to
    each side, so the network reads about an hour around each epoch at the default.

    Args:
        d_model: Width of the residual stream.
        n_layers: Residual blocks.
        channels: Kernels per feature.
        kernel_size: Kernel reach in epochs on each side (2 * kernel_size - 1 taps; 15:
            29-epoch kernels, a receptive field of about an hour over 4 layers, chosen
            by the inner-validation loss among 5, 15, 60, 240 and the whole night on
            the shared Sleep-EDF nights; null: as long as the longest night; 5: the
            9-epoch ablation).
        lam: Squash threshold of the kernels.
        smooth_width: Moving-average width of the kernels (odd).
        kernel_dropout: Dropout on the kernel taps.
        kernel_lr: Learning rate of the kernels (no weight decay).
        kernel_init: Kernel initialisation: geometric (decaying) or random.
        dropout: Residual and layer dropout.
        in_dropout: Dropout on the input features.
        crop: Train on random crops of at most this many epochs (0: whole nights).
        min_crop: The shortest crop: each training crop's length is drawn between
            min_crop and crop.
    """

    d_model: int = 64
    n_layers: int = 4
    channels: int = 1
    kernel_size: Optional[int] = 15
    lam: float = 0.003
    smooth_width: int = 7
    kernel_dropout: float = 0.0
    kernel_lr: float = 1e-3
    kernel_init: str = "geometric"
    dropout: float = 0.2
    in_dropout: float = 0.1
    crop: int = 1400
    min_crop: int = 64


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
        crop: Train on random crops of at most this many epochs (0: whole nights).
        min_crop: The shortest crop: each training crop's length is drawn between
            min_crop and crop.
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
        crop: Train on random crops of at most this many epochs (0: whole nights).
        min_crop: The shortest crop: each training crop's length is drawn between
            min_crop and crop.
    """

    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.2
    proj_size: int = 64
    crop: int = 1400
    min_crop: int = 64


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

        crop, low = int(self.settings.crop), int(self.settings.min_crop)
        return (lambda idx: StepCrops(data.windows.subset(idx), crop, low) if crop else data.windows.subset(idx))

    def fit(self, part: TrainingPart) -> "NightNetDecoder":
        _check_epochs(part.data, self.name)
        tc, inner, data = self.context.trainer, part.inner, part.data
        self.step_seconds = 1.0 / data.sfreq(self.name)
        train = self._datasets(data)
        net, result = fit_net(part, self.new_net(part), inner.train, inner.val, tc, kind="steps",
                              train_ds=train(inner.train), budget=self.context.budget,
                              early_stopping=self.context.early_stopping)
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

    def save(self, folder) -> None:
        """The learned kernels and their magnitude responses (``kernels.png``)."""
        from ..plots import plot_kernels

        plot_kernels(self.net, Path(folder) / "kernels.png", step_seconds=self.step_seconds)


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


# --------------------------------------------------------------------------- spindles, ours
#: the envelope front end's bands (Hz): delta to beta, the sigma band finely
SPINDLE_BANDS = ((0.5, 4.0), (4.0, 8.0), (8.0, 11.0), (11.0, 13.0), (12.0, 14.0), (13.0, 16.0), (16.0, 20.0),
                 (20.0, 24.0))


def envelope_features(signal, sfreq: float, bands=SPINDLE_BANDS, bin_seconds: float = 0.1) -> tuple[np.ndarray, int]:
    """The fixed front end of the spindle models: the signal (centred on its median and
    scaled by the 90th percentile of its absolute deviation), band-passed in each band
    (MNE's zero-phase FIR filter), its squared Hilbert envelope averaged over bins of
    ``bin_seconds``, then ``log(· + 0.01)``. Returns ``(features (n_bins, n_bands),
    samples per bin)``; the bins cover the signal from its start (a last partial bin is
    dropped)."""
    from mne.filter import filter_data
    from scipy.signal import hilbert

    x = np.asarray(signal, dtype=np.float64)
    x = x - np.median(x)
    x = x / max(float(np.percentile(np.abs(x), 90)), 1e-12)
    b = max(1, int(round(bin_seconds * sfreq)))
    n = len(x) // b
    out = []
    for lo, hi in bands:
        hi_ok = hi if hi < sfreq / 2 else None
        xf = filter_data(x, sfreq, lo, hi_ok, method="fir", verbose=False)
        env = np.abs(hilbert(xf)) ** 2
        out.append(env[: n * b].reshape(n, b).mean(1))
    return np.log(np.stack(out, 1) + 0.01), b


def bin_labels(events: np.ndarray, n_bins: int, b: int) -> np.ndarray:
    """1 for the bins of ``b`` samples that lie at least half inside an event, else 0."""
    from neuroconv.engine.events import events_to_mask

    ev = np.asarray(events, dtype=np.int64).reshape(-1, 2)
    mask = events_to_mask(np.clip(ev[:, 0], 0, n_bins * b), np.clip(ev[:, 1], 0, n_bins * b), n_bins * b)
    return (mask.reshape(n_bins, b).mean(1) >= 0.5).astype(np.int64)


class _Bins:
    """A dataset of per-bin features and labels (the spindle models' inputs)."""

    def __init__(self, feats: list, labels: list):
        import torch

        self.x = [torch.as_tensor(f, dtype=torch.float32) for f in feats]
        self.y, self.keys = labels, ["envelope"] * len(feats)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "key": "envelope", "sfreq": 10.0, "y": self.y[i], "index": i}


@dataclass
class SpindleConvSettings:
    """Bidirectional long convolutions over a whole recording's band envelopes (ours):
    the fixed envelope front end (:func:`envelope_features`, 0.1-s bins), a per-bin
    network, and events from its probabilities (threshold and shortest event chosen on
    the training recordings).

    Args:
        d_model: Width of the residual stream.
        n_layers: Residual blocks.
        kernel_size: Kernel length in bins on each side (3000: 300 s; 5: the ablation).
        lam: Squash threshold of the kernels.
        smooth_width: Moving-average width of the kernels (odd).
        kernel_lr: Learning rate of the kernels (no weight decay).
        dropout: Residual and layer dropout.
        crop: Train on random crops of this many bins.
        bin_seconds: The envelope's bin length.
        min_durations: Candidate shortest events, in seconds.
        max_duration: Longest event, in seconds.
        feature_norm: How the log envelopes are standardised: recording (each recording
            by its own bins' mean and sd, label-free: power relative to that recording's
            own; chosen over training by the inner-validation by-event F1 on the shared
            DREAMS excerpts) or training (by the training recordings' mean and sd).
    """

    d_model: int = 32
    n_layers: int = 4
    kernel_size: Optional[int] = 3000
    lam: float = 0.003
    smooth_width: int = 15
    kernel_lr: float = 1e-4
    dropout: float = 0.2
    crop: int = 6000
    bin_seconds: float = 0.1
    min_durations: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7])
    max_duration: float = 3.0
    feature_norm: Literal["training", "recording"] = "recording"


@dataclass
class SpindleConvShortSettings(SpindleConvSettings):
    """The same spindle network with 9-bin kernels (0.9 s): the ablation of context (ours).

    Args:
        d_model: Width of the residual stream.
        n_layers: Residual blocks.
        kernel_size: Kernel length in bins on each side (5: 9-bin kernels).
        lam: Squash threshold of the kernels.
        smooth_width: Moving-average width of the kernels (odd).
        kernel_lr: Learning rate of the kernels (no weight decay).
        dropout: Residual and layer dropout.
        crop: Train on random crops of this many bins.
        bin_seconds: The envelope's bin length.
        min_durations: Candidate shortest events, in seconds.
        max_duration: Longest event, in seconds.
        feature_norm: How the log envelopes are standardised: training (by the mean and
            sd of the training recordings' bins) or recording (each recording by its own).
    """

    kernel_size: Optional[int] = 5


class SpindleConvDecoder(Decoder):
    """Spindles by long convolutions over band envelopes (see :class:`SpindleConvSettings`):
    trained on the fold's training recordings with the fold's class weighting of the bins,
    early-stopped on the inner split, refitted on the whole part for the chosen budget;
    the threshold and the shortest event are then chosen by pooled by-event F1 on the
    training recordings."""

    def _features(self, data: DecodeData, idx) -> tuple[list, list, list]:
        cache = self.__dict__.setdefault("_cache", {})
        feats, labels, bins = [], [], []
        for i in idx:
            i = int(i)
            if i not in cache:
                x, sfreq = SpindleDecoder._signal(data, i)
                cache[i] = envelope_features(x, sfreq, bin_seconds=self.settings.bin_seconds)
            f, b = cache[i]
            feats.append(f)
            bins.append(b)
            labels.append(bin_labels(data.y[i], len(f), b) if data.y[i] is not None else np.zeros(len(f), int))
        return feats, labels, bins

    def _norm(self, f: np.ndarray) -> np.ndarray:
        """One recording's log envelopes, standardised as ``settings.feature_norm`` says."""
        if self.settings.feature_norm == "recording":
            sd = f.std(0)
            return (f - f.mean(0)) / np.where(sd > 1e-8, sd, 1.0)
        if self.settings.feature_norm != "training":
            raise ValueError(f"decode.{self.name}.feature_norm must be training or recording; "
                             f"got {self.settings.feature_norm!r}.")
        return (f - self.mean_) / self.sd_

    def _dataset(self, data: DecodeData):
        def make(idx):
            feats, labels, _ = self._features(data, idx)
            return _Bins([self._norm(f) for f in feats], labels)

        return make

    def _standardise(self, data: DecodeData, idx) -> None:
        """The training statistics ``feature_norm: training`` standardises by (none are
        needed when each recording is standardised by its own)."""
        if self.settings.feature_norm == "recording":
            return
        F = np.concatenate(self._features(data, idx)[0])
        self.mean_, self.sd_ = F.mean(0), np.where(F.std(0) > 1e-8, F.std(0), 1.0)

    def new_net(self, n_in: int, seed: int):
        import torch

        torch.manual_seed(seed)
        return DenseSequenceNet.sequence(n_in, 2, _SpindleNet(self.settings), l_max=self.settings.kernel_size or 3000)

    def fit(self, part: TrainingPart) -> "SpindleConvDecoder":
        from ..data import StepCrops

        data, inner, tc, s = part.data, part.inner, self.context.trainer, self.settings
        if data.kind != "detection":
            raise ValueError(f"{self.name} detects events: use it with decode.task detection.")
        fit_idx = inner.train if len(inner.val) else part.train
        self._standardise(data, fit_idx)
        ds = self._dataset(data)
        lab = np.concatenate(self._features(data, fit_idx)[1])
        cw = class_weights(lab, 2, part.class_weight)
        net, result = fit_net(part, self.new_net(len(SPINDLE_BANDS), part.seed), inner.train, inner.val, tc,
                              kind="steps", train_ds=StepCrops(ds(inner.train), s.crop), dataset=ds,
                              budget=self.context.budget, class_weights=cw,
                              early_stopping=self.context.early_stopping, val_score=self._val_score)
        self.training = training_report(result, tc.weight_decay)
        self.hyperparameters = {"best_step": result.best_step}
        if self.context.refit and len(inner.val):
            steps = refit_steps(result.best_step, len(inner.train), len(part.train))
            self.training["refit_steps"] = steps
            self._standardise(data, part.train)
            ds = self._dataset(data)
            net = self.new_net(len(SPINDLE_BANDS), part.seed)
            if steps:
                net, _ = fit_net(part, net, part.train, part.train[:0], tc, kind="steps", steps=steps,
                                 train_ds=StepCrops(ds(part.train), s.crop), dataset=ds, budget=self.context.budget,
                                 class_weights=class_weights(np.concatenate(self._features(data, part.train)[1]),
                                                             2, part.class_weight))
        self.net = net.eval()
        self._choose_threshold(data, part.train)
        return self

    def _proba(self, data: DecodeData, idx) -> tuple[list, list]:
        feats, _, bins = self._features(data, idx)
        p = predict_steps(self.net, _Bins([self._norm(f) for f in feats],
                                          [np.zeros(len(f), int) for f in feats]), [len(f) for f in feats])
        return [q[:, 1] for q in p], bins

    def _events(self, proba, b: int, threshold: float, min_dur: float) -> np.ndarray:
        from neuroconv.engine.events import proba_to_events

        bins_per_s = 1.0 / self.settings.bin_seconds
        on, off = proba_to_events(proba, threshold, min_len=max(1, int(round(min_dur * bins_per_s))),
                                  max_len=int(round(self.settings.max_duration * bins_per_s)))
        return np.stack([on * b, off * b], 1).astype(np.int64) if len(on) else np.zeros((0, 2), np.int64)

    def _best_threshold(self, probas, bins, truth) -> tuple[float, float, float]:
        """``(f1, threshold, shortest event)``: the pair of the grid (thresholds 0.05 to
        0.95 by 0.05, ``settings.min_durations``) with the best pooled by-event F1 at IoU
        0.2 of the recordings' probabilities against their true events (the first on ties)."""
        from neuroconv.engine.events import event_scores, match_events

        best = None
        for thr in np.round(np.arange(0.05, 0.96, 0.05), 2):
            for dur in self.settings.min_durations:
                counts = np.zeros(3)
                for p, b, t in zip(probas, bins, truth):
                    counts += match_events(t, self._events(p, b, thr, dur), 0.2).counts
                f1 = event_scores(counts.astype(int))[2]
                if best is None or f1 > best[0]:
                    best = (f1, float(thr), float(dur))
        return best

    def _val_score(self, items) -> float:
        """The by-event F1 at the best threshold of one validation pass (``(proba, y)`` per
        recording, in bins; -100 marks padding): what ``decode.early_stopping metric``
        follows."""
        from neuroconv.engine.events import mask_to_events

        probas, truth = [], []
        for proba, y in items:
            keep = np.asarray(y) != -100
            probas.append(np.asarray(proba)[keep, 1])
            truth.append(np.stack(mask_to_events(np.asarray(y)[keep] == 1), 1))
        return float(self._best_threshold(probas, [1] * len(probas), truth)[0])

    def _choose_threshold(self, data: DecodeData, idx) -> None:
        probas, bins = self._proba(data, idx)
        truth = [np.asarray(data.y[i]).reshape(-1, 2) for i in idx]
        best = self._best_threshold(probas, bins, truth)
        self.threshold_, self.min_duration_ = best[1], best[2]
        self.hyperparameters.update(threshold=best[1], min_duration=best[2], train_f1=float(best[0]))

    def predict(self, data: DecodeData, idx) -> list:
        probas, bins = self._proba(data, idx)
        return [self._events(p, b, self.threshold_, self.min_duration_) for p, b in zip(probas, bins)]

    def save(self, folder) -> None:
        """The learned kernels and their magnitude responses (``kernels.png``)."""
        from ..plots import plot_kernels

        plot_kernels(self.net, Path(folder) / "kernels.png", step_seconds=self.settings.bin_seconds)


class _SpindleNet:
    """The :class:`SleepConvSettings`-like view of spindle settings the network builder reads."""

    def __init__(self, s):
        self.d_model, self.n_layers, self.channels = s.d_model, s.n_layers, 1
        self.kernel_size, self.lam, self.smooth_width = s.kernel_size, s.lam, s.smooth_width
        self.kernel_dropout, self.kernel_lr, self.kernel_init = 0.0, s.kernel_lr, "geometric"
        self.dropout, self.in_dropout = s.dropout, 0.0


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
         summary="bidirectional long convolutions over the whole night (29-epoch kernels, about an hour of "
                 "context), a stage per epoch")
register("sleepconv_short", Traits("ours", "neural", _EEG, _STAGING, paradigm="sleep"), NightNetDecoder,
         settings=SleepConvShortSettings, net="sequence",
         summary="sleepconv with its kernels cut to 9 epochs: the ablation of context")
register("yasa", Traits("baseline", "classical", _EEG, ("detection",), library="yasa", paradigm="sleep"),
         SpindleDecoder, settings=YasaSettings, detector="yasa",
         summary="YASA's spindles_detect, thresholds chosen on the training recordings")
register("spindleconv", Traits("ours", "neural", _EEG, ("detection",), paradigm="sleep"), SpindleConvDecoder,
         settings=SpindleConvSettings,
         summary="band envelopes -> bidirectional long convolutions over the recording (300-s kernels) -> events")
register("spindleconv_short", Traits("ours", "neural", _EEG, ("detection",), paradigm="sleep"), SpindleConvDecoder,
         settings=SpindleConvShortSettings, summary="spindleconv with 9-bin (0.9-s) kernels: the ablation of context")
register("sigma_lr", Traits("baseline", "classical", _EEG, ("detection",), library="mne", paradigm="sleep"),
         SpindleDecoder, settings=SigmaSettings, detector="sigma",
         summary="sigma-band features per window -> logistic regression -> events (threshold on the training "
                 "recordings)")
del _name, _model, _hmm, _summary
