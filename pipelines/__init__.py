"""Preprocessing pipelines: recordings -> sequence stores (``neuroconv.data``).

Entry points (imported lazily, so ``import neuroconv.pipelines`` stays light)::

    preprocess_eeg(files, out, **steps_and_table_options)   # EDF/FIF/BIDS/CSV/TSV...
    preprocess_fmri(files, atlas, out, **params)
    preprocess_abide(data_dir, out, **params)
    preprocess_eegbci(data_dir, out, subjects, runs, **steps)
    preprocess_eeg_notebooks(data_dir, out, experiment="visual/P300", subjects=None, **options)
    preprocess_moabb(dataset, out, subjects=None, **steps)   # a MOABB data set (moabb extra)
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

_LAZY = {
    "preprocess_eeg": "eeg",
    "preprocess_eegbci": "eeg",
    "preprocess_eeg_notebooks": "eeg_notebooks",
    "preprocess_moabb": "moabb",
    "read_table": "tabular",
    "preprocess_fmri": "fmri",
    "preprocess_abide": "abide",
    "Summary": "runner",
    "use_dask": "runner",
    "InputError": "runner",
    "MissingTRError": "runner",
    "resolve_atlas": "atlas",
    "MapsExtractor": "atlas",
    "LabelsExtractor": "atlas",
}

__all__ = list(_LAZY) + ["simulate"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name == "simulate":
        return importlib.import_module(".simulate", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
