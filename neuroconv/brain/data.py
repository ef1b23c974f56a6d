"""The one path from sequence stores to model inputs, for neural models and baselines alike.

A *sample table* is a DataFrame with columns ``store`` (index into a list of stores),
``id``, ``start``, ``stop`` (samples, stop exclusive) and, for decoding, ``y``. Windows
come from :func:`pretrain_windows` (fixed windows) or :func:`decode_samples` in
:mod:`neuroconv.brain.decode` (event windows or whole recordings).

:class:`StoreWindows` reads a sample table: it normalises each window the same way for
every consumer (``data.normalize``: per-recording z-scores whose statistics never cross
recordings) and gives torch batches (:func:`loader`: batches never mix channel sets;
windows of different lengths are padded with a validity mask) or numpy arrays for the
baselines (:meth:`StoreWindows.arrays`), so "the same folds" also means the same inputs.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from neuroconv.data import SequenceStore, open_stores

from .models import channel_set_key

__all__ = ["StoreWindows", "ArrayWindows", "Crops", "StepCrops", "Extra", "ChannelSetBatchSampler", "collate", "loader", "open_stores",
           "pretrain_windows", "sample_groups", "sample_columns", "store_is_standardized"]


def store_is_standardized(store: SequenceStore) -> bool:
    """True when the store's pipeline already z-scored each recording's channels
    (fMRI cleaning with ``standardize="zscore_sample"``, recorded in ``meta.json``)."""
    for step in store.meta.get("steps") or []:
        params = step.get("params") or {}
        if step.get("name") == "clean" and params.get("standardize") in ("zscore_sample", "zscore", True):
            return True
    return False


def no_recording_error(key: str, query: str, stores) -> ValueError:
    """The error for a ``key`` (``decode.query``/``pretrain.query``) that selects no
    recording of ``stores``: which stores, which columns a query can use, and how to
    select every recording (a config's query is written for that config's own data)."""
    paths = ", ".join(str(getattr(st, "path", st)) for st in stores)
    columns = sorted({c for st in stores for c in st.manifest.columns} - {"id", "n_times", "path"})
    return ValueError(f"{key}={query!r} selects no recording of the data stores ({paths}). A config's query is "
                      f"written for that config's own data: give --{key} \"\" to use every recording, or a query "
                      f"on the manifest's columns ({', '.join(columns[:12])}).")


class StoreWindows(Dataset):
    """Windows over several stores, normalised the same way for every consumer.

    Item ``i``: ``{"x": (L, C) float32, "key": channel-set key, "sfreq": Hz, "y": label
    or nan, "index": i}``. ``normalize``: ``"auto"`` z-scores each channel with its own
    recording's mean and sd unless the store's pipeline already did; ``"recording"``
    always; ``"none"`` never. Statistics are computed once per recording and cached (a
    :meth:`subset` shares the cache); constant channels are left centred.

    ``align`` (one label per window, or None): Euclidean alignment (He & Wu 2019) of each
    unit, e.g. each subject: after normalisation, every window ``x (L, C)`` of unit ``u``
    becomes ``x R_u^-1/2``, where ``R_u`` is the mean of ``xᵀx / L`` over all of unit
    ``u``'s windows in this dataset. Each unit's mean covariance becomes the identity, so
    units recorded differently share one reference (the Riemannian re-centring of Zanini
    et al. 2018, in its Euclidean form). It uses no labels; because ``R_u`` comes from
    every window of ``u`` (test windows included), a unit must never straddle a fold's
    training and test sides (:mod:`neuroconv.brain.decode` checks this).
    """

    def __init__(self, stores: list[SequenceStore], windows: pd.DataFrame, normalize: str = "auto",
                 align=None):
        if normalize not in ("auto", "recording", "none"):
            raise ValueError(f"`normalize` must be 'auto', 'recording' or 'none'; got {normalize!r}.")
        self.stores, self.normalize = stores, normalize
        self.windows = windows.reset_index(drop=True)
        self._store_idx = self.windows["store"].to_numpy(int)
        self._ids = self.windows["id"].astype(str).to_numpy()
        self._start = self.windows["start"].to_numpy(np.int64)
        self._stop = self.windows["stop"].to_numpy(np.int64)
        self._y = self.windows["y"].to_numpy() if "y" in self.windows else None
        self._zscore = [normalize == "recording" or (normalize == "auto" and not store_is_standardized(st))
                        for st in stores]
        self._stats: dict = {}
        self._band, self._filtered = None, {}
        self._keys = {}
        for s, rid in set(zip(self._store_idx, self._ids)):
            self._keys[(s, rid)] = channel_set_key(stores[s].channels(rid))
        self.keys = [self._keys[(s, r)] for s, r in zip(self._store_idx, self._ids)]
        self._align, self._whiten = None, {}
        # the dataset this one is a subset of (itself), its rows there, and its band-passed views
        self._root, self._rows, self._views = self, np.arange(len(self.windows)), {}
        if align is not None:
            self._fit_alignment(np.asarray(align, dtype=object))

    def __len__(self) -> int:
        return len(self.windows)

    def subset(self, idx) -> "StoreWindows":
        """The windows at positions ``idx``, sharing this dataset's normalisation cache
        and alignment (fitted on the whole dataset)."""
        idx = np.asarray(idx, dtype=int)
        sub = StoreWindows(self.stores, self.windows.iloc[idx], self.normalize)
        sub._stats, sub._band, sub._filtered = self._stats, self._band, self._filtered
        sub._root, sub._rows, sub._views = self._root, self._rows[idx], self._views
        if self._align is not None:
            sub._align, sub._whiten = self._align[idx], self._whiten
        return sub

    def _fit_alignment(self, align: np.ndarray) -> None:
        if len(align) != len(self.windows):
            raise ValueError(f"align must hold one unit label per window ({len(self.windows)}); got {len(align)}.")
        self._align = None  # the windows themselves, only normalised
        for u in dict.fromkeys(align):
            rows = np.flatnonzero(align == u)
            if len(rows) < 2:
                raise ValueError(f"Euclidean alignment of unit {u!r}: it has {len(rows)} window; the mean covariance "
                                 "of one window whitens it to nothing. Align by a unit with several windows (e.g. "
                                 "the subject of trial windows), or set data.align none.")
            if len({self.keys[i] for i in rows}) != 1:
                raise ValueError(f"Euclidean alignment of unit {u!r}: its windows have different channel sets.")
            R = np.mean([(lambda x: x.T @ x / len(x))(self.window(i)) for i in rows], axis=0)
            w, v = np.linalg.eigh(R)
            w = np.maximum(w, w.max() * 1e-10)  # rank-deficient data (average reference): floor, not inf
            self._whiten[u] = (v / np.sqrt(w)) @ v.T
        self._align = align

    def channel_sets(self) -> dict[str, list]:
        """Channel-set key -> channel names, for every set in this dataset."""
        out = {}
        for (s, rid), key in self._keys.items():
            out.setdefault(key, list(self.stores[s].channels(rid)))
        return out

    def sfreqs(self) -> set[float]:
        return {float(self.stores[s].sfreq(r)) for s, r in self._keys}

    def filtered(self, band) -> "StoreWindows":
        """The same windows cut from each recording band-passed as a whole (``band`` =
        ``(l_freq, h_freq)`` Hz, either None), as MOABB's paradigms filter the continuous
        recording before epoching: MNE's IIR filter (4th-order Butterworth, forwards and
        backwards), the recording normalised by its own filtered statistics. The store
        stays broadband; each filtered recording is computed once (shared by subsets).

        With Euclidean alignment, the band-passed windows are aligned again, each unit to
        the mean covariance of its own band-passed windows in the whole dataset this one is
        a subset of (alignment after the band-pass, as the pipelines that filter and then
        align do); the units and the fold rule are those of the broadband alignment."""
        if band is None:
            return self
        key = (None if band[0] is None else float(band[0]), None if band[1] is None else float(band[1]))
        root = self._root
        if key not in self._views:
            view = root.subset(np.arange(len(root)))
            view._band = key  # (a subset of root: its rows are root's rows)
            if root._align is not None:
                view._align, view._whiten = None, {}
                view._fit_alignment(root._align)
            self._views[key] = view
        return self._views[key].subset(self._rows)

    def _recording(self, s: int, rid: str) -> np.ndarray:
        """Recording ``rid`` of store ``s`` (store units), band-passed when this view filters."""
        if self._band is None:
            return self.stores[s].load(rid)
        key = (s, rid, self._band)
        if key not in self._filtered:
            from mne.filter import filter_data

            sfreq = float(self.stores[s].sfreq(rid))
            lo, hi = self._band
            hi = None if hi is not None and hi >= sfreq / 2 else hi
            x = np.asarray(self.stores[s].load(rid), dtype=np.float64)
            self._filtered[key] = filter_data(x.T, sfreq, lo, hi, method="iir", verbose=False).T if (lo or hi) else x
        return self._filtered[key]

    def _norm(self, s: int, rid: str):
        st = self._stats.get((s, rid, self._band))
        if st is None:
            arr = self._recording(s, rid)
            mean = arr.mean(0, dtype=np.float64)
            sd = arr.std(0, dtype=np.float64)
            sd[~(sd > 1e-12)] = 1.0
            st = self._stats[(s, rid, self._band)] = (mean, sd)
        return st

    def window(self, i: int) -> np.ndarray:
        """Window ``i`` as float64 ``(L, C)``, normalised."""
        s, rid = self._store_idx[i], self._ids[i]
        x = np.asarray(self._recording(s, rid)[self._start[i]: self._stop[i]], dtype=np.float64)
        if self._zscore[s]:
            mean, sd = self._norm(s, rid)
            x = (x - mean) / sd
        if self._align is not None:
            x = x @ self._whiten[self._align[i]]
        return x

    def raw_window(self, i: int) -> np.ndarray:
        """Window ``i`` as float64 ``(L, C)`` in the store's units (e.g. µV), not normalised."""
        s, rid = self._store_idx[i], self._ids[i]
        return np.asarray(self._recording(s, rid)[self._start[i]: self._stop[i]], dtype=np.float64)

    def arrays(self, fixed_length: bool = True):
        """Every window, normalised, for the baselines: ``(n, C, T)`` float64 when
        ``fixed_length`` (all windows must have one shape), else a list of ``(T, C)``."""
        xs = [self.window(i) for i in range(len(self))]
        if not fixed_length:
            return xs
        shapes = {x.shape for x in xs}
        if len(shapes) != 1:
            raise ValueError(f"these inputs need windows of one shape; got {sorted(shapes)[:3]}... (different "
                             "sampling rates or recording lengths); resample the stores to one rate.")
        return np.stack([x.T for x in xs])

    def __getitem__(self, i: int) -> dict:
        s = self._store_idx[i]
        x = torch.from_numpy(self.window(i).astype(np.float32))
        y = self._y[i] if self._y is not None else float("nan")
        return {"x": x, "key": self.keys[i], "sfreq": float(self.stores[s].sfreq(self._ids[i])), "y": y,
                "index": i}


class ArrayWindows(Dataset):
    """In-memory ``(n, channels, times)`` arrays in the batch format of
    :class:`StoreWindows` (one channel set, ``key``), for the scikit-learn estimators.
    ``lengths`` (n,): valid steps of each sample (the rest is padding, masked in batches)."""

    def __init__(self, X: np.ndarray, y=None, sfreq: float = 1.0, key: str = "input", lengths=None):
        self.X = torch.as_tensor(np.asarray(X, dtype=np.float32)).transpose(1, 2).contiguous()  # (n T C)
        self.y = None if y is None else np.asarray(y)
        self.sfreq, self.key = float(sfreq), key
        self.lengths = np.full(len(self.X), self.X.shape[1]) if lengths is None else np.asarray(lengths, dtype=int)
        self.keys = [key] * len(self.X)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        y = self.y[i] if self.y is not None else float("nan")
        return {"x": self.X[i, : self.lengths[i]], "key": self.key, "sfreq": self.sfreq, "y": y, "index": i}

    def subset(self, idx) -> "ArrayWindows":
        """The samples at positions ``idx`` (as :meth:`StoreWindows.subset`)."""
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        sub = ArrayWindows.__new__(ArrayWindows)
        sub.X, sub.y = self.X[torch.from_numpy(idx)], None if self.y is None else self.y[idx]
        sub.sfreq, sub.key, sub.lengths = self.sfreq, self.key, self.lengths[idx]
        sub.keys = [self.key] * len(idx)
        return sub

    def channel_sets(self) -> dict[str, list]:
        return {self.key: [f"ch{i}" for i in range(self.X.shape[2])]}

    def filtered(self, band) -> "ArrayWindows":
        """The samples band-passed one by one (``band`` = ``(l_freq, h_freq)`` Hz; arrays
        have no continuous recording to filter first), with MNE's IIR filter."""
        if band is None:
            return self
        from .baselines import BandPass

        X = self.X.numpy().astype(np.float64).transpose(0, 2, 1)  # (n C T)
        Xf = BandPass(sfreq=self.sfreq, l_freq=band[0], h_freq=band[1]).fit(X).transform(X)
        out = ArrayWindows(Xf, self.y, self.sfreq, self.key, self.lengths)
        return out

    def sfreqs(self) -> set[float]:
        return {self.sfreq}

    def arrays(self, fixed_length: bool = True):
        """The samples as ``(n, C, T)`` float64 (``fixed_length``: every sample must be
        whole) or a list of ``(T_i, C)`` arrays without their padding."""
        X = self.X.numpy().astype(np.float64)
        if not fixed_length:
            return [x[:n] for x, n in zip(X, self.lengths)]
        if (self.lengths != X.shape[1]).any():
            raise ValueError("these inputs need samples of one length; some are padded (NaN at the end).")
        return X.transpose(0, 2, 1)


class Crops(Dataset):
    """Crops of the windows of ``ds`` (a :class:`StoreWindows` or :class:`ArrayWindows`).

    ``n_crops=None`` (training): item ``i`` is a random ``crop``-step crop of window ``i``
    (drawn from torch's global generator, so seeded runs repeat). ``n_crops=n`` (testing):
    item ``j`` is crop ``j % n`` of window ``j // n``, at evenly spaced starts
    (:meth:`average` folds predictions back onto the windows). Windows shorter than
    ``crop`` are used whole.
    """

    def __init__(self, ds, crop: int, n_crops: int | None = None):
        if isinstance(crop, bool) or not isinstance(crop, int) or crop < 2:
            raise ValueError(f"`crop` must be an integer number of steps >= 2; got {crop!r}.")
        if n_crops is not None and (isinstance(n_crops, bool) or not isinstance(n_crops, int) or n_crops < 1):
            raise ValueError(f"`n_crops` must be None or an integer >= 1; got {n_crops!r}.")
        self.ds, self.crop, self.n_crops = ds, crop, n_crops
        self.keys = list(ds.keys) if n_crops is None else [k for k in ds.keys for _ in range(n_crops)]

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, j: int) -> dict:
        i = j if self.n_crops is None else j // self.n_crops
        item = dict(self.ds[i])
        L = item["x"].shape[0]
        if L > self.crop:
            if self.n_crops is None:
                start = int(torch.randint(0, L - self.crop + 1, ()))
            else:
                start = int(round((j % self.n_crops) * (L - self.crop) / max(self.n_crops - 1, 1)))
            item["x"] = item["x"][start: start + self.crop]
        item["index"] = j
        return item

    def average(self, outputs: np.ndarray) -> np.ndarray:
        """Per-crop outputs (in this dataset's order) -> the mean over each window's crops."""
        n = self.n_crops or 1
        return np.asarray(outputs).reshape(len(self.ds), n, *np.shape(outputs)[1:]).mean(1)


class StepCrops(Dataset):
    """Random crops of whole recordings with per-step targets: item ``i`` is a crop of
    window ``i`` and of its targets ``y`` (one per step), of a length drawn between
    ``min_crop`` and ``crop`` steps (``crop`` when ``min_crop`` is None), at a random
    start, from torch's global generator (seeded runs repeat). Recordings no longer than
    the length are used whole."""

    def __init__(self, ds, crop: int, min_crop: int | None = None):
        for name, v in (("crop", crop), ("min_crop", crop if min_crop is None else min_crop)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ValueError(f"`{name}` must be an integer number of steps >= 2; got {v!r}.")
        if min_crop is not None and min_crop > crop:
            raise ValueError(f"`min_crop` ({min_crop}) must be at most `crop` ({crop}).")
        self.ds, self.crop, self.min_crop, self.keys = ds, crop, min_crop or crop, list(ds.keys)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.ds[i])
        y = np.asarray(item["y"])
        L = min(item["x"].shape[0], len(y))
        n = self.crop if self.min_crop >= self.crop else int(torch.randint(self.min_crop, self.crop + 1, ()))
        if L > n:
            start = int(torch.randint(0, L - n + 1, ()))
            item["x"], item["y"] = item["x"][start: start + n], y[start: start + n]
        return item


class Extra(Dataset):
    """The windows of ``ds`` with fixed per-window features: item ``i`` gains ``"extra"``,
    row ``i`` of ``values (n, E)`` (float64), e.g. a baseline's features that a model
    reads beside the signal."""

    def __init__(self, ds, values):
        values = np.asarray(values, dtype=np.float64)
        if len(values) != len(ds):
            raise ValueError(f"Extra: one row of values per window ({len(ds)}); got {len(values)}.")
        self.ds, self.values, self.keys = ds, torch.from_numpy(values), list(ds.keys)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        return {**self.ds[i], "extra": self.values[i]}


def collate(items: list[dict]) -> dict:
    """Pad to the longest window: ``x (B, L, C)``, ``mask (B, L)``, ``sfreq (B,)``, ``y (B,)``
    (or ``(B, L_y)`` for per-step targets, padded with -100, the index of no label, which
    negative targets become too), and
    ``extra (B, E)`` when the items carry fixed features."""
    keys = {it["key"] for it in items}
    if len(keys) != 1:
        raise RuntimeError("a batch mixes channel sets; use ChannelSetBatchSampler.")
    L = max(it["x"].shape[0] for it in items)
    C = items[0]["x"].shape[1]
    x = torch.zeros(len(items), L, C)
    mask = torch.zeros(len(items), L, dtype=torch.bool)
    for b, it in enumerate(items):
        n = it["x"].shape[0]
        x[b, :n] = it["x"]
        mask[b, :n] = True
    ys = [it["y"] for it in items]
    if isinstance(ys[0], np.ndarray) and ys[0].ndim == 1:  # per-step targets, padded with -100 (no label)
        y = torch.full((len(items), max(len(v) for v in ys)), -100, dtype=torch.long)
        for b, v in enumerate(ys):
            y[b, :len(v)] = torch.as_tensor(np.where(np.asarray(v) < 0, -100, v), dtype=torch.long)
    else:
        y = torch.as_tensor(np.asarray(ys))
    out = {"x": x, "mask": mask, "sfreq": torch.tensor([it["sfreq"] for it in items]),
           "y": y, "key": keys.pop(), "index": torch.tensor([it["index"] for it in items])}
    if "extra" in items[0]:
        out["extra"] = torch.stack([torch.as_tensor(it["extra"]) for it in items])  # (B E)
    return out


class ChannelSetBatchSampler(Sampler):
    """Batches of indices that share a channel set, shuffled per epoch when asked.

    Under ``torch.distributed`` with ``W`` processes, ``batch_size`` is per process: the
    sampler forms the global batches of ``W * batch_size`` exactly as one process with
    that batch size would (same shuffle, same order), and process ``r`` takes the
    ``r``-th slice of each. So a DDP run sees the same global batches, step by step, as a
    single process with ``batch_size * W``, and every process gets the same number of
    batches. A last global batch with fewer than ``W * batch_size`` indices is split as
    evenly as possible (an uneven split weighs its indices slightly unequally, as DDP
    averages the processes' mean losses); where it has fewer indices than processes, the
    processes left without one repeat one of its indices. The shuffle is seeded by ``seed + epoch``;
    Lightning calls :meth:`set_epoch`.
    """

    def __init__(self, keys: Sequence[str], batch_size: int, shuffle: bool, seed: int = 0,
                 drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1; got {batch_size}.")
        self.groups: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            self.groups.setdefault(k, []).append(i)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @staticmethod
    def _world() -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    def _batches(self) -> list[list[int]]:
        world, rank = self._world()
        size = self.batch_size * world  # a global batch
        rng = np.random.default_rng(self.seed + self.epoch)
        batches = []
        for idx in self.groups.values():
            idx = list(rng.permutation(idx)) if self.shuffle else list(idx)
            for j in range(0, len(idx), size):
                b = idx[j: j + size]
                if len(b) == size or not self.drop_last:
                    batches.append([int(v) for v in b])
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if world == 1:
            return batches
        out = []
        for b in batches:
            share = np.array_split(np.asarray(b), world)[rank] if len(b) >= world else [b[rank % len(b)]]
            out.append([int(v) for v in share])
        return out

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def loader(ds, batch_size: int, shuffle: bool, seed: int = 0, num_workers: int = 0) -> DataLoader:
    """A DataLoader over ``ds`` (anything with ``keys``) whose batches share a channel set."""
    return DataLoader(ds, batch_sampler=ChannelSetBatchSampler(ds.keys, batch_size, shuffle, seed),
                      collate_fn=collate, num_workers=num_workers, persistent_workers=num_workers > 0)


def pretrain_windows(stores: list[SequenceStore], window_seconds: float, stride_seconds: float,
                     max_len: int, query: str = "") -> pd.DataFrame:
    """Fixed windows of ``window_seconds`` (at most ``max_len`` samples) from every store
    (from the recordings ``query`` selects, when given: ``pretrain.query``)."""
    if window_seconds <= 0 or stride_seconds <= 0:
        raise ValueError("data.window_seconds and data.stride_seconds must be > 0; got "
                         f"{window_seconds} and {stride_seconds}.")
    parts = []
    longest = 0.0
    for s, store in enumerate(stores):
        man = store.select(query, "pretrain.query")
        if not len(man):
            continue
        longest = max(longest, float((man["n_times"] / man["sfreq"]).max()))
        for sfreq, group in man.groupby("sfreq"):
            length = int(round(window_seconds * sfreq))
            if length > max_len:
                warnings.warn(f"{store.path}: windows of {window_seconds} s at {sfreq} Hz are {length} "
                              f"steps; cut to data.max_len={max_len} steps ({max_len / sfreq:.3g} s).")
                length = max_len
            stride = max(1, int(round(stride_seconds * sfreq)))
            if length < 2:
                raise ValueError(
                    f"{store.path}: a window of {window_seconds} s at {sfreq} Hz is {length} sample(s); raise "
                    "data.window_seconds."
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = store.windows(length, stride, ids=list(group["id"]))
            parts.append(w.assign(store=s))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if query and not parts:
        raise no_recording_error("pretrain.query", query, stores)
    if len(out) == 0:
        raise ValueError(
            f"a window of {window_seconds} s is longer than every recording (the longest is {longest:.1f} s); "
            "lower data.window_seconds."
        )
    return out


def sample_groups(stores: Sequence[SequenceStore], samples: pd.DataFrame, column, where) -> np.ndarray:
    """The group of every sample: the value of manifest ``column``, scoped by the
    recording's ``dataset`` (or by its store's path when the manifest names none), so subject "1"
    of two data sets are two groups while one data set split over two stores stays one.
    Missing values follow :func:`neuroconv.engine.folds.group_values`: the recording is
    its own group. ``where`` names the config key in error messages.

    ``column`` may be a list of columns (with a list of ``where``): then a dict
    ``{column: groups}``, read in one pass."""
    from neuroconv.engine.folds import group_values

    columns, wheres = ([column], [where]) if isinstance(column, str) else (list(column), list(where))
    ids_all = samples["id"].astype(str).to_numpy()
    store_of = samples["store"].to_numpy()
    raw, fallback, scope = ({c: np.empty(len(samples), dtype=object) for c in columns} for _ in range(3))
    for s, store in enumerate(stores):
        rows = np.flatnonzero(store_of == s)
        if not len(rows):
            continue
        man = store.manifest.set_index("id", drop=False)
        ids, here = ids_all[rows], str(store.path.resolve())
        sc = [here] * len(ids)
        if "dataset" in man.columns:
            sc = [here if pd.isna(d) or str(d) == "" else str(d) for d in man.loc[ids, "dataset"]]
        for c, w in zip(columns, wheres):
            if c not in man.columns:
                raise ValueError(f"{w}={c!r} is not a column of {store.path}/manifest.csv; columns: "
                                 f"{sorted(man.columns)}.")
            raw[c][rows], scope[c][rows] = man.loc[ids, c].to_numpy(), sc
            fallback[c][rows] = [f"{here}:{i}" for i in ids]
    n = len(samples)
    flat = group_values(np.concatenate([raw[c] for c in columns]), np.concatenate([fallback[c] for c in columns]))
    out = {}
    for k, c in enumerate(columns):
        vals = flat[k * n:(k + 1) * n]
        out[c] = np.asarray([v if v.startswith("recording:") else f"{sc}:{v}" for v, sc in zip(vals, scope[c])],
                            dtype=object)
    return out[column] if isinstance(column, str) else out


def sample_columns(stores: Sequence[SequenceStore], samples: pd.DataFrame, *, group_by: str, within: str = "",
                   unit: str = "auto", align: str = "none", is_test=None, transductive: bool = False,
                   log=print) -> tuple[pd.DataFrame, dict]:
    """Every per-sample column of a decode job, in one call, each read as
    :func:`sample_groups` reads a manifest column (scoped by data set; a missing value is
    its recording's own group):

    - ``group``: the ``group_by`` groups the folds keep apart;
    - ``within``: the values of ``within`` (``""`` for all when empty);
    - ``unit``: the independent unit of the statistics (``unit``; ``"auto"``: the site
      when sites are left out, else the subject, else the groups; the groups, too, when a
      single such unit is tested: within-unit inference);
    - ``align``: the Euclidean-alignment unit (``align``: ``"recording"`` or a manifest
      column; absent for ``"none"``). A unit's reference uses all its windows, so a unit
      that straddles two groups, or the training and test sides (``is_test``), is refused
      unless ``transductive``;
    - ``site``: the site of each sample, when every store has a site column.

    Returns ``(columns, units)``: a DataFrame in the order of ``samples``, and what the
    units are (``{"column", "n", "note"}``)."""
    is_test = np.zeros(len(samples), bool) if is_test is None else np.asarray(is_test, bool)
    rec = samples["store"].astype(str).to_numpy() + ":" + samples["id"].astype(str).to_numpy()
    has = {c: all(c in st.manifest.columns for st in stores) for c in ("site",)}
    column = unit if unit != "auto" else ("site" if group_by == "site" else "subject")
    own_units = column != group_by and (unit != "auto" or all(column in st.manifest.columns for st in stores))
    wanted = {group_by: "decode.group_by"}
    for c, w, on in ((within, "decode.within", bool(within)), (column, "decode.unit", own_units),
                     (align, "data.align", align not in ("", "none", "recording")), ("site", "site", has["site"])):
        if on:
            wanted.setdefault(c, w)
    g = sample_groups(stores, samples, list(wanted), list(wanted.values()))
    groups = g[group_by]
    cols = {"group": groups, "within": g[within] if within else np.full(len(samples), "", dtype=object)}
    if has["site"]:
        cols["site"] = g["site"]
    note = ""
    units = g[column] if own_units else groups
    if column != group_by and not own_units:
        note, column = f"the stores have no {column!r} column: units are the {group_by} groups", group_by
    tested = is_test if is_test.any() else np.ones(len(samples), bool)
    if len(np.unique(units[tested])) < 2 and column != group_by and unit == "auto":
        note = (f"a single {column} is tested: intervals and paired tests resample its {group_by} groups "
                f"(within-{column} inference, not a claim about other {column}s)")
        units, column = groups, group_by
    cols["unit"] = np.asarray(units, dtype=object)
    if align not in ("", "none"):
        cols["align"] = rec.astype(object) if align == "recording" else g[align]
        straddle = pd.Series(groups).groupby(cols["align"]).nunique()
        crossing = pd.Series(is_test).groupby(cols["align"]).nunique()
        bad = sorted(set(straddle.index[straddle > 1]) | set(crossing.index[crossing > 1]))
        if bad and not transductive:
            raise ValueError(f"data.align={align!r}: {len(bad)} unit(s) (e.g. {bad[0]}) hold samples of several "
                             f"decode.group_by groups, so their alignment would mix test windows into training "
                             "ones. Align by a unit inside the groups (data.align recording, or group_by at least as "
                             "coarse), or pass --transductive to accept it (recorded in metrics.json).")
        log(f"aligning the windows of each {align} to their own mean covariance (Euclidean alignment, no labels)")
    return pd.DataFrame(cols, index=samples.index), {"column": column, "n": int(len(np.unique(units[tested]))),
                                                     "note": note}


def reject_windows(windows: StoreWindows, folds, rule: str, seed: int = 0, log=print) -> tuple[list, dict | None]:
    """Leave out of each fold the windows whose peak-to-peak amplitude (the largest over
    channels, in the store's units: µV for EEG) exceeds a threshold chosen on that fold's
    training windows alone, for every model alike: from its training part, its inner split
    and its test part. ``rule``: ``"none"``; ``"auto"``, autoreject's global threshold
    (``autoreject.get_rejection_threshold``: cross-validated on the training windows, no
    labels; Jas et al. 2017); or a number, a fixed threshold in µV. Returns the folds (an
    :class:`~neuroconv.engine.folds.Fold` each) and what was rejected per fold (None for
    ``"none"``)."""
    from neuroconv.engine.folds import Fold, Holdout

    rule = str(rule).strip().lower()
    if rule in ("", "none"):
        return list(folds), None
    fixed = None
    if rule != "auto":
        try:
            fixed = float(rule)
        except ValueError:
            raise ValueError(f"decode.reject must be none, auto or a peak-to-peak threshold in µV; got {rule!r}.") \
                from None
    ptp = np.array([np.ptp(windows.raw_window(i), axis=0).max() for i in range(len(windows))])
    out, record = [], {"rule": rule, "folds": {}, "dropped_folds": {}}
    for f in folds:
        thr = fixed if fixed is not None else _autoreject_threshold(windows, f.train, seed)
        keep = ptp <= thr
        empty = [what for part, what in ((f.train, "training"), (f.test, "test")) if len(part) and not keep[part].any()]
        if empty:  # e.g. a test recording that is artefact throughout: the fold is left out, the run goes on
            part = f.train if empty[0] == "training" else f.test
            why = (f"the threshold ({thr:.3g} µV) left no {empty[0]} window (their peak-to-peak amplitudes span "
                   f"{ptp[part].min():.3g}-{ptp[part].max():.3g} µV)")
            log(f"warning: decode.reject {rule}: fold {f.index} left out: {why}")
            record["dropped_folds"][str(f.index)] = why
            continue
        inner = Holdout(f.inner.train[keep[f.inner.train]], f.inner.val[keep[f.inner.val]], f.inner.by,
                        f.inner.dropped, f.inner.note)
        out.append(Fold(f.index, f.train[keep[f.train]], f.test[keep[f.test]], inner))
        record["folds"][str(f.index)] = {"threshold_uv": float(thr), "train_rejected": int((~keep[f.train]).sum()),
                                         "test_rejected": int((~keep[f.test]).sum())}
    if not out:
        raise ValueError(f"decode.reject {rule}: the threshold left no training or no test window in any fold "
                         f"({'; '.join(f'fold {k}: {v}' for k, v in record['dropped_folds'].items())}); "
                         + ("raise it, or use decode.reject auto." if fixed is not None else
                            "these recordings are artefact throughout: check them, or use decode.reject none."))
    n = sum(v["train_rejected"] + v["test_rejected"] for v in record["folds"].values())
    log(f"rejected {n} window(s) over {len(out)} fold(s) by peak-to-peak amplitude ({rule})"
        + (f"; {len(record['dropped_folds'])} fold(s) left out" if record["dropped_folds"] else ""))
    return out, record


def _autoreject_threshold(windows: StoreWindows, train, seed: int) -> float:
    """autoreject's global peak-to-peak threshold of the training windows, in µV."""
    import mne

    try:
        from autoreject import get_rejection_threshold
    except ImportError as e:
        raise ImportError("decode.reject auto needs autoreject: pip install 'neuroconv[baselines]'") from e
    sub = windows.subset(train)
    (key, names), = sub.channel_sets().items()
    sfreqs = sub.sfreqs()
    if len(sfreqs) != 1:
        raise ValueError("decode.reject auto needs windows of one sampling rate.")
    X = np.stack([sub.raw_window(i).T for i in range(len(sub))]) * 1e-6  # (n C T) µV -> V
    epochs = mne.EpochsArray(X, mne.create_info(list(names), float(next(iter(sfreqs))), "eeg"), verbose="error")
    with mne.utils.use_log_level("error"):
        reject = get_rejection_threshold(epochs, random_state=seed, ch_types="eeg", verbose=False)
    return float(reject["eeg"]) * 1e6
