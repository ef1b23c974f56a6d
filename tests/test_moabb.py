"""The estimators as MOABB pipelines: the pipeline files of configs/moabb/ load with
MOABB's own parser, and MOABB's evaluations (within session, cross subject) put
CovConvClassifier's scores in MOABB's results table, equal to the same protocol run
by hand with scikit-learn. FakeDataset is generated in memory; nothing downloads (any
socket connection fails these tests) and MOABB's results go to tmp_path."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

moabb = pytest.importorskip("moabb")

from moabb.datasets.fake import FakeDataset  # noqa: E402
from moabb.evaluations import CrossSubjectEvaluation, WithinSessionEvaluation  # noqa: E402
from moabb.paradigms import P300, LeftRightImagery  # noqa: E402
from moabb.pipelines.utils import parse_pipelines_from_directory  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import get_scorer  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402
from sklearn.preprocessing import LabelEncoder  # noqa: E402

import neuroconv  # noqa: E402
import neuroconv.configs  # noqa: E402

PIPELINES = Path(neuroconv.configs.__file__).parent / "moabb"


@pytest.fixture
def pipelines_dir(tmp_path):
    """A copy of the shipped pipeline files (MOABB's parser leaves .lock files beside them)."""
    return str(shutil.copytree(PIPELINES, tmp_path / "pipelines"))


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No network, and a home folder of the test's own (MNE's config and data folders)."""

    def guard(*args, **kwargs):
        raise RuntimeError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket, "create_connection", guard)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MNE_DATA", str(tmp_path / "mne_data"))
    moabb.set_log_level("error")


def test_pipeline_files_load_with_moabbs_parser(pipelines_dir):
    assert sorted(p.name for p in PIPELINES.glob("*.yml")) == ["CovConv_P300.yml", "CovConv_SSVEP.yml",
                                                               "CovConv_imagery.yml"]
    configs = {c["name"]: c for c in parse_pipelines_from_directory(pipelines_dir)}
    assert set(configs) == {"neuroconv CovConv (long-conv filters, tangent space)",
                            "neuroconv CovConv (long-conv filters, tangent space, balanced)",
                            "neuroconv CovConv (long-conv filters, tangent space, SSVEP)"}
    paradigms = {p for c in configs.values() for p in c["paradigms"]}
    assert {"LeftRightImagery", "MotorImagery", "P300", "SSVEP"} <= paradigms
    for c in configs.values():
        (name, est), = c["pipeline"].steps
        assert isinstance(est, neuroconv.CovConvClassifier)
        assert est.get_params()["readout"] == "tangent" and est.random_state == 0
    assert configs["neuroconv CovConv (long-conv filters, tangent space, balanced)"]["pipeline"][-1].class_weight \
        == "balanced"
    # each file cites what its read-out is (the tangent space) and the filters
    import yaml

    for path in PIPELINES.glob("*.yml"):
        cited = yaml.safe_load(path.read_text())["citations"]
        assert "https://doi.org/10.1109/TBME.2011.2172210" in cited, path.name
        assert "https://doi.org/10.48550/arXiv.2302.06646" in cited, path.name
    # every paradigm named is one of MOABB's
    import moabb.paradigms as mp

    assert all(hasattr(mp, p) for p in paradigms)


def _fast(pipeline):
    """The shipped pipeline with a one-epoch budget (the test checks plumbing, not skill)."""
    return clone(pipeline).set_params(covconvclassifier__max_epochs=1, covconvclassifier__patience=0)


def _by_hand(paradigm, dataset, pipeline, protocol):
    """The evaluation's protocol with scikit-learn: {(subject, session): score}."""
    X, y, meta = paradigm.get_data(dataset)
    y = LabelEncoder().fit_transform(y)
    score = get_scorer(paradigm.scoring)
    out = {}
    if protocol == "within":
        for (s, k), m in meta.groupby(["subject", "session"]):
            idx = m.index.to_numpy()
            folds = [score(clone(pipeline).fit(X[idx[tr]], y[idx[tr]]), X[idx[te]], y[idx[te]])
                     for tr, te in KFold(2).split(idx)]
            out[(str(s), str(k))] = float(np.mean(folds))
    else:
        for s in meta["subject"].unique():
            est = clone(pipeline).fit(X[(meta["subject"] != s).to_numpy()], y[(meta["subject"] != s).to_numpy()])
            for k in meta["session"].unique():
                te = ((meta["subject"] == s) & (meta["session"] == k)).to_numpy()
                out[(str(s), str(k))] = float(score(est, X[te], y[te]))
    return out


@pytest.mark.parametrize("kind", ["imagery", "p300"])
def test_moabb_evaluations_score_the_estimator(kind, tmp_path, pipelines_dir):
    configs = {c["name"]: c for c in parse_pipelines_from_directory(pipelines_dir)}
    if kind == "imagery":
        paradigm = LeftRightImagery()
        dataset = FakeDataset(event_list=("left_hand", "right_hand"), n_sessions=1, n_runs=1, n_subjects=2,
                              paradigm="imagery", channels=("C3", "Cz", "C4"), duration=60, n_events=20, seed=3)
        pipe = _fast(configs["neuroconv CovConv (long-conv filters, tangent space)"]["pipeline"])
    else:
        paradigm = P300()
        dataset = FakeDataset(event_list=("Target", "NonTarget"), n_sessions=1, n_runs=1, n_subjects=2,
                              paradigm="p300", channels=("Fz", "Cz", "Pz"), duration=60, n_events=30, seed=3)
        pipe = _fast(configs["neuroconv CovConv (long-conv filters, tangent space, balanced)"]["pipeline"])
    for protocol, evaluation in (("within", WithinSessionEvaluation(
            paradigm=paradigm, datasets=[dataset], hdf5_path=str(tmp_path / "results"), overwrite=True,
            n_splits=2, cv_class=KFold, cv_kwargs={"shuffle": False})),
            ("cross", CrossSubjectEvaluation(paradigm=paradigm, datasets=[dataset],
                                             hdf5_path=str(tmp_path / "results"), overwrite=True))):
        results = evaluation.process({"CovConv": pipe})
        assert set(results["pipeline"]) == {"CovConv"} and set(results["dataset"]) == {dataset.code}
        got = {(str(s), str(k)): float(v) for s, k, v in zip(results["subject"], results["session"], results["score"])}
        want = _by_hand(paradigm, dataset, pipe, protocol)
        assert set(got) == set(want) and len(got) == 2, (protocol, got, want)
        for key in want:  # the same folds and seeded fits: the same numbers, as MOABB stores them (float32)
            assert got[key] == pytest.approx(want[key], rel=float(np.finfo(np.float32).eps), abs=0), (protocol, key)
    assert any((tmp_path / "results").rglob("*.hdf5"))  # MOABB wrote its results where it was told
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.hdf5"))
