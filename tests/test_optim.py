"""Optimizer groups: which parameters are decayed, and at which learning rate."""

from __future__ import annotations

import pytest
import torch

from neuroconv import LAYERS, SequenceModel, param_groups


def _groups_of(model, lr=1e-3, wd=0.1):
    where = {}
    for g in param_groups(model, lr=lr, weight_decay=wd):
        for p in g["params"]:
            assert id(p) not in where, "a parameter is in two groups"
            where[id(p)] = g
    return where


@pytest.mark.parametrize("layer", ["longconv", "gated", "butterfly", "s4d"])
def test_skip_D_is_never_decayed(layer):
    model = SequenceModel(d_input=3, d_model=8, n_layers=2, layer=layer, l_max=32,
                          layer_args={} if layer != "longconv" else {"channels": 2})
    where = _groups_of(model)
    Ds = [p for n, p in model.named_parameters() if n.endswith(".D")]
    assert Ds, "every long-conv layer has a D skip"
    assert any(p.dim() == 2 for p in Ds) or layer != "longconv"  # LongConv's D is (channels, H)
    for p in Ds:
        assert where[id(p)]["weight_decay"] == 0.0 and where[id(p)]["lr"] == 1e-3


def test_matrices_decayed_vectors_and_kernels_not():
    model = SequenceModel(d_input=3, d_model=8, n_layers=1, layer="longconv", l_max=32,
                          layer_args={"kernel_args": {"lr": 5e-4}})
    where = _groups_of(model)
    for name, p in model.named_parameters():
        g = where[id(p)]
        if "kernel" in name:
            assert (g["lr"], g["weight_decay"]) == (5e-4, 0.0), name
        elif name.endswith(".D") or p.dim() < 2:
            assert g["weight_decay"] == 0.0, name
        else:
            assert g["weight_decay"] == 0.1, name
    # every trainable parameter is in exactly one group
    assert len(where) == sum(1 for p in model.parameters() if p.requires_grad)
    assert set(LAYERS) >= {"longconv", "gated"}
    torch.optim.AdamW(param_groups(model, 1e-3, 0.1))
