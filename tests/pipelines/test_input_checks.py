"""Inputs that a batch run must not swallow: implausible EEG amplitudes (a channel in the
wrong unit) and time columns that run backwards, on altered copies of real files."""

from __future__ import annotations

import json
import warnings

import mne
import numpy as np
import pandas as pd
import pytest

from neuroconv.pipelines import InputError, preprocess_eeg, read_table
from neuroconv.pipelines.channels import EEG_PEAK_TO_PEAK_UV, typical_peak_to_peak
from neuroconv.pipelines.eeg import process_raw, split_options

MUSE_CSV = "eeg-notebooks/visual/P300/subject2/session1/data_2017-02-09-18.12.53.csv"
EEGBCI = "MNE-eegbci-data/files/eegmmidb/1.0.0/S001"
MUSE = ["TP9", "AF7", "AF8", "TP10"]


def _read(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw, d = read_table(path, **kw)
    return raw, d, [str(w.message) for w in caught]


def _implausible(msgs):
    return [m for m in msgs if "implausible EEG amplitude" in m]


def test_typical_peak_to_peak_is_the_median_window_range():
    rng = np.random.default_rng(0)
    sf, n = 100.0, 1037                                     # 10 whole windows + a tail
    x = rng.normal(size=(3, n))
    x[1] += np.linspace(0, 1e6, n)                          # a huge slow drift
    x[2, 50] = 1e9                                          # one spike in one window
    got = typical_peak_to_peak(x, sf)
    win = x[:, :1000].reshape(3, 10, 100)
    ref = [np.median([np.ptp(w) for w in ch]) for ch in win]
    np.testing.assert_array_equal(got, ref)
    assert got[2] < 10                                      # the spike does not count
    np.testing.assert_array_equal(typical_peak_to_peak(x[:, :40], sf), np.ptp(x[:, :40], 1))


def test_a_channel_in_another_unit_is_named(shared_data, tmp_path):
    df = pd.read_csv(shared_data / MUSE_CSV)
    big = df.assign(AF7=df.AF7 * 1e9)                       # ~1e11 µV
    big.to_csv(tmp_path / "nano.csv", index=False)
    _, _, w = _read(tmp_path / "nano.csv")
    (msg,) = _implausible(w)
    lo, hi = big.AF7.min(), big.AF7.max()
    assert "nano.csv" in msg and "AF7 (" in msg and "read as uV" in msg
    assert f"{lo:.3g} to {hi:.3g} µV" in msg and "--unit" in msg
    assert not any(f"{c} (" in msg for c in ("TP9", "AF8", "TP10"))
    assert "other 3 channel(s) look like EEG" in msg
    # a whole file in volts: every channel named, and the unit that fits
    df.assign(**{c: df[c] * 1e-6 for c in MUSE}).to_csv(tmp_path / "volts.csv", index=False)
    _, _, w = _read(tmp_path / "volts.csv")
    (msg,) = _implausible(w)
    assert all(f"{c} (" in msg for c in MUSE) and "The values look like V." in msg
    raw, _, w = _read(tmp_path / "volts.csv", unit="V")   # the fix: no warning, same data
    assert not _implausible(w)
    np.testing.assert_allclose(raw.get_data().T * 1e6, df[MUSE].to_numpy(), rtol=1e-12)
    # millivolts read as µV (EEG of 0.01-0.5 µV): named too
    df.assign(**{c: df[c] * 1e-3 for c in MUSE}).to_csv(tmp_path / "milli.csv", index=False)
    _, _, w = _read(tmp_path / "milli.csv")
    (msg,) = _implausible(w)
    assert all(f"{c} (" in msg for c in MUSE) and "The values look like mV." in msg
    # a flat channel, and the warning reaches the store's record exactly once
    df.assign(TP10=7.0).to_csv(tmp_path / "flat.csv", index=False)
    s = preprocess_eeg([str(tmp_path / "nano.csv"), str(tmp_path / "flat.csv")],
                       tmp_path / "st", reference=None, progress=False)
    assert s.ok, str(s)
    warned = {o.id: _implausible(o.warnings) for o in s.done}
    assert [len(v) for v in warned.values()] == [1, 1]
    assert "TP10 (7 to 7 µV, flat)" in warned["flat"][0] and "AF7 (" in warned["nano"][0]
    rec = json.loads((tmp_path / "st" / "records" / "nano.json").read_text())
    assert rec["warnings"] == warned["nano"]


def test_mne_formats_warn_per_channel(shared_data, tmp_path):
    raw = mne.io.read_raw_edf(shared_data / EEGBCI / "S001R04.edf", preload=True,
                              verbose="error")
    name = raw.ch_names[10]
    raw.apply_function(lambda x: x * 1e3, picks=[name])   # this channel: mV taken for µV
    raw.save(tmp_path / "one_mv_raw.fif", verbose="error")
    s = preprocess_eeg([str(tmp_path / "one_mv_raw.fif")], tmp_path / "st", progress=False)
    assert s.ok, str(s)
    (msg,) = _implausible(s.done[0].warnings)
    x = raw.get_data(picks=[name])[0] * 1e6
    assert "one_mv_raw.fif" in msg and f"{name} ({x.min():.3g} to {x.max():.3g} µV" in msg
    assert "look 1000 times too large" in msg and "other 63 channel(s)" in msg
    assert sum(f"{c} (" in msg for c in raw.ch_names) == 1


def test_real_recordings_are_plausible(shared_data):
    """No warning on the real EEGBCI EDFs and Muse CSVs: the bounds are physiology's."""
    lo, hi = EEG_PEAK_TO_PEAK_UV
    edfs = sorted((shared_data / EEGBCI).glob("*.edf"))
    csvs = sorted((shared_data / "eeg-notebooks").rglob("*.csv"))
    assert len(edfs) == 12 and len(csvs) >= 43
    steps, _ = split_options({"montage": None, "reference": None})
    for f in edfs:
        with warnings.catch_warnings(record=True) as caught:      # the reader's own check
            warnings.simplefilter("always")
            process_raw(str(f), steps)
        assert not _implausible([str(w.message) for w in caught]), f
    for f in csvs:
        raw, _, w = _read(f)
        assert not _implausible(w), f
        typ = typical_peak_to_peak(raw.get_data() * 1e6, raw.info["sfreq"])
        assert (typ > lo).all() and (typ < hi).all(), f


def test_time_column_backwards_or_out_of_order(shared_data, tmp_path):
    df = pd.read_csv(shared_data / MUSE_CSV)
    df.iloc[::-1].to_csv(tmp_path / "reversed.csv", index=False)
    with pytest.raises(InputError, match=r"reversed\.csv: the time column decreases: the rows "
                                         r"run backwards in time.*Sort the rows by time"):
        read_table(tmp_path / "reversed.csv")
    raw, d, w = _read(tmp_path / "reversed.csv", timing="rows")   # kept, with a warning
    assert raw.n_times == len(df) and any("decreases" in m for m in w)
    assert not any("nan Hz" in m for m in w)
    half = len(df) // 2
    pd.concat([df.iloc[half:], df.iloc[:half]]).to_csv(tmp_path / "swapped.csv", index=False)
    with pytest.raises(InputError, match=r"not monotonic: the timestamps go backwards by "
                                         rf"\d+\.\d+ s at data row {len(df) - half}.*fix the "
                                         r"clock"):
        read_table(tmp_path / "swapped.csv")
    # what the message says to do: sort, and the file reads as the original
    back = pd.read_csv(tmp_path / "reversed.csv").sort_values("timestamps")
    back.to_csv(tmp_path / "sorted.csv", index=False)
    a, _, _ = _read(tmp_path / "sorted.csv")
    b, _, _ = _read(shared_data / MUSE_CSV)
    np.testing.assert_array_equal(a.get_data(), b.get_data())
    # in a batch, the file fails alone with its reason
    s = preprocess_eeg([str(tmp_path / "reversed.csv"), str(shared_data / MUSE_CSV)],
                       tmp_path / "st", reference=None, progress=False)
    assert len(s.done) == 1 and "run backwards in time" in s.failed[0].reason
    # no sampling rate known: the estimate is not fooled into "nan Hz" either
    named = df.iloc[::-1].rename(columns=dict(zip(MUSE, ["F3", "F4", "C3", "C4"])))
    named.to_csv(tmp_path / "reversed_nodevice.csv", index=False)
    with pytest.raises(InputError, match="the rows run backwards in time"), \
            pytest.warns(UserWarning, match="estimated from the timestamps as 256 Hz"):
        read_table(tmp_path / "reversed_nodevice.csv")
