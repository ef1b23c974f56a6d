"""Preprocessing on a Dask cluster (``--dask``), on the real EEGBCI and ABIDE files.

One 2-worker ``LocalCluster`` (processes, one thread each) serves the module. A store
made on it must equal, byte for byte in its arrays, the store of a ``--jobs 1`` run; a
worker killed in the middle of a recording loses nothing; a bad file is reported and the
others go on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from pathlib import Path

import dask
import pytest
from distributed import LocalCluster

import neuroconv.pipelines.eeg as eeg_module
from neuroconv.cli import main
from neuroconv.data import SequenceStore
from neuroconv.pipelines import preprocess_eegbci, use_dask

EEGBCI = "MNE-eegbci-data/files/eegmmidb/1.0.0/S001"
PCP = "nilearn_data/ABIDE_pcp"
ABIDE = ["NYU_0050952", "NYU_0051120", "Pitt_0050003", "UCLA_1_0051201"]


@pytest.fixture(scope="module")
def cluster():
    """2 worker processes of one thread; a task may meet one worker death and run again
    (allowed-failures 1), and each worker holds one task at a time (saturation 1.0)."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": 1.0}):
        lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address="127.0.0.1:0")
    yield lc.scheduler_address
    lc.close()


@pytest.fixture
def eegbci_dir(shared_data, tmp_path):
    """Runs 3-6, 8 and 9 of S001, and run 7 cut short (a bad file)."""
    d = tmp_path / "bci" / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001"
    d.mkdir(parents=True)
    for r in (3, 4, 5, 6, 8, 9):
        shutil.copy(shared_data / EEGBCI / f"S001R{r:02d}.edf", d)
    data = (shared_data / EEGBCI / "S001R07.edf").read_bytes()
    (d / "S001R07.edf").write_bytes(data[:len(data) // 3])
    return tmp_path / "bci"


def assert_same_store(a: Path, b: Path) -> None:
    """Arrays identical byte for byte; manifest, events, records and meta equal but for
    the times they were written."""
    ids = sorted(p.stem for p in (a / "data").glob("*.npy"))
    assert ids == sorted(p.stem for p in (b / "data").glob("*.npy")) and ids
    for rid in ids:
        assert (a / "data" / f"{rid}.npy").read_bytes() == (b / "data" / f"{rid}.npy").read_bytes()
        ra, rb = (json.loads((s / "records" / f"{rid}.json").read_text()) for s in (a, b))
        ra.pop("written"), rb.pop("written")
        assert ra == rb, rid
    for name in ("manifest.csv", "events.csv"):
        assert (a / name).read_text() == (b / name).read_text(), name
    ma, mb = (json.loads((s / "meta.json").read_text()) for s in (a, b))
    for m in (ma, mb):
        m.pop("created"), m.pop("updated")
    assert ma == mb


def _cli(pipeline, args, out, *extra, summary):
    return main(["preprocess", pipeline, *args, "--out", str(out), "--no-progress",
                 "--summary-json", str(summary), *extra])


def test_store_equals_jobs1_and_bad_files_fail_alone(cluster, eegbci_dir, shared_data,
                                                     tmp_path):
    args = ["--data-dir", str(eegbci_dir), "--subjects", "1", "--runs", "3-7"]
    s1, sd = tmp_path / "one.json", tmp_path / "dask.json"
    assert _cli("eegbci", args, tmp_path / "one", summary=s1) == 1
    assert _cli("eegbci", args, tmp_path / "dask", "--dask", cluster, summary=sd) == 1
    one, dsk = json.loads(s1.read_text()), json.loads(sd.read_text())
    assert [o["id"] for o in dsk["done"]] == [f"S001R0{r}" for r in (3, 4, 5, 6)]
    (failed,) = dsk["failed"]
    assert failed["id"] == "S001R07" and "truncated" in failed["reason"]
    assert failed["reason"] == one["failed"][0]["reason"]
    assert_same_store(tmp_path / "one", tmp_path / "dask")
    # ABIDE (nilearn.signal.clean), with a malformed file among them
    src = shared_data / PCP
    d = tmp_path / "nilearn_data" / "ABIDE_pcp"
    (d / "cpac" / "filt_noglobal").mkdir(parents=True)
    shutil.copy(src / "Phenotypic_V1_0b_preprocessed1.csv", d)
    for f in ABIDE:
        shutil.copy(src / "cpac" / "filt_noglobal" / f"{f}_rois_cc200.1D",
                    d / "cpac" / "filt_noglobal")
    lines = (d / "cpac" / "filt_noglobal" / f"{ABIDE[0]}_rois_cc200.1D").read_text().splitlines()
    (d / "cpac" / "filt_noglobal" / "NYU_0099991_rois_cc200.1D").write_text(
        "\n".join(lines[:5] + [lines[5][:40]]))
    args = ["--data-dir", str(tmp_path / "nilearn_data")]
    assert _cli("abide", args, tmp_path / "a1", summary=s1) == 1
    assert _cli("abide", args, tmp_path / "ad", "--dask", cluster, summary=sd) == 1
    dsk = json.loads(sd.read_text())
    assert sorted(o["id"] for o in dsk["done"]) == sorted(ABIDE)
    assert [o["id"] for o in dsk["failed"]] == ["NYU_0099991"]
    assert "malformed" in dsk["failed"][0]["reason"]
    assert_same_store(tmp_path / "a1", tmp_path / "ad")


def test_killed_worker_loses_nothing(cluster, eegbci_dir, tmp_path, monkeypatch):
    """Run 4 kills its worker once, mid-recording: it runs again on a new worker. Run 5
    kills every worker that runs it: reported failed, the others go on; a rerun without
    the fault does run 5 and skips the rest. (Six recordings on two one-thread workers:
    Dask queues them and hands each worker one at a time, so a death counts against the
    recording that caused it only.)"""
    real = eeg_module.process_raw
    flag = tmp_path / "run4_died_once"

    def dying(**kw):               # a local function: pickled by value onto the workers
        if kw["path"].endswith("R05.edf"):
            os.kill(os.getpid(), signal.SIGKILL)
        if kw["path"].endswith("R04.edf") and not flag.exists():
            flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(**kw)

    runs = "3-6,8,9"
    one = preprocess_eegbci(eegbci_dir, tmp_path / "one", runs=runs, progress=False)
    assert one.ok, str(one)
    monkeypatch.setattr(eeg_module, "process_raw", dying)
    with use_dask(cluster):
        s = preprocess_eegbci(eegbci_dir, tmp_path / "dask", runs=runs, progress=True)
    assert [o.id for o in s.done] == ["S001R03", "S001R04", "S001R06", "S001R08",
                                      "S001R09"] and flag.exists()
    (failed,) = s.failed
    assert failed.id == "S001R05" and "workers running it died 2 times" in failed.reason
    assert s.exit_code == 1
    monkeypatch.setattr(eeg_module, "process_raw", real)
    with use_dask(cluster):
        s = preprocess_eegbci(eegbci_dir, tmp_path / "dask", runs=runs, progress=False)
    assert s.ok and [o.id for o in s.done] == ["S001R05"] and len(s.skipped) == 5
    assert_same_store(tmp_path / "one", tmp_path / "dask")


def test_local_cluster_and_resume_across_executors(eegbci_dir, tmp_path, capsys):
    """``--dask local`` starts its own cluster (here of --jobs 2 workers); a store begun by
    --jobs 1 (an interrupted run: one shard of two) is finished on it, and equals a
    --jobs 1 store."""
    args = ["--data-dir", str(eegbci_dir), "--subjects", "1", "--runs", "3-6"]
    s = tmp_path / "s.json"
    assert _cli("eegbci", args, tmp_path / "one", summary=s) == 0
    assert _cli("eegbci", args, tmp_path / "mixed", "--shard", "0/2", summary=s) == 0
    assert _cli("eegbci", args, tmp_path / "mixed", "--dask", "local", "--jobs", "2",
                summary=s) == 0
    summ = json.loads(s.read_text())
    assert [o["id"] for o in summ["skipped"]] == ["S001R03", "S001R05"]
    assert [o["id"] for o in summ["done"]] == ["S001R04", "S001R06"]
    assert_same_store(tmp_path / "one", tmp_path / "mixed")
    # --jobs beside a cluster's address is refused: the cluster has its own workers
    assert _cli("eegbci", args, tmp_path / "x", "--dask", "tcp://127.0.0.1:1", "--jobs", "2",
                summary=s) == 2
    assert "--jobs 2 sets the workers of --dask local" in capsys.readouterr().err
    assert len(SequenceStore(tmp_path / "mixed")) == 4


def test_without_dask_the_error_says_how_to_install(eegbci_dir, tmp_path, capsys,
                                                    monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'neuroconv\[dask\]'"):
        with use_dask("local"):
            pass
    rc = main(["preprocess", "eegbci", "--data-dir", str(eegbci_dir), "--runs", "3",
               "--out", str(tmp_path / "st"), "--dask", "local"])
    err = capsys.readouterr().err
    assert rc == 2 and "--dask" in err and "pip install 'neuroconv[dask]'" in err


def test_bad_dask_arguments(cluster):
    with pytest.raises(ValueError, match="dask must be 'local', a scheduler address"):
        with use_dask(3):
            pass
    with pytest.raises(ValueError, match="n_workers must be a positive integer"):
        with use_dask("local", n_workers=0):
            pass


def test_relative_inputs_refused_when_workers_run_elsewhere(cluster, eegbci_dir, tmp_path,
                                                            monkeypatch):
    """Workers that started in another folder would read other files: a clear error."""
    from distributed import Client

    monkeypatch.chdir(eegbci_dir)                  # the workers run in the test's folder
    with Client(cluster, set_as_default=False) as c:
        assert set(c.run(os.getcwd).values()) != {str(eegbci_dir)}
    with use_dask(cluster), pytest.raises(ValueError, match="relative input paths"):
        preprocess_eegbci(".", tmp_path / "st", runs="3", progress=False)
    with use_dask(cluster):                        # an absolute path is fine
        assert preprocess_eegbci(eegbci_dir, tmp_path / "st", runs="3", progress=False).ok


def test_network_guard_still_blocks_other_hosts():
    with pytest.raises(RuntimeError, match="network access attempted"):
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)   # TEST-NET-1
    s = socket.socket()
    try:
        with pytest.raises(RuntimeError, match="network access attempted"):
            s.connect(("192.0.2.1", 80))
    finally:
        s.close()
