"""Brain-data experiments: ``neuroconv pretrain`` and ``neuroconv decode`` on sequence stores.

Public surface:

- Jobs: :func:`run_pretrain`, :func:`run_decode` (and :class:`DecodeFailed`), configured
  by :class:`ExperimentConfig` (:func:`load_config`; built-in experiments in ``configs/``).
- Models: :class:`BrainModel` (per-channel-set encoders + a shared
  :class:`neuroconv.SequenceModel`), :func:`load_pretrained`, and
  :class:`CovConvNet` (long-conv filters read out through covariances).
- Data to model inputs: :class:`StoreWindows` (the one path from a store to what models
  and baselines see), :func:`open_stores`.
- The model zoo (:mod:`.zoo`): every decoder and baseline behind one interface
  (``ZOO``, ``build``); baselines' pipelines from the field's libraries:
  :func:`make_baseline`.

Modules: :mod:`.config` (the experiment config, with each model's own section),
:mod:`.data` (the one path from stores to model inputs), :mod:`.design` (everything a
decode run decides before fitting: samples, targets, folds, units, models), :mod:`.tasks`
(what a sample, a target and a score are), :mod:`.decode` (the loop over folds and
models), :mod:`.zoo` (the one registry of models and baselines), :mod:`.overlap` (test
data recognised by content), :mod:`.pretrain`, :mod:`.models`, :mod:`.covconv`,
:mod:`.baselines` and :mod:`.ssvep` (the pieces the zoo builds from), :mod:`.spd`,
:mod:`.sources` (pipelines run from a config), :mod:`.plots`, :mod:`.cli`. The training
loop, run folders, folds, statistics and the config system come from
:mod:`neuroconv.engine`.
"""

from __future__ import annotations

from neuroconv.extras import require_brain  # noqa: F401 - an ImportError that names the missing extra

__all__ = ["run_pretrain", "run_decode", "DecodeFailed", "ExperimentConfig", "load_config", "BrainModel",
           "load_pretrained", "CovConvNet", "StoreWindows", "open_stores", "make_baseline", "ZOO"]

_LAZY = {  # Lightning, scikit-learn and the pipelines load on first use
    "run_pretrain": ".pretrain", "run_decode": ".decode", "DecodeFailed": ".decode",
    "ExperimentConfig": ".config", "load_config": ".config", "BrainModel": ".models", "load_pretrained": ".models",
    "CovConvNet": ".covconv", "StoreWindows": ".data", "open_stores": ".data", "make_baseline": ".zoo.classical",
    "ZOO": ".zoo",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
