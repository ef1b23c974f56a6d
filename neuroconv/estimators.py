"""scikit-learn estimators around the long-convolution models.

``LongConvClassifier`` and ``LongConvRegressor`` take ``X`` of shape
``(n_samples, n_channels, n_times)`` (a 2D ``X`` is read as one channel,
``(n_samples, n_times)``) and work inside ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``. They follow scikit-learn's rules: ``__init__`` only stores its
arguments, ``fit`` validates them, fitted attributes end in ``_``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["LongConvClassifier", "LongConvRegressor"]

_LAYERS = ("longconv", "s4d", "butterfly", "attention")


class _LongConvBase(BaseEstimator):
    """Shared parameters (documented once).

    Parameters
    ----------
    layer : {"longconv", "s4d", "butterfly", "attention"}, default="longconv"
        Sequence layer of the backbone.
    d_model : int, default=32
        Width of the residual stream.
    n_layers : int, default=2
        Number of residual blocks.
    bidirectional : bool, default=True
        Centred (non-causal) convolutions; whole windows are classified, so the model
        may look both ways.
    pool : {"mean", "last"}, default="mean"
        How the sequence is pooled before the linear head.
    dropout : float, default=0.1
    lam : float, default=0.003
        Squash threshold of the long-conv kernels.
    smooth_width : int, default=3
        Moving-average width of the long-conv kernels (odd).
    kernel_lr : float, default=1e-3
        Learning rate of the kernel parameters (no weight decay).
    lr : float, default=2e-3
    weight_decay : float, default=0.01
    max_epochs : int, default=30
    batch_size : int, default=32
    patience : int, default=5
        Early stopping on a held-out ``validation_fraction`` of the training data;
        0 turns it off (and uses all data for training).
    validation_fraction : float, default=0.15
    sfreq : float or None, default=None
        Sampling rate of ``X`` in Hz. When given, the model gets a time-in-seconds
        embedding (needed to mix sampling rates); None means no time embedding.
    pretrained : str or None, default=None
        A ``neuroconv pretrain`` run folder whose backbone initialises the model.
    freeze_backbone : bool, default=False
        With ``pretrained``: train only the input encoder (for a new channel set) and
        the head, a linear probe.
    random_state : int, default=0
    """

    def __init__(self, layer="longconv", d_model=32, n_layers=2, bidirectional=True, pool="mean",
                 dropout=0.1, lam=0.003, smooth_width=3, kernel_lr=1e-3, lr=2e-3, weight_decay=0.01,
                 max_epochs=30, batch_size=32, patience=5, validation_fraction=0.15, sfreq=None,
                 pretrained=None, freeze_backbone=False, random_state=0):
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
        if self.layer not in _LAYERS:
            raise ValueError(f"`layer` must be one of {_LAYERS}; got {self.layer!r}.")
        if self.pool not in ("mean", "last"):
            raise ValueError(f"`pool` must be 'mean' or 'last'; got {self.pool!r}.")
        for name in ("d_model", "n_layers", "max_epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {v!r}.")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"`validation_fraction` must be in [0, 1); got {self.validation_fraction!r}.")
        if self.freeze_backbone and not self.pretrained:
            raise ValueError("`freeze_backbone=True` needs `pretrained` (a pretrain run folder).")

    def _as_3d(self, X, reset: bool, y=None, y_numeric: bool = False):
        """Validate ``X`` (and ``y`` when fitting); return ``(n, channels, times)`` float32."""
        if reset:
            X, y = validate_data(self, X, y, allow_nd=True, dtype=np.float32, y_numeric=y_numeric)
        else:
            X = validate_data(self, X, reset=False, allow_nd=True, dtype=np.float32)
        if X.ndim == 2:
            X = X[:, None, :]  # one channel
        if X.ndim != 3:
            raise ValueError(
                f"X must have shape (n_samples, n_channels, n_times) or (n_samples, n_times); "
                f"got {X.ndim} dimensions."
            )
        return (X, y) if reset else X

    def _model_config(self):
        from neuroconv.brain.config import ModelConfig

        return ModelConfig(layer=self.layer, d_model=int(self.d_model), n_layers=int(self.n_layers),
                           bidirectional=bool(self.bidirectional), dropout=self.dropout, lam=self.lam,
                           smooth_width=int(self.smooth_width), kernel_lr=self.kernel_lr,
                           time_embedding=self.sfreq is not None)

    def _build_net(self, n_channels: int, n_times: int, n_out: int):
        from neuroconv.brain.models import make_classifier

        key = f"input{n_channels}"
        channels = [f"ch{i}" for i in range(n_channels)]
        return make_classifier(self._model_config(), {key: channels}, key, channels, n_out, n_times,
                               pretrained=self.pretrained, freeze=self.freeze_backbone, pool=self.pool), key

    def _trainer_config(self):
        from neuroconv.engine.config import TrainerConfig

        return TrainerConfig(max_epochs=int(self.max_epochs), lr=self.lr, weight_decay=self.weight_decay,
                             seed=int(self.random_state), patience=int(self.patience), progress="none",
                             accelerator="cpu", devices=1, warmup_steps=10, batch_size=int(self.batch_size))

    def _fit(self, X, y_enc, kind: str, n_out: int, class_weights=None, groups=None):
        import lightning as L

        from neuroconv.brain.data import ArrayWindows, loader
        from neuroconv.engine.folds import Folds
        from neuroconv.engine.runner import fit
        from neuroconv.engine.tasks import SupervisedTask

        self._check_params()
        L.seed_everything(int(self.random_state), workers=True, verbose=False)
        n, C, T = X.shape
        net, key = self._build_net(C, T, n_out)
        sf = self.sfreq or 1.0
        tc = self._trainer_config()
        train_idx, val_idx = np.arange(n), None
        groups = np.arange(n) if groups is None else np.asarray(groups)
        if self.patience > 0 and self.validation_fraction > 0 and len(np.unique(groups)) >= 3:
            h = Folds(cv="none", seed=int(self.random_state), val_fraction=self.validation_fraction,
                      stratify=kind == "classification").holdout(y_enc, groups)
            train_idx, val_idx = h.train, h.val
        task = SupervisedTask(net, kind=kind, lr=tc.lr, weight_decay=tc.weight_decay, warmup_steps=tc.warmup_steps,
                              class_weights=None if class_weights is None else list(map(float, class_weights)))
        bs = int(self.batch_size)
        train_dl = loader(ArrayWindows(X[train_idx], y_enc[train_idx], sf, key), bs, True, int(self.random_state))
        val_dl = None if val_idx is None else loader(ArrayWindows(X[val_idx], y_enc[val_idx], sf, key), bs, False)
        result = fit(task, train_dl, val_dl, tc, quiet=True)
        self.model_ = task.net.eval()
        self.fit_info_ = {"epochs": result.epochs, "steps": result.steps, "best_val_loss": result.best_val_loss}
        self.key_ = key
        self.n_times_ = T
        return self

    def _raw_predict(self, X):
        from neuroconv.brain.data import ArrayWindows, loader
        from neuroconv.engine.runner import predict

        check_is_fitted(self, "model_")
        X = self._as_3d(X, reset=False)
        return predict(self.model_, loader(ArrayWindows(X, None, self.sfreq or 1.0, self.key_), 64, False))


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

    def __init__(self, layer="longconv", d_model=32, n_layers=2, bidirectional=True, pool="mean",
                 dropout=0.1, lam=0.003, smooth_width=3, kernel_lr=1e-3, lr=2e-3, weight_decay=0.01,
                 max_epochs=30, batch_size=32, patience=5, validation_fraction=0.15, sfreq=None,
                 pretrained=None, freeze_backbone=False, random_state=0, class_weight=None):
        super().__init__(layer=layer, d_model=d_model, n_layers=n_layers, bidirectional=bidirectional,
                         pool=pool, dropout=dropout, lam=lam, smooth_width=smooth_width,
                         kernel_lr=kernel_lr, lr=lr, weight_decay=weight_decay, max_epochs=max_epochs,
                         batch_size=batch_size, patience=patience,
                         validation_fraction=validation_fraction, sfreq=sfreq, pretrained=pretrained,
                         freeze_backbone=freeze_backbone, random_state=random_state)
        self.class_weight = class_weight

    def fit(self, X, y):
        from sklearn.utils.class_weight import compute_class_weight

        X, y = self._as_3d(X, reset=True, y=y)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least 2.")
        if self.class_weight is not None and self.class_weight != "balanced" and not isinstance(self.class_weight, dict):
            raise ValueError(f"`class_weight` must be None, 'balanced' or a dict; got {self.class_weight!r}.")
        cw = None
        if self.class_weight is not None:
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        return self._fit(X, y_enc, "classification", len(self.classes_), cw)

    def predict_proba(self, X):
        from scipy.special import softmax

        return softmax(self._raw_predict(X), axis=1)

    def predict(self, X):
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(1)]


class LongConvRegressor(RegressorMixin, _LongConvBase):
    __doc__ = "Long-convolution sequence regressor (one target).\n" + (_LongConvBase.__doc__ or "").split("\n", 1)[1]

    def fit(self, X, y):
        X, y = self._as_3d(X, reset=True, y=y, y_numeric=True)
        y = np.asarray(y, dtype=np.float32)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std() or 1.0)
        return self._fit(X, (y - self.y_mean_) / self.y_scale_, "regression", 1)

    def predict(self, X):
        return self._raw_predict(X)[:, 0] * self.y_scale_ + self.y_mean_
