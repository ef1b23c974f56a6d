"""Preprocessing pipelines: recordings -> sequence stores (``neuroconv.data``).

Entry points (imported lazily, so ``import neuroconv.pipelines`` stays light): one reader
per data source of the registry :mod:`neuroconv.pipelines.sources` (listed below), and::

    run_source(name, out, root=None, **kwargs)  # a source by name, its data folder found
    resolve_data_dir(name, data_dir=None, root=None)   # where a source's data are
    read_table(path, **table_options)          # one CSV/TSV recording -> mne RawArray
    with use_dask("tcp://host:8786"): preprocess_...(...)   # the recordings on a Dask cluster
    neuroconv.pipelines.simulate.simulate_eeg / simulate_fmri

Each ``preprocess_*`` returns a :class:`~neuroconv.pipelines.runner.Summary` with
``done``, ``skipped`` and ``failed`` (with reasons). Pipelines write stores and never
train.
"""

from __future__ import annotations

from neuroconv.extras import require_brain  # noqa: F401 - an ImportError that names the missing extra

import importlib

from . import sources as _sources

_LAZY = {
    "read_table": "tabular",
    "Summary": "runner",
    "use_dask": "runner",
    "InputError": "runner",
    "MissingTRError": "runner",
    "RunWarning": "runner",
    "resolve_atlas": "atlas",
    "MapsExtractor": "atlas",
    "LabelsExtractor": "atlas",
}
_REGISTRY = ("SOURCES", "run_source", "resolve_data_dir", "get_source")


def _readers() -> dict[str, str]:
    """Reader function -> module, for every registered source named by a string."""
    out = {}
    for row in _sources.SOURCES.values():
        if isinstance(row.reader, str) and row.reader.startswith(f"{__name__}."):
            module, _, func = row.reader.partition(":")
            out[func] = module
    return out


if __doc__:  # None under python -OO
    __doc__ += "\nThe readers, one per data source:\n\n" + _sources.describe("    ") + "\n"

__all__ = sorted(_readers()) + list(_LAZY) + list(_REGISTRY) + ["simulate", "sources"]


def __getattr__(name):
    readers = _readers()
    if name in readers:
        return getattr(importlib.import_module(readers[name]), name)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _REGISTRY:
        return getattr(_sources, name)
    if name in ("simulate", "sources"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
