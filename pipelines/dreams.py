"""DREAMS Sleep Spindles database (University of Mons) -> a sequence store.

The database (Devuyst et al., 2011) holds eight 30-minute excerpts of whole-night scalp
EEG, one derivation each (C3-A1 or CZ-A1), with the sleep spindles two experts marked,
the spindles of the authors' automatic detector and a hypnogram. Its folder::

    DATA_DIR/excerptN.txt                      first line [C3-A1] or [CZ-A1], then one
                                               sample per line in µV
    DATA_DIR/excerptN.edf                      the same recording as a whole-PSG EDF
                                               (optional; read through MNE)
    DATA_DIR/Visual_scoring1_excerptN.txt      expert 1's spindles  } a header line, then
    DATA_DIR/Visual_scoring2_excerptN.txt      expert 2's spindles  } "start_s duration_s"
    DATA_DIR/Automatic_detection_excerptN.txt  the detector's       } per line
    DATA_DIR/Hypnogram_excerptN.txt            a header line, then one stage code per 5 s

``DATA_DIR`` may also be a folder holding ``dreams-spindles`` or ``DatabaseSpindles``.

One recording per excerpt (id ``excerptN``), one channel named ``EEG`` in every excerpt
(so the store has one channel set); the derivation it was recorded on is in the manifest
column ``derivation`` and in ``meta.json`` (``details[id]["derivation"]``).

Sampling rate. A text file does not give it: an excerpt lasts
:data:`EXCERPT_SECONDS` (30 minutes), so the rate is ``round(n / 1800)`` Hz, accepted
when the file's ``n`` samples are within :data:`LENGTH_TOLERANCE_S` (1 s) of that rate
times 1800 s. Excerpt 6 of the database has 140 extra samples at 200 Hz (0.7 s); they
are kept (nothing says whether they belong at the start or the end, and every event is
timed from the first sample), and the manifest's ``extra_samples`` counts them. A file
whose length gives no whole rate within 1 s (say 359,000 samples: 199.4 Hz) is a
per-file error: it is truncated or holds lines that are no samples. An EDF gives its own
rate; its channel is the one whose label is the excerpt's derivation (from the text
twin's header, else the scoring files' headers, ``[vis1_Spindles/C3-A1]``).

Units. EEG in µV. The EDF of excerpt 3 declares its physical dimension as ``UV``, which
MNE does not read as microvolts (it applies no scaling); this reader takes the unit from
the EDF header itself (:func:`edf_to_microvolts`), so text and EDF give the same values.

Source. With ``source="auto"`` an excerpt given as EDF is read from the EDF, else from
its text file; when both are present the other one (its "twin") is read as well and
must agree: same length, rate and derivation, and values within the EDF's quantisation:
one step, ``(physical_max - physical_min) / (digital_max - digital_min)`` (a writer that
rounds to the nearest digital value is within half a step of the signal, one that
truncates within one), plus half the last decimal the text writes. On the database's
excerpt 3 the bound is 0.0101 µV and the two differ by at most 5.0e-5 µV: the text is
the EDF rounded to 4 decimals.

Events (onset and duration in samples of the stored recording):

- ``spindle:expert1``, ``spindle:expert2``, ``spindle:automatic``: one per line of the
  scoring files (``start_s duration_s``; onset ``round(start_s * sfreq)``, duration
  ``round(duration_s * sfreq)``, at least 1). Expert 2 scored excerpts 1-6 only: a
  missing expert-2 (or automatic) file is no error; the manifest's ``scorers`` lists the
  experts who did score (``expert1,expert2``) and ``automatic_detection`` says whether
  the detector's file is there.
- ``stage:W``, ``stage:R``, ``stage:N1``, ``stage:N2``, ``stage:N3``: one event per
  5-s epoch of the hypnogram (not merged), from its R&K codes 5 wake, 4 REM, 3 S1,
  2 S2, 1 S3 and 0 S4 (S3 and S4 -> N3, the AASM stage); code -1 (unknown or movement)
  gets no stage event.

Where the spindles fall (the six excerpts of ``../shared/data``: the stage of each
spindle's midpoint, from the hypnograms and scoring files that ``neuroconv preprocess
dreams --data-dir ../shared/data --out STORE`` reads; 2026-12-07, a 2-core AMD EPYC
virtual machine): expert 1's 293 spindles lie in S2 (275, 93.9%), S3 (13), S4 (4) and S1
(1); expert 2's 384 in S2 (294), S3 (76), S4 (9), W (4) and S1 (1). S2 holds 61.7% of
the scored time and S1 7.6%: spindles fall in S2 (code 2) and then in S3 (code 1),
almost never in S1 (code 3), as the R&K definitions of the stages say; this also
confirms the coding (codes 2 and 3 read the other way round would put 94% of the
spindles in S1). No excerpt holds REM. The detector's 607 spindles: S2 488, S3 95, W 12,
S4 9, S1 3.

Per-file errors (the excerpt is reported, the others go on): a spindle that starts
before 0 or ends after the recording's end; a hypnogram whose length is not one code
per 5 s of the recording, or with a code outside -1..5; a text excerpt whose length
gives no whole rate; a line that is no number (the message gives the line); an EDF
without the derivation's channel, or that disagrees with its text twin; a scoring file
or hypnogram whose excerpt has no signal file.

Options: ``resample`` (Hz: one rate for every excerpt, through ``mne.io.Raw.resample``;
default each excerpt keeps its own rate, 50-200 Hz), ``l_freq``/``h_freq`` (a band-pass,
``mne.io.Raw.filter``, before resampling; an ``h_freq`` at or above an excerpt's Nyquist
frequency fails that excerpt), ``excerpts`` (which ones), ``source``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .runner import InputError, Item, Outcome, Recording, run_items

#: length of every excerpt of the database, in seconds
EXCERPT_SECONDS = 1800.0
#: a text excerpt's sample count may miss rate x 1800 by at most this many seconds
LENGTH_TOLERANCE_S = 1.0
#: one hypnogram code per this many seconds
HYPNOGRAM_EPOCH_S = 5.0
#: hypnogram code (R&K) -> stage label (AASM names; None: no stage event)
HYPNOGRAM_CODES = {5: "W", 4: "R", 3: "N1", 2: "N2", 1: "N3", 0: "N3", -1: None}
#: scorer -> (file name prefix, event label)
SCORINGS = {"expert1": ("Visual_scoring1", "spindle:expert1"),
            "expert2": ("Visual_scoring2", "spindle:expert2"),
            "automatic": ("Automatic_detection", "spindle:automatic")}
#: the one channel name of every excerpt
CHANNEL = "EEG"
SOURCES = ("auto", "txt", "edf")

_SIGNAL = re.compile(r"^excerpt(\d+)\.(txt|edf)$", re.I)
_SCORING = re.compile(r"^(Visual_scoring1|Visual_scoring2|Automatic_detection)_excerpt(\d+)\.txt$",
                      re.I)
_HYPNOGRAM = re.compile(r"^Hypnogram_excerpt(\d+)\.txt$", re.I)
_PREFIX = {v[0].lower(): k for k, v in SCORINGS.items()}


# ------------------------------------------------------------------------ layout
def find_dreams_root(data_dir) -> Path:
    """The folder holding the excerpts: ``data_dir`` itself, or its ``dreams-spindles``
    or ``DatabaseSpindles`` sub-folder."""
    d = Path(data_dir).expanduser()
    tried = [d, d / "dreams-spindles", d / "DatabaseSpindles"]
    for cand in tried:
        if cand.is_dir() and any(_SIGNAL.match(p.name) or _SCORING.match(p.name)
                                 or _HYPNOGRAM.match(p.name) for p in cand.iterdir()):
            return cand
    raise FileNotFoundError(f"no DREAMS spindle excerpts (excerptN.txt/.edf, "
                            f"Visual_scoring1_excerptN.txt ...) in {[str(c) for c in tried]}. "
                            "Pass the folder of the DREAMS Sleep Spindles database as "
                            "data_dir.")


def scan_dreams(data_dir) -> tuple[dict[int, dict], list[Path]]:
    """The files of each excerpt, and the files that belong to none.

    Returns ``({N: {"txt": Path|None, "edf": Path|None, "expert1": ..., "expert2": ...,
    "automatic": ..., "hypnogram": ...}}, others)``, sorted by excerpt number.
    """
    root = find_dreams_root(data_dir)
    found: dict[int, dict] = {}
    others = []
    for p in sorted(root.iterdir()):
        if not p.is_file():
            continue
        m = _SIGNAL.match(p.name)
        if m:
            key, n = m.group(2).lower(), int(m.group(1))
        elif _SCORING.match(p.name):
            m = _SCORING.match(p.name)
            key, n = _PREFIX[m.group(1).lower()], int(m.group(2))
        elif _HYPNOGRAM.match(p.name):
            key, n = "hypnogram", int(_HYPNOGRAM.match(p.name).group(1))
        else:
            others.append(p)
            continue
        entry = found.setdefault(n, dict.fromkeys(("txt", "edf", *SCORINGS, "hypnogram")))
        if entry[key] is not None:
            raise ValueError(f"{root}: two files for excerpt {n} ({key}): {entry[key].name} "
                             f"and {p.name}; keep one.")
        entry[key] = p
    return dict(sorted(found.items())), others


# ------------------------------------------------------------------- text files
def _lines(path) -> list[str]:
    try:
        text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as e:
        raise InputError(path, f"cannot be read ({e}).", "Check the file.") from e
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _is_numbers(line: str, n: int) -> bool:
    parts = line.split()
    if len(parts) != n:
        return False
    try:
        [float(x) for x in parts]
    except ValueError:
        return False
    return True


def _header(path, lines: list[str], n_columns: int, what: str) -> tuple[str | None, int]:
    """(the header's text without brackets or None, index of the first data line)."""
    if not lines:
        raise InputError(path, "the file is empty.", f"It should hold {what}.")
    first = lines[0].strip()
    m = re.fullmatch(r"\[(.*)\]", first)
    if m:
        return m.group(1).strip(), 1
    if _is_numbers(first, n_columns):
        return None, 0
    raise InputError(path, f"line 1 is {first[:60]!r}: neither a [header] line nor {what}.",
                     "Restore the file from the database.")


def _numbers(path, lines: list[str], start: int, n_columns: int, what: str) -> np.ndarray:
    """The lines from ``start`` as a float array ``(n, n_columns)``; a line that is not
    ``n_columns`` finite numbers is an error naming it."""
    body = lines[start:]
    try:
        if n_columns == 1:
            arr = np.array(body, dtype=np.float64).reshape(-1, 1)
        else:
            arr = np.array([ln.split() for ln in body], dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != n_columns:
                raise ValueError
    except ValueError:
        arr = None
    if arr is None:
        for i, ln in enumerate(body):
            if not _is_numbers(ln, n_columns):
                raise InputError(path, f"line {start + i + 1} is {ln.strip()[:60]!r}, not "
                                 f"{what}.", "Fix or restore that line of the file.")
        arr = np.zeros((0, n_columns))            # no line at all after the header
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"line {start + i + 1} is {body[i].strip()[:60]!r}: not a "
                         "finite number.", "Fix or restore that line of the file.")
    return arr


def _decimals(lines: list[str]) -> int:
    """The most digits after the decimal point in these lines (the text's resolution)."""
    most = 0
    for ln in lines:
        s = ln.strip().lower().split("e")[0]
        if "." in s:
            most = max(most, len(s) - s.index(".") - 1)
    return most


def read_excerpt_text(path) -> tuple[np.ndarray, str | None, float]:
    """An ``excerptN.txt``: ``(values (n,) float64 µV, derivation or None, resolution)``;
    ``resolution`` is the value of one unit in the last decimal the file writes (1e-4
    for the database's 4 decimals)."""
    lines = _lines(path)
    header, start = _header(path, lines, 1, "one sample (a number in µV) per line")
    values = _numbers(path, lines, start, 1, "one sample (a number in µV)")[:, 0]
    if values.size == 0:
        raise InputError(path, "no samples after the header line.", "Restore the file.")
    return values, header, 10.0 ** -_decimals(lines[start:start + 2000])


def excerpt_rate(n: int, path, seconds: float = EXCERPT_SECONDS,
                 tolerance_s: float = LENGTH_TOLERANCE_S) -> int:
    """The whole sampling rate (Hz) at which ``n`` samples last ``seconds``, within
    ``tolerance_s`` seconds: ``round(n / seconds)``, checked. An ``n`` that no whole
    rate fits is an :class:`InputError` naming ``path``."""
    rate = int(round(n / seconds))
    off = n - rate * seconds
    if rate < 1 or abs(off) > tolerance_s * rate:
        near = (f"; the nearest whole rate, {rate} Hz, would make it {rate * seconds:.0f} "
                f"samples ({off / rate:+.2f} s off, more than the {tolerance_s:g} s allowed)"
                if rate >= 1 else "")
        raise InputError(path, f"{n} samples give no whole sampling rate for a "
                         f"{seconds / 60:g}-minute excerpt ({n / seconds:.3f} Hz{near}).",
                         "The file is truncated or holds lines that are not samples: "
                         "restore it from the database.")
    return rate


def read_scoring(path) -> tuple[np.ndarray, str | None]:
    """A scoring file: ``(events (k, 2) float64 [start_s, duration_s], derivation named
    in its header or None)``. A start or duration that is no finite number, or a
    duration that is not positive, is an :class:`InputError`."""
    lines = _lines(path)
    header, start = _header(path, lines, 2, "a spindle as 'start_s duration_s'")
    arr = _numbers(path, lines, start, 2, "a spindle as 'start_s duration_s'")
    bad = np.flatnonzero(arr[:, 1] <= 0)
    if bad.size:
        i = int(bad[0])
        raise InputError(path, f"line {start + i + 1}: spindle at {arr[i, 0]:g} s has "
                         f"duration {arr[i, 1]:g} s; a duration must be positive.",
                         "Fix that line of the file.")
    deriv = header.split("/")[-1].strip() if header and "/" in header else None
    return arr, deriv


def read_hypnogram(path) -> np.ndarray:
    """A ``Hypnogram_excerptN.txt``: the stage codes ``(n_epochs,)`` int, one per 5 s;
    a code outside :data:`HYPNOGRAM_CODES` is an :class:`InputError`."""
    lines = _lines(path)
    _, start = _header(path, lines, 1, "one stage code per line")
    codes = _numbers(path, lines, start, 1, "a stage code")[:, 0]
    ok = np.isin(codes, list(HYPNOGRAM_CODES))
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise InputError(path, f"line {start + i + 1}: stage code {codes[i]:g} is not one of "
                         f"{sorted(HYPNOGRAM_CODES)} (5 wake, 4 REM, 3 S1, 2 S2, 1 S3, 0 S4, "
                         "-1 unknown).", "Fix that line of the file.")
    return codes.astype(int)


# ------------------------------------------------------------------------- EDF
_EDF_FIELDS = [("label", 16), ("transducer", 80), ("dimension", 8), ("physical_min", 8),
               ("physical_max", 8), ("digital_min", 8), ("digital_max", 8),
               ("prefiltering", 80), ("samples_per_record", 8), ("reserved", 32)]
#: physical dimensions that MNE's EDF reader scales to volts
_MNE_SCALED = ("uV", "\u00b5V", "\u03bcV", "\x83\xcaV", "mV")
#: physical dimension (case-insensitive) -> factor to µV of values in that dimension
_TO_MICROVOLTS = {"uv": 1.0, "\u00b5v": 1.0, "\u03bcv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}


def edf_signal_header(path) -> tuple[list[dict], float]:
    """The signal headers of an EDF/BDF file (label, dimension, physical and digital
    ranges, samples per record...) and the data record's duration in seconds."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
            ns = int(head[252:256].decode("ascii"))
            record_s = float(head[244:252].decode("ascii"))
            raw = f.read(ns * 256)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(path, f"not a readable EDF file (its header: {e}).",
                         "Restore the file.") from e
    if ns < 1 or len(raw) < ns * 256:
        raise InputError(path, f"not a readable EDF file (header announces {ns} signals but "
                         "is cut short).", "Restore the file.")
    out = [{} for _ in range(ns)]
    pos = 0
    for name, width in _EDF_FIELDS:
        for i in range(ns):
            text = raw[pos:pos + width].decode("latin-1").strip()
            pos += width
            if name in ("physical_min", "physical_max", "digital_min", "digital_max",
                        "samples_per_record"):
                try:
                    out[i][name] = float(text)
                except ValueError:
                    raise InputError(path, f"signal {i + 1}: {name} {text!r} is not a number "
                                     "in the EDF header.", "Restore the file.") from None
            else:
                out[i][name] = text
    return out, record_s


def edf_to_microvolts(path, header: dict) -> tuple[float, float]:
    """``(factor, step)`` for one EDF signal: MNE's values of it times ``factor`` are µV,
    and ``step`` is its quantisation step in µV
    (``(physical_max - physical_min) / (digital_max - digital_min)``).

    MNE scales signals whose physical dimension is exactly ``uV``/``µV``/``mV`` to volts
    and leaves others as the file's physical values; this reads the dimension
    case-insensitively (``UV`` is µV), so both give µV. An empty dimension is taken as µV
    with a warning; a dimension that is no voltage is an :class:`InputError`.
    """
    dim = header["dimension"]
    key = dim.strip().lower()
    if dim in _MNE_SCALED:
        factor, per = 1e6, (1e3 if dim == "mV" else 1.0)
    elif key in _TO_MICROVOLTS:
        factor = per = _TO_MICROVOLTS[key]
    elif key == "":
        warnings.warn(f"{path}: signal {header['label']!r} declares no physical dimension; "
                      "its values are taken as µV.")
        factor = per = 1.0
    else:
        raise InputError(path, f"signal {header['label']!r} has physical dimension {dim!r}, "
                         "not a voltage (uV, mV, V).", "Check the file's header.")
    dig = header["digital_max"] - header["digital_min"]
    step = (header["physical_max"] - header["physical_min"]) / dig * per if dig else np.inf
    return factor, abs(step)


def _key(label: str) -> str:
    """``"EEG C3-A1"``, ``"C3A1"``, ``"c3-a1"`` -> ``"C3A1"``."""
    s = re.sub(r"^EEG[\s_-]+", "", label.strip(), flags=re.I)
    return re.sub(r"[^A-Z0-9]", "", s.upper())


def read_raw_edf_channels(path, labels: list[str]):
    """Read the named signals (header labels) of an EDF through MNE, preloaded; a file
    MNE cannot read, or a truncated one, is an :class:`InputError`."""
    import mne

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = mne.io.read_raw_edf(path, include=list(labels), preload=True,
                                      verbose="warning")
        except Exception as e:  # noqa: BLE001 - any reader failure is this file's
            raise InputError(path, f"cannot be read by MNE ({type(e).__name__}: {e}).",
                             "Restore or re-export the file.") from e
    for w in caught:
        msg = str(w.message)
        if "does not match the file size" in msg.lower():
            raise InputError(path, f"truncated file: {msg.strip()}", "Restore the file.")
        if not issubclass(w.category, (DeprecationWarning, FutureWarning)):
            warnings.warn(f"{path}: {msg}")
    if raw.n_times == 0:
        raise InputError(path, "zero-length recording.", "Restore the file.")
    return raw


def read_excerpt_edf(path, derivation: str | None) -> tuple[np.ndarray, float, str, float]:
    """The excerpt's channel of an EDF: ``(values (n,) float64 µV, sfreq, derivation,
    quantisation step in µV)``. The channel is the one whose label is ``derivation``
    (``"C3-A1"``; case, spaces and an ``EEG`` prefix do not matter); without a
    derivation, the file's only C3/C4/CZ-A1/A2 signal."""
    headers, record_s = edf_signal_header(path)
    labels = [h["label"] for h in headers]
    if derivation is not None:
        picks = [i for i, lb in enumerate(labels) if _key(lb) == _key(derivation)]
        what = f"the derivation {derivation!r}"
    else:
        picks = [i for i, lb in enumerate(labels)
                 if re.fullmatch(r"(C3|C4|CZ)A[12]", _key(lb))]
        what = "a central derivation (C3/C4/CZ-A1/A2) and none is named"
    if len(picks) != 1:
        raise InputError(path, f"{len(picks)} signals match {what}; its signals are "
                         f"{labels}.", "Name the derivation: put the excerpt's text file "
                         "(first line [C3-A1]) or its scoring files beside it.")
    h = headers[picks[0]]
    raw = read_raw_edf_channels(path, [h["label"]])
    own = h["samples_per_record"] / record_s if record_s > 0 else None
    if own is not None and abs(own - raw.info["sfreq"]) > 1e-6 * own:
        raise InputError(path, f"signal {h['label']!r} is sampled at {own:g} Hz but MNE "
                         f"read it at {raw.info['sfreq']:g} Hz.", "Re-export the file.")
    factor, step = edf_to_microvolts(path, h)
    values = raw.get_data()[0] * factor
    return values, float(raw.info["sfreq"]), h["label"], step


# ------------------------------------------------------------------------ events
def _spindle_events(path, arr: np.ndarray, label: str, sfreq: float, seconds: float,
                    n_times: int) -> pd.DataFrame:
    start, dur = arr[:, 0], arr[:, 1]
    end = start + dur
    half = 0.5 / sfreq
    out = np.flatnonzero((start < 0) | (end > seconds + half))
    if out.size:
        i = int(out[0])
        raise InputError(path, f"{out.size} spindle(s) lie outside the recording (0 to "
                         f"{seconds:.3f} s), the first from {start[i]:g} s to {end[i]:g} s.",
                         "The scoring belongs to another excerpt, or the signal file is cut "
                         "short: check both.")
    onset = np.round(start * sfreq).astype(np.int64)
    stop = np.minimum(np.maximum(np.round(end * sfreq).astype(np.int64), onset + 1), n_times)
    return pd.DataFrame({"onset": onset, "duration": stop - onset, "label": label})


def _stage_events(codes: np.ndarray, sfreq: float, n_times: int) -> pd.DataFrame:
    k = np.arange(len(codes))
    onset = np.round(k * HYPNOGRAM_EPOCH_S * sfreq).astype(np.int64)
    stop = np.minimum(np.round((k + 1) * HYPNOGRAM_EPOCH_S * sfreq).astype(np.int64), n_times)
    labels = [HYPNOGRAM_CODES[int(c)] for c in codes]
    keep = np.array([lb is not None for lb in labels]) & (onset < n_times)
    return pd.DataFrame({"onset": onset[keep], "duration": (stop - onset)[keep],
                         "label": [f"stage:{lb}" for lb, kp in zip(labels, keep) if kp]})


# ---------------------------------------------------------------------- one excerpt
def _check_twin(path, values, sfreq, deriv, step, twin, twin_values, twin_sfreq, twin_deriv,
                text_resolution) -> dict:
    """The EDF and its text twin must hold the same signal: within one quantisation step
    of the EDF plus half the text's last decimal (and float64 rounding)."""
    if twin_deriv is not None and deriv is not None and _key(twin_deriv) != _key(deriv):
        raise InputError(path, f"derivation {deriv!r} but its twin {twin} names "
                         f"{twin_deriv!r}.", "Keep only the file that belongs to this excerpt.")
    if len(values) != len(twin_values) or abs(sfreq - twin_sfreq) > 1e-9:
        raise InputError(path, f"{len(values)} samples at {sfreq:g} Hz but its twin {twin} "
                         f"holds {len(twin_values)} at {twin_sfreq:g} Hz.",
                         "Keep only the file that belongs to this excerpt.")
    diff = np.abs(values - twin_values)
    scale = max(float(np.abs(values).max()), 1.0)
    bound = step + text_resolution / 2 + 64 * np.finfo(float).eps * scale
    i = int(np.argmax(diff))
    if diff[i] > bound:
        raise InputError(path, f"its twin {twin} differs from it by up to {diff[i]:.4g} µV "
                         f"(sample {i}: {values[i]:.6g} vs {twin_values[i]:.6g}), more than "
                         f"the EDF's quantisation allows ({bound:.3g} µV).",
                         "The two are not the same recording: keep the right one.")
    return {"file": str(twin), "max_abs_diff_uv": float(diff[i]), "bound_uv": float(bound)}


def process_excerpt(excerpt: int, files: dict, steps: dict) -> Recording:
    """One excerpt -> :class:`~pipelines.runner.Recording` (``(n_times, 1)`` µV, events).

    ``files``: this excerpt's entry of :func:`scan_dreams` (paths as strings or None);
    ``steps``: ``source``, ``resample``, ``l_freq``, ``h_freq``.
    """
    scorings, hints = {}, {}
    for who in SCORINGS:
        if files.get(who):
            scorings[who], hints[who] = read_scoring(files[who])
    hyp = read_hypnogram(files["hypnogram"]) if files.get("hypnogram") else None
    use = _source_of(files, steps["source"])
    path = files[use]
    details: dict = {}
    text = read_excerpt_text(files["txt"]) if files.get("txt") else None
    hint = next((h for h in hints.values() if h), None)
    if use == "txt":
        values, deriv, _ = text
        sfreq = float(excerpt_rate(len(values), path))
    else:
        named = text[1] if text is not None and text[1] else hint
        values, sfreq, label, step = read_excerpt_edf(path, named)
        deriv = re.sub(r"^EEG[\s_-]+", "", label, flags=re.I) if named is None else named
        details["edf_channel"] = label
        if text is not None:
            t_values, t_deriv, t_res = text
            t_rate = float(excerpt_rate(len(t_values), files["txt"]))
            details["twin_check"] = _check_twin(path, values, sfreq, deriv, step,
                                                files["txt"], t_values, t_rate, t_deriv, t_res)
    if deriv is None:
        deriv = hint
        if deriv is None:
            warnings.warn(f"{path}: no header line names the derivation and no scoring file "
                          "does; it is recorded as unknown.")
    mismatch = {w: h for w, h in hints.items() if h and deriv and _key(h) != _key(deriv)}
    if mismatch:
        warnings.warn(f"{path}: recorded on {deriv} but the scoring file header(s) name "
                      f"{mismatch}; the scorings are used as they are (same time base).")
    n0, sf0 = len(values), sfreq
    seconds = n0 / sf0
    extra = int(n0 - round(EXCERPT_SECONDS * sf0))
    values = _filter_resample(path, values, sfreq, steps)
    sfreq = float(steps["resample"] or sf0)
    n = len(values)
    parts = []
    for who, arr in scorings.items():
        parts.append(_spindle_events(files[who], arr, SCORINGS[who][1], sfreq, seconds, n))
    if hyp is not None:
        expected = int(round(seconds / HYPNOGRAM_EPOCH_S))
        if len(hyp) != expected:
            raise InputError(files["hypnogram"], f"{len(hyp)} stage codes for a "
                             f"{seconds:.1f}-s recording ({path}), which needs {expected} "
                             f"(one per {HYPNOGRAM_EPOCH_S:g} s).",
                             "The hypnogram belongs to another excerpt or is cut short.")
        parts.append(_stage_events(hyp, sfreq, n))
    else:
        warnings.warn(f"{path}: no Hypnogram_excerpt{excerpt}.txt: no stage events.")
    if "expert1" not in scorings:
        warnings.warn(f"{path}: no Visual_scoring1_excerpt{excerpt}.txt (expert 1, the "
                      "database's reference scorer): no spindle:expert1 events.")
    events = (pd.concat(parts, ignore_index=True) if parts
              else pd.DataFrame(columns=["onset", "duration", "label"]))
    events = events.sort_values(["onset", "label"], kind="stable").reset_index(drop=True)
    _amplitude_check(path, values, sfreq)
    experts = [w for w in ("expert1", "expert2") if w in scorings]
    row = {"subject": f"excerpt{excerpt}", "session": None, "run": None, "task": "sleep",
           "site": None, "dataset": "dreams-spindles", "modality": "eeg", "sfreq": sfreq,
           "excerpt": int(excerpt), "derivation": deriv, "scorers": ",".join(experts),
           "automatic_detection": "automatic" in scorings, "hypnogram": hyp is not None,
           "source_format": use, "original_sfreq": sf0, "extra_samples": extra,
           **{f"n_spindles_{w}": (int(len(scorings[w])) if w in scorings else None)
              for w in SCORINGS}}
    details.update(derivation=deriv, source_format=use, original_sfreq=sf0,
                   extra_samples=extra, scoring_headers=hints)
    sources = [str(path)] + [str(p) for k, p in files.items() if p and k != use]
    return Recording(values[:, None], [CHANNEL], row, sources, events=events,
                     channel_units=["uV"], details=details)


def _source_of(files: dict, source: str) -> str:
    if source == "auto":
        return "edf" if files.get("edf") else "txt"
    return source


def _filter_resample(path, values: np.ndarray, sfreq: float, steps: dict) -> np.ndarray:
    """Band-pass and resample through MNE (nothing to do: the values as they are)."""
    lo, hi, rs = steps["l_freq"], steps["h_freq"], steps["resample"]
    if not (lo or hi or (rs and abs(rs - sfreq) > 1e-9)):
        return values
    import mne

    if hi is not None and hi >= sfreq / 2:
        raise InputError(path, f"h_freq={hi:g} Hz is at or above this excerpt's Nyquist "
                         f"frequency ({sfreq / 2:g} Hz; it is sampled at {sfreq:g} Hz).",
                         "Lower h_freq (--h-freq).")
    raw = mne.io.RawArray(values[None] * 1e-6, mne.create_info([CHANNEL], sfreq, "eeg"),
                          verbose="error")
    if lo or hi:
        raw.filter(lo, hi, verbose="error")
    if rs and abs(rs - sfreq) > 1e-9:
        raw.resample(rs, verbose="error")
    return raw.get_data()[0] * 1e6


def _amplitude_check(path, values: np.ndarray, sfreq: float) -> None:
    from .channels import amplitude_warning, implausible_amplitudes

    bad = implausible_amplitudes(values[None], [CHANNEL], sfreq)
    if bad:
        warnings.warn(amplitude_warning(path, bad, None, "Check the unit the file declares "
                                        "(the database's text files are in µV).", 1))


# ------------------------------------------------------------------------ pipeline
def _check_options(source, resample, l_freq, h_freq) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    for name, v in (("resample", resample), ("l_freq", l_freq), ("h_freq", h_freq)):
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number in Hz or None, got {v!r}")
    if l_freq and h_freq and l_freq >= h_freq:
        raise ValueError(f"l_freq ({l_freq}) must be below h_freq ({h_freq})")


def preprocess_dreams(data_dir, out, excerpts=None, *, source: str = "auto",
                      resample: float | None = None, l_freq: float | None = None,
                      h_freq: float | None = None, jobs: int = 1, shard=None,
                      overwrite: bool = False, progress: bool = True):
    """The DREAMS Sleep Spindles excerpts in ``data_dir`` -> a sequence store at ``out``.

    One recording per excerpt (id ``excerptN``): a ``(n_times, 1)`` float32 array in µV,
    channel ``EEG``, at the excerpt's own rate (50, 100 or 200 Hz in the database) or at
    ``resample`` Hz; spindle and stage events in samples (the module docstring gives the
    labels, the rate rule and the per-file errors).

    Parameters
    ----------
    data_dir : the database's folder (or one holding ``dreams-spindles``).
    out : the store folder.
    excerpts : ``None`` (all), an int, a list, or ``"1-3,5"``.
    source : ``"auto"`` (the EDF where there is one, else the text file; when both are
        present the other is checked against it), ``"txt"`` or ``"edf"`` (only that
        format; an excerpt without it fails).
    resample : one rate in Hz for every excerpt (``mne.io.Raw.resample``); ``None`` keeps
        each excerpt's rate.
    l_freq, h_freq : band-pass edges in Hz (``mne.io.Raw.filter``, FIR), or ``None``.
    jobs, shard, overwrite, progress : as for every pipeline
        (:func:`pipelines.runner.run_items`; a :func:`pipelines.runner.use_dask` block runs
        the excerpts on a Dask cluster).

    Manifest columns besides the usual ones: ``excerpt``, ``derivation``, ``scorers``
    (the experts whose scoring file is there: ``expert1,expert2``),
    ``automatic_detection``, ``hypnogram`` (booleans: that file is there),
    ``source_format`` (``txt``/``edf``), ``original_sfreq``, ``extra_samples`` (samples
    beyond 30 minutes at the original rate, kept) and ``n_spindles_expert1``,
    ``n_spindles_expert2``, ``n_spindles_automatic`` (empty where the file is missing).
    Returns the run's :class:`pipelines.runner.Summary`.
    """
    from neuroconv.data.store import StoreWriter

    from .eeg import _parse_ints

    _check_options(source, resample, l_freq, h_freq)
    wanted = None if excerpts is None else set(_parse_ints(excerpts, "excerpts", 1, 10 ** 6))
    found, others = scan_dreams(data_dir)
    items, pre_failed = [], []
    steps = {"source": source, "resample": resample, "l_freq": l_freq, "h_freq": h_freq}
    for n, files in found.items():
        if wanted is not None and n not in wanted:
            continue
        rid = f"excerpt{n}"
        need = {"auto": ("txt", "edf"), "txt": ("txt",), "edf": ("edf",)}[source]
        if not any(files[k] for k in need):
            given = [p.name for p in files.values() if p is not None]
            first = next(p for p in files.values() if p is not None)
            pre_failed.append(Outcome(rid, str(first), "failed", str(InputError(
                first, f"excerpt {n} has {given} but no signal file "
                f"({' or '.join(f'excerpt{n}.{k}' for k in need)}).",
                "Add the excerpt's signal file beside its scorings, or remove them."))))
            continue
        paths = {k: (str(v) if v is not None else None) for k, v in files.items()}
        if source != "auto":                      # the other format is not read
            paths[{"txt": "edf", "edf": "txt"}[source]] = None
        sources = [p for p in paths.values() if p]
        primary = paths[_source_of(paths, source)]
        items.append(Item(rid, [primary] + [p for p in sources if p != primary],
                          process_excerpt, dict(excerpt=n, files=paths, steps=steps)))
    if not items and not pre_failed:
        raise FileNotFoundError(f"no DREAMS excerpts {sorted(wanted or [])} under {data_dir}.")
    extra = {}
    passed = [p.name for p in others]
    if passed:
        extra["passed_over"] = passed
        unknown = [p for p in passed if "licen" not in p.lower()]
        if unknown:
            warnings.warn(f"{find_dreams_root(data_dir)}: passed over {len(unknown)} file(s) "
                          f"that are no excerpt, scoring or hypnogram: {unknown[:10]}.",
                          stacklevel=2)
    record = [
        {"name": "read", "params": {
            "layout": "DREAMS Sleep Spindles (excerptN.txt/.edf, Visual_scoring1/2_, "
                      "Automatic_detection_, Hypnogram_excerptN.txt)",
            "source": source, "edf_reader": "mne.io.read_raw_edf, unit from the EDF header",
            "excerpt_seconds": EXCERPT_SECONDS, "length_tolerance_s": LENGTH_TOLERANCE_S,
            "extra_samples": "kept", "channel": CHANNEL}},
        {"name": "bandpass", "params": {"l_freq": l_freq, "h_freq": h_freq,
                                        "method": "mne fir (default)"}},
        {"name": "resample", "params": {"sfreq": resample}},
        {"name": "events", "params": {
            "spindles": {w: lb for w, (_, lb) in SCORINGS.items()},
            "hypnogram_epoch_s": HYPNOGRAM_EPOCH_S,
            "stages": {str(c): (f"stage:{s}" if s else None) for c, s in HYPNOGRAM_CODES.items()},
            "stage_events": "one per epoch (not merged)"}},
        {"name": "units", "params": {"eeg": "uV", "dtype": "float32"}},
    ]
    writer = StoreWriter(out, "dreams", record, overwrite=overwrite)
    return run_items(items, writer, jobs=jobs, shard=shard, progress=progress,
                     description="dreams", pre_failed=pre_failed,
                     extra_meta={"units": {"eeg": "uV"}, "dataset": "dreams-spindles",
                                 "labels": {"spindles": [lb for _, lb in SCORINGS.values()],
                                            "stages": ["stage:W", "stage:N1", "stage:N2",
                                                       "stage:N3", "stage:R"]},
                                 "hypnogram_codes": {str(c): s for c, s in
                                                     HYPNOGRAM_CODES.items()},
                                 "resample": resample, **extra})
