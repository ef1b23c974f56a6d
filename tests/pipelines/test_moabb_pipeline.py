"""`neuroconv preprocess moabb`: a MOABB data set through MOABB's loader into a store,
checked against MOABB's own raws (FakeDataset: generated in memory, nothing downloads;
the package's conftest fails any network access)."""

from __future__ import annotations

import json

import numpy as np
import pytest

moabb = pytest.importorskip("moabb")

from moabb.datasets.fake import FakeDataset  # noqa: E402

from neuroconv.cli import main  # noqa: E402
from neuroconv.data import SequenceStore  # noqa: E402
from neuroconv.pipelines.moabb import preprocess_moabb  # noqa: E402

EVENTS = ("left_hand", "right_hand")


def fake(**kw):
    args = dict(event_list=EVENTS, n_sessions=2, n_runs=2, n_subjects=3, paradigm="imagery",
                channels=("C3", "Cz", "C4"), duration=20, n_events=6, seed=7)
    return FakeDataset(**{**args, **kw})


class BrokenSubject2(FakeDataset):
    """A FakeDataset whose subject 2 cannot be loaded (as a failed download would)."""

    def _get_single_subject_data(self, subject):
        if subject == 2:
            raise OSError("MNE-fake-data/subject_2.mat: truncated file")
        return super()._get_single_subject_data(subject)


def test_store_holds_moabb_runs_events_and_groups(tmp_path):
    ds = fake()
    summary = preprocess_moabb(ds, tmp_path / "s", subjects=[1, 3], reference=None, progress=False)
    assert summary.ok and len(summary.done) == 8, str(summary)
    store = SequenceStore(tmp_path / "s")
    ref = fake().get_data(subjects=[1, 3])  # MOABB's own raws (the seed makes the same data)
    assert sorted(store.ids) == sorted(f"sub-{s}_ses-{k}_run-{r}" for s in (1, 3) for k in ref[s] for r in ref[s][k])
    man = store.manifest.set_index("id")
    for s, sessions in ref.items():
        for k, runs in sessions.items():
            for r, raw in runs.items():
                rid = f"sub-{s}_ses-{k}_run-{r}"
                assert (man.loc[rid, "subject"], man.loc[rid, "session"], man.loc[rid, "run"]) == (str(s), k, r)
                assert man.loc[rid, "dataset"] == ds.code and man.loc[rid, "task"] == "imagery"
                # the signal: MOABB's EEG channels in µV, float32
                want = raw.get_data(picks="eeg").T * 1e6
                np.testing.assert_allclose(store.load(rid), want, rtol=np.finfo(np.float32).eps, atol=0)
                assert store.channels(rid) == ["C3", "Cz", "C4"]
                # the events: MOABB's annotations (from its stim channel), named as MOABB names them
                ev = store.events[store.events["id"] == rid]
                ann = raw.annotations
                np.testing.assert_array_equal(ev["onset"], np.round(ann.onset * raw.info["sfreq"]).astype(int))
                assert list(ev["label"]) == list(ann.description) and set(ev["label"]) == set(EVENTS)
    m = store.meta["moabb"]
    assert (m["code"], m["dataset"], m["version"]) == (ds.code, "FakeDataset", moabb.__version__)
    assert m["events"] == {"left_hand": 1, "right_hand": 2} and m["paradigm"] == "imagery"
    assert store.meta["steps"][0]["params"]["code"] == ds.code
    # rerun: nothing redone
    again = preprocess_moabb(fake(), tmp_path / "s", subjects=[1, 3], reference=None, progress=False)
    assert not again.done and len(again.skipped) == 8
    # another data set into the same store is refused (its steps record names the data set)
    with pytest.raises(ValueError, match="other parameters"):
        preprocess_moabb(fake(n_events=4), tmp_path / "s", subjects=[1], reference=None, progress=False)


def test_a_bad_subject_is_reported_and_the_others_go_on(tmp_path):
    summary = preprocess_moabb(BrokenSubject2(event_list=EVENTS, n_subjects=3, n_sessions=1, n_runs=1, duration=20,
                                              n_events=6, seed=1), tmp_path / "s", reference=None, progress=False)
    assert [o.id for o in summary.failed] == ["sub-2"] and summary.exit_code == 1
    assert "subject 2: could not be loaded (OSError: MNE-fake-data/subject_2.mat: truncated file)" in \
        summary.failed[0].reason
    assert sorted(o.id for o in summary.done) == ["sub-1_ses-0_run-0", "sub-3_ses-0_run-0"]
    assert sorted(SequenceStore(tmp_path / "s").ids) == ["sub-1_ses-0_run-0", "sub-3_ses-0_run-0"]
    with pytest.raises(ValueError, match=r"subjects must be integers in 1..3 .*got \[7\]"):
        preprocess_moabb(fake(), tmp_path / "t", subjects=[7])
    with pytest.raises(ValueError, match="must be the name of a MOABB dataset class.*'BNCI2014_01'.*BNCI2014_001"):
        preprocess_moabb("BNCI2014_01", tmp_path / "t")


def test_cli(tmp_path, capsys):
    summary = tmp_path / "summary.json"
    rc = main(["preprocess", "moabb", "--dataset", "FakeDataset", "--subjects", "2", "--reference", "none",
               "--l-freq", "1", "--h-freq", "30", "--out", str(tmp_path / "c"), "--no-progress",
               "--summary-json", str(summary)])
    assert rc == 0, capsys.readouterr().err
    store = SequenceStore(tmp_path / "c")
    # FakeDataset's defaults: 2 sessions x 2 runs of 120 s at 128 Hz
    assert sorted(store.ids) == [f"sub-2_ses-{k}_run-{r}" for k in "01" for r in "01"]
    assert set(store.manifest["n_times"]) == {120 * 128} and set(store.manifest["subject"]) == {"2"}
    assert store.meta["moabb"]["dataset"] == "FakeDataset"
    bandpass = [s for s in store.meta["steps"] if s["name"] == "bandpass"][0]["params"]
    assert (bandpass["l_freq"], bandpass["h_freq"]) == (1.0, 30.0)
    assert len(json.loads(summary.read_text())["done"]) == 4
    assert main(["preprocess", "moabb", "--dataset", "NoSuchSet", "--out", str(tmp_path / "d")]) == 2
    assert "must be the name of a MOABB dataset class" in capsys.readouterr().err
