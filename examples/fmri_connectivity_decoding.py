"""
fMRI connectivity decoding: nilearn's connectome against covconv
================================================================

Region time series of two groups of people (say, patients and controls) differ in how
two regions covary in one slow frequency band. This example writes such recordings into
a sequence store and decodes the group of each person with

- ``connectivity``: nilearn's ``ConnectivityMeasure`` (tangent space) with a logistic
  regression, the field's baseline for connectome classification;
- ``covconv`` with ``baseline: connectivity``: it starts *exactly* at that baseline
  (the same features, the head at the baseline's logistic regression) and adds the
  covariances of two band-pass filters whose edges it learns (started at the slow-5 and
  slow-4 bands, 0.01-0.027 and 0.027-0.073 Hz). It keeps a learned change only when the
  inner split of the training fold prefers it, so it cannot be worse than its start by
  design.

The recordings are simulated at the level of region signals (16 regions, TR 2 s,
300 volumes), the form that atlases give (``neuroconv preprocess fmri`` extracts them
from 4D NIfTI, BIDS or fMRIPrep folders; ``neuroconv preprocess abide`` reads ABIDE's).
They are written with :class:`neuroconv.data.StoreWriter`, with the label in a manifest
column, ``diagnosis``, which ``decode.target`` names. On real data the same decode run is
``neuroconv decode --config abide``.

Run it with ``python examples/fmri_connectivity_decoding.py [--out DIR]``; it writes the
store and the run folder (``runs/fmri/metrics.json``...) into ``DIR`` (default: a new
temporary folder) and prints the scores.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

from neuroconv.brain import load_config, run_decode
from neuroconv.data import StoreWriter

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temporary folder)")
args = parser.parse_args()
out = args.out or Path(tempfile.mkdtemp(prefix="neuroconv_example_"))
out.mkdir(parents=True, exist_ok=True)
t_start = time.perf_counter()

# %%
# Region signals with a band-specific group difference
# ----------------------------------------------------
# Every person: 16 regions of AR(1) noise mixed by a random person-specific coupling.
# Patients: regions 0 and 1 also share a component in the slow-4 band (0.027-0.073 Hz),
# weak beside the broadband noise. Each recording is z-scored per region, as
# ``nilearn.signal.clean`` leaves cleaned signals.

T_R, N_TIMES, N_REGIONS, N_PEOPLE = 2.0, 300, 16, 24
rng = np.random.default_rng(0)
slow4 = butter(4, [0.027, 0.073], btype="band", fs=1 / T_R, output="sos")
writer = StoreWriter(out / "store", "simulated-fmri", [{"name": "simulated region signals", "params": {"t_r": T_R}}])
for i in range(N_PEOPLE):
    diagnosis = "patient" if i % 2 else "control"
    e = rng.standard_normal((N_TIMES, N_REGIONS))
    x = np.zeros_like(e)
    for t in range(1, N_TIMES):  # AR(1), slow like BOLD
        x[t] = 0.6 * x[t - 1] + e[t]
    x = x @ (np.eye(N_REGIONS) + 0.15 * rng.standard_normal((N_REGIONS, N_REGIONS)))
    if diagnosis == "patient":
        shared = sosfiltfilt(slow4, rng.standard_normal(N_TIMES))
        shared *= 0.6 * x[:, :2].std() / shared.std()
        x[:, 0] += shared
        x[:, 1] += shared
    x = (x - x.mean(0)) / x.std(0)
    writer.write(f"sub-{i:02d}", x, {"subject": f"{i:02d}", "dataset": "simulated", "modality": "fmri",
                                     "sfreq": 1 / T_R, "diagnosis": diagnosis},
                 [f"region{k:02d}" for k in range(N_REGIONS)], sources=[])
writer.finalize()
print(f"store: {out / 'store'} ({N_PEOPLE} recordings, {N_REGIONS} regions, TR {T_R} s)")

# %%
# The decode run
# --------------
# The ``abide`` config's decode section (connectivity; covconv started at it, with the
# slow-5/slow-4 bands), on this store: one label per recording, 4 folds by subject, each
# fold's inner split by subject choosing every regulariser from one grid.

cfg = load_config("abide", job="decode", overrides={
    "data.stores": [str(out / "store")],
    "data.sources": [],
    "decode.target": "diagnosis",
    "decode.models": ["covconv", "connectivity"],
    "decode.n_splits": 4,
    "decode.max_epochs": 5,
    "decode.n_jobs": 1,
    "decode.n_boot": 500,
    "decode.n_perm": 500,
    "decode.progress": "none",
    "decode.out": str(out / "runs"),
    "decode.name": "fmri",
})
print("covconv settings:", cfg.decode.covconv)
run = run_decode(cfg)

# %%
# The scores, over people
# -----------------------
# Each person holds one label, so a per-person ROC AUC does not exist: the headline is
# the pooled ROC AUC, with its interval from resampling people. ``best_step`` 0 in a fold
# means covconv kept its start there, i.e. it was the connectivity baseline.

metrics = json.loads((run / "metrics.json").read_text())
print(f"\nrun folder: {run}")
for name, block in metrics["models"].items():
    auc = block["roc_auc"]
    ci = auc.get("ci95") or [float("nan"), float("nan")]
    print(f"{name:12s} ROC AUC {auc['value']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] ({auc['headline']})")
moved = [h.get("best_step", 0) > 0 for h in metrics["models"]["covconv"]["hyperparameters"]]
print(f"covconv moved from its start in {sum(moved)} of {len(moved)} folds")
for pair in metrics["paired"]:
    d = pair["roc_auc"]
    print(f"{pair['first']} - {pair['second']}: {d['difference']:+.3f}, p = {d['p_value']:.2g} ({d['test']})")

for name in ("metrics.json", "predictions.csv", "config.yaml"):
    print(f"wrote {run / name}")
print(f"done in {time.perf_counter() - t_start:.1f} s")
