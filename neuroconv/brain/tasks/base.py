"""What a decode task is: what a sample, a target and a score are.

The decode loop (:mod:`neuroconv.brain.decode`) fits and predicts every model on every
fold and knows nothing else; a task plugs in through :class:`Task`:

- :meth:`Task.samples`: the samples of the stores (one row each: ``store, id, start,
  stop, label``);
- :meth:`Task.targets`: their targets (the kind, the classes, ``y``) and why;
- :meth:`Task.rows`: the rows of ``predictions.csv`` of one fold;
- :meth:`Task.predictions`: every model's rows as the statistics see them
  (:class:`neuroconv.engine.compare.Predictions` or a task's own kind, scored over
  independent units by :func:`neuroconv.engine.compare.statistics`);
- :meth:`Task.extras` and :meth:`Task.write`: what the field reads besides the scores
  (confusion matrices, events, hypnograms).

A task is one new module that calls :func:`register_task`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Task", "Targets", "TASKS", "register_task", "task"]


@dataclass(frozen=True)
class Targets:
    """The targets of a decode job.

    Attributes:
        kind: what a model predicts (``"classification"``, ``"regression"``, or a dense
            task's kind); models declare the kinds they serve (``Traits.tasks``).
        reason: why this kind (logged and written to metrics.json).
        classes: class names (empty for regression).
        y: ``(n,)`` one target per sample (integer classes, numbers, or a dense task's
            per-step targets).
    """

    kind: str
    reason: str
    classes: list
    y: np.ndarray


class Task:
    """The interface of a decode task (see the module docstring)."""

    name = "task"

    def inputs(self, paths, test_paths, kc, dc, log=print):
        """``(stores, n_train, samples, targets, is_test)``: the stores (training stores,
        then ``decode.test_stores``), their samples and targets; ``is_test`` marks the
        samples of the test stores."""
        from neuroconv.data import open_stores

        train = open_stores(paths)
        stores = train + (open_stores(test_paths) if test_paths else [])
        samples = self.samples(stores, kc, dc)
        is_test = samples["store"].to_numpy() >= len(train)
        if test_paths and not is_test.any():
            raise ValueError(f"decode.test_stores {list(test_paths)} hold no sample to test.")
        return stores, len(train), samples, self.targets(stores, samples, is_test, kc), is_test

    def samples(self, stores, kc, dc) -> pd.DataFrame:
        """The samples of ``stores`` (``kc``: the decode section, ``dc``: the data section):
        rows ``store, id, start, stop, label``."""
        raise NotImplementedError

    def targets(self, stores, samples: pd.DataFrame, is_test: np.ndarray, kc) -> Targets:
        """The targets of ``samples`` (of ``stores``); ``is_test`` marks samples of external
        test stores (their labels never decide the kind or the classes)."""
        raise NotImplementedError

    def metric_names(self, kind: str) -> tuple:
        """The metrics of this task, the headline first."""
        raise NotImplementedError

    def rows(self, samples: pd.DataFrame, y, out, targets: Targets) -> pd.DataFrame:
        """The ``predictions.csv`` rows of one fold's test samples (``samples`` has the
        columns ``model, fold, store, id, start, stop, label, group, within, unit``)."""
        raise NotImplementedError

    def predictions(self, rows: pd.DataFrame, targets: Targets, by: str | None = None) -> dict:
        """Every model's predictions (its :meth:`rows` of all folds) as the statistics see
        them: model -> :class:`~neuroconv.engine.compare.Predictions` (or a task's own kind
        with the same protocol), each over the same samples in the same order, with their
        units, folds and, when ``by`` names a column, groups."""
        raise NotImplementedError

    def extras(self, rows: pd.DataFrame, targets: Targets) -> dict:
        """Each model's own keys of metrics.json besides its scores (e.g. a confusion
        matrix), from its rows: ``{model: {...}}`` (none by default)."""
        return {}

    def write(self, run, rows: pd.DataFrame, design) -> None:
        """Outputs besides the metrics (plots, events), from every model's rows and the
        run's :class:`~neuroconv.brain.design.Design`."""


#: name -> :class:`Task` instance (``decode.task``)
TASKS: dict[str, Task] = {}


def register_task(t: Task) -> Task:
    """Register the task ``t`` under ``t.name`` (``decode.task``)."""
    if t.name in TASKS:
        raise ValueError(f"task {t.name!r} is registered twice")
    TASKS[t.name] = t
    return t


def task(name: str) -> Task:
    """The task ``name``, or an error listing the tasks."""
    if name not in TASKS:
        raise ValueError(f"decode.task must be one of {sorted(TASKS)}; got {name!r}.")
    return TASKS[name]
