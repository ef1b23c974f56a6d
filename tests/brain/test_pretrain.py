"""`neuroconv pretrain`: end to end on tiny simulated stores, resume, NaN stop, export."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from neuroconv.brain.config import builtin_configs, job_parser, load_config
from neuroconv.brain.data import ChannelSetBatchSampler, StoreWindows, open_stores, pretrain_windows
from neuroconv.brain.models import load_pretrained
from neuroconv.brain.pretrain import RECORD_FILE, run_pretrain
from neuroconv.brain.pretrain import PretrainTask, span_mask
from neuroconv.engine.config import ConfigError

from .conftest import tiny_config


def test_pretrain_end_to_end_and_resume(eeg_store, tmp_path):
    cfg = tiny_config([eeg_store], tmp_path, **{"pretrain.name": "run1", "pretrain.max_epochs": 5,
                                                "pretrain.lr": 0.01})
    run = run_pretrain(cfg, log=lambda *_: None)
    for f in ("config.yaml", "model.safetensors", "model_config.json", "metrics.json", RECORD_FILE,
              "checkpoints/last.ckpt", "checkpoints/best.ckpt", "plots/loss.png", "plots/kernels.png",
              "logs/version_0/metrics.csv"):
        assert (run / f).is_file(), f
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == 5
    # it learned: better than repeating the last step (0.97 on this data; the model reaches
    # about 0.8 in 5 epochs)
    assert metrics["best_val_loss"] < 0.95 * metrics["naive_val_loss"]
    assert metrics["kernels"]["roughness"] >= 0 and len(metrics["kernels"]["layers"]) == 1
    # the exported model is the best checkpoint's, loadable without pickle
    model = load_pretrained(run)
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    want = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    got = model.state_dict()
    assert set(want) == set(got)
    for k in want:
        torch.testing.assert_close(got[k], want[k])
    # resume: two more epochs on top of the last checkpoint
    cfg2 = tiny_config([eeg_store], tmp_path, **{"pretrain.name": "run1", "pretrain.resume": True,
                                                 "pretrain.max_epochs": 6, "pretrain.lr": 0.01})
    run_pretrain(cfg2, log=lambda *_: None)
    m2 = json.loads((run / "metrics.json").read_text())
    assert m2["epochs"] == 6 and m2["steps"] == 6 * metrics["steps"] // 5
    assert m2["best_val_loss"] <= metrics["best_val_loss"]  # the best state before the resume still counts
    # the first part's logs survive the resume, and the loss curve spans both parts
    from neuroconv.brain.plots import read_metrics

    log = read_metrics(run / "logs")
    assert (run / "logs/version_0/metrics.csv").is_file() and (run / "logs/version_1/metrics.csv").is_file()
    assert log["epoch"].dropna().astype(int).max() == 5 and log["epoch"].dropna().astype(int).min() == 0


def test_gated_layer_runs_in_the_brain_jobs(eeg_store, tmp_path):
    from neuroconv.brain.decode import run_decode

    cfg = tiny_config([eeg_store], tmp_path, **{"model.layer": "gated", "pretrain.max_epochs": 1,
                                                "decode.models": ["scratch"], "decode.max_epochs": 1,
                                                "decode.event_labels": ["left", "right"], "decode.tmax": 2.0})
    assert load_pretrained(run_pretrain(cfg, log=lambda *_: None)).config["backbone"]["layer"] == "gated"
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    preds = pd.read_csv(run / "predictions.csv")
    assert not m["failed"] and len(preds) == m["n_samples"]  # every sample predicted once
    assert m["models"]["scratch"]["accuracy"]["pooled"] == pytest.approx((preds.y_true == preds.y_pred).mean())
    assert m["models"]["scratch"]["kernels"]["folds"]  # the gated layers' long kernels were read out
    with pytest.raises(ConfigError, match="model.layer"):
        tiny_config([eeg_store], tmp_path, **{"model.layer": "gru"})


def test_one_recording_splits_in_time_without_overlap(eeg_store):
    from neuroconv.brain.pretrain import _split

    stores = open_stores([eeg_store])
    w = pretrain_windows(stores, 2.0, 0.5, 512, query="subject == '01'")  # overlapping windows, one recording
    assert w["id"].nunique() == 1
    h = _split(stores, w, load_config("default", {"data.val_fraction": 0.2}))
    assert h.by == "time" and h.dropped > 0
    tr, va = w.iloc[h.train], w.iloc[h.val]
    assert tr["stop"].max() <= va["start"].min()  # no training window reaches into validation time


def test_masked_objective_and_mixed_stores(eeg_store, fmri_store, tmp_path):
    """EEG at 50 Hz and fMRI at TR 2 s in one run: one encoder per channel set."""
    cfg = tiny_config([eeg_store, fmri_store], tmp_path, **{
        "pretrain.objective": "masked", "pretrain.loss": "l1", "model.bidirectional": True,
        "data.window_seconds": 40.0, "data.stride_seconds": 20.0, "pretrain.max_epochs": 1})
    run = run_pretrain(cfg, log=lambda *_: None)
    model = load_pretrained(run)
    sets = model.config["channel_sets"]
    assert sorted(len(v) for v in sets.values()) == [16, 19]
    assert model.config["time_embedding"] is True


def test_ddp_on_cpu_shards_batches(eeg_store, tmp_path):
    """Two CPU processes (ddp_spawn): each rank takes half of the batches per epoch."""
    cfg = tiny_config([eeg_store], tmp_path, **{
        "pretrain.name": "ddp", "pretrain.max_epochs": 1, "pretrain.strategy": "ddp_spawn",
        "pretrain.devices": "2", "pretrain.accelerator": "cpu"})
    run = run_pretrain(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    single = tiny_config([eeg_store], tmp_path, **{"pretrain.name": "one", "pretrain.max_epochs": 1})
    m1 = json.loads((run_pretrain(single, log=lambda *_: None) / "metrics.json").read_text())
    assert m["status"] == "completed"
    assert m["steps"] == -(-m1["steps"] // 2)  # ceil(batches / 2 ranks)


# Backbone configs the shipped brain configs built before ModelConfig moved to
# neuroconv.model (neuroconv at d0b4f56), and their layer_args with model.layer swapped.
EXPECTED = json.loads((Path(__file__).parent / "expected_backbones.json").read_text())


def test_shipped_configs_build_the_backbones_they_built():
    from neuroconv.brain.models import backbone_config

    # every config of the snapshot still ships (configs added since have no snapshot)
    assert sorted(EXPECTED["configs"]) == sorted(EXPECTED["layer_swap"])
    assert set(EXPECTED["configs"]) <= set(builtin_configs())
    for name, want in EXPECTED["configs"].items():
        cfg = load_config(name)
        assert backbone_config(cfg.model, cfg.data.max_len) == want, name
        for layer, args in EXPECTED["layer_swap"][name].items():
            swapped = dataclasses.replace(cfg.model, layer=layer)
            assert backbone_config(swapped, cfg.data.max_len)["layer_args"] == args, (name, layer)


def test_load_pretrained_reads_a_run_exported_before_the_shared_model_config():
    """``pretrain_export_d0b4f56/`` was written by ``export_model`` of neuroconv at d0b4f56
    (a BrainModel of d_model 8, 2 long-conv layers, a time embedding) with the features it
    computed for a fixed input. Its model_config.json holds SequenceModel arguments; they
    load as they are, give the same features, and are what ModelConfig builds today."""
    from safetensors.torch import load_file

    from neuroconv.brain.config import ModelConfig
    from neuroconv.brain.models import backbone_config

    run = Path(__file__).parent / "pretrain_export_d0b4f56"
    model = load_pretrained(run)
    ref = load_file(str(run / "expected_features.safetensors"))
    with torch.no_grad():
        h = model.features(ref["x"], "cs2_example", ref["sfreq"])  # (B L d_model)
    # the same float32 operations as the recording: rounding differences only (torch's defaults)
    torch.testing.assert_close(h, ref["features"])
    exported = json.loads((run / "model_config.json").read_text())["config"]["backbone"]
    cfg = ModelConfig(d_model=8, n_layers=2, channels=2, smooth_width=3, kernel_init="random")
    assert backbone_config(cfg, 16) == exported


def test_next_step_rejects_bidirectional():
    cfg = load_config("default")
    from neuroconv.brain.models import backbone_config

    cfg.model.bidirectional = True
    with pytest.raises(ValueError, match="causal"):
        PretrainTask(dict(backbone=backbone_config(cfg.model, 64), channel_sets={"a": ["x"]}))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(eeg_store, tmp_path, monkeypatch):
    cfg = tiny_config([eeg_store], tmp_path, **{"pretrain.name": "nan", "pretrain.max_epochs": 4,
                                                "pretrain.patience": 0})
    real = PretrainTask.compute_loss

    def flaky(self, batch):
        loss = real(self, batch)
        return loss * float("nan") if self.current_epoch >= 2 and self.training else loss

    monkeypatch.setattr(PretrainTask, "compute_loss", flaky)
    run = run_pretrain(cfg, log=lambda *_: None)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"].startswith("stopped") and "nan" in metrics["status"]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 1  # the last epoch that finished with a finite loss
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_window_longer_than_recordings(eeg_store, tmp_path):
    cfg = tiny_config([eeg_store], tmp_path, **{"data.window_seconds": 1000.0, "data.max_len": 10**6})
    with pytest.raises(ValueError, match="longer than every recording"):
        run_pretrain(cfg, log=lambda *_: None)


def test_empty_store_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    pd.DataFrame(columns=["id", "subject", "n_times", "sfreq", "path"]).to_csv(tmp_path / "empty" / "manifest.csv", index=False)
    with pytest.raises(ValueError, match="empty"):
        open_stores([tmp_path / "empty"])


def test_split_keeps_subjects_apart(eeg_store):
    from neuroconv.brain.pretrain import _split

    stores = open_stores([eeg_store])
    w = pretrain_windows(stores, 2.0, 1.0, 512)
    cfg = load_config("default", {"data.split_by": "subject", "data.val_fraction": 0.25})
    h = _split(stores, w, cfg)
    subj = stores[0].manifest.set_index("id")["subject"]
    tr, va = w.iloc[h.train], w.iloc[h.val]
    assert h.by == "group" and set(subj[tr["id"]]).isdisjoint(subj[va["id"]])
    assert len(tr) + len(va) == len(w)


def test_windows_are_normalised_per_recording(eeg_store):
    stores = open_stores([eeg_store])
    rid = stores[0].ids[0]
    n = int(stores[0].manifest.set_index("id").loc[rid, "n_times"])
    ds = StoreWindows(stores, pd.DataFrame({"store": [0], "id": [rid], "start": [0], "stop": [n]}))
    x = ds[0]["x"].numpy()
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(x.std(0), 1, atol=1e-3)


def test_batch_sampler_never_mixes_channel_sets():
    keys = ["a"] * 7 + ["b"] * 5
    s = ChannelSetBatchSampler(keys, 3, shuffle=True, seed=0)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(12))
    assert all(len({keys[i] for i in b}) == 1 for b in batches)
    s.set_epoch(1)
    assert list(s) != batches  # reshuffled per epoch


def test_span_mask_covers_ratio_within_valid():
    valid = torch.ones(4, 200, dtype=torch.bool)
    valid[1, 50:] = False
    hide = span_mask(valid, 0.2, 10, torch.Generator().manual_seed(0))
    assert not (hide & ~valid).any()
    frac = hide[0].float().mean().item()
    assert 0.1 < frac < 0.3
    assert hide.any(1).all()


def test_builtin_configs_load_and_override():
    assert {"default", "abide", "eegbci"} <= set(builtin_configs())
    for name in ("default", "abide", "eegbci"):
        cfg = load_config(name)
        assert cfg.data.sources or cfg.data.stores
    cfg = load_config("default", {"model.d_model": 8, "decode.models": ["scratch"]})
    assert cfg.model.d_model == 8 and cfg.decode.models == ["scratch"]
    with pytest.raises(ConfigError, match="unknown config key `model.width`.*model.d_model"):
        job_parser("decode").override(cfg, {"model.width": 3})
    with pytest.raises(ConfigError, match="`model.d_model` must be an integer; got big"):
        job_parser("decode").override(cfg, {"model.d_model": "big"})


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {d_modle: 3}\n")
    with pytest.raises(ValueError, match="d_modle"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="built-in"):
        load_config("nonexistent")


def test_precision_auto_is_full_precision_on_cpu(monkeypatch):
    from neuroconv.engine.runner import resolve_precision

    assert resolve_precision("16-mixed", "gpu") == "16-mixed"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_precision("auto", "auto") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", "auto") == "bf16-mixed"
    assert resolve_precision("auto", "cpu") == "32-true"


def test_naive_val_loss_is_persistence_error():
    from neuroconv.brain.pretrain import naive_val_loss

    x = torch.randn(2, 10, 3)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 6:] = False
    batch = {"x": x, "mask": mask}
    d = (x[:, 1:] - x[:, :-1]) ** 2
    want = torch.cat([d[0].reshape(-1), d[1, :5].reshape(-1)]).mean().item()
    assert naive_val_loss([batch], "next_step", "mse") == pytest.approx(want, rel=1e-5)
    want_masked = torch.cat([x[0].abs().reshape(-1), x[1, :6].abs().reshape(-1)]).mean().item()
    assert naive_val_loss([batch], "masked", "l1") == pytest.approx(want_masked, rel=1e-5)


def test_subsets_share_normalisation_statistics(eeg_store):
    stores = open_stores([eeg_store])
    w = pretrain_windows(stores, 2.0, 2.0, 512).assign(y=0)
    ds = StoreWindows(stores, w)
    sub = ds.subset([0, 1])
    sub[0]
    assert ds._stats and ds._stats is sub._stats
    torch.testing.assert_close(sub[1]["x"], ds[1]["x"])
