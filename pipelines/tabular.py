"""EEG recorded as a table (CSV/TSV/text) -> an ``mne.io.RawArray`` with annotations.

Consumer and research headsets (Muse, OpenBCI, LSL recorders) write one row per sample:
a time column, one column per channel, often auxiliary columns, and marker columns that
hold an event code on the row of each stimulus (0 or empty = no event).
:func:`read_table` turns such a file into a ``RawArray`` (volts, as MNE wants) whose
annotations are the marker codes, so that :func:`pipelines.eeg.process_raw` runs the same
EEG steps on it as on EDF or FIF.

Columns (every choice can be given explicitly; auto-detection is the default):

- ``time_column``: ``"auto"`` looks for ``timestamps``/``timestamp``/``time``/
  ``lsl_timestamp``/``time (s)``/``time_ms``...; ``None`` means there is none and
  ``sfreq`` must be given. ``time_unit``: ``"s"``, ``"ms"``, ``"us"`` or ``"auto"``
  (``ms``/``us`` when the name says so or the values are Unix milliseconds or
  microseconds). A named time column of date-time text (``2019-03-16 15:26:23.853``)
  is read as UTC.
- ``channels``: ``"auto"`` keeps the numeric columns whose names are channels of the
  montage (``TP9``, ``Fp1``, ``EEG Cz-REF``...) and leaves out auxiliary ones
  (``Right AUX``, ``Accel``, ``Sample Index``...); with ``montage=None`` every numeric
  column that is not time, marker or auxiliary. A list picks columns; a dict
  ``{column: channel name}`` picks and renames (OpenBCI ``EXG Channel 0`` -> ``Fp1``).
- ``marker_columns``: ``"auto"`` (``Marker``, ``Marker0``, ``Markers``, ``Trigger``,
  ``Event``, ``Stim``...), a list, or ``None``.
- ``unit``: ``"auto"`` (a unit in the column names such as ``TP9 (uV)``, else a known
  device's, else µV), ``"uV"``, ``"mV"``, ``"V"`` or ``"nV"``.
- A file without a header row gets columns named ``"0"``, ``"1"``...: auto-detection
  then fails with a message, and the options name the columns by position.
- ``sep`` (``"auto"``: comma, tab or semicolon from the header line; semicolon files
  with decimal commas are read as such) and ``comment``
  (``"auto"``: leading lines starting with ``%`` or ``#`` are skipped; OpenBCI's
  ``%Sample Rate = 250 Hz`` line gives the sampling rate).

Sampling rate: ``sfreq`` if given, else the header's, else the device's (Muse: 256 Hz),
else estimated from the timestamps (a warning says so).

Amplitudes: channels whose typical peak-to-peak amplitude in 1 s lies outside what scalp
EEG can have (``pipelines.channels.EEG_PEAK_TO_PEAK_UV``, 0.1 µV to 10 mV) earn a
warning that names the file, each such channel, its range and the unit to check.

Timing (``timing="auto"``): timestamps are checked against the nominal rate.

0. Order: a time column that decreases (rows written in reverse, a clock that counts
   down) or, once de-jittered (below), goes back by more than ``max_timing_error`` (rows
   out of order, a clock reset, two recordings in one file) refuses the file with a
   message that names which (``timing="rows"``: a warning).
1. Clock rate: the median over 1 s windows of the timestamps' rate; when it differs from
   ``sfreq`` by more than ``rate_tolerance`` (1 %) the file is refused (wrong ``sfreq``
   or ``time_unit``).
2. Jitter: recorders stamp samples per packet when the packet arrives, so timestamps
   jitter while the samples themselves are regular. The timing error of a placement of
   the rows on the sample grid is the largest distance between each row's grid time
   and its timestamp, after a running median over 1 s (which removes that jitter) and
   a straight line (clock offset and drift). If the rows taken as consecutive samples
   are within ``max_timing_error`` (20 ms), they are used as they are ("rows": values
   unchanged).
3. Otherwise samples are missing (dropped packets) or the sampling is irregular. A gap
   shows as a lasting rise of the timestamps' lag behind the grid: the median lag over
   the second after a row minus that over the second up to it. Where that rise exceeds
   1.5 samples (or six robust standard deviations, for heavily jittered timestamps)
   the row with the largest interval opens a gap of ``round(rise * sfreq)`` missing
   samples ("timestamps"). If the rows so placed are within ``max_timing_error`` of
   their timestamps, the missing samples are filled by linear interpolation
   (``numpy.interp``) provided no stretch is longer than ``max_gap`` (0.2 s). Timing
   that still does not fit (timestamps that jump back, extra or irregular samples) or
   longer gaps refuse the file with a message that says what to do.

``timing="rows"`` takes the rows as consecutive samples whatever the timestamps say
(a warning when they disagree); ``timing="timestamps"`` always places rows by their
timestamps. NaN rows (any channel value missing or not a number) count as missing
samples: leading and trailing ones are dropped, inner ones interpolated under the same
``max_gap``. Rows that repeat an earlier row exactly, timestamp included, are dropped.

Events: a marker column's event is the first row of each run of one non-zero code (a
Muse marker sits on one row; recorders that hold a trigger level give one event per
run, with its duration). Codes become annotation descriptions ``"1"``, ``"2"`` (text
markers are kept as they are) for the ``event_map`` of the EEG steps.

Everything that was detected or done is returned in ``details`` (it goes to the
store's ``meta.json``).
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .channels import UNIT_VOLTS, amplitude_warning, implausible_amplitudes, montage_matcher
from .runner import InputError

TABLE_EXT = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")

#: devices recognised by their channel columns: nominal rate and unit
DEVICES = {
    "muse": {"channels": ("TP9", "AF7", "AF8", "TP10"), "sfreq": 256.0, "unit": "uV"},
}

TABLE_DEFAULTS = dict(sfreq=None, time_column="auto", time_unit="auto", channels="auto",
                      marker_columns="auto", unit="auto", sep="auto", comment="auto",
                      timing="auto", max_timing_error=0.02, max_gap=0.2, rate_tolerance=0.01)

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
TIMING = ("auto", "rows", "timestamps")
#: running-median window (s) that removes per-packet timestamp jitter
DEJITTER_WINDOW = 1.0

_TIME_RE = re.compile(r"^(lsl[ _]?|unix[ _]?|system[ _]?)?(time|timestamps?|t)"
                      r"([ _]?(stamps?))?([ _]*[\(\[]?\s*(s|sec|seconds|ms|us)\s*[\)\]]?)?$", re.I)
_MARKER_RE = re.compile(r"^(markers?|triggers?|events?|stim(ulus)?|sti[ _]?\d+|lsl[ _]?markers?)"
                        r"[ _]?\d*$", re.I)
_UNUSED_RE = re.compile(r"aux|acc|gyro|sample[ _]?index|^other|analog|digital|"
                        r"battery|^hsi|^is[ _]?good|ppg|temperature|^packet|^index$|counter|"
                        r"^unnamed|formatted", re.I)
_UNIT_RE = re.compile(r"(?:[\s_]+[\(\[]?|\s*[\(\[])\s*(µv|μv|uv|mv|nv|v)\s*[\)\]]?$", re.I)
_RATE_RE = re.compile(r"sample[ _]?rate\s*[=:]\s*([\d.]+)\s*hz", re.I)


def is_table(path) -> bool:
    """Whether ``path`` names a CSV/TSV/text table (``.csv``, ``.tsv``, ``.txt``, gzipped)."""
    return str(path).lower().endswith(TABLE_EXT)


def _unit_name(u: str) -> str:
    """'µV', 'uv', 'UV' -> 'uV'; 'mv' -> 'mV'...; anything else unchanged."""
    key = u.strip().replace("µ", "u").replace("μ", "u").lower()
    return {"uv": "uV", "mv": "mV", "v": "V", "nv": "nV"}.get(key, u)


def validate_table_options(opts: dict) -> dict:
    """Fill defaults and check the table options (``TABLE_DEFAULTS``); returns them."""
    unknown = set(opts) - set(TABLE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown table option(s) {sorted(unknown)}; allowed: "
                        f"{sorted(TABLE_DEFAULTS)}")
    o = {**TABLE_DEFAULTS, **opts}
    if o["sfreq"] is not None and not (isinstance(o["sfreq"], (int, float)) and o["sfreq"] > 0):
        raise ValueError(f"sfreq must be a positive number in Hz or None, got {o['sfreq']!r}")
    if o["unit"] != "auto":
        o["unit"] = _unit_name(str(o["unit"]))
        if o["unit"] not in UNIT_VOLTS:
            raise ValueError(f"unit must be 'auto' or one of {sorted(UNIT_VOLTS)}, got "
                             f"{opts['unit']!r}")
    if o["time_unit"] not in ("auto", *TIME_UNITS):
        raise ValueError(f"time_unit must be 'auto' or one of {sorted(TIME_UNITS)}, got "
                         f"{o['time_unit']!r}")
    if o["timing"] not in TIMING:
        raise ValueError(f"timing must be one of {TIMING}, got {o['timing']!r}")
    for key in ("max_timing_error", "max_gap", "rate_tolerance"):
        v = o[key]
        if v is not None and not (isinstance(v, (int, float)) and v >= 0):
            raise ValueError(f"{key} must be a number >= 0 or None (no limit), got {v!r}")
    if o["time_column"] is not None and not isinstance(o["time_column"], str):
        raise ValueError(f"time_column must be 'auto', a column name or None, got "
                         f"{o['time_column']!r}")
    ch = o["channels"]
    if isinstance(ch, str) and ch != "auto":
        o["channels"] = ch = [c.strip() for c in ch.split(",") if c.strip()]
    if not (ch == "auto" or isinstance(ch, dict) or
            (isinstance(ch, (list, tuple)) and ch and all(isinstance(c, str) for c in ch))):
        raise ValueError(f"channels must be 'auto', a list of column names or a dict "
                         f"{{column: channel name}}, got {ch!r}")
    mk = o["marker_columns"]
    if isinstance(mk, str) and mk != "auto":
        o["marker_columns"] = [mk]
    elif not (mk is None or mk == "auto" or isinstance(mk, (list, tuple))):
        raise ValueError(f"marker_columns must be 'auto', a list of column names or None, "
                         f"got {mk!r}")
    for key in ("sep", "comment"):
        if o[key] is not None and not isinstance(o[key], str):
            raise ValueError(f"{key} must be 'auto', a string or None, got {o[key]!r}")
    return o


# ------------------------------------------------------------------- file layout
def _sniff(path: str, sep, comment):
    """Leading comment lines, separator and header fields, from the file's first lines."""
    import gzip

    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as e:
        raise InputError(path, f"cannot be read ({e}).", "Check the path and the "
                         "file's permissions.") from e
    if not head.strip():
        raise InputError(path, "empty file.", "Remove it from the inputs.")
    if b"\x00" in head:
        raise InputError(path, "binary content (NUL bytes): not a text table.",
                         "Give a CSV/TSV export of the recording, or the device's native "
                         "file (EDF, BDF, FIF...) without the .csv/.txt name.")
    text = head.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()
    marks = ("%", "#") if comment == "auto" else ((comment,) if comment else ())
    skip = 0
    while skip < len(lines) and (not lines[skip].strip() or
                                 (marks and lines[skip].lstrip().startswith(marks))):
        skip += 1
    if skip >= len(lines):
        raise InputError(path, "no header line: the file holds only comments.",
                         "Check the export.")
    header = lines[skip]
    if sep == "auto":
        counts = {s: header.count(s) for s in (",", "\t", ";")}
        sep = max(counts, key=counts.get)
        if counts[sep] == 0:
            raise InputError(path, f"cannot find the column separator in the header line "
                             f"{header[:120]!r} (looked for comma, tab, semicolon).",
                             "Pass sep (--sep) explicitly.")
    fields = [h.strip() for h in header.split(sep)]
    info = {"decimal": "."}
    body = lines[skip + 1] if skip + 1 < len(lines) else ""
    if sep == ";" and re.search(r"\d,\d", body):          # 1,5;2,25: decimal commas
        info["decimal"] = ","
    comments = "\n".join(lines[:skip])
    m = _RATE_RE.search(comments)
    if m:
        info["sfreq"] = float(m.group(1))
    if re.search(r"microvolt|\buV\b|µV", comments, re.I):
        info["unit"] = "uV"
    return skip, sep, fields, info


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _read_frame(path: str, skip: int, sep: str, fields: list[str],
                decimal: str = ".") -> pd.DataFrame:
    """The table; a file without a header row gets columns named "0", "1", ..."""
    no_header = bool(fields) and all(_is_number(f) for f in fields if f)
    try:
        df = pd.read_csv(path, sep=sep, skiprows=skip, skipinitialspace=True,
                         header=None if no_header else "infer", decimal=decimal,
                         low_memory=False, encoding="utf-8-sig", encoding_errors="replace")
    except pd.errors.EmptyDataError as e:
        raise InputError(path, "no data rows.", "Remove it from the inputs.") from e
    except (pd.errors.ParserError, ValueError, EOFError, OSError) as e:
        raise InputError(path, f"malformed table ({type(e).__name__}: "
                         f"{str(e).strip()[:300]}).", "Repair the file (every row needs "
                         "as many fields as the header) or re-export it.") from e
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["no_header"] = no_header
    if len(df) == 0:
        raise InputError(path, f"no data rows after the header (columns "
                         f"{list(df.columns)}).", "Remove it from the inputs.")
    return df


def _numeric(col: pd.Series) -> tuple[np.ndarray, int]:
    """float64 values; the count of cells that were text, not numbers (set to NaN)."""
    x = pd.to_numeric(col, errors="coerce")
    bad = int((x.isna() & col.notna()).sum())
    return x.to_numpy(dtype=np.float64), bad


def _strip_unit(name: str) -> tuple[str, str | None]:
    m = _UNIT_RE.search(name)
    if m and m.start() > 0:
        return name[:m.start()].strip(), _unit_name(m.group(1))
    return name, None


def _columns(df: pd.DataFrame, o: dict, montage: str | None, path: str) -> dict:
    """Decide time, channel, marker and ignored columns (explicit options win)."""
    cols = list(df.columns)
    found = f"Columns in the file: {cols}." + (
        " The file has no header row: its columns are numbered from 0; name them with "
        "channels={'1': 'Fp1', ...}, time_column='0' or None, and sfreq."
        if df.attrs.get("no_header") else "")

    def need(names, what):
        missing = [c for c in names if c not in cols]
        if missing:
            raise InputError(path, f"{what} column(s) {missing} not found. {found}",
                             f"Pass {what} (the exact column names) or fix the file.")

    tc = o["time_column"]
    if tc == "auto":
        cand = [c for c in cols if _TIME_RE.match(c)]
        numeric = [c for c in cand if pd.to_numeric(df[c], errors="coerce").notna().any()]
        if len(numeric) > 1:
            raise InputError(path, f"several time columns {numeric}. {found}",
                             "Pass time_column (--time-column) to choose one.")
        tc = numeric[0] if numeric else None
    elif tc is not None:
        need([tc], "time_column")
    mk = o["marker_columns"]
    if mk == "auto":
        mk = [c for c in cols if _MARKER_RE.match(c) and c != tc]
    else:
        mk = list(mk or [])
        need(mk, "marker_columns")
    ch = o["channels"]
    if ch != "auto":
        mapping = dict(ch) if isinstance(ch, dict) else {c: c for c in ch}
        need(list(mapping), "channels")
    else:
        rest = [c for c in cols if c != tc and c not in mk and not _UNUSED_RE.search(c)
                and pd.to_numeric(df[c], errors="coerce").notna().any()]
        if montage is not None:
            match = montage_matcher(montage)
            mapping = {c: match(_strip_unit(c)[0]) for c in rest}
            mapping = {c: name for c, name in mapping.items() if name}
            left = [c for c in rest if c not in mapping]
            if mapping and left:
                warnings.warn(f"{path}: numeric columns {left} are not channels of montage "
                              f"{montage!r}; left out (pass channels=[...] to keep them).")
            if not mapping:
                raise InputError(path, f"no column is named like an EEG channel of montage "
                                 f"{montage!r} (candidates: {rest}). {found}",
                                 "Pass channels=[...] (--channels) with the EEG columns, or "
                                 "a mapping {column: 10-05 name} (--channels 'EXG Channel "
                                 "0=Fp1,...'), or montage=None (--montage none) to keep "
                                 "every numeric column.")
        else:
            mapping = {c: _strip_unit(c)[0] for c in rest}
        if not mapping:
            raise InputError(path, f"no numeric channel columns. {found}",
                             "Pass channels=[...] (--channels).")
    if len(set(mapping.values())) < len(mapping):
        raise InputError(path, f"two columns map to the same channel name: {mapping}.",
                         "Pass channels as a {column: name} mapping with distinct names.")
    ignored = [c for c in cols if c != tc and c not in mk and c not in mapping]
    return {"time": tc, "channels": mapping, "markers": mk, "ignored": ignored}


def _device(channels: list[str]) -> str | None:
    for name, spec in DEVICES.items():
        if sorted(channels) == sorted(spec["channels"]):
            return name
    return None


def _unit(o: dict, columns: list[str], header_unit, device, path) -> tuple[str, str]:
    if o["unit"] != "auto":
        return o["unit"], "option"
    units = {c: u for c, u in ((c, _strip_unit(c)[1]) for c in columns) if u}
    if len(set(units.values())) > 1:
        raise InputError(path, f"the channel columns are in different units {units}.",
                         "Keep the columns of one unit (channels=[...]) and pass that unit.")
    if units:
        return next(iter(units.values())), "column names"
    if header_unit:
        return header_unit, "header"
    if device:
        return DEVICES[device]["unit"], f"device ({device})"
    return "uV", "default (no unit in the file)"


# ------------------------------------------------------------------------- timing
def _window(n: int, sfreq: float) -> int:
    """Rows in the running-median window (odd)."""
    return int(min(n, max(1, round(DEJITTER_WINDOW * sfreq)))) | 1


def _dejitter(t: np.ndarray, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """Each timestamp's lag behind the nominal grid, raw and after a running median
    over ``DEJITTER_WINDOW`` seconds (which removes per-packet jitter, keeps steps)."""
    from scipy.ndimage import median_filter

    lag = (t - t[0]) - np.arange(len(t)) / sfreq
    return lag, median_filter(lag, size=_window(len(t), sfreq), mode="nearest")


def _gap_steps(d: np.ndarray, lag_s: np.ndarray, sfreq: float) -> np.ndarray:
    """Samples each row advances over the previous one: 1, or more after a gap.

    A gap is a lasting rise of the lag: the median lag of the window after a row minus
    that of the window up to it (``rise``, in seconds) stays at the gap's length for
    about a window around it, whereas jitter leaves it near zero. Each run of rows
    where ``rise`` exceeds 1.5 samples (or 6 robust standard deviations of ``rise``,
    for heavily jittered timestamps) holds one gap: at its largest raw interval ``d``,
    of ``round(rise * sfreq)`` missing samples.
    """
    n = len(lag_s)
    h = _window(n, sfreq) // 2
    k = np.arange(n - 1)
    rise = lag_s[np.minimum(k + 1 + h, n - 1)] - lag_s[np.maximum(k - h, 0)]     # (n-1,)
    mad = np.median(np.abs(rise - np.median(rise))) if n > 1 else 0.0
    big = rise >= max(1.5 / sfreq, 6 * 1.4826 * mad)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], big.astype(np.int8), [0]])))
    inc = np.ones(n - 1, dtype=np.int64)
    for a, b in zip(edges[::2], edges[1::2]):               # one gap per run (few runs)
        at = a + int(np.argmax(d[a:b]))
        inc[at] += max(0, int(np.rint(rise[at] * sfreq)))
    return inc


def _clock_rate(lag_s: np.ndarray, sfreq: float) -> float:
    """The timestamps' sampling rate: the median slope of the de-jittered lag over ~1 s
    windows, so gaps and jitter move it little."""
    m = int(max(1, min(len(lag_s) - 1, round(sfreq))))
    if len(lag_s) < 2:
        return sfreq
    period = 1.0 / sfreq + np.median(lag_s[m:] - lag_s[:-m]) / m
    return float(1.0 / period) if period > 0 else float("nan")


def _misfit(t: np.ndarray, pos: np.ndarray, sfreq: float) -> float:
    """Largest distance (s) between rows placed at sample ``pos`` and their timestamps
    ``t``, de-jittered (running median of the difference) and after removing a straight
    line (clock offset and drift)."""
    from scipy.ndimage import median_filter

    if len(t) < 3:
        return 0.0
    e = median_filter((t - t[0]) - pos / sfreq, size=_window(len(t), sfreq), mode="nearest")
    return float(np.abs(e - np.polyval(np.polyfit(pos, e, 1), pos)).max())


def _time_order(t: np.ndarray, sfreq: float, tol: float | None) -> str | None:
    """What is wrong with the order of the timestamps ``t`` (s), or None.

    Decreasing: most steps go back (rows written in reverse, or a clock that counts
    down). Non-monotonic: the de-jittered time (running median over ``DEJITTER_WINDOW``)
    falls back by more than ``tol`` s somewhere; per-packet jitter makes single steps go
    back a little, the running median does not.
    """
    from scipy.ndimage import median_filter

    d = np.diff(t)
    n_back = int((d < 0).sum())
    if n_back == 0:
        return None
    if np.median(d) < 0:
        return (f"the time column decreases: the rows run backwards in time ({n_back} of "
                f"{len(d)} steps go back, from {t[0]:.3f} s to {t[-1]:.3f} s).")
    if tol is None:
        return None
    ts = median_filter(t, size=_window(len(t), sfreq), mode="nearest")
    back = float((np.maximum.accumulate(ts) - ts).max())
    if back <= tol:
        return None
    return (f"the time column is not monotonic: the timestamps go backwards by "
            f"{-d.min():.3f} s at data row {int(np.argmin(d)) + 1} ({n_back} step(s) back in "
            f"all), more than per-packet jitter explains (max_timing_error {tol * 1e3:g} ms).")


def place_samples(t: np.ndarray, sfreq: float, *, timing: str = "auto",
                  max_timing_error: float | None = 0.02,
                  rate_tolerance: float | None = 0.01, path: str = "") -> tuple[np.ndarray, dict]:
    """Position of each row on the nominal sample grid, from its timestamp ``t`` (s).

    Returns ``(pos, stats)``: ``pos`` (integers, ``pos[0] == 0``, increasing) is each
    row's sample index; rows are consecutive samples where ``pos`` steps by 1, and
    missing samples lie where it steps by more. ``stats`` holds the measurements and
    the decision (``method``: ``"rows"`` or ``"timestamps"``). See the module docstring
    for the rules; files that break them raise :class:`InputError`.
    """
    n = len(t)
    k = np.arange(n, dtype=np.float64)
    d = np.diff(t)
    lag, lag_s = _dejitter(t, sfreq)
    clock = _clock_rate(lag_s, sfreq)
    stats = {
        "n_rows": n, "nominal_sfreq": sfreq,
        "median_interval_ms": float(np.median(d) * 1e3) if n > 1 else None,
        "min_interval_ms": float(d.min() * 1e3) if n > 1 else None,
        "max_interval_ms": float(d.max() * 1e3) if n > 1 else None,
        "effective_sfreq": float((n - 1) / (t[-1] - t[0])) if n > 1 and t[-1] > t[0] else None,
        "clock_sfreq": clock,
        "n_backward": int((d < 0).sum()), "n_repeated_timestamps": int((d == 0).sum()),
        "jitter_ms": float(np.abs(lag - lag_s).max() * 1e3),
        "rows_timing_error_ms": _misfit(t, k, sfreq) * 1e3,
    }
    order = _time_order(t, sfreq, max_timing_error)
    if order is not None and timing != "rows":
        raise InputError(path, order, "Sort the rows by time if they were written out of "
                         "order or in reverse; if the recorder's clock was reset or runs "
                         "backwards, fix the clock (or split a file that joins two "
                         "recordings); or pass timing='rows' (--timing rows) if the rows "
                         "are consecutive samples.")
    if order is not None:
        warnings.warn(f"{path}: {order} timing='rows': the rows are taken as consecutive "
                      f"samples at {sfreq:g} Hz anyway; the timestamps disagree with them.")
        stats.update(method="rows", timing_error_ms=stats["rows_timing_error_ms"],
                     timestamp_gaps=0, timestamp_missing_samples=0)
        return np.arange(n), stats
    rel = abs(clock / sfreq - 1) if np.isfinite(clock) else np.inf
    if rate_tolerance is not None and rel > rate_tolerance:
        msg = (f"the timestamps run at {clock:.3f} Hz but the nominal sampling rate is "
               f"{sfreq:g} Hz ({rel:.1%} apart, more than rate_tolerance="
               f"{rate_tolerance:.1%}).")
        if timing != "rows":
            raise InputError(path, msg, "Pass the device's true rate as sfreq (--sfreq), "
                             "check time_unit (--time-unit s|ms|us), or pass timing='rows' "
                             "(--timing rows) to ignore the timestamps.")
        warnings.warn(f"{path}: {msg} timing='rows': the rows are taken as samples at "
                      f"{sfreq:g} Hz anyway.")
    tol = np.inf if max_timing_error is None else max_timing_error
    regular = stats["rows_timing_error_ms"] / 1e3 <= tol
    if timing == "rows" or (timing == "auto" and regular):
        if not regular:
            warnings.warn(f"{path}: the timestamps disagree with the rows by up to "
                          f"{stats['rows_timing_error_ms']:.1f} ms; timing='rows' keeps "
                          "the rows as consecutive samples.")
        stats.update(method="rows", timing_error_ms=stats["rows_timing_error_ms"],
                     timestamp_gaps=0, timestamp_missing_samples=0)
        return np.arange(n), stats
    inc = _gap_steps(d, lag_s, sfreq)
    pos = np.concatenate([[0], np.cumsum(inc)])
    err = _misfit(t, pos.astype(np.float64), sfreq)
    stats.update(method="timestamps", timing_error_ms=err * 1e3,
                 timestamp_gaps=int((inc > 1).sum()),
                 timestamp_missing_samples=int((inc - 1).sum()))
    if err > tol:
        back = (f"the timestamps go backwards {stats['n_backward']} time(s), "
                if stats["n_backward"] else "")
        raise InputError(path, f"irregular sampling: placed on the {sfreq:g} Hz grid by their "
                         f"timestamps, samples still lie up to {err * 1e3:.1f} ms from their "
                         f"timestamps (max_timing_error {tol * 1e3:g} ms; {back}jitter "
                         f"{stats['jitter_ms']:.1f} ms, {stats['timestamp_gaps']} gaps).",
                         "Check sfreq and the time column, raise max_timing_error, or pass "
                         "timing='rows' (--timing rows) if the rows are consecutive samples.")
    return pos, stats


# --------------------------------------------------------------------------- read
def _codes(values: pd.Series) -> np.ndarray:
    """Marker cells -> event codes as text ('' = no event)."""
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().sum() >= values.notna().sum():             # a numeric column
        x = num.to_numpy(dtype=np.float64)
        ok = np.isfinite(x) & (x != 0)
        out = np.full(len(x), "", dtype=object)
        out[ok] = [str(int(v)) if float(v).is_integer() else repr(float(v)) for v in x[ok]]
        return out
    s = values.astype("string").fillna("").str.strip()
    s = s.mask(s.isin(["0", "0.0", "nan", "NaN"]), "")
    return s.to_numpy(dtype=object)


def _marker_events(df: pd.DataFrame, columns: list[str]) -> list[tuple[int, int, str, str]]:
    """(row, length in rows, code, column) of each run of one non-empty code."""
    out = []
    for c in columns:
        code = _codes(df[c])
        start = (code != "") & np.concatenate([[True], code[1:] != code[:-1]])
        rows = np.flatnonzero(start)
        change = np.flatnonzero(np.concatenate([code[1:] != code[:-1], [True]]))
        ends = change[np.searchsorted(change, rows)]
        out.extend((int(r), int(e - r + 1), str(code[r]), c) for r, e in zip(rows, ends))
    return sorted(out)


def _nominal_rate(o: dict, header: dict, device, tc, columns, path) -> tuple[float | None, str]:
    """The nominal sampling rate and where it came from (None: estimate from timestamps)."""
    if o["sfreq"] is not None:
        return float(o["sfreq"]), "option"
    if "sfreq" in header:
        return header["sfreq"], "header"
    if device:
        return DEVICES[device]["sfreq"], f"device ({device})"
    if tc is None:
        raise InputError(path, f"no time column and no sampling rate. Columns in the file: "
                         f"{columns}.", "Pass sfreq (--sfreq HZ), or time_column "
                         "(--time-column NAME) if one of these columns holds the time.")
    return None, "timestamps"


def _timestamps(df: pd.DataFrame, tc: str, time_unit: str, path: str) -> tuple[np.ndarray, str]:
    """The time column in seconds (missing cells interpolated) and its unit."""
    t, _ = _numeric(df[tc])
    if np.isfinite(t).sum() < 2:                   # date-time text, e.g. 2019-03-16 15:26:23.853
        stamp = pd.to_datetime(df[tc], errors="coerce", utc=True, format="mixed")
        t = (stamp - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.float64,
                                                                            na_value=np.nan)
        time_unit = "s"
    ok = np.isfinite(t)
    if ok.sum() < 2:
        raise InputError(path, f"time column {tc!r} holds fewer than 2 numbers.",
                         "Pass time_column=None (--time-column none) with sfreq.")
    if not ok.all():
        t = np.interp(np.arange(len(t)), np.flatnonzero(ok), t[ok])
        warnings.warn(f"{path}: {int((~ok).sum())} missing timestamp(s) in {tc!r}, "
                      "interpolated from the row order.")
    if time_unit == "auto":
        m = re.search(r"(ms|us)\W*$", tc, re.I)
        big = np.median(np.abs(t))                        # Unix time in ms or µs
        time_unit = m.group(1).lower() if m else ("us" if big > 1e14 else
                                                  "ms" if big > 1e11 else "s")
    return t * TIME_UNITS[time_unit], time_unit


def _estimate_rate(t: np.ndarray, tc: str, path: str) -> float:
    if np.median(np.diff(t)) < 0:                 # rows that run backwards: place_samples
        t = t[::-1]                               # refuses them, or warns (timing="rows")
    est = 1.0 / np.median(np.diff(t))
    if np.isfinite(est) and est > 0:              # refine: intervals are often quantized
        est = _clock_rate(_dejitter(t, est)[1], est)
    if not np.isfinite(est) or est <= 0:
        raise InputError(path, f"cannot estimate the sampling rate from {tc!r}.",
                         "Pass sfreq (--sfreq HZ).")
    sfreq = float(round(est)) if abs(est - round(est)) <= 0.005 * est else round(est, 3)
    warnings.warn(f"{path}: sampling rate estimated from the timestamps as {sfreq:g} Hz; "
                  "pass sfreq (--sfreq) to set it.")
    return sfreq


def _fill(x: np.ndarray, pos: np.ndarray, sfreq: float, max_gap, path: str, details: dict):
    """Samples on the grid ``pos[first valid]..pos[last valid]``: NaN rows at the ends
    dropped, missing samples inside (NaN rows, timestamp gaps) linearly interpolated."""
    valid = np.isfinite(x).all(axis=1)
    if not valid.any():
        raise InputError(path, f"no row has a number in every channel column "
                         f"({details['channels']}).", "Check the file and the channels "
                         "option.")
    pv = pos[valid]
    first, last = int(pv[0]), int(pv[-1])
    missing = np.diff(pv) - 1
    longest = float(missing.max() / sfreq) if len(missing) else 0.0
    n_nan = int((~valid).sum())
    edge = int((pos < first).sum() + (pos > last).sum())
    filled = int(last - first + 1 - valid.sum())
    details.update(nan_rows={"count": n_nan, "trimmed_at_ends": edge}, filled_samples=filled,
                   longest_gap_s=longest)
    if max_gap is not None and longest > max_gap + 0.5 / sfreq:
        after = int(np.flatnonzero(valid)[np.argmax(missing)]) + 1
        raise InputError(path, f"{longest:.3f} s of samples are missing after data row "
                         f"{after} (missing timestamps or NaN rows; {filled} samples missing "
                         f"in all), longer than max_gap={max_gap:g} s.",
                         "Split the recording at the gap, or raise max_gap (--max-gap) to "
                         "interpolate across it.")
    if edge:
        warnings.warn(f"{path}: {edge} row(s) without numbers at the start or end "
                      "(a truncated last line?) dropped.")
    if not filled:
        return x[valid], first, last
    warnings.warn(f"{path}: {filled} missing sample(s) filled by linear interpolation "
                  f"({n_nan - edge} NaN row(s), "
                  f"{details['timing'].get('timestamp_missing_samples', 0)} from gaps in the "
                  f"timestamps; longest {longest:.3f} s).")
    grid = np.arange(first, last + 1)
    return np.column_stack([np.interp(grid, pv, col) for col in x[valid].T]), first, last


def _annotations(df, mk, pos, first, last, sfreq, path, details):
    """Marker events -> ``mne.Annotations`` on the output grid."""
    import mne

    onsets, durations, descs, dropped = [], [], [], 0
    for r, length, code, _col in _marker_events(df, mk):
        p = int(pos[r]) - first
        if p < 0 or p > last - first:
            dropped += 1
            continue
        end = int(pos[min(r + length, len(pos) - 1)]) - first if length > 1 else p
        onsets.append(p / sfreq)
        durations.append(max(0, end - p) / sfreq)
        descs.append(code)
    if dropped:
        warnings.warn(f"{path}: {dropped} marker(s) on dropped rows at the ends; left out.")
    codes, counts = np.unique(np.asarray(descs, dtype=str), return_counts=True)
    details["marker_counts"] = dict(zip(codes.tolist(), counts.tolist()))
    return mne.Annotations(onsets, durations, descs)


def read_table(path, montage: str | None = "standard_1005", **opts):
    """Read one table recording; returns ``(raw, details)``.

    ``raw`` is an ``mne.io.RawArray`` in volts with one EEG channel per channel column,
    at the nominal rate, with an annotation per marker event; ``details`` records the
    columns, unit, timing measurements and what was done (for ``meta.json``).
    ``opts`` are the table options of :data:`TABLE_DEFAULTS` (module docstring);
    ``montage`` names the channel set that auto-detection matches column names against.
    Files that cannot be used raise :class:`InputError` naming the file and the fix.
    """
    import mne

    o = validate_table_options(opts)
    path = str(path)
    if not Path(path).is_file():
        raise InputError(path, "no such file.", "Check the path.")
    skip, sep, fields, header = _sniff(path, o["sep"], o["comment"])
    df = _read_frame(path, skip, sep, fields, header["decimal"])
    cols = _columns(df, o, montage, path)
    tc, mapping, mk = cols["time"], cols["channels"], cols["markers"]
    device = _device(list(mapping.values()))
    unit, unit_source = _unit(o, list(mapping), header.get("unit"), device, path)
    details: dict = {"columns": list(df.columns), "sep": sep, "comment_lines": skip,
                     "time_column": tc, "channels": mapping, "marker_columns": mk,
                     "ignored_columns": cols["ignored"], "device": device, "unit": unit,
                     "unit_source": unit_source, "clock": None}
    sfreq, details["sfreq_source"] = _nominal_rate(o, header, device, tc, list(df.columns),
                                                   path)
    if tc is not None:  # a packet written twice: rows equal to an earlier one, time included
        dup = df.duplicated().to_numpy()
        if dup.any():
            warnings.warn(f"{path}: {int(dup.sum())} row(s) repeat an earlier row exactly "
                          "(timestamp included); dropped.")
            df = df.loc[~dup].reset_index(drop=True)
        details["duplicate_rows_dropped"] = int(dup.sum())
    x = np.empty((len(df), len(mapping)))
    text_cells = {}
    for j, c in enumerate(mapping):
        x[:, j], bad = _numeric(df[c])
        if bad:
            text_cells[c] = bad
    if text_cells:
        warnings.warn(f"{path}: cells that are not numbers in {text_cells} (column: count); "
                      "treated as missing.")
    details["text_cells"] = text_cells
    if tc is not None:
        t, details["time_unit"] = _timestamps(df, tc, o["time_unit"], path)
        details["clock"] = "unix" if 1e8 < t[0] < 4.2e9 else "device"
        if sfreq is None:
            sfreq = _estimate_rate(t, tc, path)
        pos, details["timing"] = place_samples(
            t, sfreq, timing=o["timing"], max_timing_error=o["max_timing_error"],
            rate_tolerance=o["rate_tolerance"], path=path)
    else:
        t, pos = None, np.arange(len(df))
        details["timing"] = {"method": "rows", "n_rows": len(df)}
    details["sfreq"] = sfreq
    data, first, last = _fill(x, pos, sfreq, o["max_gap"], path, details)
    bad = implausible_amplitudes(data.T * (UNIT_VOLTS[unit] / 1e-6), list(mapping.values()),
                                 sfreq)                                    # µV
    if bad:
        warnings.warn(amplitude_warning(path, bad, unit, f"The unit {unit!r} came from the "
                                        f"{unit_source}; check it, and pass the right one "
                                        "as unit (--unit uV|mV|V|nV).", len(mapping)))
    ann = _annotations(df, mk, pos, first, last, sfreq, path, details)
    info = mne.create_info(list(mapping.values()), sfreq, "eeg")
    raw = mne.io.RawArray(data.T * UNIT_VOLTS[unit], info, verbose="error")     # volts
    if details["clock"] == "unix":
        raw.set_meas_date(datetime.fromtimestamp(float(t[np.argmax(pos >= first)]),
                                                 timezone.utc))
    raw.set_annotations(ann)
    return raw, details
