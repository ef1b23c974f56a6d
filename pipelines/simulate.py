"""Realistic fake recordings written as real files, for the built-in default and tests.

- :func:`simulate_eeg`: standard 10-20 montage, 1/f background, class-dependent mu (10 Hz)
  and beta (20 Hz) desynchronisation over motor cortex (``left`` -> right hemisphere C4,
  ``right`` -> C3, ``feet`` -> Cz), written as FIF (default) or EDF with annotations.
- :func:`simulate_fmri`: a small BIDS folder of 4D NIfTI runs with a labels atlas (and a
  probabilistic maps atlas); block-design signals convolved with an HRF sit in some
  regions, with noise everywhere.

The files then go through the same pipelines as real data (``preprocess_eeg``,
``preprocess_fmri``). Everything is deterministic given ``seed``.

:func:`preprocess_simulated_eeg` and :func:`preprocess_simulated_fmri` do both: they write
the simulation once into a raw folder (reused while the simulation's parameters are
unchanged) and run the pipeline into a store. They are the data sources
``simulate-eeg`` and ``simulate-fmri`` (:mod:`pipelines.sources`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EEG_CHANNELS_1020 = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4",
                     "T8", "P7", "P3", "Pz", "P4", "P8", "O1", "O2"]
_MOTOR_SOURCE = {"left": "C4", "right": "C3", "feet": "Cz", "fists": "Cz"}


def _pink(rng, n_ch: int, n: int, sfreq: float, exponent: float = 1.0) -> np.ndarray:
    """Unit-variance 1/f^exponent noise, (n_ch, n)."""
    white = rng.standard_normal((n_ch, n))
    spec = np.fft.rfft(white, axis=1)
    f = np.fft.rfftfreq(n, 1 / sfreq)
    f[0] = f[1]
    spec *= f ** (-exponent / 2)
    x = np.fft.irfft(spec, n=n, axis=1)
    return x / x.std(axis=1, keepdims=True)


def simulate_eeg(out_dir, n_subjects: int = 8, n_runs: int = 1, duration: float = 60.0,
                 sfreq: float = 160.0, classes=("left", "right"), trial: float = 4.0,
                 rest: float = 2.0, channels=None, fmt: str = "fif",
                 annotation_style: str = "labels", seed: int = 0) -> list[Path]:
    """Write ``n_subjects * n_runs`` motor-imagery-like EEG recordings.

    Parameters
    ----------
    out_dir : folder to write ``sub-XX_task-motor_run-Y_eeg.fif`` (or ``.edf``).
    duration : seconds per recording. sfreq : Hz.
    classes : trial classes among ``left``, ``right``, ``feet``, ``fists``.
    trial, rest : seconds of each trial and of the rest between trials.
    channels : channel names (default: the 19 standard 10-20 channels).
    fmt : ``"fif"`` or ``"edf"`` (EDF needs the ``edfio`` package).
    annotation_style : ``"labels"`` (annotations ``rest``/``left``/...) or ``"eegbci"``
        (``T0`` rest, ``T1`` first class, ``T2`` second class).
    seed : random seed (recordings differ across subjects and runs).

    Returns
    -------
    list of the written file paths.
    """
    import mne

    if fmt not in ("fif", "edf"):
        raise ValueError(f"fmt must be 'fif' or 'edf', got {fmt!r}")
    bad = [c for c in classes if c not in _MOTOR_SOURCE]
    if bad or not classes:
        raise ValueError(f"classes must be among {sorted(_MOTOR_SOURCE)}, got {list(classes)}")
    if annotation_style not in ("labels", "eegbci"):
        raise ValueError(f"annotation_style must be 'labels' or 'eegbci', got "
                         f"{annotation_style!r}")
    if not duration > trial + rest:
        raise ValueError(f"duration ({duration} s) must exceed trial + rest "
                         f"({trial + rest} s)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(channels or EEG_CHANNELS_1020)
    from .channels import make_montage

    montage = make_montage("standard_1005")
    pos = montage.get_positions()["ch_pos"]
    unknown = [c for c in names if c not in pos]
    if unknown:
        raise ValueError(f"channels {unknown} are not in the standard_1005 montage")
    xyz = np.array([pos[c] for c in names])
    xyz /= np.linalg.norm(xyz, axis=1, keepdims=True)
    n = int(round(duration * sfreq))
    t = np.arange(n) / sfreq
    paths = []
    for s in range(1, n_subjects + 1):
        for r in range(1, n_runs + 1):
            rng = np.random.default_rng([seed, s, r])
            # spatially smooth 1/f background: mix independent sources by proximity
            mix = np.exp(-np.square(np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)) / 0.3)
            bg = mix @ _pink(rng, len(names), n, sfreq)
            bg *= 10.0 / bg.std(axis=1, keepdims=True)                 # ~10 µV
            # trial schedule: rest, trial, rest, trial ...
            onsets, labels = [], []
            k, cur = 0, rest
            while cur + trial <= duration - 0.5:
                onsets.append(cur)
                labels.append(classes[(k + rng.integers(0, 2)) % len(classes)]
                              if len(classes) > 1 else classes[0])
                cur += trial + rest
                k += 1
            # motor rhythms at C3/Cz/C4 with event-related desynchronisation
            data = bg
            for src in sorted(set(_MOTOR_SOURCE.values())):
                if src not in pos:
                    continue
                p = pos[src] / np.linalg.norm(pos[src])
                gain = np.exp(-np.square(np.linalg.norm(xyz - p, axis=1)) / 0.08)  # (C,)
                env = np.ones(n)
                for o, lb in zip(onsets, labels):
                    if _MOTOR_SOURCE[lb] == src:
                        i0, i1 = int((o + 0.5) * sfreq), int((o + trial) * sfreq)
                        env[i0:i1] = 0.3                                 # ERD: -70 %
                env = np.convolve(env, np.ones(int(0.25 * sfreq)) / int(0.25 * sfreq), "same")
                f_mu = 10 + rng.normal(0, 0.5)
                f_beta = 21 + rng.normal(0, 1.0)
                phase = rng.uniform(0, 2 * np.pi, 2)
                osc = (8.0 * np.sin(2 * np.pi * f_mu * t + phase[0] + 0.3 * np.cumsum(
                    rng.standard_normal(n)) / np.sqrt(sfreq))
                    + 4.0 * np.sin(2 * np.pi * f_beta * t + phase[1]))
                data = data + gain[:, None] * (env * osc)[None]
            data = data + rng.normal(0, 1.0, data.shape)                 # sensor noise, µV
            info = mne.create_info(names, sfreq, "eeg")
            raw = mne.io.RawArray(data * 1e-6, info, verbose="error")   # volts
            raw.set_montage(montage, verbose="error")
            if annotation_style == "eegbci":
                code = {c: f"T{i + 1}" for i, c in enumerate(classes)}
                descs = [code[lb] for lb in labels]
                rest_desc = "T0"
            else:
                descs, rest_desc = labels, "rest"
            ann_on = [0.0] + [o for o in onsets]
            ann_du = [rest] + [trial for _ in onsets]
            ann_de = [rest_desc] + descs
            # rest periods between trials
            for o in onsets:
                if o + trial + rest <= duration:
                    ann_on.append(o + trial)
                    ann_du.append(rest)
                    ann_de.append(rest_desc)
            order = np.argsort(ann_on, kind="stable")
            raw.set_annotations(mne.Annotations(np.array(ann_on)[order],
                                                np.array(ann_du)[order],
                                                np.array(ann_de)[order]))
            stem = f"sub-{s:02d}_task-motor_run-{r}_eeg"
            if fmt == "fif":
                path = out / f"{stem}.fif"
                raw.save(path, overwrite=True, verbose="error")
            else:
                path = out / f"{stem}.edf"
                mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
            paths.append(path)
    return paths


def _glover(t_r: float, oversampling: int = 16) -> np.ndarray:
    from nilearn.glm.first_level import glover_hrf

    return glover_hrf(t_r, oversampling=1, time_length=32.0)


@dataclass
class SimulatedFMRI:
    """What :func:`simulate_fmri` wrote."""

    root: Path
    bold: list[Path]
    atlas: Path                 # 3D labels image
    atlas_labels: Path          # TSV index/name
    maps: Path                  # 4D probabilistic maps image (same regions, smooth)
    events: list[Path]
    t_r: float
    active_regions: list[str] = field(default_factory=list)


def simulate_fmri(out_dir, n_subjects: int = 8, n_runs: int = 1, n_times: int = 100,
                  t_r: float = 2.0, shape=(20, 24, 20), voxel_mm: float = 4.0,
                  n_regions: int = 16, n_active: int = 4, block: float = 20.0,
                  signal_pct: float = 3.0, noise_pct: float = 1.0, sidecar: bool = True,
                  seed: int = 0) -> SimulatedFMRI:
    """Write a small BIDS data set of 4D BOLD runs plus a labels and a maps atlas.

    Parameters
    ----------
    out_dir : BIDS root to write (``sub-XX/func/sub-XX_task-blocks_run-Y_bold.nii.gz``,
        JSON sidecars with ``RepetitionTime``, ``_events.tsv``, and ``atlas_*`` files).
    n_times : volumes per run. t_r : seconds (also in the NIfTI header).
    shape, voxel_mm : image grid. n_regions : parcels of the labels atlas.
    n_active : regions carrying the block-design (HRF-convolved) signal.
    block : seconds on / off. signal_pct, noise_pct : % of the 1000 baseline.
    sidecar : write JSON sidecars (else the TR lives in the header only).
    """
    import nibabel as nib
    from scipy.spatial import cKDTree

    if n_active > n_regions:
        raise ValueError(f"n_active ({n_active}) must be <= n_regions ({n_regions})")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 12345])
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -np.array(shape) * voxel_mm / 2
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"), -1)
    brain = (np.square(grid / np.array([0.85, 0.9, 0.8])).sum(-1) <= 1.0)
    vox = np.argwhere(brain)
    seeds = vox[rng.choice(len(vox), n_regions, replace=False)]
    region = cKDTree(seeds).query(vox)[1]                   # Voronoi parcels
    labels = np.zeros(shape, np.int16)
    labels[tuple(vox.T)] = region + 1
    atlas = root / "atlas_labels.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), atlas)
    names = [f"region{k:02d}" for k in range(1, n_regions + 1)]
    atlas_tsv = root / "atlas_labels.tsv"
    atlas_tsv.write_text("index\tname\n" + "".join(f"{k}\t{nm}\n" for k, nm in
                                                   enumerate(names, 1)))
    # probabilistic maps: smooth blobs around each parcel
    d = np.linalg.norm(vox[:, None, :] - seeds[None], axis=-1)      # (V, R)
    w = np.exp(-np.square(d) / (2 * 2.0 ** 2))
    w[w < 0.05] = 0
    maps = np.zeros(shape + (n_regions,), np.float32)
    maps[tuple(vox.T)] = w
    maps_path = root / "atlas_maps.nii.gz"
    nib.save(nib.Nifti1Image(maps, affine), maps_path)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "neuroconv simulated fMRI", "BIDSVersion": "1.8.0", "DatasetType": "raw"}))
    # block design convolved with the HRF
    frame_t = np.arange(n_times) * t_r
    box = ((frame_t // block) % 2 == 1).astype(float)
    resp = np.convolve(box, _glover(t_r))[:n_times]
    resp /= resp.max() if resp.max() > 0 else 1
    onsets = frame_t[np.flatnonzero(np.diff(np.r_[0, box]) == 1)]
    active = list(range(n_active))
    bolds, events = [], []
    for s in range(1, n_subjects + 1):
        for r in range(1, n_runs + 1):
            rr = np.random.default_rng([seed, s, r])
            func = root / f"sub-{s:02d}" / "func"
            func.mkdir(parents=True, exist_ok=True)
            stem = f"sub-{s:02d}_task-blocks_run-{r}"
            n_vox = len(vox)
            # shared fluctuations per region (AR(1)) + voxel noise + slow drift
            shared = np.zeros((n_regions, n_times))
            e = rr.standard_normal((n_regions, n_times))
            for k in range(1, n_times):
                shared[:, k] = 0.5 * shared[:, k - 1] + e[:, k]
            ts = np.zeros((n_vox, n_times), np.float32)
            ts += 1000.0 * (1 + 0.01 * rr.standard_normal((n_vox, 1)))
            ts += 5.0 * noise_pct * shared[region] / np.sqrt(4 / 3)
            ts += 10.0 * noise_pct * rr.standard_normal((n_vox, n_times))
            ts += 5.0 * np.linspace(0, 1, n_times)[None] * rr.standard_normal((n_vox, 1))
            for a in active:
                ts[region == a] += 10.0 * signal_pct * resp[None]
            img = np.zeros(shape + (n_times,), np.float32)
            img[tuple(vox.T)] = ts
            img[~brain] = rr.normal(0, 5.0, (int((~brain).sum()), n_times))
            nimg = nib.Nifti1Image(img, affine)
            nimg.header.set_xyzt_units("mm", "sec")
            zooms = nimg.header.get_zooms()
            nimg.header.set_zooms(zooms[:3] + (t_r,))
            path = func / f"{stem}_bold.nii.gz"
            nib.save(nimg, path)
            if sidecar:
                (func / f"{stem}_bold.json").write_text(json.dumps(
                    {"RepetitionTime": t_r, "TaskName": "blocks"}))
            ev = func / f"{stem}_events.tsv"
            ev.write_text("onset\tduration\ttrial_type\n" + "".join(
                f"{o:g}\t{block:g}\ttask\n" for o in onsets))
            bolds.append(path)
            events.append(ev)
    return SimulatedFMRI(root, bolds, atlas, atlas_tsv, maps_path, events, t_r,
                         [names[a] for a in active])


# ------------------------------------------------------------- simulated data sources
def _raw_dir(out, raw_dir) -> Path:
    if raw_dir:
        return Path(raw_dir)
    out = Path(out)
    return out.parent / f"{out.name}_raw"


def _simulated(kind: str, raw_dir: Path, params: dict) -> dict:
    """Run ``simulate_<kind>(raw_dir, **params)`` unless ``raw_dir`` holds this simulation
    already (its ``simulation.json`` records the parameters and the files written)."""
    from neuroconv.io import atomic_write_json

    marker = raw_dir / "simulation.json"
    if marker.is_file():
        cached = json.loads(marker.read_text())
        if cached.get("kind", kind) == kind and cached.get("params") == params:
            return cached["result"]
    fn = {"eeg": simulate_eeg, "fmri": simulate_fmri}[kind]
    try:
        result = fn(raw_dir, **params)
    except TypeError as e:
        raise TypeError(f"simulate: {e}; the parameters of simulate_{kind} are its keyword "
                        f"arguments (see neuroconv.pipelines.simulate.simulate_{kind}).") from e
    if kind == "eeg":
        cached = {"files": [str(p) for p in result]}
    else:
        cached = {"files": [str(p) for p in result.bold], "atlas": str(result.atlas),
                  "atlas_labels": str(result.atlas_labels)}
    raw_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, {"kind": kind, "params": params, "result": cached})
    return cached


def preprocess_simulated_eeg(out, raw_dir=None, simulate: dict | None = None, **options):
    """Simulated motor-imagery EEG (:func:`simulate_eeg`) -> a sequence store at ``out``.

    ``raw_dir``: where the FIF files are written (default ``<out>_raw``); they are reused
    while ``simulate`` (the keyword arguments of :func:`simulate_eeg`) is unchanged.
    ``**options``: those of :func:`pipelines.eeg.preprocess_eeg` (EEG steps, ``jobs``,
    ``shard``, ``overwrite``, ``progress``). Returns its
    :class:`~pipelines.runner.Summary`.
    """
    from .eeg import preprocess_eeg

    sim = _simulated("eeg", _raw_dir(out, raw_dir), dict(simulate or {}))
    return preprocess_eeg(sim["files"], out, **options)


def preprocess_simulated_fmri(out, raw_dir=None, simulate: dict | None = None, **params):
    """Simulated block-design fMRI (:func:`simulate_fmri`) -> a sequence store at ``out``,
    through the simulation's labels atlas.

    ``raw_dir``: where the BIDS folder is written (default ``<out>_raw``); it is reused
    while ``simulate`` (the keyword arguments of :func:`simulate_fmri`) is unchanged.
    ``**params``: those of :func:`pipelines.fmri.preprocess_fmri` (``t_r``, cleaning,
    ``jobs``, ``shard``, ``overwrite``, ``progress``...). Returns its
    :class:`~pipelines.runner.Summary`.
    """
    from .fmri import preprocess_fmri

    sim = _simulated("fmri", _raw_dir(out, raw_dir), dict(simulate or {}))
    return preprocess_fmri(sim["files"], sim["atlas"], out, atlas_labels=sim["atlas_labels"],
                           **params)
