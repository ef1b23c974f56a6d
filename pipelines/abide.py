"""ABIDE I Preprocessed Connectomes Project (PCP) ROI time series -> sequence store.

Reads the cache layout of ``nilearn.datasets.fetch_abide_pcp``::

    DATA_DIR/ABIDE_pcp/<pipeline>/<strategy>/<FILE_ID>_<derivative>.1D
    DATA_DIR/ABIDE_pcp/Phenotypic_V1_0b_preprocessed1.csv

``DATA_DIR`` may be the folder holding ``ABIDE_pcp`` or ``ABIDE_pcp`` itself (or a folder
holding ``nilearn_data``). The ``.1D`` files carry no TR: each site's TR comes from the
ABIDE I acquisition parameters in ``abide_sites.csv`` (all 20 sites; override with
``tr={"SITE": seconds}``). Phenotype columns (diagnosis, age, sex, ...) join on
``FILE_ID``; files without a phenotype row are kept, with empty labels, and warned about.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .fmri import FmriInput, _validate_clean, process_table
from .runner import InputError, Item, Outcome, run_items

PHENOTYPE_FILE = "Phenotypic_V1_0b_preprocessed1.csv"
#: phenotype columns copied into the manifest (lower-cased), besides dx/age/sex
PHENO_COLUMNS = ["SUB_ID", "SITE_ID", "FILE_ID", "DX_GROUP", "DSM_IV_TR", "AGE_AT_SCAN",
                 "SEX", "HANDEDNESS_CATEGORY", "FIQ", "VIQ", "PIQ", "EYE_STATUS_AT_SCAN",
                 "CURRENT_MED_STATUS", "func_mean_fd", "func_perc_fd", "SUB_IN_SMP"]


@lru_cache(maxsize=1)
def site_table() -> pd.DataFrame:
    """The ABIDE I site table: site_id, file_prefixes, tr_s, note (20 rows)."""
    return pd.read_csv(Path(__file__).with_name("abide_sites.csv"))


def _prefix_map() -> dict[str, str]:
    out = {}
    for site, prefixes in zip(site_table()["site_id"], site_table()["file_prefixes"]):
        for p in prefixes.split(";"):
            out[p.lower()] = site
        out[site.lower()] = site
    return out


def site_of_file_id(file_id: str) -> str | None:
    """``"MaxMun_a_0051318"`` -> ``"MAX_MUN"``; None if unknown."""
    m = re.match(r"(.+?)_(\d{5,})$", file_id)
    prefix = (m.group(1) if m else file_id).lower()
    return _prefix_map().get(prefix)


def site_tr(site: str, override: dict | None = None) -> float:
    if override and site in override:
        return float(override[site])
    tab = site_table().set_index("site_id")["tr_s"]
    if site not in tab.index:
        raise KeyError(site)
    return float(tab[site])


def find_abide_root(data_dir) -> Path:
    d = Path(data_dir).expanduser()
    for cand in (d, d / "ABIDE_pcp", d / "nilearn_data" / "ABIDE_pcp"):
        if cand.name == "ABIDE_pcp" and cand.is_dir():
            return cand
    raise FileNotFoundError(
        f"data_dir={str(data_dir)!r}: no ABIDE_pcp folder found (looked in it, "
        f"{d / 'ABIDE_pcp'} and {d / 'nilearn_data' / 'ABIDE_pcp'}). Pass the data_dir "
        "given to nilearn.datasets.fetch_abide_pcp.")


def preprocess_abide(data_dir, out, *, pipeline: str = "cpac", strategy: str | None = None,
                     derivative: str = "rois_cc200", sites=None, tr: dict | None = None,
                     labelled_only: bool = False, jobs: int = 1, shard=None,
                     overwrite: bool = False, progress: bool = True, **clean):
    """ABIDE PCP ``.1D`` ROI tables + phenotypes -> a sequence store at ``out``.

    Parameters
    ----------
    data_dir : the nilearn data dir holding ``ABIDE_pcp`` (or that folder itself).
    pipeline : PCP pipeline folder (``cpac``, ``ccs``, ``dparsf``, ``niak``).
    strategy : ``filt_noglobal``, ``filt_global``, ``nofilt_noglobal``, ``nofilt_global``;
        default: the only one present.
    derivative : ``rois_cc200``, ``rois_aal``, ``rois_ho``, ... (the file suffix).
    sites : restrict to these SITE_IDs (e.g. ``["NYU", "PITT"]``).
    tr : per-site TR overrides in seconds, e.g. ``{"SBL": 2.2}``.
    labelled_only : skip files without a phenotype row.
    **clean : ``nilearn.signal.clean`` parameters (see ``pipelines.fmri``).
    """
    from neuroconv.data.store import StoreWriter

    clean = _validate_clean(clean)
    root = find_abide_root(data_dir)
    pdir = root / pipeline
    if not pdir.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise FileNotFoundError(f"{root}: no pipeline folder {pipeline!r}; available: {have}")
    strategies = sorted(p.name for p in pdir.iterdir() if p.is_dir())
    if strategy is None:
        if len(strategies) != 1:
            raise ValueError(f"{pdir}: pass strategy=... (--strategy); available: {strategies}")
        strategy = strategies[0]
    sdir = pdir / strategy
    if not sdir.is_dir():
        raise FileNotFoundError(f"{pdir}: no strategy folder {strategy!r}; available: "
                                f"{strategies}")
    files = sorted(sdir.glob(f"*_{derivative}.1D"))
    if not files:
        raise FileNotFoundError(f"{sdir}: no *_{derivative}.1D files.")
    pheno = None
    ppath = root / PHENOTYPE_FILE
    if ppath.is_file():
        pheno = pd.read_csv(ppath)
        pheno = pheno[pheno["FILE_ID"] != "no_filename"].drop_duplicates("FILE_ID")
        pheno = pheno.set_index("FILE_ID")
    else:
        warnings.warn(f"{ppath} not found: the store will have no diagnosis/age/sex labels.")
    if sites is not None:
        sites = [sites] if isinstance(sites, str) else list(sites)
        known = set(site_table()["site_id"])
        bad = [s for s in sites if s.upper() not in known]
        if bad:
            raise ValueError(f"sites: unknown {bad}; ABIDE I sites are {sorted(known)}")
        sites = {s.upper() for s in sites}
    if tr:
        known = set(site_table()["site_id"])
        bad = [s for s in tr if s not in known]
        if bad:
            raise ValueError(f"tr: unknown site(s) {bad}; ABIDE I sites are {sorted(known)}")
    atlas = derivative.replace("rois_", "")
    items, pre_failed = [], []
    suffix = f"_{derivative}.1D"
    for f in files:
        file_id = f.name[: -len(suffix)]
        prow = pheno.loc[file_id] if pheno is not None and file_id in pheno.index else None
        site = str(prow["SITE_ID"]) if prow is not None else site_of_file_id(file_id)
        if sites is not None and site not in sites:
            continue
        if prow is None and labelled_only:
            continue
        if site is None:
            pre_failed.append(Outcome(file_id, str(f), "failed", str(InputError(
                f, f"cannot tell the ABIDE site of FILE_ID {file_id!r} (no phenotype row, "
                "unknown prefix) so its TR is unknown.",
                "Add it to the phenotype CSV or pass tr={SITE: seconds}."))))
            continue
        row = {"subject": file_id.rsplit("_", 1)[-1].lstrip("0") or file_id,
               "site": site, "dataset": "abide", "file_id": file_id,
               "pipeline": pipeline, "strategy": strategy, "task": "rest"}
        if prow is not None:
            row["subject"] = str(int(prow["SUB_ID"]))
            for c in PHENO_COLUMNS:
                if c in prow.index and c not in ("FILE_ID", "SITE_ID"):
                    v = prow[c]
                    row[c.lower()] = None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)
            dx = row.get("dx_group")
            row["diagnosis"] = {1: "autism", 2: "control"}.get(dx)
            sex = row.get("sex")
            row["sex"] = {1: "M", 2: "F"}.get(sex, sex)
            row["age"] = row.pop("age_at_scan", None)
        note = None if prow is not None or pheno is None else (
            f"no phenotype row for FILE_ID {file_id}; kept without labels "
            "(--labelled-only skips such files).")
        inp = FmriInput(str(f), "table", {})
        kw = dict(inp=inp, t_r=site_tr(site, tr), names_prefix=atlas, row_extra=row,
                  note=note, **clean)
        items.append(Item(file_id, [str(f)], process_table, kw))
    steps = [
        {"name": "read", "params": {"layout": "ABIDE_pcp", "pipeline": pipeline,
                                    "strategy": strategy, "derivative": derivative,
                                    "tr_table": site_table().set_index("site_id")["tr_s"]
                                    .to_dict(), "tr_override": tr or {}}},
        {"name": "clean", "params": {"function": "nilearn.signal.clean", **clean}},
    ]
    writer = StoreWriter(out, "abide", steps, overwrite=overwrite)
    return run_items(items, writer, jobs=jobs, shard=shard, progress=progress,
                     description="abide", pre_failed=pre_failed,
                     extra_meta={"units": "a.u. (cleaned region signals)", "modality": "fmri",
                                 "labels": {"dx_group": {"1": "autism", "2": "control"}}})
