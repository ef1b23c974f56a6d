"""fMRI pipeline: compared with nilearn maskers + signal.clean on the same input."""

from __future__ import annotations

import gzip
import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn import signal
from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker

from neuroconv.data import SequenceStore
from neuroconv.pipelines import preprocess_fmri
from neuroconv.pipelines.atlas import (AtlasError, LabelsExtractor, MapsExtractor,
                                       resolve_atlas)
from reference_budget import assert_matches_reference

CLEAN = dict(detrend=True, standardize="zscore_sample", high_pass=0.008)


def _float64(path):
    """The image as float64 in memory, so nilearn computes the reference in float64."""
    img = nib.load(str(path))
    return nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float64), img.affine, img.header)


def _cond(maps):
    """Condition number of the maps extraction: ours solves the normal equations
    (A^T A) s = A^T x, whose condition number is cond(A)^2 for the (voxels x maps) A."""
    m = np.asarray(nib.load(str(maps)).dataobj if not isinstance(maps, np.ndarray) else maps,
                   dtype=np.float64)
    m = m.reshape(-1, m.shape[-1])
    return float(np.linalg.cond(m[(m != 0).any(1)])) ** 2


def _quiet(f, *a, **k):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **k)


def test_labels_pipeline_matches_nilearn(sim_fmri, tmp_path):
    s = preprocess_fmri([str(sim_fmri.root)], str(sim_fmri.atlas), tmp_path / "st",
                        atlas_labels=str(sim_fmri.atlas_labels), progress=False)
    assert s.ok and len(s.done) == 3, str(s)
    st = SequenceStore(tmp_path / "st")
    assert st.meta["channels"][:2] == ["region01", "region02"]
    row = st.manifest.iloc[0]
    assert row.modality == "fmri" and row.sfreq == pytest.approx(0.5) and row.subject == "01"
    masker = NiftiLabelsMasker(str(sim_fmri.atlas), t_r=2.0, **CLEAN)
    ref = _quiet(masker.fit_transform, _float64(sim_fmri.bold[0]))
    assert_matches_reference(st.load(row.id), ref)
    # BIDS events (seconds) -> samples
    ev = st.events[st.events.id == row.id]
    assert ev.onset.iloc[0] == 10 and set(ev.label) == {"task"}
    # active regions carry the block design
    x = st.load(row.id)
    act = [st.meta["channels"].index(n) for n in sim_fmri.active_regions]
    box = np.zeros(60)
    for o in ev.onset:
        box[o:o + 10] = 1
    box = np.roll(box, 3)  # ~6 s haemodynamic delay
    r = [abs(np.corrcoef(x[:, k], box)[0, 1]) for k in range(x.shape[1])]
    assert np.mean([r[k] for k in act]) > 0.5 > np.mean([r[k] for k in range(len(r)) if k not in act])


def test_maps_pipeline_matches_nilearn(sim_fmri, tmp_path):
    s = preprocess_fmri(sim_fmri.bold[:1], str(sim_fmri.maps), tmp_path / "st", progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    ref = _quiet(NiftiMapsMasker(str(sim_fmri.maps), t_r=2.0, **CLEAN).fit_transform,
                 _float64(sim_fmri.bold[0]))
    assert_matches_reference(st.load(st.ids[0]), ref, cond=_cond(sim_fmri.maps))


def test_maps_extractor_rtol_1e5_and_resampled_grid():
    rng = np.random.default_rng(0)
    shape, aff = (12, 13, 11), np.diag([3.0, 3.0, 3.0, 1.0])
    maps = rng.random(shape + (7,)) * (rng.random(shape + (7,)) > 0.6)
    img = nib.Nifti1Image(rng.standard_normal(shape + (40,)) + 5, aff)
    mimg = nib.Nifti1Image(maps, aff)
    ours = MapsExtractor(mimg).fit(img).transform(img)
    ref = _quiet(NiftiMapsMasker(mimg).fit_transform, img)
    assert_matches_reference(ours, ref, stored_float32=False, cond=_cond(maps))
    # atlas on another (coarser) grid: resampled like nilearn, and a warning
    aff2 = np.diag([4.0, 4.0, 4.0, 1.0])
    mimg2 = nib.Nifti1Image(maps[:9, :9, :8], aff2)
    with pytest.warns(UserWarning, match="resampled"):
        ex = MapsExtractor(mimg2).fit(img)
    ref2 = _quiet(NiftiMapsMasker(mimg2).fit_transform, img)
    assert_matches_reference(ex.transform(img), ref2, stored_float32=False,
                             cond=float(np.linalg.cond(ex.gram_pinv_)))
    # labels, including a resampled grid
    lab = rng.integers(0, 6, shape)
    limg = nib.Nifti1Image(lab.astype(np.int16), aff)
    assert_matches_reference(LabelsExtractor(limg).fit(img).transform(img),
                             _quiet(NiftiLabelsMasker(limg).fit_transform, img), stored_float32=False)
    limg2 = nib.Nifti1Image(lab[:9, :9, :8].astype(np.int16), aff2)
    with pytest.warns(UserWarning, match="resampled"):
        lx = LabelsExtractor(limg2).fit(img)
    assert_matches_reference(lx.transform(img), _quiet(NiftiLabelsMasker(limg2).fit_transform, img),
                             stored_float32=False)


def test_tr_sources_and_tables(sim_fmri, tmp_path):
    # header only (no sidecar): TR from pixdim[4]
    b = tmp_path / "hdr_bold.nii.gz"
    shutil.copy(sim_fmri.bold[0], b)
    st_dir = tmp_path / "st"
    s = preprocess_fmri([str(b)], str(sim_fmri.atlas), st_dir, progress=False)
    assert s.ok and SequenceStore(st_dir).meta["details"]["hdr_bold"]["t_r_source"] == "header"
    # region tables in every format, TR from the sidecar or t_r=
    rng = np.random.default_rng(1)
    arr = rng.standard_normal((50, 4))
    np.savetxt(tmp_path / "a.1D", arr, header="\t".join(f"#{k}" for k in range(1, 5)),
               comments="", delimiter="\t")
    pd.DataFrame(arr, columns=list("wxyz")).to_csv(tmp_path / "b.tsv", sep="\t", index=False)
    np.savetxt(tmp_path / "c.csv", arr, delimiter=",")
    np.save(tmp_path / "d.npy", arr)
    (tmp_path / "d.json").write_text(json.dumps({"RepetitionTime": 1.5}))
    s = preprocess_fmri([str(tmp_path / n) for n in ("a.1D", "b.tsv", "c.csv", "d.npy")],
                        None, tmp_path / "tab", t_r=1.5, progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "tab")
    ref = signal.clean(arr, t_r=1.5, **CLEAN)
    for rid in st.ids:
        assert_matches_reference(st.load(rid), ref)
    assert st.channels("b") == list("wxyz") and st.channels("a") == ["1", "2", "3", "4"]
    s = preprocess_fmri([str(tmp_path / "d.npy")], None, tmp_path / "tab2", progress=False)
    assert s.ok and SequenceStore(tmp_path / "tab2").manifest.sfreq[0] == pytest.approx(1 / 1.5)


def _bad_files(sim_fmri, d):
    """One file per bad-input case."""
    good = nib.load(sim_fmri.bold[0])
    data = np.asarray(good.dataobj)
    out = {}
    raw = gzip.decompress(open(sim_fmri.bold[0], "rb").read())
    (d / "truncated_bold.nii").write_bytes(raw[: len(raw) // 3])
    out["truncated"] = (d / "truncated_bold.nii", "truncated or corrupt")
    (d / "corrupt_bold.nii.gz").write_bytes(b"not a nifti at all" * 10)
    out["corrupt"] = (d / "corrupt_bold.nii.gz", "cannot be read")
    nan = data.copy()
    nan[3, 3, 3, 5] = np.nan
    img = nib.Nifti1Image(nan, good.affine, good.header)
    nib.save(img, d / "nan_bold.nii.gz")
    out["nonfinite"] = (d / "nan_bold.nii.gz", "non-finite")
    noTR = nib.Nifti1Image(data, good.affine)
    noTR.header.set_zooms(noTR.header.get_zooms()[:3] + (0.0,))
    nib.save(noTR, d / "notr_bold.nii.gz")
    out["missing_tr"] = (d / "notr_bold.nii.gz", "repetition time")
    nib.save(nib.Nifti1Image(data[..., 0], good.affine), d / "3d_bold.nii.gz")
    out["dims"] = (d / "3d_bold.nii.gz", "wrong number of dimensions")
    (d / "empty.1D").write_text("#1\t#2\n")
    out["zero_length"] = (d / "empty.1D", "zero-length")
    (d / "ragged.1D").write_text("#1\t#2\n1\t2\n3\n")
    out["ragged"] = (d / "ragged.1D", "malformed")
    np.save(d / "cube.npy", np.zeros((3, 3, 3)))
    out["npy_dims"] = (d / "cube.npy", "wrong number of dimensions")
    return out


def test_bad_inputs_fail_per_file_and_run_goes_on(sim_fmri, tmp_path):
    bad = _bad_files(sim_fmri, tmp_path)
    files = [str(sim_fmri.bold[1])] + [str(p) for p, _ in bad.values()]
    s = preprocess_fmri(files, str(sim_fmri.atlas), tmp_path / "st", t_r=None, progress=False)
    assert len(s.done) == 1 and not s.ok and s.exit_code == 1
    reasons = {o.source: o.reason for o in s.failed}
    # tables without TR would fail on TR; give the tables their own run with t_r
    for case, (path, needle) in bad.items():
        if path.suffix in (".1D", ".npy"):
            continue
        assert needle in reasons[str(path)], (case, reasons[str(path)])
        assert str(path) in reasons[str(path)]
    s2 = preprocess_fmri([str(p) for p, _ in bad.values() if p.suffix in (".1D", ".npy")],
                         None, tmp_path / "st2", t_r=2.0, progress=False)
    reasons = {o.source: o.reason for o in s2.failed}
    for case, (path, needle) in bad.items():
        if path.suffix in (".1D", ".npy"):
            assert needle in reasons[str(path)], (case, reasons[str(path)])
    # events outside the recording
    ev = sim_fmri.bold[2].parent / "outside"
    ev.mkdir(exist_ok=True)
    b = ev / "sub-09_task-x_bold.nii.gz"
    shutil.copy(sim_fmri.bold[2], b)
    (ev / "sub-09_task-x_events.tsv").write_text("onset\tduration\ttrial_type\n500\t10\tx\n")
    s3 = preprocess_fmri([str(b)], str(sim_fmri.atlas), tmp_path / "st3", t_r=2.0,
                         progress=False)
    assert "outside the recording" in s3.failed[0].reason


def test_fmriprep_confounds_match_nilearn(sim_fmri, tmp_path):
    from nilearn.interfaces.fmriprep import load_confounds

    root = tmp_path / "deriv"
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "x", "BIDSVersion": "1.8.0", "DatasetType": "derivative",
         "GeneratedBy": [{"Name": "fMRIPrep"}]}))
    stem = "sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold"
    b = func / f"{stem}.nii.gz"
    shutil.copy(sim_fmri.bold[0], b)
    (func / f"{stem}.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    rng = np.random.default_rng(0)
    n = 60
    cols = {c: rng.standard_normal(n) for c in
            ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z",
             "white_matter", "csf", "global_signal", "framewise_displacement"]}
    for c in ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]:
        cols[c + "_derivative1"] = np.r_[np.nan, np.diff(cols[c])]
        cols[c + "_power2"] = cols[c] ** 2
        cols[c + "_derivative1_power2"] = cols[c + "_derivative1"] ** 2
    for k in range(3):
        cols[f"cosine{k:02d}"] = np.cos(np.pi * (k + 1) * (np.arange(n) + 0.5) / n)
    pd.DataFrame(cols).to_csv(func / "sub-01_task-rest_desc-confounds_timeseries.tsv",
                              sep="\t", index=False, na_rep="n/a")
    (func / "sub-01_task-rest_desc-confounds_timeseries.json").write_text("{}")
    strategy = ("motion", "wm_csf")
    s = preprocess_fmri([str(root)], str(sim_fmri.atlas), tmp_path / "st",
                        confounds_strategy=strategy, confounds_kwargs={"motion": "basic"},
                        progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    conf, mask = load_confounds(str(b), strategy=strategy, motion="basic")
    ref = _quiet(NiftiLabelsMasker(str(sim_fmri.atlas), t_r=2.0, **CLEAN).fit_transform,
                 _float64(b), confounds=conf, sample_mask=mask)
    assert_matches_reference(st.load(st.ids[0]), ref)
    assert st.manifest.subject[0] == "01" and st.manifest.task[0] == "rest"
    assert len(st.meta["sources"][st.ids[0]]) == 3  # bold, confounds, sidecar


def test_atlas_resolution_errors_and_offline_name(tmp_path, monkeypatch):
    with pytest.raises(AtlasError, match="not a file and not a known atlas"):
        resolve_atlas("nosuchatlas")
    with pytest.raises(AtlasError, match="DiFuMo dimension"):
        resolve_atlas("difumo100")
    with pytest.raises(AtlasError, match="Schaefer n_rois"):
        resolve_atlas("schaefer150")
    # a named atlas that is not cached and cannot be downloaded: a clear error
    with pytest.raises(AtlasError, match="could not load it"):
        resolve_atlas("msdl", data_dir=tmp_path / "empty")
    # a named atlas already in the data dir works offline (nilearn's MSDL cache layout)
    d = tmp_path / "nl" / "msdl_atlas" / "MSDL_rois"
    d.mkdir(parents=True)
    maps = np.zeros((5, 5, 5, 3), np.float32)
    maps[1:3, 1:3, 1:3, 0] = maps[2:4, 2:4, 2:4, 1] = maps[0:2, 3:5, 0:2, 2] = 1
    nib.save(nib.Nifti1Image(maps, np.eye(4)), d / "msdl_rois.nii")
    pd.DataFrame({"x": [0, 1, 2], "y": [0, 1, 2], "z": [0, 1, 2], "name": ["A", "B", "C"],
                  "net name": ["n", "n", "n"]}).to_csv(d / "msdl_rois_labels.csv", index=False)
    spec = resolve_atlas("msdl", data_dir=tmp_path / "nl")
    assert spec.kind == "maps" and spec.names == ["A", "B", "C"]
    # a 3D atlas with fractional values is refused
    nib.save(nib.Nifti1Image(np.full((3, 3, 3), 0.5, np.float32), np.eye(4)), tmp_path / "f.nii")
    with pytest.raises(AtlasError, match="integer labels"):
        resolve_atlas(str(tmp_path / "f.nii"))
