"""
Sleep staging over whole nights (Sleep-EDF)
===========================================

Dense decoding: a sleep stage (W, N1, N2, N3, R) for every 30-s epoch of whole nights,
with ``decode.task: staging``. The nights are those of the Sleep-EDF Expanded sleep
cassette study (PhysioNet), as per-epoch features with their hypnograms; folds leave
subjects out (both nights of a person on one side), and the scores (macro-F1, Cohen's
kappa, accuracy) are per subject, then averaged.

- ``stage_lr``: per-epoch standardised features -> logistic regression, the epoch-wise
  baseline; ``stage_lr_hmm`` smooths its output with an HMM whose transitions come from
  the training nights (Viterbi).
- ``sleepconv``: bidirectional long convolutions over the whole night, a stage per
  epoch: the context of minutes to hours that stages follow.

This is the built-in ``sleep_edf`` experiment, cut down to 4 subjects and a short
training budget so that it runs in about a minute; the whole experiment is::

    neuroconv decode --config sleep_edf --data-dir ROOT

**Data.** The Sleep-EDF files are found as ``neuroconv`` finds them: ``--data-dir``
(the folder holding ``features/`` or the PSG files and the hypnograms), else
``$NEUROCONV_DATA/sleep-edf``, else MNE's Sleep-EDF folder (``~/mne_data/physionet-sleep-data``,
where ``mne.datasets.sleep_physionet`` downloads it). Without the data, the example says
so and exits (status 0).

Run it with ``python examples/sleep_staging.py [--data-dir DIR] [--out DIR]``; it writes
the store and the run folder (``runs/staging``: ``metrics.json``, ``hypnograms/``,
``plots/``) into ``--out`` (default: a new temporary folder).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from neuroconv.pipelines import resolve_data_dir
from neuroconv.pipelines.sources import DataNotFoundError

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--data-dir", default=None, help="the Sleep-EDF folder (default: found as described above)")
parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temporary folder)")
args = parser.parse_args()
try:
    data_dir = resolve_data_dir("sleep-edf", data_dir=args.data_dir)
except DataNotFoundError as err:
    print(f"skipped: no Sleep-EDF data here.\n{err}")
    sys.exit(0)
out = args.out or Path(tempfile.mkdtemp(prefix="neuroconv_example_"))
out.mkdir(parents=True, exist_ok=True)
t_start = time.perf_counter()

from neuroconv.brain import load_config, run_decode  # noqa: E402

# %%
# The experiment
# --------------
# ``data.sources`` preprocesses the nights into a store first (one recording per night,
# kept from 30 minutes before the first sleep epoch to 30 minutes after the last; the
# feature rows are checked against the hypnogram). ``decode.comparator`` names, before
# any score is seen, the baseline that the headline comparison is with.

cfg = load_config("sleep_edf", job="decode", overrides={
    "data.sources": [{"pipeline": "sleep-edf", "store": str(out / "store"),
                      "args": {"data_dir": str(data_dir), "subjects": "0-3", "allow_truncated": True,
                               "wake_margin": 30}}],
    "data.stores": [],
    "decode.models": ["stage_lr", "stage_lr_hmm", "sleepconv"],
    "decode.comparator": "stage_lr_hmm",
    "decode.max_epochs": 8,
    "decode.patience": 4,
    "decode.progress": "none",
    "decode.out": str(out / "runs"),
    "decode.name": "staging",
})
run = run_decode(cfg)

# %%
# The scores
# ----------
# With 4 subjects there is no interval (at least 8 units are needed); the per-subject
# means are the headline.

metrics = json.loads((run / "metrics.json").read_text())
for name, block in metrics["models"].items():
    print(f"{name:13s} macro-F1 {block['macro_f1']['value']:.3f}  kappa {block['kappa']['value']:.3f}  "
          f"accuracy {block['accuracy']['value']:.3f}  ({block['macro_f1']['headline']}, "
          f"{block['macro_f1']['n_units']} subjects)")
for path in ("metrics.json", "predictions.csv", "plots/hypnograms_sleepconv.png"):
    print(f"wrote {run / path}")
print(f"done in {time.perf_counter() - t_start:.1f} s")
