"""Optimizer parameter groups (the state-spaces/s4 convention).

Parameters tagged by :func:`neuroconv.kernel_gen.register_optim` get their own settings:
kernel weights, SSM ``A``/``dt`` and butterfly factors their own learning rate and no
weight decay; ``D`` skips (2-D in ``LongConv``, 1-D in ``GatedLongConv``) no weight decay
at the base learning rate. Of the rest, matrices (``dim >= 2``) get ``weight_decay`` and
vectors (biases, norm scales) get none.
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["param_groups"]


def param_groups(model: nn.Module, lr: float, weight_decay: float = 0.0) -> list[dict]:
    """Build optimizer groups for ``model``.

    Returns a list of dicts for ``torch.optim.AdamW(groups)``: one group of decayed
    matrices, one of undecayed vectors, and one per distinct special setting (for
    example ``{"lr": 1e-3, "weight_decay": 0.0}`` for long-conv kernels). Every trainable
    parameter appears in exactly one group; empty groups are dropped. Each group has a
    ``"name"`` key for logging.
    """
    if lr <= 0:
        raise ValueError(f"`lr` must be > 0; got {lr!r}.")
    if weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0; got {weight_decay!r}.")
    decay, no_decay, special = [], [], {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hp = getattr(p, "_optim", None)
        if hp is not None and hp == {"weight_decay": 0.0}:
            no_decay.append(p)
        elif hp is not None:
            key = tuple(sorted(hp.items()))
            special.setdefault(key, []).append(p)
        elif p.dim() >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    groups = [
        {"name": "decay", "params": decay, "lr": lr, "weight_decay": weight_decay},
        {"name": "no_decay", "params": no_decay, "lr": lr, "weight_decay": 0.0},
    ]
    for key, params in special.items():
        hp = {"lr": lr, "weight_decay": 0.0} | dict(key)
        groups.append({"name": "special:" + ",".join(f"{k}={v}" for k, v in key), "params": params, **hp})
    return [g for g in groups if g["params"]]
