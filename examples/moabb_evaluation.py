"""
A MOABB evaluation with LongConvClassifier and CovConvClassifier
================================================================

neuroconv's scikit-learn estimators take MOABB's epochs, ``X (n_epochs, n_channels,
n_times)``, so they run inside MOABB's evaluations unchanged, beside MOABB's own
pipelines:

- :class:`neuroconv.CovConvClassifier`, loaded from the pipeline file that ships in
  ``configs/moabb/CovConv_imagery.yml`` (MOABB's YAML format): learned long-convolution
  filters, then Ledoit-Wolf covariances in the tangent space and a logistic-regression
  head; untrained, it *is* the tangent-space pipeline.
- :class:`neuroconv.LongConvClassifier`: the long-convolution sequence model, here
  small and briefly trained.
- MOABB's classics for motor imagery: tangent space + logistic regression (pyriemann)
  and CSP + LDA (MNE).

The data are MOABB's ``FakeDataset``: noise generated in memory, so nothing downloads
and every score is at chance. With a real data set, replace it with e.g.
``moabb.datasets.BNCI2014_001()`` (MOABB downloads it on first use into the MNE data
folder, ``MNE_DATA``, else ``~/mne_data``).

Run it with ``python examples/moabb_evaluation.py [--out DIR]``; MOABB's results go to
``DIR/moabb_results`` and the score table to ``DIR/scores.csv`` (default: a new
temporary folder).
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temporary folder)")
args = parser.parse_args()
out = args.out or Path(tempfile.mkdtemp(prefix="neuroconv_example_"))
out.mkdir(parents=True, exist_ok=True)
# MNE's data folder for this run: MOABB looks for data sets there (FakeDataset needs none)
os.environ.setdefault("MNE_DATA", str(out / "mne_data"))
t_start = time.perf_counter()

import moabb  # noqa: E402
from mne.decoding import CSP  # noqa: E402
from moabb.datasets.fake import FakeDataset  # noqa: E402
from moabb.evaluations import WithinSessionEvaluation  # noqa: E402
from moabb.paradigms import LeftRightImagery  # noqa: E402
from moabb.pipelines.utils import parse_pipelines_from_directory  # noqa: E402
from pyriemann.estimation import Covariances  # noqa: E402
from pyriemann.tangentspace import TangentSpace  # noqa: E402
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

import neuroconv  # noqa: E402
import neuroconv.configs  # noqa: E402

moabb.set_log_level("error")

# %%
# The pipelines
# -------------
# The shipped MOABB pipeline files are read with MOABB's own parser, from a copy
# (the parser writes ``.lock`` files beside them). The budgets are cut down here so that
# the example runs in a minute; the files' own settings are for real data.

pipelines_dir = shutil.copytree(Path(neuroconv.configs.__file__).parent / "moabb", out / "pipelines",
                                dirs_exist_ok=True)
shipped = {c["name"]: c["pipeline"] for c in parse_pipelines_from_directory(str(pipelines_dir))}
covconv = shipped["neuroconv CovConv (long-conv filters, tangent space)"]
covconv.set_params(covconvclassifier__max_epochs=3, covconvclassifier__patience=1)
pipelines = {
    "CovConv": covconv,
    "LongConv": make_pipeline(neuroconv.LongConvClassifier(d_model=16, n_layers=2, max_epochs=3, patience=1)),
    "TS+LR": make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression()),
    "CSP+LDA": make_pipeline(CSP(n_components=4, log=True), LinearDiscriminantAnalysis()),
}

# %%
# The evaluation
# --------------
# Within each session, MOABB cross-validates every pipeline on the same folds
# (here 3-fold) and scores ROC AUC, MOABB's score for two classes. ``FakeDataset`` is
# white noise with events: no pipeline can find the classes, and every score should sit
# near 0.5 (with 40 trials a subject, chance scores spread by about +-0.1). It checks the
# plumbing; skill needs real data.

dataset = FakeDataset(event_list=("left_hand", "right_hand"), n_subjects=3, n_sessions=1, n_runs=1,
                      paradigm="imagery", channels=("C3", "Cz", "C4", "FC3", "FC4", "CP3", "CP4"),
                      duration=120, n_events=40, seed=0)
evaluation = WithinSessionEvaluation(paradigm=LeftRightImagery(), datasets=[dataset], n_splits=3,
                                     hdf5_path=str(out / "moabb_results"), overwrite=True)
results = evaluation.process(pipelines)

# %%
# MOABB's results table: one row per pipeline, subject and session.

results.to_csv(out / "scores.csv", index=False)
print(results.groupby("pipeline")["score"].describe()[["count", "mean", "min", "max"]].round(3))
print(f"wrote {out / 'scores.csv'}")
print(f"done in {time.perf_counter() - t_start:.1f} s")
