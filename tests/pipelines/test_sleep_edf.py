"""The Sleep-EDF reader: the real features and hypnograms of ../shared/data, small nights
written here (features, and PSG + hypnogram pairs as EDF/EDF+) for the alignment, the
wake margin, the PSG path and every per-file error."""

from __future__ import annotations

import json

import mne
import numpy as np
import pytest

from neuroconv.cli import main
from neuroconv.data import SequenceStore
from neuroconv.pipelines import preprocess_sleep_edf
from neuroconv.pipelines.sleep_edf import feature_names

edfio = pytest.importorskip("edfio")

SLEEP = "sleep-edf"
CODE = {"Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage 2": 2, "Sleep stage 3": 3,
        "Sleep stage 4": 3, "Sleep stage R": 4}
LABEL = {0: "stage:W", 1: "stage:N1", 2: "stage:N2", 3: "stage:N3", 4: "stage:R"}
W, S1, S2, S3, S4, R = (f"Sleep stage {s}" for s in "W1234R")
NIGHT = [(W, 70), (S1, 3), (S2, 5), ("Sleep stage ?", 1), (S2, 2), ("Movement time", 2),
         (S3, 3), (S4, 2), (R, 4), (W, 70), ("Sleep stage ?", 10)]


def epochs_of(segments) -> list[str]:
    return [d for d, k in segments for _ in range(k)]


def write_hypnogram(path, segments):
    """An EDF+ annotation file of 30-s epochs (``(description, n_epochs)`` segments)."""
    ann, t = [], 0
    for desc, k in segments:
        ann.append(edfio.EdfAnnotation(t * 30.0, k * 30.0, desc))
        t += k
    edfio.Edf([], annotations=ann).write(path)


def write_night(d, night="SC4001", segments=NIGHT, scorer="EC", seed=0):
    """Features (random X, y from the hypnogram after removing ?/movement) and their
    hypnogram; returns X, y and the epoch of each row."""
    descs = epochs_of(segments)
    rows_at = np.array([i for i, x in enumerate(descs) if x in CODE])
    y = np.array([CODE[descs[i]] for i in rows_at])
    X = np.random.default_rng(seed).normal(size=(len(y), 72))
    np.savez(d / f"{night}E0.npz", X=X, y=y)
    write_hypnogram(d / f"{night}{scorer}-Hypnogram.edf", segments)
    return X, y, rows_at


# ----------------------------------------------------------------- written nights
def test_rows_placed_at_their_epochs_and_gaps_interpolated(tmp_path):
    X, y, rows_at = write_night(tmp_path)
    s = preprocess_sleep_edf(tmp_path, tmp_path / "st", progress=False)
    assert s.ok and len(s.done) == 1, str(s)
    st = SequenceStore(tmp_path / "st")
    row = st.manifest.iloc[0]
    first, last = 70, 70 + 3 + 5 + 1 + 2 + 2 + 3 + 2 + 4 - 1          # sleep epochs
    start, stop = first - 60, last + 1 + 60                            # 30 minutes each side
    assert (row.id, row.subject, row.session, row.night, row.study) == (
        "SC4001E0", "0", "1", 1, "SC")
    assert (row.data_kind, row.sfreq, row.n_times, row.start_s) == (
        "features", 1 / 30, stop - start, start * 30.0)
    assert (row.n_filled, row.n_staged, row.wake_margin_min) == (3, stop - start - 3, 30.0)
    x = st.load("SC4001E0").astype(np.float64)                         # (epochs, 72)
    assert st.meta["channels"] == feature_names()[0]
    for r, e in enumerate(rows_at):
        if start <= e < stop:
            np.testing.assert_array_equal(x[e - start], X[r].astype(np.float32))
    # the ? epoch (between rows a and a+1) and the two movement epochs (b, b+1)
    a = int(np.flatnonzero(rows_at == 77)[0])
    assert rows_at[a + 1] == 79
    tol = 2 * np.finfo(np.float32).eps * np.abs(X).max()
    np.testing.assert_allclose(x[78 - start], (X[a] + X[a + 1]) / 2, atol=tol, rtol=0)
    b = a + 2                                                          # row at epoch 80
    assert rows_at[b] == 80 and rows_at[b + 1] == 83
    for k in (1, 2):
        np.testing.assert_allclose(x[80 + k - start], X[b] + k / 3 * (X[b + 1] - X[b]),
                                   atol=tol, rtol=0)
    ev = st.events
    in_night = (rows_at >= start) & (rows_at < stop)
    np.testing.assert_array_equal(ev.onset, rows_at[in_night] - start)
    assert (ev.duration == 1).all() and list(ev.label) == [LABEL[c] for c in y[in_night]]
    assert st.meta["details"]["SC4001E0"]["filled_by_annotation"] == {
        "Movement time": 2, "Sleep stage ?": 1}
    with pytest.raises(ValueError, match=r"\['resample'\] apply to PSG signals"):
        preprocess_sleep_edf(tmp_path, tmp_path / "x", resample=50, progress=False)
    # wake margin 1 minute (2 epochs), and none (first to last row)
    preprocess_sleep_edf(tmp_path, tmp_path / "m1", wake_margin=1, progress=False)
    m1 = SequenceStore(tmp_path / "m1")
    assert m1.manifest.n_times[0] == last + 1 - first + 4
    assert m1.events.label[0] == "stage:W" and m1.events.label[2] == "stage:N1"
    preprocess_sleep_edf(tmp_path, tmp_path / "all", wake_margin="none", progress=False)
    whole = SequenceStore(tmp_path / "all")
    assert whole.manifest.n_times[0] == rows_at[-1] + 1 and whole.meta["wake_margin_min"] is None
    np.testing.assert_array_equal(whole.load("SC4001E0")[rows_at], X.astype(np.float32))


def test_bad_nights_reported_others_stored(tmp_path, monkeypatch, capsys):
    good = write_night(tmp_path, "SC4001")
    X, y, _ = write_night(tmp_path, "SC4002")
    y2 = y.copy()
    y2[100] = (y2[100] + 1) % 5
    np.savez(tmp_path / "SC4002E0.npz", X=X, y=y2)                    # labels disagree
    X, y, _ = write_night(tmp_path, "SC4011")
    np.savez(tmp_path / "SC4011E0.npz", X=np.vstack([X, X[:1]]), y=np.append(y, 0))
    X, y, rows_at = write_night(tmp_path, "SC4012")                   # cut during sleep
    np.savez(tmp_path / "SC4012E0.npz", X=X[:75], y=y[:75])
    write_night(tmp_path, "SC4021", [(W, 50), ("Sleep stage ?", 5), (W, 10)])
    write_night(tmp_path, "SC4022")
    (tmp_path / "SC4022EC-Hypnogram.edf").unlink()                     # no hypnogram
    write_night(tmp_path, "SC4031")
    np.savez(tmp_path / "SC4031E0.npz", X=X)                           # no y
    write_night(tmp_path, "SC4032")
    np.savez(tmp_path / "SC4032E0.npz", X=np.array([{"a": 1}], dtype=object), y=y)
    write_night(tmp_path, "SC4041")
    np.savez(tmp_path / "SC4041E0.npz", X=X[:, :70], y=y)
    write_night(tmp_path, "SC4042")
    (tmp_path / "SC4042EC-Hypnogram.edf").write_bytes(b"not an EDF file" * 40)
    write_night(tmp_path, "SC4051")
    ann = [edfio.EdfAnnotation(0, 15, W), edfio.EdfAnnotation(15, 600, S2)]
    edfio.Edf([], annotations=ann).write(tmp_path / "SC4051EC-Hypnogram.edf")
    write_night(tmp_path, "SC4052", [(W, 5), ("Lights off", 1), (S2, 5), (W, 5)])
    X, y, rows_at = write_night(tmp_path, "SC4061")                   # cut during wake
    np.savez(tmp_path / "SC4061E0.npz", X=X[:-5], y=y[:-5])
    s = preprocess_sleep_edf(tmp_path, tmp_path / "st", progress=False)
    assert [o.id for o in s.done] == ["SC4001E0", "SC4061E0"], str(s)
    assert "5 wake epoch(s) scored after the end of the data" in s.done[1].warnings[0]
    why = {o.id: o.reason for o in s.failed}
    e = int(rows_at[100])
    assert f"SC4002E0.npz: labels disagree with the hypnogram SC4002EC-Hypnogram.edf (1 of " \
           f"{len(y)} rows): first at row 100, epoch {e} ({e * 30} s)" in why["SC4002E0"]
    assert f"{len(y) + 1} feature rows but the hypnogram scores only {len(y)}" in \
        why["SC4011E0"]
    assert "SC4012EC-Hypnogram.edf: wrong length for its data" in why["SC4012E0"] and \
        f"end at {(rows_at[74] + 1) * 30 / 3600:.2f} h" in why["SC4012E0"]
    assert "holds only stage W: nothing to stage against" in why["SC4021E0"]
    assert "SC4022E0.npz: no hypnogram (SC4022*-Hypnogram.edf)" in why["SC4022E0"]
    assert "SC4031E0.npz: no ['y'] array(s)" in why["SC4031E0"]
    assert "SC4032E0.npz: cannot be read as an .npz of arrays" in why["SC4032E0"]
    assert "expected (n_epochs, 72)" in why["SC4041E0"]
    assert "SC4042EC-Hypnogram.edf: cannot be read as an EDF+ hypnogram" in why["SC4042E0"]
    assert "not whole 30-s epochs" in why["SC4051E0"] and "'Sleep stage W' at 0 s lasting " \
        "15 s" in why["SC4051E0"]
    assert "unknown annotation(s) ['Lights off']" in why["SC4052E0"]
    st = SequenceStore(tmp_path / "st")
    assert st.ids == ["SC4001E0", "SC4061E0"]
    np.testing.assert_array_equal(st.load("SC4001E0")[0], good[0][10].astype(np.float32))
    # truncated nights are kept when asked, flagged
    s = preprocess_sleep_edf(tmp_path, tmp_path / "tr", subjects="1", allow_truncated=True,
                             progress=False)
    assert [o.id for o in s.done] == ["SC4012E0"]
    tr = SequenceStore(tmp_path / "tr").manifest.iloc[0]
    assert bool(tr.truncated) and tr.start_s + tr.n_times * 30 == (rows_at[74] + 1) * 30
    # the CLI, two processes: failures listed, exit status 1, done nights skipped
    monkeypatch.setenv("COLUMNS", "300")
    rc = main(["preprocess", "sleep-edf", "--data-dir", str(tmp_path), "--out",
               str(tmp_path / "st"), "--no-progress", "--jobs", "2", "--summary-json",
               str(tmp_path / "s.json")])
    summary = json.loads((tmp_path / "s.json").read_text())
    assert rc == 1 and len(summary["skipped"]) == 2 and len(summary["failed"]) == 11
    assert "SC4052E0" in capsys.readouterr().err


def write_psg(path, n_epochs, seed=0, rate=100):
    """A Sleep-EDF-like PSG: EEG Fpz-Cz, EEG Pz-Oz and EOG horizontal at ``rate`` Hz in
    µV, and two 1-Hz channels; returns the EEG/EOG signals (µV) as written."""
    rng = np.random.default_rng(seed)
    n = n_epochs * 30 * rate
    sig = {lb: rng.normal(0, 25, n) for lb in ("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal")}
    signals = [edfio.EdfSignal(v, sampling_frequency=rate, label=lb, physical_dimension="uV",
                               physical_range=(-200, 200)) for lb, v in sig.items()]
    signals += [edfio.EdfSignal(rng.normal(size=n_epochs * 30), sampling_frequency=1, label=lb,
                                physical_dimension="", physical_range=(-5, 5))
                for lb in ("Resp oro-nasal", "Event marker")]
    edfio.Edf(signals).write(path)
    return sig


PSG_NIGHT = [(W, 8), (S1, 2), (S2, 4), ("Sleep stage ?", 1), (S3, 3), (R, 2), (W, 8)]


def test_psg_signals_match_mne(tmp_path):
    d = tmp_path / "physionet-sleep-data"
    d.mkdir()
    write_psg(d / "SC4001E0-PSG.edf", 28)
    write_hypnogram(d / "SC4001EC-Hypnogram.edf", PSG_NIGHT + [("Sleep stage ?", 5)])
    s = preprocess_sleep_edf(tmp_path, tmp_path / "st", wake_margin=1, eog=True,
                             progress=False)
    assert s.ok and len(s.done) == 1, str(s)
    st = SequenceStore(tmp_path / "st")
    start, stop = 8 - 2, 8 + 2 + 4 + 1 + 3 + 2 + 2                    # 1 minute each side
    raw = mne.io.read_raw_edf(d / "SC4001E0-PSG.edf", preload=True, verbose="error")
    ref = raw.get_data(picks=["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]) * 1e6
    ref = ref[:, start * 3000:stop * 3000].T
    np.testing.assert_array_equal(st.load("SC4001E0"), ref.astype(np.float32))
    row = st.manifest.iloc[0]
    assert st.meta["channels"] == ["Fpz-Cz", "Pz-Oz", "EOG"]
    assert (row.data_kind, row.sfreq, row.start_s, row.n_epochs) == (
        "signals", 100.0, start * 30.0, stop - start)
    descs = epochs_of(PSG_NIGHT)[start:stop]
    scored = [i for i, x in enumerate(descs) if x in CODE]
    np.testing.assert_array_equal(st.events.onset, np.array(scored) * 3000)
    assert (st.events.duration == 3000).all()
    assert list(st.events.label) == [LABEL[CODE[descs[i]]] for i in scored]
    # resampled through MNE, EEG only
    preprocess_sleep_edf(tmp_path, tmp_path / "rs", wake_margin=1, resample=50,
                         progress=False)
    rs = SequenceStore(tmp_path / "rs")
    raw.pick(["EEG Fpz-Cz", "EEG Pz-Oz"]).crop(start * 30, (stop * 3000 - 1) / 100)
    ref = raw.resample(50, verbose="error").get_data().T * 1e6
    np.testing.assert_allclose(rs.load("SC4001E0"), ref, rtol=np.finfo(np.float32).eps,
                               atol=1e-9 * np.abs(ref).max())
    assert rs.manifest.sfreq[0] == 50 and list(rs.events.onset[:2]) == [0, 1500]


def test_psg_errors(tmp_path):
    write_psg(tmp_path / "SC4001E0-PSG.edf", 18)                     # ends during sleep
    write_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf", PSG_NIGHT)
    write_psg(tmp_path / "SC4002E0-PSG.edf", 25)                     # ends during wake
    write_hypnogram(tmp_path / "SC4002EC-Hypnogram.edf", PSG_NIGHT)
    write_psg(tmp_path / "SC4011E0-PSG.edf", 28)
    write_hypnogram(tmp_path / "SC4011EH-Hypnogram.edf", PSG_NIGHT)
    s = preprocess_sleep_edf(tmp_path, tmp_path / "st", channels=["Fpz-Cz", "Oz"],
                             progress=False)
    assert not s.done and len(s.failed) == 3
    assert all("0 signals named 'Oz'" in o.reason for o in s.failed)
    s = preprocess_sleep_edf(tmp_path, tmp_path / "st2", progress=False)
    assert [o.id for o in s.done] == ["SC4002E0", "SC4011E0"], str(s)
    assert "SC4001EC-Hypnogram.edf: wrong length for its data: the signals of" in \
        s.failed[0].reason
    assert "3 wake epoch(s) scored after the end" in s.done[0].warnings[0]
    np.savez(tmp_path / "SC4001E0.npz", X=np.zeros((2, 72)), y=np.zeros(2))
    with pytest.raises(ValueError, match="both features files"):
        preprocess_sleep_edf(tmp_path, tmp_path / "st3", progress=False)


# --------------------------------------------------------------------- real nights
def expand(path):
    """A hypnogram's per-epoch descriptions, as the features' own code labels epochs
    (floor of the onset to the ceiling of the end, in 30-s epochs)."""
    ann = mne.read_annotations(path)
    n = int(np.ceil(max(ann.onset + ann.duration) / 30))
    out = np.full(n, "", dtype=object)
    for o, du, de in zip(ann.onset, ann.duration, ann.description):
        out[int(np.floor(o / 30)):int(np.ceil((o + du) / 30))] = de
    return out


def test_shared_nights_placed_and_checked(shared_data, tmp_path):
    src = shared_data / SLEEP
    s = preprocess_sleep_edf(src, tmp_path / "st", progress=False)
    assert len(s.done) == 13 and [o.id for o in s.failed] == ["SC4011E0"], str(s)
    assert "wrong length for its data" in s.failed[0].reason
    st = SequenceStore(tmp_path / "st")
    man = st.manifest.set_index("id")
    for rid in man.index:
        z = np.load(src / "features" / f"{rid}.npz")
        hyp = next((src / "sleep-cassette").glob(f"{rid[:6]}*-Hypnogram.edf"))
        descs = expand(hyp)
        rows_at = np.flatnonzero(np.isin(descs, list(CODE)))[:len(z["y"])]
        assert [CODE[x] for x in descs[rows_at]] == list(z["y"])
        row = man.loc[rid]
        start = int(row.start_s // 30)
        stop = start + int(row.n_times)
        sleep = rows_at[z["y"] > 0]
        assert start == max(rows_at[0], sleep[0] - 60)
        assert stop == min(rows_at[-1] + 1, sleep[-1] + 61)
        assert (row.subject, row.session, row.hypnogram) == (
            str(int(rid[3:5])), rid[5], hyp.name)
        x = st.load(rid)
        keep = (rows_at >= start) & (rows_at < stop)
        np.testing.assert_array_equal(x[rows_at[keep] - start], z["X"][keep].astype(np.float32))
        ev = st.events[st.events.id == rid]
        np.testing.assert_array_equal(ev.onset, rows_at[keep] - start)
        assert list(ev.label) == [LABEL[c] for c in z["y"][keep]]
        assert row.n_filled == row.n_times - keep.sum()
    # the epochs of "Alice" (SC4001) in MNE's sleep staging tutorial, within the same margins
    counts = st.events[st.events.id == "SC4001E0"].label.value_counts().to_dict()
    assert counts == {"stage:W": 188, "stage:N1": 58, "stage:N2": 250, "stage:N3": 220,
                      "stage:R": 125}
    again = preprocess_sleep_edf(src, tmp_path / "st", progress=False)
    assert len(again.skipped) == 13 and not again.done and len(again.failed) == 1


def test_feature_names_describe_the_columns(shared_data):
    """The names say what each column of the real files holds: the ratios are quotients
    of the log powers, then first differences, centred 3-epoch means and standard
    deviations of the 18 base columns (checked on runs of consecutive epochs)."""
    names, units = feature_names()
    assert len(names) == len(set(names)) == 72 and len(units) == 72
    z = np.load(shared_data / SLEEP / "features" / "SC4001E0.npz")
    X = z["X"]
    col = {n: X[:, i] for i, n in enumerate(names)}
    eps = 1e-12
    for ch in ("Fpz-Cz", "Pz-Oz"):
        np.testing.assert_allclose(col[f"{ch}_log_theta/log_alpha"],
                                   col[f"{ch}_log_theta"] / (col[f"{ch}_log_alpha"] + 1e-10),
                                   rtol=eps)
        np.testing.assert_allclose(col[f"{ch}_log_alpha/log_delta"],
                                   col[f"{ch}_log_alpha"] / (col[f"{ch}_log_delta"] + 1e-10),
                                   rtol=eps)
    descs = expand(next((shared_data / SLEEP / "sleep-cassette").glob("SC4001*")))
    rows_at = np.flatnonzero(np.isin(descs, list(CODE)))
    run = np.flatnonzero((rows_at[2:] - rows_at[:-2]) == 2) + 1      # row r-1, r, r+1 adjacent
    base = X[:, :18]
    scale = np.abs(base).max()
    for k, (suffix, ref) in enumerate([
            ("_diff", base[run] - base[run - 1]),
            ("_mean3", (base[run - 1] + base[run] + base[run + 1]) / 3),
            ("_std3", np.stack([base[run - 1], base[run], base[run + 1]]).std(axis=0))]):
        cols = [names.index(f"{n}{suffix}") for n in names[:18]]
        assert cols == list(range(18 * (k + 1), 18 * (k + 2)))
        np.testing.assert_allclose(X[run][:, cols], ref, rtol=0, atol=64 * 2e-16 * scale)


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["preprocess", "sleep-edf", "--help"])
    assert e.value.code == 0 and "--data-dir" in capsys.readouterr().out
