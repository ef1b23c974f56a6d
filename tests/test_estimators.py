"""scikit-learn estimators: the estimator checks, Pipeline/GridSearchCV/cross_val_score,
the layout errors, and the defaults shared with ModelConfig and decode."""

from __future__ import annotations

import inspect
from dataclasses import fields

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroconv import CovConvClassifier, CovConvRegressor, LongConvClassifier, LongConvRegressor, ModelConfig

FAST = dict(d_model=8, n_layers=1, max_epochs=3, batch_size=16, patience=0)
FAST_COV = dict(max_epochs=3, batch_size=16, patience=0)

# Checks that demand accuracy levels from a few epochs on 2-feature toy data (2-step
# sequences); they test learning capacity on tabular data, which these models are not for.
EXPECTED_FAILURES = {
    "check_classifiers_train": "needs >0.83 accuracy on 2-feature blobs after a few epochs",
    "check_regressors_train": "needs R^2 > 0.5 on tabular toy data after a few epochs",
    "check_classifier_data_not_an_array": "compares two fits to 1e-7; float32 training differs at 1e-6",
    "check_regressor_data_not_an_array": "compares two fits to 1e-7; float32 training differs at 1e-6",
    "check_class_weight_classifiers": "needs a high F1 on tabular toy data after a few epochs",
}


@parametrize_with_checks([LongConvClassifier(**FAST), LongConvRegressor(**FAST), CovConvClassifier(**FAST_COV),
                          CovConvRegressor(**FAST_COV)])
def test_sklearn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    if name in EXPECTED_FAILURES:  # not run: slow, and they measure tabular-data accuracy
        pytest.skip(EXPECTED_FAILURES[name])
    check(estimator)


def _toy(n=80, seed=0):
    """Class 1 carries a 10 Hz burst on channel 1; class 0 does not."""
    rng = np.random.default_rng(seed)
    t = np.arange(100) / 100
    X = rng.standard_normal((n, 3, 100)).astype(np.float32)
    y = np.arange(n) % 2
    X[y == 1, 1] += 2 * np.sin(2 * np.pi * 10 * t)
    return X, y


@pytest.mark.parametrize("make", [
    lambda: LongConvClassifier(d_model=16, n_layers=1, lr=1e-2, max_epochs=15, patience=0, sfreq=100.0),
    lambda: CovConvClassifier(max_epochs=15, patience=0, sfreq=100.0),
], ids=["longconv", "covconv"])
def test_learns_a_simple_sequence_task(make):
    X, y = _toy()
    clf = make().fit(X[:60], y[:60])
    assert clf.score(X[60:], y[60:]) >= 0.9
    proba = clf.predict_proba(X[60:])
    assert proba.shape == (20, 2) and np.allclose(proba.sum(1), 1)


def test_pipeline_gridsearch_and_cross_val_score():
    X, y = _toy(48)
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 1.0), LongConvClassifier(**FAST))
    scores = cross_val_score(pipe, X, y, cv=2)
    assert scores.shape == (2,)
    grid = GridSearchCV(LongConvClassifier(**FAST), {"d_model": [4, 8]}, cv=2).fit(X, y)
    assert grid.best_params_["d_model"] in (4, 8)


def test_regressor_recovers_amplitude():
    rng = np.random.default_rng(1)
    amp = rng.uniform(0, 3, 80).astype(np.float32)
    X = rng.standard_normal((80, 2, 60)).astype(np.float32) * 0.1
    X[:, 0] += amp[:, None]
    reg = CovConvRegressor(max_epochs=20, patience=0).fit(X[:60], amp[:60])
    assert reg.score(X[60:], amp[60:]) > 0.5


def test_bad_input_errors():
    X, y = _toy(20)
    with pytest.raises(ValueError, match="only one class"):
        LongConvClassifier(**FAST).fit(X, np.zeros(20))
    with pytest.raises(ValueError, match=r"`layer` must be one of \['attention', .*'s4d'\].*got 'rnn'"):
        LongConvClassifier(layer="rnn").fit(X, y)
    with pytest.raises(ValueError, match="pretrained"):
        LongConvClassifier(freeze_backbone=True).fit(X, y)
    with pytest.raises(ValueError, match=r"`readout` must be one of \('tangent', 'logvar'\); got 'pool'"):
        CovConvClassifier(readout="pool").fit(X, y)
    with pytest.raises(ValueError, match="dimensions|shape"):
        LongConvClassifier(**FAST).fit(X[..., None], y)


def test_a_transposed_x_is_named_at_predict():
    """Fitted on (n, C, T); an (n, T, C) array is named as such, in scikit-learn's words."""
    X, y = _toy(20)
    clf = CovConvClassifier(**FAST_COV).fit(X, y)
    bad = X.transpose(0, 2, 1)
    with pytest.raises(ValueError, match=r"X has 100 features, but CovConvClassifier is expecting 3 features as "
                                         r"input: got X \(n, C, T\) = \(20, 100, 3\).*C = 3 channels\. X looks like "
                                         r"\(n, T, C\): pass X\.transpose\(0, 2, 1\)"):
        clf.predict(bad)
    with pytest.raises(ValueError, match=r"expecting 3 features as input: got X \(n, C, T\) = \(20, 4, 100\)[^X]*$"):
        clf.predict(np.zeros((20, 4, 100), np.float32))  # another channel count: no transpose hint


def test_pool_and_model_settings_reach_the_zoo_model():
    """The estimator trains the zoo's models: its settings reach the module it fits."""
    X, y = _toy(24)
    clf = LongConvClassifier(pool="last", d_model=8, n_layers=1, max_epochs=1, patience=0).fit(X, y)
    assert clf.model_.brain.backbone.pool == "last" and clf.model_.brain.d_model == 8
    cov = CovConvClassifier(n_filters=3, filter_len=5, head_c=0.05, max_epochs=1, patience=0).fit(X, y)
    assert cov.model_.n_filters == 3 and cov.model_.kernel.l_max == 5
    assert cov.fit_info_["hyperparameters"]["C"] == 0.05  # head_c given: not chosen


def _defaults(cls) -> dict:
    return {k: p.default for k, p in inspect.signature(cls).parameters.items()}


def test_defaults_are_those_of_modelconfig_and_decode():
    """The sequence estimators' kernel and model defaults are ModelConfig's (bar the
    documented bidirectional), the covariance estimators' are decode.covconv's, and every
    classifier weighs classes as decode does."""
    from neuroconv.brain.config import DecodeConfig
    from neuroconv.brain.zoo.covconv import CovConvSettings as CovConvConfig

    model = {f.name: f.default for f in fields(ModelConfig)}
    for cls in (LongConvClassifier, LongConvRegressor):
        d = _defaults(cls)
        for key in ("layer", "d_model", "n_layers", "dropout", "lam", "smooth_width", "kernel_lr"):
            assert d[key] == model[key], (cls.__name__, key)
        assert d["bidirectional"] is True and "bidirectional : bool, default=True" in cls.__doc__
    cov = {f.name: f.default for f in fields(CovConvConfig)}
    for cls in (CovConvClassifier, CovConvRegressor):
        d = _defaults(cls)
        for key in ("n_filters", "head_c", "dropout", "lam", "smooth_width"):
            assert d[key] == cov[key], (cls.__name__, key)
        assert d["readout"] == "tangent" and cov["readout"] in ("auto", "tangent")
    decode = {f.name: f.default for f in fields(DecodeConfig)}
    for cls in (LongConvClassifier, CovConvClassifier):
        assert _defaults(cls)["class_weight"] == decode["class_weight"] == "balanced"
    for cls in (LongConvClassifier, LongConvRegressor, CovConvClassifier, CovConvRegressor):
        assert cls.__doc__.splitlines()[0].count("X (n, C, T)") or cls.__doc__.splitlines()[1].count("X (n, C, T)")
        for method in ("fit", "predict"):
            assert "(n, C, T)" in getattr(cls, method).__doc__, (cls.__name__, method)
