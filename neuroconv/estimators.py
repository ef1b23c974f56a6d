"""scikit-learn estimators around the long-convolution models.

``LongConvClassifier`` and ``LongConvRegressor`` take ``X`` of shape
``(n_samples, n_channels, n_times)`` (a 2D ``X`` is read as one channel,
``(n_samples, n_times)``) and work inside ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``. Recordings of different lengths go in one array padded with NaN at
the end (trailing NaN steps are padding; a NaN anywhere else is an error). They follow
scikit-learn's rules: ``__init__`` only stores its arguments, ``fit`` validates them,
fitted attributes end in ``_``.

Two model families, chosen by ``readout``:

- ``"tangent"`` (default) and ``"logvar"``: :class:`neuroconv.brain.covconv.CovConvNet`,
  long-conv filters read out through shrunk covariances (tangent space, or log-variance).
  The head starts at the logistic regression of the training features, so an untrained
  model is the tangent-connectivity + logistic-regression pipeline, and training moves
  on from there only while the held-out validation loss improves.
- ``"pool"``: a :class:`neuroconv.SequenceModel` backbone (``layer``, ``d_model``,
  ``n_layers``), mean- or last-pooled, with a linear head.

The defaults were chosen on the shared ABIDE data (docs/results.md has the measurement).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["LongConvClassifier", "LongConvRegressor"]

_LAYERS = ("longconv", "s4d", "butterfly", "gated", "attention")
_READOUTS = ("tangent", "logvar", "pool")


class _LongConvBase(BaseEstimator):
    """Shared parameters (documented once).

    Parameters
    ----------
    readout : {"tangent", "logvar", "pool"}, default="tangent"
        ``"tangent"``: long-conv filters, Ledoit-Wolf covariances, tangent space at the
        training covariances' log-Euclidean mean, linear head (started at the logistic
        regression of the training features). ``"logvar"``: the same with log-variances
        (ShallowConvNet form). ``"pool"``: a pooled SequenceModel backbone. A single
        channel has no connectivity: tangent then reads out log-variances.
    n_filters : int, default=2
        tangent/logvar: temporal filters, started as moving averages of widths 1, 3, 9...
        steps (the identity and octave-spaced low-pass filters), then learned.
    filter_len : int, default=16
        tangent/logvar: half-length of the centred filters, in steps.
    spatial : int or None, default=None
        tangent/logvar: spatial filters per temporal filter (None: the channels as given).
    head_c : float or None, default=0.05
        tangent/logvar: inverse L2 strength of the logistic regression that starts the head
        (0.05: the tangent-connectivity baseline's setting); None chooses it by
        cross-validation on the training part (slower on wide features).
    layer : {"longconv", "s4d", "butterfly", "gated", "attention"}, default="longconv"
        pool: sequence layer of the backbone.
    d_model : int, default=32
        pool: width of the residual stream.
    n_layers : int, default=2
        pool: number of residual blocks.
    bidirectional : bool, default=True
        pool: centred (non-causal) convolutions; whole windows are classified, so the
        model may look both ways.
    pool : {"mean", "last"}, default="mean"
        pool: how the sequence is pooled before the linear head.
    dropout : float, default=0.5
        Dropout (on the standardised features for tangent/logvar; residual for pool).
    lam : float, default=0.0
        Squash threshold of the long-conv kernels.
    smooth_width : int, default=5
        Moving-average width of the long-conv kernels (odd).
    kernel_lr : float, default=1e-3
        Learning rate of the kernel parameters (no weight decay).
    lr : float, default=1e-3
    weight_decay : float, default=0.05
    max_epochs : int, default=10
    batch_size : int, default=32
    patience : int, default=3
        Early stopping on a held-out ``validation_fraction`` of the training data (by
        ``groups`` when ``fit`` gets them); 0 turns it off and uses all data for training.
    validation_fraction : float, default=0.15
    sfreq : float or None, default=None
        pool: sampling rate of ``X`` in Hz. When given, the model gets a time-in-seconds
        embedding (needed to mix sampling rates); None means no time embedding.
    pretrained : str or None, default=None
        pool: a ``neuroconv pretrain`` run folder whose backbone initialises the model.
    freeze_backbone : bool, default=False
        pool, with ``pretrained``: train only the input encoder (for a new channel set)
        and the head, a linear probe.
    random_state : int, default=0
    """

    def __init__(self, readout="tangent", n_filters=2, filter_len=16, spatial=None, head_c=0.05, layer="longconv",
                 d_model=32, n_layers=2, bidirectional=True, pool="mean", dropout=0.5, lam=0.0, smooth_width=5,
                 kernel_lr=1e-3, lr=1e-3, weight_decay=0.05, max_epochs=10, batch_size=32, patience=3,
                 validation_fraction=0.15, sfreq=None, pretrained=None, freeze_backbone=False, random_state=0):
        self.readout = readout
        self.n_filters = n_filters
        self.filter_len = filter_len
        self.spatial = spatial
        self.head_c = head_c
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ helpers
    def _check_params(self):
        if self.readout not in _READOUTS:
            raise ValueError(f"`readout` must be one of {_READOUTS}; got {self.readout!r}.")
        if self.layer not in _LAYERS:
            raise ValueError(f"`layer` must be one of {_LAYERS}; got {self.layer!r}.")
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

    def _model_config(self):
        from neuroconv.brain.config import ModelConfig

        return ModelConfig(layer=self.layer, d_model=int(self.d_model), n_layers=int(self.n_layers),
                           bidirectional=bool(self.bidirectional), dropout=self.dropout, lam=self.lam,
                           smooth_width=int(self.smooth_width), kernel_lr=self.kernel_lr,
                           time_embedding=self.sfreq is not None)

    def _build_net(self, n_channels: int, n_times: int, n_out: int):
        key = f"input{n_channels}"
        if self.readout != "pool":
            from neuroconv.brain.covconv import CovConvNet

            readout = "logvar" if n_channels == 1 and not self.spatial else self.readout
            return CovConvNet(n_channels, n_out, filter_len=int(self.filter_len), n_filters=int(self.n_filters),
                              spatial=self.spatial, readout=readout, diagonal=True, means=True,
                              dropout=self.dropout, lam=self.lam,
                              smooth_width=int(self.smooth_width), kernel_lr=self.kernel_lr,
                              kernel_init="box"), key
        from neuroconv.brain.models import make_classifier

        channels = [f"ch{i}" for i in range(n_channels)]
        return make_classifier(self._model_config(), {key: channels}, key, channels, n_out, n_times,
                               pretrained=self.pretrained, freeze=self.freeze_backbone, pool=self.pool), key

    def _trainer_config(self):
        from neuroconv.engine.config import TrainerConfig

        return TrainerConfig(max_epochs=int(self.max_epochs), lr=self.lr, weight_decay=self.weight_decay,
                             seed=int(self.random_state), patience=int(self.patience), progress="none",
                             accelerator="cpu", devices=1, warmup_steps=10, batch_size=int(self.batch_size))

    def _data(self, X, lengths, y=None, key="input"):
        from neuroconv.brain.data import ArrayWindows

        return ArrayWindows(X, y, self.sfreq or 1.0, key, lengths=lengths)

    def _fit(self, X, lengths, y_enc, kind: str, n_out: int, class_weights=None, groups=None):
        import lightning as L

        from neuroconv.brain.data import loader
        from neuroconv.engine.folds import Folds
        from neuroconv.engine.runner import fit
        from neuroconv.engine.tasks import SupervisedTask

        self._check_params()
        L.seed_everything(int(self.random_state), workers=True, verbose=False)
        n, C, T = X.shape
        net, key = self._build_net(C, int(lengths.max()), n_out)
        tc = self._trainer_config()
        train_idx, val_idx = np.arange(n), None
        groups = np.arange(n) if groups is None else np.asarray(groups)
        if len(groups) != n:
            raise ValueError(f"`groups` must have one value per sample ({n}); got {len(groups)}.")
        if self.patience > 0 and self.validation_fraction > 0 and len(np.unique(groups)) >= 3:
            h = Folds(cv="none", seed=int(self.random_state), val_fraction=self.validation_fraction,
                      stratify=kind == "classification").holdout(y_enc, groups)
            train_idx, val_idx = h.train, h.val
        bs = int(self.batch_size)
        train_ds = self._data(X[train_idx], lengths[train_idx], y_enc[train_idx], key)
        if self.readout != "pool":  # statistics (and the head's start) from the training part only
            feats = net.fit_statistics(loader(train_ds, 64, False))
            net.init_head(feats, y_enc[train_idx], C=self.head_c, seed=int(self.random_state), kind=kind)
        task = SupervisedTask(net, kind=kind, lr=tc.lr, weight_decay=tc.weight_decay, warmup_steps=tc.warmup_steps,
                              class_weights=None if class_weights is None else list(map(float, class_weights)))
        train_dl = loader(train_ds, bs, True, int(self.random_state))
        val_dl = None if val_idx is None else loader(self._data(X[val_idx], lengths[val_idx], y_enc[val_idx], key),
                                                     bs, False)
        result = fit(task, train_dl, val_dl, tc, quiet=True, validate_first=self.readout != "pool")
        self.model_ = task.net.eval()
        self.fit_info_ = {"epochs": result.epochs, "steps": result.steps, "best_val_loss": result.best_val_loss}
        self.key_ = key
        self.n_times_ = T
        return self

    def _raw_predict(self, X):
        from neuroconv.brain.data import loader
        from neuroconv.engine.runner import predict

        check_is_fitted(self, "model_")
        X, lengths = self._as_3d(X, reset=False)
        return predict(self.model_, loader(self._data(X, lengths, None, self.key_), 64, False))


class LongConvClassifier(ClassifierMixin, _LongConvBase):
    __doc__ = "Long-convolution sequence classifier.\n" + (_LongConvBase.__doc__ or "").split("\n", 1)[1] + """
    class_weight : dict, "balanced" or None, default=None
        Class weights in the loss (``"balanced"``: inversely to class frequency).

    Attributes
    ----------
    classes_ : ndarray of the class labels.
    model_ : the trained torch module.
    fit_info_ : dict with epochs, steps and best validation loss.
    """

    def __init__(self, readout="tangent", n_filters=2, filter_len=16, spatial=None, head_c=0.05, layer="longconv",
                 d_model=32, n_layers=2, bidirectional=True, pool="mean", dropout=0.5, lam=0.0, smooth_width=5,
                 kernel_lr=1e-3, lr=1e-3, weight_decay=0.05, max_epochs=10, batch_size=32, patience=3,
                 validation_fraction=0.15, sfreq=None, pretrained=None, freeze_backbone=False, random_state=0,
                 class_weight=None):
        super().__init__(readout=readout, n_filters=n_filters, filter_len=filter_len, spatial=spatial, head_c=head_c,
                         layer=layer, d_model=d_model, n_layers=n_layers, bidirectional=bidirectional, pool=pool,
                         dropout=dropout, lam=lam, smooth_width=smooth_width, kernel_lr=kernel_lr, lr=lr,
                         weight_decay=weight_decay, max_epochs=max_epochs, batch_size=batch_size, patience=patience,
                         validation_fraction=validation_fraction, sfreq=sfreq, pretrained=pretrained,
                         freeze_backbone=freeze_backbone, random_state=random_state)
        self.class_weight = class_weight

    def fit(self, X, y, groups=None):
        """Fit on ``X (n, channels, times)`` and labels ``y``; ``groups`` (one per sample,
        e.g. subjects) keep the early-stopping validation split by group."""
        from sklearn.utils.class_weight import compute_class_weight

        (X, lengths), y = self._as_3d(X, reset=True, y=y)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least 2.")
        if self.class_weight is not None and self.class_weight != "balanced" and not isinstance(self.class_weight, dict):
            raise ValueError(f"`class_weight` must be None, 'balanced' or a dict; got {self.class_weight!r}.")
        cw = None
        if self.class_weight is not None:
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        return self._fit(X, lengths, y_enc, "classification", len(self.classes_), cw, groups)

    def predict_proba(self, X):
        from scipy.special import softmax

        return softmax(self._raw_predict(X), axis=1)

    def predict(self, X):
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(1)]


class LongConvRegressor(RegressorMixin, _LongConvBase):
    __doc__ = "Long-convolution sequence regressor (one target).\n" + (_LongConvBase.__doc__ or "").split("\n", 1)[1]

    def fit(self, X, y, groups=None):
        """Fit on ``X (n, channels, times)`` and targets ``y``; ``groups`` as for the classifier."""
        (X, lengths), y = self._as_3d(X, reset=True, y=y, y_numeric=True)
        y = np.asarray(y, dtype=np.float32)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std() or 1.0)
        return self._fit(X, lengths, (y - self.y_mean_) / self.y_scale_, "regression", 1, groups=groups)

    def predict(self, X):
        return self._raw_predict(X)[:, 0] * self.y_scale_ + self.y_mean_
