"""Confound sample masks keep time true: leading non-steady-state volumes shift the
events; censoring inside the run (scrubbing) is refused with a message."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from neuroconv.pipelines import preprocess_fmri
from neuroconv.pipelines.fmri import _events_table, _leading_volumes_only
from neuroconv.pipelines.runner import InputError


def _fmriprep(sim_fmri, root, fd):
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "x", "BIDSVersion": "1.8.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "fMRIPrep"}]}))
    stem = "sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold"
    shutil.copy(sim_fmri.bold[0], func / f"{stem}.nii.gz")
    (func / f"{stem}.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    rng = np.random.default_rng(0)
    n = 60
    cols = {c: rng.standard_normal(n) * 0.01 for c in
            ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "white_matter", "csf", "global_signal"]}
    cols["framewise_displacement"] = fd
    cols["std_dvars"] = np.ones(n)
    pd.DataFrame(cols).to_csv(func / "sub-01_task-rest_desc-confounds_timeseries.tsv", sep="\t", index=False,
                              na_rep="n/a")
    (func / "sub-01_task-rest_desc-confounds_timeseries.json").write_text("{}")


def test_scrubbing_inside_the_run_is_refused(sim_fmri, tmp_path):
    fd = np.full(60, 0.05)
    fd[30] = 3.0  # one motion spike in the middle of the run
    _fmriprep(sim_fmri, tmp_path / "deriv", fd)
    s = preprocess_fmri([str(tmp_path / "deriv")], str(sim_fmri.atlas), tmp_path / "st",
                        confounds_strategy=("motion", "scrub"),
                        confounds_kwargs={"motion": "basic", "scrub": 0, "fd_threshold": 0.5,
                                          "std_dvars_threshold": 10},
                        progress=False)
    assert not s.ok and len(s.failed) == 1
    reason = s.failed[0].reason
    assert "censors" in reason and "scrub" in reason and "uniform" in reason


def test_leading_volumes_shift_events_and_inner_censoring_raises():
    assert _leading_volumes_only(None, 10, "f", ("motion",)) == 0
    assert _leading_volumes_only(np.arange(2, 10), 10, "f", ("high_pass",)) == 2
    mask = np.ones(10, bool)
    mask[:3] = False
    assert _leading_volumes_only(mask, 10, "f", ("high_pass",)) == 3
    with pytest.raises(InputError, match="censors 1 volume"):
        _leading_volumes_only(np.r_[np.arange(0, 4), np.arange(5, 10)], 10, "f", ("scrub",))


def test_events_are_shifted_by_the_removed_leading_volumes(tmp_path):
    ev = tmp_path / "events.tsv"
    pd.DataFrame({"onset": [10.0, 20.0], "duration": [4.0, 4.0], "trial_type": ["a", "b"]}).to_csv(
        ev, sep="\t", index=False)
    full = _events_table(str(ev), 2.0, 50, "bold")
    shifted = _events_table(str(ev), 2.0, 48, "bold", first=2)
    assert list(full["onset"]) == [5, 10] and list(shifted["onset"]) == [3, 8]  # the same seconds
    with pytest.raises(InputError, match="outside the recording"):
        _events_table(str(ev), 2.0, 48, "bold", first=6)  # the first event fell in the removed volumes
