"""``torch`` view of store windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .store import SequenceStore


class WindowDataset(Dataset):
    """Windows of a :class:`SequenceStore` as a ``torch`` dataset.

    Parameters
    ----------
    store : SequenceStore or path to one.
    windows : DataFrame with at least ``id, start, stop`` (from ``store.windows`` or
        ``store.event_windows``); all windows of one dataset should have one length if
        batches are stacked by the default collate.

    Each item is ``(x, row)``: ``x`` a float32 tensor ``(length, n_channels)`` read through
    the memory map, and ``row`` the window's row as a dict (``id, start, stop``, and
    ``label`` etc. when present).
    """

    def __init__(self, store, windows: pd.DataFrame):
        self.store = store if isinstance(store, SequenceStore) else SequenceStore(store)
        missing = {"id", "start", "stop"} - set(windows.columns)
        if missing:
            raise ValueError(f"windows must have columns id, start, stop; missing {sorted(missing)}")
        self.windows = windows.reset_index(drop=True)
        self._rows = self.windows.to_dict(orient="records")
        self._maps: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def _array(self, rid: str) -> np.ndarray:
        arr = self._maps.get(rid)
        if arr is None:
            arr = self._maps[rid] = self.store.load(rid, mmap=True)
        return arr

    def __getitem__(self, i: int):
        row = self._rows[i]
        arr = self._array(str(row["id"]))
        start, stop = int(row["start"]), int(row["stop"])
        if start < 0 or stop > arr.shape[0] or stop <= start:
            raise IndexError(f"window {i} ({row['id']}, {start}:{stop}) is outside the "
                             f"recording of {arr.shape[0]} samples")
        x = torch.from_numpy(np.array(arr[start:stop], dtype=np.float32))  # (L, C)
        return x, row

    def __getstate__(self):  # memmaps are reopened in each DataLoader worker
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state
