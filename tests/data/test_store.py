"""The sequence store contract: writer (atomic, resumable) and SequenceStore reader."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neuroconv.data import SequenceStore, StoreError, StoreWriter
from neuroconv.data.store import consolidate

STEPS = [{"name": "toy", "params": {"a": 1}}]


def _write_store(path, n_subjects=5, runs=2, sfreq=100.0, n_times=500, n_ch=3):
    w = StoreWriter(path, "toy", STEPS)
    src = path.parent / "src.txt"
    src.write_text("source")
    rng = np.random.default_rng(0)
    for s in range(n_subjects):
        for r in range(runs):
            rid = f"s{s}_r{r}"
            ev = pd.DataFrame({"onset": [10, 200, n_times - 20], "duration": [50, 50, 50],
                               "label": ["a", "b", "a"]})
            w.write(rid, rng.standard_normal((n_times + 10 * s, n_ch)),
                    {"subject": f"sub{s}", "session": None, "run": str(r), "site": f"site{s % 2}",
                     "dataset": "toy", "modality": "eeg", "sfreq": sfreq},
                    [f"ch{k}" for k in range(n_ch)], [src], events=ev,
                    channel_units=["uV"] * n_ch)
    w.finalize()
    return SequenceStore(path)


def test_store_layout_and_reader(tmp_path):
    st = _write_store(tmp_path / "store")
    assert len(st) == 10
    for col in ("id", "subject", "session", "run", "site", "dataset", "modality", "path",
                "n_times", "sfreq", "n_channels"):
        assert col in st.manifest.columns
    assert list(st.events.columns[:4]) == ["id", "onset", "duration", "label"]
    assert st.meta["channels"] == ["ch0", "ch1", "ch2"]
    assert st.meta["channel_units"] == ["uV"] * 3
    assert "numpy" in st.meta["library_versions"] and st.meta["steps"] == STEPS
    src = st.meta["sources"]["s0_r0"][0]
    assert len(src["sha256"]) == 64
    x = st.load("s1_r0")
    assert isinstance(x, np.memmap) and x.dtype == np.float32 and x.shape == (510, 3)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "store").rglob("*"))
    with pytest.raises(KeyError, match="not in store"):
        st.load("nope")


def test_windows_and_event_windows(tmp_path):
    st = _write_store(tmp_path / "store", n_subjects=2, runs=1)
    w = st.windows(100, 50)
    assert list(w.columns) == ["id", "start", "stop"]
    assert ((w.stop - w.start) == 100).all()
    assert len(w[w.id == "s0_r0"]) == (500 - 100) // 50 + 1
    with pytest.warns(UserWarning, match="shorter than"):
        w2 = st.windows(505)
    assert set(w2.id) == {"s1_r0"}
    with pytest.raises(ValueError, match="positive integer"):
        st.windows(0)
    with pytest.warns(UserWarning, match="dropped 3"):
        ev = st.event_windows(-0.2, 0.3)  # onset 10 -> start -10: dropped; end events too
    assert ev.attrs["n_dropped"] == 3
    assert ((ev.stop - ev.start) == 50).all() and set(ev.columns) >= {"id", "start", "stop", "label"}
    only_b = st.event_windows(0, 0.5, labels=["b"])
    assert set(only_b.label) == {"b"}
    with pytest.raises(ValueError, match="available labels"):
        st.event_windows(0, 1, labels=["zzz"])
    with pytest.raises(ValueError, match="tmax must be greater"):
        st.event_windows(1, 0)


def test_store_recordings_split_by_folds_without_leakage(tmp_path):
    """The store has no splitter of its own: its manifest's group column goes through
    ``Folds`` (the decode guide's recipe), and no group is on both sides."""
    from neuroconv.engine import Folds, group_values

    st = _write_store(tmp_path / "store", n_subjects=6, runs=2)
    man = st.manifest
    for by in ("subject", "site"):
        groups = group_values(man[by], man["id"])
        splits = Folds("group_kfold", n_splits=3, seed=1, stratify=False).split(np.zeros(len(man)), groups)
        assert sorted(np.concatenate([te for _, te in splits])) == list(range(len(man)))  # each once in test
        for tr, te in splits:
            assert len(tr) and len(te) and not set(groups[tr]) & set(groups[te])


def test_resume_params_mismatch_and_consolidate(tmp_path):
    path = tmp_path / "store"
    src = tmp_path / "src.txt"
    src.write_text("x")
    w = StoreWriter(path, "toy", STEPS)
    row = {"modality": "fmri", "sfreq": 0.5, "subject": "1"}
    assert not w.is_done("a", [src])
    w.write("a", np.ones((4, 2)), row, ["r1", "r2"], [src])
    assert w.is_done("a", [src])
    # same params in a new writer: still done (resume after a kill)
    assert StoreWriter(path, "toy", STEPS).is_done("a", [src])
    # source changed -> not done
    src.write_text("changed")
    assert not w.is_done("a", [src])
    # no manifest yet: a clear error that says how to recover
    with pytest.raises(FileNotFoundError, match="interrupted"):
        SequenceStore(path)
    consolidate(path)
    assert len(SequenceStore(path)) == 1
    with pytest.raises(StoreError, match="other parameters"):
        StoreWriter(path, "toy", [{"name": "toy", "params": {"a": 2}}])
    w2 = StoreWriter(path, "toy", [{"name": "toy", "params": {"a": 2}}], overwrite=True)
    assert not w2.is_done("a", [src])
    with pytest.raises(StoreError, match="modality"):
        w2.write("b", np.ones((3, 1)), {"modality": "pet", "sfreq": 1}, ["c"], [src])
    with pytest.raises(StoreError, match="non-finite"):
        w2.write("b", np.full((3, 1), np.nan), row, ["c"], [src])
    assert json.loads((path / "meta.json").read_text())["params_hash"] == w2.params_hash


def test_missing_store_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="neuroconv preprocess"):
        SequenceStore(tmp_path / "nothing")
