"""One list of layer names: a layer registered in ``neuroconv.LAYERS`` (one edit) is
accepted by ModelConfig, SequenceModel, the LRA command and models, and the estimators,
and every unknown name is refused with the registry's names."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
import torch.nn as nn

from neuroconv import LAYERS, LongConvClassifier, ModelConfig, SequenceModel


class Toy(nn.Module):
    """A minimal registered layer: ``x (B, L, D) -> (B, L, D)``, a masked per-step MLP."""

    def __init__(self, d_model: int, l_max: int, *, bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.d_model, self.bidirectional = d_model, bidirectional
        self.net = nn.Sequential(nn.Linear(d_model, d_model), nn.Dropout(dropout))

    def forward(self, x, mask=None):
        y = self.net(x)
        return y if mask is None else y.masked_fill(~mask[..., None], 0.0)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(LAYERS, "toy", Toy)  # the one edit
    return "toy"


def test_modelconfig_and_sequencemodel_take_a_registered_layer(toy):
    cfg = ModelConfig(layer=toy, d_model=8, n_layers=2, bidirectional=True, dropout=0.2, layer_dropout=0.1)
    assert cfg.layer_args() == {"bidirectional": True, "dropout": 0.1}  # the keys Toy names, nothing else
    model = SequenceModel(**cfg.model_args(l_max=16, d_input=3, head="classification", d_output=2))
    assert all(isinstance(b.layer, Toy) for b in model.blocks)
    assert model(torch.randn(2, 16, 3), lengths=torch.tensor([16, 5])).shape == (2, 2)
    assert SequenceModel(3, layer=toy, d_model=8, n_layers=1, l_max=16)(torch.randn(1, 16, 3)).shape == (1, 16, 8)


def test_the_lra_command_and_models_take_a_registered_layer(toy):
    from neuroconv.lra.cli import _front, _help
    from neuroconv.lra.configs import lra_parser, model_kwargs
    from neuroconv.lra.models import SequenceClassifier
    from neuroconv.lra.train import lra_run_config

    cfg = lra_run_config(config="listops_cpu", layer=toy, overrides={"model.d_model": 8, "model.n_layers": 1})
    assert cfg.model.layer == toy
    assert lra_parser().parse(["--config", "listops_cpu", "--model.layer", toy])[0].model.layer == toy
    front, _ = _front(["--config", "listops_cpu", "--layer", toy], "neuroconv lra")
    assert front.layer == toy
    net = SequenceClassifier(model_kwargs(cfg))
    x = torch.randint(1, 10, (2, 12))
    assert net({"x": x, "mask": None}).shape == (2, cfg.model.d_output)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _help()
    assert "swap the sequence layer: " + ", ".join(LAYERS) in out.getvalue()


def test_the_estimators_take_a_registered_layer(toy):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, 2, 20)).astype(np.float32), np.arange(12) % 2
    clf = LongConvClassifier(layer=toy, d_model=8, n_layers=1, max_epochs=1, patience=0).fit(X, y)
    assert isinstance(clf.model_.brain.backbone.blocks[0].layer, Toy)
    assert clf.predict_proba(X).shape == (12, 2)


def test_unknown_names_list_the_registry(toy):
    from neuroconv.lra.train import lra_run_config

    want = r"`layer` must be one of \['attention', 'butterfly', 'gated', 'longconv', 's4d', 'toy'\] " \
           r"\(neuroconv.LAYERS\); got 'rnn'"
    for make in (lambda: ModelConfig(layer="rnn"), lambda: SequenceModel(3, layer="rnn"),
                 lambda: lra_run_config(config="listops_cpu", layer="rnn"),
                 lambda: LongConvClassifier(layer="rnn").fit(np.zeros((4, 1, 8)), [0, 1, 0, 1])):
        with pytest.raises(ValueError, match=want):
            make()


def test_help_lists_the_registry_and_the_parser_checks_it(toy):
    """The config's type is the registry as it is when a parser is built: --help lists
    every layer, the registered one included, and a name outside it is a ConfigError
    naming the key."""
    import typing

    from neuroconv.engine.config import ConfigError
    from neuroconv.lra.configs import lra_parser

    assert typing.get_type_hints(ModelConfig)["layer"] == typing.Literal[tuple(LAYERS)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        lra_parser().print_help()
    assert "--model.layer {" + ",".join(LAYERS) + "}" in out.getvalue() and ",toy}" in out.getvalue()
    with pytest.raises(ConfigError, match=r"config key `model.layer` must be one of 'longconv', 's4d', 'butterfly', "
                                          r"'attention', 'gated', 'toy'; got rnn"):
        lra_parser().parse(["--config", "listops_cpu", "--model.layer", "rnn"])


def test_no_other_list_of_layer_names():
    """The layer names are written once, in neuroconv/layers.py."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    bad = []
    for path in list((root / "neuroconv").rglob("*.py")) + list((root / "kernels").rglob("*.py")):
        text = path.read_text()
        for m in re.finditer(r"[\(\[\{]\s*\"longconv\",\s*\"s4d\"", text):
            if path.name != "layers.py":
                bad.append(f"{path.relative_to(root)}: {text[m.start():m.start() + 60]!r}")
    assert not bad, bad
