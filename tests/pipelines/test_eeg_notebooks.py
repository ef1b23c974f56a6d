"""The eeg-notebooks named source on the real Muse files of ../shared/data."""

from __future__ import annotations

import shutil

import mne
import numpy as np
import pandas as pd
import pytest

from neuroconv.cli import main
from neuroconv.data import SequenceStore
from neuroconv.pipelines import preprocess_eeg_notebooks
from neuroconv.pipelines.eeg_notebooks import EXPERIMENTS, experiment_files
from reference_budget import assert_matches_reference

NB = "eeg-notebooks"
MUSE = ["TP9", "AF7", "AF8", "TP10"]


def test_layout_maps_subject_session_run(shared_data, tmp_path):
    files = experiment_files(shared_data / NB, "visual/P300")
    assert len(files) == 29 and {f["subject"] for f in files} == {"2", "3", "4", "5"}
    s2 = [(f["session"], f["run"], f["path"].name) for f in files if f["subject"] == "2"]
    assert s2[:3] == [("1", "1", "data_2017-02-09-18.12.53.csv"),
                      ("1", "2", "data_2017-02-09-18.17.25.csv"),
                      ("1", "3", "data_2017-02-09-18.21.16.csv")]
    assert ("2", "3", "data_2018-05-04-02.00.00.csv") in s2
    n170 = experiment_files(shared_data / NB / "visual", "visual/N170")   # another root
    assert len(n170) == 14
    assert [f["path"].name for f in n170 if (f["subject"], f["session"]) == ("3", "3")] == [
        "recording_2018-05-29-20.14.04.csv.csv", "recording_2018-05-31-16.03.39.csv.csv"]
    # run = time order from the file name, not the alphabetical order; newer layouts
    # (site/device folders, zero-padded numbers) are found too
    d = tmp_path / "visual" / "P300" / "local" / "muse2016" / "subject0007" / "session002"
    d.mkdir(parents=True)
    for name in ("recording_2020-01-02-10.00.00.csv", "data_2020-01-02-09.00.00.csv"):
        (d / name).write_text("x")
    f = experiment_files(tmp_path, "visual/P300")
    assert [(x["subject"], x["session"], x["run"], x["path"].name[:4]) for x in f] == [
        ("7", "2", "1", "data"), ("7", "2", "2", "reco")]


def test_p300_store_labels_and_raw_values(shared_data, tmp_path):
    s = preprocess_eeg_notebooks(shared_data / NB, tmp_path / "st", "visual/P300",
                                 subjects="2,4", progress=False)
    assert s.ok and len(s.done) == 9, str(s)
    st = SequenceStore(tmp_path / "st")
    man = st.manifest.set_index("id")
    row = man.loc["P300_sub2_ses2_run3"]
    assert (row.subject, row.session, str(row.run), row.task) == ("2", "2", "3", "P300")
    assert (row.experiment, row.dataset, row.site, row.device) == (
        "visual/P300", "eeg-notebooks", "muse2016", "muse2016")
    assert row.started == "2018-05-04T02:00:00" and row.sfreq == 256.0
    assert st.meta["channels"] == MUSE and st.meta["experiment"] == "visual/P300"
    # no re-referencing by default: the stored array is the CSV's values in µV
    csv = shared_data / NB / "visual/P300/subject4/session1/data_2018-04-22-21.41.19.csv"
    df = pd.read_csv(csv)
    assert_matches_reference(st.load("P300_sub4_ses1_run1"), df[MUSE].to_numpy())
    ev = st.events
    one = ev[ev.id == "P300_sub4_ses1_run1"]
    assert len(one) == 95                                     # the short run
    np.testing.assert_array_equal(one.onset, np.flatnonzero(df.Marker0.to_numpy()))
    codes = df.Marker0.to_numpy()[one.onset.to_numpy()]
    assert list(one.label) == [EXPERIMENTS["visual/P300"][str(c)] for c in codes]
    frac = (ev.label == "target").mean()
    assert set(ev.label) == {"target", "non-target"} and 0.1 < frac < 0.22
    assert st.meta["steps"][7]["params"]["reference"] is None
    # with MNE directly: epochs of targets vs non-targets from the store's events
    with pytest.warns(UserWarning, match="dropped 3 of 1643"):   # too close to an end
        w = st.event_windows(-0.1, 0.8, labels=["target", "non-target"])
    assert len(w) == len(ev) - 3 and ((w.stop - w.start) == 230).all()
    # rerun: everything is skipped
    s2 = preprocess_eeg_notebooks(shared_data / NB, tmp_path / "st", "P300", subjects=[2, 4],
                                  progress=False)
    assert len(s2.skipped) == 9 and not s2.done


def test_n170_duplicate_and_markerless_runs_fail_alone(shared_data, tmp_path):
    s = preprocess_eeg_notebooks(shared_data / NB / "visual", tmp_path / "st", "visual/N170",
                                 subjects=3, l_freq=1.0, h_freq=30.0, progress=False)
    assert len(s.done) == 4 and s.exit_code == 1
    reasons = {o.id: o.reason for o in s.failed}
    assert "the same bytes as" in reasons["N170_sub3_ses2_run2"]
    assert "session1/data_2018-05-14-19.38.10.csv" in reasons["N170_sub3_ses2_run2"]
    assert "only 7 event(s)" in reasons["N170_sub3_ses3_run2"]
    assert "recording_2018-05-31-16.03.39.csv.csv" in reasons["N170_sub3_ses3_run2"]
    st = SequenceStore(tmp_path / "st")
    assert set(st.events.label) == {"house", "face"}
    # the same filter with MNE on the same file
    csv = shared_data / NB / "visual/N170/subject3/session3/recording_2018-05-29-20.14.04.csv.csv"
    raw = mne.io.RawArray(pd.read_csv(csv)[MUSE].to_numpy().T * 1e-6,
                          mne.create_info(MUSE, 256.0, "eeg"), verbose="error")
    raw.filter(1.0, 30.0, verbose="error")
    assert_matches_reference(st.load("N170_sub3_ses3_run1"), raw.get_data().T * 1e6)
    # min_events=0 keeps the markerless run (for unlabelled use), with a warning
    s2 = preprocess_eeg_notebooks(shared_data / NB, tmp_path / "st2", "N170", subjects=3,
                                  min_events=0, progress=False)
    done = {o.id: o for o in s2.done}
    assert "N170_sub3_ses3_run2" in done
    assert any("almost no events" in w for w in done["N170_sub3_ses3_run2"].warnings)


def test_named_source_errors(shared_data, tmp_path):
    with pytest.raises(ValueError, match="experiment must be one of"):
        preprocess_eeg_notebooks(shared_data / NB, tmp_path / "x", "auditory/SSAEP")
    with pytest.raises(FileNotFoundError, match="no eeg-notebooks visual/P300 recordings"):
        preprocess_eeg_notebooks(tmp_path, tmp_path / "x", "visual/P300")
    with pytest.raises(FileNotFoundError, match="no recordings of visual/P300"):
        preprocess_eeg_notebooks(shared_data / NB, tmp_path / "x", subjects=9)
    # a copy of the layout with a file missing its AF8 column
    d = tmp_path / "nb" / "visual" / "P300" / "subject4" / "session1"
    d.mkdir(parents=True)
    src = shared_data / NB / "visual/P300/subject4/session1/data_2018-04-22-21.41.19.csv"
    pd.read_csv(src).drop(columns="AF8").to_csv(d / "data_2018-04-22-21.41.19.csv", index=False)
    s = preprocess_eeg_notebooks(tmp_path / "nb", tmp_path / "st", progress=False)
    assert "channels column(s) ['AF8'] not found" in s.failed[0].reason


def test_cli_end_to_end_on_real_files(shared_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    p300 = shared_data / NB / "visual/P300"
    files = [str(p300 / "subject2/session1/data_2017-02-09-18.12.53.csv"),
             str(p300 / "subject3/session1/data_2018-04-15-17.31.22.csv")]
    rc = main(["preprocess", "eeg", *files, "--out", str(tmp_path / "a"), "--no-progress",
               "--event-map", "1=non-target,2=target", "--reference", "none",
               "--l-freq", "1", "--h-freq", "30", "--resample", "128", "--max-gap", "0.1"])
    assert rc == 0, capsys.readouterr().err
    st = SequenceStore(tmp_path / "a")
    assert len(st) == 2 and (st.manifest.sfreq == 128.0).all()
    assert set(st.events.label) == {"target", "non-target"}
    assert st.meta["steps"][0]["params"]["table"]["max_gap"] == 0.1
    rc = main(["preprocess", "eeg-notebooks", "--data-dir", str(shared_data / NB),
               "--experiment", "visual/N170", "--subjects", "2", "--out", str(tmp_path / "b"),
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    st = SequenceStore(tmp_path / "b")
    assert list(st.ids) == ["N170_sub2_ses1_run1", "N170_sub2_ses1_run2"]
    assert set(st.events.label) == {"house", "face"}
    rc = main(["preprocess", "eeg-notebooks", "--data-dir", str(tmp_path), "--out",
               str(tmp_path / "c"), "--no-progress"])
    assert rc == 2 and "no eeg-notebooks" in capsys.readouterr().err
    rc = main(["preprocess", "eeg", files[0], "--out", str(tmp_path / "d"), "--no-progress",
               "--channels", "TP9,Fp1"])
    err = capsys.readouterr().err
    assert rc == 1 and "not found" in err


def test_copied_layout_via_shutil(shared_data, tmp_path):
    """The named source reads a partial copy (one session) as well as the full tree."""
    src = shared_data / NB / "visual/P300/subject5/session1"
    dst = tmp_path / "visual" / "P300" / "subject5" / "session1"
    shutil.copytree(src, dst)
    s = preprocess_eeg_notebooks(tmp_path, tmp_path / "st", "visual/P300", progress=False,
                                 reference="average")
    assert s.ok and len(s.done) == 5
    assert all(any("average reference over only 4" in w for w in o.warnings) for o in s.done)
