"""The field's classical baselines in the zoo: scikit-learn pipelines built from the
pieces in :mod:`neuroconv.brain.baselines`, as their libraries and MOABB recommend.

Each baseline is one entry: its settings (a dataclass, the ``decode.<name>`` section of
the config) and one ``pipeline(settings, sfreq=, seed=, C=, class_weight=, n_classes=,
**warm) -> (features, head)`` function. Fitting one on a training part
(:class:`ClassicalDecoder`):

1. the features are fitted once on the inner training part and applied to the inner
   validation part;
2. a head with a regulariser (one whose parameters include ``C``: a logistic
   regression) chooses its ``C`` from ``decode.c_grid`` by the class-weighted log loss on
   the inner validation part, the criterion every model of the zoo chooses by; LDA heads
   have none (their shrinkage is automatic) and skip this step;
3. the whole pipeline is refitted on the whole training part with that ``C``
   (``GridSearchCV(refit=True)``), warm-started where the features allow (the tangent
   space's geometric mean starts from the inner part's).

Every logistic regression reads standardised features (a ``StandardScaler`` ends each
regularised pipeline's features), so one C grid means one thing for every model; every
LDA head is shrunk (Ledoit-Wolf, ``shrinkage="auto"``). Class weights: the logistic
regressions get ``class_weight``, the LDA heads uniform priors (``decode.class_weight:
balanced``). :func:`make_baseline` builds any of them as
one scikit-learn classifier, outside the decode job.

============  ========  =================================================================
name          modality  pipeline (``features`` -> ``head``)
============  ========  =================================================================
connectivity  fmri      nilearn connectivity (tangent or correlation) -> optional per-site
                        centring -> standardise -> logistic regression
ts_lr         eeg       8-32 Hz band-pass -> pyriemann covariances (OAS) -> tangent space
                        -> standardise -> logistic regression (MOABB's TS+LR)
xdawn_ts      eeg       1-24 Hz band-pass -> pyriemann xDAWN covariances -> tangent space
                        -> standardise -> logistic regression
csp_lda       eeg       8-32 Hz band-pass -> MNE CSP (log-variance of 4 filters) -> shrinkage
                        LDA (Ledoit-Wolf)
erp_lda       eeg       1-24 Hz band-pass -> decimation to about 32 Hz -> vectorised epochs
                        -> shrinkage LDA
bandpower     eeg       log band power (MNE Welch PSD) -> standardise -> logistic regression
============  ========  =================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

import numpy as np
from sklearn.base import clone

from .base import Decoder, DecodeData, Traits, TrainingPart, entry, proba_of, register

__all__ = ["ClassicalDecoder", "make_baseline", "ConnectivitySettings", "TSLRSettings", "XdawnTSSettings",
           "CSPLDASettings", "ERPLDASettings"]


class ClassicalDecoder(Decoder):
    """A classical baseline behind the zoo's interface.

    Options (fixed per entry): ``pipeline`` (settings, sfreq=, seed=, C=, class_weight=,
    n_classes=, **warm) -> ``(features, head)``; ``fixed_length``: the pipeline takes
    ``(n, C, T)`` epochs of one length and one sampling rate (EEG), else a list of
    ``(T_i, C)`` recordings (fMRI)."""

    def __init__(self, name: str, settings, context, *, pipeline: Callable, fixed_length: bool = True):
        super().__init__(name, settings, context)
        self.pipeline, self.fixed_length = pipeline, fixed_length

    def _parts(self, data: DecodeData, C=None, class_weight=None, **warm):
        sfreq = data.sfreq(self.name, one=self.fixed_length)
        return self.pipeline(self.settings, sfreq=sfreq, seed=self.context.seed, C=C, class_weight=class_weight,
                             n_classes=data.n_out, n_jobs=self.context.n_jobs, band_step=False, **warm)

    def _arrays(self, data: DecodeData, idx):
        """The samples ``idx`` as the pipeline reads them: with a ``band`` setting, cut from
        each recording band-passed as a whole (MOABB filters the continuous recording
        before epoching; the store stays broadband)."""
        band = getattr(self.settings, "band", None)
        windows = data.windows.filtered(tuple(band)) if band else data.windows
        return windows.subset(idx).arrays(self.fixed_length)

    def _groups(self, data: DecodeData, idx) -> dict:
        """Extra keyword arguments of the features' fit/transform for samples ``idx``
        (none; site centring passes the sites)."""
        return {}

    def fit(self, part: TrainingPart) -> "ClassicalDecoder":
        from mne.utils import use_log_level

        data = part.data
        if data.kind != "classification":
            raise ValueError(f"baseline {self.name!r} is a classifier; drop it from decode.models for regression.")
        cw = "balanced" if part.class_weight == "balanced" else None
        y, inner = data.y, part.inner
        warm = {}
        with use_log_level("warning"):  # CSP's per-class covariance messages
            features, head = self._parts(data, class_weight=cw)
            if "C" in head.get_params() and len(inner.val):
                F_in = features.fit_transform(self._arrays(data, inner.train), y[inner.train],
                                              **self._groups(data, inner.train))
                F_va = features.transform(self._arrays(data, inner.val), **self._groups(data, inner.val))
                C = self.choose_c(clone(head), part, F_in, F_va)
                warm = _warm_start(features)
            elif "C" in head.get_params():
                C = self.choose_c(None, part, None, None)
            else:
                C = None
                self.hyperparameters = {"note": "no regulariser to choose (LDA: automatic shrinkage or none)"}
            self.features, self.head = self._parts(data, C=C, class_weight=cw, **warm)
            F = self.features.fit_transform(self._arrays(data, part.train), y[part.train],
                                            **self._groups(data, part.train))
            self.head.fit(F, y[part.train])
        return self

    def predict(self, data: DecodeData, idx) -> np.ndarray:
        return proba_of(self.head, self.transform(data, idx), data.n_out)

    def transform(self, data: DecodeData, idx, features=None) -> np.ndarray:
        """The features (of the fitted pipeline, or of ``features``) of samples ``idx``:
        what the head reads."""
        from mne.utils import use_log_level

        with use_log_level("warning"):
            return (features or self.features).transform(self._arrays(data, idx), **self._groups(data, idx))

    def pipeline_at(self, part: TrainingPart, idx, C):
        """``(features, head)`` of this baseline at regulariser ``C``, fitted on samples
        ``idx`` of ``part`` (with its class weighting), beside the fitted model."""
        from mne.utils import use_log_level

        data = part.data
        with use_log_level("warning"):
            features, head = self._parts(data, C=C, class_weight="balanced" if part.class_weight == "balanced"
                                         else None)
            F = features.fit_transform(self._arrays(data, idx), data.y[idx], **self._groups(data, idx))
            head.fit(F, data.y[idx])
        return features, head


def _warm_start(features) -> dict:
    """What the refit may start from: the tangent space's geometric mean of the inner
    training part (the refit's fixed point is the same; it gets there in fewer steps)."""
    conn = getattr(features, "connectivity_", None)
    if conn is not None and getattr(conn, "reference", None) == "riemann" and hasattr(conn, "mean_"):
        return {"init_mean": conn.mean_}
    return {}


def _lr(C, seed, class_weight):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0 if C is None else C, max_iter=5000, random_state=seed, class_weight=class_weight)


def _lda(class_weight, n_classes, **kw):
    """LDA; with ``class_weight="balanced"`` its priors are uniform (the LDA analogue of
    balanced class weights: every class counts the same in the decision)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    priors = None
    if class_weight == "balanced":
        if not n_classes:
            raise ValueError("class_weight='balanced' for an LDA head needs n_classes (its uniform priors).")
        priors = np.full(int(n_classes), 1.0 / int(n_classes))
    return LinearDiscriminantAnalysis(priors=priors, **kw)


def _band(settings, sfreq, band_step: bool) -> list:
    """The baseline's own band-pass step for epochs (MOABB's paradigm band), when the
    pipeline filters epochs itself (``band_step``; outside decode); none in decode, which
    cuts the epochs from each recording band-passed as a whole."""
    from ..baselines import BandPass

    band = settings.band
    return [BandPass(sfreq=sfreq, l_freq=band[0], h_freq=band[1])] if band and band_step else []


# --------------------------------------------------------------------------- connectivity
@dataclass
class ConnectivitySettings:
    """nilearn's connectivity baseline (fMRI).

    Args:
        kind: tangent or correlation (nilearn's ConnectivityMeasure kind).
        reference: The tangent space's reference: riemann (nilearn's geometric mean) or
            logeuclid (the log-Euclidean mean).
        tangent_backend: fast (nilearn's numbers, batched) or nilearn (nilearn itself).
        site_centering: Remove site effects from the features without labels: each site
            centred on its training samples' mean, fitted inside each fold; a test site
            never seen in training on its own test samples' mean (recorded in
            metrics.json). Needs a site column in the stores.
    """

    kind: Literal["tangent", "correlation"] = "tangent"
    reference: Literal["riemann", "logeuclid"] = "riemann"
    tangent_backend: Literal["fast", "nilearn"] = "fast"
    site_centering: bool = False


def _connectivity(s: ConnectivitySettings, *, sfreq, seed, C, class_weight, n_classes, n_jobs=None, init_mean=None,
                  **_):
    from ..baselines import CONNECTIVITY_C, ConnectivityFeatures

    C = CONNECTIVITY_C.get(s.kind, 1.0) if C is None else C
    return (ConnectivityFeatures(kind=s.kind, reference=s.reference, tangent_backend=s.tangent_backend,
                                 site_centering=s.site_centering, n_jobs=n_jobs, init_mean=init_mean),
            _lr(C, seed, class_weight))


class ConnectivityDecoder(ClassicalDecoder):
    """The connectivity baseline: whole recordings, and the sites when it centres them."""

    def _groups(self, data: DecodeData, idx) -> dict:
        return {"groups": data.column("site", self.name)[idx]} if self.settings.site_centering else {}

    def report(self, data: DecodeData | None = None, idx=None) -> dict:
        """With site centring: the test sites that training never saw, which are centred
        on their own test samples (transductive, without labels)."""
        out = super().report(data, idx)
        if self.settings.site_centering and data is not None:
            seen = set(self.features.centering_.means_)
            out["centred_on_their_own_test_samples"] = sorted(
                str(s) for s in set(data.column("site", self.name)[idx]) - seen)
        return out

    @classmethod
    def summarize(cls, reports: list[dict]) -> dict:
        if not any("centred_on_their_own_test_samples" in r for r in reports):
            return {}
        sites = {str(i): r["centred_on_their_own_test_samples"] for i, r in enumerate(reports)
                 if r.get("centred_on_their_own_test_samples")}
        return {"site_centering": {"enabled": True, "centred_on_their_own_test_samples": sites}}


# --------------------------------------------------------------------------- EEG
@dataclass
class TSLRSettings:
    """MOABB's TS+LR (motor imagery).

    Args:
        estimator: pyriemann's covariance estimator.
        band: Band-pass [lo, hi] in Hz before the covariances (MOABB's motor-imagery band);
            null: none.
    """

    estimator: str = "oas"
    band: Optional[list[float]] = field(default_factory=lambda: [8.0, 32.0])


def _ts_lr(s: TSLRSettings, *, sfreq, seed, C, class_weight, n_classes, band_step=True, **_):
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return (make_pipeline(*_band(s, sfreq, band_step), Covariances(estimator=s.estimator),
                          TangentSpace(metric="riemann"), StandardScaler()), _lr(C, seed, class_weight))


@dataclass
class XdawnTSSettings:
    """xDAWN covariances and tangent space (ERPs).

    Args:
        nfilter: xDAWN spatial filters per class.
        estimator: pyriemann's covariance estimator.
        band: Band-pass [lo, hi] in Hz (MOABB's P300 band); null: none.
    """

    nfilter: int = 4
    estimator: str = "oas"
    band: Optional[list[float]] = field(default_factory=lambda: [1.0, 24.0])


def _xdawn_ts(s: XdawnTSSettings, *, sfreq, seed, C, class_weight, n_classes, band_step=True, **_):
    from pyriemann.estimation import XdawnCovariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return (make_pipeline(*_band(s, sfreq, band_step), XdawnCovariances(nfilter=s.nfilter, estimator=s.estimator),
                          TangentSpace(metric="riemann"), StandardScaler()), _lr(C, seed, class_weight))


@dataclass
class CSPLDASettings:
    """MNE's CSP and LDA (motor imagery).

    Args:
        n_components: CSP filters (their log-variances are the features).
        band: Band-pass [lo, hi] in Hz (MOABB's motor-imagery band); null: none.
    """

    n_components: int = 4
    band: Optional[list[float]] = field(default_factory=lambda: [8.0, 32.0])


def _csp_lda(s: CSPLDASettings, *, sfreq, seed, C, class_weight, n_classes, band_step=True, **_):
    from mne.decoding import CSP
    from sklearn.pipeline import make_pipeline

    return (make_pipeline(*_band(s, sfreq, band_step), CSP(n_components=s.n_components, reg="ledoit_wolf",
                                                           log=True)),
            _lda(class_weight, n_classes, solver="lsqr", shrinkage="auto"))


@dataclass
class ERPLDASettings:
    """Vectorised, decimated epochs and shrinkage LDA (ERPs).

    Args:
        target_sfreq: Rate the epochs are decimated to (anti-aliased), in Hz.
        band: Band-pass [lo, hi] in Hz (MOABB's P300 band); null: none.
    """

    target_sfreq: float = 32.0
    band: Optional[list[float]] = field(default_factory=lambda: [1.0, 24.0])


def _erp_lda(s: ERPLDASettings, *, sfreq, seed, C, class_weight, n_classes, band_step=True, **_):
    from mne.decoding import Vectorizer
    from sklearn.pipeline import make_pipeline

    from ..baselines import EpochDecimate

    return (make_pipeline(*_band(s, sfreq, band_step), EpochDecimate(sfreq=sfreq, target_sfreq=s.target_sfreq),
                          Vectorizer()),
            _lda(class_weight, n_classes, solver="lsqr", shrinkage="auto"))


def _bandpower(s, *, sfreq, seed, C, class_weight, n_classes, **_):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..baselines import BandPower

    return make_pipeline(BandPower(sfreq=sfreq), StandardScaler()), _lr(C, seed, class_weight)


# --------------------------------------------------------------------------- registry
_EEG = ("eeg", "meg")

register("connectivity", Traits("baseline", "classical", ("fmri",), library="nilearn", paradigm="connectivity"),
         ConnectivityDecoder, settings=ConnectivitySettings, pipeline=_connectivity, fixed_length=False,
         summary="nilearn connectivity (tangent or correlation) -> standardise -> logistic regression")
register("ts_lr", Traits("baseline", "classical", _EEG, library="pyriemann", paradigm="motor imagery"),
         ClassicalDecoder, settings=TSLRSettings, pipeline=_ts_lr,
         summary="8-32 Hz band-pass -> pyriemann covariances (OAS) -> tangent space -> standardise -> logistic "
                 "regression (MOABB's TS+LR)")
register("xdawn_ts", Traits("baseline", "classical", _EEG, library="pyriemann", paradigm="erp"),
         ClassicalDecoder, settings=XdawnTSSettings, pipeline=_xdawn_ts,
         summary="1-24 Hz band-pass -> pyriemann xDAWN covariances -> tangent space -> standardise -> logistic "
                 "regression")
register("csp_lda", Traits("baseline", "classical", _EEG, library="mne", paradigm="motor imagery"),
         ClassicalDecoder, settings=CSPLDASettings, pipeline=_csp_lda,
         summary="8-32 Hz band-pass -> MNE CSP (log-variance of 4 filters) -> shrinkage LDA")
register("erp_lda", Traits("baseline", "classical", _EEG, library="mne", paradigm="erp"),
         ClassicalDecoder, settings=ERPLDASettings, pipeline=_erp_lda,
         summary="1-24 Hz band-pass -> decimation to about 32 Hz -> vectorised epochs -> shrinkage LDA")
register("bandpower", Traits("baseline", "classical", _EEG, library="mne"), ClassicalDecoder, pipeline=_bandpower,
         summary="log band power (MNE Welch PSD) -> standardise -> logistic regression")


# --------------------------------------------------------------------------- outside decode
def make_baseline(name: str, *, sfreq: float = 160.0, seed: int = 0, C: float | None = None, class_weight=None,
                  n_classes: int | None = None, n_jobs: int | None = None, **settings):
    """A fresh, unfitted scikit-learn classifier for the classical baseline ``name``.

    ``sfreq``: the EEG sampling rate the pipeline is built for; ``seed`` seeds the
    logistic regressions; ``C`` their inverse L2 strength (None: 1, or for connectivity
    nilearn's reference setting, 0.05 tangent and 1 correlation); ``class_weight`` (None
    or ``"balanced"``) weighs the logistic regressions' classes and makes the LDA priors
    uniform (then ``n_classes`` is needed). ``settings`` are the baseline's own settings
    (the fields of its settings dataclass, e.g. ``band=None`` drops the band-pass of
    ``ts_lr``; ``kind="correlation"`` for connectivity). The connectivity baseline is a
    :class:`~neuroconv.brain.baselines.ConnectivityClassifier` (``fit(X, y, groups=None)``
    on a list of ``(T_i, regions)`` arrays); the others a scikit-learn ``Pipeline`` on
    ``(n, channels, times)`` epochs.
    """
    import dataclasses

    from sklearn.pipeline import make_pipeline

    e = entry(name)
    pipeline = e.options.get("pipeline")
    if pipeline is None:
        raise ValueError(f"name must be a classical baseline of the zoo ({sorted(_classical())}); got {name!r}.")
    if class_weight not in (None, "balanced"):
        raise ValueError(f"class_weight must be None or 'balanced'; got {class_weight!r}.")
    known = [f.name for f in dataclasses.fields(e.settings)] if e.settings else []
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(f"settings for baseline {name!r} must be among {known}; got {unknown}.")
    s = e.settings(**settings) if e.settings else None
    if name == "connectivity":
        from ..baselines import ConnectivityClassifier

        return ConnectivityClassifier(kind=s.kind, C=C, reference=s.reference, tangent_backend=s.tangent_backend,
                                      site_centering=s.site_centering, seed=seed, n_jobs=n_jobs,
                                      class_weight=class_weight)
    features, head = pipeline(s, sfreq=sfreq, seed=seed, C=C, class_weight=class_weight, n_classes=n_classes,
                              n_jobs=n_jobs)
    return make_pipeline(*[step for _, step in features.steps], head)


def _classical() -> dict:
    from .base import ZOO

    return {k: v for k, v in ZOO.items() if v.options.get("pipeline") is not None}
