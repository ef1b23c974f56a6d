"""NeuroTechX eeg-notebooks recordings (Muse 2016 CSV files) -> a sequence store.

Layout: the ``data/`` folder of the eeg-notebooks repository,
``<experiment>/subject<N>/session<M>/<file>.csv`` (file names such as
``data_2017-02-09-18.12.53.csv``; some end ``.csv.csv``). Newer releases put
``<site>/<device>/`` folders before ``subject*``; both are found. Each file becomes one
recording:

- ``subject`` = N, ``session`` = M, ``run`` = the file's place within its session in
  time order (the date and time in the file name; the name where there is none), so
  ids are stable: ``P300_sub2_ses1_run3``.
- ``task`` = the experiment's short name (``P300``), ``experiment`` = its path
  (``visual/P300``), ``dataset`` = ``"eeg-notebooks"``, ``site`` and ``device`` =
  ``"muse2016"`` (the device folder where the layout has one), ``started`` = the date
  and time in the file name.
- Events come from the marker column (``Marker`` or ``Marker0``) through the
  experiment's marker meanings (:data:`EXPERIMENTS`): P300 1 = non-target, 2 = target;
  N170 1 = house, 2 = face.

Defaults that differ from :func:`pipelines.eeg.preprocess_eeg`:

- ``reference=None``: the Muse records every channel against Fpz. An average over its
  four electrodes (two frontal, two temporal) is far from zero potential, so it would
  subtract a mix of the other channels' signals from each (a P300 or N170 at TP9/TP10
  leaks into AF7/AF8 and is reduced where it is largest). eeg-notebooks' own analyses
  keep the Fpz reference.
- ``channels=["TP9", "AF7", "AF8", "TP10"]``, ``sfreq=256``, ``unit="uV"``: what the
  device gives (``Right AUX`` is left out); a file without these columns fails.
- ``min_events=20``: these runs show a stimulus every 0.4-0.6 s (about 100 a minute);
  a run with fewer than 20 events lost its markers and fails with a message (pass
  ``min_events=0`` to keep it for unlabelled use).

Files with the same bytes as another (a copy in a second session folder) are left out
after the first, as failures with a message naming both, so the same data does not
enter a store twice under two sessions.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from .eeg import _parse_ints, _steps_record, process_raw, split_options
from .runner import InputError, Item, Outcome, run_items

#: experiment -> marker code -> label
EXPERIMENTS = {
    "visual/P300": {"1": "non-target", "2": "target"},
    "visual/N170": {"1": "house", "2": "face"},
}
MUSE_CHANNELS = ["TP9", "AF7", "AF8", "TP10"]
DEFAULTS = dict(reference=None, channels=MUSE_CHANNELS, sfreq=256.0, unit="uV", min_events=20)
_STARTED = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})\.(\d{2})\.(\d{2})")
_DEVICES = ("muse2016", "muse2", "muses", "muse", "ganglion", "cyton", "notion1", "notion2",
            "crown", "unicorn", "brainbit", "freeeeg32")


def _experiment(experiment: str, event_map) -> str:
    exp = experiment.strip("/")
    if "/" not in exp:
        full = [e for e in EXPERIMENTS if e.split("/")[1].lower() == exp.lower()]
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


def experiment_files(data_dir, experiment: str = "visual/P300") -> list[dict]:
    """Every recording of ``experiment``: path, subject, session, run, started, device.

    Sorted by subject, session and run; ``run`` numbers the files of a session from 1 in
    time order.
    """
    root = experiment_dir(data_dir, experiment)
    found = []
    for p in sorted(root.rglob("*")):
        if not (p.is_file() and re.search(r"\.(csv|tsv|txt)$", p.name, re.I)):
            continue
        rel = p.relative_to(root).parts
        subj = [re.fullmatch(r"subject_?(\d+)", x, re.I) for x in rel[:-1]]
        sess = [re.fullmatch(r"session_?(\d+)", x, re.I) for x in rel[:-1]]
        subj, sess = [m for m in subj if m], [m for m in sess if m]
        if not subj:
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
    return sorted(found, key=lambda f: (int(f["subject"]), int(f["session"]), int(f["run"]),
                                        f["device"]))


def preprocess_eeg_notebooks(data_dir, out, experiment: str = "visual/P300", subjects=None,
                             *, jobs: int = 1, shard=None, overwrite: bool = False,
                             progress: bool = True, **options):
    """eeg-notebooks Muse recordings of one experiment -> a sequence store at ``out``.

    ``experiment``: ``"visual/P300"`` or ``"visual/N170"`` (or ``"P300"``/``"N170"``;
    another experiment folder needs an ``event_map``). ``subjects``: ``None`` (all),
    an int, a list, or ``"2-4"``. ``**options``: the EEG steps and table options of
    :func:`pipelines.eeg.preprocess_eeg`; the defaults here are this module's
    :data:`DEFAULTS` (no re-referencing, the four Muse channels at 256 Hz in µV,
    ``min_events=20``) and the experiment's marker meanings as ``event_map``. Returns a
    :class:`pipelines.runner.Summary`; manifest columns ``experiment``, ``device`` and
    ``started`` are added to the usual ones.
    """
    from neuroconv.data.store import StoreWriter, sha256_file

    exp = _experiment(experiment, options.get("event_map"))
    opts = {**DEFAULTS, "event_map": EXPERIMENTS.get(exp), **options}
    steps, table = split_options(opts)
    wanted = None if subjects is None else set(map(str, _parse_ints(subjects, "subjects",
                                                                    0, 10 ** 6)))
    task = exp.split("/")[-1]
    items, pre_failed, seen = [], [], {}
    for f in experiment_files(data_dir, exp):
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
               "started": f["started"].isoformat() if f["started"] else None}
        items.append(Item(rid, [path], process_raw,
                          dict(path=path, steps=steps, row=row, table=table)))
    if not items and not pre_failed:
        raise FileNotFoundError(f"no recordings of {exp} for subjects {sorted(wanted or [])} "
                                f"under {data_dir}.")
    writer = StoreWriter(out, "eeg", _steps_record(steps, table), overwrite=overwrite)
    return run_items(items, writer, jobs=jobs, shard=shard, progress=progress,
                     description=f"eeg-notebooks {exp}", pre_failed=pre_failed,
                     extra_meta={"units": {"eeg": "uV"}, "dataset": "eeg-notebooks",
                                 "experiment": exp, "labels": steps["event_map"],
                                 "reference_note": "reference=None keeps the Muse's Fpz "
                                 "reference: an average over 4 electrodes is not near zero "
                                 "potential and mixes their signals."})
