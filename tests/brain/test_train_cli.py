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
                "--decode.pretrain_in_fold", "--decode.test_stores", "--transductive", "--print-config"):
        assert key in out, key


# --------------------------------------------------------------------------- the help pages
def _help(main_args, capsys, monkeypatch, columns=80) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(main_args) == 0
    return capsys.readouterr().out


def _block(out: str, title: str) -> list[str]:
    """The lines of the help block that starts with the line ``title``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1:end]


@pytest.mark.parametrize("job, other", [("pretrain", "decode"), ("decode", "pretrain")])
@pytest.mark.parametrize("columns", [80, 100, 200])
def test_help_is_one_screen_of_the_jobs_own_options(job, other, columns, capsys, monkeypatch):
    import dataclasses
    import typing

    from neuroconv.brain.config import DecodeConfig, PretrainConfig
    from neuroconv.engine.config import SHORTCUTS, TrainerConfig

    out = _help([job, "--help"], capsys, monkeypatch, columns)
    lines = out.splitlines()
    assert len(lines) < 150, len(lines)
    assert max(map(len, lines)) <= columns or columns < 100  # (long example commands may pass 80)
    assert f"--{other}." not in out  # the other job's section is --help-all's
    own = DecodeConfig if job == "decode" else PretrainConfig
    loop, hints = {f.name for f in dataclasses.fields(TrainerConfig)}, typing.get_type_hints(own)
    for f in dataclasses.fields(own):  # every protocol key, one per line
        if f.name not in loop:
            flag = f"--{job}.{f.name}" + (".KEY" if dataclasses.is_dataclass(hints[f.name]) else " ")
            assert sum(line.lstrip().startswith(flag) for line in lines) == 1, flag
    for section in ("what to run:", "data (--data.KEY)", "model (--model.KEY)", f"{job} (--{job}.KEY)",
                    "shortcuts", "job flags:"):
        assert any(line.startswith(section) for line in lines), section
    shortcuts = _block(out, "shortcuts")
    for flag in [*SHORTCUTS, "--data-dir"]:  # one per line
        assert sum(line.startswith(f"  {flag} ") for line in shortcuts) == 1, flag
    assert any(line.startswith("  --print-config ") for line in _block(out, "job flags:"))
    examples = [line for line in _block(out, "examples:") if line.startswith(f"  neuroconv {job}")]
    assert 3 <= len(examples) <= 5


def test_help_all_lists_every_key_and_each_models_section(capsys, monkeypatch):
    from neuroconv.brain import zoo
    from neuroconv.brain.config import experiment_class
    from neuroconv.engine.config import leaf_types

    out = _help(["decode", "--help-all"], capsys, monkeypatch)
    keys = leaf_types(experiment_class())
    assert all(f"--{k}" in out for k in keys), [k for k in keys if f"--{k}" not in out]
    with_settings = [n for n, e in zoo.ZOO.items() if e.settings is not None]
    assert with_settings and all(f"--decode.{n}." in out for n in with_settings)
    short = _help(["decode", "--help"], capsys, monkeypatch)
    assert not any(f"--decode.{n}." in short for n in with_settings)  # left to --help-all
    assert "--print-config" in out


def test_help_lists_come_from_the_registries(tmp_path, capsys, monkeypatch):
    """A model, a baseline, a config, a task, a layer and a data source registered now
    show in the help: no list is written by hand."""
    from dataclasses import dataclass

    from neuroconv.brain import config as brain_config
    from neuroconv.brain import zoo
    from neuroconv.brain.tasks import TASKS
    from neuroconv.brain.tasks.windows import WindowTask
    from neuroconv.layers import LAYERS
    from neuroconv.pipelines.sources import SOURCES, Option, Source

    @dataclass
    class ToySettings:
        """Settings of the toy model.

        Args:
            alpha: A toy knob.
        """

        alpha: float = 1.0

    class ToyTask(WindowTask):
        """Toy targets for the help test."""

        name = "toy_task"

    neural = zoo.Traits("ours", "neural", ("eeg",))
    classical = zoo.Traits("baseline", "classical", ("eeg",), library="toylib")
    monkeypatch.setitem(zoo.ZOO, "toy_ours", zoo.Entry("toy_ours", neural, zoo.Decoder, ToySettings, "a toy of ours"))
    monkeypatch.setitem(zoo.ZOO, "toy_base", zoo.Entry("toy_base", classical, zoo.Decoder, None, "a toy baseline"))
    monkeypatch.setitem(TASKS, "toy_task", ToyTask())
    monkeypatch.setitem(LAYERS, "toy_layer", LAYERS["longconv"])
    monkeypatch.setitem(SOURCES, "toy-source", Source("toy-source", lambda **kw: None, help="a toy source",
                                                      options=(Option(("--toy-knob",), "a toy option"),)))
    builtin = brain_config.builtin_configs()
    (tmp_path / "toy_config.yaml").write_text("name: toy\n")
    toy_config = tmp_path / "toy_config.yaml"
    monkeypatch.setattr(brain_config, "builtin_configs", lambda: {**builtin, "toy_config": toy_config})

    out = _help(["decode", "--help"], capsys, monkeypatch, columns=100)
    models, names = _block(out, "models"), "\n".join(_block(out, "names"))
    rows = []  # a list's row, with its wrapped continuation lines joined
    for line in models:
        if line.startswith("    ") and rows:
            rows[-1] += " " + line.strip()
        else:
            rows.append(line)
    models = rows
    ours = next(line for line in models if line.startswith("  windows, ours:"))
    baselines = next(line for line in models if line.startswith("  windows, baselines:"))
    assert "toy_ours" in ours.split(": ")[1].split(", ") and "toy_base" not in ours
    assert "toy_base" in baselines.replace(",", "").split() and "toy_ours" not in baselines
    full = _help(["decode", "--help-all"], capsys, monkeypatch, columns=100)
    toy = next(line for line in full.splitlines() if line.strip().startswith("toy_base "))
    assert "a toy baseline" in toy and "toylib" in toy  # --help-all says what each model is
    for name in ("toy_config", "toy_layer", "toy_task", "toy-source"):
        assert name in names, name
    assert "--decode.toy_ours.alpha" not in out
    assert "--decode.toy_ours.alpha" in _help(["decode", "--help-all"], capsys, monkeypatch)
    pretrain = _help(["pretrain", "--help"], capsys, monkeypatch, columns=100)
    assert "toy_layer" in pretrain and "toy_config" in pretrain and "toy_ours" not in pretrain
    # an option of the toy source is recognised as an option of `neuroconv preprocess`
    assert main(["decode", "--toy-knob", "3"]) == 1
    err = capsys.readouterr().err
    assert "`--toy-knob`" in err and "neuroconv preprocess" in err and "toy-source" in err


@pytest.mark.parametrize("job", ["pretrain", "decode"])
def test_help_examples_parse(job, capsys):
    """Every example of the help is a valid command line: its configs, models and keys exist."""
    from neuroconv.brain.cli import parse
    from neuroconv.brain.config import _JOBS

    for command, _ in _JOBS[job]["examples"]:
        argv = command.split(">")[0].split()
        assert argv[:2] == ["neuroconv", job]
        parse(job, [a.replace("~", "/tmp") for a in argv[2:] if a != "--print-config"], log=lambda *_: None)


# --------------------------------------------------------------------------- one flag style
def test_print_config_both_spellings(capsys):
    assert main(["decode", "--print-config", "--seed", "4"]) == 0
    dashed = capsys.readouterr().out
    assert main(["decode", "--print_config", "--seed", "4"]) == 0
    assert yaml.safe_load(dashed) == yaml.safe_load(capsys.readouterr().out)
    assert yaml.safe_load(dashed)["decode"]["seed"] == 4


def test_data_dir_shortcut_and_switches(capsys):
    assert main(["decode", "--data-dir", "/data/root", "--decode.refit", "false", "--decode.transductive",
                 "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["data"]["data_dir"] == "/data/root"
    assert cfg["decode"]["refit"] is False and cfg["decode"]["transductive"] is True  # a key alone: true
    assert cfg["data"]["sources"]  # the root of the sources: the inputs stay the config's
    assert main(["pretrain", "--data-dir=/r", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["data_dir"] == "/r"


def test_an_option_of_preprocess_says_where_it_belongs(capsys):
    assert main(["decode", "--l-freq", "1"]) == 1
    err = capsys.readouterr().err
    assert "`--l-freq`" in err and "is an option of `neuroconv preprocess" in err
    assert "decode reads sequence stores made by preprocess" in err and "l_freq" in err
    assert "eegbci" in err and "EEG/MEG steps" in err
    assert main(["pretrain", "--jobs", "2"]) == 1
    assert "pretrain reads sequence stores" in capsys.readouterr().err


def test_near_misses_name_the_key(capsys):
    assert main(["decode", "--lr", "0.1"]) == 1
    assert "did you mean --decode.lr?" in capsys.readouterr().err
    assert main(["pretrain", "--lr", "0.1"]) == 1
    assert "did you mean --pretrain.lr?" in capsys.readouterr().err
    assert main(["decode", "--decode.group-by", "site"]) == 1
    assert "--decode.group_by" in capsys.readouterr().err
    assert main(["decode", "--max-epoch", "3"]) == 1
    assert "Did you mean --max-epochs" in capsys.readouterr().err
    assert main(["decode", "--decode.n_split", "3"]) == 1
    err = capsys.readouterr().err
    assert "unknown config key `decode.n_split`" in err and "Did you mean decode.n_splits" in err


# --------------------------------------------------------------------------- names checked before any work
def test_layer_and_source_names_are_checked_against_their_registries(monkeypatch, capsys):
    from neuroconv.brain.config import check_names, job_parser
    from neuroconv.layers import LAYERS
    from neuroconv.pipelines.sources import SOURCES

    cfg = job_parser("decode").parse([])[0]
    check_names(cfg)  # the default config's names are known
    cfg.model.layer = "no_such_layer"
    with pytest.raises(ValueError, match="model.layer must be one of") as e:
        check_names(cfg)
    assert all(name in str(e.value) for name in LAYERS) and "no_such_layer" in str(e.value)
    monkeypatch.setitem(LAYERS, "no_such_layer", LAYERS["longconv"])  # registered: accepted
    check_names(cfg)

    cfg.data.sources[0].pipeline = "no_such_source"
    with pytest.raises(ValueError, match=r"data.sources\[0\].pipeline: unknown data source 'no_such_source'") as e:
        check_names(cfg)
    assert all(name in str(e.value) for name in SOURCES)
    cfg.data.sources[0].pipeline = "eeg_notebooks"  # `_` for `-`, as the registry reads it
    check_names(cfg)

    rc = main(["decode", "--data.sources", "[{pipeline: nope, store: s}]"])
    err = capsys.readouterr().err
    assert rc == 1 and "data.sources[0].pipeline" in err and "simulate-eeg" in err
