"""The registry of data sources: every row is a ``neuroconv preprocess`` subcommand and a
config pipeline, a row added at run time is both with no other edit, and data folders
are found where the field's libraries (nilearn, MNE) keep them."""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
from pathlib import Path

import pytest

from neuroconv.brain.sources import pipeline_names, prepare_sources
from neuroconv.cli import main
from neuroconv.pipelines import sources as S
from neuroconv.pipelines.runner import Outcome, Summary

EEGBCI_S001 = "MNE-eegbci-data/files/eegmmidb/1.0.0/S001"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No data-folder setting of the machine leaks in: a fresh home, no NEUROCONV_DATA,
    no nilearn or MNE data variables."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("NEUROCONV_DATA", "NILEARN_DATA", "NILEARN_SHARED_DATA", "MNE_DATA",
                "MNE_DATASETS_EEGBCI_PATH", "_MNE_FAKE_HOME_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


class Spy:
    """A reader that records its keyword arguments and reports one recording done."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, out, **kwargs):
        self.calls.append({"out": str(out), **kwargs})
        return Summary(store=Path(out), done=[Outcome("r1", "x", "done")])


def _required_cli(row: S.Source, tmp_path) -> tuple[list[str], dict]:
    """Command-line arguments for the required options of a row, and the reader
    keywords they stand for."""
    argv, kwargs = [], {}
    for _, opt in row.cli_options():
        if opt.fills in (None, "out"):
            continue
        if opt.positional:
            argv.append("value")
            kwargs[opt.fills] = opt.convert("value") if opt.convert else "value"
            if opt.cli.get("nargs") in ("+", "*"):
                kwargs[opt.fills] = [kwargs[opt.fills]]
        elif opt.cli.get("required") or opt.fills == row.data_dir:
            value = str(tmp_path / "data") if opt.fills == row.data_dir else "value"
            argv += [opt.flags[0], value]
            kwargs[opt.fills] = Path(value) if opt.fills == row.data_dir else value
    return argv, kwargs


def test_every_row_is_a_subcommand_and_a_config_pipeline(tmp_path, capsys, monkeypatch):
    assert main(["preprocess"]) == 2
    listed = capsys.readouterr().out
    assert pipeline_names() == S.source_names() == list(S.SOURCES)
    for name, row in list(S.SOURCES.items()):
        assert name in listed
        with pytest.raises(SystemExit) as e:                  # its subcommand
            main(["preprocess", name, "--help"])
        assert e.value.code == 0 and f"usage: neuroconv preprocess {name}" in capsys.readouterr().out
        # the reader exists and takes every keyword the row's options fill
        reader = S.load_reader(row)
        params = inspect.signature(reader).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            fills = {o.fills for _, o in row.cli_options() if o.fills and o.refuse is None}
            assert fills <= set(params), (name, fills - set(params))
        assert "out" in params, name
        # the command line and a config call the reader alike (the reader is a spy here)
        spy = Spy()
        monkeypatch.setitem(S.SOURCES, name, dataclasses.replace(row, reader=spy, requires=None))
        argv, want = _required_cli(row, tmp_path)
        out = tmp_path / name
        assert main(["preprocess", name, *argv, "--out", str(out), "--no-progress"]) == 0, name
        assert spy.calls[-1] == {"out": str(out), "progress": False, **want}, name
        args = {k: (str(v) if isinstance(v, Path) else v) for k, v in want.items()}
        for spelling in (name, name.replace("-", "_")):
            assert prepare_sources([{"pipeline": spelling, "args": args, "store": str(out)}],
                                   log=lambda *_: None) == [str(out)]
            assert spy.calls[-1] == {"out": str(out), "progress": False, **want}, spelling


def test_a_row_added_at_run_time_is_a_subcommand_and_a_config_pipeline(tmp_path, capsys,
                                                                        monkeypatch, clean_env):
    """One new row, nothing else: the command line, config pipelines, the error lists and
    the data-folder rules all know it."""
    spy = Spy()
    row = S.Source("toy-set", spy, help="a toy data set for this test",
                   options=(S.Option(("--level",), "how much", cli={"type": int}),
                            S.Option(("--names",), "comma-separated", kwarg="labels",
                                     convert=lambda v: v.split(","))),
                   groups=("eeg", "run"), data_dir="data_dir", folder="toy-folder",
                   marker="ready.txt")
    monkeypatch.setitem(S.SOURCES, "toy-set", row)
    assert main(["preprocess"]) == 2
    assert "toy-set" in capsys.readouterr().out and "toy-set" in pipeline_names()
    data = tmp_path / "mine"
    assert main(["preprocess", "toy-set", "--data-dir", str(data), "--level", "3", "--names",
                 "a,b", "--l-freq", "1", "--out", str(tmp_path / "o")]) == 0
    assert spy.calls[-1] == {"out": str(tmp_path / "o"), "data_dir": data, "level": 3,
                             "labels": ["a", "b"], "l_freq": 1.0}
    # a config source without args.data_dir: found under the experiment's data root
    root = tmp_path / "root"
    (root / "toy-folder").mkdir(parents=True)
    (root / "toy-folder" / "ready.txt").write_text("")
    src = {"pipeline": "toy_set", "args": {"level": 4}, "store": str(tmp_path / "s")}
    assert prepare_sources([src], log=lambda *_: None, data_dir=str(root)) == [str(tmp_path / "s")]
    assert spy.calls[-1] == {"out": str(tmp_path / "s"), "progress": False, "level": 4,
                             "data_dir": root / "toy-folder"}
    # ... or under NEUROCONV_DATA, on the command line as in a config
    monkeypatch.setenv("NEUROCONV_DATA", str(root))
    assert main(["preprocess", "toy-set", "--out", str(tmp_path / "o2")]) == 0
    assert spy.calls[-1]["data_dir"] == root / "toy-folder"
    # nowhere: the error names the places and the ways to point at the data
    monkeypatch.delenv("NEUROCONV_DATA")
    assert main(["preprocess", "toy-set", "--out", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err
    assert "toy-folder/ready.txt" in err and "--data-dir" in err and "NEUROCONV_DATA" in err
    assert str(clean_env / "neuroconv_data" / "toy-folder") in err
    with pytest.raises(S.DataNotFoundError, match="data.data_dir"):
        prepare_sources([src], log=lambda *_: None)
    # and the row is gone with the monkeypatch: the error lists the real names only
    monkeypatch.delitem(S.SOURCES, "toy-set")
    with pytest.raises(ValueError, match="unknown 'toy_set'; choose from eeg, eegbci"):
        prepare_sources([src], log=lambda *_: None)


def test_prepare_sources_errors_name_the_entry(tmp_path):
    with pytest.raises(ValueError, match=r"data.sources\[0\] \(fmri\) needs args.files"):
        prepare_sources([{"pipeline": "fmri", "args": {}, "store": str(tmp_path / "s")}])
    with pytest.raises(ValueError, match="unknown 'nope'; choose from .*moabb.*simulate-eeg"):
        prepare_sources([{"pipeline": "nope", "store": str(tmp_path / "s")}])


# ------------------------------------------------------------------ data folders
def _abide(nl: Path, real: Path) -> Path:
    """A nilearn data folder holding (a link to) the real ABIDE_pcp."""
    nl.mkdir(parents=True, exist_ok=True)
    (nl / "ABIDE_pcp").symlink_to(real / "nilearn_data" / "ABIDE_pcp")
    return nl


def test_abide_is_found_where_nilearn_finds_it(shared_data, tmp_path, monkeypatch, clean_env):
    """With no folder given, ABIDE is looked for in nilearn's data folders, in nilearn's
    order; nilearn's own fetcher (offline) reads it from the same place."""
    from nilearn.datasets import fetch_abide_pcp, get_data_dirs

    empty, holding = tmp_path / "shared_nl", _abide(tmp_path / "user_nl", shared_data)
    empty.mkdir()
    monkeypatch.setenv("NILEARN_SHARED_DATA", str(empty))
    monkeypatch.setenv("NILEARN_DATA", str(holding))
    assert [p for _, p in S.nilearn_places()] == [Path(p) for p in get_data_dirs()]
    assert S.resolve_data_dir("abide") == holding
    got = fetch_abide_pcp(derivatives=["rois_cc200"], band_pass_filtering=True,
                          global_signal_regression=False, quality_checked=False,
                          SITE_ID=["OHSU"], verbose=0)           # holding is the only place
    assert len(got.rois_cc200) == 26
    # nilearn's default, ~/nilearn_data
    monkeypatch.delenv("NILEARN_SHARED_DATA")
    monkeypatch.delenv("NILEARN_DATA")
    home_nl = _abide(clean_env / "nilearn_data", shared_data)
    assert S.resolve_data_dir("abide") == home_nl
    # NEUROCONV_DATA comes first when it holds the data, and is passed over when not
    root = tmp_path / "root"
    _abide(root / "nilearn_data", shared_data)
    monkeypatch.setenv("NEUROCONV_DATA", str(root))
    assert S.resolve_data_dir("abide") == root / "nilearn_data"
    monkeypatch.setenv("NEUROCONV_DATA", str(tmp_path / "elsewhere"))
    assert S.resolve_data_dir("abide") == home_nl
    # an explicit folder wins over everything and is used as given; a root must hold it
    assert S.resolve_data_dir("abide", "~/x", root=root) == clean_env / "x"
    assert S.resolve_data_dir("abide", root=root) == root / "nilearn_data"
    with pytest.raises(S.DataNotFoundError, match="nilearn_data/ABIDE_pcp is not there"):
        S.resolve_data_dir("abide", root=tmp_path / "elsewhere")


def test_eegbci_is_found_where_mne_keeps_it(shared_data, tmp_path, monkeypatch, clean_env):
    """MNE's rules (mne.datasets.eegbci.load_data): MNE_DATASETS_EEGBCI_PATH, else
    MNE_DATA, else ~/mne_data, with MNE-eegbci-data under it; load_data (offline, the
    files are there) returns files in the folder resolved."""
    from mne.datasets import eegbci

    from neuroconv.pipelines.eeg import eegbci_path

    def holder(d: Path) -> Path:
        (d / EEGBCI_S001).mkdir(parents=True)
        shutil.copy(shared_data / EEGBCI_S001 / "S001R04.edf", d / EEGBCI_S001)
        return d

    a, b = holder(tmp_path / "eegbci_path"), holder(tmp_path / "mne_data_var")
    monkeypatch.setenv("MNE_DATA", str(b))
    monkeypatch.setenv("MNE_DATASETS_EEGBCI_PATH", str(a))
    for expect in (a, b):
        got = S.resolve_data_dir("eegbci")
        assert got == expect / "MNE-eegbci-data"
        mne_files = eegbci.load_data(1, [4], update_path=False)
        assert [eegbci_path(got, 1, 4)] == [Path(p) for p in mne_files]
        monkeypatch.delenv("MNE_DATASETS_EEGBCI_PATH", raising=False)
    monkeypatch.delenv("MNE_DATA")
    home = holder(clean_env / "mne_data")
    assert S.resolve_data_dir("eegbci") == home / "MNE-eegbci-data"
    assert [eegbci_path(S.resolve_data_dir("eegbci"), 1, 4)] == [
        Path(p) for p in eegbci.load_data(1, [4], update_path=False)]
    # a shared data root: ROOT/MNE-eegbci-data
    assert S.resolve_data_dir("eegbci", root=shared_data) == shared_data / "MNE-eegbci-data"


def test_mne_places_follow_mne(tmp_path, monkeypatch, clean_env):
    """mne_places is MNE's own rule (mne.datasets.utils._get_path), for the sleep
    data set's key as for EEGBCI's."""
    sleep_utils = pytest.importorskip("mne.datasets.sleep_physionet._utils")
    (tmp_path / "m").mkdir()
    (tmp_path / "s").mkdir()
    for env in ({}, {"MNE_DATA": tmp_path / "m"},
                {"MNE_DATA": tmp_path / "m", "PHYSIONET_SLEEP_PATH": tmp_path / "s"}):
        for k, v in env.items():
            monkeypatch.setenv(k, str(v))
        (clean_env / "mne_data").mkdir(exist_ok=True)     # MNE would create it
        [(_, ours)] = S.mne_sleep_physionet_places()
        assert ours == Path(sleep_utils._data_path()), env


def test_rows_are_checked_when_made():
    with pytest.raises(ValueError, match="dashes"):
        S.Source("my_set", "m:f", help="x")
    with pytest.raises(ValueError, match="unknown \\['eegg'\\]"):
        S.Source("my-set", "m:f", help="x", groups=("eegg",))
    with pytest.raises(ValueError, match="no folder"):
        S.Source("my-set", "m:f", help="x", data_dir="data_dir")


def test_nothing_found_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch, clean_env):
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path / "nl"))
    with pytest.raises(S.DataNotFoundError) as e:
        S.resolve_data_dir("abide")
    msg = str(e.value)
    for place in ("NEUROCONV_DATA is not set", str(tmp_path / "nl"),
                  str(clean_env / "nilearn_data"), "--data-dir DIR (neuroconv preprocess abide)",
                  "args.data_dir", "data.data_dir", "NEUROCONV_DATA environment variable"):
        assert place in msg, place
    # eeg-notebooks has no library of its own: NEUROCONV_DATA, else ~/neuroconv_data
    with pytest.raises(S.DataNotFoundError, match="neuroconv_data/eeg-notebooks"):
        S.resolve_data_dir("eeg-notebooks")
    (clean_env / "neuroconv_data" / "eeg-notebooks").mkdir(parents=True)
    assert S.resolve_data_dir("eeg_notebooks") == clean_env / "neuroconv_data" / "eeg-notebooks"
    # a reader that downloads: the library's place, which need not exist yet
    assert S.resolve_data_dir("eegbci", must_exist=False) == clean_env / "mne_data" / "MNE-eegbci-data"
    with pytest.raises(ValueError, match="no data folder"):
        S.resolve_data_dir("fmri")
    # the command line: a clear error, exit 2
    assert main(["preprocess", "abide", "--out", str(tmp_path / "st")]) == 2


def test_shipped_configs_find_their_data_under_the_data_root(shared_data):
    """Every real-data source of the shipped configs names no folder of its own: under
    data.data_dir (the layout of the shared data folder) each reader finds its files."""
    from neuroconv.brain.config import builtin_configs, load_config
    from neuroconv.pipelines.abide import find_abide_root
    from neuroconv.pipelines.eeg import eegbci_path
    from neuroconv.pipelines.dreams import scan_dreams
    from neuroconv.pipelines.eeg_notebooks import experiment_files
    from neuroconv.pipelines.sleep_edf import scan_sleep_edf

    seen = set()
    for name in builtin_configs():
        cfg = load_config(name, {"data.data_dir": str(shared_data)})
        assert cfg.data.data_dir == str(shared_data)
        for src in cfg.data.sources:
            row = S.get_source(src.pipeline)
            if not row.data_dir:
                continue
            assert "data_dir" not in src.args, (name, "a shipped config hard-codes its data")
            d = S.resolve_data_dir(row, None, cfg.data.data_dir)
            seen.add(row.name)
            if row.name == "abide":
                assert find_abide_root(d) == shared_data / "nilearn_data" / "ABIDE_pcp"
            elif row.name == "eegbci":
                assert all(eegbci_path(d, 1, r) is not None for r in src.args["runs"])
            elif row.name == "dreams":
                excerpts, _ = scan_dreams(d)
                assert excerpts, name
            elif row.name == "sleep-edf":
                assert scan_sleep_edf(d), name
            else:
                assert experiment_files(d, src.args["experiment"]), name
    assert seen == {"abide", "eegbci", "eeg-notebooks", "dreams", "sleep-edf"}


def test_a_shipped_config_runs_on_the_data_root(shared_data, tmp_path, clean_env):
    """muse_p300's source with data.data_dir set (one subject, to keep it short) builds
    its store from the shared data; without a root it says where it looked."""
    from neuroconv.brain.config import load_config
    from neuroconv.data import SequenceStore

    cfg = load_config("muse_p300", {"data.data_dir": str(shared_data)})
    src = cfg.data.sources[0]
    src.args["subjects"] = [4]
    src.store = str(tmp_path / "p300")
    logs = []
    assert prepare_sources([src], log=logs.append, data_dir=cfg.data.data_dir) == [src.store]
    st = SequenceStore(src.store)
    assert len(st) == 1 and st.manifest.subject.tolist() == ["4"]
    assert "1 done" in logs[0] and not any("warning" in m for m in logs)
    with pytest.raises(FileNotFoundError, match="no eeg-notebooks data found"):
        prepare_sources([src], log=logs.append)


# --------------------------------------------------------------- command line
def test_abide_site_tr_and_its_old_spelling(tmp_path, capsys, monkeypatch):
    spy = Spy()
    monkeypatch.setitem(S.SOURCES, "abide", dataclasses.replace(S.SOURCES["abide"], reader=spy))
    common = ["--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main(["preprocess", "abide", "--site-tr", "nyu=2.0,SBL=2.2", *common]) == 0
    assert spy.calls[-1]["tr"] == {"NYU": 2.0, "SBL": 2.2}
    assert "deprecated" not in capsys.readouterr().err
    assert main(["preprocess", "abide", "--tr", "nyu=2.0,SBL=2.2", *common]) == 0
    assert spy.calls[-1]["tr"] == {"NYU": 2.0, "SBL": 2.2}
    assert "--tr is deprecated and will be removed; use --site-tr" in capsys.readouterr().err
    # --t-r (one TR for a whole fMRI run) is not an option of abide: TRs are per site
    with pytest.raises(SystemExit) as e:
        main(["preprocess", "abide", "--t-r", "2", *common])
    assert e.value.code == 2 and "--site-tr SITE=SECONDS" in capsys.readouterr().err
    assert main(["preprocess", "abide", "--site-tr", "NYU", *common]) == 2
    assert "--site-tr: expected SITE=SECONDS" in capsys.readouterr().err
    assert len(spy.calls) == 2


def test_flags_are_spelled_with_dashes(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["preprocess", "eeg", "x.edf", "--l_freq", "1", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "spelled with dashes: --l-freq" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["preprocess", "eegbci", "--data_dir=x", "--out", str(tmp_path)])
    assert "--data-dir" in capsys.readouterr().err


def test_simulated_sources_from_the_command_line(tmp_path):
    """simulate-eeg writes its raw files once, reuses them, and its store equals
    preprocess_eeg on those files."""
    from neuroconv.data import SequenceStore
    from neuroconv.pipelines import preprocess_eeg

    argv = ["preprocess", "simulate-eeg", "--simulate", "n_subjects=2,duration=12,sfreq=100",
            "--out", str(tmp_path / "sim"), "--no-progress", "--l-freq", "1"]
    assert main(argv) == 0
    raw = tmp_path / "sim_raw"
    record = json.loads((raw / "simulation.json").read_text())
    assert record["params"] == {"n_subjects": 2, "duration": 12, "sfreq": 100}
    files = sorted(raw.glob("*.fif"))
    assert len(files) == 2
    stamp = [f.stat().st_mtime_ns for f in files]
    assert main(argv[:-3] + ["--out", str(tmp_path / "sim2"), "--raw-dir", str(raw),
                             "--no-progress", "--l-freq", "1"]) == 0
    assert [f.stat().st_mtime_ns for f in files] == stamp       # reused, not rewritten
    assert preprocess_eeg([str(f) for f in files], tmp_path / "direct", l_freq=1.0,
                          progress=False).ok
    a, b = SequenceStore(tmp_path / "sim"), SequenceStore(tmp_path / "direct")
    assert list(a.ids) == list(b.ids)
    for rid in a.ids:
        assert (a.load(rid) == b.load(rid)).all()
