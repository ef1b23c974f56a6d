"""Training-side data: windows from one or more sequence stores, normalised and batched.

A window table is a DataFrame with columns ``store`` (index into a list of stores),
``id``, ``start``, ``stop`` and, for decoding, ``y``. Batches never mix channel sets
(:class:`ChannelSetBatchSampler`), and windows of different lengths (different sampling
rates) are padded with a validity mask (:func:`collate`).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from neuroconv.data import SequenceStore

from .models import channel_set_key

__all__ = [
    "StoreWindows",
    "ChannelSetBatchSampler",
    "collate",
    "open_stores",
    "pretrain_windows",
    "split_windows",
]


def open_stores(paths: Sequence[str]) -> list[SequenceStore]:
    """Open stores, with a clear error for a missing or empty one."""
    stores = []
    for p in paths:
        store = SequenceStore(p)
        if len(store) == 0:
            raise ValueError(
                f"sequence store {p} is empty (no recordings). Check the preprocess summary: "
                "every recording may have failed."
            )
        stores.append(store)
    if not stores:
        raise ValueError("no sequence stores given: set data.stores or data.sources.")
    return stores


class StoreWindows(Dataset):
    """Windows over several stores as a dataset of dicts.

    Item ``i``: ``{"x": (L, C) float32, "key": channel-set key, "sfreq": Hz, "y": label
    or nan, "index": i}``. With ``normalize="recording"`` each channel is z-scored with
    its recording's own mean and sd (computed once per recording, cached); constant
    channels are left centred.
    """

    def __init__(self, stores: list[SequenceStore], windows: pd.DataFrame, normalize: str = "recording"):
        if normalize not in ("recording", "none"):
            raise ValueError(f"`normalize` must be 'recording' or 'none'; got {normalize!r}.")
        self.stores, self.normalize = stores, normalize
        self.windows = windows.reset_index(drop=True)
        self._store_idx = self.windows["store"].to_numpy(int)
        self._ids = self.windows["id"].astype(str).to_numpy()
        self._start = self.windows["start"].to_numpy(np.int64)
        self._stop = self.windows["stop"].to_numpy(np.int64)
        self._y = self.windows["y"].to_numpy() if "y" in self.windows else None
        self._stats: dict = {}
        self._keys = {}
        for s, rid in set(zip(self._store_idx, self._ids)):
            self._keys[(s, rid)] = channel_set_key(stores[s].channels(rid))
        self.keys = [self._keys[(s, r)] for s, r in zip(self._store_idx, self._ids)]

    def __len__(self) -> int:
        return len(self.windows)

    def subset(self, idx) -> "StoreWindows":
        """The windows at positions ``idx``, sharing this dataset's per-recording
        normalisation statistics (so each recording is read for them only once)."""
        sub = StoreWindows(self.stores, self.windows.iloc[idx], self.normalize)
        sub._stats = self._stats
        return sub

    def channel_sets(self) -> dict[str, list]:
        """Channel-set key -> channel names, for every set in this dataset."""
        out = {}
        for (s, rid), key in self._keys.items():
            out.setdefault(key, list(self.stores[s].channels(rid)))
        return out

    def _norm(self, s: int, rid: str):
        st = self._stats.get((s, rid))
        if st is None:
            arr = self.stores[s].load(rid)
            mean = arr.mean(0, dtype=np.float64)
            sd = arr.std(0, dtype=np.float64)
            sd[~(sd > 1e-12)] = 1.0
            st = self._stats[(s, rid)] = (mean.astype(np.float32), sd.astype(np.float32))
        return st

    def __getitem__(self, i: int) -> dict:
        s, rid = self._store_idx[i], self._ids[i]
        x = np.asarray(self.stores[s].load(rid)[self._start[i] : self._stop[i]], dtype=np.float32)
        if self.normalize == "recording":
            mean, sd = self._norm(s, rid)
            x = (x - mean) / sd
        y = self._y[i] if self._y is not None else float("nan")
        return {"x": torch.from_numpy(np.ascontiguousarray(x)), "key": self.keys[i],
                "sfreq": float(self.stores[s].sfreq(rid)), "y": y, "index": i}


def collate(items: list[dict]) -> dict:
    """Pad to the longest window: ``x (B, L, C)``, ``mask (B, L)``, ``sfreq (B,)``, ``y (B,)``."""
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
    y = torch.as_tensor(np.asarray([it["y"] for it in items]))
    return {"x": x, "mask": mask, "sfreq": torch.tensor([it["sfreq"] for it in items]),
            "y": y, "key": keys.pop(), "index": torch.tensor([it["index"] for it in items])}


class ChannelSetBatchSampler(Sampler):
    """Batches of indices that share a channel set, shuffled per epoch when asked.

    Under ``torch.distributed`` each rank takes an equal share of the batches. The
    shuffle is seeded by ``seed + epoch``; Lightning calls :meth:`set_epoch`.
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

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        batches = []
        for idx in self.groups.values():
            idx = list(rng.permutation(idx)) if self.shuffle else list(idx)
            for j in range(0, len(idx), self.batch_size):
                b = idx[j : j + self.batch_size]
                if len(b) == self.batch_size or not self.drop_last:
                    batches.append([int(v) for v in b])
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
            n = math.ceil(len(batches) / world) * world
            batches = (batches * (n // max(len(batches), 1) + 1))[:n][rank::world]
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def pretrain_windows(stores: list[SequenceStore], window_seconds: float, stride_seconds: float,
                     max_len: int) -> pd.DataFrame:
    """Fixed windows of ``window_seconds`` (at most ``max_len`` samples) from every store."""
    if window_seconds <= 0 or stride_seconds <= 0:
        raise ValueError("data.window_seconds and data.stride_seconds must be > 0; got "
                         f"{window_seconds} and {stride_seconds}.")
    parts = []
    longest = 0.0
    for s, store in enumerate(stores):
        man = store.manifest
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
                    f"{store.path}: a window of {window_seconds} s at {sfreq} Hz is "
                    f"{length} sample(s); raise data.window_seconds."
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = store.windows(length, stride, ids=list(group["id"]))
            parts.append(w.assign(store=s))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(out) == 0:
        raise ValueError(
            f"a window of {window_seconds} s is longer than every recording (the longest is "
            f"{longest:.1f} s); lower data.window_seconds."
        )
    return out


def split_windows(windows: pd.DataFrame, stores: list[SequenceStore], by: str,
                  val_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split windows into train/validation so that no group (``by``) is in both.

    Groups are ``(store, value of column by)``. With a single group the split falls back
    to whole recordings, and with a single recording to time (the last
    ``val_fraction`` of its windows), with a warning.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"data.val_fraction must be in (0, 1); got {val_fraction}.")
    groups = []
    for s, store in enumerate(stores):
        man = store.manifest.set_index("id")
        if by not in man.columns:
            raise ValueError(
                f"data.split_by={by!r} is not a column of {store.path}/manifest.csv; columns: "
                f"{sorted(man.columns)}."
            )
        sub = windows[windows["store"] == s]
        groups.append(pd.Series([f"{s}:{v}" for v in man.loc[sub["id"], by].astype(str)], index=sub.index))
    g = pd.concat(groups).reindex(windows.index)
    if g.nunique() < 2:
        warnings.warn(f"only one `{by}` group: splitting train/validation by recording instead.")
        g = windows["store"].astype(str) + ":" + windows["id"].astype(str)
    if g.nunique() < 2:
        warnings.warn("only one recording: validating on the last windows in time.")
        n_val = max(1, int(round(val_fraction * len(windows))))
        order = windows.sort_values("start").index
        return windows.loc[order[:-n_val]], windows.loc[order[-n_val:]]
    rng = np.random.default_rng(seed)
    uniq = np.array(sorted(g.unique()))
    rng.shuffle(uniq)
    n_val = min(len(uniq) - 1, max(1, int(round(val_fraction * len(uniq)))))
    val_groups = set(uniq[:n_val])
    is_val = g.isin(val_groups)
    return windows[~is_val], windows[is_val]
