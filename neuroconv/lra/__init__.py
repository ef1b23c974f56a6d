"""Long-range-arena (LRA) and text validation suite: data side.

- :mod:`neuroconv.lra.data`: loaders for the released LRA files (ListOps, Text/IMDB,
  Retrieval/AAN, Image/CIFAR-10, Pathfinder 32/64/128 and Path-X) from a local folder.
- :mod:`neuroconv.lra.tokens`: vocabularies, tokenization, and the padded batch format
  ``Batch(inputs (B, L_pad[, D]), lengths (B,), labels (B,))``.
- :mod:`neuroconv.lra.listops`, :mod:`neuroconv.lra.pathfinder`: offline generators that
  write the released formats.
- :mod:`neuroconv.lra.configs`: the shipped ``configs/lra/*.yaml`` hyperparameters.
"""

from __future__ import annotations

from .configs import load_lra_config, lra_config_names, lra_config_path
from .data import (
    LRA_TASKS,
    PATHFINDER_DIFFICULTIES,
    AanDataset,
    Cifar10Dataset,
    ImdbDataset,
    ListOpsDataset,
    LRADataset,
    PathfinderDataset,
    load_cifar_batch,
    lra_dataset,
    read_pathfinder_metadata,
)
from .listops import sample_listops, write_listops
from .pathfinder import PathfinderSample, render_pathfinder, write_pathfinder
from .tokens import (
    BYTE_VOCAB,
    LISTOPS_VOCAB,
    PAD_ID,
    Batch,
    Vocab,
    collate,
    collate_pairs,
    encode_bytes,
    encode_listops,
)

__all__ = [
    "LRA_TASKS", "PATHFINDER_DIFFICULTIES", "LRADataset", "ListOpsDataset", "ImdbDataset", "AanDataset",
    "Cifar10Dataset", "PathfinderDataset", "lra_dataset", "load_cifar_batch", "read_pathfinder_metadata",
    "sample_listops", "write_listops", "PathfinderSample", "render_pathfinder", "write_pathfinder",
    "BYTE_VOCAB", "LISTOPS_VOCAB", "PAD_ID", "Batch", "Vocab", "collate", "collate_pairs",
    "encode_bytes", "encode_listops", "load_lra_config", "lra_config_names", "lra_config_path",
]
