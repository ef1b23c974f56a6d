"""EEG tables (CSV/TSV): real Muse files compared with MNE, and every messy case.

Real files come from ``../shared/data/eeg-notebooks`` (Muse 2016); the cases they do not
show (dropped samples, NaN rows, other devices' layouts, broken files) are small
synthetic tables written in ``tmp_path``.
"""

from __future__ import annotations

import warnings

import mne
import numpy as np
import pandas as pd
import pytest

from neuroconv.data import SequenceStore
from neuroconv.cli import main
from neuroconv.pipelines import InputError, RunWarning, preprocess_eeg, read_table
from neuroconv.pipelines.tabular import place_samples
from reference_budget import assert_matches_reference

NB = "eeg-notebooks/visual"
P300_UNIX = f"{NB}/P300/subject2/session1/data_2017-02-09-18.12.53.csv"   # Unix time, "Marker"
N170_JITTER = f"{NB}/N170/subject1/session1/data_2017-09-13-15.30.01.csv"  # device clock, jittery
MUSE = ["TP9", "AF7", "AF8", "TP10"]


def _mne_reference(csv, l_freq, h_freq):
    """The same file read with pandas and filtered with MNE directly (µV, float64)."""
    df = pd.read_csv(csv)
    info = mne.create_info(MUSE, 256.0, "eeg")
    raw = mne.io.RawArray(df[MUSE].to_numpy().T * 1e-6, info, verbose="error")
    raw.filter(l_freq, h_freq, verbose="error")
    return raw.get_data().T * 1e6, df


def _mne_events(df, marker):
    """Marker column -> events with mne.find_events on a stim channel."""
    info = mne.create_info(["STI"], 256.0, "stim")
    stim = mne.io.RawArray(df[[marker]].to_numpy().T.astype(float), info, verbose="error")
    return mne.find_events(stim, "STI", consecutive=True, initial_event=True, verbose="error")


@pytest.mark.parametrize("rel, marker, clock", [(P300_UNIX, "Marker", "unix"),
                                                 (N170_JITTER, "Marker0", "device")])
def test_real_muse_csv_matches_mne(shared_data, tmp_path, rel, marker, clock):
    csv = shared_data / rel
    s = preprocess_eeg([str(csv)], tmp_path / "st", l_freq=1.0, h_freq=30.0, reference=None,
                       event_map={1: "a", 2: "b"}, progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    rid = st.ids[0]
    ref, df = _mne_reference(csv, 1.0, 30.0)
    x = st.load(rid)
    assert st.channels(rid) == MUSE and x.shape == ref.shape == (len(df), 4)
    assert_matches_reference(x, ref)
    ev = st.events[st.events.id == rid]
    mev = _mne_events(df, marker)
    np.testing.assert_array_equal(ev.onset.to_numpy(), mev[:, 0])
    assert list(ev.annotation.astype(str)) == [str(c) for c in mev[:, 2]]
    assert list(ev.label) == [{1: "a", 2: "b"}[c] for c in mev[:, 2]]
    d = st.meta["details"][rid]["table"]
    assert d["clock"] == clock and d["marker_columns"] == [marker]
    assert d["ignored_columns"] == ["Right AUX"] and d["unit"] == "uV"
    assert d["timing"]["method"] == "rows" and d["filled_samples"] == 0
    man = st.manifest.iloc[0]
    assert man.sfreq == 256.0       # subject and session from the subjectN/sessionM folders
    assert (man.subject, man.session) == (rel.split("subject")[1][0], "1")
    if clock == "device":  # the 2017 N170 file: per-packet jitter, timestamps go backwards
        assert d["timing"]["jitter_ms"] > 15 and d["timing"]["n_backward"] > 0
        assert d["timing"]["timing_error_ms"] < 20


def test_real_muse_unfiltered_is_the_csv_in_uV(shared_data, tmp_path):
    """No steps at all: the stored array is the CSV's channel values (µV) in float32."""
    csv = shared_data / P300_UNIX
    s = preprocess_eeg([str(csv)], tmp_path / "st", reference=None, progress=False)
    assert s.ok, str(s)
    st = SequenceStore(tmp_path / "st")
    assert_matches_reference(st.load(st.ids[0]), pd.read_csv(csv)[MUSE].to_numpy())
    assert set(st.events.label) == {"1", "2"}            # no event_map: the codes
    # the generic default (average reference) over 4 channels earns one warning for the
    # run, not one about the file
    with pytest.warns(RunWarning, match="average reference over only 4"):
        s2 = preprocess_eeg([str(csv)], tmp_path / "st2", progress=False)
    assert not any("average reference" in w for w in s2.done[0].warnings)
    assert len(s2.run_warnings) == 1 and s2.run_warnings[0].endswith("(1 of 1 recording)")


# ------------------------------------------------------------------ synthetic tables
def _table(n=2560, sf=256.0, t0=1000.0, seed=0, markers=None):
    """A Muse-like table: timestamps, 4 channels (µV), Right AUX, Marker0."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"timestamps": t0 + np.arange(n) / sf})
    for c in MUSE:
        df[c] = np.round(rng.normal(0, 20, n), 3)
    df["Right AUX"] = 0.0
    m = np.zeros(n, dtype=int)
    for r, code in (markers or {r: 1 + (i % 2) for i, r in enumerate(range(100, n, 128))}).items():
        m[r] = code
    df["Marker0"] = m
    return df


def test_average_reference_of_few_channels_warns_once_unless_asked_for(tmp_path, capsys):
    """The pipeline's own default reference (average) over 4 channels: one warning for
    the whole run, counting the recordings; asked for explicitly: a warning per file
    that names it; the Muse's own reference (none): no warning at all."""
    d = tmp_path / "tables"
    for sub in (1, 2, 3):
        (d / f"subject{sub}").mkdir(parents=True)
        _table(seed=sub).to_csv(d / f"subject{sub}" / "rec.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = preprocess_eeg([str(d)], tmp_path / "default", progress=False)
    assert s.ok and len(s.done) == 3
    ours = [w for w in caught if "average reference" in str(w.message)]
    assert len(ours) == 1 and issubclass(ours[0].category, RunWarning)
    assert str(ours[0].message).endswith("(3 of 3 recordings)")
    assert s.run_warnings == [str(ours[0].message)]
    assert s.to_dict()["run_warnings"] == s.run_warnings
    assert not any("average reference" in w for o in s.done for w in o.warnings)
    assert "reference='average' is this pipeline's default" in s.run_warnings[0]

    asked = preprocess_eeg([str(d)], tmp_path / "asked", reference="average", progress=False)
    assert asked.run_warnings == []
    for o in asked.done:
        ws = [w for w in o.warnings if "average reference over only 4" in w]
        assert len(ws) == 1 and ws[0].startswith(o.source), o.id   # names its file
    # the same store either way: the warning changes nothing in the data
    a, b = SequenceStore(tmp_path / "default"), SequenceStore(tmp_path / "asked")
    assert list(a.ids) == list(b.ids)
    for rid in a.ids:
        np.testing.assert_array_equal(a.load(rid), b.load(rid))

    none = preprocess_eeg([str(d)], tmp_path / "none", reference=None, progress=False)
    assert none.run_warnings == [] and not any(o.warnings for o in none.done)

    # the command line: the default warns once (the summary's "run" row), an explicit
    # --reference average per file
    rc = main(["preprocess", "eeg", str(d), "--out", str(tmp_path / "cli1"), "--no-progress",
               "--summary-json", str(tmp_path / "s1.json")])
    assert rc == 0
    import json

    summ = json.loads((tmp_path / "s1.json").read_text())
    assert len(summ["run_warnings"]) == 1 and summ["run_warnings"][0].endswith("(3 of 3 recordings)")
    assert not any("average reference" in w for o in summ["done"] for w in o["warnings"])
    rc = main(["preprocess", "eeg", str(d), "--out", str(tmp_path / "cli2"), "--no-progress",
               "--reference", "average", "--summary-json", str(tmp_path / "s2.json")])
    assert rc == 0
    summ = json.loads((tmp_path / "s2.json").read_text())
    assert summ["run_warnings"] == []
    assert all(any("average reference over only 4" in w for w in o["warnings"])
               for o in summ["done"])


def _read(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw, d = read_table(path, **kw)
    return raw, d, [str(w.message) for w in caught]


def _uv(raw):
    return raw.get_data().T * 1e6


def test_a_folder_of_tables(tmp_path):
    for sub in (1, 2):
        d = tmp_path / "muse" / f"subject{sub}" / "session1"
        d.mkdir(parents=True)
        _table(seed=sub).to_csv(d / "rec.csv", index=False)
    s = preprocess_eeg([str(tmp_path / "muse")], tmp_path / "st", reference=None,
                       progress=False)
    assert s.ok and len(s.done) == 2, str(s)
    assert sorted(SequenceStore(tmp_path / "st").manifest.subject) == ["1", "2"]


def test_unix_ms_and_device_clock(tmp_path):
    df = _table(t0=1.6e9)
    df.to_csv(tmp_path / "unix.csv", index=False)
    raw, d, _ = _read(tmp_path / "unix.csv")
    assert d["clock"] == "unix" and raw.info["meas_date"].year == 2020
    df.assign(timestamps=df.timestamps * 1000).to_csv(tmp_path / "ms.csv", index=False)
    raw, d, _ = _read(tmp_path / "ms.csv")
    assert d["time_unit"] == "ms" and d["clock"] == "unix" and d["timing"]["method"] == "rows"
    _table(t0=523.25).to_csv(tmp_path / "dev.csv", index=False)
    raw, d, _ = _read(tmp_path / "dev.csv")
    assert d["clock"] == "device" and raw.info["meas_date"] is None
    np.testing.assert_allclose(_uv(raw), df[MUSE].to_numpy(), rtol=1e-12)


def test_packet_jitter_keeps_rows(tmp_path):
    """Timestamps stamped per 12-sample packet on arrival (±15 ms) but samples regular."""
    df = _table(n=5124)
    rng = np.random.default_rng(1)
    arrival = np.repeat(rng.uniform(0, 0.015, len(df) // 12 + 1), 12)[:len(df)]
    df["timestamps"] = np.round(df.timestamps + arrival, 3)
    df.to_csv(tmp_path / "j.csv", index=False)
    raw, d, w = _read(tmp_path / "j.csv")
    assert d["timing"]["method"] == "rows" and d["timing"]["n_backward"] > 0
    np.testing.assert_allclose(_uv(raw), df[MUSE].to_numpy(), rtol=1e-12)
    assert not w
    # jitter and a dropped packet pair: the gap is a lasting rise of the lag
    df.drop(index=range(2400, 2424)).to_csv(tmp_path / "jg.csv", index=False)
    raw, d, w = _read(tmp_path / "jg.csv")
    assert d["timing"]["method"] == "timestamps" and d["timing"]["timestamp_gaps"] >= 1
    assert abs(d["filled_samples"] - 24) <= 1 and d["timing"]["timing_error_ms"] < 20
    # forcing timestamps on jittered rows without gaps does not invent samples
    raw, d, w = _read(tmp_path / "j.csv", timing="timestamps")
    assert d["filled_samples"] == 0


def test_dropped_samples_are_filled_and_events_stay_in_place(tmp_path):
    df = _table(n=5120)
    gone = np.r_[1000:1012, 3000:3024]                    # one and two dropped packets
    df.drop(index=gone).to_csv(tmp_path / "gap.csv", index=False)
    raw, d, w = _read(tmp_path / "gap.csv")
    t = d["timing"]
    assert t["method"] == "timestamps" and t["timestamp_gaps"] == 2
    assert t["timestamp_missing_samples"] == 36 and d["filled_samples"] == 36
    assert any("36 missing sample(s) filled" in m for m in w)
    x = _uv(raw)
    keep = np.setdiff1d(np.arange(len(df)), gone)
    assert x.shape == (len(df), 4)
    np.testing.assert_allclose(x[keep], df[MUSE].to_numpy()[keep], rtol=1e-12)
    from scipy.interpolate import interp1d                # the filled samples: linear

    ref = interp1d(keep, df[MUSE].to_numpy()[keep], axis=0)(gone)
    np.testing.assert_allclose(x[gone], ref, rtol=1e-9)
    ev, _ = mne.events_from_annotations(raw, verbose="error")
    true = np.flatnonzero(df.Marker0.to_numpy())
    np.testing.assert_array_equal(ev[:, 0], true[~np.isin(true, gone)])


def test_long_gap_refused_unless_allowed(tmp_path):
    df = _table(n=5120).drop(index=range(2000, 2256))      # 1 s missing
    df.to_csv(tmp_path / "long.csv", index=False)
    with pytest.raises(InputError, match=r"1\.000 s of samples are missing.*max_gap=0\.2"):
        read_table(tmp_path / "long.csv")
    raw, d, _ = _read(tmp_path / "long.csv", max_gap=None)
    assert d["filled_samples"] == 256 and raw.n_times == 5120
    with pytest.raises(InputError, match="max_gap"):                # strict: no filling
        read_table(tmp_path / "long.csv", max_gap=0)


def test_rate_mismatch_refused_or_rows(tmp_path):
    df = _table(sf=250.0)
    df.to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(InputError, match=r"250\.0\d* Hz but the nominal sampling rate is 256"):
        read_table(tmp_path / "r.csv")                   # Muse columns: 256 Hz implied
    raw, d, w = _read(tmp_path / "r.csv", sfreq=250)
    assert raw.info["sfreq"] == 250 and d["sfreq_source"] == "option"
    raw, d, w = _read(tmp_path / "r.csv", timing="rows")
    assert raw.info["sfreq"] == 256 and any("taken as samples" in m for m in w)


def test_irregular_and_backward_timestamps_refused(tmp_path):
    df = _table(n=5120)
    df.loc[2500:, "timestamps"] -= 0.5                      # the clock jumps back 0.5 s
    df.to_csv(tmp_path / "back.csv", index=False)
    with pytest.raises(InputError, match="go backwards"):
        read_table(tmp_path / "back.csv")
    raw, _, w = _read(tmp_path / "back.csv", timing="rows")
    assert raw.n_times == 5120 and any("disagree" in m for m in w)
    df = _table(n=5120)
    df["timestamps"] = 1000 + np.sort(np.random.default_rng(2).uniform(0, 20, 5120))
    df.to_csv(tmp_path / "random.csv", index=False)
    with pytest.raises(InputError, match="irregular sampling"):
        read_table(tmp_path / "random.csv", sfreq=256)


def test_place_samples_stats():
    t = 5.0 + np.arange(1000) / 256
    pos, st = place_samples(np.delete(t, range(500, 512)), 256.0)
    assert st["method"] == "timestamps" and pos[-1] == 999 and st["timestamp_gaps"] == 1
    pos, st = place_samples(t, 256.0)
    assert st["method"] == "rows" and st["clock_sfreq"] == pytest.approx(256.0)
    assert st["median_interval_ms"] == pytest.approx(1000 / 256)
    # 20 minutes of packet-jittered (0-20 ms), ms-rounded timestamps with a 100 ppm
    # clock drift and two dropped packets: jitter is not taken for gaps
    n = 256 * 1200
    rng = np.random.default_rng(0)
    t = 1.6e9 + np.arange(n) / 256 * (1 + 1e-4) + np.repeat(rng.uniform(0, 0.02, n // 12 + 1),
                                                           12)[:n]
    t = np.delete(np.round(t, 3), np.r_[100000:100012, 200000:200024])
    pos, st = place_samples(t, 256.0)
    assert st["method"] == "timestamps" and st["timestamp_gaps"] == 2
    assert abs(st["timestamp_missing_samples"] - 36) <= 2 and abs(pos[-1] - (n - 1)) <= 2


def test_nan_rows_and_truncated_last_line(tmp_path):
    df = _table(n=2560)
    df.loc[700:709, "AF7"] = np.nan                       # 10 NaN rows inside
    df.loc[0:2, MUSE] = np.nan                            # 3 at the start
    text = df.to_csv(index=False)
    (tmp_path / "nan.csv").write_text(text[:-25])         # the last line cut short
    raw, d, w = _read(tmp_path / "nan.csv")
    assert d["nan_rows"]["count"] == 14 and d["nan_rows"]["trimmed_at_ends"] == 4
    assert raw.n_times == 2560 - 4 and d["filled_samples"] == 10
    x = _uv(raw)
    np.testing.assert_allclose(x[700 - 3:710 - 3, 1],
                               np.linspace(df.AF7[699], df.AF7[710], 12)[1:-1], rtol=1e-9)
    assert any("start or end" in m for m in w) and any("filled" in m for m in w)
    ev, _ = mne.events_from_annotations(raw, verbose="error")
    np.testing.assert_array_equal(ev[:, 0], np.flatnonzero(df.Marker0.to_numpy()) - 3)
    df.loc[1000:1200, MUSE] = np.nan                      # 0.8 s of NaN rows
    df.to_csv(tmp_path / "nan_long.csv", index=False)
    with pytest.raises(InputError, match="NaN rows"):
        read_table(tmp_path / "nan_long.csv")


def test_text_cells_and_duplicate_rows(tmp_path):
    df = _table(n=2560).astype({"TP9": object})
    df.loc[300, "TP9"] = "err"
    df = pd.concat([df.iloc[:1000], df.iloc[988:1000], df.iloc[1000:]])  # a packet twice
    df.to_csv(tmp_path / "t.csv", index=False)
    raw, d, w = _read(tmp_path / "t.csv")
    assert d["text_cells"] == {"TP9": 1} and d["duplicate_rows_dropped"] == 12
    assert raw.n_times == 2560 and d["timing"]["method"] == "rows"


def test_marker_variants(tmp_path):
    df = _table(n=2560, markers={100: 1, 400: 2, 700: 7})
    df.loc[1000:1009, "Marker0"] = 3                      # a trigger level held 10 rows
    df["Marker1"] = 0
    df.loc[1500, "Marker1"] = 5
    df.to_csv(tmp_path / "m.csv", index=False)
    raw, d, _ = _read(tmp_path / "m.csv")
    assert d["marker_columns"] == ["Marker0", "Marker1"]
    assert d["marker_counts"] == {"1": 1, "2": 1, "3": 1, "5": 1, "7": 1}
    ann = raw.annotations
    held = list(ann.description).index("3")
    assert ann.onset[held] == pytest.approx(1000 / 256) and ann.duration[held] == pytest.approx(
        10 / 256)
    # codes not in the event map are named in a warning
    s = preprocess_eeg([str(tmp_path / "m.csv")], tmp_path / "st", reference=None,
                       event_map={"1": "x", "2": "y"}, progress=False)
    assert s.ok, str(s)
    w = " ".join(s.done[0].warnings)
    assert "['3', '5', '7'] are not in event_map" in w and "almost no events" in w
    # text markers (LSL string streams)
    df = _table(n=1024, markers={})
    df["Marker0"] = ""
    df.loc[[100, 300], "Marker0"] = ["target", "standard"]
    df.to_csv(tmp_path / "s.csv", index=False)
    raw, d, _ = _read(tmp_path / "s.csv")
    assert list(raw.annotations.description) == ["target", "standard"]


def test_few_events_warn_or_refuse(tmp_path):
    _table(n=7680, markers={100: 1, 5000: 2}).to_csv(tmp_path / "few.csv", index=False)
    files = [str(tmp_path / "few.csv")]
    s = preprocess_eeg(files, tmp_path / "a", reference=None, progress=False)
    assert s.ok and any("almost no events" in w for w in s.done[0].warnings)
    s = preprocess_eeg(files, tmp_path / "b", reference=None, min_events=20, progress=False)
    assert not s.ok and "only 2 event(s)" in s.failed[0].reason
    assert "min_events=20" in s.failed[0].reason and "few.csv" in s.failed[0].reason


def test_other_layouts_openbci_and_lsl(tmp_path):
    n = 1250
    rng = np.random.default_rng(3)
    body = pd.DataFrame({"Sample Index": np.arange(n) % 256})
    for i in range(4):
        body[f"EXG Channel {i}"] = rng.normal(0, 10, n)
    for i in range(3):
        body[f"Accel Channel {i}"] = 0.0
    body["Timestamp"] = 1.7e9 + np.arange(n) / 250
    body["Timestamp (Formatted)"] = "2023-11-14 22:13:20.000"
    head = ("%OpenBCI Raw EXG Data\n%Number of channels = 4\n%Sample Rate = 250 Hz\n"
            "%Board = OpenBCI_GUI$BoardCytonSerial\n")
    text = body.to_csv(index=False).replace(",", ", ")
    (tmp_path / "OpenBCI-RAW.txt").write_text(head + text)
    with pytest.raises(InputError, match=r"no column is named like an EEG channel.*"
                                         r"EXG Channel 0"):
        read_table(tmp_path / "OpenBCI-RAW.txt")
    mapping = {"EXG Channel 0": "Fp1", "EXG Channel 1": "Fp2", "EXG Channel 2": "C3",
               "EXG Channel 3": "C4"}
    raw, d, _ = _read(tmp_path / "OpenBCI-RAW.txt", channels=mapping)
    assert raw.ch_names == ["Fp1", "Fp2", "C3", "C4"] and raw.info["sfreq"] == 250
    assert d["sfreq_source"] == "header" and d["comment_lines"] == 4
    assert d["time_column"] == "Timestamp" and d["clock"] == "unix"
    np.testing.assert_allclose(_uv(raw), body[list(mapping)].to_numpy(), rtol=1e-12)
    raw, d, _ = _read(tmp_path / "OpenBCI-RAW.txt", montage=None)  # no positions: all EXG
    assert raw.ch_names == [f"EXG Channel {i}" for i in range(4)]
    # an LSL export: tab-separated, units in the names, text markers
    lsl = pd.DataFrame({"lsl_timestamp": 3.5 + np.arange(n) / 500})
    for c in ("Fz", "Cz", "Pz"):
        lsl[f"{c} [mV]"] = rng.normal(0, 0.02, n)
    lsl["Markers"] = ""
    lsl.loc[[10, 600], "Markers"] = ["left", "right"]
    lsl.to_csv(tmp_path / "lsl.tsv", sep="\t", index=False)
    raw, d, _ = _read(tmp_path / "lsl.tsv")
    assert d["sep"] == "\t" and d["unit"] == "mV" and d["unit_source"] == "column names"
    assert raw.ch_names == ["Fz", "Cz", "Pz"] and raw.info["sfreq"] == 500
    assert d["sfreq_source"] == "timestamps"
    np.testing.assert_allclose(raw.get_data().T * 1e3, lsl.iloc[:, 1:4].to_numpy(), rtol=1e-12)
    assert list(raw.annotations.description) == ["left", "right"]


def test_bad_tables_fail_alone_with_clear_messages(tmp_path):
    good = tmp_path / "good.csv"
    _table().to_csv(good, index=False)
    bad = {}
    (tmp_path / "garbage.csv").write_bytes(np.random.default_rng(0).bytes(4000))
    bad["garbage.csv"] = "binary content"
    (tmp_path / "empty.csv").write_text("")
    bad["empty.csv"] = "empty file"
    (tmp_path / "header_only.csv").write_text("timestamps,TP9,AF7,AF8,TP10,Marker0\n")
    bad["header_only.csv"] = "no data rows"
    (tmp_path / "noheader.csv").write_text("1.0,2.0,3.0\n4.0,5.0,6.0\n")
    bad["noheader.csv"] = "no header row"
    _table().drop(columns=["AF8", "TP10"]).to_csv(tmp_path / "twoch.csv", index=False)
    bad["twoch.csv"] = "channels column(s) ['AF8', 'TP10'] not found. Columns in the file"
    _table().drop(columns="timestamps").to_csv(tmp_path / "notime.csv", index=False)
    _table().drop(columns="timestamps").rename(columns=dict(zip(MUSE, ["F3", "F4", "C3", "C4"]))
                                               ).to_csv(tmp_path / "norate.csv", index=False)
    bad["norate.csv"] = "no time column and no sampling rate"
    (tmp_path / "ragged.csv").write_text(_table(n=50).to_csv(index=False) + "1,2,3,4,5,6,7,8,9\n"
                                         + _table(n=5).to_csv(index=False, header=False))
    bad["ragged.csv"] = "malformed table"
    _table().assign(time=0.0).to_csv(tmp_path / "twotimes.csv", index=False)
    bad["twotimes.csv"] = "several time columns"
    files = [str(good), str(tmp_path / "notime.csv")] + [str(tmp_path / b) for b in bad
                                                         if b != "norate.csv"]
    s = preprocess_eeg(files, tmp_path / "st", channels=MUSE, reference=None, progress=False)
    failed = {o.source.rsplit("/", 1)[-1]: o.reason for o in s.failed}
    assert s.exit_code == 1 and len(s.done) == 2, str(s)           # notime: Muse -> 256 Hz
    assert set(failed) == set(bad) - {"norate.csv"}, failed
    for name, needle in bad.items():
        if name == "norate.csv":
            continue
        assert needle in failed[name] and name in failed[name], (name, failed[name])
    s = preprocess_eeg([str(tmp_path / "norate.csv")], tmp_path / "st2", progress=False)
    assert bad["norate.csv"] in s.failed[0].reason and "--sfreq" in s.failed[0].reason
    s = preprocess_eeg([str(tmp_path / "norate.csv")], tmp_path / "st3", sfreq=128,
                       progress=False)
    assert s.ok and SequenceStore(tmp_path / "st3").manifest.sfreq[0] == 128


def test_bad_table_options_raise_clearly(tmp_path):
    for kw, needle in [({"unit": "furlong"}, "unit must be 'auto' or one of"),
                       ({"timing": "exact"}, "timing must be one of"),
                       ({"channels": 5}, "channels must be 'auto'"),
                       ({"max_gap": -1}, "max_gap must be a number >= 0"),
                       ({"sfreq": 0}, "sfreq must be a positive number"),
                       ({"time_unit": "h"}, "time_unit must be"),
                       ({"min_events": -2}, "min_events must be an integer >= 0")]:
        with pytest.raises(ValueError, match=needle):
            preprocess_eeg([], tmp_path / "x", **kw)
    with pytest.raises(TypeError, match="unknown EEG step"):
        preprocess_eeg([], tmp_path / "x", sampling_rate=256)
    raw, d, _ = _read(_write(tmp_path), unit="µV")
    assert d["unit"] == "uV"


def _write(tmp_path):
    p = tmp_path / "w.csv"
    _table().to_csv(p, index=False)
    return p


def test_unit_option_scales_and_warns(tmp_path):
    p = _write(tmp_path)
    raw_uv, _, _ = _read(p)
    raw_mv, d, w = _read(p, unit="mV")
    np.testing.assert_allclose(raw_mv.get_data(), raw_uv.get_data() * 1e3)
    warned = [m for m in w if "implausible EEG amplitude, read as mV" in m]  # 20 mV: not EEG
    assert len(warned) == 1 and all(f"{c} (" in warned[0] for c in MUSE)
    assert "The values look like uV" in warned[0] and "--unit" in warned[0]


def test_columns_left_out_and_mixed_units(tmp_path):
    df = _table()
    df["ECG"] = np.sin(np.arange(len(df)))
    df.to_csv(tmp_path / "ecg.csv", index=False)
    raw, d, w = _read(tmp_path / "ecg.csv")
    assert raw.ch_names == MUSE and d["ignored_columns"] == ["Right AUX", "ECG"]
    assert any("numeric columns ['ECG'] are not channels" in m for m in w)
    df = _table().rename(columns={"TP9": "TP9 (uV)", "AF7": "AF7 (mV)"})
    df.to_csv(tmp_path / "mixed.csv", index=False)
    with pytest.raises(InputError, match="different units"):
        read_table(tmp_path / "mixed.csv")


def test_real_jittered_file_with_a_dropped_packet_pair(shared_data, tmp_path):
    """The real per-packet jitter of the 2017 N170 files (±23 ms) plus 24 dropped rows:
    the gap is found, at its place and with its length."""
    df = pd.read_csv(shared_data / N170_JITTER)
    gone = np.arange(15000, 15024)
    df.drop(index=gone).to_csv(tmp_path / "drop.csv", index=False)
    raw, d, w = _read(tmp_path / "drop.csv")
    assert d["timing"]["method"] == "timestamps" and d["filled_samples"] == 24
    assert raw.n_times == len(df) and d["timing"]["timing_error_ms"] < 10
    keep = np.setdiff1d(np.arange(len(df)), gone)
    np.testing.assert_allclose(_uv(raw)[keep], df[MUSE].to_numpy()[keep], rtol=1e-12)
    ev, _ = mne.events_from_annotations(raw, verbose="error")
    true = np.flatnonzero(df.Marker0.to_numpy())
    np.testing.assert_array_equal(ev[:, 0], true[~np.isin(true, gone)])


def test_headerless_decimal_comma_datetime_and_us_time(tmp_path):
    df = _table(n=1024)
    vals = df[MUSE].to_numpy()
    # no header row (BrainFlow-style): usable once the columns are named by position
    df.to_csv(tmp_path / "nohead.csv", index=False, header=False)
    with pytest.raises(InputError, match="no header row: its columns are numbered"):
        read_table(tmp_path / "nohead.csv")
    raw, d, _ = _read(tmp_path / "nohead.csv", time_column="0", marker_columns=["6"],
                      channels={"1": "TP9", "2": "AF7", "3": "AF8", "4": "TP10"})
    assert raw.ch_names == MUSE and len(raw.annotations) == len(np.flatnonzero(df.Marker0))
    np.testing.assert_allclose(_uv(raw), vals, rtol=1e-12)
    # European CSV: semicolons and decimal commas
    df.to_csv(tmp_path / "eu.csv", index=False, sep=";", decimal=",")
    raw, d, _ = _read(tmp_path / "eu.csv")
    assert d["sep"] == ";" and raw.ch_names == MUSE
    np.testing.assert_allclose(_uv(raw), vals, rtol=1e-12)
    # a date-time text time column, and Unix microseconds
    stamp = pd.Timestamp("2019-03-16 15:26:23") + pd.to_timedelta(np.arange(1024) / 256, "s")
    df.assign(timestamps=stamp.strftime("%Y-%m-%d %H:%M:%S.%f")).to_csv(tmp_path / "dt.csv",
                                                                         index=False)
    raw, d, _ = _read(tmp_path / "dt.csv", time_column="timestamps")
    assert d["clock"] == "unix" and raw.info["meas_date"].year == 2019
    assert d["timing"]["method"] == "rows"
    df.assign(timestamps=(1.6e9 + np.arange(1024) / 256) * 1e6).to_csv(tmp_path / "us.csv",
                                                                        index=False)
    raw, d, _ = _read(tmp_path / "us.csv")
    assert d["time_unit"] == "us" and d["clock"] == "unix"
