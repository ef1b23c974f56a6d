"""The DREAMS Sleep Spindles reader: the real excerpts of ../shared/data, and small files
written here for the rate rule, the EDF path and every per-file error."""

from __future__ import annotations

import json
import shutil

import mne
import numpy as np
import pytest

from neuroconv.cli import main
from neuroconv.data import SequenceStore
from neuroconv.pipelines import preprocess_dreams
from neuroconv.pipelines.dreams import excerpt_rate

DREAMS = "dreams-spindles"
STAGE = {5: "W", 4: "R", 3: "N1", 2: "N2", 1: "N3", 0: "N3"}
HEAD = {"expert1": ("Visual_scoring1", "vis1_Spindles"),
        "expert2": ("Visual_scoring2", "vis2_Spindles"),
        "automatic": ("Automatic_detection", "Spindles")}


# ------------------------------------------------------------------ small files
def write_excerpt(d, n, rate=2, deriv="C3-A1", extra=0, seed=None):
    """30 minutes of noise at ``rate`` Hz (+ ``extra`` samples), 4 decimals, as the
    database writes them; returns the values."""
    rng = np.random.default_rng(n if seed is None else seed)
    x = np.round(rng.normal(0, 20, rate * 1800 + extra), 4)
    (d / f"excerpt{n}.txt").write_text(f"[{deriv}]\n" + "\n".join(f"{v:10.4f}" for v in x)
                                       + "\n")
    return x


def write_scoring(d, who, n, rows, deriv="C3-A1"):
    prefix, head = HEAD[who]
    (d / f"{prefix}_excerpt{n}.txt").write_text(
        f"[{head}/{deriv}]\n" + "".join(f"{a:10.4f}\t{b:10.4f}\n" for a, b in rows))


def write_hypnogram(d, n, codes):
    (d / f"Hypnogram_excerpt{n}.txt").write_text("[Hypnogram]\n" + "\n".join(map(str, codes))
                                                 + "\n")


SPINDLES = [(300.5, 0.75), (301.9, 1.0), (1200.0, 0.5)]
CODES = [5] * 40 + [3] * 20 + [2] * 200 + [-1] * 4 + [1] * 60 + [0] * 20 + [4] * 16


def write_full(d, n, rate=2, deriv="C3-A1", experts=("expert1", "expert2", "automatic"),
               spindles=SPINDLES, codes=CODES, **kw):
    x = write_excerpt(d, n, rate, deriv, **kw)
    for who in experts:
        write_scoring(d, who, n, spindles, deriv)
    write_hypnogram(d, n, codes)
    return x


def edf_signal_field(path, index: int, field: str):
    """One field of one signal's EDF header, read from the bytes (independently of the
    reader): label, dimension, physical/digital min/max."""
    widths = {"label": 16, "transducer": 80, "dimension": 8, "physical_min": 8,
              "physical_max": 8, "digital_min": 8, "digital_max": 8}
    raw = open(path, "rb").read(256 * 300)
    ns = int(raw[252:256])
    pos = 256
    for name, w in widths.items():
        if name == field:
            text = raw[pos + index * w:pos + (index + 1) * w].decode("latin-1").strip()
            return text if name in ("label", "transducer", "dimension") else float(text)
        pos += ns * w
    raise KeyError(field)


# ----------------------------------------------------------------- real excerpts
def test_shared_excerpts_match_independent_reads(shared_data, tmp_path):
    src = shared_data / DREAMS
    s = preprocess_dreams(shared_data, tmp_path / "st", progress=False)
    assert s.ok and len(s.done) == 6, str(s)
    st = SequenceStore(tmp_path / "st")
    man = st.manifest.set_index("id")
    assert list(man.index) == [f"excerpt{n}" for n in (1, 2, 3, 5, 6, 8)]
    assert st.meta["channels"] == ["EEG"] and st.meta["channel_units"] == ["uV"]
    for n in (1, 2, 3, 5, 6, 8):
        rid = f"excerpt{n}"
        row = man.loc[rid]
        lines = (src / f"excerpt{n}.txt").read_text().splitlines()
        n_samples = len(lines) - 1
        assert row.derivation == lines[0].strip("[]") == st.meta["details"][rid]["derivation"]
        assert (row.subject, row.dataset, row.task, row.modality) == (
            rid, "dreams-spindles", "sleep", "eeg")
        assert row.n_times == n_samples and row.sfreq == round(n_samples / 1800)
        assert row.extra_samples == n_samples - row.sfreq * 1800
        assert row.scorers == ("expert1,expert2" if n <= 6 else "expert1")
        assert row.source_format == ("edf" if n == 3 else "txt")
        # events against the scoring files and the hypnogram, read with numpy
        ev = st.events[st.events.id == rid]
        for who, (prefix, _) in HEAD.items():
            f = src / f"{prefix}_excerpt{n}.txt"
            got = ev[ev.label == f"spindle:{who}"].sort_values("onset")
            if not f.is_file():
                assert len(got) == 0 and np.isnan(row[f"n_spindles_{who}"])
                continue
            ref = np.loadtxt(f, skiprows=1, ndmin=2)
            ref = ref[np.argsort(ref[:, 0], kind="stable")]
            np.testing.assert_array_equal(got.onset, np.round(ref[:, 0] * row.sfreq))
            np.testing.assert_array_equal(got.onset + got.duration,
                                          np.round((ref[:, 0] + ref[:, 1]) * row.sfreq))
        codes = np.loadtxt(src / f"Hypnogram_excerpt{n}.txt", skiprows=1).astype(int)
        stages = ev[ev.label.str.startswith("stage:")].sort_values("onset")
        epoch = 5 * int(row.sfreq)
        np.testing.assert_array_equal(stages.onset, np.flatnonzero(codes >= 0) * epoch)
        assert (stages.duration == epoch).all()
        assert list(stages.label) == [f"stage:{STAGE[c]}" for c in codes[codes >= 0]]
    # the text excerpts are stored as written (float32 of the decimal text)
    for n in (1, 6):
        ref = np.loadtxt(src / f"excerpt{n}.txt", skiprows=1)
        np.testing.assert_array_equal(st.load(f"excerpt{n}")[:, 0], ref.astype(np.float32))
    # resume: nothing to do
    again = preprocess_dreams(shared_data / DREAMS, tmp_path / "st", progress=False)
    assert len(again.skipped) == 6 and not again.done and again.ok


def test_edf_equals_mne_and_its_text_twin(shared_data, tmp_path):
    """excerpt3.edf, read through MNE, gives the text twin's signal to the EDF's
    quantisation; read alone (no text file) it gives the same store."""
    src = shared_data / DREAMS
    edf = src / "excerpt3.edf"
    raw = mne.io.read_raw_edf(edf, preload=True, verbose="error")
    i = raw.ch_names.index("C3-A1")
    assert edf_signal_field(edf, i, "label") == "C3-A1"
    # 'UV' is not a unit MNE scales, so MNE gives the physical values (µV) as they are
    assert edf_signal_field(edf, i, "dimension") == "UV"
    mne_uv = raw.get_data(picks=["C3-A1"])[0]
    step = ((edf_signal_field(edf, i, "physical_max") - edf_signal_field(edf, i, "physical_min"))
            / (edf_signal_field(edf, i, "digital_max") - edf_signal_field(edf, i, "digital_min")))
    text = np.loadtxt(src / "excerpt3.txt", skiprows=1)
    d = tmp_path / "edf_only"
    d.mkdir()
    shutil.copy(edf, d)
    for f in src.glob("*_excerpt3.txt"):
        shutil.copy(f, d)
    for folder, name in ((src, "both"), (d, "alone")):
        s = preprocess_dreams(folder, tmp_path / name, excerpts=3, progress=False)
        assert s.ok and len(s.done) == 1, str(s)
        st = SequenceStore(tmp_path / name)
        x = st.load("excerpt3")[:, 0]
        np.testing.assert_array_equal(x, mne_uv.astype(np.float32))
        # one EDF step (a rounding writer: half) + half the text's 4th decimal; float32
        bound = step + 0.5e-4 + np.finfo(np.float32).eps * np.abs(text)
        assert (np.abs(x - text) <= bound).all()
        row = st.manifest.iloc[0]
        assert (row.sfreq, row.derivation, row.source_format) == (50.0, "C3-A1", "edf")
    check = json.loads((tmp_path / "both" / "meta.json").read_text())["details"]["excerpt3"]
    assert check["twin_check"]["max_abs_diff_uv"] <= check["twin_check"]["bound_uv"]


# ----------------------------------------------------------------- written files
def test_rate_rule():
    assert excerpt_rate(360140, "x") == 200               # excerpt 6: 0.7 s extra
    assert excerpt_rate(90000, "x") == 50
    assert excerpt_rate(360000 + 200, "x") == 200          # 1 s: the tolerance
    for n in (360000 + 201, 359000, 500, 0):
        with pytest.raises(ValueError, match="no whole sampling rate"):
            excerpt_rate(n, "x")


def test_edf_in_microvolts_and_twin_mismatch(tmp_path):
    """An EDF in 'uV' (MNE scales it to volts) holding two channels: the central one is
    taken without any file naming it; a text twin that is another signal is refused."""
    edfio = pytest.importorskip("edfio")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 30, 4 * 1800)
    sig = [edfio.EdfSignal(x, sampling_frequency=4, label="EEG Cz-A1", physical_dimension="uV",
                           physical_range=(-500, 500)),
           edfio.EdfSignal(-x, sampling_frequency=4, label="EOG1-A1", physical_dimension="uV",
                           physical_range=(-500, 500))]
    for name in ("ok", "bad"):
        (tmp_path / name).mkdir()
        edfio.Edf(sig).write(tmp_path / name / "excerpt4.edf")
        write_hypnogram(tmp_path / name, 4, CODES)
    mne_uv = mne.io.read_raw_edf(tmp_path / "ok" / "excerpt4.edf", verbose="error").get_data(
        picks=["EEG Cz-A1"])[0] * 1e6
    s = preprocess_dreams(tmp_path / "ok", tmp_path / "st", progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    np.testing.assert_array_equal(st.load("excerpt4")[:, 0], mne_uv.astype(np.float32))
    assert st.manifest.derivation[0] == "Cz-A1" and st.manifest.sfreq[0] == 4.0
    assert st.manifest.scorers.isna()[0] or st.manifest.scorers[0] == ""
    # a twin more than one EDF step (1000/65535 µV) + 0.5e-4 away is another recording
    (tmp_path / "bad" / "excerpt4.txt").write_text(
        "[CZ-A1]\n" + "\n".join(f"{v:.4f}" for v in mne_uv + 0.05) + "\n")
    s = preprocess_dreams(tmp_path / "bad", tmp_path / "st2", progress=False)
    assert len(s.failed) == 1 and "excerpt4.txt differs from it by up to 0.05" in \
        s.failed[0].reason
    (tmp_path / "bad" / "excerpt4.txt").write_text(
        "[CZ-A1]\n" + "\n".join(f"{v:.4f}" for v in mne_uv) + "\n")
    s = preprocess_dreams(tmp_path / "bad", tmp_path / "st3", progress=False)
    assert s.ok and SequenceStore(tmp_path / "st3").manifest.derivation[0] == "CZ-A1"


def test_bad_files_reported_others_stored(tmp_path, monkeypatch, capsys):
    d = tmp_path / "db"
    d.mkdir()
    good = write_full(d, 1)
    write_full(d, 2, spindles=SPINDLES + [(1799.5, 1.0)])           # ends after 1800 s
    write_full(d, 3, spindles=[(-0.2, 0.5)] + SPINDLES)             # starts before 0
    write_full(d, 4, codes=CODES[:-1])                              # 359 stages
    write_full(d, 5, extra=1000)                                    # 4600 samples: 2.6 Hz
    write_full(d, 6)
    lines = (d / "excerpt6.txt").read_text().splitlines()
    lines[50] = "  12.3.4"
    (d / "excerpt6.txt").write_text("\n".join(lines) + "\n")
    write_scoring(d, "expert1", 7, SPINDLES)                        # no signal file
    write_full(d, 8, experts=("expert1", "automatic"))              # no expert 2: fine
    write_full(d, 9, codes=CODES[:100] + [7] + CODES[101:])         # no such stage code
    write_full(d, 10)
    (d / "Automatic_detection_excerpt10.txt").write_text("[Spindles/C3-A1]\n 12.5 0.5\n"
                                                         " 40,25 0.75\n")
    s = preprocess_dreams(d, tmp_path / "st", progress=False)
    assert [o.id for o in s.done] == ["excerpt1", "excerpt8"]
    why = {o.id: o.reason for o in s.failed}
    assert sorted(why) == sorted(f"excerpt{n}" for n in (2, 3, 4, 5, 6, 7, 9, 10))
    assert "Visual_scoring1_excerpt2.txt" in why["excerpt2"] and "from 1799.5 s to 1800.5 s" \
        in why["excerpt2"]
    assert "from -0.2 s" in why["excerpt3"]
    assert "Hypnogram_excerpt4.txt: 359 stage codes" in why["excerpt4"] and "needs 360" \
        in why["excerpt4"]
    assert "excerpt5.txt: 4600 samples give no whole sampling rate" in why["excerpt5"]
    assert "excerpt6.txt: line 51 is '12.3.4'" in why["excerpt6"]
    assert "no signal file" in why["excerpt7"] and "Visual_scoring1_excerpt7.txt" in \
        why["excerpt7"]
    assert "Hypnogram_excerpt9.txt: line 102: stage code 7 is not one of" in why["excerpt9"]
    assert "Automatic_detection_excerpt10.txt: line 3 is '40,25 0.75'" in why["excerpt10"]
    st = SequenceStore(tmp_path / "st")
    np.testing.assert_array_equal(st.load("excerpt1")[:, 0], good.astype(np.float32))
    row = st.manifest.set_index("id").loc["excerpt8"]
    assert row.scorers == "expert1" and row.automatic_detection and row.hypnogram
    ev = st.events[st.events.id == "excerpt1"]
    assert sorted(set(ev.label)) == ["spindle:automatic", "spindle:expert1", "spindle:expert2",
                                     "stage:N1", "stage:N2", "stage:N3", "stage:R", "stage:W"]
    sp = ev[ev.label == "spindle:expert1"]
    start, dur = np.array(SPINDLES).T
    np.testing.assert_array_equal(sp.onset, np.round(start * 2))
    np.testing.assert_array_equal(sp.onset + sp.duration, np.round((start + dur) * 2))
    # the CLI: failures listed, exit status 1; a rerun skips the done ones
    monkeypatch.setenv("COLUMNS", "300")
    rc = main(["preprocess", "dreams", "--data-dir", str(d), "--out", str(tmp_path / "st"),
               "--no-progress", "--jobs", "2", "--summary-json", str(tmp_path / "s.json")])
    summary = json.loads((tmp_path / "s.json").read_text())
    assert rc == 1 and len(summary["skipped"]) == 2 and len(summary["failed"]) == 8
    assert "excerpt5.txt: 4600 samples" in capsys.readouterr().err


def test_resample_and_bandpass_through_mne(tmp_path):
    d = tmp_path / "db"
    d.mkdir()
    x = write_full(d, 1, rate=10)
    write_full(d, 2, rate=4, experts=("expert1",))
    s = preprocess_dreams(d, tmp_path / "st", resample=20, l_freq=0.5, progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    raw = mne.io.RawArray(x[None] * 1e-6, mne.create_info(["EEG"], 10.0, "eeg"), verbose="error")
    raw.filter(0.5, None, verbose="error").resample(20, verbose="error")
    ref = raw.get_data()[0] * 1e6
    np.testing.assert_allclose(st.load("excerpt1")[:, 0], ref, rtol=np.finfo(np.float32).eps,
                               atol=1e-9 * np.abs(ref).max())
    assert set(st.manifest.sfreq) == {20.0} and list(st.manifest.original_sfreq) == [10.0, 4.0]
    ev = st.events[(st.events.id == "excerpt2") & (st.events.label == "spindle:expert1")]
    assert list(ev.onset) == [6010, 6038, 24000]
    assert st.meta["resample"] == 20 and st.meta["steps"][2]["params"]["sfreq"] == 20
    # a low-pass at or above an excerpt's Nyquist frequency fails that excerpt only
    s = preprocess_dreams(d, tmp_path / "st2", h_freq=3.0, progress=False)
    assert [o.id for o in s.done] == ["excerpt1"] and "Nyquist" in s.failed[0].reason


def test_shards_and_dask(tmp_path):
    pytest.importorskip("distributed")
    from neuroconv.pipelines import use_dask

    d = tmp_path / "db"
    d.mkdir()
    for n in (1, 2, 3):
        write_full(d, n)
    a = preprocess_dreams(d, tmp_path / "sh", shard="0/2", progress=False)
    b = preprocess_dreams(d, tmp_path / "sh", shard="1/2", progress=False)
    assert sorted(o.id for o in a.done + b.done) == ["excerpt1", "excerpt2", "excerpt3"]
    with use_dask("local", n_workers=1):
        s = preprocess_dreams(d, tmp_path / "dk", progress=False)
    assert s.ok and len(s.done) == 3
    one, two = SequenceStore(tmp_path / "sh"), SequenceStore(tmp_path / "dk")
    for rid in one.ids:
        np.testing.assert_array_equal(one.load(rid), two.load(rid))
    assert one.events.drop(columns="id").equals(two.events.drop(columns="id"))


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["preprocess", "dreams", "--help"])
    assert e.value.code == 0 and "--data-dir" in capsys.readouterr().out
