"""`neuroconv preprocess` / `neuroconv bench preprocess` from the command line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from neuroconv.cli import main
from neuroconv.data import SequenceStore


@pytest.mark.parametrize("sub", [[], ["eeg"], ["eegbci"], ["eeg-notebooks"], ["fmri"], ["abide"]])
def test_help(sub, capsys):
    with pytest.raises(SystemExit) as e:
        main(["preprocess", *sub, "--help"])
    assert e.value.code == 0 and "usage" in capsys.readouterr().out


def test_bench_help(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "preprocess", "--help"])
    assert "NiftiMapsMasker" in capsys.readouterr().out


def test_cli_eeg_failures_resume_and_shards(sim_eeg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"0       garbage")
    out = tmp_path / "st"
    files = [str(p) for p in sim_eeg] + [str(bad)]
    rc = main(["preprocess", "eeg", *files, "--out", str(out), "--no-progress",
               "--l-freq", "1", "--h-freq", "40", "--channel-set", "10-20",
               "--summary-json", str(tmp_path / "s.json")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "failed" in err and "broken.edf" in err
    summ = json.loads((tmp_path / "s.json").read_text())
    assert len(summ["done"]) == 3 and len(summ["failed"]) == 1
    assert len(SequenceStore(out)) == 3
    # rerun: done ones are skipped, the broken one fails again
    rc = main(["preprocess", "eeg", *files, "--out", str(out), "--no-progress",
               "--l-freq", "1", "--h-freq", "40", "--channel-set", "10-20"])
    assert rc == 1 and "skipped" in capsys.readouterr().err
    # other parameters into the same store: refused with a clear message
    rc = main(["preprocess", "eeg", *files[:1], "--out", str(out), "--no-progress"])
    assert rc == 2 and "other parameters" in capsys.readouterr().err
    # shards of one store, in parallel workers for one of them
    sh = tmp_path / "sharded"
    for i in range(2):
        rc = main(["preprocess", "eeg", *files[:3], "--out", str(sh), "--no-progress",
                   "--shard", f"{i}/2", "--jobs", "2" if i == 0 else "1"])
        assert rc == 0
    assert len(SequenceStore(sh)) == 3
    assert main(["preprocess", "eeg", files[0], "--out", str(sh), "--shard", "2/2"]) == 2


def test_cli_fmri_and_eegbci(sim_fmri, shared_data, tmp_path):
    rc = main(["preprocess", "fmri", str(sim_fmri.root), "--atlas", str(sim_fmri.atlas),
               "--atlas-labels", str(sim_fmri.atlas_labels), "--out", str(tmp_path / "f"),
               "--no-progress", "--low-pass", "0.1"])
    assert rc == 0
    st = SequenceStore(tmp_path / "f")
    assert len(st) == 3 and st.meta["steps"][1]["params"]["low_pass"] == 0.1
    assert main(["preprocess", "fmri", str(sim_fmri.bold[0]), "--out", str(tmp_path / "g"),
                 "--no-progress"]) == 2  # NIfTI without --atlas
    d = tmp_path / "bci" / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001"
    d.mkdir(parents=True)
    shutil.copy(shared_data / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R06.edf", d)
    rc = main(["preprocess", "eegbci", "--data-dir", str(tmp_path / "bci"), "--subjects", "1",
               "--runs", "6", "--out", str(tmp_path / "b"), "--no-progress",
               "--resample", "80", "--notch", "60"])
    assert rc == 0
    st = SequenceStore(tmp_path / "b")
    assert st.manifest.sfreq[0] == 80.0 and set(st.events.label) == {"rest", "fists", "feet"}


def test_eeg_bids_via_mne_bids(shared_data, tmp_path):
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    from neuroconv.pipelines import preprocess_eeg

    raw = mne.io.read_raw_edf(shared_data / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/"
                              "S001R04.edf", verbose="error")
    bp = BIDSPath(subject="01", session="a", task="imagery", run=1, root=tmp_path / "bids",
                  datatype="eeg")
    write_raw_bids(raw, bp, verbose="error")
    s = preprocess_eeg([str(tmp_path / "bids")], tmp_path / "st", progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    row = st.manifest.iloc[0]
    assert (row.subject, row.session, row.task, str(row.run)) == ("01", "a", "imagery", "1")
    assert {"T0", "T1", "T2"} <= set(st.events.label) and row.n_channels == 64
    assert np.isfinite(st.load(row.id)).all()


def test_bench_runs_small():
    from neuroconv.pipelines.bench import run_bench

    res = run_bench(mm=6.0, n_maps=(32,), n_labels=20, n_times=30, repeats=1, verbose=False)
    assert res["maps"][0]["max_rel_err"] < 1e-4 and res["labels"]["max_rel_err"] < 1e-6
    # the speedup reported is the ratio of the two times measured (timing itself belongs in
    # `neuroconv bench preprocess`, not in an assertion)
    for row in (res["maps"][0], res["labels"]):
        assert row["speedup"] == pytest.approx(row["nilearn_transform_s"] / row["fast_transform_s"])
