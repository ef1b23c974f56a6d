"""Sequence stores <-> braindecode datasets, and importing braindecode where torchaudio
cannot load."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from neuroconv.data import SequenceStore, StoreWriter
from neuroconv.data.braindecode import from_braindecode, import_braindecode, to_braindecode

# braindecode is imported through import_braindecode only: a plain import fails where
# torchaudio cannot load (the CPU torch of CI)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("braindecode") is None, reason="needs braindecode")

CHANNELS = ["C3", "Cz", "C4", "Pz"]
SFREQ = 100.0


@pytest.fixture
def store(tmp_path):
    """3 recordings of odd lengths (µV), with events and subject/session/run."""
    rng = np.random.default_rng(0)
    w = StoreWriter(tmp_path / "store", "test", [{"name": "synthetic", "params": {}}])
    for rid, sub, ses, run, n in (("a", "01", "1", "1", 537), ("b", "01", "2", "1", 611), ("c", "02", "1", "3", 499)):
        x = rng.standard_normal((n, len(CHANNELS))) * 20.0
        onsets = np.arange(30, n - 60, 97)
        ev = pd.DataFrame({"onset": onsets, "duration": np.full(len(onsets), 25),
                           "label": ["left" if k % 2 else "right" for k in range(len(onsets))]})
        w.write(rid, x, {"subject": sub, "session": ses, "run": run, "task": "mi", "dataset": "syn",
                         "modality": "eeg", "sfreq": SFREQ}, CHANNELS, [], ev, channel_units=["uV"] * 4)
    w.finalize()
    return SequenceStore(tmp_path / "store")


def test_round_trip_through_braindecode_windows(store, tmp_path):
    create_windows_from_events = import_braindecode("braindecode.preprocessing").create_windows_from_events
    ds = to_braindecode(store)
    assert len(ds.datasets) == 3
    desc = ds.description.set_index("id")
    for col in ("subject", "session", "run", "task", "dataset"):
        assert list(desc.loc[store.ids, col]) == list(store.manifest.set_index("id").loc[store.ids, col])
    for d in ds.datasets:
        rid = d.description["id"]
        raw = d.raw
        assert raw.ch_names == CHANNELS and raw.get_channel_types() == ["eeg"] * 4 and raw.info["sfreq"] == SFREQ
        # MNE's own unit conversion reads the stored µV back
        np.testing.assert_allclose(raw.get_data(units="uV").T, store.load(rid), rtol=1e-12, atol=0)
        ev = store.events[store.events["id"] == rid]
        np.testing.assert_array_equal(np.round(raw.annotations.onset * SFREQ).astype(int), ev["onset"])
        assert list(raw.annotations.description) == list(ev["label"])
    # braindecode's windower: one window per event, cut from the stored signal at its onset
    win = create_windows_from_events(ds, trial_start_offset_samples=0, trial_stop_offset_samples=0,
                                     mapping={"left": 0, "right": 1}, preload=True)
    assert list(win.description["subject"]) == list(ds.description["subject"])
    k = 0
    for rid in store.ids:
        ev = store.events[store.events["id"] == rid]
        for onset, dur, label in zip(ev["onset"], ev["duration"], ev["label"]):
            X, y, _ = win[k]
            # braindecode serves float32 windows: V rounded to float32, times 1e6 rounded again
            np.testing.assert_allclose(X * 1e6, store.load(rid)[onset:onset + dur].T,
                                       rtol=2 * np.finfo(np.float32).eps, atol=0)
            assert y == {"left": 0, "right": 1}[label]
            k += 1
    assert k == len(win)
    # and back: the windows dataset keeps its continuous signal, which becomes the store again
    back = from_braindecode(win, tmp_path / "back")
    assert back.ids == store.ids
    cols = ["subject", "session", "run", "task", "dataset", "sfreq", "n_times", "n_channels"]
    pd.testing.assert_frame_equal(back.manifest[cols], store.manifest[cols])
    for rid in store.ids:
        np.testing.assert_array_equal(back.load(rid), store.load(rid))  # float32 -> V -> float32 is exact
        assert back.channels(rid) == CHANNELS
    pd.testing.assert_frame_equal(back.events[["id", "onset", "duration", "label"]],
                                  store.events[["id", "onset", "duration", "label"]], check_dtype=False)
    assert back.meta["channel_units"] == ["uV"] * 4
    # a second run skips what is done
    stamp = (tmp_path / "back" / "records" / "a.json").stat().st_mtime_ns
    from_braindecode(win, tmp_path / "back")
    assert (tmp_path / "back" / "records" / "a.json").stat().st_mtime_ns == stamp


def test_selection_ids_and_errors(store, tmp_path):
    create_windows_from_events = import_braindecode("braindecode.preprocessing").create_windows_from_events
    assert list(to_braindecode(store, query="subject == '01'").description["id"]) == ["a", "b"]
    assert list(to_braindecode(store.path, ids=["c", "a"]).description["id"]) == ["c", "a"]
    with pytest.raises(KeyError, match="zz"):
        to_braindecode(store, ids=["zz"])
    with pytest.raises(ValueError, match="query='nope =='"):
        to_braindecode(store, query="nope ==")
    epochs = create_windows_from_events(to_braindecode(store, ids=["a"]), trial_start_offset_samples=0,
                                        trial_stop_offset_samples=0, use_mne_epochs=True, preload=True)
    with pytest.raises(ValueError, match="use_mne_epochs=False"):
        from_braindecode(epochs, tmp_path / "bad")
    # descriptions without ids: sub-S_ses-X_run-R, and a clash is refused
    bd = import_braindecode("braindecode.datasets")
    raws = [d.raw for d in to_braindecode(store).datasets]
    named = bd.BaseConcatDataset([bd.RawDataset(r, {"subject": s, "run": "1"}) for r, s in zip(raws, "xyz")])
    assert from_braindecode(named, tmp_path / "named", dataset_name="demo").ids == ["sub-x_run-1", "sub-y_run-1",
                                                                                     "sub-z_run-1"]
    assert set(SequenceStore(tmp_path / "named").manifest["dataset"]) == {"demo"}
    clash = bd.BaseConcatDataset([bd.RawDataset(r, {"subject": "x"}) for r in raws[:2]])
    with pytest.raises(ValueError, match="share the recording id 'sub-x'"):
        from_braindecode(clash, tmp_path / "clash")


def test_braindecode_imports_where_torchaudio_cannot_load(tmp_path):
    """A torchaudio that fails to load (as PyPI's CUDA build does beside a CPU torch):
    braindecode's networks still build, torchaudio's users say why they cannot, and a
    later ``import torchaudio`` still sees the real error."""
    fake = tmp_path / "site" / "torchaudio"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise OSError('libc10_cuda.so: cannot open shared object file')\n")
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from neuroconv.data.braindecode import import_braindecode
        bm = import_braindecode("braindecode.models")
        net = bm.ShallowFBCSPNet(n_chans=3, n_outputs=2, n_times=200)
        assert "torchaudio" not in sys.modules
        try:
            bm.EEGSimpleConv(n_chans=3, n_outputs=2, sfreq=250, resampling_freq=80)
        except ImportError as e:
            assert "torchaudio.transforms.Resample needs torchaudio" in str(e) and "libc10_cuda" in str(e), e
        else:
            raise AssertionError("EEGSimpleConv built without torchaudio")
        try:
            import torchaudio
        except OSError as e:
            assert "libc10_cuda" in str(e)
        else:
            raise AssertionError("the placeholder stayed in sys.modules")
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
    with pytest.raises(ValueError, match="`module` must be braindecode"):
        import_braindecode("torch")
