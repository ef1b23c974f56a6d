"""Turn ``data.sources`` entries into sequence stores by running the pipelines.

Each entry is ``{pipeline, args, store}``: ``pipeline`` names a data source of the
registry :data:`neuroconv.pipelines.sources.SOURCES` (listed below; ``_`` may stand for
``-``, as in ``eeg_notebooks``) and ``args`` are the keyword arguments of its reader.
A source with a data folder (``abide``, ``eegbci``, ``eeg-notebooks``...) takes it from
``args.data_dir`` when given; otherwise it is found under the experiment's data root
(``data.data_dir``), else by the source's own rules
(:func:`neuroconv.pipelines.sources.resolve_data_dir`: ``NEUROCONV_DATA``, then the
library's default place).

Pipelines are resumable: a rerun skips the recordings already in the store, so preparing
sources at the start of every training run costs little after the first. Simulated
sources write their raw files once (to ``args.raw_dir``, default ``<store>_raw``) and
reuse them while the simulation parameters are unchanged.
"""

from __future__ import annotations

import warnings

from neuroconv.pipelines import sources as registry

from .config import SourceConfig

__all__ = ["prepare_sources", "pipeline_names"]

if __doc__:  # None under python -OO
    __doc__ += "\nThe pipelines:\n\n" + registry.describe() + "\n"


def __getattr__(name):
    if name == "PIPELINES":   # the names, as a tuple (read from the registry each time)
        return tuple(pipeline_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pipeline_names() -> list[str]:
    """The names that ``data.sources[i].pipeline`` accepts (the registry's rows)."""
    return registry.source_names()


def _run_one(i: int, src: SourceConfig, progress: bool, data_dir):
    """Run the reader of ``src`` into its store; returns the Summary."""
    from neuroconv.pipelines.runner import RunWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunWarning)      # logged from the summary
            return registry.run_source(src.pipeline, src.store, root=data_dir or None,
                                       progress=progress, **dict(src.args))
    except registry.MissingArgumentError as e:
        raise ValueError(f"data.sources[{i}] ({src.pipeline}) needs args.{e.argument}.") from None


def prepare_sources(sources: list, log=print, progress: bool = False,
                    data_dir: str | None = None) -> list[str]:
    """Run the pipeline of every source (resumable); return the store paths.

    ``data_dir``: the root folder of the data sets (``data.data_dir``); a source without
    ``args.data_dir`` finds its folder there (see the module docstring).
    """
    stores = []
    for i, raw in enumerate(sources):
        if isinstance(raw, dict):
            unknown = set(raw) - {"pipeline", "args", "store"}
            if unknown:
                raise ValueError(f"data.sources[{i}]: unknown key(s) {sorted(unknown)}; known: pipeline, args, store.")
            raw = SourceConfig(**raw)
        src = raw
        try:
            registry.get_source(src.pipeline)
        except ValueError:
            raise ValueError(f"data.sources[{i}].pipeline: unknown {src.pipeline!r}; choose from "
                             f"{', '.join(pipeline_names())}.") from None
        if not src.store:
            raise ValueError(f"data.sources[{i}].store is empty: say where the sequence store goes.")
        summary = _run_one(i, src, progress, data_dir)
        log(f"source {i} ({src.pipeline}) -> {src.store}: {len(summary.done)} done, "
            f"{len(summary.skipped)} already done, {len(summary.failed)} failed")
        for o in summary.failed:
            log(f"  failed {o.id}: {o.reason}")
        for w in summary.run_warnings:
            log(f"  warning: {w}")
        if not summary.done and not summary.skipped:
            raise ValueError(f"data.sources[{i}] ({src.pipeline}): every recording failed; nothing to train on.")
        stores.append(src.store)
    return stores
