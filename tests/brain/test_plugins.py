"""A model and a baseline of one's own, from a module outside the package: registered with
``neuroconv.brain.zoo.register`` and imported by ``--plugins``, each with its own config
section, run by ``neuroconv decode`` beside the zoo's baselines on the same folds, with
no edit to any file of the package."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest
import yaml

from .conftest import tiny_config

TOY = '''
"""A toy model (ours) and a toy baseline, registered from outside the package."""
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid

from neuroconv.brain import zoo


def _logvar(data, idx):
    X = data.windows.subset(idx).arrays()  # (n, C, T)
    return np.log(X.var(axis=2) + 1e-12)


@dataclass
class ToySettings:
    """Settings of the toy model.

    Args:
        alpha: Inverse L2 strength of its logistic regression.
    """

    alpha: float = 1.0


class ToyModel(zoo.Decoder):
    def fit(self, part):
        X = _logvar(part.data, part.train)
        self.est = LogisticRegression(C=self.settings.alpha).fit(X, part.data.y[part.train])
        self.hyperparameters = {"alpha": self.settings.alpha, "n_train": int(len(part.train))}
        return self

    def predict(self, data, idx):
        return zoo.proba_of(self.est, _logvar(data, idx), data.n_out)


class ToyBaseline(zoo.Decoder):
    def fit(self, part):
        self.est = NearestCentroid().fit(_logvar(part.data, part.train), part.data.y[part.train])
        return self

    def predict(self, data, idx):
        pred = self.est.predict(_logvar(data, idx)).astype(int)
        return np.eye(data.n_out)[pred]


zoo.register("toy_model", zoo.Traits("ours", "classical", ("eeg",)), ToyModel, settings=ToySettings,
             summary="log-variance -> logistic regression (a plugin)")
zoo.register("toy_baseline", zoo.Traits("baseline", "classical", ("eeg",), library="scikit-learn"), ToyBaseline,
             summary="log-variance -> nearest centroid (a plugin)")
'''


@pytest.fixture()
def toy_plugin(tmp_path):
    """The plugin file, and the zoo restored after the test."""
    from neuroconv.brain import zoo
    from neuroconv.brain.config import _IMPORTED

    path = tmp_path / "plugins" / "toy_models.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(TOY))
    before = dict(zoo.ZOO)
    yield path
    zoo.ZOO.clear()
    zoo.ZOO.update(before)
    _IMPORTED.pop(str(path), None)


def test_a_plugin_model_and_baseline_run_beside_the_zoo(eeg_store, tmp_path, toy_plugin):
    from neuroconv.cli import main

    cfg = tiny_config([eeg_store], tmp_path, **{"decode.event_labels": ["left", "right"], "decode.tmax": 2.0,
                                                "decode.models": ["csp_lda"], "decode.cv": "leave_group_out"})
    from neuroconv.brain.config import to_dict

    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump(to_dict(cfg)))
    rc = main(["decode", "--config", str(config), "--plugins", str(toy_plugin),
               "--decode.models", "toy_model", "toy_baseline", "csp_lda", "--decode.toy_model.alpha", "0.25",
               "--decode.name", "toy"])
    assert rc == 0
    run = tmp_path / "runs" / "toy"
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["models"]) == {"toy_model", "toy_baseline", "csp_lda"}
    # its own settings section reached the model, and the run records it
    assert all(h["alpha"] == 0.25 for h in m["models"]["toy_model"]["hyperparameters"])
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["decode"]["toy_model"] == {"alpha": 0.25} and str(toy_plugin) in saved["plugins"]
    # the same folds and samples for all three; ours is compared with both others
    preds = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    keys = {name: part[["fold", "id", "start"]].sort_values(["fold", "id", "start"]).to_numpy().tolist()
            for name, part in preds.groupby("model")}
    assert keys["toy_model"] == keys["toy_baseline"] == keys["csp_lda"]
    assert {(p["first"], p["second"]) for p in m["paired"]} == {("toy_model", "toy_baseline"),
                                                                 ("toy_model", "csp_lda")}


def test_a_plugin_section_is_a_typed_config_key(tmp_path, toy_plugin):
    from neuroconv.brain.config import import_plugins, job_parser
    from neuroconv.engine.config import ConfigError

    import_plugins([str(toy_plugin)])
    parser = job_parser("decode")
    cfg, _, _ = parser.parse(["--decode.toy_model.alpha", "3"])
    assert cfg.decode.toy_model.alpha == 3.0
    with pytest.raises(ConfigError, match="decode.toy_model.alpha` must be a number"):
        parser.parse(["--decode.toy_model.alpha", "many"])
    with pytest.raises(ConfigError, match="Did you mean decode.toy_model.alpha"):
        parser.parse(["--decode.toy_model.alpah", "3"])


def test_an_unknown_model_or_plugin_fails_before_any_work(tmp_path, capsys):
    from neuroconv.cli import main

    rc = main(["decode", "--decode.models", "no_such_model"])
    assert rc == 1 and "unknown model(s) ['no_such_model']" in capsys.readouterr().err
    rc = main(["decode", "--plugins", str(tmp_path / "missing.py")])
    assert rc == 1 and "plugin file" in capsys.readouterr().err
