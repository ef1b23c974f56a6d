"""Sequence stores to braindecode datasets, and back.

- :func:`to_braindecode` gives a braindecode ``BaseConcatDataset`` of ``RawDataset`` s,
  one per recording: an ``mne.io.RawArray`` in SI units (V, T, T/m) with the store's
  events as annotations, and the manifest row (``id``, ``subject``, ``session``,
  ``run``, ``task``, ``site``, ``dataset``...) as its description. braindecode's own
  windowers (``create_windows_from_events``, ``create_fixed_length_windows``) cut it into
  a windows dataset that keeps the descriptions.
- :func:`from_braindecode` writes a braindecode dataset (raw or windows, whose
  continuous signal it reads) into a store, the descriptions becoming manifest columns
  and the annotations events, written atomically and resumably like every pipeline.
- :func:`import_braindecode` imports braindecode (or one of its modules) where the
  installed torchaudio cannot load (see its docstring). Everything in neuroconv imports
  braindecode through it.

Nothing here imports braindecode or MNE until a function runs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import re
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["to_braindecode", "from_braindecode", "import_braindecode"]

#: store unit -> (MNE channel type, factor from the store's unit to SI)
UNIT_TYPES = {"uV": ("eeg", 1e-6), "fT": ("mag", 1e-15), "fT/cm": ("grad", 1e-13)}
#: MNE channel type -> (factor from SI to the store's unit, unit), as the EEG pipeline stores them
TYPE_UNITS = {"eeg": (1e6, "uV"), "eog": (1e6, "uV"), "ecg": (1e6, "uV"), "emg": (1e6, "uV"),
              "seeg": (1e6, "uV"), "ecog": (1e6, "uV"), "dbs": (1e6, "uV"), "mag": (1e15, "fT"),
              "grad": (1e13, "fT/cm")}
#: manifest columns that become a braindecode description (when the store has them)
DESCRIPTION_COLUMNS = ("id", "subject", "session", "run", "task", "site", "dataset")


# --------------------------------------------------------------------------- import
def _torchaudio_placeholder(reason: str):
    """A finder that answers ``import torchaudio[.x]`` with placeholder modules.

    Every attribute of a placeholder module is a placeholder class (a ``torch.nn.Module``
    subclass, so module-level subclassing works) whose construction or call raises
    ImportError with ``reason``; attributes of a placeholder class are placeholders too.
    """
    import torch

    def message(name: str) -> str:
        return (f"{name} needs torchaudio, which cannot be loaded here ({reason}). PyPI's torchaudio is a CUDA "
                "build that does not load beside torch's CPU build. braindecode imports it, but its EEGNet, "
                "ShallowFBCSPNet and datasets never call it. To use this part of braindecode, install the "
                "torch and torchaudio builds made for each other (e.g. both from the PyTorch index for your "
                "platform).")

    class Missing(type):
        def __getattr__(cls, attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return make(f"{cls.__qualname__}.{attr}")

    def make(name: str):
        def __init__(self, *args, **kwargs):
            raise ImportError(message(name))

        return Missing(name.rsplit(".", 1)[-1], (torch.nn.Module,), {"__init__": __init__, "__qualname__": name})

    class Module(types.ModuleType):
        def __getattr__(self, attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            sub = sys.modules.get(f"{self.__name__}.{attr}")
            return sub if sub is not None else make(f"{self.__name__}.{attr}")

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path=None, target=None):
            if fullname == "torchaudio" or fullname.startswith("torchaudio."):
                return importlib.util.spec_from_loader(fullname, self, is_package=True)
            return None

        def create_module(self, spec):
            mod = Module(spec.name)
            mod.__path__ = []
            return mod

        def exec_module(self, module):
            pass

    return Finder()


def import_braindecode(module: str = "braindecode"):
    """``importlib.import_module(module)`` for braindecode and its modules, where the
    installed torchaudio cannot load.

    braindecode 1.x imports torchaudio when it is imported, yet its EEGNet,
    ShallowFBCSPNet, datasets and windowers never use it; and PyPI's torchaudio wheels
    are CUDA builds that fail to load beside torch's CPU build (``libc10_cuda.so``
    missing). When ``import torchaudio`` fails, braindecode is imported with placeholder
    torchaudio modules in its place: the parts of braindecode that need torchaudio (its
    FIR/IIR filter module, ``EEGSimpleConv``'s resampling, spectrogram models) raise an
    ImportError that says why when they are built, and everything else works. The
    placeholders are removed from ``sys.modules`` afterwards, so other code that imports
    torchaudio still sees the real error. Where torchaudio loads, this is a plain import.

    Raises ImportError with the install command when braindecode is not installed.
    """
    if not (module == "braindecode" or module.startswith("braindecode.")):
        raise ValueError(f"`module` must be braindecode or one of its modules; got {module!r}.")
    if module in sys.modules:
        return sys.modules[module]
    if importlib.util.find_spec("braindecode") is None:
        raise ImportError("braindecode is not installed: pip install 'neuroconv[baselines]' (or "
                          "pip install 'braindecode>=1.3').")
    reason = None
    if "torchaudio" not in sys.modules:
        try:
            import torchaudio  # noqa: F401
        except Exception as err:  # noqa: BLE001 - OSError for the CUDA wheel, ImportError when absent
            reason = f"{type(err).__name__}: {err}"
            for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
                del sys.modules[name]  # what the failed import left half-done
    if reason is None:
        return importlib.import_module(module)
    finder = _torchaudio_placeholder(reason)
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(module)
    finally:
        sys.meta_path.remove(finder)
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]


# --------------------------------------------------------------------------- store -> braindecode
def _description(row: pd.Series) -> dict:
    out = {}
    for col in DESCRIPTION_COLUMNS:
        if col in row.index:
            v = row[col]
            out[col] = None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
    return out


def to_braindecode(store, ids=None, query: str = ""):
    """A braindecode ``BaseConcatDataset`` of one ``RawDataset`` per recording of ``store``.

    ``store``: a :class:`~neuroconv.data.SequenceStore` or its path. ``ids``: the
    recordings to convert (default: all, or those the pandas ``query`` on the manifest
    selects, e.g. ``"subject == '1'"``).

    Each recording becomes an ``mne.io.RawArray`` of shape ``(n_channels, n_times)`` in
    SI units (a channel stored in µV becomes an ``eeg`` channel in V; fT a ``mag`` channel
    in T; fT/cm a ``grad`` channel in T/m; any other unit a ``misc`` channel as stored),
    at the store's sampling rate, with the store's events as annotations (onset and
    duration in seconds, description = label). Its description holds the manifest's
    ``id``, ``subject``, ``session``, ``run``, ``task``, ``site`` and ``dataset``. Window it
    with braindecode's ``create_windows_from_events`` (labels from the annotations) or
    ``create_fixed_length_windows``.
    """
    import mne

    from .store import SequenceStore

    store = store if isinstance(store, SequenceStore) else SequenceStore(store)
    bd = import_braindecode("braindecode.datasets")
    man = store.manifest
    if query:
        try:
            man = man.query(query)
        except Exception as e:  # pandas raises many types for a bad expression
            raise ValueError(f"query={query!r} failed on {store.path}/manifest.csv: {e}. Columns: "
                             f"{sorted(store.manifest.columns)}.") from None
    if ids is not None:
        ids = [str(i) for i in ids]
        missing = sorted(set(ids) - set(man["id"]))
        if missing:
            raise KeyError(f"ids not in store {store.path} (or not selected by the query): {missing[:5]}")
        man = man.set_index("id", drop=False).loc[ids]
    if not len(man):
        raise ValueError(f"no recording of {store.path} selected (ids={ids!r}, query={query!r}).")
    units_by_id = store.meta.get("channel_units_by_id") or {}
    datasets = []
    for _, row in man.iterrows():
        rid = str(row["id"])
        chans = store.channels(rid)
        units = units_by_id.get(rid) or store.meta.get("channel_units") or [None] * len(chans)
        kinds = [UNIT_TYPES.get(u, ("misc", 1.0)) for u in units]
        sfreq = store.sfreq(rid)
        data = np.asarray(store.load(rid), dtype=np.float64).T * np.array([f for _, f in kinds])[:, None]  # (C T)
        info = mne.create_info(list(chans), sfreq, [t for t, _ in kinds])
        raw = mne.io.RawArray(data, info, verbose="error")
        ev = store.events[store.events["id"] == rid]
        if len(ev):
            raw.set_annotations(mne.Annotations(ev["onset"].to_numpy(float) / sfreq,
                                                ev["duration"].to_numpy(float) / sfreq,
                                                ev["label"].astype(str).to_list()))
        datasets.append(bd.RawDataset(raw, _description(row)))
    return bd.BaseConcatDataset(datasets)


# --------------------------------------------------------------------------- braindecode -> store
def _clean(v):
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def _record_id(desc: dict, i: int) -> str:
    if desc.get("id"):
        rid = desc["id"]
    else:
        parts = [f"{k[:3] if k != 'subject' else 'sub'}-{desc[k]}" for k in ("subject", "session", "run")
                 if desc.get(k)]
        rid = "_".join(parts) or f"rec-{i:04d}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", rid).strip("._") or f"rec-{i:04d}"


def _raw_of(ds, i: int):
    raw = getattr(ds, "raw", None)
    if raw is None:
        raise ValueError(f"dataset {i} ({type(ds).__name__}) holds no continuous signal (`raw`): windows cut "
                         "as mne.Epochs (use_mne_epochs=True) cannot be written back; window with "
                         "use_mne_epochs=False (braindecode's default), or pass the RawDataset.")
    return raw


def from_braindecode(dataset, out, *, dataset_name: str | None = None, overwrite: bool = False):
    """Write a braindecode dataset into a sequence store at ``out``; returns the
    :class:`~neuroconv.data.SequenceStore`.

    ``dataset``: a ``BaseConcatDataset`` (or one dataset) of ``RawDataset`` or windows
    datasets that keep the continuous signal (``EEGWindowsDataset``, what braindecode's
    windowers make by default). Each dataset becomes one recording: its ``raw`` in the
    EEG pipeline's units (EEG, EOG, ECG, EMG in µV; magnetometers in fT; gradiometers in
    fT/cm; other channels as they are), its annotations as events (onset and duration in
    samples, label = description; ``BAD``/``EDGE`` annotations are skipped), and its
    description's ``subject``, ``session``, ``run``, ``task``, ``site`` and ``dataset`` as
    manifest columns (``dataset_name`` fills ``dataset`` where the description has none;
    other description fields are kept in the manifest too). The id is the description's
    ``id``, else ``sub-S[_ses-X][_run-R]``. Recordings already written (same parameters)
    are skipped, so an interrupted conversion resumes.
    """
    from .store import SequenceStore, StoreWriter

    bd = import_braindecode("braindecode.datasets")
    datasets = list(dataset.datasets) if isinstance(dataset, bd.BaseConcatDataset) else [dataset]
    if not datasets:
        raise ValueError("`dataset` holds no recording.")
    writer = StoreWriter(out, "braindecode", [{"name": "from_braindecode", "params": {
        "units": {"eeg": "uV", "mag": "fT", "grad": "fT/cm"}, "dtype": "float32",
        "dataset_name": dataset_name}}], overwrite=overwrite)
    seen = set()
    for i, ds in enumerate(datasets):
        described = getattr(ds, "description", None)
        desc = {} if described is None else {str(k): _clean(v) for k, v in dict(described).items()}
        rid = _record_id(desc, i)
        if rid in seen:
            raise ValueError(f"two datasets share the recording id {rid!r}; give each description a unique "
                             "`id`, or subject/session/run values that tell them apart.")
        seen.add(rid)
        if writer.is_done(rid, []):
            continue
        raw = _raw_of(ds, i)
        types_ = raw.get_channel_types()
        scale = np.array([TYPE_UNITS.get(t, (1.0, "SI"))[0] for t in types_])
        units = [TYPE_UNITS.get(t, (1.0, "SI"))[1] for t in types_]
        data = (raw.get_data() * scale[:, None]).T  # (T C)
        sfreq = float(raw.info["sfreq"])
        ann = raw.annotations
        t0 = raw.first_time if ann.orig_time is not None else 0.0
        keep = [not str(d).upper().startswith(("BAD", "EDGE")) for d in ann.description]
        events = pd.DataFrame({
            "onset": np.round((ann.onset[keep] - t0) * sfreq).astype(int),
            "duration": np.round(ann.duration[keep] * sfreq).astype(int),
            "label": [str(d) for d, k in zip(ann.description, keep) if k]})
        modality = "meg" if {"mag", "grad"} & set(types_) and "eeg" not in types_ else "eeg"
        row = {k: v for k, v in desc.items() if k != "id"}
        row.update(modality=modality, sfreq=sfreq)
        if dataset_name and not row.get("dataset"):
            row["dataset"] = dataset_name
        writer.write(rid, data, row, list(raw.ch_names), [], events, channel_units=units,
                     details={"braindecode_class": type(ds).__name__})
    writer.finalize({"units": {"eeg": "uV", "mag": "fT", "grad": "fT/cm"}})
    return SequenceStore(Path(out))
