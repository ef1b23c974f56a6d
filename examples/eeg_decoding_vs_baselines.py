"""
EEG decoding against the field's baselines
==========================================

Motor-imagery EEG (left vs right hand), simulated, goes through the same EEG pipeline as
real recordings into a sequence store; then ``neuroconv decode`` runs our models and the
field's baselines on the same folds and inputs, and compares them over independent
units (the subjects).

- The recordings: :func:`neuroconv.pipelines.simulate.simulate_eeg` writes FIF files
  with a 1/f background and a mu/beta desynchronisation over the motor cortex opposite
  the imagined hand.
- The store: :func:`neuroconv.pipelines.preprocess_eeg` band-passes, re-references and
  resamples them (the steps of ``neuroconv preprocess eeg``).
- The decode run: :func:`neuroconv.brain.run_decode` with the built-in ``default``
  config, pointed at this store, with a small training budget. ``covconv`` starts
  exactly at the ``ts_lr`` baseline (tangent space + logistic regression) and keeps a
  learned change only when the inner split prefers it; ``csp_lda`` is MNE's CSP with
  LDA; ``scratch`` is the long-convolution sequence model trained from scratch.

The same run on the command line::

    neuroconv preprocess simulate-eeg --simulate n_subjects=8,duration=36,sfreq=100 --out stores/sim
    neuroconv decode --config default --data.stores stores/sim --decode.query "" \\
        --decode.models covconv scratch csp_lda ts_lr --decode.n_splits 4

Run it with ``python examples/eeg_decoding_vs_baselines.py [--out DIR]``. It writes the
simulated recordings, the store and a run folder (``runs/<name>/metrics.json``,
``predictions.csv``, plots) into ``DIR`` (default: a new temporary folder) and prints
the scores.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from neuroconv.brain import load_config, run_decode
from neuroconv.pipelines import preprocess_eeg
from neuroconv.pipelines.simulate import simulate_eeg

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temporary folder)")
args = parser.parse_args()
out = args.out or Path(tempfile.mkdtemp(prefix="neuroconv_example_"))
out.mkdir(parents=True, exist_ok=True)
t_start = time.perf_counter()

# %%
# Simulated recordings, then the EEG pipeline into a store
# --------------------------------------------------------
# Eight subjects, 36 s each at 100 Hz (five trials of 4 s, left or right, between rests
# of 2 s), 19 channels of the 10-20 system. The simulation is easy on its own, so extra
# sensor noise (20 µV) is added to each file with MNE before preprocessing. The store
# keeps one float32 array per recording (µV), the events, and a record of every step
# (``meta.json``).

import mne  # noqa: E402
import numpy as np  # noqa: E402

files = simulate_eeg(out / "raw", n_subjects=8, n_runs=1, duration=36.0, sfreq=100.0, seed=0)
rng = np.random.default_rng(0)
for f in files:
    raw = mne.io.read_raw_fif(f, preload=True, verbose="error")
    raw.apply_function(lambda x: x + rng.normal(0.0, 20e-6, x.shape), channel_wise=False)
    raw.save(f, overwrite=True, verbose="error")
summary = preprocess_eeg(files, out / "store", l_freq=1.0, h_freq=40.0, progress=False)
if not summary.ok:
    raise SystemExit(f"preprocessing failed: {summary}")
print(f"store: {out / 'store'} ({len(summary.done)} recordings)")

# %%
# The decode run
# --------------
# The ``default`` config decodes left vs right from 0.5 to 3.5 s after each cue. Folds
# keep subjects apart; each fold's inner split (by subject) makes every choice: early
# stopping and every regulariser, from one grid, by one criterion. Keys are the dotted
# flags of the command line.

cfg = load_config("default", job="decode", overrides={
    "data.stores": [str(out / "store")],
    "data.sources": [],
    "decode.query": "",  # every recording of this store (the default config picks subjects 09-12)
    "decode.models": ["covconv", "scratch", "csp_lda", "ts_lr"],
    "decode.n_splits": 4,
    "decode.max_epochs": 3,
    "decode.patience": 2,
    "model.d_model": 32,  # a smaller sequence model than the config's, to run in seconds
    "model.n_layers": 2,
    "decode.n_boot": 500,
    "decode.n_perm": 500,
    "decode.progress": "none",
    "decode.out": str(out / "runs"),
    "decode.name": "sim_eeg",
})
run = run_decode(cfg)

# %%
# The scores, over subjects
# -------------------------
# ``metrics.json`` holds, for every model, each metric's headline with its 95% interval
# over units (here the subjects), and every paired comparison on the same predictions.
# With 8 subjects the intervals are wide: that is what 8 people can tell.

metrics = json.loads((run / "metrics.json").read_text())
print(f"\nrun folder: {run}")
for name, block in metrics["models"].items():
    auc = block["roc_auc"]
    ci = auc.get("ci95") or [float("nan"), float("nan")]
    print(f"{name:10s} ROC AUC {auc['value']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] ({auc['headline']})")
for pair in metrics["paired"]:
    d = pair["roc_auc"]
    print(f"{pair['first']} - {pair['second']}: {d['difference']:+.3f}, sign-flip p = {d['p_value']:.2g}")

for name in ("metrics.json", "predictions.csv", "config.yaml"):
    print(f"wrote {run / name}")
print(f"done in {time.perf_counter() - t_start:.1f} s")
