"""The `pretrain` / `decode` command lines: config file + dotted flags + shortcuts, on the
one config system every job shares."""

from __future__ import annotations

import json

import pytest
import yaml

from neuroconv.cli import main


def _config_file(tmp_path, store):
    cfg = {
        "name": "cli",
        "data": {"stores": [str(store)], "window_seconds": 2.0, "stride_seconds": 2.0, "max_len": 128},
        "model": {"d_model": 8, "n_layers": 1, "dropout": 0.0, "kernel_dropout": 0.0},
        "pretrain": {"max_epochs": 1, "progress": "none", "out": str(tmp_path / "runs"), "batch_size": 8,
                     "query": "subject in ['01', '02']"},
        "decode": {"event_labels": ["left", "right"], "tmin": 0.0, "tmax": 2.0, "n_splits": 2,
                   "max_epochs": 1, "progress": "none", "out": str(tmp_path / "runs"),
                   "models": ["csp_lda"], "query": "subject not in ['01', '02']"},
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
    saved = yaml.safe_load((run / "config.yaml").read_text())  # the resolved config, flags applied
    assert saved["model"]["d_model"] == 16 and saved["pretrain"]["seed"] == 3 and saved["decode"]["seed"] == 0
    assert json.loads((run / "model_config.json").read_text())["config"]["backbone"]["d_model"] == 16

    rc = main(["decode", "--config", str(cfg), "--compare", "--decode.pretrained", str(run),
               "--decode.name", "d", "--model.d_model", "16"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    metrics = json.loads((tmp_path / "runs" / "d" / "metrics.json").read_text())
    # every neural model and every EEG baseline, braindecode's networks included
    assert set(metrics["models"]) == {"scratch", "finetune", "probe", "attention", "covconv", "csp_lda", "bandpower",
                                      "ts_lr", "xdawn_ts", "erp_lda", "eegnet", "shallow_fbcsp"}
    assert not metrics["failed"]
    # the same named run again: refused, not overwritten
    rc = main(["decode", "--config", str(cfg), "--decode.name", "d"])
    assert rc == 1 and "exists already" in capsys.readouterr().err


def test_cli_reports_bad_input_with_exit_status(eeg_store, tmp_path, capsys):
    cfg = _config_file(tmp_path, eeg_store)
    rc = main(["decode", "--config", str(cfg), "--decode.target", "no_such_column"])
    err = capsys.readouterr().err
    assert rc == 1 and "no_such_column" in err and "not a column" in err
    rc = main(["pretrain", "--config", str(cfg), "--model.n_layers", "two"])
    assert rc == 1 and "`model.n_layers` must be an integer; got two" in capsys.readouterr().err
    rc = main(["pretrain", "--config", str(cfg), "--model.dmodel", "3"])
    err = capsys.readouterr().err
    assert rc == 1 and "unknown config key `model.dmodel`" in err and "model.d_model" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  strides: 3\n")
    rc = main(["decode", "--config", str(bad)])
    err = capsys.readouterr().err
    assert rc == 1 and "unknown config key `data.strides`" in err and str(bad) in err
    rc = main(["decode", "--decode.cv", "kfold"])
    assert rc == 1 and "`decode.cv` must be one of 'group_kfold', 'leave_group_out', 'none'" in capsys.readouterr().err


def test_print_config_lists_and_data_inputs(tmp_path, capsys):
    """--print_config shows the resolved config: command-line lists replace the file's,
    and data inputs given on the command line replace the file's data inputs."""
    assert main(["decode", "--print_config"]) == 0
    default = yaml.safe_load(capsys.readouterr().out)
    assert default["data"]["sources"] and default["decode"]["models"] != ["scratch", "csp_lda"]
    assert main(["decode", "--decode.models", "scratch", "csp_lda", "--data.stores", "st", "--max-epochs", "3",
                 "--print_config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["decode"]["models"] == ["scratch", "csp_lda"]
    assert cfg["data"]["stores"] == ["st"] and cfg["data"]["sources"] == []  # not the simulated default too
    assert cfg["decode"]["max_epochs"] == 3 and cfg["pretrain"]["max_epochs"] == default["pretrain"]["max_epochs"]
    assert main(["decode", "--decode.models", "[attention]", "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["decode"]["models"] == ["attention"]


@pytest.mark.parametrize("job, section", [("pretrain", "pretrain"), ("decode", "decode")])
def test_shortcuts_mean_the_same_in_every_job(job, section, capsys):
    assert main([job, "--max-epochs", "7", "--max-steps", "11", "--seed", "5", "--out", "o", "--print_config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)[section]
    assert (cfg["max_epochs"], cfg["max_steps"], cfg["seed"], cfg["out"]) == (7, 11, 5, "o")


def test_lra_shares_the_shortcuts(capsys):
    assert main(["lra", "--task", "listops", "--max-epochs", "7", "--max-steps", "11", "--seed", "5", "--out", "o",
                 "--print_config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)["train"]
    assert (cfg["max_epochs"], cfg["max_steps"], cfg["seed"], cfg["out"]) == (7, 11, 5, "o")


def test_help_lists_config_keys(capsys):
    assert main(["decode", "--help"]) == 0
    out = capsys.readouterr().out
    for key in ("--decode.target", "--decode.cv", "--model.layer", "--data.stores", "--compare", "--max-epochs",
                "--decode.pretrain_in_fold", "--decode.test_stores", "--transductive", "--print_config"):
        assert key in out, key
