"""``neuroconv preprocess {eeg,eegbci,eeg-notebooks,fmri,abide}``: recordings -> stores.

Only argparse work happens here at parser-build time; the pipelines (and MNE, nilearn)
are imported when a subcommand runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, metavar="DIR", help="sequence store folder to write")
    g.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="parallel workers (joblib; -1 = all cores; default 1)")
    g.add_argument("--shard", default=None, metavar="i/n",
                   help="process only shard i of n (0-based), e.g. for cluster array jobs; "
                        "all shards may write into the same --out")
    g.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run the recordings on a Dask cluster: a scheduler's address "
                        "(tcp://host:8786, e.g. of a dask-jobqueue SLURMCluster; inputs and "
                        "--out on a filesystem the workers share) or 'local' (a LocalCluster "
                        "for this run: --jobs workers, default one per core). Needs "
                        "pip install 'neuroconv[dask]'")
    g.add_argument("--overwrite", action="store_true",
                   help="replace a store made with other parameters")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--summary-json", metavar="FILE", default=None,
                   help="also write the closing summary as JSON")


def _float_or_none(v: str):
    if v.lower() in ("none", "off", "0", "0.0"):
        return None
    return float(v)


def _clean_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cleaning (nilearn.signal.clean)")
    g.add_argument("--t-r", type=float, default=None, metavar="SECONDS",
                   help="TR in seconds (default: from the JSON sidecar, else the header)")
    g.add_argument("--no-detrend", action="store_true", help="do not detrend")
    g.add_argument("--standardize", default="zscore_sample",
                   choices=["zscore_sample", "zscore", "psc", "none"],
                   help="standardization (default zscore_sample)")
    g.add_argument("--high-pass", type=_float_or_none, default=0.008, metavar="HZ",
                   help="high-pass cutoff in Hz (default 0.008; 'none' to disable)")
    g.add_argument("--low-pass", type=_float_or_none, default=None, metavar="HZ",
                   help="low-pass cutoff in Hz (default none)")


def _clean_kwargs(a) -> dict:
    return dict(detrend=not a.no_detrend,
                standardize=None if a.standardize == "none" else a.standardize,
                high_pass=a.high_pass, low_pass=a.low_pass)


def _eeg_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("EEG/MEG steps (each optional, recorded in meta.json)")
    g.add_argument("--picks", default="eeg",
                   help="'eeg' (default), 'meg', 'mag', 'grad', 'data', or comma-separated names")
    g.add_argument("--montage", default="standard_1005",
                   help="standard montage name, or 'none' (default standard_1005)")
    g.add_argument("--on-missing", default="raise", choices=["raise", "warn", "ignore"],
                   help="channels the montage does not know: fail the file (default), "
                        "warn, or ignore")
    g.add_argument("--bads", default=None,
                   help="'auto' (flat + LOF outliers) or comma-separated channel names")
    g.add_argument("--no-interpolate", action="store_true",
                   help="drop bad channels instead of interpolating them")
    g.add_argument("--channel-set", default=None,
                   help="map onto a common channel set: '10-20', 'motor', or comma-separated "
                        "names (missing ones are interpolated)")
    g.add_argument("--max-interpolated", type=float, default=0.5, metavar="FRACTION",
                   help="fail a file when more than this fraction of --channel-set is missing")
    g.add_argument("--reference", default="average",
                   help="'average' (default), 'none', or comma-separated channel names")
    g.add_argument("--notch", type=float, default=None, metavar="HZ",
                   help="line frequency to notch (harmonics included), e.g. 50 or 60")
    g.add_argument("--l-freq", type=float, default=None, metavar="HZ", help="high-pass (Hz)")
    g.add_argument("--h-freq", type=float, default=None, metavar="HZ", help="low-pass (Hz)")
    g.add_argument("--resample", type=float, default=None, metavar="HZ",
                   help="resample to this rate (Hz)")
    g.add_argument("--event-map", default=None, metavar="MAP",
                   help="annotation -> label mapping: JSON ('{\"T1\": \"left\"}') or "
                        "'T1=left,T2=right' (marker codes of tables: '1=non-target,"
                        "2=target'); unmapped annotations are dropped with a warning")
    g.add_argument("--min-events", type=int, default=None, metavar="N",
                   help="fail a recording with fewer than N events (default 0; "
                        "eeg-notebooks: 20)")


def _table_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "tables (.csv/.tsv/.txt from Muse, OpenBCI, LSL recorders; default: auto-detect)")
    g.add_argument("--sfreq", type=float, default=None, metavar="HZ",
                   help="nominal sampling rate (default: from the header or device, else "
                        "estimated from the timestamps); needed without a time column")
    g.add_argument("--time-column", default=None, metavar="NAME",
                   help="column holding the time ('none': there is none, use --sfreq)")
    g.add_argument("--time-unit", default=None, choices=["auto", "s", "ms", "us"],
                   help="unit of the time column (default auto)")
    g.add_argument("--channels", default=None, metavar="COLS",
                   help="EEG columns, comma-separated ('TP9,AF7'), or COLUMN=NAME pairs "
                        "that rename ('EXG Channel 0=Fp1,EXG Channel 1=Fp2')")
    g.add_argument("--marker-columns", default=None, metavar="COLS",
                   help="marker columns, comma-separated, or 'none'")
    g.add_argument("--unit", default=None, choices=["auto", "uV", "µV", "mV", "V", "nV"],
                   help="unit of the channel values (default auto: the header's, the "
                        "device's, else uV)")
    g.add_argument("--sep", default=None, metavar="SEP",
                   help="column separator: ',', 'tab', ';' (default auto)")
    g.add_argument("--comment", default=None, metavar="CHAR",
                   help="leading lines starting with CHAR are skipped (default auto: %%, #)")
    g.add_argument("--timing", default=None, choices=["auto", "rows", "timestamps"],
                   help="auto (default): rows are samples when the de-jittered timestamps "
                        "fit them, else place rows by timestamp and fill short gaps; rows: "
                        "ignore the timestamps; timestamps: always place by timestamp")
    g.add_argument("--max-timing-error", type=_float_or_none, default=None, metavar="SECONDS",
                   help="largest disagreement between samples and de-jittered timestamps "
                        "(default 0.02)")
    g.add_argument("--max-gap", type=_float_or_none, default=None, metavar="SECONDS",
                   help="longest stretch of missing samples or NaN rows to interpolate "
                        "(default 0.2; 'none' = no limit); longer ones fail the file")
    g.add_argument("--rate-tolerance", type=_float_or_none, default=None, metavar="FRACTION",
                   help="fail a file whose timestamps run faster or slower than --sfreq by "
                        "more than this (default 0.01)")


def _names(v):
    return [x.strip() for x in v.split(",") if x.strip()]


def _event_map(v):
    if v is None:
        return None
    v = v.strip()
    if v.startswith("{"):
        try:
            m = json.loads(v)
        except json.JSONDecodeError as e:
            raise SystemExit(f"--event-map: invalid JSON ({e})") from e
        return {str(k): str(x) for k, x in m.items()}
    out = {}
    for part in _names(v):
        if "=" not in part:
            raise SystemExit(f"--event-map: expected ANNOTATION=LABEL pairs, got {part!r}")
        k, x = part.split("=", 1)
        out[k.strip()] = x.strip()
    return out


def _eeg_kwargs(a) -> dict:
    picks = a.picks if a.picks in ("eeg", "meg", "mag", "grad", "data") else _names(a.picks)
    bads = None if a.bads is None else ("auto" if a.bads == "auto" else _names(a.bads))
    cs = a.channel_set
    if cs is not None and "," in cs:
        cs = _names(cs)
    ref = a.reference
    ref = None if ref.lower() == "none" else ("average" if ref == "average" else _names(ref))
    return dict(picks=picks, montage=None if a.montage.lower() == "none" else a.montage,
                on_missing=a.on_missing, bads=bads, interpolate=not a.no_interpolate,
                channel_set=cs, max_interpolated=a.max_interpolated, reference=ref,
                notch=a.notch, l_freq=a.l_freq, h_freq=a.h_freq, resample=a.resample,
                event_map=_event_map(a.event_map),
                **({} if a.min_events is None else {"min_events": a.min_events}))


def _table_kwargs(a) -> dict:
    """The table options given on the command line (the rest keep their defaults)."""
    out = {}
    if a.channels is not None:
        parts = _names(a.channels)
        out["channels"] = (dict((x.strip() for x in p.split("=", 1)) for p in parts)
                           if all("=" in p for p in parts) else parts)
    if a.marker_columns is not None:
        out["marker_columns"] = None if a.marker_columns.lower() == "none" \
            else _names(a.marker_columns)
    if a.time_column is not None:
        out["time_column"] = None if a.time_column.lower() == "none" else a.time_column
    if a.sep is not None:
        out["sep"] = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}.get(a.sep, a.sep)
    for key in ("sfreq", "time_unit", "unit", "comment", "timing", "max_timing_error",
                "max_gap", "rate_tolerance"):
        if getattr(a, key) is not None:
            out[key] = getattr(a, key)
    return out


def _dask(a, stack) -> None:
    """Enter ``use_dask`` for ``--dask`` (nothing without it)."""
    if a.dask is None:
        return
    from .runner import use_dask

    local = a.dask.strip().lower() == "local"
    if not local and a.jobs != 1:
        raise ValueError(f"--jobs {a.jobs} sets the workers of --dask local; the cluster at "
                         f"--dask {a.dask} has its own workers: leave --jobs out.")
    client = stack.enter_context(use_dask("local" if local else a.dask.strip(),
                                          n_workers=a.jobs if local and a.jobs > 1 else None))
    if not a.no_progress:
        n = len(client.scheduler_info().get("workers", {}))
        print(f"Dask scheduler {client.scheduler.address}: {n} worker(s); dashboard "
              f"{client.dashboard_link}", file=sys.stderr)


def _run(func, a, *args, **kwargs) -> int:
    from rich.console import Console

    try:
        with contextlib.ExitStack() as stack:
            try:
                _dask(a, stack)
            except ImportError as e:
                print(f"neuroconv preprocess: error: --dask: {e}", file=sys.stderr)
                return 2
            summary = func(*args, out=a.out, jobs=a.jobs, shard=a.shard,
                           overwrite=a.overwrite, progress=not a.no_progress, **kwargs)
    except (ValueError, FileNotFoundError, TypeError, KeyError) as e:
        print(f"neuroconv preprocess: error: {e}", file=sys.stderr)
        return 2
    summary.print(Console(stderr=True))
    if a.summary_json:
        with open(a.summary_json, "w") as f:
            json.dump(summary.to_dict(), f, indent=1)
    return summary.exit_code


def _cmd_eeg(a) -> int:
    from .eeg import preprocess_eeg

    return _run(preprocess_eeg, a, a.files, **_eeg_kwargs(a), **_table_kwargs(a))


def _cmd_eeg_notebooks(a) -> int:
    from .eeg_notebooks import preprocess_eeg_notebooks

    kw = {**_eeg_kwargs(a), **_table_kwargs(a)}
    if kw["event_map"] is None:
        del kw["event_map"]                      # the experiment's marker meanings
    return _run(preprocess_eeg_notebooks, a, a.data_dir, experiment=a.experiment,
                subjects=a.subjects, **kw)


def _cmd_eegbci(a) -> int:
    from .eeg import preprocess_eegbci

    return _run(preprocess_eegbci, a, a.data_dir, subjects=a.subjects, runs=a.runs,
                download=a.download, **_eeg_kwargs(a))


def _cmd_moabb(a) -> int:
    from .moabb import preprocess_moabb

    try:
        import moabb  # noqa: F401
    except ImportError:
        print("neuroconv preprocess moabb: error: MOABB is not installed; pip install "
              "'neuroconv[moabb]'", file=sys.stderr)
        return 2
    return _run(preprocess_moabb, a, a.dataset, subjects=a.subjects, **_eeg_kwargs(a))


def _cmd_fmri(a) -> int:
    from .fmri import preprocess_fmri

    strategy = _names(a.confounds) if a.confounds else None
    return _run(preprocess_fmri, a, a.files, atlas=a.atlas, t_r=a.t_r,
                atlas_labels=a.atlas_labels, atlas_dir=a.atlas_dir, space=a.space,
                task=a.task, confounds_strategy=strategy, **_clean_kwargs(a))


def _cmd_abide(a) -> int:
    from .abide import preprocess_abide

    tr = None
    if a.tr:
        tr = {}
        for part in _names(a.tr):
            site, _, val = part.partition("=")
            tr[site.strip().upper()] = float(val)
    kw = _clean_kwargs(a)
    return _run(preprocess_abide, a, a.data_dir, pipeline=a.pipeline, strategy=a.strategy,
                derivative=a.derivative, sites=_names(a.sites) if a.sites else None, tr=tr,
                labelled_only=a.labelled_only, **kw)


def add_preprocess(sub) -> None:
    p = sub.add_parser(
        "preprocess", help="recordings to sequence stores",
        description="Turn fMRI/EEG/MEG recordings into sequence stores (manifest.csv, "
                    "events.csv, meta.json, one float32 .npy per recording). Reruns skip "
                    "recordings already done; failures are listed in the closing summary "
                    "and make the exit status non-zero.")
    p.set_defaults(func=None, _parser=p)
    ps = p.add_subparsers(dest="pipeline", metavar="PIPELINE")

    e = ps.add_parser("eeg", help="EEG/MEG files (any mne.io.read_raw format, CSV/TSV "
                                  "tables) or BIDS folders",
                      description="EEG/MEG files, globs or BIDS folders -> store (EEG in µV). "
                                  ".csv/.tsv/.txt files are read as tables: time, channel and "
                                  "marker columns (marker codes become events).")
    e.add_argument("files", nargs="+", metavar="FILE", help="files, globs or BIDS roots")
    _eeg_args(e)
    _table_args(e)
    _common(e)
    e.set_defaults(func=_cmd_eeg)

    b = ps.add_parser("eegbci", help="PhysioNet EEG motor movement/imagery (EEGBCI)",
                      description="PhysioNet EEGBCI runs (mne.datasets.eegbci layout) -> "
                                  "store, with each run's task and left/right/fists/feet "
                                  "labels.")
    b.add_argument("--data-dir", required=True, metavar="DIR",
                   help="folder holding MNE-eegbci-data (the path given to eegbci.load_data)")
    b.add_argument("--subjects", default="1", help="e.g. '1', '1-10', '1,4,7' (default 1)")
    b.add_argument("--runs", default="3-14", help="e.g. '3-14' (default), '4,8,12'")
    b.add_argument("--download", action="store_true",
                   help="download missing runs from PhysioNet (needs network)")
    _eeg_args(b)
    _common(b)
    b.set_defaults(func=_cmd_eegbci)

    n = ps.add_parser("eeg-notebooks", help="NeuroTechX eeg-notebooks Muse recordings "
                                            "(visual P300, N170, cueing, SSVEP)",
                      description="eeg-notebooks CSV recordings (<experiment>/subjectN/"
                                  "sessionM/*.csv) -> store, with subject, session and run "
                                  "from the folders and file times, and the experiment's "
                                  "marker meanings (P300: 1 = non-target, 2 = target; N170: "
                                  "1 = house, 2 = face; cueing: 1/2 cue left/right, 11/12/21/22 "
                                  "targets, 31/32 responses; SSVEP: 1 = 30 Hz, 2 = 20 Hz, with "
                                  "Right AUX read as POz). Files that are not recordings (.mat, "
                                  ".DS_Store) are passed over and listed. No re-referencing by default: the "
                                  "Muse's 4 channels share the Fpz reference.")
    n.add_argument("--data-dir", required=True, metavar="DIR",
                   help="the eeg-notebooks data folder (holding visual/P300 ...)")
    n.add_argument("--experiment", default="visual/P300",
                   help="visual/P300 (default) or visual/N170")
    n.add_argument("--subjects", default=None, help="e.g. '2', '2-4', '2,5' (default all)")
    _eeg_args(n)
    _table_args(n)
    _common(n)
    n.set_defaults(func=_cmd_eeg_notebooks, reference="none")
    for act in n._actions:
        if act.dest == "reference":
            act.help = ("'none' (default here: keep the Muse's Fpz reference; an average of "
                        "4 electrodes is not near zero potential), 'average', or names")

    m = ps.add_parser("moabb", help="a MOABB data set, through MOABB's loader (pip install "
                                    "'neuroconv[moabb]')",
                      description="A MOABB data set -> store, one recording per run, with "
                                  "subject, session, run and MOABB's event names. MOABB reads "
                                  "the files from the MNE data folder, or downloads them when "
                                  "missing and online.")
    m.add_argument("--dataset", required=True, metavar="NAME",
                   help="a class of moabb.datasets, e.g. BNCI2014_001, BNCI2014_009, Nakanishi2015")
    m.add_argument("--subjects", default=None, help="e.g. '1', '1-3', '1,4' (default all)")
    _eeg_args(m)
    _common(m)
    m.set_defaults(func=_cmd_moabb)

    f = ps.add_parser("fmri", help="4D NIfTI, BIDS/fMRIPrep folders, or ROI tables",
                      description="fMRI -> region signals (atlas) -> nilearn.signal.clean "
                                  "-> store.")
    f.add_argument("files", nargs="+", metavar="FILE",
                   help="NIfTI files/globs, BIDS or fMRIPrep roots, or .1D/.tsv/.csv/.npy tables")
    f.add_argument("--atlas", default=None,
                   help="labels or maps image file, or a name: difumo64..1024, "
                        "schaefer100..1000, harvard-oxford, msdl (required for NIfTI)")
    f.add_argument("--atlas-labels", default=None, metavar="FILE",
                   help="region names (.txt one per line, or .tsv/.csv with index,name)")
    f.add_argument("--atlas-dir", default=None, metavar="DIR",
                   help="nilearn data dir for named atlases (offline if present there)")
    f.add_argument("--space", default=None, help="fMRIPrep output space to use")
    f.add_argument("--task", default=None, help="only runs of this BIDS task")
    f.add_argument("--confounds", default=None, metavar="STRATEGY",
                   help="load_confounds strategy for fMRIPrep inputs, e.g. "
                        "'motion,wm_csf,high_pass'")
    _clean_args(f)
    _common(f)
    f.set_defaults(func=_cmd_fmri)

    a = ps.add_parser("abide", help="ABIDE I PCP ROI time series (fetch_abide_pcp layout)",
                      description="ABIDE Preprocessed Connectomes .1D ROI tables + phenotypes "
                                  "-> store, TR per site from the ABIDE I acquisition table.")
    a.add_argument("--data-dir", required=True, metavar="DIR",
                   help="the nilearn data dir holding ABIDE_pcp")
    a.add_argument("--pipeline", default="cpac", help="PCP pipeline folder (default cpac)")
    a.add_argument("--strategy", default=None,
                   help="filt_noglobal, filt_global, ... (default: the only one present)")
    a.add_argument("--derivative", default="rois_cc200", help="file suffix (default rois_cc200)")
    a.add_argument("--sites", default=None, help="comma-separated SITE_IDs, e.g. NYU,PITT")
    a.add_argument("--tr", default=None, metavar="SITE=SEC,...",
                   help="override site TRs, e.g. 'SBL=2.2'")
    a.add_argument("--labelled-only", action="store_true",
                   help="skip files without a phenotype row")
    _clean_args(a)
    _common(a)
    a.set_defaults(func=_cmd_abide)
    _add_sleep_readers(ps)


# ------------------------------------------------ sleep readers: dreams, sleep-edf
def _cmd_dreams(a) -> int:
    from .dreams import preprocess_dreams

    return _run(preprocess_dreams, a, a.data_dir, excerpts=a.excerpts, source=a.source,
                resample=a.resample, l_freq=a.l_freq, h_freq=a.h_freq)


def _cmd_sleep_edf(a) -> int:
    from .sleep_edf import preprocess_sleep_edf

    return _run(preprocess_sleep_edf, a, a.data_dir, subjects=a.subjects, mode=a.mode,
                wake_margin=a.wake_margin, allow_truncated=a.allow_truncated,
                channels=_names(a.channels), eog=a.eog, resample=a.resample,
                l_freq=a.l_freq, h_freq=a.h_freq)


def _add_sleep_readers(ps) -> None:
    """The ``dreams`` and ``sleep-edf`` subcommands of ``neuroconv preprocess``."""
    def filters(p, what):
        g = p.add_argument_group(f"signal steps ({what}; MNE, recorded in meta.json)")
        g.add_argument("--resample", type=float, default=None, metavar="HZ",
                       help="resample to this rate (default: keep each file's rate)")
        g.add_argument("--l-freq", type=float, default=None, metavar="HZ",
                       help="high-pass edge (Hz)")
        g.add_argument("--h-freq", type=float, default=None, metavar="HZ",
                       help="low-pass edge (Hz)")

    d = ps.add_parser("dreams", help="DREAMS Sleep Spindles excerpts (spindles of 2 experts "
                                     "and a detector, 5-s hypnograms)",
                      description="DREAMS Sleep Spindles database (excerptN.txt/.edf, "
                                  "Visual_scoring1/2_excerptN.txt, Automatic_detection_"
                                  "excerptN.txt, Hypnogram_excerptN.txt) -> store: one "
                                  "channel 'EEG' per excerpt in µV (its derivation in the "
                                  "manifest), events spindle:expert1/expert2/automatic and "
                                  "stage:W/N1/N2/N3/R per 5-s epoch. A text excerpt's rate "
                                  "is its length over 30 minutes (within 1 s).")
    d.add_argument("--data-dir", required=True, metavar="DIR",
                   help="the database's folder (or one holding dreams-spindles)")
    d.add_argument("--excerpts", default=None, help="e.g. '1', '1-3', '1,5' (default all)")
    d.add_argument("--source", default="auto", choices=["auto", "txt", "edf"],
                   help="auto (default): the EDF where there is one, checked against its "
                        "text twin; txt or edf: only that format")
    filters(d, "every excerpt")
    _common(d)
    d.set_defaults(func=_cmd_dreams)

    s = ps.add_parser("sleep-edf", help="Sleep-EDF Expanded nights: per-epoch features "
                                        "(.npz) or PSG signals, with their hypnograms",
                      description="Sleep-EDF Expanded nights (SC4ssN*: features/SC4ssNE0.npz "
                                  "or SC4ssNE0-PSG.edf, each with its SC4ssNx-Hypnogram.edf) "
                                  "-> store: one recording per night, stage:W/N1/N2/N3/R "
                                  "per scored 30-s epoch, the night cut to --wake-margin "
                                  "minutes around sleep. Feature rows are placed at their "
                                  "epochs and checked against the hypnogram.")
    s.add_argument("--data-dir", required=True, metavar="DIR",
                   help="folder holding the files (searched recursively)")
    s.add_argument("--subjects", default=None, help="e.g. '0', '0-4', '0,8' (default all)")
    s.add_argument("--mode", default="auto", choices=["auto", "features", "psg"],
                   help="features (.npz), psg (-PSG.edf) or auto (default: the one present)")
    s.add_argument("--wake-margin", default="30", metavar="MINUTES",
                   help="wake kept before the first and after the last sleep epoch "
                        "(default 30; 'none' keeps the whole recording)")
    s.add_argument("--allow-truncated", action="store_true",
                   help="keep a night whose data stop during scored sleep, cut there")
    s.add_argument("--channels", default="Fpz-Cz,Pz-Oz",
                   help="PSG mode: EEG channels (default Fpz-Cz,Pz-Oz)")
    s.add_argument("--eog", action="store_true", help="PSG mode: add the horizontal EOG")
    filters(s, "PSG mode")
    _common(s)
    s.set_defaults(func=_cmd_sleep_edf)
