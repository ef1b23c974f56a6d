"""Turn ``data.sources`` entries into sequence stores by running the pipelines.

Each entry is ``{pipeline, args, store}``. Pipelines are resumable: a rerun skips the
recordings already in the store, so preparing sources at the start of every training run
costs little after the first. Simulated sources write their raw files once (to
``args.raw_dir``, default ``<store>_raw``) and reuse them while the simulation
parameters are unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from neuroconv.io import atomic_write_json

from .config import SourceConfig

__all__ = ["prepare_sources", "PIPELINES"]

PIPELINES = ("simulate_eeg", "simulate_fmri", "eeg", "fmri", "abide", "eegbci", "eeg_notebooks")


def _simulated(kind: str, raw_dir: Path, params: dict):
    """Run ``simulate_<kind>`` into ``raw_dir`` unless it already holds this simulation."""
    from neuroconv.pipelines import simulate

    marker = raw_dir / "simulation.json"
    record = {"kind": kind, "params": params}
    fn = getattr(simulate, f"simulate_{kind}")
    if marker.is_file() and json.loads(marker.read_text()).get("params") == params:
        cached = json.loads(marker.read_text())["result"]
        return cached
    result = fn(raw_dir, **params)
    if kind == "eeg":
        cached = {"files": [str(p) for p in result]}
    else:
        cached = {"files": [str(p) for p in result.bold], "atlas": str(result.atlas),
                  "atlas_labels": str(result.atlas_labels)}
    raw_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, {**record, "result": cached})
    return cached


def _run_one(src: SourceConfig, progress: bool):
    import neuroconv.pipelines as P

    args = dict(src.args)
    store = src.store
    common = dict(progress=progress)
    if src.pipeline == "simulate_eeg":
        raw = Path(args.pop("raw_dir", f"{store}_raw"))
        sim = _simulated("eeg", raw, dict(args.pop("simulate", {})))
        return P.preprocess_eeg(sim["files"], store, **common, **args)
    if src.pipeline == "simulate_fmri":
        raw = Path(args.pop("raw_dir", f"{store}_raw"))
        sim = _simulated("fmri", raw, dict(args.pop("simulate", {})))
        return P.preprocess_fmri(sim["files"], sim["atlas"], store, atlas_labels=sim["atlas_labels"],
                                 **common, **args)
    if src.pipeline == "eeg":
        return P.preprocess_eeg(args.pop("files"), store, **common, **args)
    if src.pipeline == "fmri":
        return P.preprocess_fmri(args.pop("files"), args.pop("atlas", None), store, **common, **args)
    if src.pipeline == "abide":
        return P.preprocess_abide(args.pop("data_dir"), store, **common, **args)
    if src.pipeline == "eegbci":
        return P.preprocess_eegbci(args.pop("data_dir"), store, **common, **args)
    if src.pipeline == "eeg_notebooks":
        return P.preprocess_eeg_notebooks(args.pop("data_dir"), store, **common, **args)
    raise ValueError(f"data.sources: unknown pipeline {src.pipeline!r}; choose from {PIPELINES}.")


def prepare_sources(sources: list, log=print, progress: bool = False) -> list[str]:
    """Run the pipeline of every source (resumable); return the store paths."""
    stores = []
    for i, raw in enumerate(sources):
        if isinstance(raw, dict):
            unknown = set(raw) - {"pipeline", "args", "store"}
            if unknown:
                raise ValueError(f"data.sources[{i}]: unknown key(s) {sorted(unknown)}; known: pipeline, args, store.")
            raw = SourceConfig(**raw)
        src = raw
        if src.pipeline not in PIPELINES:
            raise ValueError(f"data.sources[{i}].pipeline: unknown {src.pipeline!r}; choose from {PIPELINES}.")
        if not src.store:
            raise ValueError(f"data.sources[{i}].store is empty: say where the sequence store goes.")
        try:
            summary = _run_one(src, progress)
        except KeyError as e:
            raise ValueError(f"data.sources[{i}] ({src.pipeline}) needs args.{e.args[0]}.") from None
        log(f"source {i} ({src.pipeline}) -> {src.store}: {len(summary.done)} done, "
            f"{len(summary.skipped)} already done, {len(summary.failed)} failed")
        for o in summary.failed:
            log(f"  failed {o.id}: {o.reason}")
        if not summary.done and not summary.skipped:
            raise ValueError(f"data.sources[{i}] ({src.pipeline}): every recording failed; nothing to train on.")
        stores.append(src.store)
    return stores
