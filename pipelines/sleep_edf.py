"""Sleep-EDF Expanded (PhysioNet) nights -> a sequence store, one recording per night.

Files are paired by their first six characters, ``SC4ssN`` (study ``SC`` sleep cassette
or ``ST`` sleep telemetry, subject ``ss``, night ``N``); the hypnogram's last letter (the
scorer's) differs from the recording's. They are searched under ``data_dir``
recursively, so the PhysioNet folders (``sleep-cassette/``), the folder that
``mne.datasets.sleep_physionet`` downloads into (``physionet-sleep-data/``) and a
``features/`` folder all work.

Two kinds of night, one kind per store (``mode``):

- ``"features"``: ``SC4ssNE0.npz`` holding ``X`` (epochs x 72 float64) and ``y`` (0 W,
  1 N1, 2 N2, 3 N3 (stages 3 and 4), 4 REM), made by the code of matteo-omizzolo/sleep-EDF
  from the Fpz-Cz and Pz-Oz channels of the night's PSG: one row per 30-s epoch of the
  recording from its start, in time order, with the epochs that the hypnogram scores
  ``Sleep stage ?`` or ``Movement time`` (or not at all) removed. The 72 columns
  (:func:`feature_names`): per channel (Fpz-Cz, then Pz-Oz) the natural log of the mean
  Welch PSD in delta 0.5-4, theta 4-8, alpha 8-13, beta 13-30 and gamma 30-50 Hz
  (``log_delta`` ...; V^2/Hz), the quotients of those logs theta/alpha and alpha/delta
  (``log_theta/log_alpha``, ``log_alpha/log_delta``: quotients of the logs, as that code
  computes them), the log of the epoch's variance (``log_variance``, V^2) and its Hjorth
  mobility (``hjorth_mobility``, per sample): 18 columns; then, of those 18 computed over
  all epochs before the removal, the first difference (``_diff``), the centred 3-epoch
  mean (``_mean3``) and the centred 3-epoch standard deviation (``_std3``). The store's
  rate is one sample per 30-s epoch (sfreq = 1/30 Hz) and its manifest's ``data_kind``
  is ``features``.
- ``"psg"``: ``SC4ssNE0-PSG.edf``: Fpz-Cz and Pz-Oz (``channels``; ``eog=True`` adds
  the horizontal EOG as ``EOG``) in µV at the file's rate (100 Hz), read through MNE;
  ``data_kind`` is ``signals``.

``"auto"`` takes the features when the folder holds ``.npz`` files and no PSG, the PSG
when it holds PSG files and no ``.npz``, and asks when it holds both.

Each row of a features file is placed at its true epoch: the hypnogram
(``mne.read_annotations``) is cut into 30-s epochs, the unscored ones are removed, and
the rows are matched to what is left in order. A night whose ``y`` disagrees with its
hypnogram is refused, with the first epoch that differs. Epochs without a row inside the
night (unscored or movement) are filled by linear interpolation, column by column,
between the nearest rows before and after them (both exist: a night starts and ends at
a row), and get no stage event; the manifest's ``n_filled`` counts them.

Events: ``stage:W``, ``stage:N1``, ``stage:N2``, ``stage:N3`` (R&K stages 3 and 4),
``stage:R``, one per scored 30-s epoch (onset and duration in samples: 1 sample per epoch
for features, 30 s x sfreq for signals). ``Sleep stage ?`` and ``Movement time`` epochs
get none.

Wake margin. Most of the 22 hours of a cassette night is daytime wake; the usual protocol
keeps each night from ``wake_margin`` minutes (default 30) before its first sleep epoch
(N1, N2, N3 or R) to ``wake_margin`` minutes after the end of its last, within the data.
``wake_margin=None`` keeps the whole recording (from the first to the last row of a
features file; all whole 30-s epochs of a PSG). Recorded in ``meta.json`` and in the
manifest (``wake_margin_min``, ``start_s``: where the stored night starts in the
recording).

Per-file errors (the night is reported, the others go on):

- labels that disagree with the hypnogram (the file and the first epoch that differs);
- a hypnogram of the wrong length for its data: more feature rows than scored epochs, or
  scored sleep after the end of the data (the features or PSG are cut short, or the
  hypnogram belongs to another night). Scored *wake* after the end of the data is
  dropped with a warning (the recorder stopped while the subject was awake).
  ``allow_truncated=True`` keeps a night whose data stop during scored sleep, cut at the
  end of the data (manifest ``truncated``), with a warning. In ``../shared/data`` night
  SC4011 is such a night: its features file holds 951 rows, the first 951 scored epochs
  of its hypnogram, which goes on scoring sleep until 14.2 h, 6.3 hours after them
  (MNE's sleep staging tutorial reads 1103 epochs of that night within its 30-minute
  margins, from the full PSG);
- a night whose stored part holds one stage only (nothing to stage against);
- a features file or PSG without its hypnogram, or with two;
- malformed files: a hypnogram that MNE cannot read, with unknown annotations, or whose
  annotations are off the 30-s grid or overlap; an npz without ``X``/``y``, of the wrong
  shape, with labels outside 0-4 or non-finite features (or pickled objects, which are
  never loaded); a PSG without the channels asked for.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .runner import InputError, Item, Outcome, Recording, run_items

EPOCH_S = 30.0
#: hypnogram annotation -> stage (AASM names)
STAGES = {"Sleep stage W": "W", "Sleep stage 1": "N1", "Sleep stage 2": "N2",
          "Sleep stage 3": "N3", "Sleep stage 4": "N3", "Sleep stage R": "R"}
#: hypnogram annotations that score no stage (their epochs have no feature row)
UNSCORED = ("Sleep stage ?", "Movement time")
#: the features files' ``y`` codes
Y_CODES = {0: "W", 1: "N1", 2: "N2", 3: "N3", 4: "R"}
MODES = ("auto", "features", "psg")
PSG_CHANNELS = ("Fpz-Cz", "Pz-Oz")
FEATURE_CHANNELS = ("Fpz-Cz", "Pz-Oz")
BASE_FEATURES = (("log_delta", "log(V^2/Hz)"), ("log_theta", "log(V^2/Hz)"),
                 ("log_alpha", "log(V^2/Hz)"), ("log_beta", "log(V^2/Hz)"),
                 ("log_gamma", "log(V^2/Hz)"), ("log_theta/log_alpha", "1"),
                 ("log_alpha/log_delta", "1"), ("log_variance", "log(V^2)"),
                 ("hjorth_mobility", "1/sample"))
FEATURE_CONTEXT = ("", "_diff", "_mean3", "_std3")

_NIGHT = re.compile(r"^(S[CT])(\d)(\d{2})(\d)", re.I)


def feature_names() -> tuple[list[str], list[str]]:
    """The 72 feature columns' names (``Fpz-Cz_log_delta`` ... ``Pz-Oz_hjorth_mobility_std3``)
    and units, in the files' order."""
    names, units = [], []
    for suffix in FEATURE_CONTEXT:
        for ch in FEATURE_CHANNELS:
            for feat, unit in BASE_FEATURES:
                names.append(f"{ch}_{feat}{suffix}")
                units.append(unit)
    return names, units


# ------------------------------------------------------------------------ layout
def night_of(name: str) -> dict | None:
    """``"SC4012EC-Hypnogram.edf"`` -> ``{"night": "SC4012", "study": "SC", "ss": 1,
    "subject": "1", "session": "2"}``; None for a name that is no Sleep-EDF night."""
    m = _NIGHT.match(name)
    if not m:
        return None
    study, _, ss, n = m.groups()
    return {"night": m.group(0).upper(), "study": study.upper(), "ss": int(ss),
            "subject": str(int(ss)) if study.upper() == "SC" else f"ST{int(ss)}",
            "session": n}


def scan_sleep_edf(data_dir) -> dict[str, dict[str, list[Path]]]:
    """``{night: {"features": [...], "psg": [...], "hypnogram": [...]}}`` for the files
    found under ``data_dir`` (recursively), sorted by night."""
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise FileNotFoundError(f"data_dir={str(data_dir)!r} is not a folder. Pass the folder "
                                "holding the Sleep-EDF files (sleep-cassette/, features/).")
    found: dict[str, dict[str, list[Path]]] = {}
    for p in sorted(d.rglob("*")):
        if not p.is_file():
            continue
        low = p.name.lower()
        kind = ("hypnogram" if low.endswith("-hypnogram.edf") else
                "psg" if low.endswith("-psg.edf") else
                "features" if low.endswith(".npz") else None)
        info = night_of(p.name) if kind else None
        if info is None:
            continue
        found.setdefault(info["night"], {"features": [], "psg": [], "hypnogram": []})[kind] \
            .append(p)
    return dict(sorted(found.items()))


# --------------------------------------------------------------------- hypnogram
def hypnogram_epochs(path, meas_date=None) -> tuple[np.ndarray, np.ndarray, float]:
    """A hypnogram cut into 30-s epochs from the recording's start.

    ``meas_date``: the recording's start (a datetime, e.g. ``raw.info["meas_date"]``);
    when the hypnogram has one too, its annotations are shifted by the difference
    (Sleep-EDF's files start together; ``mne.read_annotations`` gives them no start).
    Returns ``(stages, descriptions, offset_s)``: ``(n_epochs,)`` object arrays, the stage
    (``"W"``, ``"N1"``, ``"N2"``, ``"N3"``, ``"R"``) or ``""`` for an epoch without one,
    and the annotation that covers the epoch (``""`` for none); and the shift applied, in
    seconds. Annotations off the 30-s grid, overlapping, before the start or unknown are
    an :class:`InputError`.
    """
    import mne

    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise InputError(path, f"cannot be read ({e}).", "Check the file.") from e
    if head != b"0       ":
        raise InputError(path, f"cannot be read as an EDF+ hypnogram: it does not start like "
                         f"an EDF file ({head!r}).", "Restore the file.")
    try:
        ann = mne.read_annotations(path)
    except Exception as e:  # noqa: BLE001 - any reader failure is this file's
        raise InputError(path, f"cannot be read as an EDF+ hypnogram by MNE "
                         f"({type(e).__name__}: {e}).", "Restore the file.") from e
    unknown = sorted(set(ann.description) - set(STAGES) - set(UNSCORED))
    if unknown:
        raise InputError(path, f"unknown annotation(s) {unknown[:8]}; a Sleep-EDF hypnogram "
                         f"holds only {sorted(STAGES) + list(UNSCORED)}.",
                         "Restore the file, or rename those annotations.")
    if len(ann) == 0:
        raise InputError(path, "holds no annotation.", "Restore the file.")
    offset_s = 0.0
    if ann.orig_time is not None and meas_date is not None:
        offset_s = (ann.orig_time - meas_date).total_seconds()
    onset = np.asarray(ann.onset, float) + offset_s
    dur = np.asarray(ann.duration, float)
    first, count = onset / EPOCH_S, dur / EPOCH_S
    off = (np.abs(first - np.round(first)) > 1e-4) | (np.abs(count - np.round(count)) > 1e-4)
    off |= (np.round(count) < 1) | (np.round(first) < 0)
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise InputError(path, f"{int(off.sum())} annotation(s) are not whole 30-s epochs "
                         f"from the recording's start, the first {ann.description[i]!r} at "
                         f"{onset[i]:g} s lasting {dur[i]:g} s.",
                         "Restore the file (Sleep-EDF hypnograms score 30-s epochs).")
    first, count = np.round(first).astype(int), np.round(count).astype(int)
    n = int((first + count).max())
    stages = np.full(n, "", dtype=object)
    descs = np.full(n, "", dtype=object)
    for a, k, desc in zip(first, count, ann.description):
        if (descs[a:a + k] != "").any():
            raise InputError(path, f"annotations overlap at {a * EPOCH_S:g} s "
                             f"({descs[a:a + k][descs[a:a + k] != ''][0]!r} and {desc!r}).",
                             "Restore the file.")
        descs[a:a + k] = desc
        stages[a:a + k] = STAGES.get(desc, "")
    return stages, descs, offset_s


def night_window(stages: np.ndarray, lo: int, hi: int, margin: int | None) -> tuple[int, int]:
    """The epochs ``[start, stop)`` kept of a night whose data span epochs ``[lo, hi)``:
    from ``margin`` epochs before the first sleep epoch to ``margin`` after the last,
    within the data (``margin=None``: all of it)."""
    if margin is None:
        return lo, hi
    sleep = np.flatnonzero(np.isin(stages[lo:hi], ["N1", "N2", "N3", "R"])) + lo
    if sleep.size == 0:
        return lo, hi
    return max(lo, int(sleep[0]) - margin), min(hi, int(sleep[-1]) + 1 + margin)


def _tail_check(hyp, stages: np.ndarray, end: int, what: str, allow_truncated: bool) -> bool:
    """Scored epochs of the hypnogram after epoch ``end`` (the data's end): sleep is an
    error (unless ``allow_truncated``), wake a warning. Returns whether the night is
    truncated."""
    tail = stages[end:]
    sleep = np.flatnonzero(np.isin(tail, ["N1", "N2", "N3", "R"]))
    wake = int((tail == "W").sum())
    if sleep.size:
        last = end + int(sleep[-1])
        msg = (f"{what} end at {end * EPOCH_S / 3600:.2f} h (epoch {end}) but the hypnogram "
               f"scores {sleep.size} sleep epoch(s) after that, until "
               f"{(last + 1) * EPOCH_S / 3600:.2f} h")
        if not allow_truncated:
            raise InputError(hyp, f"wrong length for its data: {msg}.",
                             "The data are cut short or the hypnogram belongs to another "
                             "night: regenerate or re-download them (allow_truncated=True, "
                             "--allow-truncated, keeps the night cut at the data's end).")
        warnings.warn(f"{hyp}: {msg}; kept cut at the data's end (allow_truncated).")
        return True
    if wake:
        warnings.warn(f"{hyp}: {wake} wake epoch(s) scored after the end of the data "
                      f"({end * EPOCH_S / 3600:.2f} h) are dropped.")
    return False


def _one_class(path, stages: np.ndarray) -> None:
    present = sorted(set(stages) - {""})
    if len(present) < 2:
        what = f"only stage {present[0]}" if present else "no scored epoch"
        raise InputError(path, f"the stored night holds {what}: nothing to stage against.",
                         "Leave this night out, or keep more of it (wake_margin).")


def _stage_events(stages: np.ndarray, samples_per_epoch: float, n_times: int) -> pd.DataFrame:
    """One event per scored epoch of ``stages`` (the stored night's epochs, in order)."""
    k = np.flatnonzero(stages != "")
    onset = np.round(k * samples_per_epoch).astype(np.int64)
    stop = np.minimum(np.round((k + 1) * samples_per_epoch).astype(np.int64), n_times)
    return pd.DataFrame({"onset": onset, "duration": stop - onset,
                         "label": [f"stage:{s}" for s in stages[k]]})


# ---------------------------------------------------------------------- features
def read_features(path) -> tuple[np.ndarray, np.ndarray]:
    """``(X (n, 72) float64, y (n,) int)`` of a features file, checked (never unpickles)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("X", "y") if k not in z.files]
            if missing:
                raise InputError(path, f"no {missing} array(s) in it (it holds {z.files}).",
                                 "Regenerate the features file.")
            X, y = np.asarray(z["X"]), np.asarray(z["y"])
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - a broken zip, pickled objects...
        raise InputError(path, f"cannot be read as an .npz of arrays ({type(e).__name__}: "
                         f"{e}).", "Regenerate the features file.") from e
    n_cols = len(feature_names()[0])
    if X.ndim != 2 or X.shape[1] != n_cols or y.shape != (X.shape[0],) or X.shape[0] == 0:
        raise InputError(path, f"X has shape {X.shape} and y {y.shape}; expected "
                         f"(n_epochs, {n_cols}) and (n_epochs,) with n_epochs > 0.",
                         "Regenerate the features file.")
    if not (np.issubdtype(X.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise InputError(path, f"X ({X.dtype}) and y ({y.dtype}) must be numeric.",
                         "Regenerate the features file.")
    bad = ~np.isin(y, list(Y_CODES))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"y[{i}] = {y[i]!r} is not a stage code {Y_CODES}.",
                         "Regenerate the features file.")
    rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if rows.size:
        raise InputError(path, f"{rows.size} row(s) of X hold non-finite values, the first "
                         f"row {int(rows[0])}.", "Regenerate the features file.")
    return X.astype(np.float64), y.astype(int)


def process_features_night(path: str, hypnogram: str, row: dict, margin: int | None,
                           allow_truncated: bool) -> Recording:
    """One features file and its hypnogram -> :class:`~pipelines.runner.Recording`
    (``(n_epochs, 72)``, one sample per 30-s epoch)."""
    X, y = read_features(path)
    stages, descs, _ = hypnogram_epochs(hypnogram)
    scored = np.flatnonzero(stages != "")
    n, m = len(y), len(scored)
    if n > m:
        raise InputError(path, f"wrong length for its hypnogram {Path(hypnogram).name}: {n} "
                         f"feature rows but the hypnogram scores only {m} epochs.",
                         "The hypnogram belongs to another night, or the file is not made "
                         "from this night.")
    rows_at = scored[:n]                                   # epoch of each row
    hyp_y = np.array([{v: k for k, v in Y_CODES.items()}[s] for s in stages[rows_at]])
    diff = np.flatnonzero(hyp_y != y)
    if diff.size:
        i = int(diff[0])
        e = int(rows_at[i])
        raise InputError(path, f"labels disagree with the hypnogram {Path(hypnogram).name} "
                         f"({diff.size} of {n} rows): first at row {i}, epoch {e} "
                         f"({e * EPOCH_S:g} s): y = {y[i]} ({Y_CODES[y[i]]}) but the "
                         f"hypnogram scores {descs[e]!r} ({stages[e]}).",
                         "The features were made from another night or with other labels: "
                         "regenerate them, or check the pairing.")
    lo, hi = int(rows_at[0]), int(rows_at[-1]) + 1
    truncated = _tail_check(hypnogram, stages, hi, f"the features {path}", allow_truncated) \
        if n < m else False
    start, stop = night_window(stages, lo, hi, margin)
    kept = stages[start:stop].copy()
    _one_class(path, kept)
    epochs = np.arange(start, stop)
    data = np.empty((len(epochs), X.shape[1]))
    for j in range(X.shape[1]):
        data[:, j] = np.interp(epochs, rows_at, X[:, j])
    has_row = np.isin(epochs, rows_at)      # every scored epoch in [lo, hi) has its row
    events = _stage_events(kept, 1.0, len(epochs))
    names, units = feature_names()
    filled = np.flatnonzero(~has_row)
    row = {**row, "sfreq": 1.0 / EPOCH_S, "data_kind": "features", "start_s": start * EPOCH_S,
           "n_epochs": len(epochs), "n_staged": len(events), "n_filled": int(filled.size),
           "truncated": truncated}
    details = {"first_epoch": start, "stop_epoch": stop, "feature_rows": n,
               "rows_in_night": int(has_row.sum()), "filled_epochs": filled.tolist(),
               "filled_by_annotation": {str(k): int(v) for k, v in zip(*np.unique(
                   np.where(descs[epochs[~has_row]] == "", "(none)",
                            descs[epochs[~has_row]]).astype(str), return_counts=True))},
               "fill": "linear interpolation between the nearest rows (numpy.interp per "
                       "column)"}
    return Recording(data, names, row, [path, hypnogram], events=events, channel_units=units,
                     details=details)


# --------------------------------------------------------------------------- PSG
def _match_channels(path, headers: list[dict], channels, eog: bool) -> list[tuple[int, str]]:
    """(header index, stored name) of each channel asked for."""
    def norm(label):
        return re.sub(r"^(EEG|EOG)[\s_-]+", "", label.strip(), flags=re.I).lower()

    labels = [h["label"] for h in headers]
    out = []
    for want in channels:
        hits = [i for i, lb in enumerate(labels) if norm(lb) == norm(want)]
        if len(hits) != 1:
            raise InputError(path, f"{len(hits)} signals named {want!r}; its signals are "
                             f"{labels}.", "Pass channels=[...] (--channels) with names "
                             "of this file.")
        out.append((hits[0], want))
    if eog:
        hits = [i for i, lb in enumerate(labels) if "eog" in lb.lower()]
        if not hits:
            raise InputError(path, f"no EOG signal; its signals are {labels}.",
                             "Leave eog out (--eog).")
        out.append((hits[0], "EOG"))
    return out


def process_psg_night(path: str, hypnogram: str, row: dict, margin: int | None,
                      allow_truncated: bool, channels, eog: bool, l_freq, h_freq,
                      resample) -> Recording:
    """One PSG and its hypnogram -> :class:`~pipelines.runner.Recording` (µV)."""
    from .dreams import edf_signal_header, edf_to_microvolts, read_raw_edf_channels

    headers, record_s = edf_signal_header(path)
    picked = _match_channels(path, headers, channels, eog)
    rates = {headers[i]["samples_per_record"] / record_s for i, _ in picked}
    if len(rates) != 1:
        raise InputError(path, f"the channels {[n for _, n in picked]} are sampled at "
                         f"different rates {sorted(rates)} Hz.", "Pick channels of one rate.")
    raw = read_raw_edf_channels(path, [headers[i]["label"] for i, _ in picked])
    sf = float(raw.info["sfreq"])
    spe = EPOCH_S * sf
    if abs(spe - round(spe)) > 1e-6:
        raise InputError(path, f"sampled at {sf:g} Hz: a 30-s epoch is no whole number of "
                         "samples.", "Resample the file first.")
    spe = int(round(spe))
    stages, _, offset = hypnogram_epochs(hypnogram, raw.info["meas_date"])
    n_ep = raw.n_times // spe
    if n_ep == 0:
        raise InputError(path, f"shorter than one 30-s epoch ({raw.n_times} samples).",
                         "Leave it out.")
    truncated = _tail_check(hypnogram, stages, n_ep, f"the signals of {path}",
                            allow_truncated) \
        if len(stages) > n_ep else False
    stages = np.concatenate([stages, np.full(max(0, n_ep - len(stages)), "", dtype=object)])
    start, stop = night_window(stages, 0, n_ep, margin)
    kept = stages[start:stop]
    _one_class(path, kept)
    raw.crop(tmin=start * EPOCH_S, tmax=(stop * spe - 1) / sf, include_tmax=True)
    if l_freq or h_freq:
        if h_freq is not None and h_freq >= sf / 2:
            raise InputError(path, f"h_freq={h_freq:g} Hz is at or above the Nyquist "
                             f"frequency ({sf / 2:g} Hz).", "Lower h_freq (--h-freq).")
        raw.filter(l_freq, h_freq, picks="all", verbose="error")
    if resample and abs(resample - sf) > 1e-9:
        raw.resample(resample, verbose="error")
    sf_out = float(raw.info["sfreq"])
    factors = np.array([edf_to_microvolts(path, headers[i])[0] for i, _ in picked])
    data = (raw.get_data() * factors[:, None]).T                   # (T, C) µV
    events = _stage_events(kept, EPOCH_S * sf_out, data.shape[0])
    row = {**row, "sfreq": sf_out, "data_kind": "signals", "start_s": start * EPOCH_S,
           "n_epochs": stop - start, "n_staged": len(events), "n_filled": None,
           "truncated": truncated}
    details = {"first_epoch": start, "stop_epoch": stop, "psg_epochs": int(n_ep),
               "edf_channels": {n: headers[i]["label"] for i, n in picked},
               "hypnogram_offset_s": offset, "original_sfreq": sf}
    return Recording(data, [n for _, n in picked], row, [path, hypnogram], events=events,
                     channel_units=["uV"] * len(picked), details=details)


# ---------------------------------------------------------------------- pipeline
def _margin_epochs(wake_margin) -> int | None:
    if wake_margin is None or (isinstance(wake_margin, str) and wake_margin.lower() == "none"):
        return None
    try:
        minutes = float(wake_margin)
    except (TypeError, ValueError):
        minutes = float("nan")
    if not (np.isfinite(minutes) and minutes >= 0) or isinstance(wake_margin, bool):
        raise ValueError(f"wake_margin must be a number of minutes >= 0 or None ('none': "
                         f"keep the whole recording), got {wake_margin!r}")
    return int(round(minutes * 60 / EPOCH_S))


def _check_options(mode, channels, resample, l_freq, h_freq) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(channels, str) or not channels or \
            not all(isinstance(c, str) and c for c in channels):
        raise ValueError(f"channels must be a non-empty list of channel names, got "
                         f"{channels!r}")
    for name, v in (("resample", resample), ("l_freq", l_freq), ("h_freq", h_freq)):
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number in Hz or None, got {v!r}")
    if l_freq and h_freq and l_freq >= h_freq:
        raise ValueError(f"l_freq ({l_freq}) must be below h_freq ({h_freq})")


def preprocess_sleep_edf(data_dir, out, subjects=None, *, mode: str = "auto",
                         wake_margin: float | str | None = 30.0,
                         allow_truncated: bool = False, channels=PSG_CHANNELS,
                         eog: bool = False, resample: float | None = None,
                         l_freq: float | None = None, h_freq: float | None = None,
                         jobs: int = 1, shard=None, overwrite: bool = False,
                         progress: bool = True):
    """Sleep-EDF nights under ``data_dir`` -> a sequence store at ``out``.

    One recording per night (id: the features file's or PSG's stem, ``SC4001E0``), with
    one ``stage:*`` event per scored 30-s epoch (the module docstring gives the layout,
    the alignment and the per-file errors).

    Parameters
    ----------
    data_dir : a folder holding the files (searched recursively).
    out : the store folder.
    subjects : ``None`` (all), an int, a list, or ``"0-4"`` (the ``ss`` of ``SC4ssN`` or
        ``ST7ssN``).
    mode : ``"features"`` (``.npz`` per-epoch features), ``"psg"`` (``-PSG.edf``
        signals) or ``"auto"`` (the one present).
    wake_margin : minutes of wake kept before the first and after the last sleep epoch
        (rounded to whole 30-s epochs); ``None`` or ``"none"`` keeps the whole recording.
    allow_truncated : keep a night whose data stop during scored sleep (cut there).
    channels, eog : PSG mode: the EEG channels (``EEG`` prefixes are ignored) and whether
        to add the horizontal EOG.
    resample, l_freq, h_freq : PSG mode: a rate in Hz and band-pass edges (MNE), applied
        to the kept part of the night.
    jobs, shard, overwrite, progress : as for every pipeline
        (:func:`pipelines.runner.run_items`; a :func:`pipelines.runner.use_dask` block runs
        the nights on a Dask cluster).

    Manifest: ``subject`` = ``ss`` (``"0"``; ``ST``-study subjects ``"ST1"``...), ``session``
    and ``night`` = ``N``, ``study``, ``dataset`` = ``sleep-edf``, ``task`` = ``sleep``,
    ``modality`` = ``eeg``, ``data_kind`` (``features`` or ``signals``), ``hypnogram``
    (its file name), ``start_s``, ``n_epochs``, ``n_staged``, ``n_filled`` (features),
    ``wake_margin_min``, ``truncated``. Returns the run's
    :class:`pipelines.runner.Summary`.
    """
    from neuroconv.data.store import StoreWriter

    from .eeg import _parse_ints

    margin = _margin_epochs(wake_margin)
    channels = tuple(channels) if isinstance(channels, (list, tuple)) else channels
    _check_options(mode, channels, resample, l_freq, h_freq)
    wanted = None if subjects is None else set(_parse_ints(subjects, "subjects", 0, 99))
    found = scan_sleep_edf(data_dir)
    has = {k: any(v[k] for v in found.values()) for k in ("features", "psg")}
    if mode == "auto":
        if has["features"] and has["psg"]:
            raise ValueError(f"{data_dir} holds both features files (.npz) and PSG files "
                             "(-PSG.edf): pass mode='features' or mode='psg' (--mode).")
        if not (has["features"] or has["psg"]):
            raise FileNotFoundError(f"no Sleep-EDF features (SC4ssNE0.npz) or PSG files "
                                    f"(SC4ssNE0-PSG.edf) under {data_dir}.")
        mode = "features" if has["features"] else "psg"
    kind = "features" if mode == "features" else "psg"
    psg_only = {k: v for k, v in (("channels", channels != PSG_CHANNELS), ("eog", eog),
                                  ("resample", resample), ("l_freq", l_freq),
                                  ("h_freq", h_freq)) if v}
    if kind == "features" and psg_only:
        raise ValueError(f"{sorted(psg_only)} apply to PSG signals (mode='psg'); the nights "
                         f"under {data_dir} are read as features files: leave them out.")
    items, pre_failed, lonely = [], [], []
    minutes = None if margin is None else margin * EPOCH_S / 60
    for night, files in found.items():
        info = night_of(night)
        if wanted is not None and info["ss"] not in wanted:
            continue
        if not files[kind]:
            if files["hypnogram"]:
                lonely.append(night)
            continue
        for path in files[kind]:
            rid = re.sub(r"(-PSG)?\.(npz|edf)$", "", path.name, flags=re.I)
            hyps = files["hypnogram"]
            if len(hyps) != 1:
                pre_failed.append(Outcome(rid, str(path), "failed", str(InputError(
                    path, f"{'no hypnogram' if not hyps else f'{len(hyps)} hypnograms'} "
                    f"({night}*-Hypnogram.edf) under {data_dir}"
                    + (f": {[h.name for h in hyps]}" if hyps else "") + ".",
                    "Put its one hypnogram beside it." if not hyps else
                    "Keep the one that belongs to this night."))))
                continue
            if len(files[kind]) > 1:
                pre_failed.append(Outcome(rid, str(path), "failed", str(InputError(
                    path, f"{len(files[kind])} {kind} files for night {night}: "
                    f"{[str(p) for p in files[kind]]}.", "Keep one."))))
                continue
            row = {"subject": info["subject"], "session": info["session"], "run": None,
                   "task": "sleep", "site": None, "dataset": "sleep-edf", "modality": "eeg",
                   "night": info["session"], "study": info["study"],
                   "hypnogram": hyps[0].name, "wake_margin_min": minutes}
            kw = dict(path=str(path), hypnogram=str(hyps[0]), row=row, margin=margin,
                      allow_truncated=allow_truncated)
            if kind == "features":
                items.append(Item(rid, [str(path), str(hyps[0])], process_features_night, kw))
            else:
                items.append(Item(rid, [str(path), str(hyps[0])], process_psg_night,
                                  dict(kw, channels=list(channels), eog=eog, l_freq=l_freq,
                                       h_freq=h_freq, resample=resample)))
    if not items and not pre_failed:
        raise FileNotFoundError(f"no Sleep-EDF {kind} files for subjects "
                                f"{sorted(wanted or [])} under {data_dir}.")
    names, _ = feature_names()
    read = {"layout": "Sleep-EDF (SC4ssN* pairs, searched recursively)", "mode": mode,
            "epoch_s": EPOCH_S, "allow_truncated": allow_truncated}
    if kind == "features":
        read.update(columns=names, fill="linear interpolation between the nearest rows",
                    sfreq=1 / EPOCH_S)
    else:
        read.update(reader="mne.io.read_raw_edf, unit from the EDF header",
                    channels=list(channels), eog=eog)
    record = [{"name": "read", "params": read},
              {"name": "wake_margin", "params": {"minutes": minutes, "epochs": margin}}]
    if kind == "psg":
        record += [{"name": "bandpass", "params": {"l_freq": l_freq, "h_freq": h_freq,
                                                   "method": "mne fir (default)"}},
                   {"name": "resample", "params": {"sfreq": resample}}]
    record += [{"name": "events", "params": {
        "stages": {d: f"stage:{s}" for d, s in STAGES.items()}, "unscored": list(UNSCORED),
        "stage_events": "one per scored 30-s epoch"}},
        {"name": "units", "params": ({"features": "see meta.channel_units"} if kind ==
                                     "features" else {"eeg": "uV", "eog": "uV"}) |
         {"dtype": "float32"}}]
    writer = StoreWriter(out, "sleep-edf", record, overwrite=overwrite)
    extra = {"dataset": "sleep-edf", "data_kind": "features" if kind == "features"
             else "signals", "epoch_s": EPOCH_S, "wake_margin_min": minutes,
             "labels": ["stage:W", "stage:N1", "stage:N2", "stage:N3", "stage:R"],
             "y_codes": {str(k): v for k, v in Y_CODES.items()},
             "units": ({"features": "per column, see channel_units"} if kind == "features"
                       else {"eeg": "uV", "eog": "uV"})}
    if lonely:
        extra["hypnograms_without_data"] = lonely
    return run_items(items, writer, jobs=jobs, shard=shard, progress=progress,
                     description=f"sleep-edf {mode}", pre_failed=pre_failed,
                     extra_meta=extra)
