"""Sequence stores: read what ``neuroconv preprocess`` wrote, window it, split it.

See :mod:`neuroconv.data.store` for the on-disk layout and units.
"""

from .dataset import WindowDataset
from .store import SequenceStore, StoreError, StoreWriter, consolidate

__all__ = ["SequenceStore", "WindowDataset", "StoreWriter", "StoreError", "consolidate"]
