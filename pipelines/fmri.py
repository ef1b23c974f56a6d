"""fMRI recordings -> sequence store.

Inputs (``preprocess_fmri(files, atlas, out)``):

- 4D NIfTI files or globs;
- BIDS data sets (``sub-*/[ses-*/]func/*_bold.nii[.gz]`` with JSON sidecars and
  ``_events.tsv``) and fMRIPrep derivatives (``*_desc-preproc_bold.nii.gz`` with their
  ``*_desc-confounds_timeseries.tsv``), given as their root folder;
- region time series extracted already: ``.1D``, ``.tsv``, ``.csv``, ``.npy`` tables of
  shape (n_times, n_regions) (no atlas needed).

Cleaning is ``nilearn.signal.clean`` on the region signals, as nilearn's maskers do:
detrend, standardize (``zscore_sample``), high-pass 0.008 Hz by default, optional
low-pass, and confounds through ``nilearn.interfaces.fmriprep.load_confounds``
strategies. The TR comes from ``t_r=`` if given, else the JSON sidecar's
``RepetitionTime``, else the NIfTI header; if none has it, the recording fails with a
clear error.
"""

from __future__ import annotations

import glob
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .runner import InputError, Item, MissingTRError, Recording, run_items, unique_ids

NIFTI_EXT = (".nii", ".nii.gz")
TABLE_EXT = (".1d", ".tsv", ".csv", ".npy", ".txt")

#: cleaning defaults (nilearn.signal.clean parameters)
CLEAN_DEFAULTS = dict(detrend=True, standardize="zscore_sample", high_pass=0.008,
                      low_pass=None, filter="butterworth", standardize_confounds=True)
STANDARDIZE_CHOICES = ("zscore_sample", "zscore", "psc", None)
CONFOUND_STRATEGIES = ("motion", "high_pass", "wm_csf", "global_signal", "compcor",
                       "ica_aroma", "tedana", "scrub", "non_steady_state")


@dataclass
class FmriInput:
    path: str
    kind: str                      # "nifti" | "table"
    entities: dict = field(default_factory=dict)
    sidecar: str | None = None
    events: str | None = None
    fmriprep: bool = False


def _ext(p: str) -> str:
    p = p.lower()
    return ".nii.gz" if p.endswith(".nii.gz") else Path(p).suffix


def _entities(path: str) -> dict:
    name = Path(path).name
    ents = dict(re.findall(r"(?:^|_)([a-zA-Z]+)-([a-zA-Z0-9]+)", name))
    return {"subject": ents.get("sub"), "session": ents.get("ses"), "task": ents.get("task"),
            "run": ents.get("run"), "space": ents.get("space"), "desc": ents.get("desc")}


def _sidecar_for(path: str) -> str | None:
    p = str(path)
    for ext in (".nii.gz", ".nii", ".1D", ".1d", ".tsv", ".csv", ".npy", ".txt"):
        if p.endswith(ext):
            cand = p[: -len(ext)] + ".json"
            return cand if Path(cand).is_file() else None
    return None


def _events_for(path: str) -> str | None:
    m = re.match(r"(.*)_(?:space-[^_]+_)?(?:desc-[^_]+_)?bold\.nii(\.gz)?$", str(path))
    if m:
        cand = m.group(1) + "_events.tsv"
        if Path(cand).is_file():
            return cand
    return None


def find_fmri_inputs(files, space: str | None = None, task: str | None = None) -> list[FmriInput]:
    """Expand files, globs and BIDS/fMRIPrep folders into :class:`FmriInput` s."""
    if isinstance(files, (str, Path)):
        files = [files]
    out: list[FmriInput] = []
    for f in files:
        f = str(f)
        paths = sorted(glob.glob(f, recursive=True)) if any(c in f for c in "*?[") else [f]
        if not paths:
            raise FileNotFoundError(f"{f!r}: the pattern matches no file.")
        for p in paths:
            pp = Path(p)
            if pp.is_dir():
                out.extend(_bids_inputs(pp, space=space, task=task))
            elif _ext(p) in NIFTI_EXT:
                ents = _entities(p)
                out.append(FmriInput(p, "nifti", ents, _sidecar_for(p), _events_for(p),
                                     fmriprep="desc-preproc" in pp.name))
            elif _ext(p) in TABLE_EXT:
                out.append(FmriInput(p, "table", _entities(p), _sidecar_for(p)))
            else:
                # a path that does not exist or has an unknown extension: let it fail
                # per item with a clear message
                out.append(FmriInput(p, "unknown", _entities(p)))
    return out


def _bids_inputs(root: Path, space: str | None, task: str | None) -> list[FmriInput]:
    """BOLD runs of a BIDS or fMRIPrep folder (nilearn's BIDS helpers)."""
    from nilearn.interfaces.bids import get_bids_files

    desc = root / "dataset_description.json"
    is_deriv = False
    if desc.is_file():
        try:
            d = json.loads(desc.read_text())
            is_deriv = d.get("DatasetType") == "derivative" or "GeneratedBy" in d
        except (OSError, json.JSONDecodeError):
            pass
    preproc = get_bids_files(str(root), file_tag="bold", file_type="nii*",
                             modality_folder="func", filters=[("desc", "preproc")])
    if preproc or is_deriv:
        files = preproc
        spaces = sorted({_entities(f)["space"] for f in files if _entities(f)["space"]})
        if space is None and len(spaces) > 1:
            space = "MNI152NLin2009cAsym" if "MNI152NLin2009cAsym" in spaces else None
            if space is None:
                raise ValueError(f"{root}: fMRIPrep outputs in several spaces {spaces}; pass "
                                 "space=... (--space) to choose one.")
        if space is not None:
            files = [f for f in files if _entities(f)["space"] == space]
        fmriprep = True
    else:
        files = get_bids_files(str(root), file_tag="bold", file_type="nii*",
                               modality_folder="func")
        fmriprep = False
    if task is not None:
        files = [f for f in files if _entities(f)["task"] == task]
    if not files:
        raise FileNotFoundError(
            f"{root}: no BOLD runs found (looked for sub-*/[ses-*/]func/*_bold.nii[.gz]"
            f"{', space-' + space if space else ''}). Pass NIfTI files or a BIDS/fMRIPrep "
            "root folder.")
    return [FmriInput(f, "nifti", _entities(f), _sidecar_for(f), _events_for(f),
                      fmriprep=fmriprep) for f in sorted(files)]


# --------------------------------------------------------------------------- TR
def read_sidecar(path: str | None) -> dict:
    if not path:
        return {}
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(path, f"JSON sidecar cannot be read ({e}).",
                         "Fix or delete the sidecar, or pass t_r explicitly.") from e


def resolve_tr(inp: FmriInput, t_r: float | None, header_tr: float | None,
               header_units: str | None) -> tuple[float, str]:
    """TR in seconds and where it came from; raises :class:`MissingTRError`."""
    side = read_sidecar(inp.sidecar)
    side_tr = side.get("RepetitionTime")
    if side_tr is None and side.get("SamplingFrequency"):
        side_tr = 1.0 / float(side["SamplingFrequency"])
    hdr = None
    if header_tr is not None and header_tr > 0:
        hdr = float(header_tr)
        if header_units == "msec":
            hdr /= 1000.0
        elif header_units == "usec":
            hdr /= 1e6
        elif header_units not in ("sec",) and not 0.05 <= hdr <= 20:
            hdr = None  # unknown units and an implausible value: do not guess
    if t_r is not None:
        t_r = float(t_r)
        if not t_r > 0:
            raise ValueError(f"t_r must be a positive number of seconds, got {t_r}")
        for other, where in ((side_tr, "sidecar"), (hdr, "header")):
            if other is not None and abs(float(other) - t_r) > 1e-3:
                warnings.warn(f"{inp.path}: t_r={t_r} s given, but the {where} says "
                              f"{float(other)} s; using t_r={t_r}.")
        return t_r, "argument"
    if side_tr is not None:
        side_tr = float(side_tr)
        if hdr is not None and abs(hdr - side_tr) > 1e-3:
            warnings.warn(f"{inp.path}: sidecar RepetitionTime {side_tr} s differs from the "
                          f"header TR {hdr} s; using the sidecar (BIDS rule).")
        return side_tr, "sidecar"
    if hdr is not None:
        return hdr, "header"
    raise MissingTRError(inp.path, "the repetition time (TR) is unknown: no JSON sidecar "
                         "with RepetitionTime and no TR in the NIfTI header (pixdim[4]).",
                         "Pass t_r=SECONDS (--t-r) or add a BIDS sidecar "
                         "(<name>.json with \"RepetitionTime\").")


# ---------------------------------------------------------------------- reading
def load_bold(path: str):
    """Load a 4D NIfTI and check it; returns (img, data (x,y,z,t) float32)."""
    import nibabel as nib

    if not Path(path).is_file():
        raise InputError(path, "no such file.", "Check the path.")
    try:
        img = nib.load(path)
    except Exception as e:  # noqa: BLE001
        raise InputError(path, f"cannot be read as NIfTI ({type(e).__name__}: {e}); the "
                         "file is corrupt or not a NIfTI image.",
                         "Re-export or re-download it.") from e
    if img.ndim != 4:
        raise InputError(path, f"wrong number of dimensions: expected a 4D image "
                         f"(x, y, z, time), got {img.ndim}D with shape {img.shape}.",
                         "Pass the 4D BOLD series (a single 3D volume is not a recording).")
    if img.shape[3] == 0 or min(img.shape[:3]) == 0:
        raise InputError(path, f"zero-length recording (shape {img.shape}).",
                         "Remove it from the inputs.")
    try:
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as e:  # noqa: BLE001 - truncated gzip, short file...
        raise InputError(path, f"the data cannot be read ({type(e).__name__}: {e}); the "
                         "file is truncated or corrupt.", "Re-export or re-download it.") from e
    bad = ~np.isfinite(data)
    if bad.any():
        raise InputError(path, f"{int(bad.sum())} non-finite values (NaN/inf) in "
                         f"{int(bad.any(axis=(0, 1, 2)).sum())} volume(s).",
                         "Fix the image (e.g. nilearn.image.math_img('np.nan_to_num(img)')) "
                         "or drop those volumes.")
    return img, data


def read_table(path: str) -> tuple[np.ndarray, list[str] | None]:
    """Read a region table (n_times, n_regions): .1D/.tsv/.csv/.txt (optional header) or .npy."""
    p = Path(path)
    if not p.is_file():
        raise InputError(path, "no such file.", "Check the path.")
    ext = p.suffix.lower()
    try:
        if ext == ".npy":
            arr = np.load(p, allow_pickle=False)
            names = None
        else:
            with open(p, encoding="utf-8", errors="replace") as fh:
                first = fh.readline()
            delim = {".csv": ",", ".tsv": "\t"}.get(ext)
            tokens = [t for t in (first.strip().split(delim) if delim else first.split()) if t]
            is_comment = first.lstrip().startswith("#")
            has_header = is_comment or not all(_isnum(t) for t in tokens)
            names = None
            if has_header:
                names = [t.lstrip("#").strip() for t in tokens]
                names = [t for t in names if t]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # empty-file warning: handled below
                arr = np.loadtxt(p, delimiter=delim, skiprows=1 if has_header else 0,
                                 ndmin=2, dtype=np.float64, comments=None)
    except InputError:
        raise
    except pd.errors.EmptyDataError as e:
        raise InputError(path, "zero-length recording (the table has no rows).",
                         "Remove it from the inputs.") from e
    except Exception as e:  # noqa: BLE001
        raise InputError(path, f"malformed or truncated table ({type(e).__name__}: {e}).",
                         "Every row must have one number per region, separated by "
                         "tabs/spaces (.1D/.tsv) or commas (.csv).") from e
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(path, f"wrong number of dimensions: expected a 2D table "
                         f"(n_times, n_regions), got shape {arr.shape}.",
                         "Save one row per volume and one column per region.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(path, f"zero-length recording (table shape {arr.shape}).",
                         "Remove it from the inputs.")
    if names is not None and len(names) != arr.shape[1]:
        names = None
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise InputError(path, f"{int(bad.sum())} non-finite values (NaN/inf) in "
                         f"{len(rows)} row(s), first at row {int(rows[0])}.",
                         "Fix or remove the file.")
    return arr, names


def _isnum(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def clean_signals(signals: np.ndarray, t_r: float, path: str, confounds=None,
                  sample_mask=None, **clean) -> np.ndarray:
    """``nilearn.signal.clean`` with our defaults and a clear error for short series."""
    from nilearn import signal

    params = {**CLEAN_DEFAULTS, **{k: v for k, v in clean.items() if k in CLEAN_DEFAULTS}}
    nyq = 0.5 / t_r
    for key in ("high_pass", "low_pass"):
        v = params.get(key)
        if v is not None and v >= nyq:
            raise InputError(path, f"{key}={v} Hz is at or above the Nyquist frequency "
                             f"{nyq:.4g} Hz for TR={t_r} s.",
                             f"Use {key} < {nyq:.4g} or None.")
    try:
        return signal.clean(signals, t_r=t_r, confounds=confounds, sample_mask=sample_mask,
                            ensure_finite=False, **params)
    except ValueError as e:
        raise InputError(path, f"cleaning failed for a series of {signals.shape[0]} "
                         f"samples ({e}).", "Very short series cannot be filtered: pass "
                         "high_pass=None/low_pass=None (--high-pass 0) or drop the file.") from e


def _events_table(path: str, t_r: float, n_times: int, src: str, first: int = 0) -> pd.DataFrame | None:
    """BIDS events.tsv (seconds from the first acquired volume) -> onset/duration in
    samples of the stored series, whose first sample is acquired volume ``first``
    (non-steady-state volumes removed at the start), label = trial_type."""
    if path is None:
        return None
    try:
        ev = pd.read_csv(path, sep="\t")
    except Exception as e:  # noqa: BLE001
        raise InputError(path, f"events file cannot be read ({e}).", "Fix or remove it.") from e
    if "onset" not in ev.columns:
        raise InputError(path, "events file has no 'onset' column.", "Follow BIDS events.tsv.")
    dur = ev["duration"] if "duration" in ev.columns else 0.0
    label = ev["trial_type"] if "trial_type" in ev.columns else "event"
    onset = np.round(ev["onset"].to_numpy(float) / t_r).astype(np.int64) - first
    duration = np.round(pd.to_numeric(dur, errors="coerce").fillna(0).to_numpy(float)
                        / t_r).astype(np.int64) if not np.isscalar(dur) else \
        np.zeros(len(ev), np.int64)
    outside = (onset < 0) | (onset >= n_times)
    if outside.any():
        raise InputError(src, f"{int(outside.sum())} event(s) in {Path(path).name} lie "
                         f"outside the recording ({first * t_r:g} to {(first + n_times) * t_r:g} s), e.g. onset "
                         f"{float(ev['onset'].to_numpy(float)[outside][0]):g} s.",
                         "Fix the events file or the TR.")
    return pd.DataFrame({"onset": onset, "duration": duration,
                         "label": np.asarray(label, dtype=object).astype(str)
                         if not np.isscalar(label) else label})


# ------------------------------------------------------------------------ tasks
def process_nifti(inp: FmriInput, atlas, t_r=None, confounds_strategy=None,
                  confounds_kwargs=None, row_extra=None, **clean) -> Recording:
    from .atlas import get_extractor

    img, data = load_bold(inp.path)
    units = img.header.get_xyzt_units()[1] if hasattr(img.header, "get_xyzt_units") else None
    zooms = img.header.get_zooms()
    tr, tr_source = resolve_tr(inp, t_r, zooms[3] if len(zooms) > 3 else None, units)
    extractor, names, _ = get_extractor(atlas, img)
    signals = extractor.transform_array(data)                          # (T, R)
    confounds, sample_mask, sources, first = None, None, [inp.path], 0
    if confounds_strategy:
        from nilearn.interfaces.fmriprep import load_confounds

        try:
            confounds, sample_mask = load_confounds(inp.path, strategy=tuple(confounds_strategy),
                                                    **(confounds_kwargs or {}))
        except Exception as e:  # noqa: BLE001
            raise InputError(inp.path, f"confounds for strategy {tuple(confounds_strategy)} "
                             f"could not be loaded ({type(e).__name__}: {e}).",
                             "fMRIPrep outputs need their *_desc-confounds_timeseries.tsv "
                             "beside the BOLD file; pass confounds_strategy=None to skip.") from e
        first = _leading_volumes_only(sample_mask, data.shape[3], inp.path, confounds_strategy)
        cpath = re.sub(r"_space-[^_]+", "", inp.path)
        cpath = re.sub(r"_desc-preproc_bold\.nii(\.gz)?$", "_desc-confounds_timeseries.tsv", cpath)
        if Path(cpath).is_file():
            sources.append(cpath)
    out = clean_signals(signals, tr, inp.path, confounds=confounds, sample_mask=sample_mask,
                        **clean)
    n_times = out.shape[0]
    events = _events_table(inp.events, tr, n_times, inp.path, first) if inp.events else None
    if inp.events:
        sources.append(inp.events)
    if inp.sidecar:
        sources.append(inp.sidecar)
    row = _row(inp, tr, row_extra)
    row["atlas"] = atlas.name
    return Recording(out, names, row, sources, events=events,
                     channel_units=["a.u."] * len(names),
                     details={"t_r": tr, "t_r_source": tr_source,
                              "n_volumes_in": int(data.shape[3]),
                              "n_volumes_kept": int(n_times), "first_volume": first,
                              "start_seconds": first * tr})


def _leading_volumes_only(sample_mask, n_volumes: int, path: str, strategy) -> int:
    """How many volumes a confounds sample mask removes from the start; an error when it
    removes any later volume (scrubbing), which would break the store's uniform time."""
    if sample_mask is None:
        return 0
    kept = np.asarray(sample_mask)
    if kept.dtype == bool:
        kept = np.flatnonzero(kept)
    first = int(kept[0]) if len(kept) else n_volumes
    if len(kept) and np.array_equal(kept, np.arange(first, n_volumes)):
        return first
    dropped = n_volumes - len(kept) - first
    raise InputError(
        path, f"the confounds strategy {tuple(strategy)} censors {dropped} volume(s) inside the run (scrubbing). "
        "A sequence store keeps time uniform: removing volumes would shift every later event and break the "
        "sampling rate.",
        "Use a strategy without 'scrub' (e.g. ('motion', 'wm_csf', 'high_pass')), or censor in the analysis "
        "instead. Non-steady-state volumes at the start are removed and the events shifted.")


def process_table(inp: FmriInput, t_r=None, names_prefix: str | None = None,
                  row_extra=None, note: str | None = None, **clean) -> Recording:
    if note:
        warnings.warn(note)
    arr, names = read_table(inp.path)
    tr, tr_source = resolve_tr(inp, t_r, None, None)
    out = clean_signals(arr, tr, inp.path, **clean)
    n = arr.shape[1]
    if names is None:
        names = [f"roi{k:04d}" for k in range(1, n + 1)]
    if names_prefix:
        names = [f"{names_prefix}_{nm}" for nm in names]
    sources = [inp.path] + ([inp.sidecar] if inp.sidecar else [])
    return Recording(out, names, _row(inp, tr, row_extra), sources,
                     channel_units=["a.u."] * n,
                     details={"t_r": tr, "t_r_source": tr_source})


def process_unknown(inp: FmriInput, **_) -> Recording:
    if not Path(inp.path).exists():
        raise InputError(inp.path, "no such file.", "Check the path.")
    raise InputError(inp.path, f"unknown fMRI input type {_ext(inp.path)!r}.",
                     f"Pass 4D NIfTI ({', '.join(NIFTI_EXT)}), a region table "
                     f"({', '.join(TABLE_EXT)}) or a BIDS/fMRIPrep folder.")


def _row(inp: FmriInput, tr: float, extra) -> dict:
    ents = inp.entities
    stem = Path(inp.path).name
    for ext in (".nii.gz", ".nii", ".1D", ".1d", ".tsv", ".csv", ".npy", ".txt"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    row = {"subject": ents.get("subject") or stem, "session": ents.get("session"),
           "run": ents.get("run"), "task": ents.get("task"), "site": None,
           "dataset": "fmri", "modality": "fmri", "sfreq": 1.0 / tr, "t_r": tr,
           "source": inp.path}
    row.update(extra or {})
    return row


def _validate_clean(clean: dict) -> dict:
    unknown = set(clean) - set(CLEAN_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown cleaning parameter(s) {sorted(unknown)}; allowed: "
                        f"{sorted(CLEAN_DEFAULTS)} plus t_r, confounds_strategy, ...")
    out = {**CLEAN_DEFAULTS, **clean}
    if out["standardize"] not in STANDARDIZE_CHOICES:
        raise ValueError(f"standardize must be one of {STANDARDIZE_CHOICES}, "
                         f"got {out['standardize']!r}")
    for key in ("high_pass", "low_pass"):
        v = out[key]
        if v is not None and not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"{key} must be a positive frequency in Hz or None, got {v!r}")
    if out["high_pass"] and out["low_pass"] and out["high_pass"] >= out["low_pass"]:
        raise ValueError(f"high_pass ({out['high_pass']}) must be below low_pass "
                         f"({out['low_pass']})")
    return out


def _item_id(inp: FmriInput) -> str:
    e = inp.entities
    if e.get("subject"):
        parts = [f"sub-{e['subject']}"] + [f"{k}-{e[v]}" for k, v in
                                           (("ses", "session"), ("task", "task"),
                                            ("run", "run")) if e.get(v)]
        return "_".join(parts)
    name = Path(inp.path).name
    for ext in (".nii.gz", ".nii", ".1D", ".1d", ".tsv", ".csv", ".npy", ".txt"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def preprocess_fmri(files, atlas=None, out=None, *, t_r=None, atlas_labels=None,
                    atlas_dir=None, space=None, task=None, confounds_strategy=None,
                    confounds_kwargs=None, jobs=1, shard=None, overwrite=False,
                    progress=True, **clean):
    """fMRI files, globs or BIDS/fMRIPrep folders -> a sequence store at ``out``.

    Parameters
    ----------
    files : NIfTI files/globs, BIDS or fMRIPrep root folders, or region tables.
    atlas : labels/maps image file or a nilearn atlas name (see ``pipelines.atlas``);
        required for NIfTI inputs, ignored for tables.
    out : store directory.
    t_r : TR in seconds, overriding sidecars and headers.
    confounds_strategy : e.g. ``("motion", "wm_csf", "high_pass")``; fMRIPrep inputs only.
    detrend, standardize, high_pass, low_pass, filter, standardize_confounds :
        ``nilearn.signal.clean`` parameters (defaults: True, "zscore_sample", 0.008, None).
    jobs, shard, overwrite, progress : see :func:`pipelines.runner.run_items`.

    Returns
    -------
    :class:`pipelines.runner.Summary`
    """
    from neuroconv.data.store import StoreWriter

    from .atlas import resolve_atlas

    if out is None:
        raise ValueError("out is required: the folder of the sequence store to write")
    clean = _validate_clean(clean)
    if confounds_strategy:
        confounds_strategy = ([confounds_strategy] if isinstance(confounds_strategy, str)
                              else list(confounds_strategy))
        bad = [s for s in confounds_strategy if s not in CONFOUND_STRATEGIES]
        if bad:
            raise ValueError(f"confounds_strategy: unknown {bad}; allowed: "
                             f"{CONFOUND_STRATEGIES}")
    inputs = find_fmri_inputs(files, space=space, task=task)
    spec = None
    if any(i.kind == "nifti" for i in inputs):
        spec = resolve_atlas(atlas, data_dir=atlas_dir, labels=atlas_labels)
    ids = unique_ids([_item_id(i) for i in inputs], [i.path for i in inputs])
    items = []
    for rid, inp in zip(ids, inputs):
        srcs = [inp.path]
        if inp.kind == "nifti":
            kw = dict(inp=inp, atlas=spec, t_r=t_r, confounds_strategy=confounds_strategy,
                      confounds_kwargs=confounds_kwargs, **clean)
            items.append(Item(rid, srcs, process_nifti, kw))
        elif inp.kind == "table":
            items.append(Item(rid, srcs, process_table, dict(inp=inp, t_r=t_r, **clean)))
        else:
            items.append(Item(rid, srcs, process_unknown, dict(inp=inp)))
    steps = [
        {"name": "extract", "params": {"atlas": spec.to_dict() if spec else None,
                                        "method": "sparse least squares (maps) / sparse mean"
                                        " (labels), equal to nilearn NiftiMaps/LabelsMasker"}},
        {"name": "clean", "params": {"function": "nilearn.signal.clean", **clean,
                                      "t_r": t_r, "confounds_strategy": confounds_strategy,
                                      "confounds_kwargs": confounds_kwargs}},
    ]
    writer = StoreWriter(out, "fmri", steps, overwrite=overwrite)
    return run_items(items, writer, jobs=jobs, shard=shard, progress=progress,
                     description="fmri", extra_meta={"units": "a.u. (cleaned region signals)",
                                                     "modality": "fmri"})
