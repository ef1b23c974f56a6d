"""SSVEP baselines: MOABB's SSVEP classifiers and its tangent-space recipe, on our arrays.

Every estimator here is a scikit-learn classifier on ``X (n, channels, times)`` float
arrays (one window per trial, the store's broadband signal) with integer labels
``0..K-1``: ``fit``, ``predict``, ``predict_proba``, ``decision_function`` and
``classes_``. ``freqs`` says which stimulus frequency each label stands for, a mapping
``{label index: Hz}`` or a sequence in label order; :func:`freqs_from_labels` reads it
from class names such as ``"20Hz"``/``"30Hz"``. ``sfreq`` is the windows' sampling rate.

==================  ============================================================================
name                pipeline
==================  ============================================================================
``ssvep_cca``       :class:`SSVEPCCA`: ``moabb.pipelines.classification.SSVEP_CCA`` (canonical
                    correlation with sine/cosine references at each frequency and its
                    harmonics; nothing learned from the labels)
``ssvep_trca``      :class:`SSVEPTRCA`: ``SSVEP_TRCA`` (ensemble task-related component
                    analysis with MOABB's filter bank; templates from the training trials)
``ssvep_msetcca``   :class:`SSVEPMsetCCA`: ``SSVEP_MsetCCA`` (multiset CCA templates from the
                    training trials, matched by canonical correlation)
``ssvep_ts_lr``     MOABB's SSVEP TS+LR recipe (``pipelines/TSLR-SSVEP.yml`` on the
                    ``FilterBankSSVEP`` paradigm): :class:`SSVEPFilterBank` (MNE IIR band-pass
                    ``[f - 0.5, f + 0.5]`` Hz around each stimulus frequency, the paradigm's
                    default bands) -> ``moabb.pipelines.features.ExtendedSSVEPSignal`` (the
                    filtered copies stacked as extra channels) -> pyriemann
                    ``Covariances("oas")`` -> ``TangentSpace("riemann")`` ->
                    ``LogisticRegression(C=1)``
==================  ============================================================================

Build them by name with :func:`make_ssvep_baseline`.

How the wrappers differ from using MOABB directly:

- MOABB's classes take ``mne.Epochs`` and labels that name frequencies. The wrappers
  build an ``mne.EpochsArray`` from ``X`` and pass each label's frequency as its MOABB
  label (``"30.0"``); ``predict`` maps MOABB's answer back to the integer label, so it is
  MOABB's own prediction.
- Probabilities. MOABB's ``predict_proba`` is no probability to read or to rank trials
  by: CCA and MsetCCA shift each trial's scores by their minimum and normalise them
  (the losing class gets about 1e-12), and TRCA divides its scores by their sum, which
  can be negative: then its "probabilities" are negative or above 1 and rank the classes
  the wrong way round.
  The wrappers therefore expose MOABB's per-class scores as ``decision_function`` (the
  numbers MOABB's ``predict`` takes the argmax of) and return ``softmax(scores)`` as
  ``predict_proba``: a monotone map of the scores, so its argmax is ``predict`` and
  ROC AUC ranks trials by the score difference, but not calibrated (correlations lie in
  [-1, 1], so these probabilities stay away from 0 and 1).

  - CCA: score = the first canonical correlation between the trial and each class's
    reference (MOABB's fitted ``Yf``), computed with a clone of MOABB's own
    ``sklearn.cross_decomposition.CCA`` as MOABB's predict does.
  - MsetCCA: score = the first canonical correlation between the trial and each class's
    template (MOABB's fitted ``Ym``), as above. MOABB whitens the trial first; a
    canonical correlation does not change under an invertible linear map of either set
    of variables, so the score is the same without it.
  - TRCA: score = MOABB's filter-bank-weighted sum of correlations with the class
    templates, read from MOABB's own prediction of each trial (``SSVEP_TRCA.rho``).

- TRCA: MOABB's ``SSVEP_TRCA`` (1.7.2) centres each training trial in place while it
  estimates its covariances (``x1 -= np.mean(x1, 0)``, across channels, on views of the
  filter-bank output), then averages those altered trials into its templates, which
  test trials are compared with unaltered. On synthetic sets where CCA and TS+LR label
  all 40 test trials right, that TRCA labelled 0-3 of 40 right in five of six draws
  (inverted), and 40 of 40 in all six with a copy; on the real SSVEP runs of subject 1
  (leave one run out) accuracy 0.60 and ROC AUC 0.65, with a copy 0.75 and 0.82.
  :class:`SSVEPTRCA` therefore fits :class:`MoabbTRCA`, MOABB's class with that step
  given a copy of the trials; on trials already centred across channels (where the
  in-place step changes nothing) it equals MOABB's class (tests/brain/test_ssvep.py).
- MsetCCA is MOABB's as it is, with a known defect: ``SSVEP_MsetCCA`` (1.7.2) stacks the
  whitened trials channel by channel (``transpose(1, 0, 2).reshape``) but builds its
  within-trial blocks and splits the filters trial by trial, so with several channels
  its templates hold little of the response (2-5% of their power at the stimulus
  frequency on a synthetic set, 41% with one consistent order; on the real SSVEP runs
  of subject 1 it decodes at chance, accuracy 0.55 and ROC AUC 0.59); with one channel
  the orders coincide. Fixing it would mean rewriting MOABB's ``fit``; it is left to
  MOABB.
- Class weights: none of MOABB's SSVEP classes weighs classes. CCA learns nothing from
  the labels; TRCA and MsetCCA build each class's template from that class's trials
  alone and pick the class of highest correlation, with no prior, so class frequencies
  do not bias them. ``class_weight`` is accepted by :func:`make_ssvep_baseline` for all
  four and passed to the logistic regression of ``ssvep_ts_lr`` only.

MOABB (``moabb>=1.5``, the SSVEP API with ``freq_map``) is imported when an estimator
is fitted, so importing this module stays light.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["SSVEP_BASELINES", "freqs_from_labels", "make_ssvep_baseline", "SSVEPCCA", "SSVEPTRCA",
           "SSVEPMsetCCA", "SSVEPFilterBank", "MoabbTRCA"]

#: registry names of the SSVEP baselines
SSVEP_BASELINES = ("ssvep_cca", "ssvep_trca", "ssvep_msetcca", "ssvep_ts_lr")

_FREQ_LABEL = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:hz)?\s*", re.I)


def freqs_from_labels(labels: Sequence[str]) -> dict[int, float]:
    """Class names -> ``{label index: stimulus frequency in Hz}``.

    ``labels`` are the class names in label order (``decode.event_labels``), each a
    number with an optional ``Hz``: ``"30Hz"``, ``"12.5 Hz"``, ``"20"``. Raises
    ``ValueError`` for a name that is not a frequency, for duplicates, and for fewer
    than two classes.
    """
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise ValueError(f"labels must be a list of class names such as ['20Hz', '30Hz']; got {labels!r}.")
    out = {}
    for i, name in enumerate(labels):
        m = _FREQ_LABEL.fullmatch(str(name))
        if not m:
            raise ValueError(f"labels[{i}] must name a stimulus frequency, a number with an optional 'Hz' "
                             f"('20Hz', '12.5 Hz', '30'); got {name!r}. Name the SSVEP classes by frequency "
                             "or pass freqs={label index: Hz} explicitly.")
        out[i] = float(m.group(1))
    _check_freqs(out, "labels")
    return out


def _check_freqs(freqs, name: str = "freqs") -> dict[int, float]:
    """``freqs`` (mapping or sequence) -> ``{int label: float Hz}``, checked."""
    if isinstance(freqs, Mapping):
        items = list(freqs.items())
    elif isinstance(freqs, Sequence) and not isinstance(freqs, str):
        items = list(enumerate(freqs))
    else:
        raise ValueError(f"{name} must be a mapping {{label index: Hz}} or a sequence of Hz in label order; "
                         f"got {freqs!r}.")
    out = {}
    for k, f in items:
        try:
            k, f = int(k), float(f)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must map integer labels to frequencies in Hz; got {k!r}: {f!r}.") from None
        if not np.isfinite(f) or f <= 0:
            raise ValueError(f"{name}[{k}] must be a positive frequency in Hz; got {f!r}.")
        out[k] = f
    if len(out) < 2:
        raise ValueError(f"{name} must give at least two stimulus frequencies; got {freqs!r}.")
    if len(set(out.values())) != len(out):
        raise ValueError(f"{name} gives the same frequency to two labels ({out}); SSVEP methods tell classes "
                         "apart by frequency only.")
    return out


def _check_sfreq(sfreq, freqs: dict[int, float]) -> float:
    try:
        sfreq = float(sfreq)
    except (TypeError, ValueError):
        raise ValueError(f"sfreq must be the sampling rate in Hz; got {sfreq!r}.") from None
    if not sfreq > 2 * max(freqs.values()):
        raise ValueError(f"sfreq must exceed twice the highest stimulus frequency ({max(freqs.values())} Hz); "
                         f"got {sfreq}.")
    return sfreq


def _check_X(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or min(X.shape) < 1:
        raise ValueError(f"X must be an array (n_trials, n_channels, n_times); got shape {X.shape}.")
    if not np.isfinite(X).all():
        raise ValueError("X holds NaN or infinite values.")
    return X


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class _MoabbSSVEP(ClassifierMixin, BaseEstimator):
    """A MOABB SSVEP classifier on ``(n, channels, times)`` arrays and integer labels."""

    def _moabb(self):  # the unfitted MOABB estimator
        raise NotImplementedError

    def _scores(self, X: np.ndarray) -> np.ndarray:  # (n, K) in MOABB's class order
        raise NotImplementedError

    def _epochs(self, X: np.ndarray, codes: np.ndarray | None = None):
        """``X`` as ``mne.EpochsArray``; ``codes`` (index into ``moabb_labels_``) for
        training, none (one dummy event id) for prediction."""
        import mne

        info = mne.create_info(X.shape[1], self.sfreq_, "eeg")
        ids = np.zeros(len(X), int) if codes is None else np.asarray(codes)
        events = np.column_stack([np.arange(len(X)) * X.shape[2], np.zeros(len(X), int), ids + 1])
        event_id = ({"trial": 1} if codes is None else
                    {name: c + 1 for c, name in enumerate(self.moabb_labels_) if np.any(ids == c)})
        return mne.EpochsArray(X, info, events=events, event_id=event_id, tmin=0.0, verbose="error")

    def fit(self, X, y):
        """Fit MOABB's estimator on ``X (n, channels, times)`` and labels ``y (n,)``
        (integers, each a key of ``freqs``)."""
        X = _check_X(X)
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"y must have one label per trial ({len(X)}); got shape {y.shape}.")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold integer labels 0..K-1; got dtype {y.dtype}.")
        freqs = _check_freqs(self.freqs)
        self.sfreq_ = _check_sfreq(self.sfreq, freqs)
        self.classes_ = np.unique(y)
        missing = sorted(set(self.classes_.tolist()) - set(freqs))
        if missing:
            raise ValueError(f"freqs has no frequency for label(s) {missing}; it maps {freqs}.")
        if len(self.classes_) < 2:
            raise ValueError(f"y must hold at least two classes; got only {self.classes_.tolist()}.")
        self.freqs_ = {int(c): freqs[int(c)] for c in self.classes_}
        # MOABB's labels name the frequency ("30.0"); float(str(f)) == f exactly
        self.moabb_labels_ = [str(self.freqs_[int(c)]) for c in self.classes_]
        index = {int(c): i for i, c in enumerate(self.classes_)}
        codes = np.array([index[int(v)] for v in y])
        from mne.utils import use_log_level

        with use_log_level("error"):
            self.estimator_ = self._moabb().fit(self._epochs(X, codes), np.array(self.moabb_labels_)[codes])
        # MOABB's class order: its classes_ (CCA, MsetCCA) or freqs_ (TRCA), as frequency names
        order = [str(v) for v in getattr(self.estimator_, "freqs_")]
        self.moabb_columns_ = np.array([self.moabb_labels_.index(v) for v in order])   # MOABB column -> ours
        return self

    def predict(self, X) -> np.ndarray:
        """MOABB's own prediction for each trial, as integer labels ``(n,)``."""
        check_is_fitted(self, "estimator_")
        X = _check_X(X)
        from mne.utils import use_log_level

        with use_log_level("error"):
            pred = self.estimator_.predict(self._epochs(X))
        lookup = dict(zip(self.moabb_labels_, self.classes_))
        return np.array([lookup[str(p)] for p in pred])

    def decision_function(self, X) -> np.ndarray:
        """MOABB's per-class scores ``(n, K)``, columns in ``classes_`` order (see the
        module docstring for each method's score)."""
        check_is_fitted(self, "estimator_")
        X = _check_X(X)
        from mne.utils import use_log_level

        with use_log_level("error"):
            moabb_scores = self._scores(X)              # (n, K) in MOABB's column order
        scores = np.empty_like(moabb_scores)
        scores[:, self.moabb_columns_] = moabb_scores
        return scores

    def predict_proba(self, X) -> np.ndarray:
        """``softmax(decision_function(X))`` ``(n, K)``: monotone in MOABB's scores, its
        argmax is MOABB's prediction; not calibrated (module docstring)."""
        return _softmax(self.decision_function(X))


class _CanonicalScores:
    """Scores = first canonical correlation of each trial with one reference per class."""

    def _references(self) -> list[np.ndarray]:  # (K) of (n_refs, times), MOABB's order
        raise NotImplementedError

    def _scores(self, X: np.ndarray) -> np.ndarray:
        refs = self._references()
        out = np.empty((len(X), len(refs)))
        for i, trial in enumerate(X):
            for k, ref in enumerate(refs):
                a, b = clone(self.estimator_.cca).fit_transform(trial.T, ref.T)
                r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
                out[i, k] = r if np.isfinite(r) else -1.0   # as MOABB scores a degenerate trial
        return out


class SSVEPCCA(_CanonicalScores, _MoabbSSVEP):
    """``moabb.pipelines.classification.SSVEP_CCA`` on arrays: each trial goes to the
    frequency whose sine/cosine references (``n_harmonics`` harmonics) it correlates
    with most (canonical correlation). Learns nothing from the labels but the set of
    classes, so class weights do not apply.

    Args:
        sfreq: Sampling rate of ``X`` in Hz.
        freqs: ``{label index: Hz}`` or a sequence of Hz in label order.
        n_harmonics: Harmonics in the references (MOABB's default 3).
    """

    def __init__(self, sfreq: float, freqs, n_harmonics: int = 3):
        self.sfreq, self.freqs, self.n_harmonics = sfreq, freqs, n_harmonics

    def _moabb(self):
        from moabb.pipelines.classification import SSVEP_CCA

        if not (isinstance(self.n_harmonics, (int, np.integer)) and self.n_harmonics >= 1):
            raise ValueError(f"n_harmonics must be an integer >= 1; got {self.n_harmonics!r}.")
        return SSVEP_CCA(n_harmonics=int(self.n_harmonics), freq_map={n: float(n) for n in self.moabb_labels_})

    def _references(self):
        return [self.estimator_.Yf[c] for c in self.estimator_.classes_]


class SSVEPMsetCCA(_CanonicalScores, _MoabbSSVEP):
    """``moabb.pipelines.classification.SSVEP_MsetCCA`` on arrays: multiset CCA learns one
    template per class from its training trials (at least 2 each); a trial goes to the
    class whose template it correlates with most. Each template comes from its own
    class's trials, so class weights do not apply.

    Args:
        sfreq: Sampling rate of ``X`` in Hz (checked against ``freqs``; the method itself
            does not use the frequencies).
        freqs: ``{label index: Hz}`` or a sequence of Hz in label order.
        n_filters: Spatial filters per class (MOABB's default 1).
    """

    def __init__(self, sfreq: float, freqs, n_filters: int = 1):
        self.sfreq, self.freqs, self.n_filters = sfreq, freqs, n_filters

    def _moabb(self):
        from moabb.pipelines.classification import SSVEP_MsetCCA

        if not (isinstance(self.n_filters, (int, np.integer)) and self.n_filters >= 1):
            raise ValueError(f"n_filters must be an integer >= 1; got {self.n_filters!r}.")
        return SSVEP_MsetCCA(n_filters=int(self.n_filters))

    def _references(self):
        return [self.estimator_.Ym[k] for k in range(len(self.estimator_.classes_))]


class SSVEPTRCA(_MoabbSSVEP):
    """``moabb.pipelines.classification.SSVEP_TRCA`` on arrays: task-related component
    analysis with MOABB's Chebyshev filter bank; templates from the training trials of
    each class, ensemble spatial filters. Each template comes from its own class's
    trials, so class weights do not apply. Fitted with :class:`MoabbTRCA` (MOABB's class
    given a copy of the trials where it centres them in place; module docstring).

    Args:
        sfreq: Sampling rate of ``X`` in Hz.
        freqs: ``{label index: Hz}`` or a sequence of Hz in label order.
        n_fbands: Filter-bank sub-bands; ``None``: MOABB's default 5, capped at the number
            of classes (MOABB's ``filterbank`` refuses more bands than frequencies).
        is_ensemble, method, estimator: as in MOABB (``True``, ``"original"``, ``"scm"``).
    """

    def __init__(self, sfreq: float, freqs, n_fbands: int | None = None, is_ensemble: bool = True,
                 method: str = "original", estimator: str = "scm"):
        self.sfreq, self.freqs, self.n_fbands = sfreq, freqs, n_fbands
        self.is_ensemble, self.method, self.estimator = is_ensemble, method, estimator

    def _moabb(self):
        k = len(self.moabb_labels_)
        n = min(5, k) if self.n_fbands is None else self.n_fbands
        if not (isinstance(n, (int, np.integer)) and 1 <= n <= k):
            raise ValueError(f"n_fbands must be None or an integer from 1 to the number of classes ({k}); got "
                             f"{self.n_fbands!r}.")
        return _moabb_trca_class()(n_fbands=int(n), is_ensemble=self.is_ensemble, method=self.method,
                                   estimator=self.estimator)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        est = self.estimator_
        out = np.empty((len(X), len(self.moabb_labels_)))
        for i in range(len(X)):
            est.predict(X[i:i + 1])          # MOABB's TRCA keeps the trial's scores in .rho
            rho = getattr(est, "rho", None)
            if rho is None or np.shape(rho) != (len(self.moabb_labels_),):
                raise RuntimeError("moabb's SSVEP_TRCA no longer exposes the scores of its last prediction (.rho); "
                                   "this wrapper needs updating for the installed moabb version.")
            out[i] = rho
        return out


def _make_moabb_trca():
    from moabb.pipelines.classification import SSVEP_TRCA

    class MoabbTRCA(SSVEP_TRCA):
        """``moabb.pipelines.classification.SSVEP_TRCA`` whose covariance estimation
        (``_Q_S_estim``) works on a copy of the trials: MOABB's centres each trial in
        place (``x1 -= np.mean(x1, 0)`` on views), and ``fit`` then averages the altered
        trials into the templates, which test trials are compared with unaltered."""

        def _Q_S_estim(self, data):
            return super()._Q_S_estim(np.array(data, copy=True))

    MoabbTRCA.__module__, MoabbTRCA.__qualname__ = __name__, "MoabbTRCA"
    return MoabbTRCA


def _moabb_trca_class():
    """The one :class:`MoabbTRCA` class (built on first use, then kept)."""
    if "MoabbTRCA" not in globals():
        globals()["MoabbTRCA"] = _make_moabb_trca()
    return globals()["MoabbTRCA"]


def __getattr__(name):
    # MoabbTRCA subclasses a MOABB class: built on first use (MOABB is imported only
    # then), found by pickle through this module attribute
    if name == "MoabbTRCA":
        return _moabb_trca_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SSVEPFilterBank(TransformerMixin, BaseEstimator):
    """Band-pass each trial around each stimulus frequency, as MOABB's ``FilterBankSSVEP``
    paradigm does (its default bands ``[f - half_width, f + half_width]``, MNE's IIR
    filter: 4th-order Butterworth, forward and backward).

    ``transform(X (n, channels, times)) -> (n, channels, times, n_freqs)``, the bands in
    label order: the layout MOABB's ``ExtendedSSVEPSignal`` stacks into
    ``(n, n_freqs * channels, times)``. MOABB filters the continuous recording before
    cutting epochs; here each window is filtered alone (the store stays broadband), so
    the edges of a window carry the filter's start-up transient, which MNE's
    forward-backward filter reduces by padding.

    Args:
        sfreq: Sampling rate of ``X`` in Hz.
        freqs: ``{label index: Hz}`` or a sequence of Hz in label order.
        half_width: Half the band width in Hz (MOABB's 0.5).
    """

    def __init__(self, sfreq: float, freqs, half_width: float = 0.5):
        self.sfreq, self.freqs, self.half_width = sfreq, freqs, half_width

    def _bands(self) -> list[tuple[float, float]]:
        freqs = _check_freqs(self.freqs)
        sfreq = _check_sfreq(self.sfreq, freqs)
        hw = self.half_width
        if not (isinstance(hw, (int, float)) and 0 < hw < min(freqs.values())):
            raise ValueError(f"half_width must be a positive number of Hz below the lowest frequency "
                             f"({min(freqs.values())}); got {hw!r}.")
        if max(freqs.values()) + hw >= sfreq / 2:
            raise ValueError(f"the band around {max(freqs.values())} Hz (half_width {hw}) reaches the Nyquist "
                             f"frequency {sfreq / 2} Hz; raise sfreq.")
        return [(freqs[k] - hw, freqs[k] + hw) for k in sorted(freqs)]

    def fit(self, X, y=None):
        _check_X(X)
        self.bands_ = self._bands()
        return self

    def transform(self, X) -> np.ndarray:
        import mne

        check_is_fitted(self, "bands_")
        X = _check_X(X)
        return np.stack([mne.filter.filter_data(X, float(self.sfreq), lo, hi, method="iir", verbose="error")
                         for lo, hi in self.bands_], axis=-1)


def make_ssvep_baseline(name: str, *, sfreq: float, freqs, seed: int = 0, class_weight=None):
    """A fresh, unfitted SSVEP classifier for registry ``name`` (:data:`SSVEP_BASELINES`).

    ``sfreq``: the windows' sampling rate in Hz. ``freqs``: ``{label index: Hz}`` or a
    sequence of Hz in label order (:func:`freqs_from_labels` reads it from class names).
    ``seed`` seeds the logistic regression of ``ssvep_ts_lr``; the other three are
    deterministic. ``class_weight`` (scikit-learn's: ``None``, ``"balanced"`` or a dict)
    goes to that logistic regression; CCA, TRCA and MsetCCA have no notion of class
    weights (module docstring) and ignore it. MOABB's defaults throughout: 3 harmonics
    (CCA), ensemble TRCA with up to 5 sub-bands (at most one per class), 1 MsetCCA filter;
    TS+LR with ``[f - 0.5, f + 0.5]`` Hz bands, OAS covariances, Riemannian tangent space
    and ``C=1`` (``max_iter=5000`` so that it converges).
    """
    if name not in SSVEP_BASELINES:
        raise ValueError(f"name must be one of {SSVEP_BASELINES}; got {name!r}.")
    freqs = _check_freqs(freqs)
    _check_sfreq(sfreq, freqs)
    if name == "ssvep_cca":
        return SSVEPCCA(sfreq=sfreq, freqs=freqs)
    if name == "ssvep_trca":
        return SSVEPTRCA(sfreq=sfreq, freqs=freqs)
    if name == "ssvep_msetcca":
        return SSVEPMsetCCA(sfreq=sfreq, freqs=freqs)
    from moabb.pipelines.features import ExtendedSSVEPSignal
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(SSVEPFilterBank(sfreq=sfreq, freqs=freqs), ExtendedSSVEPSignal(),
                         Covariances(estimator="oas"), TangentSpace(metric="riemann"),
                         LogisticRegression(C=1.0, class_weight=class_weight, max_iter=5000, random_state=seed))
