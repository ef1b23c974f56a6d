"""Classical baselines, as scikit-learn pipelines, evaluated on the same folds.

- ``connectivity`` (fMRI): nilearn ``ConnectivityMeasure`` (tangent or correlation,
  vectorised) -> standardise -> logistic regression. Input: a list of ``(T, regions)``.
- ``csp_lda`` (EEG): ``mne.decoding.CSP`` (log-variance of 4 spatial filters) -> LDA.
  Input: ``(n, channels, times)``.
- ``bandpower`` (EEG): log band power per channel from MNE's Welch PSD (theta, mu/alpha,
  beta, low gamma) -> standardise -> logistic regression. Input: ``(n, channels, times)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["BandPower", "make_baseline", "BASELINES"]

BANDS = {"theta": (4.0, 8.0), "mu_alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0)}


class BandPower(TransformerMixin, BaseEstimator):
    """Log band power per channel and band, from ``mne.time_frequency.psd_array_welch``.

    ``transform(X (n, channels, times)) -> (n, channels * n_bands)``. Bands above the
    Nyquist frequency are dropped.
    """

    def __init__(self, sfreq: float = 160.0, bands: dict | None = None):
        self.sfreq = sfreq
        self.bands = bands

    def fit(self, X, y=None):
        bands = self.bands or BANDS
        nyq = self.sfreq / 2
        self.bands_ = {k: (lo, min(hi, nyq)) for k, (lo, hi) in bands.items() if lo < nyq}
        if not self.bands_:
            raise ValueError(f"no band lies below the Nyquist frequency {nyq} Hz (sfreq={self.sfreq}).")
        return self

    def transform(self, X):
        from mne.time_frequency import psd_array_welch

        X = np.asarray(X, dtype=np.float64)
        n_fft = min(X.shape[-1], int(2 * self.sfreq))
        psd, freqs = psd_array_welch(X, self.sfreq, fmin=0.0, fmax=self.sfreq / 2, n_fft=n_fft, verbose=False)
        feats = []
        for lo, hi in self.bands_.values():
            sel = (freqs >= lo) & (freqs < hi)
            if not sel.any():
                sel = np.abs(freqs - (lo + hi) / 2) == np.abs(freqs - (lo + hi) / 2).min()
            feats.append(np.log(psd[..., sel].mean(-1) + 1e-20))
        return np.concatenate(feats, axis=-1) if X.ndim == 2 else np.stack(feats, -1).reshape(len(X), -1)


def make_baseline(name: str, *, sfreq: float = 160.0, connectivity_kind: str = "tangent", seed: int = 0):
    """A fresh scikit-learn pipeline for baseline ``name``."""
    if name == "connectivity":
        from nilearn.connectome import ConnectivityMeasure

        return make_pipeline(
            ConnectivityMeasure(kind=connectivity_kind, vectorize=True, discard_diagonal=True),
            StandardScaler(),
            LogisticRegression(max_iter=2000, C=0.1, random_state=seed),
        )
    if name == "csp_lda":
        from mne.decoding import CSP
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        return make_pipeline(CSP(n_components=4, reg="ledoit_wolf", log=True), LinearDiscriminantAnalysis())
    if name == "bandpower":
        return make_pipeline(BandPower(sfreq=sfreq), StandardScaler(),
                             LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}.")


BASELINES = ("connectivity", "csp_lda", "bandpower")

#: the modality each baseline applies to (``--compare`` runs those that fit the data)
BASELINE_MODALITY = {"connectivity": "fmri", "csp_lda": "eeg", "bandpower": "eeg"}
