"""Long-range-arena (LRA) and text validation suite: data side.

- :mod:`neuroconv.lra.data`: loaders for the released LRA files (ListOps, Text/IMDB,
  Retrieval/AAN, Image/CIFAR-10, Pathfinder 32/64/128 and Path-X) from a local folder.
- :mod:`neuroconv.lra.tokens`: vocabularies, tokenization, and the padded batch format
  ``Batch(inputs (B, L_pad[, D]), lengths (B,), labels (B,))``.
- :mod:`neuroconv.lra.listops`, :mod:`neuroconv.lra.pathfinder`: offline generators that
  write the released formats.
- :mod:`neuroconv.lra.configs`: the typed run config (:class:`LRAConfig`) and the shipped
  ``configs/lra/*.yaml`` hyperparameters.

Training side (``neuroconv lra``):

- :mod:`neuroconv.lra.train`: run configs with overrides (:func:`lra_run_config`),
  training and test evaluation on the shared engine (:mod:`neuroconv.engine`)
  (:func:`run_lra`), offline data generation (:func:`generate_data`).
- :mod:`neuroconv.lra.models`: the networks (classifier, Retrieval pair head, gated
  long-conv language model) and :func:`load_lra_model`.
- :mod:`neuroconv.lra.wikitext`: WikiText-103 word-level loader and perplexity.
- :mod:`neuroconv.lra.reproduce`: the CPU-scale comparison of the paper's central finding.
- :mod:`neuroconv.lra.cli`: the command line.
"""

from __future__ import annotations

from neuroconv.extras import require_lra  # noqa: F401 - an ImportError that names the missing extra

import importlib

__all__ = [
    "LRA_TASKS", "PATHFINDER_DIFFICULTIES", "LRADataset", "ListOpsDataset", "ImdbDataset", "AanDataset",
    "Cifar10Dataset", "PathfinderDataset", "lra_dataset", "load_cifar_batch", "read_pathfinder_metadata",
    "sample_listops", "write_listops", "PathfinderSample", "render_pathfinder", "write_pathfinder",
    "BYTE_VOCAB", "LISTOPS_VOCAB", "PAD_ID", "Batch", "Vocab", "collate", "collate_pairs",
    "encode_bytes", "encode_listops", "load_lra_config", "lra_config_names", "lra_config_path",
    "SequenceClassifier", "PairHead", "PairClassifier", "LanguageModel", "load_lra_model",
    "lra_run_config", "run_lra", "generate_data", "wikitext103", "lm_perplexity",
]


#: public name -> the submodule that defines it; loaded on first use, so importing
#: ``neuroconv.lra.cli`` (the command line, built for ``neuroconv --help``) or a data
#: module loads neither torch nor the layers
_LAZY = {
    **dict.fromkeys(("load_lra_config", "lra_config_names", "lra_config_path"), "configs"),
    **dict.fromkeys(("LRA_TASKS", "PATHFINDER_DIFFICULTIES", "AanDataset", "Cifar10Dataset", "ImdbDataset",
                     "ListOpsDataset", "LRADataset", "PathfinderDataset", "load_cifar_batch", "lra_dataset",
                     "read_pathfinder_metadata"), "data"),
    **dict.fromkeys(("sample_listops", "write_listops"), "listops"),
    **dict.fromkeys(("LanguageModel", "PairClassifier", "PairHead", "SequenceClassifier", "load_lra_model"),
                    "models"),
    **dict.fromkeys(("PathfinderSample", "render_pathfinder", "write_pathfinder"), "pathfinder"),
    **dict.fromkeys(("BYTE_VOCAB", "LISTOPS_VOCAB", "PAD_ID", "Batch", "Vocab", "collate", "collate_pairs",
                     "encode_bytes", "encode_listops"), "tokens"),
    **dict.fromkeys(("generate_data", "lra_run_config", "run_lra"), "train"),
    **dict.fromkeys(("lm_perplexity", "wikitext103"), "wikitext"),
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
