"""Inference time of the sleep models on whole recordings, beside the field's tools.

``python -m neuroconv.brain.bench_sleep --data-dir DIR [--out FILE.json]`` builds the two
sleep configs' stores under ``DIR`` (``dreams_spindles``, ``sleep_edf``; the stores go to
``neuroconv_data/`` of the current folder, as ``neuroconv decode`` puts them), fits each
model once on the first fold's training part (a short training budget: inference time
does not depend on the weights), then times ``predict`` on one whole test recording in
one pass, median of ``--repeats`` runs, on one CPU thread:

- spindles: ``spindleconv`` (band-envelope front end, then the network, then events)
  and its ablation, against ``yasa.spindles_detect`` on the same excerpt's signal
  (YASA's own call with its defaults; the ``yasa`` decoder makes the same call with
  thresholds chosen on the training excerpts);
- stages: ``sleepconv``, its ablation and the GRU over one whole night, against the
  per-epoch baselines with HMM smoothing.

It prints one line per model (seconds, the recording's length) and writes them as JSON
with the machine (``--out``). Times on a shared machine are upper bounds; compare the
ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

#: the models timed per config, in order
MODELS = {"dreams_spindles": ("spindleconv", "spindleconv_short"),
          "sleep_edf": ("sleepconv", "sleepconv_short", "stage_gru", "stage_lr_hmm", "stage_lgbm_hmm")}


def _time(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_config(name: str, data_dir: str, repeats: int = 5, log=print) -> list[dict]:
    """Time the models of :data:`MODELS` ``[name]`` on the first fold's first test recording."""
    from .config import load_config
    from .design import prepare

    cfg = load_config(name, {"data.data_dir": data_dir, "decode.models": list(MODELS[name]),
                             "decode.max_steps": 4, "decode.progress": "none"}, job="decode")
    design = prepare(cfg, log=lambda *_: None)
    fold = design.folds[0]
    part, rec = design.part(fold, log=lambda *_: None), int(fold.test[0])
    n = int(design.data.stops[rec] - design.data.starts[rec])
    sfreq = float(next(iter(design.data.windows.subset([rec]).sfreqs())))
    rows = []
    if name == "dreams_spindles":
        import yasa

        from .zoo.sleep import SpindleDecoder

        x, sf = SpindleDecoder._signal(design.data, rec)
        sec = _time(lambda: yasa.spindles_detect(x, sf, verbose=False), repeats)
        rows.append({"config": name, "model": "yasa.spindles_detect (defaults)", "seconds": sec,
                     "steps": len(x), "sfreq": sf})
    for model in MODELS[name]:
        decoder = design.make(model).fit(part)

        def run():
            decoder.__dict__.pop("_cache", None)  # the front end's features too, every time
            return decoder.predict(design.data, np.array([rec]))

        sec = _time(run, repeats)
        rows.append({"config": name, "model": model, "seconds": sec, "steps": n, "sfreq": sfreq})
    for r in rows:
        log(f"{r['config']:<16} {r['model']:<34} {r['seconds']:8.3f} s  ({r['steps']} steps at {r['sfreq']:g} Hz)")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m neuroconv.brain.bench_sleep", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="root folder holding dreams-spindles/ and sleep-edf/")
    p.add_argument("--configs", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    p.add_argument("--out", help="write the rows as JSON here")
    a = p.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(a.threads)
    with threadpool_limits(limits=a.threads):
        rows = [r for c in a.configs for r in bench_config(c, a.data_dir, a.repeats)]
    if a.out:
        info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or
                platform.machine(), "cpus": os.cpu_count(), "threads": a.threads, "torch": torch.__version__}
        Path(a.out).write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
