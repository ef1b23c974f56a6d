"""EEG/MEG recordings -> sequence store.

Inputs: anything ``mne.io.read_raw`` reads (EDF, BDF, GDF, FIF, BrainVision, EEGLAB, CNT,
...), BIDS folders through ``mne-bids``, CSV/TSV/text tables from headsets such as Muse,
OpenBCI or LSL recorders (:mod:`pipelines.tabular`: time, channel and marker columns;
the table options are listed there), and the PhysioNet EEGBCI layout of
``mne.datasets.eegbci`` (:func:`preprocess_eegbci`).

Steps, in this order, each optional and recorded in ``meta.json``:

1. ``types``: set EOG/ECG/EMG/stim channel types from names (``EOG``, ``ECG``, ...).
2. ``picks``: keep ``"eeg"`` (default), ``"meg"``, ``"mag"``, ``"grad"``, ``"data"`` or a
   list of channel names.
3. ``rename``: normalise names onto the montage's (``Fc5.`` -> ``FC5``,
   ``EEG Fp1-REF`` -> ``Fp1``, ``T3`` -> ``T7``...).
4. ``montage``: standard montage name (default ``standard_1005``); channels the montage
   does not know raise an error unless ``on_missing="warn"|"ignore"``.
5. ``bads``: channels to mark bad (a list, ``"auto"`` = flat + LOF outliers via
   ``mne.preprocessing.find_bad_channels_lof``, or None); ``interpolate`` them
   (spherical splines, ``raw.interpolate_bads``).
6. ``channel_set``: map onto a named common set (``"10-20"``, ``"motor"``) or a list of
   names: missing channels are interpolated from the others, extra ones dropped, order
   fixed, so recordings from different caps can be pooled.
7. ``reference``: ``"average"`` (default), None, or channel name(s).
8. ``notch`` (Hz, harmonics added), ``l_freq``/``h_freq`` band-pass, ``resample`` (Hz).
9. ``event_map``: annotations -> events -> labels (``{"T1": "left"}``); default: every
   annotation except ``BAD*``/``EDGE*``, label = description. Annotations the map does
   not name are dropped with a warning that names them. ``min_events``: a recording
   with fewer events than this fails (default 0); one that should have events (an
   ``event_map`` or marker columns) but has fewer than 10 earns a warning.

Units: EEG is stored in microvolts (µV); MEG magnetometers in fT, gradiometers in fT/cm.
EEG channels whose amplitude no scalp EEG has (:mod:`pipelines.channels`: typically
below 0.1 µV or above 10 mV peak-to-peak within 1 s) earn a warning that names them,
their range and the unit to check.
"""

from __future__ import annotations

import glob
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .channels import (ALIASES, amplitude_warning, implausible_amplitudes, make_montage,
                       rename_to_montage)
from .runner import InputError, Item, Recording, RunWarning, run_items, unique_ids
from .tabular import TABLE_DEFAULTS, is_table, read_table, validate_table_options

#: named common channel sets
CHANNEL_SETS = {
    "10-20": ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
              "P7", "P3", "Pz", "P4", "P8", "O1", "O2"],
    "motor": ["FC3", "FCz", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3", "CPz",
              "CP4"],
}
#: fewer events than this, where events are expected, earn a warning
FEW_EVENTS = 10
#: an average reference over fewer EEG channels than this earns a warning
MIN_AVERAGE_REFERENCE = 8
EEG_DEFAULTS = dict(picks="eeg", montage="standard_1005", on_missing="raise", bads=None,
                    interpolate=True, channel_set=None, max_interpolated=0.5,
                    reference="average", notch=None, l_freq=None, h_freq=None,
                    resample=None, event_map=None, min_events=0)

#: scale to stored units, per MNE channel type
UNITS = {"eeg": (1e6, "uV"), "mag": (1e15, "fT"), "grad": (1e13, "fT/cm"),
         "eog": (1e6, "uV"), "ecg": (1e6, "uV"), "emg": (1e6, "uV"), "seeg": (1e6, "uV"),
         "ecog": (1e6, "uV"), "dbs": (1e6, "uV")}

EEG_EXT = (".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".vhdr", ".set", ".cnt", ".mff",
           ".edf+", ".bdf+", ".eeg", ".cdt", ".data", ".nxe", ".lay", ".hdr")

# PhysioNet EEGBCI (eegmmidb): run -> (task, imagery, {annotation: label})
_LR = {"T0": "rest", "T1": "left", "T2": "right"}
_FF = {"T0": "rest", "T1": "fists", "T2": "feet"}
EEGBCI_RUNS = {
    1: ("baseline_eyes_open", False, {"T0": "rest"}),
    2: ("baseline_eyes_closed", False, {"T0": "rest"}),
    **{r: ("left_right_fist", False, _LR) for r in (3, 7, 11)},
    **{r: ("left_right_fist", True, _LR) for r in (4, 8, 12)},
    **{r: ("fists_feet", False, _FF) for r in (5, 9, 13)},
    **{r: ("fists_feet", True, _FF) for r in (6, 10, 14)},
}


def _validate_steps(steps: dict) -> dict:
    unknown = set(steps) - set(EEG_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown EEG step parameter(s) {sorted(unknown)}; allowed: "
                        f"{sorted(EEG_DEFAULTS)}")
    s = {**EEG_DEFAULTS, **steps}
    if isinstance(s["picks"], str) and s["picks"] not in ("eeg", "meg", "mag", "grad", "data"):
        raise ValueError(f"picks must be 'eeg', 'meg', 'mag', 'grad', 'data' or a list of "
                         f"channel names, got {s['picks']!r}")
    if s["on_missing"] not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_missing must be 'raise', 'warn' or 'ignore', got "
                         f"{s['on_missing']!r}")
    if isinstance(s["channel_set"], str) and s["channel_set"] not in CHANNEL_SETS:
        raise ValueError(f"channel_set must be one of {sorted(CHANNEL_SETS)} or a list of "
                         f"names, got {s['channel_set']!r}")
    if s["montage"] is not None:
        make_montage(s["montage"])  # validates the name
    if s["channel_set"] is not None and s["montage"] is None:
        raise ValueError("channel_set needs a montage (channel positions) to interpolate "
                         "missing channels; set montage='standard_1005'.")
    if isinstance(s["bads"], str) and s["bads"] != "auto":
        raise ValueError(f"bads must be None, 'auto' or a list of channel names, got "
                         f"{s['bads']!r}")
    for key in ("l_freq", "h_freq", "resample"):
        v = s[key]
        if v is not None and not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"{key} must be a positive number in Hz or None, got {v!r}")
    if s["l_freq"] and s["h_freq"] and s["l_freq"] >= s["h_freq"]:
        raise ValueError(f"l_freq ({s['l_freq']}) must be below h_freq ({s['h_freq']})")
    if s["notch"] is not None:
        notch = s["notch"] if isinstance(s["notch"], (list, tuple)) else [s["notch"]]
        if not all(isinstance(v, (int, float)) and v > 0 for v in notch):
            raise ValueError(f"notch must be a frequency in Hz (50 or 60) or a list, got "
                             f"{s['notch']!r}")
    if not 0 <= float(s["max_interpolated"]) <= 1:
        raise ValueError(f"max_interpolated must be a fraction in [0, 1], got "
                         f"{s['max_interpolated']!r}")
    if s["event_map"] is not None and not isinstance(s["event_map"], dict):
        raise ValueError(f"event_map must be a dict {{annotation: label}}, got "
                         f"{type(s['event_map']).__name__}")
    if s["event_map"] is not None:  # marker codes may come as numbers: 1 -> "1"
        s["event_map"] = {str(k): str(v) for k, v in s["event_map"].items()}
    if not (isinstance(s["min_events"], (int, np.integer)) and s["min_events"] >= 0):
        raise ValueError(f"min_events must be an integer >= 0, got {s['min_events']!r}")
    return s


# --------------------------------------------------------------------- reading
def _edf_header_records(path: str) -> int | None:
    """Number of data records an EDF/BDF header announces (-1 = unknown), else None."""
    if not str(path).lower().endswith((".edf", ".bdf", ".edf+", ".bdf+")):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(256)
        return int(head[236:244].decode("ascii", "replace").strip())
    except (OSError, ValueError):
        return None


def read_raw(path: str, bids_path=None):
    """Read with MNE; truncation and annotations outside the data become errors."""
    import mne

    if bids_path is None and not Path(path).exists():
        raise InputError(path, "no such file.", "Check the path.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if bids_path is not None:
                from mne_bids import read_raw_bids

                raw = read_raw_bids(bids_path, verbose="warning")
            else:
                raw = mne.io.read_raw(path, preload=False, verbose="warning")
            raw.load_data(verbose="error")
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001
            raise InputError(path, f"cannot be read by MNE ({type(e).__name__}: {e}); the file "
                             "is truncated, corrupt or in an unsupported format.",
                             "Re-export or re-download it (formats: those of "
                             "mne.io.read_raw).") from e
    for w in caught:
        msg = str(w.message)
        low = msg.lower()
        if "annotation" in low and "outside" in low:
            raise InputError(path, f"events outside the recording: {msg.strip()}",
                             "Fix the annotations/events file (onsets must lie within "
                             "the data).")
        if "does not match the file size" in low and (_edf_header_records(path) or -1) > 0:
            raise InputError(path, f"truncated file: the header announces "
                             f"{_edf_header_records(path)} data records but the file holds "
                             "fewer.", "Re-export or re-download it.")
        if issubclass(w.category, (DeprecationWarning, FutureWarning)):
            continue
        warnings.warn(msg)
    if raw.n_times == 0:
        raise InputError(path, "zero-length recording (0 samples).", "Remove it from the inputs.")
    return raw


def _set_types(raw) -> dict:
    mapping = {}
    for ch, kind in zip(raw.ch_names, raw.get_channel_types()):
        if kind != "eeg":
            continue
        u = ch.upper()
        for key, new in (("EOG", "eog"), ("ECG", "ecg"), ("EKG", "ecg"), ("EMG", "emg"),
                         ("RESP", "resp"), ("STATUS", "stim"), ("TRIGGER", "stim")):
            if key in u:
                mapping[ch] = new
                break
    if mapping:
        raw.set_channel_types(mapping, verbose="error")
    return mapping


def _auto_bads(raw) -> list[str]:
    from mne.preprocessing import find_bad_channels_lof

    picks = raw.copy().pick("eeg", exclude="bads")
    data = picks.get_data()
    std = data.std(axis=1)
    flat = [ch for ch, s in zip(picks.ch_names, std) if s < 1e-10]
    lof = []
    if len(picks.ch_names) > 21:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lof = list(find_bad_channels_lof(picks, n_neighbors=20, verbose="error"))
    return sorted(set(flat) | set(lof))


def _map_channel_set(raw, target: list[str], montage, max_interp: float, path: str) -> list[str]:
    """Pick/interpolate onto ``target`` (in order); returns the interpolated names."""
    import mne

    eeg = raw.copy().pick("eeg").ch_names
    have = [t for t in target if t in eeg]
    missing = [t for t in target if t not in eeg]
    pos = montage.get_positions()["ch_pos"]
    unknown = [t for t in missing if t not in pos]
    if unknown:
        raise InputError(path, f"channel_set names {unknown} are not in the montage.",
                         "Use names of the standard 10-05 system.")
    if len(missing) > max_interp * len(target) or not have:
        raise InputError(path, f"only {len(have)} of the {len(target)} channels of the "
                         f"common set are in the recording (missing {missing}); interpolating "
                         f"more than max_interpolated={max_interp:.0%} would be made up.",
                         "Choose a smaller channel_set, raise max_interpolated, or check the "
                         "channel names (rename them to 10-20 names).")
    if missing:
        info = mne.create_info(missing, raw.info["sfreq"], "eeg")
        extra = mne.io.RawArray(np.zeros((len(missing), raw.n_times)), info, verbose="error")
        extra.set_meas_date(raw.info["meas_date"])
        extra.set_montage(mne.channels.make_dig_montage(
            ch_pos={m: pos[m] for m in missing}, coord_frame="head"), verbose="error")
        raw.add_channels([extra], force_update_info=True)
        raw.set_montage(montage, on_missing="ignore", verbose="error")
        raw.info["bads"] = list(missing)
        raw.interpolate_bads(reset_bads=True, verbose="error")
    raw.pick(target)
    return missing


def _events(raw, event_map: dict | None, path: str) -> tuple[pd.DataFrame, int]:
    ann = raw.annotations
    n = raw.n_times
    sf = raw.info["sfreq"]
    offset = raw.first_time if ann.orig_time is not None else 0.0
    rows, dropped, unknown = [], 0, set()
    for onset, dur, desc in zip(ann.onset, ann.duration, ann.description):
        if event_map is not None:
            if desc not in event_map:
                dropped += 1
                if not desc.upper().startswith(("BAD", "EDGE")):
                    unknown.add(desc)
                continue
            label = event_map[desc]
        else:
            if desc.upper().startswith(("BAD", "EDGE")):
                continue
            label = desc
        o = int(round((onset - offset) * sf))
        d = int(round(dur * sf))
        if o < 0 or o >= n or o + d > n + 1:
            raise InputError(path, f"event {desc!r} at {onset - offset:.3f} s (duration "
                             f"{dur:.3f} s) lies outside the recording (0 to {n / sf:.3f} s).",
                             "Fix the annotations/events file.")
        rows.append({"onset": o, "duration": d, "label": str(label), "annotation": str(desc)})
    if unknown:
        warnings.warn(f"{path}: annotations/marker codes {sorted(unknown)} are not in "
                      f"event_map {event_map}; their {dropped} event(s) were dropped.")
    ev = pd.DataFrame(rows, columns=["onset", "duration", "label", "annotation"])
    return ev, dropped


def _check_amplitudes(raw, path: str) -> None:
    """Warn about EEG channels whose amplitude no scalp EEG has (``pipelines.channels``)."""
    import mne

    picks = mne.pick_types(raw.info, eeg=True, exclude=())
    if len(picks) == 0:
        return
    bad = implausible_amplitudes(raw.get_data(picks=picks) * 1e6,             # (C, T) µV
                                 [raw.ch_names[i] for i in picks], raw.info["sfreq"])
    if bad:
        warnings.warn(amplitude_warning(
            path, bad, None, "MNE scales each channel by the unit the file declares (EDF/BDF: "
            "the physical dimension and range in the header; BrainVision: the .vhdr; FIF: "
            "the channel's unit); check that declaration, fix it or re-export the file.",
            len(picks)))


def process_raw(path: str, steps: dict, row: dict | None = None, bids_path=None,
                drop_first_samples: int = 0, table: dict | None = None, raw=None,
                reference_is_default: bool = False) -> Recording:
    """Read one recording and run the steps; returns a :class:`Recording` (µV).

    ``table``: the options of :func:`pipelines.tabular.read_table` for a CSV/TSV/text
    recording (then ``details["table"]`` records what was read and how). ``raw``: an
    ``mne.io.Raw`` read already (e.g. by MOABB's loader), processed in place instead of
    reading ``path``, which then only names the recording in messages.
    ``reference_is_default``: ``steps["reference"]`` is the pipeline's default, not the
    user's choice; then an average reference over fewer than
    :data:`MIN_AVERAGE_REFERENCE` EEG channels earns a :class:`~pipelines.runner.RunWarning`
    (reported once per run) instead of a warning about this file.
    """
    import mne

    details: dict = {}
    if raw is not None:
        raw.load_data(verbose="error")
    elif table is not None:
        raw, details["table"] = read_table(path, montage=steps["montage"], **table)
    else:
        raw = read_raw(path, bids_path=bids_path)
    data0 = raw.get_data()
    bad = ~np.isfinite(data0)
    if bad.any():
        chans = [raw.ch_names[i] for i in np.flatnonzero(bad.any(axis=1))]
        raise InputError(path, f"{int(bad.sum())} non-finite values (NaN/inf) in channel(s) "
                         f"{chans[:10]}.", "Fix the file or drop those channels.")
    del data0
    details["types_from_names"] = _set_types(raw)
    picks = steps["picks"]
    try:
        if isinstance(picks, str):
            raw.pick(picks, exclude=())
        else:
            raw.pick(list(picks))
    except ValueError as e:
        raise InputError(path, f"picks={picks!r}: {e}", f"Channels here: "
                         f"{raw.ch_names[:20]}... Use picks='data' or a list.") from e
    if table is None:   # tables are checked by read_table, which knows the file's unit
        _check_amplitudes(raw, path)
    kinds = set(raw.get_channel_types())
    modality = "meg" if kinds & {"mag", "grad"} and "eeg" not in kinds else "eeg"
    has_eeg = "eeg" in kinds
    montage = None
    if steps["montage"] and has_eeg:
        montage = make_montage(steps["montage"])
        details["renamed"] = rename_to_montage(raw, montage.ch_names)
        known = set(montage.ch_names)
        unknown = [c for c, k in zip(raw.ch_names, raw.get_channel_types())
                   if k == "eeg" and c not in known]
        if unknown and steps["on_missing"] == "raise":
            raise InputError(path, f"unknown channel names {unknown[:15]}"
                             f"{' ...' if len(unknown) > 15 else ''}: not in montage "
                             f"{steps['montage']!r}.",
                             "Rename them to 10-05 names, drop them (picks=[...]), or pass "
                             "on_missing='warn' (--on-missing warn) to keep them without "
                             "positions.")
        if unknown:
            details["unknown_channels"] = unknown
            if steps["on_missing"] == "warn":
                warnings.warn(f"{path}: channels {unknown} are not in montage "
                              f"{steps['montage']!r}; kept without positions.")
        raw.set_montage(montage, on_missing="ignore", verbose="error")
    bads = list(raw.info["bads"])
    if steps["bads"] == "auto" and has_eeg:
        bads = sorted(set(bads) | set(_auto_bads(raw)))
    elif isinstance(steps["bads"], (list, tuple)):
        missing = [b for b in steps["bads"] if b not in raw.ch_names]
        if missing:
            warnings.warn(f"{path}: bads {missing} are not channels of this recording.")
        bads = sorted(set(bads) | {b for b in steps["bads"] if b in raw.ch_names})
    raw.info["bads"] = bads
    details["bads"] = bads
    if bads and steps["interpolate"]:
        if montage is None:
            raise InputError(path, f"cannot interpolate bad channels {bads} without "
                             "channel positions.", "Set a montage or interpolate=False.")
        raw.interpolate_bads(reset_bads=True, verbose="error")
    elif bads:
        raw.drop_channels(bads)
    if steps["channel_set"] is not None:
        target = (CHANNEL_SETS[steps["channel_set"]] if isinstance(steps["channel_set"], str)
                  else list(steps["channel_set"]))
        details["interpolated_for_channel_set"] = _map_channel_set(
            raw, target, montage, float(steps["max_interpolated"]), path)
    ref = steps["reference"]
    n_eeg = len(mne.pick_types(raw.info, eeg=True, exclude="bads"))
    if ref == "average" and 0 < n_eeg < MIN_AVERAGE_REFERENCE:
        few = (f"average reference over only {n_eeg} EEG channels: their mean is not close "
               "to zero potential and mixes the channels' signals")
        if reference_is_default:
            warnings.warn(RunWarning(
                f"{few}. reference='average' is this pipeline's default; pass reference=None "
                "(--reference none) to keep the recordings' own reference, or "
                "reference='average' (--reference average) to choose it."))
        else:
            warnings.warn(f"{path}: {few}; consider reference=None (--reference none) to "
                          "keep the recording's own reference.")
    if ref is not None and has_eeg:
        raw.set_eeg_reference("average" if ref == "average" else ref, projection=False,
                              verbose="error")
    sf = raw.info["sfreq"]
    if steps["notch"] is not None:
        base = steps["notch"] if isinstance(steps["notch"], (list, tuple)) else [steps["notch"]]
        freqs = sorted({f * k for f in base for k in range(1, 100) if f * k < sf / 2})
        if freqs:
            raw.notch_filter(freqs, picks="data", verbose="error")
    if steps["l_freq"] or steps["h_freq"]:
        h = steps["h_freq"]
        if h is not None and h >= sf / 2:
            raise InputError(path, f"h_freq={h} Hz is at or above the Nyquist frequency "
                             f"{sf / 2} Hz of this recording.", "Lower h_freq or resample.")
        raw.filter(steps["l_freq"], h, picks="data", verbose="error")
    if steps["resample"] and abs(steps["resample"] - sf) > 1e-9:
        raw.resample(steps["resample"], verbose="error")
    events, n_unmapped = _events(raw, steps["event_map"], path)
    details["unmapped_annotations"] = n_unmapped
    if len(events) < steps["min_events"]:
        raise InputError(path, f"only {len(events)} event(s) in {raw.times[-1]:.1f} s (by "
                         f"label: {events.label.value_counts().to_dict()}), fewer than "
                         f"min_events={steps['min_events']}: the markers were not recorded "
                         "for most of the run, or the event_map does not match the codes.",
                         "Check the marker column and event_map, or lower min_events "
                         "(--min-events) to keep the recording.")
    expected = steps["event_map"] is not None or bool(details.get("table", {}).get(
        "marker_columns"))
    if expected and len(events) < FEW_EVENTS:
        warnings.warn(f"{path}: only {len(events)} event(s) in {raw.times[-1]:.1f} s: a run "
                      "with almost no events.")
    types = raw.get_channel_types()
    scale = np.array([UNITS.get(t, (1.0, "SI"))[0] for t in types])
    units = [UNITS.get(t, (1.0, "SI"))[1] for t in types]
    data = (raw.get_data() * scale[:, None]).T                     # (T, C)
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise InputError(path, f"nothing left after picking (shape {data.shape}).",
                         "Check picks and channel types.")
    r = {"modality": modality, "sfreq": float(raw.info["sfreq"]), "source": str(path)}
    r.update(row or {})
    return Recording(data, list(raw.ch_names), r, [str(path)], events=events,
                     channel_units=units, details=details)


# ----------------------------------------------------------------------- inputs
def _bids_items(root: Path) -> list[tuple[str, object, dict]]:
    from mne_bids import find_matching_paths

    out = []
    for dt in ("eeg", "meg"):
        paths = find_matching_paths(root, datatypes=dt, suffixes=dt,
                                    extensions=[".edf", ".bdf", ".vhdr", ".set", ".fif",
                                                ".gdf", ".cnt", ".mff", ".con", ".sqd",
                                                ".ds", ".eeg"] if dt == "eeg" else None)
        for bp in paths:
            if dt == "meg" and bp.extension in (".json", ".tsv"):
                continue
            row = {"subject": bp.subject, "session": bp.session, "run": bp.run,
                   "task": bp.task, "dataset": root.name}
            out.append((str(bp.fpath), bp, row))
    if not out:
        raise FileNotFoundError(f"{root}: no EEG/MEG recordings found in this BIDS folder "
                                "(sub-*/[ses-*/]eeg|meg/*_eeg|meg.*).")
    return out


#: PhysioNet's file names (EEG Motor Movement/Imagery: S001R04.edf = subject 1, run 4)
PHYSIONET_NAME = re.compile(r"^S(\d{3})R(\d{2})$", re.IGNORECASE)


def _file_row(path: str) -> dict:
    """Subject, session, run and task of a recording from its name: BIDS entities
    (``sub-01_ses-2_task-x_run-3``); PhysioNet's ``S###R##`` (subject ``S###``, run
    ``##``); else subject/session from folders named ``subject2``/``sub-02``/``session1``/
    ``ses-1``. When none names the subject it is None (unknown): the recording is then a
    group of its own (see :func:`subjects_unknown`)."""
    name = Path(path).name
    stem = name.split(".")[0]
    m = PHYSIONET_NAME.match(stem)
    if m:
        return {"subject": f"S{m.group(1)}", "session": None, "run": str(int(m.group(2))), "task": None,
                "dataset": "eeg"}
    ents = dict(re.findall(r"(?:^|_)([a-zA-Z]+)-([a-zA-Z0-9]+)", name))
    folders = {}
    for part in Path(path).parent.parts[-4:]:
        m = (re.fullmatch(r"(sub|ses)(?:ject|sion)?[-_]?(\d+)", part, re.I)
             or re.fullmatch(r"(sub|ses)-([A-Za-z0-9]+)", part))
        if m:
            folders[m.group(1).lower()] = m.group(2)
    return {"subject": ents.get("sub") or folders.get("sub"),
            "session": ents.get("ses") or folders.get("ses"),
            "run": ents.get("run"), "task": ents.get("task"), "dataset": "eeg"}


def subjects_unknown(entries) -> str | None:
    """A warning text when some ``(path, _, row)`` entries name no subject, else None."""
    unknown = [p for p, _, row in entries if not row.get("subject")]
    if not unknown:
        return None
    return (f"{len(unknown)} recording(s) name no subject (e.g. {unknown[0]}): the subject is unknown, so each is a "
            "group of its own and leave-subject-out cannot keep one person's recordings together. Name the files "
            "in BIDS style (sub-01_ses-1_run-1_eeg.edf) or PhysioNet's (S001R04.edf), or put them in subject "
            "folders (sub-01/, subject1/).")


def _item_id(row: dict, path: str) -> str:
    if row.get("subject") and re.search(r"sub-", Path(path).name):
        parts = [f"sub-{row['subject']}"] + [f"{k}-{row[v]}" for k, v in
                                             (("ses", "session"), ("task", "task"),
                                              ("run", "run")) if row.get(v)]
        return "_".join(parts)
    name = Path(path).name
    return re.sub(r"(_raw|_eeg|_meg)?((\.(csv|tsv|txt))+(\.gz)?|\.fif\.gz|\.[A-Za-z0-9+]+)$",
                  "", name)


def _steps_record(steps: dict, table: dict | None = None) -> list[dict]:
    read = {"reader": "mne.io.read_raw / mne_bids.read_raw_bids"}
    if table is not None:
        read = {"reader": read["reader"] + " / pipelines.tabular.read_table (CSV/TSV/TXT)",
                "table": table}
    return [
        {"name": "read", "params": read},
        {"name": "types", "params": {"from_names": ["EOG", "ECG", "EKG", "EMG", "RESP",
                                                    "STATUS", "TRIGGER"]}},
        {"name": "picks", "params": {"picks": steps["picks"]}},
        {"name": "rename", "params": {"aliases": ALIASES}},
        {"name": "montage", "params": {"montage": steps["montage"],
                                       "on_missing": steps["on_missing"]}},
        {"name": "bads", "params": {"bads": steps["bads"], "interpolate": steps["interpolate"],
                                    "method": "spherical spline (mne interpolate_bads)"}},
        {"name": "channel_set", "params": {"channel_set": steps["channel_set"],
                                           "channels": CHANNEL_SETS.get(steps["channel_set"])
                                           if isinstance(steps["channel_set"], str)
                                           else steps["channel_set"],
                                           "max_interpolated": steps["max_interpolated"]}},
        {"name": "reference", "params": {"reference": steps["reference"]}},
        {"name": "notch", "params": {"freqs": steps["notch"]}},
        {"name": "bandpass", "params": {"l_freq": steps["l_freq"], "h_freq": steps["h_freq"],
                                        "method": "mne fir (default)"}},
        {"name": "resample", "params": {"sfreq": steps["resample"]}},
        # min_events only when set, so stores made before it existed keep their hash
        {"name": "events", "params": {"event_map": steps["event_map"],
                                      **({"min_events": steps["min_events"]}
                                         if steps["min_events"] else {})}},
        {"name": "units", "params": {"eeg": "uV", "mag": "fT", "grad": "fT/cm",
                                     "dtype": "float32"}},
    ]


def split_options(options: dict) -> tuple[dict, dict]:
    """Split keyword arguments into (EEG steps, table options); checks both."""
    unknown = set(options) - set(EEG_DEFAULTS) - set(TABLE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown EEG step parameter(s) {sorted(unknown)}; allowed: the steps "
                        f"{sorted(EEG_DEFAULTS)} and, for CSV/TSV tables, "
                        f"{sorted(TABLE_DEFAULTS)}")
    table = {k: options.pop(k) for k in list(options) if k in TABLE_DEFAULTS}
    return _validate_steps(options), validate_table_options(table)


def preprocess_eeg(files, out, *, jobs: int = 1, shard=None, overwrite: bool = False,
                   progress: bool = True, **options):
    """EEG/MEG files, globs, BIDS folders or CSV/TSV tables -> a store at ``out`` (µV).

    A folder is read as BIDS when it has ``sub-*`` folders, else as the tables under it.

    ``**options`` are the step parameters of this module's docstring (``picks``,
    ``montage``, ``on_missing``, ``bads``, ``interpolate``, ``channel_set``,
    ``max_interpolated``, ``reference``, ``notch``, ``l_freq``, ``h_freq``, ``resample``,
    ``event_map``, ``min_events``) and, for ``.csv``/``.tsv``/``.txt`` files, the table
    options of :mod:`pipelines.tabular` (``sfreq``, ``time_column``, ``time_unit``,
    ``channels``, ``marker_columns``, ``unit``, ``sep``, ``comment``, ``timing``,
    ``max_timing_error``, ``max_gap``, ``rate_tolerance``). Returns a
    :class:`pipelines.runner.Summary`.
    """
    from neuroconv.data.store import StoreWriter

    steps, table = split_options(dict(options))
    if isinstance(files, (str, Path)):
        files = [files]
    entries = []
    for f in map(str, files):
        paths = sorted(glob.glob(f, recursive=True)) if any(c in f for c in "*?[") else [f]
        if not paths:
            raise FileNotFoundError(f"{f!r}: the pattern matches no file.")
        for p in paths:
            if Path(p).is_dir() and not p.endswith((".ds", ".mff")):
                tables = [] if any(Path(p).glob("sub-*")) else sorted(   # BIDS has .tsv too
                    str(q) for q in Path(p).rglob("*") if is_table(q) and q.is_file())
                entries.extend([(q, None, _file_row(q)) for q in tables] if tables
                               else _bids_items(Path(p)))
            else:
                entries.append((p, None, _file_row(p)))
    unknown = subjects_unknown(entries)
    if unknown:
        warnings.warn(unknown, stacklevel=2)
    ids = unique_ids([_item_id(row, p) for p, _, row in entries], [e[0] for e in entries])
    items = [Item(rid, [p], process_raw,
                  dict(path=p, steps=steps, row=row, bids_path=bp,
                       table=table if bp is None and is_table(p) else None,
                       reference_is_default="reference" not in options))
             for rid, (p, bp, row) in zip(ids, entries)]
    has_tables = any(it.kwargs["table"] is not None for it in items)
    writer = StoreWriter(out, "eeg", _steps_record(steps, table if has_tables else None),
                         overwrite=overwrite)
    return run_items(items, writer, jobs=jobs, shard=shard, progress=progress,
                     description="eeg", extra_meta={"units": {"eeg": "uV", "mag": "fT",
                                                              "grad": "fT/cm"}})


def eegbci_path(data_dir, subject: int, run: int) -> Path | None:
    """Where ``mne.datasets.eegbci`` keeps S{subject}R{run}.edf under ``data_dir``."""
    d = Path(data_dir).expanduser()
    rel = Path("files/eegmmidb/1.0.0") / f"S{subject:03d}" / f"S{subject:03d}R{run:02d}.edf"
    for base in (d / "MNE-eegbci-data", d, d.parent):
        if (base / rel).is_file():
            return base / rel
    for cand in (d / f"S{subject:03d}" / rel.name, d / rel.name):
        if cand.is_file():
            return cand
    return None


def _parse_ints(v, name: str, lo: int, hi: int) -> list[int]:
    if isinstance(v, (int, np.integer)):
        v = [int(v)]
    if isinstance(v, str):
        out = []
        for part in v.replace(" ", ",").split(","):
            if not part:
                continue
            if "-" in part:
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        v = out
    v = [int(x) for x in v]
    bad = [x for x in v if not lo <= x <= hi]
    if bad or not v:
        raise ValueError(f"{name} must be integers in {lo}..{hi} (e.g. '1-3' or [1, 2]), "
                         f"got {bad or v}")
    return sorted(set(v))


def preprocess_eegbci(data_dir, out, subjects=(1,), runs=tuple(range(3, 15)), *,
                      download: bool = False, jobs: int = 1, shard=None,
                      overwrite: bool = False, progress: bool = True, **steps):
    """PhysioNet EEG Motor Movement/Imagery (EEGBCI) -> a sequence store at ``out``.

    Each run is mapped to its task and labels (runs 3/7/11 real left/right fist, 4/8/12
    imagined left/right, 5/9/13 real fists/feet, 6/10/14 imagined fists/feet; T0 = rest,
    T1/T2 = left/right or fists/feet). Manifest columns ``task`` and ``imagery`` say
    which. Files come from ``data_dir`` in the ``mne.datasets.eegbci`` cache layout: the
    folder given to ``mne.datasets.eegbci.load_data`` as ``path`` (holding
    ``MNE-eegbci-data``), or the ``MNE-eegbci-data`` folder itself. Missing ones fail
    unless ``download=True``, which fetches them there through ``load_data``.
    """
    from neuroconv.data.store import StoreWriter

    subjects = _parse_ints(subjects, "subjects", 1, 109)
    runs = _parse_ints(runs, "runs", 1, 14)
    default_reference = "reference" not in steps
    steps = _validate_steps(steps)
    items, pre_failed = [], []
    from .runner import Outcome

    for s in subjects:
        for r in runs:
            rid = f"S{s:03d}R{r:02d}"
            p = eegbci_path(data_dir, s, r)
            if p is None and download:
                from mne.datasets import eegbci

                try:
                    d = Path(data_dir).expanduser()
                    mne_path = d.parent if d.name == "MNE-eegbci-data" else d
                    eegbci.load_data(s, [r], path=str(mne_path), update_path=False)
                except Exception as e:  # noqa: BLE001
                    pre_failed.append(Outcome(rid, "", "failed", f"download failed: {e}"))
                    continue
                p = eegbci_path(data_dir, s, r)
            if p is None:
                pre_failed.append(Outcome(rid, "", "failed", str(InputError(
                    f"{data_dir}/.../S{s:03d}R{r:02d}.edf", "not found in the "
                    "mne.datasets.eegbci layout (MNE-eegbci-data/files/eegmmidb/1.0.0/"
                    "SXXX/SXXXRYY.edf).", "Pass the right --data-dir or --download."))))
                continue
            task, imagery, mapping = EEGBCI_RUNS[r]
            st = dict(steps)
            if st["event_map"] is None:
                st["event_map"] = mapping
            row = {"subject": f"S{s:03d}", "session": None, "run": str(r), "task": task,
                   "imagery": imagery, "site": "eegbci", "dataset": "eegbci"}
            items.append(Item(rid, [str(p)], process_raw, dict(
                path=str(p), steps=st, row=row, reference_is_default=default_reference)))
    rec = _steps_record(steps)
    rec[-2]["params"]["event_map"] = {str(r): EEGBCI_RUNS[r][2] for r in runs} \
        if steps["event_map"] is None else steps["event_map"]
    writer = StoreWriter(out, "eegbci", rec, overwrite=overwrite)
    return run_items(items, writer, jobs=jobs, shard=shard, progress=progress,
                     description="eegbci", pre_failed=pre_failed,
                     extra_meta={"units": {"eeg": "uV"}, "dataset": "eegbci",
                                 "eegbci_runs": {str(r): {"task": t, "imagery": im,
                                                          "labels": m}
                                                 for r, (t, im, m) in EEGBCI_RUNS.items()}})
