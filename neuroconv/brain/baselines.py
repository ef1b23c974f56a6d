"""The building blocks of the field's baselines, as their libraries compute them.

Which baselines a decode job runs, their settings and how each is fitted (its regulariser
chosen on the inner split, its class weighting) is the model zoo's business
(:mod:`neuroconv.brain.zoo`, whose :func:`~neuroconv.brain.zoo.classical.make_baseline`
builds any of them as one scikit-learn classifier); this module holds the pieces:

- :class:`BandPower`: log band power per channel from MNE's Welch PSD.
- :class:`BandPass`: MNE's IIR band-pass of epochs (MOABB's paradigm filters).
- :class:`EpochDecimate`: anti-aliased decimation of ERP epochs.
- :class:`TangentConnectivity`: nilearn's tangent-space connectivity, batched (nilearn's
  numbers to float64 rounding), or at a closed-form log-Euclidean reference.
- :class:`SiteCentering`, :class:`ConnectivityFeatures`, :class:`ConnectivityClassifier`:
  the fMRI connectivity baseline (nilearn ``ConnectivityMeasure`` -> optional per-site
  centring -> ``StandardScaler`` -> ``LogisticRegression``).
- :func:`braindecode_net`: braindecode's EEGNet and ShallowFBCSPNet behind the decode batch
  contract.

Inputs: fMRI pieces take a list of ``(T_i, regions)`` arrays (lengths may differ); EEG
pieces take one ``(n, channels, times)`` array and are built for its ``sfreq``.

Site labels for the per-site centring go through explicit ``groups=`` arguments:
``fit(X, y, groups=sites)``, ``predict_proba(X, groups=sites)`` (see
:class:`SiteCentering`; ``transductive_sites_`` says which test sites were centred on
their own unlabelled samples, for the run's metrics).

Heavy libraries (nilearn, MNE, pyriemann, braindecode) are imported inside functions,
so importing this module stays light.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import nn

from .spd import eig_map, ledoit_wolf_covariances, log_whitened, resolve_n_jobs, riemann_mean_nilearn

__all__ = [
    "braindecode_net", "BandPower", "BandPass", "EpochDecimate", "TangentConnectivity", "SiteCentering",
    "ConnectivityFeatures", "ConnectivityClassifier", "BraindecodeNet", "BRAINDECODE_NETS", "CONNECTIVITY_C",
]

#: braindecode's networks that :func:`braindecode_net` builds
BRAINDECODE_NETS = ("eegnet", "shallow_fbcsp")

BANDS = {"theta": (4.0, 8.0), "mu_alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0)}

#: C of the standardised logistic regression after each connectivity kind, when none is
#: chosen: the values nilearn's ABIDE reference numbers were measured with.
CONNECTIVITY_C = {"correlation": 1.0, "tangent": 0.05}


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}; got {value!r}.")


# --------------------------------------------------------------------------- EEG features


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


class EpochDecimate(TransformerMixin, BaseEstimator):
    """Anti-aliased decimation of epochs along time, to keep ERP feature counts sane.

    ``transform(X (n, channels, times)) -> (n, channels, ceil(times / q))`` with the
    integer factor ``q = floor(sfreq / target_sfreq)`` (no change when ``q`` is 1). It
    is ``scipy.signal.decimate(..., ftype="fir", zero_phase=True)``: a zero-phase FIR
    low-pass at 0.8 of the new Nyquist frequency, then every ``q``-th sample, so peaks
    keep their latency. At the default 32 Hz the pass band ends near 13 Hz, which keeps
    the slow ERP components (P300, N170) and leaves 29 samples per channel for a 0.9 s
    epoch at 256 Hz instead of 231. Stateless: ``fit`` only validates.
    """

    def __init__(self, sfreq: float = 256.0, target_sfreq: float = 32.0):
        self.sfreq = sfreq
        self.target_sfreq = target_sfreq

    def fit(self, X, y=None):
        for name in ("sfreq", "target_sfreq"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be a positive number of Hz; got {v!r}.")
        self.factor_ = max(1, int(self.sfreq // self.target_sfreq))
        return self

    def transform(self, X):
        from scipy.signal import decimate

        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise ValueError(f"X must be epochs of shape (n, channels, times); got shape {X.shape}.")
        if self.factor_ == 1:
            return X
        return decimate(X, self.factor_, ftype="fir", zero_phase=True, axis=-1)


# --------------------------------------------------------------------------- connectivity


class TangentConnectivity(TransformerMixin, BaseEstimator):
    """Tangent-space connectivity: what ``nilearn.connectome.ConnectivityMeasure(
    kind="tangent", vectorize=True, discard_diagonal=True)`` computes, vectorised over
    subjects.

    Per subject the covariance is scikit-learn's ``LedoitWolf(store_precision=False)``
    (nilearn's default estimator; the signals are centred, not standardised). ``fit``
    takes a reference ``M`` of the training covariances; ``transform`` returns
    ``logm(M^-1/2 C M^-1/2)`` vectorised as nilearn's ``sym_matrix_to_vec(...,
    discard_diagonal=True)`` does: the strictly lower triangle, row by row, unscaled
    (nilearn scales by sqrt(2) only when it keeps the diagonal).

    Parameters
    ----------
    reference : {"riemann", "logeuclid"}, default="riemann"
        ``"riemann"``: the geometric mean by nilearn's own iteration
        (:func:`riemann_mean_nilearn`), so the output equals nilearn's up to float64
        rounding. ``"logeuclid"``: the closed-form log-Euclidean mean
        ``expm(mean_i logm(C_i))`` (Arsigny et al. 2007), one eigendecomposition per
        subject instead of one per subject per iteration; a different reference point,
        so the features differ from nilearn's.
    max_iter, tol : int, float
        The geometric mean's stopping rule (nilearn's values by default).
    init_mean : (p, p) array or None, default=None
        Warm start of the geometric mean (see :func:`riemann_mean_nilearn`); None starts
        at the arithmetic mean, as nilearn does.
    n_jobs : int or None, default=None
        Threads for the per-subject eigendecompositions (None: 1; -1: all CPUs).
        BLAS runs single-threaded inside ``fit`` and ``transform`` whatever
        ``n_jobs``: a 200 x 200 eigendecomposition gains little from BLAS threads, and
        on a busy machine oversubscribed BLAS threads made it about 30 times slower
        (2-core sandbox, OpenBLAS 0.3.31).

    Attributes
    ----------
    mean_ : (p, p) reference matrix.   whitening_ : (p, p) ``mean_ ** -1/2``.
    n_iter_ : iterations of the geometric mean (0 for logeuclid).
    grad_norm_ : Frobenius norm of the Karcher gradient at the last iteration's start.
    """

    def __init__(self, reference: str = "riemann", max_iter: int = 30, tol: float = 1e-7,
                 n_jobs: int | None = None, init_mean=None):
        self.reference = reference
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.init_mean = init_mean

    @staticmethod
    def covariances(X) -> np.ndarray:
        """Ledoit-Wolf covariances ``(n, p, p)`` of a list of ``(T_i, p)`` arrays:
        scikit-learn's ``LedoitWolf(store_precision=False)`` of each, batched
        (:func:`~neuroconv.brain.spd.ledoit_wolf_covariances`)."""
        return ledoit_wolf_covariances(_check_series_list(X))

    def fit(self, X, y=None):
        self._fit_covs(self.covariances(X))
        return self

    def fit_transform(self, X, y=None, **fit_params):
        covs = self.covariances(X)
        self._fit_covs(covs)
        return self._transform_covs(covs)

    def transform(self, X):
        if not hasattr(self, "whitening_"):
            raise ValueError("this TangentConnectivity is not fitted yet; call fit first.")
        return self._transform_covs(self.covariances(X))

    def _fit_covs(self, covs):
        _check_choice("reference", self.reference, ("riemann", "logeuclid"))
        resolve_n_jobs(self.n_jobs)
        if len(covs) < 2:
            raise ValueError(f"the tangent space needs at least 2 subjects to fit; got {len(covs)}.")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            if self.reference == "riemann":
                self.mean_, self.n_iter_, self.grad_norm_ = riemann_mean_nilearn(
                    covs, max_iter=self.max_iter, tol=self.tol, n_jobs=self.n_jobs, init=self.init_mean)
            else:
                self.mean_ = eig_map(np.exp, log_whitened(None, covs, self.n_jobs).mean(axis=0))
                self.n_iter_, self.grad_norm_ = 0, float("nan")
        self.whitening_ = eig_map(lambda w: 1.0 / np.sqrt(w), self.mean_)
        self.n_features_in_ = covs.shape[-1]

    def _transform_covs(self, covs):
        if covs.shape[-1] != self.n_features_in_:
            raise ValueError(f"X has {covs.shape[-1]} regions; this model was fitted on {self.n_features_in_}.")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            tangent = log_whitened(self.whitening_, covs, self.n_jobs)  # (n p p)
        bad = np.flatnonzero(~np.isfinite(tangent).all(axis=(1, 2)))
        if len(bad):
            raise ValueError(f"recording {bad[0]} (of {len(covs)}) has a covariance that is not positive definite "
                             "(a constant or empty region?); drop or repair it.")
        rows, cols = np.tril_indices(covs.shape[-1], k=-1)
        return tangent[:, rows, cols]  # (n, p (p - 1) / 2)


def _check_series_list(X) -> list:
    if isinstance(X, np.ndarray) and X.ndim == 2:
        X = [X]
    X = [np.asarray(x, dtype=np.float64) for x in X]
    if not X:
        raise ValueError("X must hold at least one (T, regions) array; got none.")
    bad = [i for i, x in enumerate(X) if x.ndim != 2]
    if bad:
        raise ValueError(f"X must be a list of (T, regions) arrays; item {bad[0]} has shape {X[bad[0]].shape}.")
    p = {x.shape[1] for x in X}
    if len(p) != 1:
        raise ValueError(f"every recording must have the same number of regions; got {sorted(p)}.")
    return X


class SiteCentering(TransformerMixin, BaseEstimator):
    """Subtract each site's mean feature vector (label-free), fitted on training data.

    - ``fit(X, groups)``: ``means_[site]`` = mean of that site's training rows.
    - ``transform(X, groups)``: a row of a site seen in ``fit`` is centred by that
      training mean. A row of a site never seen in ``fit`` (leave-site-out) is centred
      by the mean of its own site's rows in this ``transform`` call: transductive over
      that site's unlabelled test samples (labels are never used). Those sites are
      recorded in ``transductive_groups_`` (a sorted list, empty when none), which the
      caller should report with the results.
    """

    def fit(self, X, y=None, groups=None):
        X, groups = self._check(X, groups)
        self.means_ = {g: X[groups == g].mean(axis=0) for g in np.unique(groups)}
        self.transductive_groups_ = []
        return self

    def transform(self, X, groups=None):
        if not hasattr(self, "means_"):
            raise ValueError("this SiteCentering is not fitted yet; call fit first.")
        X, groups = self._check(X, groups)
        out = np.empty_like(X)
        unseen = []
        for g in np.unique(groups):
            rows = groups == g
            if g in self.means_:
                out[rows] = X[rows] - self.means_[g]
            else:
                unseen.append(g.item() if hasattr(g, "item") else g)
                if rows.sum() == 1:
                    warnings.warn(f"site {unseen[-1]!r} was not in the training data and has one sample here: "
                                  "centring it on its own mean leaves zeros. Predict its samples together.",
                                  stacklevel=2)
                out[rows] = X[rows] - X[rows].mean(axis=0)
        self.transductive_groups_ = sorted(unseen)
        return out

    def fit_transform(self, X, y=None, groups=None):
        return self.fit(X, y, groups).transform(X, groups)

    @staticmethod
    def _check(X, groups):
        X = np.asarray(X, dtype=np.float64)
        if groups is None:
            raise ValueError("site centring needs groups= (one site label per sample); got None.")
        groups = np.asarray(groups)
        if groups.shape != (len(X),):
            raise ValueError(f"groups must hold one site label per sample ({len(X)}); got shape {groups.shape}.")
        return X, groups


class ConnectivityFeatures(TransformerMixin, BaseEstimator):
    """The connectivity baseline's features: connectivity of each whole recording ->
    (optional) per-site centring -> ``StandardScaler``.

    ``fit(X, y=None, groups=None)``, ``transform(X, groups=None)``: ``X`` is a list of
    ``(T_i, regions)`` arrays; ``groups`` are site labels, needed only with
    ``site_centering=True`` (see :class:`SiteCentering`; ``transductive_sites_`` lists
    the test sites centred on their own samples after ``transform``).

    Parameters
    ----------
    kind : {"tangent", "correlation"}
        ``"correlation"``: nilearn's ``ConnectivityMeasure`` itself. ``"tangent"``:
        :class:`TangentConnectivity` (or nilearn's with ``tangent_backend="nilearn"``).
    reference : {"riemann", "logeuclid"}
        The tangent reference mean (see :class:`TangentConnectivity`).
    tangent_backend : {"fast", "nilearn"}
    site_centering : bool, default False
    n_jobs : int or None
        Threads for the fast tangent space (see :class:`TangentConnectivity`).
    init_mean : (p, p) array or None
        Warm start of the fast tangent space's geometric mean (see
        :class:`TangentConnectivity`).
    """

    def __init__(self, kind: str = "tangent", reference: str = "riemann", tangent_backend: str = "fast",
                 site_centering: bool = False, n_jobs: int | None = None, init_mean=None):
        self.kind = kind
        self.reference = reference
        self.tangent_backend = tangent_backend
        self.site_centering = site_centering
        self.n_jobs = n_jobs
        self.init_mean = init_mean

    def _connectivity(self):
        _check_choice("kind", self.kind, ("tangent", "correlation"))
        _check_choice("tangent_backend", self.tangent_backend, ("fast", "nilearn"))
        _check_choice("reference", self.reference, ("riemann", "logeuclid"))
        if self.kind == "tangent" and self.tangent_backend == "fast":
            return TangentConnectivity(reference=self.reference, n_jobs=self.n_jobs, init_mean=self.init_mean)
        if self.kind == "tangent" and self.reference != "riemann":
            raise ValueError(f"reference={self.reference!r} needs tangent_backend='fast'; nilearn only has "
                             "the geometric ('riemann') mean.")
        from nilearn.connectome import ConnectivityMeasure

        return ConnectivityMeasure(kind=self.kind, vectorize=True, discard_diagonal=True)

    def fit(self, X, y=None, groups=None):
        self.fit_transform(X, y, groups)
        return self

    def fit_transform(self, X, y=None, groups=None):
        if not isinstance(self.site_centering, bool):
            raise ValueError(f"site_centering must be True or False; got {self.site_centering!r}.")
        self.connectivity_ = self._connectivity()
        F = self.connectivity_.fit_transform(_check_series_list(X))
        if self.site_centering:
            self.centering_ = SiteCentering()
            F = self.centering_.fit_transform(F, groups=groups)
        self.scaler_ = StandardScaler().fit(F)
        self.transductive_sites_ = []
        return self.scaler_.transform(F)

    def transform(self, X, groups=None):
        if not hasattr(self, "scaler_"):
            raise ValueError("these ConnectivityFeatures are not fitted yet; call fit first.")
        F = self.connectivity_.transform(_check_series_list(X))
        if self.site_centering:
            F = self.centering_.transform(F, groups=groups)
            self.transductive_sites_ = list(self.centering_.transductive_groups_)
        return self.scaler_.transform(F)


class ConnectivityClassifier(ClassifierMixin, BaseEstimator):
    """fMRI baseline: :class:`ConnectivityFeatures` -> ``LogisticRegression``.

    ``fit(X, y, groups=None)``, ``predict_proba(X, groups=None)``: ``X`` is a list of
    ``(T_i, regions)`` arrays; ``groups`` are site labels, needed only with
    ``site_centering=True`` (``transductive_sites_`` lists the test sites centred on
    their own samples after ``predict_proba``). Site labels go through explicit
    ``groups=`` arguments rather than scikit-learn metadata routing, which would need a
    global ``enable_metadata_routing`` switch.

    Parameters
    ----------
    kind, reference, tangent_backend, site_centering, n_jobs
        See :class:`ConnectivityFeatures`.
    C : float or None
        Inverse regularisation of the logistic regression; None takes
        ``CONNECTIVITY_C[kind]`` (0.05 tangent, 1 correlation).
    class_weight : None, "balanced" or dict
        The logistic regression's class weights.
    seed : int
    """

    def __init__(self, kind: str = "tangent", C: float | None = None, reference: str = "riemann",
                 tangent_backend: str = "fast", site_centering: bool = False, seed: int = 0,
                 n_jobs: int | None = None, class_weight=None):
        self.kind = kind
        self.C = C
        self.reference = reference
        self.tangent_backend = tangent_backend
        self.site_centering = site_centering
        self.seed = seed
        self.n_jobs = n_jobs
        self.class_weight = class_weight

    def fit(self, X, y, groups=None):
        C = CONNECTIVITY_C.get(self.kind) if self.C is None else self.C
        self.features_ = ConnectivityFeatures(kind=self.kind, reference=self.reference,
                                              tangent_backend=self.tangent_backend,
                                              site_centering=self.site_centering, n_jobs=self.n_jobs)
        if not (isinstance(C, (int, float)) and not isinstance(C, bool) and C > 0):
            if self.kind in CONNECTIVITY_C:
                raise ValueError(f"C must be a positive number or None; got {self.C!r}.")
            self.features_._connectivity()  # raises the kind error
        X = _check_series_list(X)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"y must hold one label per recording ({len(X)}); got {len(y)}.")
        F = self.features_.fit_transform(X, y, groups)
        self.classifier_ = LogisticRegression(C=C, max_iter=5000, random_state=self.seed,
                                              class_weight=self.class_weight)
        self.classifier_.fit(F, y)
        self.classes_ = self.classifier_.classes_
        self.connectivity_, self.scaler_ = self.features_.connectivity_, self.features_.scaler_
        self.transductive_sites_ = []
        return self

    def features(self, X, groups=None) -> np.ndarray:
        """The standardised features the logistic regression sees, ``(n, p (p - 1) / 2)``."""
        if not hasattr(self, "classifier_"):
            raise ValueError("this ConnectivityClassifier is not fitted yet; call fit first.")
        F = self.features_.transform(X, groups)
        self.transductive_sites_ = list(self.features_.transductive_sites_)
        return F

    def predict_proba(self, X, groups=None):
        return self.classifier_.predict_proba(self.features(X, groups))

    def decision_function(self, X, groups=None):
        return self.classifier_.decision_function(self.features(X, groups))

    def predict(self, X, groups=None):
        return self.classes_[self.predict_proba(X, groups).argmax(axis=1)]


class BandPass(TransformerMixin, BaseEstimator):
    """Band-pass filter of epochs, as MOABB's paradigms filter before their pipelines.

    ``transform(X (n, channels, times)) -> (n, channels, times)``:
    ``mne.filter.filter_data(X, sfreq, l_freq, h_freq, method="iir")``, MNE's default IIR
    filter (4th-order Butterworth, applied forwards and backwards: zero phase), the
    filter MOABB's motor-imagery and P300 paradigms apply with ``method="iir"``. MOABB
    filters the continuous recording; here each epoch is filtered on its own (MNE pads
    the edges), so the store stays broadband and the pipeline carries its own band.
    Stateless: ``fit`` only validates. ``h_freq`` at or above Nyquist means a high-pass.
    """

    def __init__(self, sfreq: float = 160.0, l_freq: float | None = 8.0, h_freq: float | None = 32.0):
        self.sfreq = sfreq
        self.l_freq = l_freq
        self.h_freq = h_freq

    def fit(self, X, y=None):
        if not (isinstance(self.sfreq, (int, float)) and self.sfreq > 0):
            raise ValueError(f"sfreq must be a positive number of Hz; got {self.sfreq!r}.")
        lo, hi = self.l_freq, self.h_freq
        if hi is not None and hi >= self.sfreq / 2:
            hi = None
        if lo is not None and hi is not None and not 0 < lo < hi:
            raise ValueError(f"the band must satisfy 0 < l_freq < h_freq; got {self.l_freq!r}, {self.h_freq!r}.")
        self.band_ = (lo, hi)
        return self

    def transform(self, X):
        from mne.filter import filter_data

        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise ValueError(f"X must be epochs of shape (n, channels, times); got shape {X.shape}.")
        lo, hi = self.band_
        if lo is None and hi is None:
            return X
        return filter_data(X, self.sfreq, lo, hi, method="iir", verbose=False)


# --------------------------------------------------------------------------- braindecode


def _braindecode_class(name: str):
    """braindecode's class for ``name``, under the name of the installed version
    (imported through :func:`neuroconv.data.braindecode.import_braindecode`, which works
    where torchaudio cannot load)."""
    from neuroconv.data.braindecode import import_braindecode

    bm = import_braindecode("braindecode.models")
    spellings = {"eegnet": ("EEGNet", "EEGNetv4"), "shallow_fbcsp": ("ShallowFBCSPNet",)}[name]
    for s in spellings:
        if hasattr(bm, s):
            return getattr(bm, s)
    raise ImportError(f"braindecode {import_braindecode().__version__} has none of {spellings}; "
                      "install braindecode>=1.8 (pip install 'neuroconv[baselines]').")


def braindecode_kwargs(name: str, n_chans: int, n_outputs: int, n_times: int, sfreq: float) -> dict:
    """The keyword arguments :func:`braindecode_net` passes to braindecode's class.

    Kernel sizes are given in seconds by the papers and converted at ``sfreq``:

    - EEGNet: ``kernel_length`` = half the sampling rate (Lawhern et al. 2018: 64 at
      128 Hz). Its two poolings (4 and 8) divide time by 32.
    - ShallowFBCSPNet: temporal filter 0.1 s, mean pooling 0.3 s with 0.06 s stride
      (Schirrmeister et al. 2017: 25, 75 and 15 samples at 250 Hz). When the window is
      shorter than filter + pool, the pool shrinks to fit.

    ``final_conv_length="auto"`` fits the classifier to ``n_times``. Raises
    ``ValueError`` when ``n_times`` is too short for the network.
    """
    _check_choice("name", name, BRAINDECODE_NETS)
    for arg, v in (("n_chans", n_chans), ("n_outputs", n_outputs), ("n_times", n_times)):
        if not (isinstance(v, (int, np.integer)) and v >= 1):
            raise ValueError(f"{arg} must be a positive integer; got {v!r}.")
    if not (isinstance(sfreq, (int, float, np.floating)) and sfreq > 0):
        raise ValueError(f"sfreq must be a positive number of Hz; got {sfreq!r}.")
    kw = dict(n_chans=int(n_chans), n_outputs=int(n_outputs), n_times=int(n_times), final_conv_length="auto")
    if name == "eegnet":
        if n_times < 32:
            raise ValueError(f"eegnet needs n_times >= 32 (its poolings divide time by 32); got n_times={n_times} "
                             f"({n_times / sfreq:.3g} s at {sfreq:g} Hz). Use longer windows.")
        kw["kernel_length"] = max(2, int(round(sfreq / 2)))
        return kw
    filt = max(2, int(round(0.1 * sfreq)))
    pool = max(1, int(round(0.3 * sfreq)))
    stride = max(1, int(round(0.06 * sfreq)))
    if n_times < filt + 1:
        raise ValueError(f"shallow_fbcsp needs n_times >= {filt + 1} (a {filt}-sample temporal filter at "
                         f"{sfreq:g} Hz, then pooling); got n_times={n_times}. Use longer windows.")
    pool = min(pool, n_times - filt + 1)
    kw.update(filter_time_length=filt, pool_time_length=pool, pool_time_stride=min(stride, pool))
    return kw


class BraindecodeNet(nn.Module):
    """A braindecode network behind the decode batch contract.

    ``forward(batch) -> logits (B, n_outputs)`` where ``batch["x"]`` is ``(B, L, C)``
    float32 and ``batch["mask"]`` ``(B, L)`` bool marks real steps. Padded steps are
    zeroed, the input is transposed to braindecode's ``(B, C, T)`` and zero-padded on
    the right to ``n_times`` (an error when ``L > n_times``). No log-softmax: train with
    cross-entropy on the logits. Other batch keys (``sfreq``, ``key``, ...) are ignored.
    ``net`` is braindecode's own module.
    """

    def __init__(self, net: nn.Module, n_times: int):
        super().__init__()
        self.net = net
        self.n_times = n_times

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch["x"]  # (B L C)
        mask = batch.get("mask")
        if mask is not None:
            x = x * mask[..., None].to(x.dtype)
        L = x.shape[1]
        if L > self.n_times:
            raise ValueError(f"the batch has {L} time steps; this network was built for n_times={self.n_times}.")
        x = x.transpose(1, 2)  # (B C L)
        if L < self.n_times:
            x = nn.functional.pad(x, (0, self.n_times - L))  # (B C n_times)
        return self.net(x)  # (B n_outputs)


def braindecode_net(name: str, n_chans: int, n_outputs: int, n_times: int, sfreq: float):
    """braindecode's EEGNet (``"eegnet"``) or ShallowFBCSPNet (``"shallow_fbcsp"``),
    wrapped so that ``forward(batch)`` takes the decode batch dict and returns logits
    ``(B, n_outputs)``; see :func:`braindecode_kwargs` for the sizes. ``.net`` is
    braindecode's own module (input ``(B, C, T)``)."""
    kw = braindecode_kwargs(name, n_chans, n_outputs, n_times, sfreq)
    cls = _braindecode_class(name)
    params = inspect.signature(cls.__init__).parameters
    if "add_log_softmax" in params:  # braindecode < 1.0 (ShallowFBCSPNet): logits, not log-probabilities
        kw["add_log_softmax"] = False
    if "sfreq" in params:
        kw["sfreq"] = float(sfreq)
    try:
        net = cls(**kw)
    except (RuntimeError, ValueError) as err:  # e.g. a pooling larger than what is left of the window
        raise ValueError(f"{name} cannot be built for n_chans={n_chans}, n_times={n_times} at {sfreq:g} Hz "
                         f"({err}). Use longer windows.") from err
    return BraindecodeNet(net, int(n_times))

