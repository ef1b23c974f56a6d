"""The model zoo: every decoder and every baseline behind one interface.

An entry (:class:`Entry`) has a name, its :class:`Traits` (ours or a baseline, neural or
classical, modalities, tasks, and what it needs: a pretrained backbone, one sampling
rate, fixed-length windows, site labels) and one function that builds it from the
experiment config. Every model is a :class:`Decoder`: ``fit(part)`` on a
:class:`TrainingPart` (a fold's training samples with the fold's inner split, class
weighting and seed), ``predict(data, idx)``, and ``report()`` (the choices made on the
inner split, the training, the learned kernels).

The same chance for every model is a property of this package, not of each model (see
:mod:`.base`): one grid and one criterion for every regulariser, one class weighting,
one inner split, one refit rule.

========================  ========  =========  ===============================================
module                    family    kind       models
========================  ========  =========  ===============================================
:mod:`.neural`            ours      neural     scratch, attention, finetune, probe
:mod:`.covconv`           ours      neural     covconv
:mod:`.neural`            baseline  neural     eegnet, shallow_fbcsp (braindecode)
:mod:`.classical`         baseline  classical  connectivity, ts_lr, xdawn_ts, csp_lda, erp_lda,
                                               bandpower
:mod:`.ssvep`             baseline  classical  ssvep_cca, ssvep_trca, ssvep_msetcca, ssvep_ts_lr
========================  ========  =========  ===============================================

``neuroconv.brain.zoo.ZOO`` lists them; ``build(name, cfg)`` makes one.
"""

from __future__ import annotations

from . import classical, covconv, neural, ssvep  # noqa: F401  (register the entries)
from .base import (C_GRID, CLASS_WEIGHTS, ZOO, Decoder, DecodeData, Entry, Traits, TrainingPart, class_weights,
                   selection_loss)

__all__ = ["ZOO", "Entry", "Traits", "Decoder", "DecodeData", "TrainingPart", "C_GRID", "CLASS_WEIGHTS", "build",
           "entry", "names", "class_weights", "selection_loss"]


def names(family: str | None = None) -> tuple[str, ...]:
    """The registered model names (of one ``family``, ``"ours"`` or ``"baseline"``)."""
    return tuple(n for n, e in ZOO.items() if family is None or e.traits.family == family)


def entry(name: str) -> Entry:
    """The entry of model ``name`` (a ValueError listing the names when unknown)."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; decode.models takes names from {list(ZOO)}.")
    return ZOO[name]


def build(name: str, cfg) -> Decoder:
    """A fresh :class:`Decoder` for model ``name`` from the experiment config ``cfg``."""
    return entry(name).build(cfg)
