"""The field's sleep baselines as building blocks: spindle detection and sleep staging.

Spindle detection on a single EEG channel (a signal ``(n,)`` in µV at ``sfreq`` Hz;
events are ``(onsets, offsets)`` in samples, offsets exclusive, as in
:mod:`neuroconv.engine.events`):

- :func:`yasa_spindles`: YASA's ``spindles_detect`` (Lacourse et al. 2018's rule) on one
  signal, its spindles as sample intervals.
- :class:`YasaSpindles`: the same detector with its three thresholds chosen on training
  recordings, by the pooled by-event F1 over a small grid around YASA's defaults.
- :func:`sigma_features` and :class:`SigmaSpindleClassifier`: YASA's three quantities
  (relative sigma power, sigma RMS, sigma-broadband correlation) and the broadband power
  on short sliding windows, a class-weighted logistic regression per window, and events
  by a threshold chosen on the training recordings.

Sleep staging over whole nights (one row per 30-s epoch):

- the per-epoch classifiers are scikit-learn's ``LogisticRegression`` and LightGBM's
  ``LGBMClassifier``, used as they are;
- :class:`HMMSmoother`: a hybrid HMM over their posteriors (transitions counted on the
  training nights, Viterbi or forward-backward through hmmlearn);
- :class:`SleepGRU`: a bidirectional GRU over the night (a SeqSleepNet-style recurrent
  baseline) on padded batches, and :func:`sleep_gru_n_parameters`.

YASA, LightGBM and hmmlearn are the optional extra ``sleep``
(``pip install 'neuroconv[sleep]'``); they are imported inside the functions that use
them, so this module imports without them.
"""

from __future__ import annotations

import importlib
import itertools
from typing import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from ..engine.events import as_intervals, event_scores, match_events, proba_to_events

__all__ = ["yasa_spindles", "YasaSpindles", "YASA_DEFAULT_THRESH", "YASA_THRESH_GRID", "sigma_features",
           "SigmaSpindleClassifier", "HMMSmoother", "SleepGRU", "sleep_gru_n_parameters", "require"]

#: YASA's default detection thresholds (``yasa.spindles_detect(thresh=None)``)
YASA_DEFAULT_THRESH = {"rel_pow": 0.2, "corr": 0.65, "rms": 1.5}
#: The grid :class:`YasaSpindles` searches by default: each threshold at YASA's default and
#: one step below and above it (27 candidates). Relative sigma power is a fraction of the
#: broadband power, the correlation a Pearson r, the RMS threshold a number of (trimmed)
#: standard deviations above the recording's mean moving RMS.
YASA_THRESH_GRID = {"rel_pow": (0.1, 0.2, 0.3), "corr": (0.5, 0.65, 0.8), "rms": (1.0, 1.5, 2.0)}


def require(module: str):
    """Import ``module`` (yasa, lightgbm or hmmlearn), or raise an ImportError that says
    how to install the ``sleep`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is needed for the sleep baselines but is not installed: "
                          f"pip install 'neuroconv[sleep]'") from e


# --------------------------------------------------------------------------- input checks
def _check_signal(signal, name: str = "signal") -> np.ndarray:
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be one channel, a 1-D array (n_samples,); got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError(f"`{name}` holds NaN or inf: interpolate or cut the bad samples first.")
    return x


def _check_sfreq(sfreq, name: str = "sfreq") -> float:
    try:
        f = float(sfreq)
    except (TypeError, ValueError):
        f = float("nan")
    if not np.isfinite(f) or f <= 0:
        raise ValueError(f"`{name}` must be a positive sampling rate in Hz; got {sfreq!r}.")
    return f


def _check_mask(mask, n: int, name: str = "mask") -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != (n,):
        raise ValueError(f"`{name}` must be a boolean array of one value per sample ({n},); got shape {m.shape}.")
    return m.astype(bool)


def _check_recordings(signals, sfreqs, true_events, masks):
    """Lists of checked signals, rates, (n, 2) sample intervals and masks (or Nones)."""
    if isinstance(signals, np.ndarray) and signals.ndim == 1:
        raise ValueError("`signals` must be a list of recordings (each a 1-D array); got a single 1-D array: "
                         "wrap it in a list.")
    signals = [_check_signal(s, f"signals[{i}]") for i, s in enumerate(signals)]
    n = len(signals)
    if n == 0:
        raise ValueError("`signals` must hold at least one recording; got none.")
    if np.ndim(sfreqs) == 0:
        sfreqs = [sfreqs] * n
    sfreqs = [_check_sfreq(f, f"sfreqs[{i}]") for i, f in enumerate(sfreqs)]
    true_events = list(true_events)
    masks = [None] * n if masks is None else list(masks)
    if not len(sfreqs) == len(true_events) == len(masks) == n:
        raise ValueError(f"`signals`, `sfreqs`, `true_events` and `masks` must have one entry per recording; got "
                         f"{n}, {len(sfreqs)}, {len(true_events)} and {len(masks)}.")
    true_events = [as_intervals(e) for e in true_events]
    masks = [_check_mask(m, len(s), f"masks[{i}]") for i, (m, s) in enumerate(zip(masks, signals))]
    return signals, sfreqs, true_events, masks


def _pooled_f1(true_events, pred_events, iou: float) -> tuple[float, tuple[int, int, int]]:
    counts = np.zeros(3, dtype=np.int64)
    for t, p in zip(true_events, pred_events):
        counts += match_events(t, p, iou).counts
    return event_scores(tuple(counts))[2], tuple(int(c) for c in counts)


# --------------------------------------------------------------------------- YASA
def yasa_spindles(signal, sfreq: float, *, thresh: dict | None = None, mask=None, freq_sp=(12.0, 15.0),
                  freq_broad=(1.0, 30.0), duration=(0.5, 2.0),
                  min_distance: float = 500) -> tuple[np.ndarray, np.ndarray]:
    """YASA's spindle detector on one channel, its spindles as sample intervals.

    Runs ``yasa.spindles_detect(signal, sfreq, thresh=..., freq_sp=..., freq_broad=...,
    duration=..., min_distance=...)`` with YASA's own defaults for everything else; with
    ``mask``, detection is restricted to the masked samples (YASA's ``hypno`` with
    ``include``: its RMS threshold is then computed on those samples only, as YASA does
    with a hypnogram's NREM stages).

    Args:
        signal: ``(n,)`` EEG in µV (YASA skips channels whose trimmed standard deviation
            is outside 0.1-1000 µV; here that is an error).
        sfreq: Sampling rate in Hz.
        thresh: YASA's ``thresh`` dict (keys ``rel_pow``, ``corr``, ``rms``); ``None``:
            YASA's defaults :data:`YASA_DEFAULT_THRESH`.
        mask: ``(n,)`` boolean, the samples where spindles may be detected, or ``None``.
        freq_sp, freq_broad, duration, min_distance: passed to YASA unchanged (Hz, Hz,
            seconds, milliseconds).

    Returns:
        ``(onsets, offsets)``, ``(n_spindles,)`` int64 samples: YASA's ``Start`` and
        ``End`` (the times of a spindle's first and last sample) times ``sfreq``, rounded,
        and ``End`` + 1 as the exclusive offset, so that
        :func:`~neuroconv.engine.events.events_to_mask` gives YASA's ``get_mask()``.
    """
    yasa = require("yasa")
    x, sf = _check_signal(signal), _check_sfreq(sfreq)
    m = _check_mask(mask, len(x))
    if max(freq_sp[1], freq_broad[1]) >= sf / 2:
        raise ValueError(f"`freq_sp` {tuple(freq_sp)} and `freq_broad` {tuple(freq_broad)} must lie below the Nyquist "
                         f"frequency {sf / 2} Hz of sfreq={sf}: resample the signal (e.g. mne.filter.resample to "
                         "100 Hz) or lower freq_broad.")
    kw = dict(thresh=None if thresh is None else dict(thresh), freq_sp=tuple(freq_sp), freq_broad=tuple(freq_broad),
              duration=tuple(duration), min_distance=min_distance)
    if m is not None:
        if not m.any():
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        kw.update(hypno=m.astype(int), include=(1,))
    sp = yasa.spindles_detect(x, sf, verbose="error", **kw)  # "no spindle found" is a result here
    if sp is None:
        std = float(yasa.others.trimbothstd(x, cut=0.05))
        if not 0.1 < std < 1e3:
            raise ValueError(f"`signal` has a trimmed standard deviation of {std:.4g}, outside YASA's 0.1-1000: "
                             "it must be in microvolts (multiply volts by 1e6).")
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ev = sp.summary()[["Start", "End"]].to_numpy()
    idx = np.round(ev * sf).astype(np.int64)
    return idx[:, 0], idx[:, 1] + 1


class YasaSpindles(BaseEstimator):
    """YASA's spindle detector with its thresholds chosen on training recordings.

    ``fit`` runs :func:`yasa_spindles` on every training recording for every candidate
    of ``grid`` (the product of its values, in the grid's order) and keeps the candidate
    with the best by-event F1 pooled over the recordings (counts added before scoring;
    a pair counts when its IoU is at least ``iou``); the first candidate in grid order wins
    a tie. ``predict`` runs the detector with the chosen thresholds.

    Args:
        grid: ``{"rel_pow": values, "corr": values, "rms": values}`` (a missing key keeps
            YASA's default; a value of ``None`` disables that threshold as in YASA);
            ``None``: :data:`YASA_THRESH_GRID` (27 candidates around YASA's defaults).
            A grid of one value per key reproduces plain YASA.
        iou: IoU a detection needs with an expert's spindle to count (0.2, as in the
            spindle literature and YASA's ``compare_detection``).
        freq_sp, freq_broad, duration, min_distance: YASA's arguments (defaults are
            YASA's).

    Fitted attributes: ``thresh_`` (the chosen dict), ``best_score_`` (its pooled F1),
    ``cv_results_`` (one dict per candidate: ``thresh``, ``tp``, ``fp``, ``fn``, ``f1``).
    """

    def __init__(self, grid: dict | None = None, iou: float = 0.2, freq_sp=(12.0, 15.0), freq_broad=(1.0, 30.0),
                 duration=(0.5, 2.0), min_distance: float = 500):
        self.grid = grid
        self.iou = iou
        self.freq_sp = freq_sp
        self.freq_broad = freq_broad
        self.duration = duration
        self.min_distance = min_distance

    def _candidates(self) -> list[dict]:
        grid = YASA_THRESH_GRID if self.grid is None else self.grid
        if not isinstance(grid, dict) or not grid or set(grid) - set(YASA_DEFAULT_THRESH):
            raise ValueError(f"`grid` must be a dict with keys among {sorted(YASA_DEFAULT_THRESH)}; got {grid!r}.")
        keys = list(grid)
        values = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v] for v in grid.values()]
        if any(len(v) == 0 for v in values):
            raise ValueError(f"every entry of `grid` needs at least one value; got {grid!r}.")
        return [{**YASA_DEFAULT_THRESH, **dict(zip(keys, combo))} for combo in itertools.product(*values)]

    def _detect(self, signal, sfreq, thresh, mask=None):
        return yasa_spindles(signal, sfreq, thresh=thresh, mask=mask, freq_sp=self.freq_sp,
                             freq_broad=self.freq_broad, duration=self.duration, min_distance=self.min_distance)

    def fit(self, signals: Sequence, sfreqs, true_events: Sequence, masks: Sequence | None = None):
        """Choose the thresholds on training recordings.

        Args:
            signals: list of ``(n_i,)`` µV signals.
            sfreqs: one sampling rate (Hz) for all, or one per recording.
            true_events: per recording, the expert's spindles in samples (a tuple
                ``(onsets, offsets)`` or an ``(m_i, 2)`` array).
            masks: optional per recording ``(n_i,)`` boolean: where detection runs.
        """
        if not 0.0 <= float(self.iou) <= 1.0:
            raise ValueError(f"`iou` must be in [0, 1]; got {self.iou!r}.")
        candidates = self._candidates()
        signals, sfreqs, true_events, masks = _check_recordings(signals, sfreqs, true_events, masks)
        self.cv_results_ = []
        for thresh in candidates:
            pred = [self._detect(s, f, thresh, m) for s, f, m in zip(signals, sfreqs, masks)]
            f1, (tp, fp, fn) = _pooled_f1(true_events, pred, self.iou)
            self.cv_results_.append({"thresh": thresh, "tp": tp, "fp": fp, "fn": fn, "f1": f1})
        best = int(np.argmax([r["f1"] for r in self.cv_results_]))  # first of the best
        self.thresh_ = dict(self.cv_results_[best]["thresh"])
        self.best_score_ = self.cv_results_[best]["f1"]
        return self

    def predict(self, signal, sfreq: float, mask=None) -> tuple[np.ndarray, np.ndarray]:
        """Spindles of one recording: ``(onsets, offsets)`` in samples (see
        :func:`yasa_spindles`)."""
        if not hasattr(self, "thresh_"):
            raise RuntimeError("YasaSpindles is not fitted: call fit(signals, sfreqs, true_events) first.")
        return self._detect(signal, sfreq, self.thresh_, mask)


# --------------------------------------------------------------------------- sigma windows
SIGMA_FEATURES = ("rel_sigma_power", "log_sigma_rms", "sigma_broad_corr", "log_broad_power")


def sigma_features(signal, sfreq: float, *, window: float = 0.5, step: float = 0.1, freq_sp=(11.0, 16.0),
                   freq_broad=(1.0, 30.0)) -> tuple[np.ndarray, np.ndarray]:
    """YASA's three spindle quantities and the broadband power on sliding windows.

    The signal is filtered twice with MNE's zero-phase FIR filters, as YASA does:
    broadband ``freq_broad`` (default transitions) and sigma ``freq_sp`` (1.5 Hz
    transitions). On each window of ``round(window * sfreq)`` samples, every
    ``round(step * sfreq)`` samples from the start, with ``b`` and ``s`` the filtered
    samples in it:

    - ``rel_sigma_power = sum(s**2) / sum(b**2)`` (sigma power as a fraction of the
      broadband power, YASA's ``rel_pow`` from the filters instead of an STFT);
    - ``log_sigma_rms = log(sqrt(mean(s**2)))`` (YASA's ``rms``);
    - ``sigma_broad_corr``: Pearson correlation of ``s`` and ``b`` (YASA's ``corr``);
    - ``log_broad_power = log(mean(b**2))``.

    Returns:
        ``features (W, 4)`` float64 in the order of ``SIGMA_FEATURES`` and
        ``centres (W,)`` the centre of each window in samples (float).
    """
    from mne.filter import filter_data
    from numpy.lib.stride_tricks import sliding_window_view

    x, sf = _check_signal(signal), _check_sfreq(sfreq)
    w, st = int(round(window * sf)), int(round(step * sf))
    if w < 2 or st < 1:
        raise ValueError(f"`window` and `step` must span at least 2 and 1 samples at {sf} Hz; got window={window} s, "
                         f"step={step} s.")
    if len(x) < w:
        raise ValueError(f"`signal` has {len(x)} samples, fewer than one window ({w}).")
    if freq_sp[1] >= sf / 2 or freq_broad[1] >= sf / 2:
        raise ValueError(f"`freq_sp` and `freq_broad` must lie below the Nyquist frequency {sf / 2} Hz; got "
                         f"{tuple(freq_sp)} and {tuple(freq_broad)}.")
    b = filter_data(x, sf, freq_broad[0], freq_broad[1], method="fir", verbose=False)
    s = filter_data(x, sf, freq_sp[0], freq_sp[1], l_trans_bandwidth=1.5, h_trans_bandwidth=1.5, method="fir",
                    verbose=False)
    bw, sw = sliding_window_view(b, w)[::st], sliding_window_view(s, w)[::st]  # (W, w) views
    tiny = np.finfo(np.float64).tiny
    pb, ps = (bw**2).mean(1), (sw**2).mean(1)
    bc, sc = bw - bw.mean(1, keepdims=True), sw - sw.mean(1, keepdims=True)
    den = np.sqrt((bc**2).sum(1) * (sc**2).sum(1))
    corr = np.divide((bc * sc).sum(1), den, out=np.zeros(len(den)), where=den > 0)
    feats = np.stack([ps / np.maximum(pb, tiny), 0.5 * np.log(np.maximum(ps, tiny)), corr,
                      np.log(np.maximum(pb, tiny))], axis=1)
    centres = np.arange(len(bw)) * st + (w - 1) / 2
    return feats, centres


class SigmaSpindleClassifier(BaseEstimator):
    """Spindles from a logistic regression on sigma-band features of short windows.

    Per recording: :func:`sigma_features` on windows of ``window`` s every ``step`` s;
    the two log-amplitude features are centred on the recording's median (so that the
    model does not depend on the recording's gain); each window is described by its
    features and those of ``context`` neighbours on each side (edge windows repeat the
    first/last). A window is a spindle window when at least half of its samples lie in an
    expert's spindle. A class-weighted (``"balanced"``) logistic regression on
    standardised features gives a probability per window, linearly interpolated between
    window centres to every sample. Events: :func:`~neuroconv.engine.events.proba_to_events`
    with the threshold, gaps of up to ``max_gap`` s bridged and durations in
    ``duration`` s.

    Choices made on the training recordings only:

    - ``C`` from ``Cs``: the lowest class-weighted (balanced) log loss on held-out
      recordings of a group k-fold over the training recordings (``inner_splits`` folds,
      at most one per recording);
    - the threshold from ``thresholds``: the best pooled by-event F1 (IoU >= ``iou``) of
      the held-out predictions of that same inner split at the chosen ``C`` (first of the
      best wins a tie); the final model is then refitted on all training recordings.

    Args:
        window, step: Window length and hop in seconds.
        context: Neighbouring windows on each side added as features.
        Cs: Candidate inverse regularisation strengths.
        thresholds: Candidate probability thresholds.
        iou, duration, max_gap: by-event scoring and event rule (seconds).
        inner_splits: Folds of the inner split (needs at least 2 training recordings).
        freq_sp, freq_broad: Bands of :func:`sigma_features`.

    Fitted attributes: ``C_``, ``threshold_``, ``inner_log_loss_`` (one per C),
    ``inner_f1_`` (one per threshold), ``pipeline_`` (the scikit-learn pipeline).
    """

    def __init__(self, window: float = 0.5, step: float = 0.1, context: int = 2,
                 Cs=(1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0), thresholds=tuple(k / 20 for k in range(1, 20)),
                 iou: float = 0.2, duration=(0.5, 2.0), max_gap: float = 0.2, inner_splits: int = 3,
                 freq_sp=(11.0, 16.0), freq_broad=(1.0, 30.0)):
        self.window = window
        self.step = step
        self.context = context
        self.Cs = Cs
        self.thresholds = thresholds
        self.iou = iou
        self.duration = duration
        self.max_gap = max_gap
        self.inner_splits = inner_splits
        self.freq_sp = freq_sp
        self.freq_broad = freq_broad

    # -- features
    def _windows(self, signal, sfreq):
        f, centres = sigma_features(signal, sfreq, window=self.window, step=self.step, freq_sp=self.freq_sp,
                                    freq_broad=self.freq_broad)
        f[:, [1, 3]] -= np.median(f[:, [1, 3]], axis=0)
        c = int(self.context)
        if c:
            pad = np.concatenate([np.repeat(f[:1], c, 0), f, np.repeat(f[-1:], c, 0)])
            f = np.concatenate([pad[k:k + len(f)] for k in range(2 * c + 1)], axis=1)
        return f, centres

    def _labels(self, n, sfreq, events, centres):
        from ..engine.events import events_to_mask

        ev = np.clip(np.round(events), 0, n).astype(np.int64)
        ev = ev[ev[:, 1] > ev[:, 0]]
        inside = np.concatenate([[0], np.cumsum(events_to_mask(ev[:, 0], ev[:, 1], n))])
        w = int(round(self.window * sfreq))
        start = np.round(centres - (w - 1) / 2).astype(np.int64)
        return (inside[start + w] - inside[start]) * 2 >= w

    def _events(self, proba, sfreq, threshold, mask=None):
        if mask is not None:
            proba = np.where(mask, proba, 0.0)
        lo, hi = self.duration
        return proba_to_events(proba, threshold, min_len=max(1, int(np.ceil(lo * sfreq))),
                               max_len=int(np.floor(hi * sfreq)), max_gap=int(round(self.max_gap * sfreq)))

    @staticmethod
    def _to_samples(p_win, centres, n):
        return np.interp(np.arange(n), centres, p_win)

    def _check_params(self):
        if isinstance(self.context, bool) or not isinstance(self.context, (int, np.integer)) or self.context < 0:
            raise ValueError(f"`context` must be an integer >= 0; got {self.context!r}.")
        if len(self.Cs) == 0 or min(self.Cs) <= 0:
            raise ValueError(f"`Cs` must be positive numbers; got {self.Cs!r}.")
        if len(self.thresholds) == 0:
            raise ValueError("`thresholds` must hold at least one value; got none.")
        if not (0 < self.duration[0] < self.duration[1]):
            raise ValueError(f"`duration` must be (min, max) seconds with 0 < min < max; got {self.duration!r}.")
        if isinstance(self.inner_splits, bool) or not isinstance(self.inner_splits, (int, np.integer)) \
                or self.inner_splits < 2:
            raise ValueError(f"`inner_splits` must be an integer >= 2; got {self.inner_splits!r}.")

    def _make(self, C):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        lr = LogisticRegression(C=C, class_weight="balanced", solver="newton-cholesky", max_iter=1000)
        return make_pipeline(StandardScaler(), lr)

    def fit(self, signals: Sequence, sfreqs, true_events: Sequence, masks: Sequence | None = None):
        """Fit on training recordings (same arguments as :meth:`YasaSpindles.fit`;
        ``true_events`` in samples). With ``masks``, only windows whose centre is in the
        mask are used for training and the threshold, and detection runs inside it."""
        from sklearn.metrics import log_loss
        from sklearn.model_selection import GroupKFold
        from sklearn.utils.class_weight import compute_sample_weight

        self._check_params()
        signals, sfreqs, true_events, masks = _check_recordings(signals, sfreqs, true_events, masks)
        n_rec = len(signals)
        if n_rec < 2:
            raise ValueError(f"SigmaSpindleClassifier.fit needs at least 2 training recordings for its inner split; "
                             f"got {n_rec}.")
        X, y, g, keep, centres = [], [], [], [], []
        for r, (s, f, ev, m) in enumerate(zip(signals, sfreqs, true_events, masks)):
            feats, c = self._windows(s, f)
            X.append(feats), centres.append(c)
            y.append(self._labels(len(s), f, ev, c))
            keep.append(np.ones(len(c), bool) if m is None else m[np.round(c).astype(np.int64)])
            g.append(np.full(len(c), r))
        Xa, ya, ga, ka = (np.concatenate(a) for a in (X, y, g, keep))
        if ya[ka].all() or not ya[ka].any():
            raise ValueError("`true_events` must mark some but not all training windows as spindles; got one class.")
        k = min(int(self.inner_splits), n_rec)
        folds = list(GroupKFold(n_splits=k).split(Xa, ya, ga))
        self.inner_log_loss_, oof_by_C = [], []
        w = compute_sample_weight("balanced", ya[ka])
        for C in self.Cs:
            oof = np.zeros(len(ya))  # held-out probability of every window
            for tr, va in folds:
                tr = tr[ka[tr]]
                oof[va] = self._make(C).fit(Xa[tr], ya[tr]).predict_proba(Xa[va])[:, 1]
            self.inner_log_loss_.append(float(log_loss(ya[ka], oof[ka], sample_weight=w, labels=[False, True])))
            oof_by_C.append(oof)
        best = int(np.argmin(self.inner_log_loss_))
        self.C_ = float(self.Cs[best])
        oof = oof_by_C[best]
        self.inner_f1_ = []
        probas = [self._to_samples(oof[ga == r], centres[r], len(signals[r])) for r in range(n_rec)]
        for thr in self.thresholds:
            pred = [self._events(p, f, thr, m) for p, f, m in zip(probas, sfreqs, masks)]
            self.inner_f1_.append(_pooled_f1(true_events, pred, self.iou)[0])
        self.threshold_ = float(self.thresholds[int(np.argmax(self.inner_f1_))])
        self.pipeline_ = self._make(self.C_).fit(Xa[ka], ya[ka])
        return self

    def predict_proba(self, signal, sfreq: float) -> np.ndarray:
        """Spindle probability per sample, ``(n,)`` float64 (window probabilities
        interpolated between window centres)."""
        if not hasattr(self, "pipeline_"):
            raise RuntimeError("SigmaSpindleClassifier is not fitted: call fit(signals, sfreqs, true_events) first.")
        x = _check_signal(signal)
        feats, centres = self._windows(x, sfreq)
        return self._to_samples(self.pipeline_.predict_proba(feats)[:, 1], centres, len(x))

    def predict(self, signal, sfreq: float, mask=None) -> tuple[np.ndarray, np.ndarray]:
        """Spindles of one recording: ``(onsets, offsets)`` in samples."""
        p = self.predict_proba(signal, sfreq)
        return self._events(p, _check_sfreq(sfreq), self.threshold_, _check_mask(mask, len(p)))


# --------------------------------------------------------------------------- HMM
_HMM_CLASS = None


def _scaled_likelihood_hmm():
    """hmmlearn's BaseHMM whose "observations" are the log emission likelihoods."""
    global _HMM_CLASS
    if _HMM_CLASS is None:
        base = require("hmmlearn.base")

        class ScaledLikelihoodHMM(base.BaseHMM):
            def _compute_log_likelihood(self, X):  # X (L, K): log p(x_t | state) up to a constant per t
                return X

        _HMM_CLASS = ScaledLikelihoodHMM
    return _HMM_CLASS


class HMMSmoother(BaseEstimator):
    """A hybrid HMM over a per-epoch classifier's posteriors (sleep-stage smoothing).

    ``fit`` counts, on the training nights' stage sequences, the transitions
    ``a -> b`` between consecutive epochs and the first stage of each night, and sets
    (additive, Laplace-style smoothing with ``alpha`` added to every count)::

        transmat_[a, b] = (n(a -> b) + alpha) / sum_c (n(a -> c) + alpha)
        startprob_[a]   = (n(first = a) + alpha) / sum_c (n(first = c) + alpha)

    The emission of a state is the classifier's posterior divided by the class prior the
    classifier was trained under (the hybrid HMM's scaled likelihood,
    ``p(x | s) ∝ p(s | x) / p(s)``): ``classifier_prior="counts"`` estimates it from the
    training sequences' stage frequencies (``(n(s) + alpha) / sum``; right for a
    classifier trained without class weights), ``"uniform"`` (right for a classifier
    trained with balanced class weights), or an array ``(K,)``.

    ``predict`` is Viterbi (the most probable stage sequence), ``predict_proba`` the
    forward-backward posteriors; both run through hmmlearn (``BaseHMM`` with these
    log-likelihoods). Posteriors are floored at the smallest positive float64 before the
    logarithm, so a zero probability is a very large penalty instead of an impossibility.

    Args:
        n_classes: Number of stages ``K`` (labels ``0..K-1``); ``None``: one more than the
            largest training label.
        alpha: Additive smoothing of every count (``>= 0``; 0 leaves unseen transitions
            impossible).
        classifier_prior: ``"counts"``, ``"uniform"`` or a ``(K,)`` array.

    Fitted attributes: ``n_classes_``, ``transmat_ (K, K)``, ``startprob_ (K,)``,
    ``class_prior_ (K,)``.
    """

    def __init__(self, n_classes: int | None = None, alpha: float = 1.0, classifier_prior="counts"):
        self.n_classes = n_classes
        self.alpha = alpha
        self.classifier_prior = classifier_prior

    def fit(self, sequences: Sequence, y=None):
        """``sequences``: list of ``(L_i,)`` integer stage sequences (one per night)."""
        if isinstance(sequences, np.ndarray) and sequences.ndim == 1:
            raise ValueError("`sequences` must be a list of nights (each a 1-D array of stages); got one 1-D array: "
                             "wrap it in a list.")
        seqs = [np.asarray(s) for s in sequences]
        if not seqs or any(s.ndim != 1 or len(s) == 0 for s in seqs):
            raise ValueError("`sequences` must be a non-empty list of non-empty 1-D stage arrays.")
        if any(not np.issubdtype(s.dtype, np.integer) for s in seqs) or min(s.min() for s in seqs) < 0:
            raise ValueError("`sequences` must hold integer stages 0..K-1.")
        alpha = float(self.alpha)
        if not alpha >= 0:
            raise ValueError(f"`alpha` must be >= 0; got {self.alpha!r}.")
        top = max(int(s.max()) for s in seqs) + 1
        K = top if self.n_classes is None else int(self.n_classes)
        if K < top:
            raise ValueError(f"`n_classes`={self.n_classes} but the sequences hold stage {top - 1}.")
        trans = np.zeros((K, K))
        start = np.zeros(K)
        counts = np.zeros(K)
        for s in seqs:
            np.add.at(trans, (s[:-1], s[1:]), 1)
            start[s[0]] += 1
            counts += np.bincount(s, minlength=K)
        trans += alpha
        start += alpha
        if (trans.sum(1) == 0).any() or start.sum() == 0:
            raise ValueError("with `alpha`=0, every stage must be left at least once in the training sequences; "
                             "use alpha > 0.")
        self.n_classes_ = K
        self.transmat_ = trans / trans.sum(1, keepdims=True)
        self.startprob_ = start / start.sum()
        prior = self.classifier_prior
        if isinstance(prior, str):
            if prior == "counts":
                c = counts + alpha
                if c.min() <= 0:
                    raise ValueError("classifier_prior='counts' with alpha=0 needs every stage in the training "
                                     "sequences; use alpha > 0 or give the prior.")
                self.class_prior_ = c / c.sum()
            elif prior == "uniform":
                self.class_prior_ = np.full(K, 1.0 / K)
            else:
                raise ValueError(f"`classifier_prior` must be 'counts', 'uniform' or an array of {K} positive "
                                 f"numbers; got {prior!r}.")
        else:
            p = np.asarray(prior, dtype=np.float64)
            if p.shape != (K,) or not (p > 0).all():
                raise ValueError(f"`classifier_prior` must be 'counts', 'uniform' or an array of {K} positive "
                                 f"numbers; got {prior!r}.")
            self.class_prior_ = p / p.sum()
        return self

    def _hmm_and_loglik(self, proba, lengths):
        if not hasattr(self, "transmat_"):
            raise RuntimeError("HMMSmoother is not fitted: call fit(sequences) first.")
        P = np.asarray(proba, dtype=np.float64)
        K = self.n_classes_
        if P.ndim != 2 or P.shape[1] != K or len(P) == 0:
            raise ValueError(f"`proba` must be (L, {K}) class probabilities; got shape {P.shape}.")
        if not np.isfinite(P).all() or (P < 0).any():
            raise ValueError("`proba` must hold finite, non-negative probabilities.")
        if lengths is not None:
            lengths = np.asarray(lengths, dtype=np.int64)
            if lengths.sum() != len(P) or (lengths <= 0).any():
                raise ValueError(f"`lengths` must be positive and add up to len(proba)={len(P)}; "
                                 f"got {lengths.tolist()}.")
        tiny = np.finfo(np.float64).tiny
        loglik = np.log(np.maximum(P, tiny)) - np.log(self.class_prior_)
        hmm = _scaled_likelihood_hmm()(n_components=K, implementation="log")
        hmm.startprob_, hmm.transmat_ = self.startprob_, self.transmat_
        return hmm, loglik, lengths

    def predict(self, proba, lengths=None) -> np.ndarray:
        """Viterbi path. ``proba (L, K)``: the classifier's posteriors of consecutive
        epochs (several nights concatenated with ``lengths``, ``(n_nights,)``); returns
        ``(L,)`` int64 stages."""
        hmm, loglik, lengths = self._hmm_and_loglik(proba, lengths)
        return hmm.decode(loglik, lengths=lengths, algorithm="viterbi")[1].astype(np.int64)

    def predict_proba(self, proba, lengths=None) -> np.ndarray:
        """Forward-backward posteriors ``(L, K)`` of each epoch's stage given the whole
        night (same arguments as :meth:`predict`)."""
        hmm, loglik, lengths = self._hmm_and_loglik(proba, lengths)
        return hmm.predict_proba(loglik, lengths=lengths)


# --------------------------------------------------------------------------- GRU
class SleepGRU(nn.Module):
    """A bidirectional GRU over a night of per-epoch features (SeqSleepNet-style).

    ``x (B, L, F)`` -> per-epoch ``Linear(F, proj) -> GELU -> Dropout`` ->
    ``GRU(proj, hidden_size, num_layers, bidirectional, dropout between layers)`` ->
    ``Dropout -> Linear(2 * hidden_size, n_classes)`` -> logits ``(B, L, K)``.

    Padding: ``mask (B, L)`` is True on valid epochs, which must come first in each row
    (a prefix; each row needs at least one). The GRU runs on packed sequences, so padded
    steps never influence valid ones (in either direction) and receive no gradient: only
    the valid steps are packed (``pack_padded_sequence``) and go through the projection,
    the GRU and the head, so the valid outputs are bitwise the same whatever the padding
    holds (NaN included). The logits of padded steps are 0.

    Args:
        n_features: ``F``.
        n_classes: ``K`` (5 sleep stages by default).
        hidden_size: GRU units per direction.
        num_layers: Stacked GRU layers.
        dropout: Dropout after the projection, between GRU layers and before the head.
        proj_size: Width of the per-epoch input projection.
    """

    def __init__(self, n_features: int, n_classes: int = 5, hidden_size: int = 64, num_layers: int = 2,
                 dropout: float = 0.1, proj_size: int = 64):
        super().__init__()
        for name, v in (("n_features", n_features), ("n_classes", n_classes), ("hidden_size", hidden_size),
                        ("num_layers", num_layers), ("proj_size", proj_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"`{name}` must be a positive integer; got {v!r}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1); got {dropout!r}.")
        self.proj = nn.Sequential(nn.Linear(n_features, proj_size), nn.GELU(), nn.Dropout(dropout))
        self.gru = nn.GRU(proj_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden_size, n_classes))

    def forward(self, batch: dict) -> torch.Tensor:
        """``batch = {"x": (B, L, F) float32, "mask": (B, L) bool}`` -> logits ``(B, L, K)``."""
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        x, mask = batch["x"], batch.get("mask")
        if x.ndim != 3:
            raise ValueError(f"batch['x'] must be (B, L, F); got shape {tuple(x.shape)}.")
        B, L, _ = x.shape
        if mask is None:
            mask = torch.ones(B, L, dtype=torch.bool, device=x.device)
        if mask.shape != (B, L) or mask.dtype != torch.bool:
            raise ValueError(f"batch['mask'] must be a (B, L) = ({B}, {L}) bool tensor; got {tuple(mask.shape)} "
                             f"{mask.dtype}.")
        lengths = mask.sum(1)
        if (lengths == 0).any() or not torch.equal(mask, torch.arange(L, device=x.device)[None] < lengths[:, None]):
            raise ValueError("batch['mask'] must mark a non-empty prefix of each row as valid (valid epochs first, "
                             "padding after).")
        # Only the valid epochs are packed, in the same order whatever the padding: the
        # projection, the GRU and the head never see a padded step.
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed._replace(data=self.proj(packed.data)))  # data (N_valid, P) -> (N_valid, 2H)
        logits = out._replace(data=self.head(out.data))  # (N_valid, K)
        return pad_packed_sequence(logits, batch_first=True, padding_value=0.0, total_length=L)[0]  # (B L K)


def sleep_gru_n_parameters(n_features: int, n_classes: int = 5, hidden_size: int = 64, num_layers: int = 2,
                           proj_size: int = 64) -> int:
    """Trainable parameters of :class:`SleepGRU`, from the layer shapes: the projection
    ``F*P + P``; per GRU layer and direction ``3H*(I + H) + 6H`` (input size ``I = P``
    for the first layer, ``2H`` after); the head ``2H*K + K``."""
    F, K, H, n, P = n_features, n_classes, hidden_size, num_layers, proj_size
    gru = sum(2 * (3 * H * ((P if layer == 0 else 2 * H) + H) + 6 * H) for layer in range(n))
    return F * P + P + gru + 2 * H * K + K
