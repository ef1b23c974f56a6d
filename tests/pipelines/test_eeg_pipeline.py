"""EEG pipelines: compared with MNE run directly on the same files; every bad input."""

from __future__ import annotations

import shutil

import mne
import numpy as np
import pytest

from neuroconv.data import SequenceStore
from neuroconv.pipelines import preprocess_eeg, preprocess_eegbci
from neuroconv.pipelines.eeg import EEGBCI_RUNS, make_montage
from reference_budget import assert_matches_reference

EEGBCI = "MNE-eegbci-data/files/eegmmidb/1.0.0/S001"


def _bci(shared_data, tmp_path, runs):
    """A small copy of the EEGBCI layout (runs cropped to 40 s to keep tests fast)."""
    root = tmp_path / "bci"
    d = root / EEGBCI
    d.mkdir(parents=True)
    for r in runs:
        shutil.copy(shared_data / EEGBCI / f"S001R{r:02d}.edf", d)
    return root


def test_eegbci_matches_mne_and_labels(shared_data, tmp_path):
    root = _bci(shared_data, tmp_path, [4, 5])
    s = preprocess_eegbci(root, tmp_path / "st", subjects="1", runs=[4, 5], l_freq=1.0,
                          h_freq=40.0, progress=False)
    assert s.ok and len(s.done) == 2, str(s)
    st = SequenceStore(tmp_path / "st")
    # the same steps run directly with MNE
    raw = mne.io.read_raw_edf(root / EEGBCI / "S001R04.edf", preload=True, verbose="error")
    mne.datasets.eegbci.standardize(raw)
    raw.set_montage(make_montage("standard_1005"))
    raw.set_eeg_reference("average", projection=False, verbose="error")
    raw.filter(1.0, 40.0, verbose="error")
    x = st.load("S001R04")
    assert x.shape == (raw.n_times, 64) and st.meta["channels"] == raw.ch_names
    assert_matches_reference(x, raw.get_data().T * 1e6)  # µV
    assert 1 < np.median(x.std(0)) < 200                                        # µV scale
    man = st.manifest.set_index("id")
    assert man.loc["S001R04", "task"] == "left_right_fist" and man.loc["S001R04", "imagery"]
    assert man.loc["S001R05", "task"] == "fists_feet" and not man.loc["S001R05", "imagery"]
    ev = st.events
    assert set(ev[ev.id == "S001R04"].label) == {"rest", "left", "right"}
    assert set(ev[ev.id == "S001R05"].label) == {"rest", "fists", "feet"}
    t1 = ev[(ev.id == "S001R04") & (ev.annotation == "T1")]
    assert set(t1.label) == {"left"}
    events, _ = mne.events_from_annotations(raw, event_id={"T1": 2}, verbose="error")
    np.testing.assert_array_equal(t1.onset.to_numpy(), events[:, 0] - raw.first_samp)
    w = st.event_windows(0.0, 4.0, labels=["left", "right"])
    assert len(w) == 15 and ((w.stop - w.start) == 640).all()
    # resume: nothing to do the second time
    s2 = preprocess_eegbci(root, tmp_path / "st", subjects="1", runs=[4, 5], l_freq=1.0,
                           h_freq=40.0, progress=False)
    assert len(s2.skipped) == 2 and not s2.done
    # a missing run is a per-item failure, not a crash
    s3 = preprocess_eegbci(root, tmp_path / "st3", subjects=[1, 2], runs=[4],
                           progress=False)
    assert len(s3.done) == 1 and "not found" in s3.failed[0].reason


def test_eegbci_run_table():
    assert {r: EEGBCI_RUNS[r][:2] for r in (3, 4, 5, 6)} == {
        3: ("left_right_fist", False), 4: ("left_right_fist", True),
        5: ("fists_feet", False), 6: ("fists_feet", True)}
    for r in range(3, 15):
        assert EEGBCI_RUNS[r] == EEGBCI_RUNS[(r - 3) % 4 + 3]


def test_common_channel_set_pools_caps(shared_data, sim_eeg, tmp_path):
    """A 64-channel EEGBCI run and 19-channel simulated files map onto one 10-20 set."""
    root = _bci(shared_data, tmp_path, [4])
    edf = root / EEGBCI / "S001R04.edf"
    # a cap without O1/O2 (interpolated) and with old names T3/T4 (renamed)
    raw = mne.io.read_raw(sim_eeg[0], preload=True, verbose="error")
    raw.drop_channels(["O1", "O2"]).rename_channels({"T7": "T3", "T8": "T4"})
    odd = tmp_path / "odd_raw.fif"
    raw.save(odd, verbose="error")
    s = preprocess_eeg([str(edf), str(odd), str(sim_eeg[1])], tmp_path / "st",
                       channel_set="10-20", resample=128.0, progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    assert st.meta["channels"][:3] == ["Fp1", "Fp2", "F7"] and len(st.meta["channels"]) == 19
    assert (st.manifest.sfreq == 128.0).all() and (st.manifest.n_channels == 19).all()
    assert st.meta["details"]["odd"]["interpolated_for_channel_set"] == ["O1", "O2"]
    # an interpolated channel is close to the one we removed (spherical splines)
    full = st.load("sub-02_task-motor_run-1")
    assert np.isfinite(st.load("odd")).all() and full.shape[1] == 19


def test_simulated_eeg_erd_and_edf(sim_eeg, tmp_path):
    s = preprocess_eeg([str(p) for p in sim_eeg], tmp_path / "st", progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    assert set(st.events.label) == {"rest", "left", "right"}
    assert (st.manifest.subject == ["01", "02", "03"]).all()
    # FIF content equals MNE's own reading (average reference, µV)
    raw = mne.io.read_raw(sim_eeg[0], preload=True, verbose="error")
    raw.set_eeg_reference("average", projection=False, verbose="error")
    assert_matches_reference(st.load(st.ids[0]), raw.get_data().T * 1e6)
    # mu power over C3 drops for "right" trials, over C4 for "left" ones
    from scipy.signal import welch

    ch = st.meta["channels"]
    ratios = {}
    for lb in ("left", "right"):
        w = st.event_windows(0.5, 3.5, labels=[lb])
        p = []
        for _, r in w.iterrows():
            x = st.load(r.id)[r.start:r.stop]
            f, pw = welch(x[:, [ch.index("C3"), ch.index("C4")]], fs=128.0, axis=0)
            p.append(pw[(f >= 8) & (f <= 12)].mean(0))
        p = np.mean(p, 0)
        ratios[lb] = p[0] / p[1]
    assert ratios["right"] < ratios["left"]


def test_simulated_edf_roundtrip(tmp_path):
    pytest.importorskip("edfio")
    from neuroconv.pipelines.simulate import simulate_eeg

    paths = simulate_eeg(tmp_path / "edf", n_subjects=1, duration=20.0, fmt="edf",
                         annotation_style="eegbci", seed=1)
    s = preprocess_eeg(paths, tmp_path / "st", event_map={"T1": "left", "T2": "right"},
                       progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    assert set(st.events.label) == {"left", "right"}
    assert st.meta["details"][st.ids[0]]["unmapped_annotations"] > 0  # T0 dropped


def _bad_eeg(shared_data, sim_eeg, d):
    import edfio

    out = {}
    src = shared_data / EEGBCI / "S001R04.edf"
    b = src.read_bytes()
    (d / "truncated.edf").write_bytes(b[: len(b) // 2])
    out["truncated"] = (d / "truncated.edf", "truncated")
    (d / "corrupt.edf").write_bytes(b[:300] + b"\x00garbage" * 50)
    out["corrupt"] = (d / "corrupt.edf", "cannot be read")
    raw = mne.io.read_raw(sim_eeg[0], preload=True, verbose="error").crop(0, 5)
    raw._data[2, 100:110] = np.nan
    raw.save(d / "nan_raw.fif", verbose="error")
    out["nonfinite"] = (d / "nan_raw.fif", "non-finite")
    sig = [edfio.EdfSignal(np.zeros(256), sampling_frequency=128, label=n)
           for n in ("XX1", "YY2", "C3", "C4")]
    edfio.Edf(sig).write(d / "unknown.edf")
    out["unknown"] = (d / "unknown.edf", "unknown channel names")
    sig = [edfio.EdfSignal(np.random.default_rng(0).standard_normal(1280), sampling_frequency=128,
                           label=n, physical_range=(-10, 10)) for n in ("C3", "Cz", "C4")]
    edfio.Edf(sig, annotations=[edfio.EdfAnnotation(1.0, 1.0, "left"),
                                edfio.EdfAnnotation(30.0, 1.0, "right")]).write(d / "outside.edf")
    out["outside"] = (d / "outside.edf", "outside the recording")
    info = mne.create_info(["C3", "C4"], 128.0, "eeg")
    (d / "empty.vhdr").write_text("not a brainvision header")
    out["format"] = (d / "empty.vhdr", "cannot be read")
    del info
    return out


def test_bad_eeg_inputs(shared_data, sim_eeg, tmp_path):
    pytest.importorskip("edfio")
    bad = _bad_eeg(shared_data, sim_eeg, tmp_path)
    files = [str(sim_eeg[2])] + [str(p) for p, _ in bad.values()] + [str(tmp_path / "nope.edf")]
    s = preprocess_eeg(files, tmp_path / "st", progress=False)
    assert len(s.done) == 1 and s.exit_code == 1
    reasons = {o.source: o.reason for o in s.failed}
    for case, (path, needle) in bad.items():
        assert needle in reasons[str(path)], (case, reasons[str(path)])
        assert str(path) in reasons[str(path)]
    assert "no such file" in reasons[str(tmp_path / "nope.edf")]
    # unknown names pass with on_missing="warn", and the warning is in the summary
    s2 = preprocess_eeg([str(bad["unknown"][0])], tmp_path / "st2", on_missing="warn",
                        progress=False)
    assert s2.ok and any("not in montage" in w for w in s2.done[0].warnings)


def test_bad_parameters_raise_clearly(tmp_path):
    with pytest.raises(ValueError, match="picks must be"):
        preprocess_eeg([], tmp_path, picks="ecg")
    with pytest.raises(ValueError, match="channel_set must be one of"):
        preprocess_eeg([], tmp_path, channel_set="10-30")
    with pytest.raises(TypeError, match="unknown EEG step"):
        preprocess_eeg([], tmp_path, lowpass=3)
    with pytest.raises(ValueError, match="subjects must be integers"):
        preprocess_eegbci(tmp_path, tmp_path / "x", subjects="0")


def test_auto_bads_are_interpolated_and_mixed_caps_keep_names(sim_eeg, tmp_path):
    raw = mne.io.read_raw(sim_eeg[0], preload=True, verbose="error")
    raw._data[raw.ch_names.index("Pz")] = 0.0                   # a dead electrode
    flat = tmp_path / "flat_raw.fif"
    raw.save(flat, verbose="error")
    small = tmp_path / "small_raw.fif"
    raw.copy().pick(["C3", "Cz", "C4"]).save(small, verbose="error")
    s = preprocess_eeg([str(flat), str(small)], tmp_path / "st", bads="auto", progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    assert st.meta["details"]["flat"]["bads"] == ["Pz"]
    assert st.load("flat")[:, st.channels("flat").index("Pz")].std() > 0.1   # interpolated
    assert st.meta["channels"] is None and st.channels("small") == ["C3", "Cz", "C4"]
    assert st.manifest.set_index("id").loc["small", "n_channels"] == 3


def test_generic_pipeline_reads_physionet_names_as_subject_and_run(shared_data, tmp_path):
    """The generic EEG pipeline on PhysioNet's S001R04.edf: subject S001, run 4 (as the
    eegbci pipeline says), so leave-subject-out keeps the person's runs together; a file
    whose name and folders name no subject gets an unknown subject, with a warning."""
    import pandas as pd

    src = shared_data / EEGBCI / "S001R04.edf"
    d = tmp_path / "raw"
    d.mkdir()
    shutil.copy(src, d / "S001R04.edf")
    shutil.copy(shared_data / EEGBCI / "S001R08.edf", d / "S001R08.edf")
    shutil.copy(src, d / "recording.edf")
    with pytest.warns(UserWarning, match="1 recording\\(s\\) name no subject \\(e.g. .*recording.edf\\)"):
        summary = preprocess_eeg([str(d / "*.edf")], tmp_path / "store", progress=False, l_freq=1.0, h_freq=40.0)
    assert summary.ok, str(summary)
    man = pd.read_csv(tmp_path / "store" / "manifest.csv", dtype=str).set_index("id")
    assert man.loc["S001R04", ["subject", "run"]].tolist() == ["S001", "4"]
    assert man.loc["S001R08", ["subject", "run"]].tolist() == ["S001", "8"]
    assert pd.isna(man.loc["recording", "subject"])
