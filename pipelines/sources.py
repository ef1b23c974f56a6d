"""The data sources: one registry that the command line, the experiment configs and the
docs read.

A data source is a reader (a ``preprocess_*`` function: recordings -> sequence store,
returning a :class:`~pipelines.runner.Summary`) together with everything needed to call
it: its name, its help, its command-line options and the shared option groups it takes,
how each option maps onto a keyword argument of the reader, and which argument is its
data folder. :data:`SOURCES` holds one :class:`Source` row per data source, and

- ``neuroconv preprocess NAME`` is built from the row named NAME (one subcommand each);
- an experiment config's ``data.sources[i].pipeline`` names a row (the name with ``_``
  for ``-`` also works: ``eeg_notebooks``) and ``args`` are the reader's keyword
  arguments;
- :func:`run_source` is the one call both go through.

Adding a data source is one edit: a row in :data:`SOURCES` (plus the reader's own
module). The reader is named as ``"module:function"`` and imported only when the source
runs, so building the command line imports no MNE or nilearn.

Command-line options use dashes (``--data-dir``, ``--l-freq``, ``--site-tr``); an option
fills the reader's keyword of the same name with underscores (``--l-freq`` ->
``l_freq``) unless its row says otherwise. Options that are not given are not passed, so
the reader's own defaults apply, on the command line as in a config.

Where a source's data are found (:func:`resolve_data_dir`), first match wins:

1. an explicit data folder: ``--data-dir`` on the command line, ``args.data_dir`` of a
   ``data.sources`` entry, ``data_dir=`` in Python. It is used as given.
2. a root folder that holds every data set, each in its own folder (the layout
   ``ROOT/MNE-eegbci-data/``, ``ROOT/nilearn_data/``, ``ROOT/eeg-notebooks/``...; each
   row names its folder): ``data.data_dir`` of an experiment config or ``root=`` in
   Python (the source's folder must be there), else the ``NEUROCONV_DATA`` environment
   variable (used when the source's folder is there).
3. the place where the field's library keeps the data set: nilearn's data folders for
   ABIDE (``nilearn.datasets.get_data_dirs()``: ``NILEARN_SHARED_DATA``,
   ``NILEARN_DATA``, else ``~/nilearn_data``), MNE's for EEGBCI (as
   ``mne.datasets.eegbci.load_data``: the ``MNE_DATASETS_EEGBCI_PATH`` setting, else
   ``MNE_DATA``, else ``~/mne_data``; then ``MNE-eegbci-data`` under it);
4. for a source without such a library: ``~/neuroconv_data/<folder>`` (:data:`DEFAULT_ROOT`).

When none holds the data, the error names every place looked at and how to point at
the data.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["Option", "Group", "Source", "GROUPS", "SOURCES", "ENV_ROOT", "DEFAULT_ROOT",
           "DataNotFoundError", "MissingArgumentError", "get_source", "source_names", "load_reader",
           "resolve_data_dir", "data_places", "run_source", "describe", "nilearn_places",
           "mne_places", "mne_eegbci_places", "mne_sleep_physionet_places"]

#: environment variable naming a root folder that holds every data set
ENV_ROOT = "NEUROCONV_DATA"
#: the root used for sources whose library keeps no data folder of its own
DEFAULT_ROOT = "~/neuroconv_data"


class DataNotFoundError(FileNotFoundError):
    """No data folder of a source was found; the message lists where it looked."""


# ------------------------------------------------------------------------- rows
_AUTO = "<from the flag>"


@dataclass(frozen=True)
class Option:
    """One command-line option of a source, and the reader keyword it fills.

    Args:
        flags: Option strings (``("--jobs", "-j")``), or one name without dashes for a
            positional argument (``("files",)``).
        help: Help text; state the reader's default in it (options that are not given
            are not passed, so the reader's default applies).
        kwarg: The reader keyword this option fills. Default: the first flag without
            leading dashes, ``-`` read as ``_`` (``--l-freq`` -> ``l_freq``). None: an
            option of the command line only (``--dask``, ``--summary-json``).
        convert: The parsed value -> the keyword's value (``"a,b"`` -> ``["a", "b"]``);
            a ValueError becomes a usage error naming the flag. Default: as parsed.
        cli: Other ``argparse`` settings: ``type``, ``nargs``, ``metavar``, ``choices``,
            ``action``, ``required``.
        deprecated: Old spellings, still accepted with a deprecation message.
        refuse: This option is refused here with this message (a flag of a shared
            group that means nothing for this source).
    """

    flags: tuple[str, ...]
    help: str = ""
    kwarg: str | None = _AUTO
    convert: Callable[[Any], Any] | None = None
    cli: Mapping[str, Any] = field(default_factory=dict)
    deprecated: tuple[str, ...] = ()
    refuse: str | None = None

    @property
    def positional(self) -> bool:
        return not self.flags[0].startswith("-")

    @property
    def key(self) -> str:
        """The reader keyword (or, for command-line-only options, the flag's name)."""
        if self.kwarg not in (_AUTO, None):
            return self.kwarg
        long = next((f for f in self.flags if f.startswith("--")), self.flags[0])
        return long.lstrip("-").replace("-", "_")

    @property
    def fills(self) -> str | None:
        """The reader keyword this option fills, or None for a command-line option."""
        return None if self.kwarg is None else self.key


@dataclass(frozen=True)
class Group:
    """A group of options that several sources share (EEG steps, table options...)."""

    title: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Source:
    """One data source: a row of :data:`SOURCES`.

    Args:
        name: The name typed on the command line (``neuroconv preprocess NAME``) and in
            ``data.sources[i].pipeline`` of an experiment config (where ``_`` may stand
            for ``-``). Dashes between words.
        reader: ``"module:function"`` of the reader (imported when the source runs), or
            the function itself. It takes ``out`` (the store folder), ``jobs``,
            ``shard``, ``overwrite``, ``progress`` and its own keyword arguments, and
            returns a :class:`~pipelines.runner.Summary`.
        help: One line for ``neuroconv preprocess --help``.
        description: What the source reads and what its store holds.
        options: Its own command-line options (a flag of a shared group given here
            replaces the group's).
        groups: The shared option groups it takes, keys of :data:`GROUPS`: ``"eeg"``
            (EEG/MEG steps), ``"table"`` (CSV/TSV table options), ``"clean"`` (fMRI
            cleaning), ``"run"`` (store, workers, shards, Dask: every source).
        help_overrides: flag -> help text here (a shared option whose default differs
            for this source).
        data_dir: The reader keyword that is its data folder (``"data_dir"``), or None
            for a source that reads listed files or finds its data itself. The command
            line gets ``--data-dir``; without it the folder is found by
            :func:`resolve_data_dir`.
        data_help: What that folder is, for the ``--data-dir`` help.
        folder: The data folder's name under a data root (``NEUROCONV_DATA``,
            ``data.data_dir``): ``"nilearn_data"``, ``"eeg-notebooks"``...
        marker: A path inside the folder that shows the data set is there
            (``"ABIDE_pcp"``); empty: the folder itself.
        library: Where the field's library keeps this data set: ``"module:function"``
            (or the function) returning ``[(description, Path), ...]`` in the library's
            own order of search; None: :data:`DEFAULT_ROOT`.
        library_help: Those places in words, for help texts.
        download: The reader keyword that fetches missing data (``"download"``): when
            it is true the folder need not exist yet (the library's place is used).
        requires: ``(module, how to install it)`` for a source that needs an optional
            package.
    """

    name: str
    reader: str | Callable
    help: str
    description: str = ""
    options: tuple[Option, ...] = ()
    groups: tuple[str, ...] = ("run",)
    help_overrides: Mapping[str, str] = field(default_factory=dict)
    data_dir: str | None = None
    data_help: str = "the data folder"
    folder: str | None = None
    marker: str = ""
    library: str | Callable | None = None
    library_help: str = "the library's own data folder"
    download: str | None = None
    requires: tuple[str, str] | None = None

    def __post_init__(self):
        if not self.name or "_" in self.name or " " in self.name:
            raise ValueError(f"Source.name must be a non-empty word with dashes between "
                             f"words (as typed on the command line), got {self.name!r}")
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown:
            raise ValueError(f"Source.groups of {self.name!r}: unknown {unknown}; the groups "
                             f"are {sorted(GROUPS)}")
        if self.data_dir and not self.folder:
            raise ValueError(f"Source {self.name!r} has a data_dir but no folder: name its "
                             "folder under a data root (e.g. folder='sleep-edf').")

    def cli_options(self) -> list[tuple[str | None, Option]]:
        """``(group title or None, option)`` of its command line, in order: its own
        options (the data folder's first), then each shared group's."""
        own = list(self.options)
        if self.data_dir:
            own.insert(0, Option(("--" + self.data_dir.replace("_", "-"),),
                                 f"{self.data_help} (default: {data_places(self)})",
                                 kwarg=self.data_dir, cli={"metavar": "DIR"}))
        mine = {f for o in own for f in o.flags}
        out: list[tuple[str | None, Option]] = [(None, o) for o in own]
        for g in self.groups:
            group = GROUPS[g]
            out += [(group.title, o) for o in group.options if not set(o.flags) & mine]
        return out


# ----------------------------------------------------------- command-line values
def _names(v) -> list[str]:
    return [x.strip() for x in str(v).split(",") if x.strip()]


def _float_or_none(v: str):
    if v.lower() in ("none", "off", "0", "0.0"):
        return None
    return float(v)


def _none_or(v: str):
    return None if v.lower() == "none" else v


def _none_or_names(v: str):
    return None if v.lower() == "none" else _names(v)


def _not(v: bool) -> bool:
    return not v


def _pairs(v: str, what: str) -> dict[str, str]:
    out = {}
    for part in _names(v):
        if "=" not in part:
            raise ValueError(f"expected {what} pairs separated by commas, got {part!r}")
        k, x = part.split("=", 1)
        out[k.strip()] = x.strip()
    return out


def _event_map(v: str) -> dict[str, str]:
    v = v.strip()
    if v.startswith("{"):
        try:
            m = json.loads(v)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON ({e})") from e
        return {str(k): str(x) for k, x in m.items()}
    return _pairs(v, "ANNOTATION=LABEL")


def _picks(v: str):
    return v if v in ("eeg", "meg", "mag", "grad", "data") else _names(v)


def _bads(v: str):
    return "auto" if v == "auto" else _names(v)


def _channel_set(v: str):
    return _names(v) if "," in v else v


def _reference(v: str):
    if v.lower() == "none":
        return None
    return "average" if v == "average" else _names(v)


def _channels(v: str):
    parts = _names(v)
    if all("=" in p for p in parts):
        return dict((x.strip() for x in p.split("=", 1)) for p in parts)
    return parts


def _sep(v: str) -> str:
    return {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}.get(v, v)


def _standardize(v: str):
    return None if v == "none" else v


def _site_tr(v: str) -> dict[str, float]:
    out = {}
    for site, sec in _pairs(v, "SITE=SECONDS").items():
        try:
            out[site.upper()] = float(sec)
        except ValueError:
            raise ValueError(f"the TR of site {site} must be a number of seconds, "
                             f"got {sec!r}") from None
    return out


def _params(v: str) -> dict:
    """``'{"n_subjects": 4}'`` or ``n_subjects=4,seed=1`` (values read as JSON where
    they parse: numbers, true/false, lists) -> a dict."""
    v = v.strip()
    if v.startswith("{"):
        try:
            return dict(json.loads(v))
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON ({e})") from e
    out = {}
    for k, x in _pairs(v, "NAME=VALUE").items():
        try:
            out[k] = json.loads(x)
        except json.JSONDecodeError:
            out[k] = x
    return out


# ------------------------------------------------------------------ shared groups
_EEG = Group("EEG/MEG steps (each optional, recorded in meta.json)", (
    Option(("--picks",), "'eeg' (default), 'meg', 'mag', 'grad', 'data', or comma-separated "
           "names", convert=_picks),
    Option(("--montage",), "standard montage name, or 'none' (default standard_1005)",
           convert=_none_or),
    Option(("--on-missing",), "channels the montage does not know: fail the file (default), "
           "warn, or ignore", cli={"choices": ["raise", "warn", "ignore"]}),
    Option(("--bads",), "'auto' (flat + LOF outliers) or comma-separated channel names",
           convert=_bads),
    Option(("--no-interpolate",), "drop bad channels instead of interpolating them",
           kwarg="interpolate", convert=_not, cli={"action": "store_true"}),
    Option(("--channel-set",), "map onto a common channel set: '10-20', 'motor', or "
           "comma-separated names (missing ones are interpolated)", convert=_channel_set),
    Option(("--max-interpolated",), "fail a file when more than this fraction of "
           "--channel-set is missing (default 0.5)",
           cli={"type": float, "metavar": "FRACTION"}),
    Option(("--reference",), "'average' (default), 'none', or comma-separated channel names",
           convert=_reference),
    Option(("--notch",), "line frequency to notch (harmonics included), e.g. 50 or 60",
           cli={"type": float, "metavar": "HZ"}),
    Option(("--l-freq",), "high-pass (Hz)", cli={"type": float, "metavar": "HZ"}),
    Option(("--h-freq",), "low-pass (Hz)", cli={"type": float, "metavar": "HZ"}),
    Option(("--resample",), "resample to this rate (Hz)", cli={"type": float, "metavar": "HZ"}),
    Option(("--event-map",), "annotation -> label mapping: JSON ('{\"T1\": \"left\"}') or "
           "'T1=left,T2=right' (marker codes of tables: '1=non-target,2=target'); unmapped "
           "annotations are dropped with a warning", convert=_event_map,
           cli={"metavar": "MAP"}),
    Option(("--min-events",), "fail a recording with fewer than N events (default 0)",
           cli={"type": int, "metavar": "N"}),
))

_TABLE = Group("tables (.csv/.tsv/.txt from Muse, OpenBCI, LSL recorders; default: "
               "auto-detect)", (
    Option(("--sfreq",), "nominal sampling rate (default: from the header or device, else "
           "estimated from the timestamps); needed without a time column",
           cli={"type": float, "metavar": "HZ"}),
    Option(("--time-column",), "column holding the time ('none': there is none, use --sfreq)",
           convert=_none_or, cli={"metavar": "NAME"}),
    Option(("--time-unit",), "unit of the time column (default auto)",
           cli={"choices": ["auto", "s", "ms", "us"]}),
    Option(("--channels",), "EEG columns, comma-separated ('TP9,AF7'), or COLUMN=NAME pairs "
           "that rename ('EXG Channel 0=Fp1,EXG Channel 1=Fp2')", convert=_channels,
           cli={"metavar": "COLS"}),
    Option(("--marker-columns",), "marker columns, comma-separated, or 'none'",
           convert=_none_or_names, cli={"metavar": "COLS"}),
    Option(("--unit",), "unit of the channel values (default auto: the header's, the "
           "device's, else uV)", cli={"choices": ["auto", "uV", "µV", "mV", "V", "nV"]}),
    Option(("--sep",), "column separator: ',', 'tab', ';' (default auto)", convert=_sep,
           cli={"metavar": "SEP"}),
    Option(("--comment",), "leading lines starting with CHAR are skipped (default auto: "
           "%%, #)", cli={"metavar": "CHAR"}),
    Option(("--timing",), "auto (default): rows are samples when the de-jittered timestamps "
           "fit them, else place rows by timestamp and fill short gaps; rows: ignore the "
           "timestamps; timestamps: always place by timestamp",
           cli={"choices": ["auto", "rows", "timestamps"]}),
    Option(("--max-timing-error",), "largest disagreement between samples and de-jittered "
           "timestamps (default 0.02)", cli={"type": _float_or_none, "metavar": "SECONDS"}),
    Option(("--max-gap",), "longest stretch of missing samples or NaN rows to interpolate "
           "(default 0.2; 'none' = no limit); longer ones fail the file",
           cli={"type": _float_or_none, "metavar": "SECONDS"}),
    Option(("--rate-tolerance",), "fail a file whose timestamps run faster or slower than "
           "--sfreq by more than this (default 0.01)",
           cli={"type": _float_or_none, "metavar": "FRACTION"}),
))

_CLEAN = Group("cleaning (nilearn.signal.clean)", (
    Option(("--t-r",), "TR in seconds (default: from the JSON sidecar, else the header)",
           cli={"type": float, "metavar": "SECONDS"}),
    Option(("--no-detrend",), "do not detrend", kwarg="detrend", convert=_not,
           cli={"action": "store_true"}),
    Option(("--standardize",), "standardization (default zscore_sample)",
           convert=_standardize,
           cli={"choices": ["zscore_sample", "zscore", "psc", "none"]}),
    Option(("--high-pass",), "high-pass cutoff in Hz (default 0.008; 'none' to disable)",
           cli={"type": _float_or_none, "metavar": "HZ"}),
    Option(("--low-pass",), "low-pass cutoff in Hz (default none)",
           cli={"type": _float_or_none, "metavar": "HZ"}),
))

_RUN = Group("run", (
    Option(("--out",), "sequence store folder to write", cli={"required": True,
                                                             "metavar": "DIR"}),
    Option(("--jobs", "-j"), "parallel workers (joblib; -1 = all cores; default 1)",
           cli={"type": int, "metavar": "N"}),
    Option(("--shard",), "process only shard i of n (0-based), e.g. for cluster array jobs; "
           "all shards may write into the same --out", cli={"metavar": "i/n"}),
    Option(("--dask",), "run the recordings on a Dask cluster: a scheduler's address "
           "(tcp://host:8786, e.g. of a dask-jobqueue SLURMCluster; inputs and --out on a "
           "filesystem the workers share) or 'local' (a LocalCluster for this run: --jobs "
           "workers, default one per core). Needs pip install 'neuroconv[dask]'",
           kwarg=None, cli={"metavar": "ADDRESS"}),
    Option(("--overwrite",), "replace a store made with other parameters",
           cli={"action": "store_true"}),
    Option(("--no-progress",), "no progress bar", kwarg="progress", convert=_not,
           cli={"action": "store_true"}),
    Option(("--summary-json",), "also write the closing summary as JSON", kwarg=None,
           cli={"metavar": "FILE"}),
))

#: the option groups that sources share, by key (:attr:`Source.groups`)
GROUPS: dict[str, Group] = {"eeg": _EEG, "table": _TABLE, "clean": _CLEAN, "run": _RUN}


# ----------------------------------------------------- where libraries keep data
def nilearn_places() -> list[tuple[str, Path]]:
    """nilearn's data folders, in its order (``nilearn.datasets.get_data_dirs()``:
    ``NILEARN_SHARED_DATA``, ``NILEARN_DATA``, ``~/nilearn_data``)."""
    from nilearn.datasets import get_data_dirs

    return [("nilearn's data folder (nilearn.datasets.get_data_dirs())", Path(p).expanduser())
            for p in get_data_dirs()]


def mne_places(key: str, folder: str) -> list[tuple[str, Path]]:
    """Where an ``mne.datasets`` fetcher keeps a data set (MNE's ``_get_path`` rule): the
    ``key`` setting (environment variable or MNE config file), else ``MNE_DATA``, else
    ``~/mne_data``; the data set is in ``folder`` under it."""
    import mne

    if mne.get_config(key) is not None:
        where, base = key, mne.get_config(key)
    elif mne.get_config("MNE_DATA") is not None:
        where, base = "MNE_DATA", mne.get_config("MNE_DATA")
    else:
        where, base = "MNE's default", "~/mne_data"
    return [(f"MNE's {folder} folder ({where})", Path(base).expanduser() / folder)]


def mne_eegbci_places() -> list[tuple[str, Path]]:
    """Where ``mne.datasets.eegbci.load_data`` keeps EEGBCI: the
    ``MNE_DATASETS_EEGBCI_PATH`` setting, else ``MNE_DATA``, else ``~/mne_data``; the
    files are in ``MNE-eegbci-data`` under it."""
    return mne_places("MNE_DATASETS_EEGBCI_PATH", "MNE-eegbci-data")


def mne_sleep_physionet_places() -> list[tuple[str, Path]]:
    """Where ``mne.datasets.sleep_physionet`` keeps Sleep-EDF: the
    ``PHYSIONET_SLEEP_PATH`` setting, else ``MNE_DATA``, else ``~/mne_data``; the files
    are in ``physionet-sleep-data`` under it."""
    return mne_places("PHYSIONET_SLEEP_PATH", "physionet-sleep-data")


# ----------------------------------------------------------------------- the rows
_EEG_NOTEBOOKS_REFERENCE = ("'none' (default here: keep the Muse's Fpz reference; an "
                            "average of 4 electrodes is not near zero potential), "
                            "'average', or names")

_ROWS = (
    Source(
        "eeg", "neuroconv.pipelines.eeg:preprocess_eeg",
        help="EEG/MEG files (any mne.io.read_raw format, CSV/TSV tables) or BIDS folders",
        description="EEG/MEG files, globs or BIDS folders -> store (EEG in µV). "
                    ".csv/.tsv/.txt files are read as tables: time, channel and marker "
                    "columns (marker codes become events).",
        options=(Option(("files",), "files, globs or BIDS roots",
                        cli={"nargs": "+", "metavar": "FILE"}),),
        groups=("eeg", "table", "run")),
    Source(
        "eegbci", "neuroconv.pipelines.eeg:preprocess_eegbci",
        help="PhysioNet EEG motor movement/imagery (EEGBCI)",
        description="PhysioNet EEGBCI runs (mne.datasets.eegbci layout) -> store, with each "
                    "run's task and left/right/fists/feet labels.",
        options=(
            Option(("--subjects",), "e.g. '1', '1-10', '1,4,7' (default 1)"),
            Option(("--runs",), "e.g. '3-14' (default), '4,8,12'"),
            Option(("--download",), "download missing runs from PhysioNet (needs network)",
                   cli={"action": "store_true"}),
        ),
        groups=("eeg", "run"),
        data_dir="data_dir", folder="MNE-eegbci-data", marker="files/eegmmidb",
        data_help="the MNE-eegbci-data folder, or the folder holding it (the path given to "
                  "mne.datasets.eegbci.load_data)",
        library=mne_eegbci_places, download="download",
        library_help="MNE's EEGBCI folder: (MNE_DATASETS_EEGBCI_PATH, else MNE_DATA, else "
                     "~/mne_data)/MNE-eegbci-data"),
    Source(
        "eeg-notebooks", "neuroconv.pipelines.eeg_notebooks:preprocess_eeg_notebooks",
        help="NeuroTechX eeg-notebooks Muse recordings (visual P300, N170, cueing, SSVEP)",
        description="eeg-notebooks CSV recordings (<experiment>/subjectN/sessionM/*.csv) -> "
                    "store, with subject, session and run from the folders and file times, "
                    "and the experiment's marker meanings (P300: 1 = non-target, 2 = target; "
                    "N170: 1 = house, 2 = face; cueing: 1/2 cue left/right, 11/12/21/22 "
                    "targets, 31/32 responses; SSVEP: 1 = 30 Hz, 2 = 20 Hz, with Right AUX "
                    "read as POz). Files that are not recordings (.mat, .DS_Store) are passed "
                    "over and listed. No re-referencing by default: the Muse's 4 channels "
                    "share the Fpz reference.",
        options=(
            Option(("--experiment",), "visual/P300 (default), visual/N170, visual/cueing or "
                   "visual/SSVEP"),
            Option(("--subjects",), "e.g. '2', '2-4', '2,5' (default all)"),
        ),
        groups=("eeg", "table", "run"),
        help_overrides={"--reference": _EEG_NOTEBOOKS_REFERENCE,
                        "--min-events": "fail a recording with fewer than N events "
                                        "(default 20; SSVEP and cueing 10)"},
        data_dir="data_dir", folder="eeg-notebooks",
        data_help="the eeg-notebooks data folder (holding visual/P300 ...)"),
    Source(
        "moabb", "neuroconv.pipelines.moabb:preprocess_moabb",
        help="a MOABB data set, through MOABB's loader (pip install 'neuroconv[moabb]')",
        description="A MOABB data set -> store, one recording per run, with subject, "
                    "session, run and MOABB's event names. MOABB reads the files from the "
                    "MNE data folder (MNE_DATASETS_<CODE>_PATH, else MNE_DATA, else "
                    "~/mne_data), or downloads them there when missing and online.",
        options=(
            Option(("--dataset",), "a class of moabb.datasets, e.g. BNCI2014_001, "
                   "BNCI2014_009, Nakanishi2015", cli={"required": True, "metavar": "NAME"}),
            Option(("--subjects",), "e.g. '1', '1-3', '1,4' (default all)"),
        ),
        groups=("eeg", "run"),
        requires=("moabb", "pip install 'neuroconv[moabb]'")),
    Source(
        "fmri", "neuroconv.pipelines.fmri:preprocess_fmri",
        help="4D NIfTI, BIDS/fMRIPrep folders, or ROI tables",
        description="fMRI -> region signals (atlas) -> nilearn.signal.clean -> store.",
        options=(
            Option(("files",), "NIfTI files/globs, BIDS or fMRIPrep roots, or "
                   ".1D/.tsv/.csv/.npy tables", cli={"nargs": "+", "metavar": "FILE"}),
            Option(("--atlas",), "labels or maps image file, or a name: difumo64..1024, "
                   "schaefer100..1000, harvard-oxford, msdl (required for NIfTI)"),
            Option(("--atlas-labels",), "region names (.txt one per line, or .tsv/.csv with "
                   "index,name)", cli={"metavar": "FILE"}),
            Option(("--atlas-dir",), "nilearn data dir for named atlases (offline if present "
                   "there)", cli={"metavar": "DIR"}),
            Option(("--space",), "fMRIPrep output space to use"),
            Option(("--task",), "only runs of this BIDS task"),
            Option(("--confounds",), "load_confounds strategy for fMRIPrep inputs, e.g. "
                   "'motion,wm_csf,high_pass'", kwarg="confounds_strategy", convert=_names,
                   cli={"metavar": "STRATEGY"}),
        ),
        groups=("clean", "run")),
    Source(
        "abide", "neuroconv.pipelines.abide:preprocess_abide",
        help="ABIDE I PCP ROI time series (fetch_abide_pcp layout)",
        description="ABIDE Preprocessed Connectomes .1D ROI tables + phenotypes -> store, "
                    "TR per site from the ABIDE I acquisition table (--site-tr overrides a "
                    "site's).",
        options=(
            Option(("--pipeline",), "PCP pipeline folder (default cpac)"),
            Option(("--strategy",), "filt_noglobal, filt_global, ... (default: the only one "
                   "present)"),
            Option(("--derivative",), "file suffix (default rois_cc200)"),
            Option(("--sites",), "comma-separated SITE_IDs, e.g. NYU,PITT", convert=_names),
            Option(("--site-tr",), "override the TR of sites, in seconds, e.g. 'SBL=2.2' or "
                   "'SBL=2.2,NYU=2.0'", kwarg="tr", convert=_site_tr,
                   cli={"metavar": "SITE=SEC,..."}, deprecated=("--tr",)),
            Option(("--t-r",), refuse="ABIDE TRs come per site from the ABIDE I acquisition "
                   "table; override a site's with --site-tr SITE=SECONDS (e.g. --site-tr "
                   "NYU=2.0).", cli={"nargs": "?"}),
            Option(("--labelled-only",), "skip files without a phenotype row",
                   cli={"action": "store_true"}),
        ),
        groups=("clean", "run"),
        data_dir="data_dir", folder="nilearn_data", marker="ABIDE_pcp",
        data_help="the nilearn data dir holding ABIDE_pcp (the data_dir of "
                  "nilearn.datasets.fetch_abide_pcp)",
        library=nilearn_places,
        library_help="nilearn's data folders ($NILEARN_SHARED_DATA, $NILEARN_DATA, "
                     "~/nilearn_data)"),
    Source(
        "dreams", "neuroconv.pipelines.dreams:preprocess_dreams",
        help="DREAMS Sleep Spindles excerpts (spindles of 2 experts and a detector, 5-s hypnograms)",
        description="DREAMS Sleep Spindles database (excerptN.txt/.edf, Visual_scoring1/2_excerptN.txt, "
                    "Automatic_detection_excerptN.txt, Hypnogram_excerptN.txt) -> store: one channel 'EEG' per "
                    "excerpt in µV (its derivation in the manifest), events spindle:expert1/expert2/automatic "
                    "and stage:W/N1/N2/N3/R per 5-s epoch. A text excerpt's rate is its length over 30 minutes "
                    "(within 1 s).",
        options=(
            Option(("--excerpts",), "e.g. '1', '1-3', '1,5' (default all)"),
            Option(("--source",), "auto (default): the EDF where there is one, checked against its text twin; "
                   "txt or edf: only that format", cli={"choices": ["auto", "txt", "edf"]}),
            Option(("--resample",), "resample every excerpt to this rate (default: keep each excerpt's rate)",
                   cli={"type": float, "metavar": "HZ"}),
            Option(("--l-freq",), "high-pass edge (Hz)", cli={"type": float, "metavar": "HZ"}),
            Option(("--h-freq",), "low-pass edge (Hz)", cli={"type": float, "metavar": "HZ"}),
        ),
        groups=("run",), data_dir="data_dir", folder="dreams-spindles",
        data_help="the DREAMS Sleep Spindles database's folder"),
    Source(
        "sleep-edf", "neuroconv.pipelines.sleep_edf:preprocess_sleep_edf",
        help="Sleep-EDF Expanded nights: per-epoch features (.npz) or PSG signals, with their hypnograms",
        description="Sleep-EDF Expanded nights (SC4ssN*: features/SC4ssNE0.npz or SC4ssNE0-PSG.edf, each with "
                    "its SC4ssNx-Hypnogram.edf) -> store: one recording per night, stage:W/N1/N2/N3/R per "
                    "scored 30-s epoch, the night cut to --wake-margin minutes around sleep. Feature rows are "
                    "placed at their epochs and checked against the hypnogram.",
        options=(
            Option(("--subjects",), "e.g. '0', '0-4', '0,8' (default all)"),
            Option(("--mode",), "features (.npz), psg (-PSG.edf) or auto (default: the one present)",
                   cli={"choices": ["auto", "features", "psg"]}),
            Option(("--wake-margin",), "wake kept before the first and after the last sleep epoch, in minutes "
                   "(default 30; 'none' keeps the whole recording)", cli={"metavar": "MINUTES"}),
            Option(("--allow-truncated",), "keep a night whose data stop during scored sleep, cut there",
                   cli={"action": "store_true"}),
            Option(("--channels",), "PSG mode: EEG channels (default Fpz-Cz,Pz-Oz)", convert=_names),
            Option(("--eog",), "PSG mode: add the horizontal EOG", cli={"action": "store_true"}),
            Option(("--resample",), "PSG mode: resample to this rate (Hz)", cli={"type": float, "metavar": "HZ"}),
            Option(("--l-freq",), "PSG mode: high-pass edge (Hz)", cli={"type": float, "metavar": "HZ"}),
            Option(("--h-freq",), "PSG mode: low-pass edge (Hz)", cli={"type": float, "metavar": "HZ"}),
        ),
        groups=("run",), data_dir="data_dir", folder="sleep-edf",
        data_help="folder holding the Sleep-EDF files (searched recursively)",
        library=mne_sleep_physionet_places,
        library_help="MNE's Sleep-EDF folder: (PHYSIONET_SLEEP_PATH, else MNE_DATA, else ~/mne_data)/"
                     "physionet-sleep-data"),
    Source(
        "simulate-eeg", "neuroconv.pipelines.simulate:preprocess_simulated_eeg",
        help="simulated motor-imagery EEG (the built-in default experiment's data)",
        description="Simulated 10-20 EEG with mu/beta desynchronisation for left/right "
                    "trials (neuroconv.pipelines.simulate.simulate_eeg), written as FIF "
                    "files once (reused while the simulation is unchanged), then the EEG "
                    "pipeline -> store.",
        options=(
            Option(("--raw-dir",), "folder for the simulated files (default <out>_raw)",
                   cli={"metavar": "DIR"}),
            Option(("--simulate",), "keyword arguments of simulate_eeg: JSON "
                   "('{\"n_subjects\": 4}') or 'n_subjects=4,duration=30,seed=1'",
                   convert=_params, cli={"metavar": "PARAMS"}),
        ),
        groups=("eeg", "run")),
    Source(
        "simulate-fmri", "neuroconv.pipelines.simulate:preprocess_simulated_fmri",
        help="simulated block-design fMRI (BIDS NIfTI through a labels atlas)",
        description="A simulated BIDS folder of 4D BOLD runs with a labels atlas "
                    "(neuroconv.pipelines.simulate.simulate_fmri), written once (reused "
                    "while the simulation is unchanged), then the fMRI pipeline -> store.",
        options=(
            Option(("--raw-dir",), "folder for the simulated files (default <out>_raw)",
                   cli={"metavar": "DIR"}),
            Option(("--simulate",), "keyword arguments of simulate_fmri: JSON "
                   "('{\"n_subjects\": 4}') or 'n_subjects=4,n_times=120,seed=1'",
                   convert=_params, cli={"metavar": "PARAMS"}),
        ),
        groups=("clean", "run")),
)

#: name -> :class:`Source`, in the order of ``neuroconv preprocess --help``
SOURCES: dict[str, Source] = {row.name: row for row in _ROWS}


# ---------------------------------------------------------------------- look-ups
def source_names() -> list[str]:
    """The names of the registered sources."""
    return list(SOURCES)


def get_source(source: str | Source) -> Source:
    """The row named ``source`` (``_`` read as ``-``: ``eeg_notebooks``); a row is
    returned as it is."""
    if isinstance(source, Source):
        return source
    key = str(source).strip().replace("_", "-")
    for name, row in SOURCES.items():
        if name.replace("_", "-") == key:
            return row
    raise ValueError(f"unknown data source {source!r}; the sources are "
                     f"{', '.join(source_names())} (neuroconv.pipelines.sources.SOURCES).")


def _load(spec: str | Callable) -> Callable:
    if callable(spec):
        return spec
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def load_reader(source: str | Source) -> Callable:
    """The reader function of a source (imports its module)."""
    return _load(get_source(source).reader)


# -------------------------------------------------------------- data folders
def _root_label(row: Source) -> str:
    return f"${ENV_ROOT}/{row.folder}"


def data_places(source: str | Source) -> str:
    """Where :func:`resolve_data_dir` looks for a source's data when no folder is given,
    in words (for help texts)."""
    row = get_source(source)
    if not row.data_dir:
        return "the source finds its data itself"
    last = row.library_help if row.library else f"{DEFAULT_ROOT}/{row.folder}"
    return f"{_root_label(row)}, else {last}"


def _holds(row: Source, path: Path) -> bool:
    return (path / row.marker).exists() if row.marker else path.is_dir()


def _what(row: Source) -> str:
    return f"{row.folder}/{row.marker}" if row.marker else f"{row.folder}/"


def _pointers(row: Source) -> str:
    return (f"Point at the data with --data-dir DIR (neuroconv preprocess {row.name}) or "
            f"args.data_dir (a data.sources entry of an experiment config), or give a root "
            f"folder that holds {row.folder}/: data.data_dir of the experiment config "
            f"(--data.data_dir ROOT), root= in Python, or the {ENV_ROOT} environment "
            "variable.")


def resolve_data_dir(source: str | Source, data_dir=None, root=None, *,
                     must_exist: bool = True) -> Path:
    """The data folder of a source, found as the field's tools find theirs.

    In this order (the module docstring says more):

    1. ``data_dir``, when given: returned as given (the reader checks its layout);
    2. ``root``, when given: ``root/<folder>`` of the source's row, which must hold the
       data (its :attr:`Source.marker`), else :class:`DataNotFoundError`;
    3. ``$NEUROCONV_DATA/<folder>``, when it holds the data;
    4. the library's places (:attr:`Source.library`: nilearn's data folders, MNE's),
       else ``~/neuroconv_data/<folder>``: the first that holds the data.

    ``must_exist=False`` (a reader that downloads what is missing): when no place holds
    the data, the first of 3-4 is returned (where the download goes). Otherwise
    :class:`DataNotFoundError` names every place looked at and how to point at the data.
    Raises ValueError for a source without a data folder.
    """
    row = get_source(source)
    if not row.data_dir:
        raise ValueError(f"the data source {row.name!r} has no data folder (it reads the "
                         "files it is given, or finds its data itself).")
    if data_dir not in (None, ""):
        return Path(data_dir).expanduser()
    if root not in (None, ""):
        path = Path(root).expanduser() / row.folder
        if _holds(row, path) or not must_exist:
            return path
        raise DataNotFoundError(
            f"no {row.name} data in the data root {root}: {_what(row)} is not there "
            f"(looked for {path / row.marker if row.marker else path}). A data root holds "
            f"each data set in its own folder ({row.folder}/ for {row.name}). "
            + _pointers(row))
    places: list[tuple[str, Path | None]] = []
    env = os.environ.get(ENV_ROOT)
    places.append((f"${ENV_ROOT}/{row.folder}" + ("" if env else f" ({ENV_ROOT} is not set)"),
                   Path(env).expanduser() / row.folder if env else None))
    if row.library is not None:
        places += _load(row.library)()
    else:
        places.append((f"neuroconv's default {DEFAULT_ROOT}/{row.folder}",
                       Path(DEFAULT_ROOT).expanduser() / row.folder))
    for _, path in places:
        if path is not None and _holds(row, path):
            return path
    if not must_exist:
        return next(path for _, path in places if path is not None)
    looked = "\n".join(f"  - {label}: {path if path is not None else '-'}"
                       for label, path in places)
    raise DataNotFoundError(
        f"no {row.name} data found ({_what(row)}); no data_dir or data root was given, "
        f"and none of these places holds it:\n{looked}\n" + _pointers(row))


# --------------------------------------------------------------------- running
class MissingArgumentError(TypeError):
    """A source was called without a required argument of its reader."""

    def __init__(self, source: str, argument: str):
        self.source, self.argument = source, argument
        super().__init__(f"the {source} source needs {argument}")


def run_source(source: str | Source, out, *, root=None, **kwargs):
    """Run a source's reader into the store ``out``; returns its
    :class:`~pipelines.runner.Summary`.

    ``kwargs`` are the reader's keyword arguments (a config's ``args``, or the options
    given on the command line). The data folder (the row's :attr:`Source.data_dir`
    keyword) is resolved by :func:`resolve_data_dir` from the one given, ``root``, the
    environment and the library's defaults. Raises :class:`MissingArgumentError` for a
    required reader argument that is missing, ImportError for a missing optional package
    (:attr:`Source.requires`), and :class:`DataNotFoundError`.
    """
    row = get_source(source)
    if row.requires:
        module, how = row.requires
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"the {row.name} source needs {module}, which is not installed: "
                              f"{how}")
    kw = dict(kwargs)
    if row.data_dir:
        fetch = bool(row.download and kw.get(row.download))
        kw[row.data_dir] = resolve_data_dir(row, kw.get(row.data_dir), root,
                                            must_exist=not fetch)
    reader = load_reader(row)
    try:
        params = inspect.signature(reader).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = []
    for p in params:
        if (p.name != "out" and p.default is p.empty and p.name not in kw
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)):
            raise MissingArgumentError(row.name, p.name)
    return reader(out=out, **kw)


# ------------------------------------------------------------------------- docs
def describe(indent: str = "") -> str:
    """One line per source: its name, its reader and its help (for docstrings)."""
    lines = []
    for row in SOURCES.values():
        reader = row.reader if isinstance(row.reader, str) else getattr(row.reader, "__name__", "")
        lines.append(f"{indent}- ``{row.name}`` (``{reader.rpartition(':')[2]}``): {row.help}"
                     + (f"; data: ``--data-dir``, else {data_places(row)}" if row.data_dir
                        else ""))
    return "\n".join(lines)


if __doc__:  # None under python -OO
    __doc__ += "\nThe sources:\n\n" + describe() + "\n"
