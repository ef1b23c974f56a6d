"""The eeg-notebooks named source on the real Muse files of ../shared/data."""

from __future__ import annotations

import shutil
from pathlib import Path

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
DEFAULT_SFREQ = 256.0                    # the Muse rate; the muse configs do not resample


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


# --------------------------------------------------------------- cueing and SSVEP
# The marker meanings, written out from eeg-notebooks' task scripts
# (eegnb/experiments/visual_cueing/cueing.py: "11-InvalidLeft; 12-InvalidRight;
# 21-ValidLeft; 22-ValidRight", "1 - Cue Left, 2 - Cue Right", "31 - incorrect,
# 32 - Correct"; visual_ssvep: event_id {'30 Hz': 1, '20 Hz': 2}).
CUEING_CODES = {1: "cue_left", 2: "cue_right", 11: "target_invalid_left",
                12: "target_invalid_right", 21: "target_valid_left", 22: "target_valid_right",
                31: "response_incorrect", 32: "response_correct"}
SSVEP_CODES = {1: "30Hz", 2: "20Hz"}


def _label_counts(csv, codes) -> dict:
    """Events per label from an independent read of the CSV: non-zero marker rows."""
    m = pd.read_csv(csv)["Marker0"].to_numpy()
    return pd.Series(m[m != 0]).map(codes).value_counts().to_dict()


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cueing_corpus_events_checksums_and_passed_over(shared_data, tmp_path):
    root = shared_data / NB / "visual/cueing"
    others = [p for s in ("subject104", "subject111") for p in (root / s).rglob("*")
              if p.is_file() and not p.name.endswith(".csv")]
    kinds = {"*.mat": sum(p.suffix == ".mat" for p in others),
             ".DS_Store": sum(p.name == ".DS_Store" for p in others)}
    assert kinds[".DS_Store"] >= 1 and kinds["*.mat"] >= 4
    assert sum(kinds.values()) == len(others)
    with pytest.warns(UserWarning, match=rf"passed over {len(others)} file\(s\) that are not "
                                         rf"recordings \({kinds['*.mat']} \*\.mat, "
                                         rf"{kinds['.DS_Store']} \.DS_Store\)"):
        s = preprocess_eeg_notebooks(shared_data / NB, tmp_path / "st", "cueing",
                                     subjects="104,111", progress=False)
    assert s.ok and len(s.done) == 5, str(s)
    st = SequenceStore(tmp_path / "st")
    assert st.meta["passed_over"]["count"] == len(others)
    assert st.meta["passed_over"]["kinds"] == kinds
    assert st.meta["channels"] == MUSE and st.meta["experiment"] == "visual/cueing"
    man = st.manifest.set_index("id")
    # subject 104's session 2 holds two recordings: runs in time order (11-20 before 11-21)
    s2 = man[(man.subject == "104") & (man.session == "2")].sort_values("run")
    assert [p.split("recording_")[1][:10] for p in s2.source] == ["2018-11-20", "2018-11-21"]
    assert list(s2.run.astype(str)) == ["1", "2"]
    for rid, row in man.iterrows():
        csv = Path(row.source)
        assert rid == f"cueing_sub{row.subject}_ses{row.session}_run{row.run}"
        assert (row.dataset, row.task, row.experiment, row.sfreq) == (
            "eeg-notebooks", "cueing", "visual/cueing", 256.0)
        assert row.source_sha256 == _sha256(csv)
        assert st.meta["sources"][rid][0]["sha256"] == _sha256(csv)
        ev = st.events[st.events.id == rid]
        assert ev.label.value_counts().to_dict() == _label_counts(csv, CUEING_CODES)
    # the names fit the data: a left cue is followed by a valid-left or an invalid-right
    # target, a right cue by a valid-right or an invalid-left one
    follow = {"cue_left": {"target_valid_left", "target_invalid_right"},
              "cue_right": {"target_valid_right", "target_invalid_left"}}
    pairs = 0
    for _, ev in st.events.groupby("id"):
        lab = list(ev.sort_values("onset").label)
        for a, b in zip(lab, lab[1:]):
            if a in follow and b.startswith("target"):
                assert b in follow[a], (a, b)
                pairs += 1
    assert pairs > 100


def test_ssvep_pozs_channel_csvcsv_names_and_clipped_aux(shared_data, tmp_path):
    s = preprocess_eeg_notebooks(shared_data / NB, tmp_path / "st", "visual/SSVEP", subjects=3,
                                 progress=False)
    assert {o.id for o in s.done} == {"SSVEP_sub3_ses1_run1", "SSVEP_sub3_ses3_run1"}
    # session 2's Right AUX sits at the amplifier's range in ~16% of samples: refused
    reasons = {o.id: o.reason for o in s.failed}
    assert set(reasons) == {"SSVEP_sub3_ses2_run1", "SSVEP_sub3_ses2_run2"} and s.exit_code == 1
    for rid, why in reasons.items():
        assert ".csv.csv" in why and "'Right AUX' (POz) is clipped" in why
        frac = float(why.split("is clipped: ")[1].split("%")[0]) / 100
        csv = Path(why.split(": column")[0])
        aux = pd.read_csv(csv)["Right AUX"].to_numpy()
        assert frac == pytest.approx(np.mean((aux == aux.min()) | (aux == aux.max())), abs=1e-3)
    st = SequenceStore(tmp_path / "st")
    assert st.meta["channels"] == MUSE + ["POz"]
    man = st.manifest.set_index("id")
    row = man.loc["SSVEP_sub3_ses3_run1"]
    assert row.source.endswith("recording_2018-05-29-19.58.05.csv.csv")
    assert (row.subject, row.session, str(row.run), row.task, row.sfreq) == (
        "3", "3", "1", "SSVEP", 256.0)
    for rid, r in man.iterrows():
        csv = Path(r.source)
        df = pd.read_csv(csv)
        # no filter, no reference by default: the CSV's values, Right AUX as POz
        assert_matches_reference(st.load(rid), df[MUSE + ["Right AUX"]].to_numpy())
        ev = st.events[st.events.id == rid]
        assert ev.label.value_counts().to_dict() == _label_counts(csv, SSVEP_CODES)
        np.testing.assert_array_equal(ev.onset, np.flatnonzero(df.Marker0.to_numpy()))
        assert st.meta["details"][rid]["aux_check"]["POz"]["at_extremes"] < 0.01
    # the headband's channels only: the refused session is kept
    s4 = preprocess_eeg_notebooks(shared_data / NB, tmp_path / "st4", "SSVEP", subjects=3,
                                  channels=MUSE, progress=False)
    assert s4.ok and len(s4.done) == 4
    assert SequenceStore(tmp_path / "st4").meta["channels"] == MUSE


def test_copies_short_runs_flat_aux_and_stray_files_fail_alone(shared_data, tmp_path):
    """A copied layout: a byte-identical copy in another session, a run cut short (few
    events), a flat AUX column and stray files; each bad file fails with its reason and
    the rest go on."""
    src = shared_data / NB / "visual/SSVEP/subject1/session1/data_2017-09-14-21.20.04.csv"
    df = pd.read_csv(src)
    base = tmp_path / "nb" / "visual" / "SSVEP" / "subject1"
    for k in (1, 2, 3, 4):
        (base / f"session{k}").mkdir(parents=True)
    shutil.copy(src, base / "session1" / src.name)
    shutil.copy(src, base / "session2" / "data_2017-09-15-10.00.00.csv")       # same bytes
    on = np.flatnonzero(df.Marker0.to_numpy())
    cut = on[6] + 10                                   # 7 events: fewer than 10
    df.iloc[:cut].to_csv(base / "session3" / "data_2017-09-16-10.00.00.csv", index=False,
                         float_format="%.3f")
    flat = df.assign(**{"Right AUX": 0.0})
    flat.to_csv(base / "session4" / "data_2017-09-17-10.00.00.csv.csv", index=False,
                float_format="%.3f")
    (base / ".DS_Store").write_bytes(b"\0")
    (base.parent / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.warns(UserWarning, match=r"passed over 2 file\(s\) .*1 \*\.csv \(outside "
                                         r"subject folders\), 1 \.DS_Store"):
        s = preprocess_eeg_notebooks(tmp_path / "nb", tmp_path / "st", "visual/SSVEP",
                                     progress=False)
    assert [o.id for o in s.done] == ["SSVEP_sub1_ses1_run1"] and s.exit_code == 1
    reasons = {o.id: o.reason for o in s.failed}
    assert "the same bytes as" in reasons["SSVEP_sub1_ses2_run1"]
    assert "only 7 event(s)" in reasons["SSVEP_sub1_ses3_run1"]
    assert "min_events=10" in reasons["SSVEP_sub1_ses3_run1"]
    assert "'Right AUX' (POz) is flat" in reasons["SSVEP_sub1_ses4_run1"]
    assert "channels=['TP9', 'AF7', 'AF8', 'TP10']" in reasons["SSVEP_sub1_ses4_run1"]


def test_cli_reads_cueing_and_ssvep(shared_data, tmp_path, capsys):
    with pytest.warns(UserWarning, match=r"passed over 2 file\(s\)"):   # the .mat files
        rc = main(["preprocess", "eeg-notebooks", "--data-dir", str(shared_data / NB),
                   "--experiment", "visual/cueing", "--subjects", "202", "--out",
                   str(tmp_path / "c"), "--no-progress", "--l-freq", "1", "--h-freq", "30"])
    assert rc == 0, capsys.readouterr().err
    st = SequenceStore(tmp_path / "c")
    assert list(st.ids) == ["cueing_sub202_ses1_run1", "cueing_sub202_ses2_run1"]
    assert st.meta["passed_over"]["kinds"] == {"*.mat": 2}
    rc = main(["preprocess", "eeg-notebooks", "--data-dir", str(shared_data / NB),
               "--experiment", "SSVEP", "--subjects", "3", "--out", str(tmp_path / "s"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "is clipped" in err            # session 2's two runs
    assert SequenceStore(tmp_path / "s").meta["channels"] == MUSE + ["POz"]


def test_muse_configs_share_one_backbone_contract():
    """A backbone pretrained with muse_cueing serves muse_p300, muse_n170 and
    muse_ssvep (--decode.pretrained): the same filters and rate, the Muse channels, and
    a max_len that covers every event window."""
    from neuroconv.brain.config import load_config
    from neuroconv.brain.ssvep import SSVEP_BASELINES, freqs_from_labels

    names = ("muse_cueing", "muse_p300", "muse_n170", "muse_ssvep")
    cfgs = {n: load_config(n, job="decode") for n in names}
    args = {n: c.data.sources[0].args for n, c in cfgs.items()}
    assert {n: (a["l_freq"], a["h_freq"], a.get("resample")) for n, a in args.items()} == {
        n: (1.0, 30.0, None) for n in cfgs}
    assert all(c.data.sources[0].pipeline == "eeg_notebooks" for c in cfgs.values())
    assert args["muse_cueing"]["experiment"] == "visual/cueing"
    pre = cfgs["muse_cueing"]
    for n, c in cfgs.items():
        assert c.model == pre.model, n
        assert round((c.decode.tmax - c.decode.tmin) * DEFAULT_SFREQ) <= pre.data.max_len, n
    ssvep = cfgs["muse_ssvep"].decode
    assert args["muse_ssvep"]["experiment"] == "visual/SSVEP"
    assert set(ssvep.event_labels) == set(EXPERIMENTS["visual/SSVEP"].values())
    assert sorted(freqs_from_labels(ssvep.event_labels).values()) == [20.0, 30.0]
    assert set(SSVEP_BASELINES) <= set(ssvep.models) and "covconv" in ssvep.models
    assert (ssvep.within, ssvep.group_by, ssvep.cv) == ("subject", "id", "leave_group_out")
