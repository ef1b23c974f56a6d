"""NeuroTechX eeg-notebooks recordings (Muse 2016 CSV files) -> a sequence store.

Layout: the ``data/`` folder of the eeg-notebooks repository,
``<experiment>/subject<N>/session<M>/<file>.csv`` (file names such as
``data_2017-02-09-18.12.53.csv`` or ``subject101_session1_recording_2018-11-20-16.45.04.csv``;
some end ``.csv.csv``). Newer releases put ``<site>/<device>/`` folders before
``subject*``; both are found. Each file becomes one recording:

- ``subject`` = N, ``session`` = M, ``run`` = the file's place within its session in
  time order (the date and time in the file name; the name where there is none), so
  ids are stable: ``P300_sub2_ses1_run3``.
- ``task`` = the experiment's short name (``P300``), ``experiment`` = its path
  (``visual/P300``), ``dataset`` = ``"eeg-notebooks"``, ``site`` and ``device`` =
  ``"muse2016"`` (the device folder where the layout has one), ``started`` = the date
  and time in the file name, ``source_sha256`` = the checksum of the CSV file (also in
  ``meta.json``), so a store's recordings are known by content.
- Events come from the marker column (``Marker`` or ``Marker0``) through the
  experiment's marker meanings (:data:`EXPERIMENTS`).

Other files beside the recordings (the cueing task's ``*_behOutput_*.mat`` behaviour
files, ``.DS_Store``, CSV files outside ``subject*`` folders) are passed over; one
warning says how many and of which kinds, and ``meta.json`` records them
(``passed_over``).

Experiments:

- ``visual/P300`` (oddball): 1 = ``non-target``, 2 = ``target``.
- ``visual/N170``: 1 = ``house``, 2 = ``face``.
- ``visual/cueing`` (Posner cueing; markers as pushed by eeg-notebooks'
  ``visual_cueing/cueing.py``): 1 = ``cue_left``, 2 = ``cue_right``; target onsets
  11 = ``target_invalid_left``, 12 = ``target_invalid_right``, 21 = ``target_valid_left``,
  22 = ``target_valid_right`` (the target's side, and whether the cue pointed to it);
  31 = ``response_incorrect``, 32 = ``response_correct``. In the 60 recordings of
  ``../shared/data`` every one of the 2274 cue-target pairs agrees with these names (a
  left cue is followed by 21 or 12, a right cue by 22 or 11), the target follows its cue
  after 1.50-2.02 s, and no file holds a response marker (the task script defines 31/32
  but never sends them). Subjects 101-112, 202-211 and 301-309 are one cohort (the
  first digit is no site or group). The ``Right AUX`` column is left out: it holds no
  consistent electrode here. It is constant in subject 202's two files; in the other 58
  it is uncorrelated with the four EEG channels (largest |r| 0.31, median 0.01, where
  the SSVEP recordings' POz electrode correlates 0.84 with TP9/TP10 through their shared
  Fpz reference); in 41 of them its spectrum is flat (2-4 Hz power over 70-90 Hz power
  below 10, median 3.1 over the 58; the EEG channels' median is 364), in most files of
  subjects 203-211 it drifts slowly with a standard deviation of 40-160 µV.
- ``visual/SSVEP``: 1 = ``30Hz``, 2 = ``20Hz`` (the flicker frequency: 3 s of flicker,
  one every 3.5-3.7 s). The channel set is the headband's four channels plus
  ``Right AUX`` renamed ``POz``: the eeg-notebooks SSVEP analysis reads it as an extra
  electrode at POz, and the files show one. Measured on ``../shared/data`` (1-3 s after
  each onset, Welch power at the flicker frequency over the mean of its neighbours
  +-1 to 1.5 Hz, mean over the trials of that flicker): in subject 1's six runs and
  subject 3's session 3 the AUX column's SNR is 7.7-11.6 at 30 Hz and 10.4-22.7 at
  20 Hz (3.8 and 2.0 in subject 3's session 1, where 60 Hz line noise dominates it),
  against 0.9-3.6 and 0.8-6.7 on TP9, AF7, AF8 and TP10 in those eight runs; in subject
  1's first run it correlates 0.84-0.85 with TP9/TP10 (their shared Fpz reference).
  Without it, CCA at 20/30 Hz (MOABB's ``SSVEP_CCA``, 2 harmonics, no training; 1-30 Hz,
  0.5-3.0 s after each onset) labels 78-91% of each of subject 1's runs right and 47-62%
  (chance) of subject 3's; with it 97-100%, and 85% and 97% in subject 3's sessions 1
  and 3.
  A store keeps one channel set per experiment (the decoders need it), so ``POz`` is in
  every SSVEP recording; a file whose AUX column is no electrode is refused rather than
  stored with a false ``POz``: flat (constant), or clipped (more than
  :data:`AUX_CLIPPED` of its samples at its extreme values). Subject 3's session 2
  (two one-minute runs) is refused so: 16% of its AUX samples sit at -1000/+999.5 µV
  and it shows no SSVEP (SNR 0.0-0.6), where every other file has 0.000%. Pass
  ``channels=["TP9", "AF7", "AF8", "TP10"]`` for a headband-only store that keeps it.

Defaults that differ from :func:`pipelines.eeg.preprocess_eeg`:

- ``reference=None``: the Muse records every channel against Fpz. An average over its
  four electrodes (two frontal, two temporal) is far from zero potential, so it would
  subtract a mix of the other channels' signals from each (a P300 or N170 at TP9/TP10
  leaks into AF7/AF8 and is reduced where it is largest). eeg-notebooks' own analyses
  keep the Fpz reference.
- ``channels=["TP9", "AF7", "AF8", "TP10"]`` (SSVEP: plus ``Right AUX`` as ``POz``, see
  above), ``sfreq=256``, ``unit="uV"``: what the device gives; a file without these
  columns fails.
- ``min_events``: a run with fewer events lost its markers and fails with a message
  (pass ``min_events=0`` to keep it for unlabelled use). P300 and N170: 20 (a stimulus
  every 0.4-0.6 s, about 100 a minute). SSVEP and cueing: 10 (:data:`pipelines.eeg.FEW_EVENTS`,
  the level at which any run earns an "almost no events" warning): a complete
  one-minute SSVEP run holds 16 events, and cueing runs whose task started late in the
  recording (first event after 100-219 s of 239 s) hold 12-16 intact cue-target pairs.

Files with the same bytes as another (a copy in a second session folder) are left out
after the first, as failures with a message naming both, so the same data does not
enter a store twice under two sessions.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np

from .eeg import FEW_EVENTS, _parse_ints, _steps_record, process_raw, split_options
from .runner import InputError, Item, Outcome, Recording, run_items

#: experiment -> marker code -> label
EXPERIMENTS = {
    "visual/P300": {"1": "non-target", "2": "target"},
    "visual/N170": {"1": "house", "2": "face"},
    "visual/cueing": {"1": "cue_left", "2": "cue_right",
                      "11": "target_invalid_left", "12": "target_invalid_right",
                      "21": "target_valid_left", "22": "target_valid_right",
                      "31": "response_incorrect", "32": "response_correct"},
    "visual/SSVEP": {"1": "30Hz", "2": "20Hz"},
}
MUSE_CHANNELS = ["TP9", "AF7", "AF8", "TP10"]
DEFAULTS = dict(reference=None, channels=MUSE_CHANNELS, sfreq=256.0, unit="uV", min_events=20)
#: experiment -> defaults that differ from :data:`DEFAULTS` (see the module docstring)
EXPERIMENT_DEFAULTS = {
    "visual/SSVEP": dict(channels={**{c: c for c in MUSE_CHANNELS}, "Right AUX": "POz"},
                         min_events=FEW_EVENTS),
    "visual/cueing": dict(min_events=FEW_EVENTS),
}
#: an auxiliary column read as an electrode is refused when more than this fraction of
#: its samples sit at its extreme values (clipped at the amplifier's range)
AUX_CLIPPED = 0.01
_AUX = re.compile(r"aux", re.I)
_RECORDING = re.compile(r"\.(csv|tsv|txt)$", re.I)
_STARTED = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})\.(\d{2})\.(\d{2})")
_DEVICES = ("muse2016", "muse2", "muses", "muse", "ganglion", "cyton", "notion1", "notion2",
            "crown", "unicorn", "brainbit", "freeeeg32")


def _experiment(experiment: str, event_map) -> str:
    exp = experiment.strip("/")
    full = [e for e in EXPERIMENTS if exp.lower() in (e.lower(), e.split("/")[1].lower())]
    exp = full[0] if full else exp
    if exp not in EXPERIMENTS and event_map is None:
        raise ValueError(f"experiment must be one of {sorted(EXPERIMENTS)} (or another "
                         f"eeg-notebooks experiment folder together with an event_map "
                         f"giving its marker meanings), got {experiment!r}")
    return exp


def experiment_dir(data_dir, experiment: str) -> Path:
    """The folder of ``experiment`` under ``data_dir`` (the eeg-notebooks ``data``
    folder, the repository, a folder holding ``eeg-notebooks``, or the experiment's own
    folder)."""
    d = Path(data_dir).expanduser()
    tried = [d / experiment, d / Path(experiment).name, d / "eeg-notebooks" / experiment,
             d / "data" / experiment, d / "eeg-notebooks" / "data" / experiment]
    for cand in tried:
        if cand.is_dir() and any(cand.rglob("subject*")):
            return cand
    if d.is_dir() and (d.name == Path(experiment).name or any(d.glob("subject*"))):
        return d                                      # the experiment's own folder
    tried.append(d)
    raise FileNotFoundError(f"no eeg-notebooks {experiment} recordings (subject*/session*/"
                            f"*.csv) under {d}; looked in {[str(c) for c in tried]}. Pass "
                            "the folder that holds the experiment folders as data_dir.")


def _started(name: str) -> datetime | None:
    m = _STARTED.search(name)
    if not m:
        return None
    try:
        return datetime(*map(int, m.groups()))
    except ValueError:
        return None


def _kind(path: Path) -> str:
    """What a non-recording file is, for the passed-over report: ``*.mat``,
    ``.DS_Store``, ``*.csv (outside subject folders)``..."""
    name = path.name
    if _RECORDING.search(name):
        return f"*{path.suffix.lower()} (outside subject folders)"
    if name.startswith(".") or not path.suffix:
        return name
    return f"*{path.suffix.lower()}"


def scan_experiment(data_dir, experiment: str = "visual/P300") -> tuple[list[dict], list[Path]]:
    """The recordings of ``experiment`` (as :func:`experiment_files` returns them) and
    the other files found under its folder, which are not recordings (behaviour
    ``.mat`` files, ``.DS_Store``, tables outside ``subject*`` folders), sorted."""
    root = experiment_dir(data_dir, experiment)
    found, others = [], []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).parts
        subj = [re.fullmatch(r"subject_?(\d+)", x, re.I) for x in rel[:-1]]
        sess = [re.fullmatch(r"session_?(\d+)", x, re.I) for x in rel[:-1]]
        subj, sess = [m for m in subj if m], [m for m in sess if m]
        if not (subj and _RECORDING.search(p.name)):
            others.append(p)
            continue
        device = next((x for x in rel[:-1] if x.lower() in _DEVICES), "muse2016")
        found.append({"path": p, "subject": str(int(subj[-1].group(1))),
                      "session": str(int(sess[-1].group(1))) if sess else "1",
                      "started": _started(p.name), "device": device})
    by_session: dict = {}
    for f in found:
        by_session.setdefault((f["device"], f["subject"], f["session"]), []).append(f)
    for files in by_session.values():
        files.sort(key=lambda f: (f["started"] is None, f["started"] or datetime.min,
                                  f["path"].name))
        for i, f in enumerate(files, 1):
            f["run"] = str(i)
    found = sorted(found, key=lambda f: (int(f["subject"]), int(f["session"]), int(f["run"]),
                                         f["device"]))
    return found, others


def experiment_files(data_dir, experiment: str = "visual/P300") -> list[dict]:
    """Every recording of ``experiment``: path, subject, session, run, started, device.

    Sorted by subject, session and run; ``run`` numbers the files of a session from 1 in
    time order. Files that are not recordings are left out (:func:`scan_experiment`
    lists them).
    """
    return scan_experiment(data_dir, experiment)[0]


def _subject_of(path: Path, root: Path) -> str | None:
    for part in path.relative_to(root).parts[:-1]:
        m = re.fullmatch(r"subject_?(\d+)", part, re.I)
        if m:
            return str(int(m.group(1)))
    return None


def passed_over_note(others: list[Path], root) -> tuple[str, dict]:
    """One line on the non-recording files passed over, and the record for meta.json
    (``{"count": n, "kinds": {kind: n}, "files": [paths relative to root]}``)."""
    kinds = Counter(_kind(p) for p in others)
    by_count = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    listing = ", ".join(f"{n} {k}" for k, n in by_count)
    line = (f"{root}: passed over {len(others)} file(s) that are not recordings ({listing}); "
            "only subject*/session*/*.csv (.tsv, .txt) files are read.")
    return line, {"count": len(others), "kinds": dict(sorted(kinds.items())),
                  "files": [str(p.relative_to(root)) for p in others]}


def _aux_columns(channels) -> list[tuple[str, str]]:
    """(column, channel name) of the auxiliary columns a ``channels`` option reads as
    electrodes (``{"Right AUX": "POz"}``)."""
    if isinstance(channels, dict):
        return [(c, n) for c, n in channels.items() if _AUX.search(c)]
    if isinstance(channels, (list, tuple)):
        return [(c, c) for c in channels if _AUX.search(c)]
    return []


def check_aux(path, columns: list[tuple[str, str]], sep: str = ",") -> dict:
    """Check that each auxiliary column read as an electrode holds one.

    Refuses (:class:`~pipelines.runner.InputError`) a column that is flat (constant) or
    clipped (more than :data:`AUX_CLIPPED` of its samples at its minimum or maximum, the
    amplifier's range). Returns ``{channel: {"sd": µV, "at_extremes": fraction}}`` for the
    store's details. ``sep``: the table's separator (``"auto"`` reads commas).
    """
    import pandas as pd

    names = [c for c, _ in columns]
    try:
        table = pd.read_csv(path, usecols=names, sep="," if sep in (None, "auto") else sep)
    except ValueError as e:
        raise InputError(path, f"auxiliary column(s) {names} read as electrodes "
                         f"({[n for _, n in columns]}) not found: {e}.",
                         "Check the file, or pass channels=[...] without them.") from e
    out = {}
    for col, name in columns:
        v = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v)]
        sd = float(v.std()) if len(v) else 0.0
        fix = ("This experiment's channel set reads it as an electrode: pass channels="
               f"{MUSE_CHANNELS} for a store without {name} that keeps this file.")
        if len(v) == 0 or sd == 0.0:
            raise InputError(path, f"column {col!r} ({name}) is flat: no electrode was "
                             "connected to it in this recording.", fix)
        lo, hi = v.min(), v.max()
        frac = float(np.mean((v == lo) | (v == hi)))
        if frac > AUX_CLIPPED:
            raise InputError(path, f"column {col!r} ({name}) is clipped: {100 * frac:.1f}% "
                             f"of its samples sit at its extremes {lo:g}/{hi:g} (more than "
                             f"{100 * AUX_CLIPPED:g}%); it holds no usable EEG.", fix)
        out[name] = {"column": col, "sd": round(sd, 3), "at_extremes": round(frac, 6)}
    return out


def process_notebook_file(path: str, steps: dict, row: dict, table: dict,
                          reference_is_default: bool = False) -> Recording:
    """One eeg-notebooks CSV -> :class:`~pipelines.runner.Recording`: the auxiliary
    columns read as electrodes are checked (:func:`check_aux`), then
    :func:`pipelines.eeg.process_raw` runs the EEG steps."""
    aux = _aux_columns(table.get("channels"))
    checked = check_aux(path, aux, table.get("sep", "auto")) if aux else None
    rec = process_raw(path, steps=steps, row=row, table=table,
                      reference_is_default=reference_is_default)
    if checked:
        rec.details["aux_check"] = checked
    return rec


def preprocess_eeg_notebooks(data_dir, out, experiment: str = "visual/P300", subjects=None,
                             *, jobs: int = 1, shard=None, overwrite: bool = False,
                             progress: bool = True, **options):
    """eeg-notebooks Muse recordings of one experiment -> a sequence store at ``out``.

    ``experiment``: ``"visual/P300"``, ``"visual/N170"``, ``"visual/cueing"`` or
    ``"visual/SSVEP"`` (or the short names ``"P300"``, ``"cueing"``...; another
    experiment folder needs an ``event_map``). ``subjects``: ``None`` (all), an int, a
    list, or ``"2-4"``. ``**options``: the EEG steps and table options of
    :func:`pipelines.eeg.preprocess_eeg`; the defaults here are this module's
    :data:`DEFAULTS` (no re-referencing, the four Muse channels at 256 Hz in µV,
    ``min_events=20``), the experiment's own (:data:`EXPERIMENT_DEFAULTS`: SSVEP adds
    ``Right AUX`` as ``POz``; SSVEP and cueing ``min_events=10``) and the experiment's
    marker meanings as ``event_map``. Files that are not recordings are passed over with
    one warning. Returns a :class:`pipelines.runner.Summary`; manifest columns
    ``experiment``, ``device``, ``started`` and ``source_sha256`` are added to the usual
    ones.
    """
    from neuroconv.data.store import StoreWriter, sha256_file

    exp = _experiment(experiment, options.get("event_map"))
    opts = {**DEFAULTS, **EXPERIMENT_DEFAULTS.get(exp, {}), "event_map": EXPERIMENTS.get(exp),
            **options}
    steps, table = split_options(opts)
    wanted = None if subjects is None else set(map(str, _parse_ints(subjects, "subjects",
                                                                    0, 10 ** 6)))
    task = exp.split("/")[-1]
    root = experiment_dir(data_dir, exp)
    files, others = scan_experiment(data_dir, exp)
    if wanted is not None:
        others = [p for p in others if _subject_of(p, root) in (None, *wanted)]
    items, pre_failed, seen = [], [], {}
    for f in files:
        if wanted is not None and f["subject"] not in wanted:
            continue
        rid = f"{task}_sub{f['subject']}_ses{f['session']}_run{f['run']}"
        if f["device"] != "muse2016":
            rid += f"_{f['device']}"
        path = str(f["path"])
        digest = sha256_file(path)
        if digest in seen:
            pre_failed.append(Outcome(rid, path, "failed", str(InputError(
                path, f"the same bytes as {seen[digest]} (sha256 {digest[:12]}...); left out "
                "so that one recording does not enter the store twice.",
                "Delete the copy in the wrong subject/session folder."))))
            continue
        seen[digest] = path
        row = {"subject": f["subject"], "session": f["session"], "run": f["run"], "task": task,
               "experiment": exp, "dataset": "eeg-notebooks", "site": f["device"],
               "device": f["device"],
               "started": f["started"].isoformat() if f["started"] else None,
               "source_sha256": digest}
        items.append(Item(rid, [path], process_notebook_file,
                          dict(path=path, steps=steps, row=row, table=table,
                               reference_is_default="reference" not in options)))
    if not items and not pre_failed:
        raise FileNotFoundError(f"no recordings of {exp} for subjects {sorted(wanted or [])} "
                                f"under {data_dir}.")
    extra = {}
    if others:
        line, extra["passed_over"] = passed_over_note(others, root)
        warnings.warn(line, stacklevel=2)
    record = _steps_record(steps, table)
    aux = _aux_columns(table["channels"])
    if aux:   # only where a column is checked, so the other stores keep their hash
        record.insert(1, {"name": "aux_check", "params": {
            "columns": dict(aux), "refuse": f"flat, or more than {AUX_CLIPPED} of the samples "
            "at the column's extremes (clipped)"}})
    writer = StoreWriter(out, "eeg", record, overwrite=overwrite)
    return run_items(items, writer, jobs=jobs, shard=shard, progress=progress,
                     description=f"eeg-notebooks {exp}", pre_failed=pre_failed,
                     extra_meta={"units": {"eeg": "uV"}, "dataset": "eeg-notebooks",
                                 "experiment": exp, "labels": steps["event_map"],
                                 "reference_note": "reference=None keeps the Muse's Fpz "
                                 "reference: an average over 4 electrodes is not near zero "
                                 "potential and mixes their signals.", **extra})
