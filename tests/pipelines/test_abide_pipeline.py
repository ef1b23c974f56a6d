"""ABIDE PCP pipeline on real files from ../shared/data, compared with nilearn."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from nilearn import signal

from neuroconv.data import SequenceStore
from neuroconv.pipelines import preprocess_abide
from neuroconv.pipelines.abide import site_of_file_id, site_table, site_tr
from reference_budget import assert_matches_reference

PCP = "nilearn_data/ABIDE_pcp"
FILES = ["NYU_0050952", "NYU_0051120", "Pitt_0050003", "UCLA_1_0051201"]  # 0051120: no phenotype


@pytest.fixture
def abide_dir(shared_data, tmp_path):
    src = shared_data / PCP
    d = tmp_path / "nilearn_data" / "ABIDE_pcp"
    (d / "cpac" / "filt_noglobal").mkdir(parents=True)
    shutil.copy(src / "Phenotypic_V1_0b_preprocessed1.csv", d)
    for f in FILES:
        shutil.copy(src / "cpac" / "filt_noglobal" / f"{f}_rois_cc200.1D",
                    d / "cpac" / "filt_noglobal")
    return tmp_path


def test_site_table_covers_abide_i(shared_data):
    tab = site_table()
    assert len(tab) == 20 and tab.tr_s.between(1.0, 3.5).all()
    assert site_tr("NYU") == 2.0 and site_tr("PITT") == 1.5 and site_tr("UCLA_1") == 3.0
    pheno = pd.read_csv(shared_data / PCP / "Phenotypic_V1_0b_preprocessed1.csv")
    assert set(pheno.SITE_ID) == set(tab.site_id)
    named = pheno[pheno.FILE_ID != "no_filename"]
    assert [site_of_file_id(f) for f in named.FILE_ID] == list(named.SITE_ID)


def test_abide_store_matches_nilearn_clean(abide_dir, tmp_path):
    s = preprocess_abide(abide_dir / "nilearn_data", tmp_path / "st", progress=False)
    assert s.ok and len(s.done) == 4, str(s)
    assert any("no phenotype row" in w for o in s.done for w in o.warnings)
    st = SequenceStore(tmp_path / "st")
    man = st.manifest.set_index("id")
    assert man.loc["NYU_0050952", "sfreq"] == pytest.approx(0.5)
    assert man.loc["Pitt_0050003", "sfreq"] == pytest.approx(1 / 1.5)
    assert man.loc["UCLA_1_0051201", "sfreq"] == pytest.approx(1 / 3.0)
    assert man.loc["NYU_0050952", "diagnosis"] in ("autism", "control")
    assert {"dx_group", "age", "sex", "site", "subject"} <= set(man.columns)
    assert pd.isna(man.loc["NYU_0051120", "dx_group"])
    assert st.meta["channels"][:2] == ["cc200_1", "cc200_2"] and len(st.meta["channels"]) == 200
    raw = np.loadtxt(abide_dir / PCP / "cpac" / "filt_noglobal" / "Pitt_0050003_rois_cc200.1D",
                     skiprows=1)
    ref = signal.clean(raw, t_r=1.5, detrend=True, standardize="zscore_sample", high_pass=0.008)
    assert_matches_reference(st.load("Pitt_0050003"), ref)
    from neuroconv.engine import Folds, group_values

    ids = st.manifest["id"].to_numpy()
    for tr, te in Folds("leave_group_out").split(np.zeros(len(ids)), group_values(st.manifest["site"], ids)):
        assert len({man.loc[i, "site"] for i in ids[te]}) == 1  # one site per test fold, kept apart
        assert not {man.loc[i, "site"] for i in ids[tr]} & {man.loc[i, "site"] for i in ids[te]}
    # options: one site, labelled only, TR override, data dir = ABIDE_pcp itself
    s2 = preprocess_abide(abide_dir / PCP, tmp_path / "st2", sites=["NYU"], labelled_only=True,
                          tr={"NYU": 2.5}, progress=False)
    assert [o.id for o in s2.done] == ["NYU_0050952"]
    assert SequenceStore(tmp_path / "st2").manifest.sfreq[0] == pytest.approx(0.4)


def test_abide_bad_files_and_errors(abide_dir, tmp_path):
    d = abide_dir / PCP / "cpac" / "filt_noglobal"
    lines = (d / "NYU_0050952_rois_cc200.1D").read_text().splitlines()
    (d / "NYU_0099991_rois_cc200.1D").write_text("\n".join(lines[:5] + [lines[5][:40]]))
    (d / "NYU_0099992_rois_cc200.1D").write_text(lines[0] + "\n")
    (d / "NYU_0099993_rois_cc200.1D").write_text(
        "\n".join(lines[:3] + [lines[3].replace(lines[3].split("\t")[0], "nan", 1)] + lines[4:]))
    (d / "Nowhere_0099994_rois_cc200.1D").write_text("\n".join(lines))
    s = preprocess_abide(abide_dir / "nilearn_data", tmp_path / "st", progress=False)
    reasons = {o.id: o.reason for o in s.failed}
    assert len(s.done) == 4 and s.exit_code == 1
    assert "malformed" in reasons["NYU_0099991"]
    assert "zero-length" in reasons["NYU_0099992"]
    assert "non-finite" in reasons["NYU_0099993"]
    assert "TR is unknown" in reasons["Nowhere_0099994"]
    with pytest.raises(FileNotFoundError, match="no ABIDE_pcp folder"):
        preprocess_abide(tmp_path / "nothing", tmp_path / "x")
    with pytest.raises(ValueError, match="unknown"):
        preprocess_abide(abide_dir / "nilearn_data", tmp_path / "y", sites=["MARS"])
    with pytest.raises(FileNotFoundError, match="no strategy folder"):
        preprocess_abide(abide_dir / "nilearn_data", tmp_path / "z", strategy="filt_global")
