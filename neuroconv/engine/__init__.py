"""The generic training engine every job runs on (``pretrain``, ``decode``, ``lra``, the
scikit-learn estimators).

- :mod:`.config`: one config system — typed dataclasses parsed by jsonargparse
  (:class:`JobParser`), and the trainer settings every job shares (:class:`TrainerConfig`).
- :mod:`.folds`: :class:`Folds`, every split (cross-validation, early stopping,
  pretraining validation, baselines) on scikit-learn splitters, with one rule for
  missing group values.
- :mod:`.runner`: :class:`Run` (run folders, created exclusively), :func:`fit` (the
  Lightning loop, NaN guard, best-state reload), :func:`predict`, export of weights.
- :mod:`.tasks`: :class:`SupervisedTask` and the optimizer/NaN-guard base
  :class:`TrainTask`.

Nothing here knows about brain data or benchmarks; ``neuroconv.brain`` and
``neuroconv.lra`` build on it.
"""

from __future__ import annotations

from .config import SHORTCUTS, ConfigError, JobParser, TrainerConfig, to_dict
from .folds import Folds, Holdout, group_values, time_holdout

__all__ = ["TrainerConfig", "JobParser", "ConfigError", "SHORTCUTS", "to_dict", "Folds", "Holdout", "group_values",
           "time_holdout", "Run", "fit", "FitResult", "predict", "make_trainer", "quiet_lightning", "export_model",
           "read_export", "SupervisedTask", "TrainTask", "NonFiniteLossError"]

_LAZY = {  # Lightning-dependent pieces load on first use
    "Run": ".runner", "fit": ".runner", "FitResult": ".runner", "predict": ".runner", "make_trainer": ".runner",
    "quiet_lightning": ".runner", "export_model": ".runner", "read_export": ".runner",
    "SupervisedTask": ".tasks", "TrainTask": ".tasks", "NonFiniteLossError": ".tasks",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
