"""The `pretrain` / `decode` command lines: config file + dotted overrides + shortcuts."""

from __future__ import annotations

import json

import yaml

from neuroconv.cli import main


def _config_file(tmp_path, store):
    cfg = {
        "name": "cli",
        "data": {"stores": [str(store)], "window_seconds": 2.0, "stride_seconds": 2.0, "batch_size": 8,
                 "max_len": 128},
        "model": {"d_model": 8, "n_layers": 1, "dropout": 0.0, "kernel_dropout": 0.0},
        "pretrain": {"max_epochs": 1, "progress": "none", "out": str(tmp_path / "runs")},
        "decode": {"event_labels": ["left", "right"], "tmin": 0.0, "tmax": 2.0, "n_splits": 2,
                   "max_epochs": 1, "progress": "none", "out": str(tmp_path / "runs"),
                   "models": ["csp_lda"]},
    }
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_pretrain_then_decode_compare_from_the_cli(eeg_store, tmp_path, capsys):
    cfg = _config_file(tmp_path, eeg_store)
    rc = main(["pretrain", "--config", str(cfg), "--model.d_model", "16", "--seed", "3",
               "--pretrain.name", "p"])
    out = capsys.readouterr().out
    assert rc == 0, out
    run = tmp_path / "runs" / "p"
    assert "Run folder" in out and "neuroconv decode" in out and str(run) in out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["d_model"] == 16 and saved["pretrain"]["seed"] == 3
    assert json.loads((run / "model_config.json").read_text())["config"]["backbone"]["d_model"] == 16

    rc = main(["decode", "--config", str(cfg), "--compare", "--decode.pretrained", str(run),
               "--decode.name", "d", "--model.d_model", "16"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    metrics = json.loads((tmp_path / "runs" / "d" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"scratch", "finetune", "probe", "attention", "csp_lda"}


def test_cli_reports_bad_input_with_exit_status(eeg_store, tmp_path, capsys):
    cfg = _config_file(tmp_path, eeg_store)
    rc = main(["decode", "--config", str(cfg), "--decode.target", "no_such_column"])
    err = capsys.readouterr().err
    assert rc == 1 and "no_such_column" in err and "not a column" in err
    rc = main(["pretrain", "--config", str(cfg), "--model.n_layers", "two"])
    assert rc == 1 and "integer" in capsys.readouterr().err


def test_help_lists_config_keys(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["decode", "--help"])
    out = capsys.readouterr().out
    for key in ("--decode.target", "--decode.cv", "--model.layer", "--data.stores", "--compare", "--devices"):
        assert key in out
