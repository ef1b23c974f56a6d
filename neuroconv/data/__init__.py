"""Sequence stores: read what ``neuroconv preprocess`` wrote, and window it.

See :mod:`neuroconv.data.store` for the on-disk layout and units, and
:mod:`neuroconv.data.braindecode` (``to_braindecode``, ``from_braindecode``) for the
conversion to and from braindecode datasets. Splits that keep groups apart come from one
place, :class:`neuroconv.engine.Folds`.
"""

from .store import SequenceStore, StoreError, StoreWriter, consolidate, open_stores

__all__ = ["SequenceStore", "StoreWriter", "StoreError", "consolidate", "open_stores"]
