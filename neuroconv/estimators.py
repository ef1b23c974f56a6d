"""scikit-learn estimators on ``X (n_samples, n_channels, n_times)``: long-convolution
sequence models, and long-conv filters read out through covariances.

Every estimator takes ``X`` of shape ``(n, C, T)`` (a 2D ``X`` is read as one channel,
``(n, T)``) and works inside ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``.
Recordings of different lengths go in one array padded with NaN at the end (trailing NaN
steps are padding; a NaN anywhere else is an error). They follow scikit-learn's rules:
``__init__`` only stores its arguments, ``fit`` validates them, fitted attributes end in
``_``.

Two families, each a model of the zoo (:mod:`neuroconv.brain.zoo`), so an estimator
trains by exactly the code path of ``neuroconv decode``:

- :class:`LongConvClassifier`, :class:`LongConvRegressor`: the long-convolution sequence
  model, the ``scratch`` entry (``finetune``/``probe`` with ``pretrained``): a
  :class:`neuroconv.SequenceModel` backbone (``layer``, ``d_model``, ``n_layers``; the
  kernels of :class:`neuroconv.ModelConfig`), mean- or last-pooled (``pool``), with a
  linear head.
- :class:`CovConvClassifier`, :class:`CovConvRegressor`: the ``covconv`` entry
  (:class:`neuroconv.brain.covconv.CovConvNet`): learned long-conv filters, then a
  Riemannian read-out: Ledoit-Wolf covariances projected to the tangent space (Barachant
  et al. 2012, doi:10.1109/TBME.2011.2172210), or log-variances. The head starts at the
  logistic regression of the training features, so an untrained model is the
  tangent-space + logistic-regression pipeline, and training moves on from there only
  while the held-out validation loss improves.

The held-out validation part (``validation_fraction``, by ``groups`` when ``fit`` gets
them) is the inner split every choice is made on, as in ``neuroconv decode``; unlike
decode, the estimator keeps the early-stopped model rather than refitting it on all of
``X`` (scikit-learn's own searches refit around it).

Defaults are those of ``neuroconv decode``: the sequence models' kernels are
:class:`neuroconv.ModelConfig`'s (``lam=0.003``, ``smooth_width=9``, geometric init,
kernel dropout 0.1), the covariance models' are ``decode.covconv``'s (``lam=0``,
``smooth_width=5``, box init, ``head_c`` chosen on the validation part), and classes are
balanced in the loss. Where an estimator differs (a smaller training budget, centred
kernels), its docstring says why.
"""

from __future__ import annotations

from neuroconv.extras import require_brain  # noqa: F401 - an ImportError that names the missing extra

import numpy as np  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["LongConvClassifier", "LongConvRegressor", "CovConvClassifier", "CovConvRegressor"]

_DOC_LONGCONV = """
    Parameters
    ----------
    layer : str, default="longconv"
        Sequence layer of the backbone, a name of :data:`neuroconv.LAYERS`.
    d_model : int, default=64
        Width of the residual stream (``neuroconv.ModelConfig``'s default).
    n_layers : int, default=4
        Number of residual blocks (``neuroconv.ModelConfig``'s default).
    bidirectional : bool, default=True
        Centred (non-causal) convolutions. Unlike ``neuroconv.ModelConfig`` (causal, for
        next-step pretraining), whole windows are classified here, so the model may look
        both ways.
    pool : {"mean", "last"}, default="mean"
        How the sequence is pooled before the linear head.
    dropout : float, default=0.1
        Residual dropout, and dropout inside each layer (``neuroconv.ModelConfig``'s).
    lam : float, default=0.003
        Squash threshold of the long-conv kernels.
    smooth_width : int, default=9
        Moving-average width of the long-conv kernels (odd).
    kernel_lr : float, default=1e-3
        Learning rate of the kernel parameters (no weight decay).
    pretrained : str or None, default=None
        A ``neuroconv pretrain`` run folder whose backbone initialises the model.
    freeze_backbone : bool, default=False
        With ``pretrained``: train only the input encoder (for a new channel set) and the
        head, a linear probe.
"""

_DOC_COVCONV = """
    Parameters
    ----------
    readout : {"tangent", "logvar"}, default="tangent"
        ``"tangent"``: Ledoit-Wolf covariances of the filtered channels, projected to the
        tangent space at the training covariances' mean (the Riemannian pipelines'
        read-out). ``"logvar"``: log-variances (ShallowConvNet form). A single channel
        has no connectivity: tangent then reads out log-variances.
    n_filters : int, default=2
        Temporal filters, started as moving averages of widths 1, 3, 9... steps (the
        identity and octave-spaced low-pass filters), then learned.
    filter_len : int, default=16
        Half-length of the centred filters, in steps.
    spatial : int or None, default=None
        Spatial filters per temporal filter (None: the channels as given).
    head_c : float or None, default=None
        Inverse L2 strength of the logistic regression (ridge ``1/C`` for regression)
        that starts the head. None chooses it from the zoo's grid
        (``neuroconv.brain.zoo.C_GRID``) by the class-weighted log loss on the validation
        part, as ``neuroconv decode`` does (C = 1 when ``patience=0`` or
        ``validation_fraction=0`` leave no validation part).
    dropout : float, default=0.5
        Dropout on the standardised features (``decode.covconv``'s).
    lam : float, default=0.0
        Squash threshold of the filters (``decode.covconv``'s: short filters need no
        sparsity).
    smooth_width : int, default=5
        Moving-average width of the filters (odd; ``decode.covconv``'s).
    kernel_lr : float, default=1e-3
        Learning rate of the filters (no weight decay).
"""

_DOC_TRAINING = """    lr : float, default=1e-3
    weight_decay : float, default=0.05
    max_epochs : int, default=10
        Smaller than ``neuroconv decode``'s 30: an estimator is fitted many times inside
        scikit-learn's searches and MOABB's evaluations; early stopping usually ends it
        sooner.
    batch_size : int, default=32
    patience : int, default=3
        Early stopping on a held-out ``validation_fraction`` of the training data (by
        ``groups`` when ``fit`` gets them); 0 turns it off and uses all data for training.
    validation_fraction : float, default=0.15
    sfreq : float or None, default=None
        Sampling rate of ``X`` in Hz. Sequence models get a time-in-seconds embedding when
        it is given (needed to mix sampling rates); None means no time embedding (and
        steps for the covariance models' filter lengths).
    random_state : int, default=0
"""

_DOC_CLASS_WEIGHT = """    class_weight : dict, "balanced" or None, default="balanced"
        Class weights in the loss and in the logistic regression that starts a head
        (``"balanced"``: inversely to class frequency, as ``neuroconv decode`` weighs
        them; None: every sample the same).
"""

_DOC_ATTRIBUTES = """
    Attributes
    ----------
    {first}model_ : the trained torch module.
    decoder_ : the zoo's fitted decoder.
    fit_info_ : dict with epochs, steps, best validation loss and hyperparameters.
"""


class _LongConvBase(BaseEstimator):
    """What every estimator here shares: validation of ``X (n, C, T)``, the zoo config,
    the fit through the zoo. The parameter sets are the subclasses'; the zoo config
    (:meth:`_model`) reads the other family's settings from these class attributes."""

    # the covariance read-out's settings, for the sequence models' zoo config
    readout = "pool"
    n_filters = 2
    filter_len = 16
    spatial = None
    head_c = None
    # the sequence model's settings, for the covariance models' zoo config
    layer = "longconv"
    d_model = 64
    n_layers = 4
    bidirectional = True
    pool = "mean"
    pretrained = None
    freeze_backbone = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ helpers
    def _check_params(self):
        readouts = ("pool",) if isinstance(self, _SequenceParams) else ("tangent", "logvar")
        if self.readout not in readouts:
            raise ValueError(f"`readout` must be one of {readouts}; got {self.readout!r}.")
        from neuroconv.layers import check_layer

        check_layer(self.layer)
        if self.pool not in ("mean", "last"):
            raise ValueError(f"`pool` must be 'mean' or 'last'; got {self.pool!r}.")
        for name in ("d_model", "n_layers", "max_epochs", "batch_size", "n_filters", "filter_len"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {v!r}.")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"`validation_fraction` must be in [0, 1); got {self.validation_fraction!r}.")
        if self.freeze_backbone and not self.pretrained:
            raise ValueError("`freeze_backbone=True` needs `pretrained` (a pretrain run folder).")
        if self.pretrained and self.readout != "pool":
            raise ValueError(f"`pretrained` initialises a pooled backbone: set readout='pool' (got "
                             f"readout={self.readout!r}).")

    def _as_3d(self, X, reset: bool, y=None, y_numeric: bool = False):
        """Validate ``X`` (and ``y`` when fitting); return ``(n, channels, times)`` float32
        and the number of valid (non-padding) steps of each sample."""
        kw = dict(allow_nd=True, dtype=np.float32, ensure_all_finite="allow-nan")
        if not reset:
            self._check_layout(X)
        if reset:
            X, y = validate_data(self, X, y, y_numeric=y_numeric, **kw)
        else:
            X = validate_data(self, X, reset=False, **kw)
        if X.ndim == 2:
            X = X[:, None, :]  # one channel
        if X.ndim != 3:
            raise ValueError(
                f"X must have shape (n_samples, n_channels, n_times) or (n_samples, n_times); "
                f"got {X.ndim} dimensions."
            )
        if X.shape[2] < 2:
            raise ValueError(f"X has {X.shape[2]} feature(s) (time steps) per channel; a sequence model needs at "
                             "least 2.")
        if np.isinf(X).any():
            raise ValueError("X contains infinite values; only trailing NaN steps (padding) are allowed.")
        bad = np.isnan(X).any(1)  # (n T): steps with a NaN in some channel
        lengths = np.where(bad.any(1), bad.argmax(1), X.shape[2])
        if bad.any() and not all(bad[i, n:].all() and not np.isnan(X[i, :, :n]).any() for i, n in enumerate(lengths)):
            raise ValueError("X contains NaN that are not trailing padding: NaN may only fill the end of a shorter "
                             "recording (every channel, every step from some point on). Impute other gaps first.")
        if (lengths < 2).any():
            raise ValueError("every sample needs at least 2 valid time steps; some have fewer (NaN padding?).")
        return ((X, lengths), y) if reset else (X, lengths)

    def _check_layout(self, X) -> None:
        """At predict time: a 3D ``X`` whose channels sit on the last axis, ``(n, T, C)``,
        is named as such (the message keeps scikit-learn's own wording)."""
        shape = getattr(X, "shape", None)
        fitted = getattr(self, "n_features_in_", None)
        if shape is None or len(shape) != 3 or fitted is None or shape[1] == fitted:
            return
        hint = " X looks like (n, T, C): pass X.transpose(0, 2, 1)." if shape[2] == fitted else ""
        raise ValueError(f"X has {shape[1]} features, but {type(self).__name__} is expecting {fitted} features as "
                         f"input: got X (n, C, T) = {tuple(shape)}; this estimator was fitted on (n, C, T) with C = "
                         f"{fitted} channels.{hint}")

    def _model(self, sfreq: float, n_channels: int):
        """``(context, settings)`` the zoo makes the model from: the same backbone config,
        settings and decoders as ``neuroconv decode`` (one training path)."""
        from neuroconv.brain import zoo
        from neuroconv.brain.config import ModelConfig
        from neuroconv.brain.zoo.covconv import CovConvSettings
        from neuroconv.brain.zoo.neural import SequenceSettings
        from neuroconv.engine.config import TrainerConfig

        model = ModelConfig(layer=self.layer, d_model=int(self.d_model), n_layers=int(self.n_layers),
                            bidirectional=bool(self.bidirectional), dropout=self.dropout, lam=self.lam,
                            smooth_width=int(self.smooth_width), kernel_lr=self.kernel_lr,
                            time_embedding=self.sfreq is not None)
        trainer = TrainerConfig(max_epochs=int(self.max_epochs), lr=self.lr, weight_decay=self.weight_decay,
                                seed=int(self.random_state), patience=int(self.patience), progress="none",
                                accelerator="cpu", devices=1, warmup_steps=10, batch_size=int(self.batch_size))
        # the estimator keeps the model early-stopped on its validation part (no refit)
        context = zoo.Context(trainer=trainer, backbone=model, seed=int(self.random_state), refit=False)
        if self.readout == "pool":
            return context, SequenceSettings(pool=self.pool)
        readout = self.readout
        if n_channels == 1 and not self.spatial:  # one channel has no connectivity: its log-variance
            readout = "logvar"
        return context, CovConvSettings(readout=readout, n_filters=int(self.n_filters), spatial=int(self.spatial or 0),
                                        filter_seconds=int(self.filter_len) / sfreq, diagonal=True, means=True,
                                        head_c=self.head_c, dropout=self.dropout, lam=self.lam,
                                        smooth_width=int(self.smooth_width), kernel_init="box")

    def _model_name(self) -> str:
        if self.readout != "pool":
            return "covconv"
        if self.pretrained:
            return "probe" if self.freeze_backbone else "finetune"
        return "scratch"

    def _data(self, X, lengths, y=None, kind="classification", classes=(), groups=None):
        from neuroconv.brain.data import ArrayWindows
        from neuroconv.brain.zoo import DecodeData

        n = len(X)
        windows = ArrayWindows(X, y, self.sfreq or 1.0, f"input{X.shape[1]}", lengths=lengths)
        groups = np.arange(n) if groups is None else np.asarray(groups)
        return DecodeData(windows, np.zeros(n) if y is None else np.asarray(y), kind, list(classes), groups,
                          np.arange(n).astype(str), np.zeros(n, dtype=np.int64), np.asarray(lengths, dtype=np.int64))

    def _fit(self, X, lengths, y_enc, kind: str, n_out: int, class_weight="none", groups=None):
        from neuroconv.brain import zoo
        from neuroconv.brain.models import load_pretrained
        from neuroconv.engine.folds import Folds, Holdout

        self._check_params()
        n, C, T = X.shape
        if groups is not None and len(groups) != n:
            raise ValueError(f"`groups` must have one value per sample ({n}); got {len(groups)}.")
        classes = [str(c) for c in range(n_out)] if kind == "classification" else []
        data = self._data(X, lengths, y_enc, kind, classes, groups)
        inner = Holdout(np.arange(n), np.arange(0), "none", note="early stopping off")
        if self.patience > 0 and self.validation_fraction > 0 and len(np.unique(data.groups)) >= 3:
            inner = Folds(cv="none", seed=int(self.random_state), val_fraction=self.validation_fraction,
                          stratify=kind == "classification").holdout(y_enc, data.groups)
        context, settings = self._model(self.sfreq or 1.0, C)
        pretrained = self.pretrained
        part = zoo.TrainingPart(data, np.arange(n), inner, class_weight, int(self.random_state),
                                backbone=lambda: load_pretrained(pretrained) if pretrained else None)
        import lightning as L

        L.seed_everything(int(self.random_state), workers=True, verbose=False)
        self.decoder_ = zoo.make(self._model_name(), context, settings).fit(part)
        self.model_ = self.decoder_.net
        self.fit_info_ = {**self.decoder_.report().get("training", {}),
                          "hyperparameters": self.decoder_.report()["hyperparameters"]}
        self.n_times_ = T
        self.task_ = (kind, classes)
        return self

    def _raw_predict(self, X):
        """Probabilities ``(n, K)`` (classifier) or standardised predictions ``(n,)``."""
        check_is_fitted(self, "decoder_")
        X, lengths = self._as_3d(X, reset=False)
        kind, classes = self.task_
        return self.decoder_.predict(self._data(X, lengths, None, kind, classes), np.arange(len(X)))



class _SequenceParams:
    """Marks the long-convolution sequence models (read-out ``"pool"``)."""


def _init_doc(summary: str, params: str, extra: str = "", first_attr: str = "") -> str:
    return (summary.rstrip() + "\n" + params.rstrip("\n") + "\n" + _DOC_TRAINING + extra
            + _DOC_ATTRIBUTES.format(first=first_attr))


_SEQUENCE_SUMMARY = """The long-convolution sequence model as a {kind}: ``X (n, C, T)`` -> {out}.

    A :class:`neuroconv.SequenceModel` (``layer`` layers of long convolutions with
    squash/smooth kernels, Fu et al. 2023, doi:10.48550/arXiv.2302.06646) reads the ``C``
    channels at each of the ``T`` steps, pools over the valid steps and applies a linear
    head; the ``scratch`` model of ``neuroconv decode`` (``finetune``/``probe`` with
    ``pretrained``).
"""

_COVCONV_SUMMARY = """Long-conv filters with a covariance (Riemannian) read-out as a {kind}:
    ``X (n, C, T)`` -> {out}.

    Learned long-convolution filters (Fu et al. 2023, doi:10.48550/arXiv.2302.06646),
    then Ledoit-Wolf covariances of the filtered channels projected to the tangent space
    (Barachant et al. 2012, doi:10.1109/TBME.2011.2172210), or log-variances, and a
    linear head started at the logistic regression of the training features: the
    ``covconv`` model of ``neuroconv decode``. Untrained, it is the tangent-space +
    logistic-regression pipeline; training keeps a change only while the validation
    loss improves.
"""


class _ClassifierFit:
    def fit(self, X, y, groups=None):
        """Fit on ``X (n, C, T)`` (or ``(n, T)``: one channel; NaN-padded at the end for
        shorter recordings) and labels ``y (n,)``.

        ``groups`` ``(n,)`` (e.g. subjects) keep the early-stopping validation split by
        group. Returns ``self``.
        """
        (X, lengths), y = self._as_3d(X, reset=True, y=y)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least 2.")
        if self.class_weight is None:
            cw = "none"
        elif isinstance(self.class_weight, str) and self.class_weight == "balanced":
            cw = "balanced"
        elif isinstance(self.class_weight, dict):
            index = {c: i for i, c in enumerate(self.classes_.tolist())}
            cw = {index[c]: float(w) for c, w in self.class_weight.items() if c in index}
        else:
            raise ValueError(f"`class_weight` must be None, 'balanced' or a dict; got {self.class_weight!r}.")
        return self._fit(X, lengths, y_enc, "classification", len(self.classes_), cw, groups)

    def predict_proba(self, X):
        """Class probabilities ``(n, n_classes)`` (columns in the order of ``classes_``)
        of ``X (n, C, T)``, with the channels and padding of ``fit``'s ``X``."""
        return self._raw_predict(X)

    def predict(self, X):
        """Labels ``(n,)`` of ``X (n, C, T)``: the most probable class of each sample."""
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(1)]


class _RegressorFit:
    def fit(self, X, y, groups=None):
        """Fit on ``X (n, C, T)`` (or ``(n, T)``) and targets ``y (n,)`` (standardised
        inside; predictions are in ``y``'s units). ``groups`` as for the classifiers.
        Returns ``self``."""
        (X, lengths), y = self._as_3d(X, reset=True, y=y, y_numeric=True)
        y = np.asarray(y, dtype=np.float32)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std() or 1.0)
        return self._fit(X, lengths, (y - self.y_mean_) / self.y_scale_, "regression", 1, groups=groups)

    def predict(self, X):
        """Predictions ``(n,)`` of ``X (n, C, T)`` in the units of ``fit``'s ``y``."""
        return self._raw_predict(X) * self.y_scale_ + self.y_mean_


class LongConvClassifier(_ClassifierFit, ClassifierMixin, _SequenceParams, _LongConvBase):
    __doc__ = _init_doc(_SEQUENCE_SUMMARY.format(kind="classifier", out="labels ``(n,)``"), _DOC_LONGCONV,
                        _DOC_CLASS_WEIGHT, "classes_ : ndarray of the class labels.\n    ")

    def __init__(self, layer="longconv", d_model=64, n_layers=4, bidirectional=True, pool="mean", dropout=0.1,
                 lam=0.003, smooth_width=9, kernel_lr=1e-3, lr=1e-3, weight_decay=0.05, max_epochs=10,
                 batch_size=32, patience=3, validation_fraction=0.15, sfreq=None, pretrained=None,
                 freeze_backbone=False, random_state=0, class_weight="balanced"):
        self.layer = layer
        self.d_model = d_model
        self.n_layers = n_layers
        self.bidirectional = bidirectional
        self.pool = pool
        self.dropout = dropout
        self.lam = lam
        self.smooth_width = smooth_width
        self.kernel_lr = kernel_lr
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.sfreq = sfreq
        self.pretrained = pretrained
        self.freeze_backbone = freeze_backbone
        self.random_state = random_state
        self.class_weight = class_weight


class LongConvRegressor(_RegressorFit, RegressorMixin, _SequenceParams, _LongConvBase):
    __doc__ = _init_doc(_SEQUENCE_SUMMARY.format(kind="regressor (one target)", out="predictions ``(n,)``"),
                        _DOC_LONGCONV, "", "y_mean_, y_scale_ : the standardisation of ``y``.\n    ")

    def __init__(self, layer="longconv", d_model=64, n_layers=4, bidirectional=True, pool="mean", dropout=0.1,
                 lam=0.003, smooth_width=9, kernel_lr=1e-3, lr=1e-3, weight_decay=0.05, max_epochs=10,
                 batch_size=32, patience=3, validation_fraction=0.15, sfreq=None, pretrained=None,
                 freeze_backbone=False, random_state=0):
        self.layer = layer
        self.d_model = d_model
        self.n_layers = n_layers
        self.bidirectional = bidirectional
        self.pool = pool
        self.dropout = dropout
        self.lam = lam
        self.smooth_width = smooth_width
        self.kernel_lr = kernel_lr
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.sfreq = sfreq
        self.pretrained = pretrained
        self.freeze_backbone = freeze_backbone
        self.random_state = random_state


class CovConvClassifier(_ClassifierFit, ClassifierMixin, _LongConvBase):
    __doc__ = _init_doc(_COVCONV_SUMMARY.format(kind="classifier", out="labels ``(n,)``"), _DOC_COVCONV,
                        _DOC_CLASS_WEIGHT, "classes_ : ndarray of the class labels.\n    ")

    def __init__(self, readout="tangent", n_filters=2, filter_len=16, spatial=None, head_c=None, dropout=0.5,
                 lam=0.0, smooth_width=5, kernel_lr=1e-3, lr=1e-3, weight_decay=0.05, max_epochs=10,
                 batch_size=32, patience=3, validation_fraction=0.15, sfreq=None, random_state=0,
                 class_weight="balanced"):
        self.readout = readout
        self.n_filters = n_filters
        self.filter_len = filter_len
        self.spatial = spatial
        self.head_c = head_c
        self.dropout = dropout
        self.lam = lam
        self.smooth_width = smooth_width
        self.kernel_lr = kernel_lr
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.sfreq = sfreq
        self.random_state = random_state
        self.class_weight = class_weight


class CovConvRegressor(_RegressorFit, RegressorMixin, _LongConvBase):
    __doc__ = _init_doc(_COVCONV_SUMMARY.format(kind="regressor (one target)", out="predictions ``(n,)``"),
                        _DOC_COVCONV, "", "y_mean_, y_scale_ : the standardisation of ``y``.\n    ")

    def __init__(self, readout="tangent", n_filters=2, filter_len=16, spatial=None, head_c=None, dropout=0.5,
                 lam=0.0, smooth_width=5, kernel_lr=1e-3, lr=1e-3, weight_decay=0.05, max_epochs=10,
                 batch_size=32, patience=3, validation_fraction=0.15, sfreq=None, random_state=0):
        self.readout = readout
        self.n_filters = n_filters
        self.filter_len = filter_len
        self.spatial = spatial
        self.head_c = head_c
        self.dropout = dropout
        self.lam = lam
        self.smooth_width = smooth_width
        self.kernel_lr = kernel_lr
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.sfreq = sfreq
        self.random_state = random_state
