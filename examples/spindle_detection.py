"""
Sleep spindle detection: YASA against a learned detector (DREAMS)
=================================================================

Dense decoding of events: ``decode.task: detection`` finds sleep spindles (bursts of
11-16 Hz lasting 0.5-2 s) over whole 30-minute excerpts of sleep EEG, and scores them
event by event against an expert's marks (one-to-one matching of detected and marked
spindles at an overlap, intersection over union, of at least 0.2; and of 0.5).

- ``yasa``: YASA's ``spindles_detect``, the field's rule-based detector, with its
  thresholds chosen on the training excerpts of each fold;
- ``sigma_lr``: sigma-band features per window -> logistic regression -> events, with
  its probability threshold chosen on the training excerpts.

The excerpts are those of the DREAMS Sleep Spindles database (University of Mons; 6
excerpts, marked by expert 1). Folds leave one excerpt out. This is the built-in
``dreams_spindles`` experiment with its two baselines; the whole experiment also trains
``spindleconv`` (band envelopes -> bidirectional long convolutions over the excerpt ->
events) and its short-kernel ablation, minutes per fold on a CPU::

    neuroconv decode --config dreams_spindles --data-dir ROOT

**Data.** ``--data-dir`` (the database's folder), else
``$NEUROCONV_DATA/dreams-spindles``, else ``~/neuroconv_data/dreams-spindles``. Without
the data, the example says so and exits (status 0).

Run it with ``python examples/spindle_detection.py [--data-dir DIR] [--out DIR]``; it
writes the store and the run folder (``runs/spindles``: ``metrics.json``, one BIDS-style
``events.tsv`` per excerpt and model under ``events/``, ``plots/``) into ``--out``
(default: a new temporary folder).
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
parser.add_argument("--data-dir", default=None, help="the DREAMS Sleep Spindles folder (default: found as above)")
parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temporary folder)")
args = parser.parse_args()
try:
    data_dir = resolve_data_dir("dreams", data_dir=args.data_dir)
except DataNotFoundError as err:
    print(f"skipped: no DREAMS Sleep Spindles data here.\n{err}")
    sys.exit(0)
out = args.out or Path(tempfile.mkdtemp(prefix="neuroconv_example_"))
out.mkdir(parents=True, exist_ok=True)
t_start = time.perf_counter()

from neuroconv.brain import load_config, run_decode  # noqa: E402

# %%
# The experiment
# --------------
# Every excerpt is resampled to 100 Hz into a store that keeps the spindles of each
# scorer as events (``spindle:expert1``, ``spindle:expert2``, ``spindle:automatic``) and
# the 5-s hypnogram; ``decode.reference`` picks the truth (``union``: every expert).

cfg = load_config("dreams_spindles", job="decode", overrides={
    "data.sources": [{"pipeline": "dreams", "store": str(out / "store"),
                      "args": {"data_dir": str(data_dir), "resample": 100.0}}],
    "data.stores": [],
    # the baselines only: the whole experiment also trains spindleconv and its ablation
    # (up to 400 epochs per fold, minutes each on a CPU); add them back with
    # "decode.models": ["spindleconv", "spindleconv_short", "yasa", "sigma_lr"]
    "decode.models": ["yasa", "sigma_lr"],
    "decode.progress": "none",
    "decode.out": str(out / "runs"),
    "decode.name": "spindles",
})
run = run_decode(cfg)

# %%
# The scores
# ----------
# By-event F1, precision and recall per excerpt, averaged over excerpts (6 excerpts:
# too few for an interval).

metrics = json.loads((run / "metrics.json").read_text())
for name, block in metrics["models"].items():
    print(f"{name:9s} event F1 {block['event_f1']['value']:.3f}  precision {block['event_precision']['value']:.3f}  "
          f"recall {block['event_recall']['value']:.3f}  (F1 at IoU 0.5: {block['event_f1_50']['value']:.3f})")
tsv = sorted((run / "events").rglob("*.tsv"))
print(f"{len(tsv)} events.tsv files under {run / 'events'}")
for path in ("metrics.json", "predictions.csv", "plots/events_yasa.png"):
    print(f"wrote {run / path}")
print(f"done in {time.perf_counter() - t_start:.1f} s")
