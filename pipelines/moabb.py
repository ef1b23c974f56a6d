"""MOABB data sets -> sequence store, through MOABB's own loader.

:func:`preprocess_moabb` reads each subject with ``dataset.get_data(subjects=[s])``: MOABB
finds the files in the user's MNE data folder (``MNE_DATASETS_<CODE>_PATH`` or
``~/mne_data``), and downloads them there when they are missing and the machine is
online. Each run's ``mne.io.Raw`` (events as annotations, set by MOABB from the stim
channel with the data set's event names) then goes through the EEG pipeline's steps
(:func:`pipelines.eeg.process_raw`: picks, montage, bads, reference, filters, resample,
events, units) and into the store like any recording.

One recording per MOABB run, with id ``sub-<subject>_ses-<session>_run-<run>`` and
manifest columns ``subject``, ``session``, ``run`` (MOABB's keys), ``task`` (the data
set's paradigm: imagery, p300, ssvep...) and ``dataset`` (MOABB's code). Event labels
are MOABB's event names (``left_hand``, ``Target``...). ``meta.json`` records the data
set's class, code, DOI, events, interval and the MOABB version under ``"moabb"``.

A subject that MOABB cannot load (a failed download, a corrupt file) is reported in the
summary and the others go on. Done runs are skipped on a rerun (the subject is read
again to list its runs); ``shard="i/n"`` takes every n-th subject.
"""

from __future__ import annotations

import re

from .eeg import _steps_record, _validate_steps, process_raw
from .runner import InputError, Item, Outcome, Summary, parse_shard, run_items

__all__ = ["preprocess_moabb", "resolve_dataset"]


def resolve_dataset(dataset):
    """A MOABB dataset instance from an instance or a class name of ``moabb.datasets``
    (``"BNCI2014_001"``, ``"FakeDataset"``...)."""
    try:
        import moabb.datasets as md
        from moabb.datasets.base import BaseDataset
    except ImportError as e:
        raise ImportError("MOABB is not installed: pip install 'neuroconv[moabb]' (or pip install moabb).") from e
    if isinstance(dataset, BaseDataset):
        return dataset
    if not isinstance(dataset, str):
        raise ValueError(f"dataset must be a MOABB dataset or the name of one (e.g. 'BNCI2014_001'); got "
                         f"{type(dataset).__name__}.")
    cls = getattr(md, dataset, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseDataset)):
        from moabb.datasets.utils import dataset_list

        names = sorted(d.__name__ for d in dataset_list)
        near = [n for n in names if n.lower().startswith(dataset.lower()[:4])][:8]
        raise ValueError(f"dataset must be the name of a MOABB dataset class (moabb.datasets); got {dataset!r}. "
                         + (f"Close names: {', '.join(near)}. " if near else "")
                         + f"MOABB {getattr(md, '__version__', '')} has {len(names)}, e.g. "
                         f"{', '.join(names[:6])}... (moabb.datasets.utils.dataset_list).")
    return cls()


def _subjects(dataset, subjects) -> list:
    from .eeg import _parse_ints

    valid = list(dataset.subject_list)
    if subjects is None:
        return valid
    ints = all(isinstance(v, int) for v in valid)
    if ints:
        chosen = _parse_ints(subjects, "subjects", min(valid), max(valid))
    else:
        chosen = [subjects] if isinstance(subjects, str) and "," not in subjects else subjects
        chosen = [s.strip() for s in chosen.split(",")] if isinstance(chosen, str) else list(chosen)
    unknown = [s for s in chosen if s not in valid]
    if unknown:
        raise ValueError(f"subjects {unknown} are not subjects of MOABB dataset {dataset.code}; valid: "
                         f"{valid[:20]}{' ...' if len(valid) > 20 else ''}.")
    return chosen


def _safe(v) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", str(v)) or "0"


def _process_run(label: str, raw, steps: dict, row: dict, files: list[str],
                 reference_is_default: bool = False):
    """One MOABB run through the EEG steps; its sources are the files MOABB read it from
    (none for data MOABB builds in memory)."""
    rec = process_raw(label, steps, row=row, raw=raw, reference_is_default=reference_is_default)
    rec.sources = files
    return rec


def preprocess_moabb(dataset, out, subjects=None, *, jobs: int = 1, shard=None, overwrite: bool = False,
                     progress: bool = True, **steps) -> Summary:
    """A MOABB data set -> a sequence store at ``out`` (EEG in µV); see the module docstring.

    ``dataset``: a MOABB dataset instance or the name of a class of ``moabb.datasets``.
    ``subjects``: MOABB subject numbers (a list, ``"1-3"``, ``"1,4"``; default all).
    ``**steps``: the EEG steps of :mod:`pipelines.eeg` (``picks``, ``montage``,
    ``reference``, ``l_freq``, ``h_freq``, ``resample``, ``event_map``...). Returns a
    :class:`pipelines.runner.Summary`; runs from several subjects share one store.
    """
    import moabb

    from neuroconv.data.store import StoreWriter

    ds = resolve_dataset(dataset)
    chosen = _subjects(ds, subjects)
    default_reference = "reference" not in steps
    steps = _validate_steps(steps)
    i, n = parse_shard(shard)
    record = [{"name": "moabb", "params": {"dataset": type(ds).__name__, "code": ds.code,
                                           "loader": "moabb dataset.get_data (raw, events as annotations)"}},
              *_steps_record(steps)[1:]]
    writer = StoreWriter(out, "moabb", record, overwrite=overwrite)
    meta = {"units": {"eeg": "uV", "mag": "fT", "grad": "fT/cm"}, "dataset": ds.code,
            "moabb": {"dataset": type(ds).__name__, "code": ds.code, "version": moabb.__version__,
                      "paradigm": ds.paradigm, "doi": ds.doi, "interval": list(ds.interval),
                      "events": {str(k): v for k, v in ds.event_id.items()}}}
    total = Summary(store=writer.path, shard=(i, n))
    for subject in chosen[i::n]:
        try:
            data = ds.get_data(subjects=[subject])[subject]
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # noqa: BLE001 - a bad subject is reported, the others go on
            total.failed.append(Outcome(f"sub-{_safe(subject)}", f"moabb:{ds.code}", "failed", str(InputError(
                f"MOABB {type(ds).__name__} subject {subject}", f"could not be loaded ({type(e).__name__}: {e}).",
                "Check the files under the MNE data folder (or the network, for a first download); rerun "
                "to retry this subject."))))
            continue
        items = []
        for session, runs in data.items():
            for run, raw in runs.items():
                rid = f"sub-{_safe(subject)}_ses-{_safe(session)}_run-{_safe(run)}"
                label = f"moabb:{ds.code}/{rid}"
                files = [str(f) for f in (getattr(raw, "filenames", None) or []) if f]
                row = {"subject": str(subject), "session": str(session), "run": str(run), "task": ds.paradigm,
                       "dataset": ds.code, "moabb_dataset": type(ds).__name__}
                items.append(Item(rid, files, _process_run, dict(label=label, raw=raw, steps=steps, row=row,
                                                                 files=files,
                                                                 reference_is_default=default_reference)))
        del data
        part = run_items(items, writer, jobs=jobs, progress=progress, description=f"moabb subject {subject}",
                         extra_meta=meta)
        total.done += part.done
        total.skipped += part.skipped
        total.failed += part.failed
    writer.finalize(meta)
    total.done.sort(key=lambda o: o.id)
    total.failed.sort(key=lambda o: o.id)
    return total
