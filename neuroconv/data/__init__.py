"""Sequence stores: read what ``neuroconv preprocess`` wrote, and window it.

See :mod:`neuroconv.data.store` for the on-disk layout and units. Splits that keep
groups apart come from one place, :class:`neuroconv.engine.Folds`.
"""

from .store import SequenceStore, StoreError, StoreWriter, consolidate

__all__ = ["SequenceStore", "StoreWriter", "StoreError", "consolidate"]
