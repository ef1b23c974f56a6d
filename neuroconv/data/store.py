"""The sequence store: the on-disk contract between ``pipelines/`` and training.

A store is a directory::

    STORE/
      manifest.csv     one row per recording (id, subject, session, run, site, dataset,
                       modality, path, n_times, sfreq, n_channels, + source metadata)
      events.csv       id, onset, duration (both in samples of that recording), label
      meta.json        channel names, pipeline steps + parameters, library versions,
                       source files with sha256 checksums
      data/<id>.npy    float32 array, shape (n_times, n_channels), memory-mappable
      records/<id>.json one per finished recording (the resume journal)

Units: EEG in microvolts (µV); MEG magnetometers in fT, gradiometers in fT/cm; fMRI
region signals after cleaning (z-scored by default, arbitrary units). ``meta.json``
records the unit of every channel (``channel_units``).

Writers write every file atomically (a temporary file in the same folder, then
``os.replace``). A recording counts as done once its ``records/<id>.json`` exists; that
file is written last, after its array. Rerunning a pipeline with the same parameters
skips done recordings, so a killed run resumes and loses nothing. ``manifest.csv``,
``events.csv`` and ``meta.json`` are rebuilt from the records at the end of each run
(or with :func:`consolidate`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from neuroconv.io import (atomic_save_npy, atomic_write_csv, atomic_write_json, json_default)

STORE_FORMAT = "neuroconv-sequence-store"
STORE_VERSION = 1

#: manifest columns every store has, in this order; source metadata columns follow.
MANIFEST_COLUMNS = [
    "id", "subject", "session", "run", "task", "site", "dataset", "modality",
    "path", "n_times", "sfreq", "n_channels",
]
EVENT_COLUMNS = ["id", "onset", "duration", "label"]
MODALITIES = ("eeg", "meg", "fmri")

_STR_COLUMNS = {"id": str, "subject": str, "session": str, "run": str, "site": str,
                "dataset": str, "task": str, "modality": str, "path": str}


class StoreError(ValueError):
    """A store cannot be opened or written as asked; the message says what to do."""


# ----------------------------------------------------------------------------- io
def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def array_sha256(data: np.ndarray) -> str:
    """sha256 of a recording's stored values: its dtype, shape and bytes (C order), so a
    copy of a recording is recognised whatever its file or id."""
    data = np.ascontiguousarray(data)
    h = hashlib.sha256(f"{data.dtype.str}{data.shape}".encode())
    h.update(memoryview(data).cast("B"))
    return h.hexdigest()


def params_hash(obj: Any) -> str:
    """A stable hash of JSON-serialisable parameters (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of the libraries that can change a store's numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("neuroconv", "numpy", "scipy", "pandas", "nibabel", "nilearn", "mne",
                 "mne-bids", "scikit-learn", "joblib"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def fingerprint(path: str | Path) -> dict:
    """Cheap identity of a source file (size + mtime); the sha256 is added on write."""
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


# ------------------------------------------------------------------------- writer
class StoreWriter:
    """Writes one store. Picklable, so parallel workers write their own recordings.

    Parameters
    ----------
    path : store directory (created if needed).
    pipeline : name of the pipeline that writes it (``"eeg"``, ``"fmri"``, ...).
    steps : list of ``{"name": ..., "params": {...}}``, the preprocessing record. Rerunning
        into an existing store with different steps raises :class:`StoreError` (use a new
        ``out`` or ``overwrite=True``).
    overwrite : drop the existing records of a store made with other parameters.
    """

    def __init__(self, path, pipeline: str, steps: list[dict], overwrite: bool = False):
        self.path = Path(path)
        self.pipeline = pipeline
        self.steps = json.loads(json.dumps(steps, default=json_default))
        self.params_hash = params_hash({"pipeline": pipeline, "steps": self.steps})
        self._prepare(overwrite)

    # paths
    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    @property
    def records_dir(self) -> Path:
        return self.path / "records"

    def record_path(self, rid: str) -> Path:
        return self.records_dir / f"{rid}.json"

    def array_path(self, rid: str) -> Path:
        return self.data_dir / f"{rid}.npy"

    def _prepare(self, overwrite: bool) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"out={str(self.path)!r} exists and is not a directory; "
                             "pass a directory path for the store.")
        meta_path = self.path / "meta.json"
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise StoreError(f"{meta_path}: unreadable ({e}); delete the store folder "
                                 "or pass overwrite=True / --overwrite.") from e
            old = meta.get("params_hash")
            if old is not None and old != self.params_hash:
                if not overwrite:
                    raise StoreError(
                        f"store {self.path} was made by pipeline {meta.get('pipeline')!r} "
                        f"with other parameters (params_hash {old} != {self.params_hash}). "
                        "Write to a new --out folder, or pass overwrite=True / --overwrite "
                        "to replace its recordings.")
                for d in (self.records_dir, self.data_dir):
                    if d.is_dir():
                        for f in d.iterdir():
                            f.unlink()
                for name in ("manifest.csv", "events.csv", "meta.json"):
                    (self.path / name).unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.records_dir.mkdir(parents=True, exist_ok=True)
        if not meta_path.is_file():
            atomic_write_json(meta_path, self._base_meta())

    def _base_meta(self) -> dict:
        return {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "pipeline": self.pipeline,
            "params_hash": self.params_hash,
            "steps": self.steps,
            "library_versions": library_versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    # resume
    def is_done(self, rid: str, sources: Iterable[str | Path]) -> bool:
        """True if ``rid`` was written with these parameters from these unchanged sources."""
        rec_path = self.record_path(rid)
        if not rec_path.is_file() or not self.array_path(rid).is_file():
            return False
        try:
            rec = json.loads(rec_path.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        if rec.get("params_hash") != self.params_hash:
            return False
        old = {s["path"]: s for s in rec.get("sources", [])}
        for src in sources:
            try:
                fp = fingerprint(src)
            except OSError:
                return False
            prev = old.get(fp["path"])
            if prev is None:
                return False
            if (prev.get("size"), prev.get("mtime_ns")) != (fp["size"], fp["mtime_ns"]):
                if prev.get("sha256") != sha256_file(src):
                    return False
        return True

    # write one recording
    def write(self, rid: str, data: np.ndarray, row: dict, channels: list[str],
              sources: Iterable[str | Path], events: pd.DataFrame | None = None,
              channel_units: list[str] | None = None, details: dict | None = None,
              warnings_: list[str] | None = None) -> dict:
        """Write one recording (array first, record last) and return its record."""
        data = np.ascontiguousarray(data, dtype=np.float32)
        if data.ndim != 2:
            raise StoreError(f"recording {rid!r}: array must be 2D (n_times, n_channels), "
                             f"got shape {data.shape}")
        if data.shape[1] != len(channels):
            raise StoreError(f"recording {rid!r}: {data.shape[1]} columns but "
                             f"{len(channels)} channel names")
        if not np.isfinite(data).all():
            raise StoreError(f"recording {rid!r}: non-finite values after preprocessing")
        row = dict(row)
        row.update(id=rid, path=f"data/{rid}.npy", n_times=int(data.shape[0]),
                   n_channels=int(data.shape[1]))
        if row.get("modality") not in MODALITIES:
            raise StoreError(f"recording {rid!r}: modality must be one of {MODALITIES}, "
                             f"got {row.get('modality')!r}")
        ev = []
        if events is not None and len(events):
            ev = events.assign(id=rid).to_dict(orient="records")
        srcs = []
        for s in sources:
            fp = fingerprint(s)
            fp["sha256"] = sha256_file(s) if Path(s).is_file() else None
            srcs.append(fp)
        atomic_save_npy(self.array_path(rid), data)
        record = {
            "id": rid, "params_hash": self.params_hash, "row": row, "array_sha256": array_sha256(data),
            "channels": list(map(str, channels)),
            "channel_units": list(channel_units) if channel_units is not None else None,
            "events": ev, "sources": srcs, "details": details or {},
            "warnings": list(warnings_ or []),
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_json(self.record_path(rid), record)
        return record

    def finalize(self, extra_meta: dict | None = None) -> Path:
        """Rebuild manifest.csv, events.csv and meta.json from the records."""
        return consolidate(self.path, extra_meta=extra_meta)


def consolidate(path, extra_meta: dict | None = None) -> Path:
    """Rebuild ``manifest.csv``, ``events.csv`` and ``meta.json`` of a store from its
    ``records/`` (for example after array-job shards wrote into one store)."""
    path = Path(path)
    meta_path = path / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    records = []
    for rp in sorted((path / "records").glob("*.json")):
        try:
            rec = json.loads(rp.read_text())
        except (OSError, json.JSONDecodeError):
            warnings.warn(f"{rp}: unreadable record skipped; rerun the pipeline to redo it.")
            continue
        if meta.get("params_hash") and rec.get("params_hash") != meta["params_hash"]:
            continue
        if not (path / rec["row"]["path"]).is_file():
            continue
        records.append(rec)
    rows = [r["row"] for r in records]
    manifest = pd.DataFrame(rows)
    extra_cols = [c for c in manifest.columns if c not in MANIFEST_COLUMNS]
    for c in MANIFEST_COLUMNS:
        if c not in manifest.columns:
            manifest[c] = pd.Series(dtype=object)
    manifest = manifest[MANIFEST_COLUMNS + extra_cols]
    if len(manifest):
        manifest = manifest.sort_values("id", kind="stable").reset_index(drop=True)
    events = pd.DataFrame([e for r in records for e in r["events"]])
    if len(events) == 0:
        events = pd.DataFrame(columns=EVENT_COLUMNS)
    else:
        events = events[EVENT_COLUMNS + [c for c in events.columns if c not in EVENT_COLUMNS]]
        events = events.sort_values(["id", "onset"], kind="stable").reset_index(drop=True)
    atomic_write_csv(path / "manifest.csv", manifest)
    atomic_write_csv(path / "events.csv", events)

    chan_lists = {r["id"]: r["channels"] for r in records}
    unit_lists = {r["id"]: r.get("channel_units") for r in records}
    uniq = {tuple(c) for c in chan_lists.values()}
    meta.update(extra_meta or {})
    meta["n_recordings"] = len(records)
    # per-recording names only when recordings differ (else meta["channels"] is for all)
    meta["channels"] = list(next(iter(uniq))) if len(uniq) == 1 else None
    meta["channels_by_id"] = chan_lists if len(uniq) > 1 else {}
    uniq_units = {tuple(u) if u else None for u in unit_lists.values()}
    same_units = len(uniq_units) == 1 and next(iter(uniq_units)) is not None
    meta["channel_units"] = list(next(iter(uniq_units))) if same_units else None
    meta["channel_units_by_id"] = {} if same_units else unit_lists
    meta["sources"] = {r["id"]: r["sources"] for r in records}
    meta["array_sha256"] = {r["id"]: r["array_sha256"] for r in records if r.get("array_sha256")}
    meta["details"] = {r["id"]: r.get("details", {}) for r in records}
    meta["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(meta_path, meta)
    return path


# ------------------------------------------------------------------------- reader
class SequenceStore:
    """Read a sequence store written by ``neuroconv preprocess``.

    Parameters
    ----------
    path : the store directory (holds ``manifest.csv``).

    Attributes
    ----------
    manifest : DataFrame, one row per recording (see the module docstring).
    events : DataFrame with ``id, onset, duration, label`` (onset/duration in samples).
    meta : dict from ``meta.json``; ``meta["channels"]`` holds the channel/region names
        when every recording has the same ones; else it is ``None`` and
        ``meta["channels_by_id"]`` maps each id to its names (see :meth:`channels`).

    Examples
    --------
    >>> store = SequenceStore("stores/eegbci")              # doctest: +SKIP
    >>> x = store.load(store.ids[0])                        # (n_times, n_channels) float32
    >>> win = store.windows(length=640, stride=320)         # id, start, stop

    Splits that keep groups apart: :class:`neuroconv.engine.Folds` on the manifest's group
    column (:func:`neuroconv.engine.group_values` makes a missing value a group of its own).
    """

    def __init__(self, path):
        self.path = Path(path)
        mpath = self.path / "manifest.csv"
        if not mpath.is_file():
            hint = ""
            if (self.path / "records").is_dir():
                hint = (" It has records/ but no manifest: a run was interrupted; rerun the "
                        "same preprocess command (done recordings are skipped) or call "
                        "neuroconv.data.store.consolidate(path).")
            raise FileNotFoundError(
                f"no sequence store at {str(self.path)!r}: {mpath.name} not found.{hint} "
                "Make one with `neuroconv preprocess ... --out DIR`.")
        self.manifest = pd.read_csv(mpath, dtype=_STR_COLUMNS, keep_default_na=True)
        epath = self.path / "events.csv"
        if epath.is_file():
            self.events = pd.read_csv(epath, dtype={"id": str, "label": str})
        else:
            self.events = pd.DataFrame(columns=EVENT_COLUMNS)
        meta_path = self.path / "meta.json"
        self.meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        self._index = {rid: i for i, rid in enumerate(self.manifest["id"])}
        self._hashes: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.manifest)

    def __repr__(self) -> str:
        return f"SequenceStore({str(self.path)!r}, n={len(self)})"

    @property
    def ids(self) -> list[str]:
        return list(self.manifest["id"])

    def _row(self, rid: str) -> pd.Series:
        try:
            return self.manifest.iloc[self._index[str(rid)]]
        except KeyError:
            raise KeyError(f"recording id {rid!r} is not in store {str(self.path)!r} "
                           f"({len(self)} recordings; see store.ids)") from None

    def load(self, rid: str, mmap: bool = True) -> np.ndarray:
        """The recording as float32 ``(n_times, n_channels)``, memory-mapped by default."""
        row = self._row(rid)
        return np.load(self.path / row["path"], mmap_mode="r" if mmap else None)

    def channels(self, rid: str) -> list[str]:
        """Channel or region names of one recording."""
        self._row(rid)
        by_id = self.meta.get("channels_by_id") or {}
        if str(rid) in by_id:
            return list(by_id[str(rid)])
        return list(self.meta.get("channels") or [])

    def sfreq(self, rid: str) -> float:
        return float(self._row(rid)["sfreq"])

    def select(self, query: str, key: str = "query") -> pd.DataFrame:
        """The manifest rows that the pandas ``query`` selects (all when empty); ``key``
        names the setting in error messages (e.g. ``decode.query``)."""
        man = self.manifest
        if not query:
            return man
        try:
            return man.query(query)
        except Exception as e:  # pandas raises many types for a bad expression
            raise ValueError(f"{key}={query!r} failed on {self.path}/manifest.csv: {e}. Columns: "
                             f"{sorted(man.columns)}.") from None

    def content(self, ids=None) -> pd.DataFrame:
        """What each recording is, whatever it is called: ``id``, ``source_sha256`` (the
        sha256 of its primary source file, the first the pipeline read: the recording
        itself, not a sidecar that several recordings may share; empty when it had none)
        and ``array_sha256`` (:func:`array_sha256` of the stored array: recorded by the
        writer, computed here for stores written before it was)."""
        sources = self.meta.get("sources") or {}
        arrays = self.meta.get("array_sha256") or {}
        rows = []
        for rid in self._select(ids)["id"]:
            srcs = sources.get(rid) or []
            digest = arrays.get(rid)
            if digest is None:
                digest = self._hashes.get(rid) or self._hashes.setdefault(rid, array_sha256(self.load(rid)))
            rows.append({"id": rid, "source_sha256": (srcs[0].get("sha256") or "") if srcs else "",
                         "array_sha256": digest})
        return pd.DataFrame(rows, columns=["id", "source_sha256", "array_sha256"])

    def _select(self, ids) -> pd.DataFrame:
        if ids is None:
            return self.manifest
        ids = [str(i) for i in ids]
        missing = [i for i in ids if i not in self._index]
        if missing:
            raise KeyError(f"ids not in store {str(self.path)!r}: {missing[:5]}"
                           f"{' ...' if len(missing) > 5 else ''}")
        return self.manifest.iloc[[self._index[i] for i in ids]]

    def windows(self, length: int, stride: int | None = None, ids=None) -> pd.DataFrame:
        """Fixed windows of ``length`` samples every ``stride`` samples (default: length).

        Returns a DataFrame ``id, start, stop`` (stop exclusive). Recordings shorter than
        ``length`` give no window; a warning says how many.
        """
        length = _positive_int(length, "length")
        stride = length if stride is None else _positive_int(stride, "stride")
        parts, short = [], 0
        for rid, n in zip(*[self._select(ids)[c] for c in ("id", "n_times")]):
            n = int(n)
            if n < length:
                short += 1
                continue
            starts = np.arange(0, n - length + 1, stride, dtype=np.int64)
            parts.append(pd.DataFrame({"id": rid, "start": starts, "stop": starts + length}))
        if short:
            warnings.warn(f"windows: {short} recording(s) shorter than length={length} "
                          "samples gave no window.", stacklevel=2)
        out = (pd.concat(parts, ignore_index=True) if parts
               else pd.DataFrame({"id": pd.Series(dtype=str),
                                  "start": pd.Series(dtype=np.int64),
                                  "stop": pd.Series(dtype=np.int64)}))
        out.attrs["n_short"] = short
        return out

    def event_windows(self, tmin: float, tmax: float, labels=None, ids=None) -> pd.DataFrame:
        """Windows around events: from ``onset + tmin`` to ``onset + tmax`` seconds.

        Offsets are converted to samples with each recording's ``sfreq``, so the window
        length is ``round((tmax - tmin) * sfreq)`` samples. Windows that would fall outside
        their recording are dropped; a warning says how many (also in
        ``result.attrs["n_dropped"]``). Returns ``id, start, stop, label`` plus the event's
        onset and duration.
        """
        tmin, tmax = float(tmin), float(tmax)
        if not tmax > tmin:
            raise ValueError(f"event_windows: tmax must be greater than tmin, got "
                             f"tmin={tmin}, tmax={tmax}")
        ev = self.events
        man = self._select(ids)
        ev = ev[ev["id"].isin(set(man["id"]))]
        if labels is not None:
            labels = [labels] if isinstance(labels, str) else list(labels)
            known = set(self.events["label"].dropna().unique())
            unknown = [lb for lb in labels if lb not in known]
            if unknown:
                raise ValueError(f"event_windows: labels {unknown} not found in the store's "
                                 f"events; available labels: {sorted(known)}")
            ev = ev[ev["label"].isin(labels)]
        info = man.set_index("id")[["sfreq", "n_times"]]
        ev = ev.join(info, on="id")
        sf = ev["sfreq"].to_numpy(float)
        start = ev["onset"].to_numpy(np.int64) + np.round(tmin * sf).astype(np.int64)
        length = np.round((tmax - tmin) * sf).astype(np.int64)
        stop = start + length
        ok = (start >= 0) & (stop <= ev["n_times"].to_numpy(np.int64)) & (length > 0)
        n_dropped = int((~ok).sum())
        out = pd.DataFrame({"id": ev["id"].to_numpy(), "start": start, "stop": stop,
                            "label": ev["label"].to_numpy(), "onset": ev["onset"].to_numpy(),
                            "duration": ev["duration"].to_numpy()})[ok].reset_index(drop=True)
        if n_dropped:
            warnings.warn(f"event_windows: dropped {n_dropped} of {len(ok)} window(s) that "
                          f"fall outside their recording (tmin={tmin}, tmax={tmax}).",
                          stacklevel=2)
        out.attrs["n_dropped"] = n_dropped
        return out


def _positive_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{name} must be a positive integer number of samples, got {v!r}")
    return int(v)


def open_stores(paths) -> list[SequenceStore]:
    """Open stores, with a clear error for a missing or empty one (or for none at all)."""
    stores = []
    for p in paths:
        store = SequenceStore(p)
        if len(store) == 0:
            raise ValueError(
                f"sequence store {p} is empty (no recordings). Check the preprocess summary: every "
                "recording may have failed."
            )
        stores.append(store)
    if not stores:
        raise ValueError("no sequence stores given: set data.stores or data.sources.")
    return stores
