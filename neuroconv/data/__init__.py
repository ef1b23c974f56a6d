"""Sequence stores: read what ``neuroconv preprocess`` wrote, window it, split it.

See :mod:`neuroconv.data.store` for the on-disk layout and units, and
:mod:`neuroconv.data.braindecode` (``to_braindecode``, ``from_braindecode``) for the
conversion to and from braindecode datasets.
"""

from .dataset import WindowDataset
from .store import SequenceStore, StoreError, StoreWriter, consolidate

__all__ = ["SequenceStore", "WindowDataset", "StoreWriter", "StoreError", "consolidate"]
