"""The shipped configs/lra/*.yaml: loadable with safe_load, consistent with the loaders
and the model, and holding the authors' values (HazyResearch/safari@02220c6,
configs/experiment/lra/long-conv-lra-*.yaml and configs/experiment/cifar/long-conv-cifar.yaml)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch
import yaml

from neuroconv import LAYERS, ButterflyConv, LongConv, LongConvKernel, S4DKernel, SequenceModel
from neuroconv.engine.config import ConfigError
from neuroconv.lra.configs import model_kwargs
from neuroconv.lra import (
    BYTE_VOCAB,
    LISTOPS_VOCAB,
    load_lra_config,
    lra_config_names,
    lra_config_path,
    sample_listops,
)

PAPER = ["listops", "text", "retrieval", "image", "scifar", "pathfinder", "pathx"]

# task: (n_layers, d_model, norm, prenorm, lam, kernel_dropout, kernel_lr, batch, lr, wd, epochs)
SAFARI = {
    "listops": (8, 128, "batch", False, 0.002, 0.2, 0.0005, 50, 0.01, 0.05, 40),
    "text": (6, 256, "batch", True, 0.003, 0.2, 0.001, 16, 0.01, 0.05, 32),
    "retrieval": (6, 256, "batch", True, 0.004, 0.1, 0.0001, 32, 0.01, 0.05, 20),
    "image": (6, 512, "layer", False, 0.003, 0.2, 0.001, 50, 0.01, 0.05, 200),
    "scifar": (6, 512, "layer", False, 0.001, 0.2, 0.001, 50, 0.01, 0.05, 300),
    "pathfinder": (6, 256, "batch", True, 0.001, 0.3, 0.001, 64, 0.004, 0.03, 200),
    "pathx": (6, 256, "batch", True, 0.001, 0.3, 0.0005, 16, 0.0005, 0.05, 50),
}


def test_every_task_has_a_config():
    assert set(PAPER) | {"listops_cpu"} <= set(lra_config_names())


@pytest.mark.parametrize("name", PAPER + ["listops_cpu"])
def test_config_structure_and_model_builds(name):
    with open(lra_config_path(name), encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    cfg = load_lra_config(name)
    assert cfg.task == raw["task"] and cfg.source == raw["source"]
    for section in ("data", "model", "train"):  # every value in the file reaches the typed config
        for key, value in raw[section].items():
            if not isinstance(value, dict):
                assert getattr(getattr(cfg, section), key) == value, (name, section, key)
    assert cfg.train.warmup_steps < cfg.train.max_epochs * 10**6
    with torch.device("meta"):  # no memory, no time: checks every key is a real argument
        model = SequenceModel(**model_kwargs(cfg))
    assert model.config["l_max"] == raw["model"]["l_max"]


@pytest.mark.parametrize("name", PAPER)
def test_authors_values(name):
    cfg = load_lra_config(name)
    m = cfg.model
    got = (m.n_layers, m.d_model, m.norm, m.prenorm, m.lam, m.kernel_dropout, m.kernel_lr, cfg.train.batch_size,
           cfg.train.lr, cfg.train.weight_decay, cfg.train.max_epochs)
    assert got == SAFARI[name]
    assert "safari" in cfg.source and m.smooth_width == 1  # safari's LRA configs: squash only
    assert "long-conv" in lra_config_path(name).read_text()  # the source file is cited


# SequenceModel configs the shipped files built with the nested model.layer_args.kernel_args
# keys (neuroconv at d0b4f56), and the layer arguments of every --layer swap.
EXPECTED = json.loads((Path(__file__).parent / "expected_model_configs.json").read_text())


def test_the_record_covers_every_shipped_config():
    assert sorted(EXPECTED["configs"]) == sorted(EXPECTED["layer_swap"]) == lra_config_names()


@pytest.mark.parametrize("name", sorted(EXPECTED["configs"]))
def test_flat_model_keys_build_the_models_the_nested_keys_built(name):
    """Every shipped config builds exactly the SequenceModel config (layer and kernel
    arguments included) that it built before the model section became flat."""
    with torch.device("meta"):
        model = SequenceModel(**model_kwargs(load_lra_config(name)))
    assert model.config == EXPECTED["configs"][name]


def _resolved(layer: str, args: dict) -> dict:
    """``layer_args`` with every default of the layer and of its kernel filled in."""
    def defaults(*fns):
        out = {}
        for fn in reversed(fns):  # the first function's defaults win
            out.update({k: p.default for k, p in inspect.signature(fn).parameters.items()
                        if p.default is not inspect.Parameter.empty})
        return out

    layer_fns = {"s4d": (LongConv,), "butterfly": (ButterflyConv, LongConv)}.get(layer, (LAYERS[layer],))
    out = {**defaults(*layer_fns), **args}
    if layer != "attention":
        out["kernel_args"] = {**defaults(S4DKernel if layer == "s4d" else LongConvKernel), **args.get("kernel_args", {})}
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED["layer_swap"]))
def test_layer_swaps_build_the_layers_they_built(name):
    """``--layer X`` on a shipped config gives layer X the same arguments as before once
    defaults are resolved (the old translation wrote s4d's default d_state 64 out, and
    left channels out where the file did not set it; the flat keys do the opposite)."""
    from neuroconv.lra.train import lra_run_config

    for layer, old in EXPECTED["layer_swap"][name].items():
        new = model_kwargs(lra_run_config(config=name, layer=layer))["layer_args"]
        assert _resolved(layer, new) == _resolved(layer, old), (name, layer)


def test_configs_match_the_loaders():
    assert load_lra_config("listops").model.vocab_size == len(LISTOPS_VOCAB)
    assert load_lra_config("listops_cpu").model.vocab_size == len(LISTOPS_VOCAB)
    for name in ("text", "retrieval"):
        assert load_lra_config(name).model.vocab_size == len(BYTE_VOCAB)
        assert load_lra_config(name).model.l_max == load_lra_config(name).data.max_length
    for name, res in (("pathfinder", 32), ("pathx", 128)):
        cfg = load_lra_config(name)
        assert cfg.data.resolution == res and cfg.model.l_max == res * res
        assert cfg.model.bidirectional is True
    assert load_lra_config("image").data.grayscale is True
    assert load_lra_config("scifar").data.grayscale is False


def test_cpu_config_generates_and_fits():
    cfg = load_lra_config("listops_cpu")
    gen = {k: v for k, v in vars(cfg.generate).items() if v is not None}
    assert gen["max_length"] < cfg.data.max_length <= cfg.model.l_max
    data = sample_listops(20, min_length=gen["min_length"], max_length=gen["max_length"],
                          max_depth=gen["max_depth"], max_args=gen["max_args"], seed=gen["seed"])
    assert len(data) == 20


def test_load_by_path_and_errors(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("task: listops\nmodel: {d_model: 8}\n")
    assert load_lra_config(p).model.d_model == 8
    p.write_text("- a list\n")
    with pytest.raises(ConfigError):
        load_lra_config(p)
    marker = tmp_path / "pwned"
    p.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError):  # safe_load only: the tag is not executed
        load_lra_config(p)
    assert not marker.exists()
    with pytest.raises(ValueError, match="no LRA config named"):
        load_lra_config("nope")
