"""
Preprocessing on a Dask cluster
===============================

``neuroconv preprocess`` runs each recording as one task. With ``--dask local`` (or,
in Python, ``with neuroconv.pipelines.use_dask("local"):``) the tasks go to the worker
processes of a ``dask.distributed.LocalCluster``; with ``--dask tcp://HOST:PORT`` to the
workers of a running scheduler, for example a ``dask_jobqueue.SLURMCluster`` on a
cluster (see docs/guide/preprocess.md, "Dask").

This example simulates six EEG recordings and one broken file, then shows that

1. the recordings run on two Dask workers, the broken file is reported with its reason
   and the others go on (the summary lists it; the command would exit 1);
2. the store is the one that a run without Dask writes, byte for byte;
3. a second run resumes: what is done is skipped.

On the command line, the first step is::

    neuroconv preprocess eeg raw/*.fif --l-freq 1 --h-freq 40 --out store --dask local --jobs 2

Run it with ``python examples/dask_preprocessing.py [--out DIR]``; it writes the
simulated files, two stores (``store_dask``, ``store_serial``) and ``summary.json``
into ``DIR`` (default: a new temporary folder). It needs ``pip install
'neuroconv[dask]'``.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from neuroconv.data import SequenceStore
from neuroconv.pipelines import preprocess_eeg, use_dask
from neuroconv.pipelines.simulate import simulate_eeg

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temporary folder)")
args = parser.parse_args()
out = args.out or Path(tempfile.mkdtemp(prefix="neuroconv_example_"))
out.mkdir(parents=True, exist_ok=True)
# Dask's scratch space for this run (default: the system's temporary folder)
os.environ.setdefault("DASK_TEMPORARY_DIRECTORY", str(out / "dask-scratch"))
t_start = time.perf_counter()


def main():
    # %%
    # Six simulated recordings and one broken file
    # --------------------------------------------
    files = simulate_eeg(out / "raw", n_subjects=6, duration=30.0, sfreq=100.0, seed=0)
    broken = out / "raw" / "sub-99_task-motor_run-1_eeg.edf"
    broken.write_bytes(b"not an EDF file")
    inputs = [*files, broken]
    steps = dict(l_freq=1.0, h_freq=40.0, progress=False)

    # %%
    # 1. On two Dask workers
    # ----------------------
    # Each worker is a process with one thread. The workers read the inputs and write into
    # the store themselves: on a cluster both must lie on a filesystem that every node
    # sees at the same path.
    with use_dask("local", n_workers=2):
        summary = preprocess_eeg(inputs, out / "store_dask", **steps)
    print(summary)  # 6 done, 1 failed, with the file and the reason

    # %%
    # 2. The same store without Dask
    # ------------------------------
    serial = preprocess_eeg(files, out / "store_serial", **steps)
    a, b = SequenceStore(out / "store_dask"), SequenceStore(out / "store_serial")
    same = all(a.load(i).tobytes() == b.load(i).tobytes() for i in b.ids)
    print(f"{len(b.ids)} recordings; arrays identical with and without Dask: {same}")

    # %%
    # 3. Resuming
    # -----------
    # A recording is done once its ``records/<id>.json`` exists, whichever worker wrote
    # it; a rerun (after a crash, or with more recordings) skips it.
    with use_dask("local", n_workers=2):
        again = preprocess_eeg(files, out / "store_dask", **steps)
    print(f"rerun: {len(again.done)} done, {len(again.skipped)} skipped")

    report = {"dask": summary.to_dict(), "serial": serial.to_dict(), "rerun": again.to_dict(),
              "identical_arrays": same}
    (out / "summary.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out / 'summary.json'}")
    print(f"wrote {out / 'store_dask' / 'manifest.csv'}")
    print(f"done in {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":  # Dask's worker processes import this file: run only in the main one
    main()
