"""The model zoo: every decoder and every baseline behind one interface, in one registry.

An entry (:class:`Entry`) has a name, its :class:`Traits` (ours or a baseline, neural or
classical, modalities, tasks, whether it needs a pretrained backbone), its
:class:`Decoder` class, its own settings (a dataclass: the config section
``decode.<name>``) and a summary. Every model is a :class:`Decoder`: made per fold by
:func:`make`, ``fit(part)`` on a :class:`TrainingPart` (a fold's training samples with the
fold's inner split, class weighting and seed), ``predict(data, idx)``, and ``report()``
(the choices made on the inner split, the training, the learned kernels).

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
:mod:`.sleep`             ours      neural     sleepconv, sleepconv_short (staging)
:mod:`.sleep`             baseline  both       stage_lr(_hmm), stage_lgbm(_hmm), stage_gru
                                               (staging); yasa, sigma_lr (detection)
========================  ========  =========  ===============================================

Adding a model or a baseline is one new module that calls :func:`register` (inside the
package: one import line below; outside it: ``--plugins your_module.py``).
"""

from __future__ import annotations

from . import classical, covconv, neural, sleep, ssvep  # noqa: F401  (register the entries)
from .base import (C_GRID, CLASS_WEIGHTS, ZOO, Context, Decoder, DecodeData, Entry, Traits, TrainingPart, class_weights,
                   choose, entry, make, proba_of, register, regulariser_path, selection_loss)

__all__ = ["ZOO", "C_GRID", "Entry", "Traits", "Decoder", "Context", "DecodeData", "TrainingPart", "CLASS_WEIGHTS",
           "make", "choose", "entry", "register", "class_weights", "selection_loss", "proba_of", "regulariser_path"]
