"""``neuroconv lra``: run configs and overrides, the CLI, and end-to-end training and
evaluation on tiny data written or generated here (seconds each)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from neuroconv.cli import main
from neuroconv.engine.config import ConfigError
from neuroconv.lra import ListOpsDataset, lra_config_names
from neuroconv.lra.configs import lra_parser, model_kwargs
from neuroconv.layers import LAYERS
from neuroconv.lra.models import load_lra_model
from neuroconv.lra.train import batch_to_dict, lra_run_config

TINY = ["--model.d_model", "8", "--model.n_layers", "1", "--train.max_epochs", "1", "--train.batch_size", "8",
        "--train.progress", "none"]


# ----------------------------------------------------------------------------- run config


def test_every_shipped_config_parses_with_every_layer():
    """Every key of every shipped config is a typed key of the one config system (a file
    key it does not know would be refused), with every layer swapped in."""
    for name in lra_config_names():
        for layer in LAYERS:
            cfg = lra_run_config(config=name, layer=layer)
            assert cfg.model.layer == layer and cfg.train.lr > 0
            assert lra_parser().parse(["--config", lra_parser().dump(cfg)])[0] == cfg  # round trip


def test_overrides_layer_swap_and_errors():
    cfg = lra_run_config("listops", overrides={"model.d_model": 32, "train.max_epochs": 2,
                                               "model.lam": 0, "train.lr": 1})
    assert cfg.model.d_model == 32 and cfg.train.max_epochs == 2
    assert cfg.model.lam == 0.0 and cfg.train.lr == 1.0
    assert (cfg.train.patience, cfg.train.precision, cfg.train.devices) == (0, "32-true", 1)  # the LRA's run defaults
    s4d = lra_run_config("listops", layer="s4d", overrides={"model.d_state": 16})
    assert s4d.model.layer == "s4d"
    assert model_kwargs(s4d)["layer_args"] == {  # s4d takes the kernel lr and d_state, not lam or smoothing
        "channels": 2, "bidirectional": False, "dropout": 0.0, "kernel_args": {"lr": 0.0005, "d_state": 16}}
    att = lra_run_config("listops", overrides={"model.layer": "attention"})
    assert model_kwargs(att)["layer_args"] == {"n_heads": 4, "bidirectional": False, "dropout": 0.0}
    assert lra_run_config(config="listops_cpu").task == "listops"
    with pytest.raises(ConfigError, match=r"unknown config key `model.n_head`.*n_heads"):
        lra_run_config("listops", overrides={"model.n_head": 8})
    with pytest.raises(ValueError, match="d_model=15"):  # attention cannot split an odd width into heads
        lra_run_config("listops", layer="attention", overrides={"model.d_model": 15})
    with pytest.raises(ConfigError, match="must be an integer"):
        lra_run_config("listops", overrides={"train.max_epochs": 1.5})
    with pytest.raises(ConfigError, match="true or false"):
        lra_run_config("listops", overrides={"model.prenorm": "maybe"})
    with pytest.raises(ConfigError, match="unknown config key `scheduler.total_steps`"):
        lra_run_config("listops", overrides={"scheduler.total_steps": 5})
    with pytest.raises(ValueError, match="is for task 'listops'"):
        lra_run_config("text", "listops_cpu")
    with pytest.raises(ValueError, match="`task` must be one of"):
        lra_run_config("mnist")
    with pytest.raises(ValueError, match="disagree"):
        lra_run_config("listops", layer="s4d", overrides={"model.layer": "attention"})


# ----------------------------------------------------------------------------- CLI


def test_cli_help(capsys):
    assert main(["lra", "--help"]) == 0
    assert main(["lra", "generate", "--help"]) == 0
    with pytest.raises(SystemExit) as e:
        main(["lra", "reproduce", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for text in ("--task", "--layer", "--model.lam", "--model.kernel_lr", "--train.max_epochs",
                 "--max-epochs", "--print_config", "wiki.{train,valid,test}",
                 "basic_{train,val,test}.tsv", "longconv_plain"):
        assert text in out
    assert main(["lra"]) == 2  # no task: help, non-zero


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["lra", "--task", "listops", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "basic_train.tsv" in err and "basic_test.tsv" in err and "MISSING" in err
    assert main(["lra", "--task", "listops"]) == 1
    assert "--data DIR is required" in capsys.readouterr().err
    assert main(["lra", "--task", "listops", "--data", str(tmp_path), "--model.nope", "1"]) == 1
    assert "unknown config key `model.nope`" in capsys.readouterr().err
    assert main(["lra", "--task", "listops", "--data", str(tmp_path), "--train.max_epochs", "many"]) == 1
    assert "`train.max_epochs` must be an integer; got many" in capsys.readouterr().err
    assert main(["lra", "generate", "--task", "pathfinder", "--out", str(tmp_path / "pf"),
                 "--generate.n_images", "0"]) == 1
    assert "n_images" in capsys.readouterr().err


def test_generate_subcommand_writes_loadable_listops(tmp_path):
    out = tmp_path / "lo"
    assert main(["lra", "generate", "--task", "listops", "--config", "listops_cpu", "--out", str(out),
                 "--generate.n_train", "12", "--generate.n_val", "3", "--generate.n_test", "4"]) == 0
    assert [len(ListOpsDataset(out, s)) for s in ("train", "val", "test")] == [12, 3, 4]


# ----------------------------------------------------------------------------- end to end


def _operator_listops(folder, n, seed):
    """ListOps-format rows whose label is the outer operator (MIN 0, MAX 1, MED 2, SM 3):
    learnable in a few steps, so training must work for the test to pass."""
    g = torch.Generator().manual_seed(seed)
    ops = ["[MIN", "[MAX", "[MED", "[SM"]
    rows = {}
    for split, m in (("train", n), ("val", 48), ("test", 48)):
        lines = ["Source\tTarget"]
        for _ in range(m):
            k = int(torch.randint(0, 4, (), generator=g))
            digits = torch.randint(0, 10, (int(torch.randint(2, 12, (), generator=g)),), generator=g).tolist()
            lines.append(f"( ( {ops[k]} " + " ) ".join(map(str, digits)) + f" ) ] )\t{k}")
        rows[split] = lines
        (folder / f"basic_{split}.tsv").write_text("\n".join(lines) + "\n")
    return rows


def test_lra_listops_trains_and_evaluates_end_to_end(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _operator_listops(data, 256, seed=0)
    argv = ["lra", "--config", "listops_cpu", "--data", str(data), "--out", str(tmp_path / "runs"), "--name", "r",
            "--model.d_model", "16", "--model.n_layers", "1", "--max-epochs", "4", "--train.batch_size", "16",
            "--train.lr", "0.01", "--train.warmup_steps", "4", "--train.progress", "none"]
    assert main(argv) == 0
    run = tmp_path / "runs" / "r"
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "completed" and m["n_train"] == 256 and m["n_test"] == 48
    assert m["steps"] == 4 * (256 // 16) and m["epochs"] == 4
    assert m["test_accuracy"] > 0.7, m  # chance is 0.25: it learned
    for f in ("checkpoints/best.ckpt", "checkpoints/last.ckpt", "model.safetensors", "model_config.json",
              "config.yaml", "plots/kernels.png", "plots/loss.png", "logs/version_0/metrics.csv"):
        assert (run / f).is_file(), f
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["d_model"] == 16 and cfg["train"]["lr"] == 0.01
    # the recorded test accuracy is what the exported model scores, recomputed here
    net = load_lra_model(run)
    ds = ListOpsDataset(data, "test", max_length=cfg["data"]["max_length"])
    correct = 0
    with torch.no_grad():
        for batch in DataLoader(ds, batch_size=7, collate_fn=ds.collate):
            correct += int((net(batch_to_dict(batch)).argmax(-1) == batch.labels).sum())
    assert m["test_accuracy"] == pytest.approx(correct / len(ds))


@pytest.mark.parametrize("layer", ["s4d", "attention", "gated"])
def test_lra_generate_and_swap_layers(tmp_path, layer):
    argv = ["lra", "--config", "listops_cpu", "--data", str(tmp_path / "gen"), "--generate", "--layer", layer,
            "--generate.n_train", "16", "--generate.n_val", "8", "--generate.n_test", "8",
            "--generate.min_length", "5", "--generate.max_length", "30", "--out", str(tmp_path), "--name", "r", *TINY]
    assert main(argv) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["layer"] == layer and m["n_test"] == 8 and m["command"][:2] == ["neuroconv", "lra"]
    # the recorded accuracy is the exported model's on the test split, recomputed here
    net = load_lra_model(tmp_path / "r")
    ds = ListOpsDataset(tmp_path / "gen", "test", max_length=256)
    batch = batch_to_dict(ds.collate([ds[i] for i in range(len(ds))]))
    with torch.no_grad():
        acc = float((net(batch).argmax(-1) == batch["y"]).float().mean())
    assert m["test_accuracy"] == pytest.approx(acc)
    assert (tmp_path / "gen" / "basic_train.tsv").is_file()
    assert (tmp_path / "r" / "plots" / "kernels.png").is_file() == (layer != "attention")


def test_lra_retrieval_pair_task_end_to_end(tmp_path):
    folder = tmp_path / "tsv_data"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 16), ("eval", 6), ("test", 6)):
        lines = []
        for i in range(n):
            a, b = (bytes(torch.randint(97, 123, (int(torch.randint(3, 30, (), generator=g)),), generator=g)
                          .tolist()) for _ in range(2))
            lines.append(f"{i % 2}\tid{i}\tjd{i}\t".encode() + a + b"\t" + b)
        (folder / f"new_aan_pairs.{split}.tsv").write_bytes(b"\n".join(lines) + b"\n")
    assert main(["lra", "--task", "retrieval", "--data", str(tmp_path), "--out", str(tmp_path), "--name", "r",
                 "--data.max_length", "32", "--model.l_max", "32", *TINY]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["n_test"] == 6 and m["n_val"] == 6
    net = load_lra_model(tmp_path / "r")
    assert type(net).__name__ == "PairClassifier" and net.head.features == "nli"


def test_lra_wikitext103_perplexity_end_to_end(tmp_path):
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "wiki.train.tokens").write_text(" = A = \n\n the cat sat on the mat . \n the dog sat on a log , <unk> \n")
    (wt / "wiki.valid.tokens").write_text(" the cat sat on the log . \n")
    (wt / "wiki.test.tokens").write_text(" the zebra sat \n")  # 'zebra' is not in train: <unk>
    assert main(["lra", "--task", "wikitext103", "--data", str(tmp_path / "wt"), "--out", str(tmp_path),
                 "--name", "r", "--data.seq_len", "8", "--model.l_max", "8", *TINY]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["layer"] == "gated" and m["test_tokens"] == 4 - 1  # the, <unk>, sat, <eos>
    assert m["test_perplexity"] == pytest.approx(math.exp(m["test_nll"]))
    net = load_lra_model(tmp_path / "r")
    assert net.config["model"]["vocab_size"] == 2 + 12  # <eos>, <unk> and the 12 training words
    # the test NLL, recomputed by hand from the exported model's logits on "the zebra sat"
    from neuroconv.lra.wikitext import wikitext_vocab

    vocab = wikitext_vocab(wt)
    ids = [vocab.index["the"], vocab.unk_id, vocab.index["sat"], vocab.eos_id]
    with torch.no_grad():
        logits = net({"x": torch.tensor([ids[:-1]]), "mask": None})[0]
    nll = -torch.log_softmax(logits.double(), -1)[torch.arange(3), torch.tensor(ids[1:])].mean()
    assert m["test_nll"] == pytest.approx(float(nll), rel=1e-4)


def test_lra_model_data_mismatch_is_explained(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _operator_listops(data, 8, seed=1)
    with pytest.raises(ValueError, match="--model.l_max"):
        from neuroconv.lra.train import run_lra

        run_lra(lra_run_config(config="listops_cpu", overrides={"model.l_max": 100, "train.out": str(tmp_path)}),
                data, log=None)


def test_reproduce_runs_every_arm_on_the_same_data(tmp_path):
    out = tmp_path / "repro"
    argv = ["lra", "reproduce", "--out", str(out), "--generate.n_train", "16", "--generate.n_val", "8",
            "--generate.n_test", "8", "--generate.min_length", "5", "--generate.max_length", "30", *TINY]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    arms = {r["arm"]: r for r in res["arms"]}
    assert list(arms) == ["longconv_squash_smooth", "longconv_plain", "s4d", "attention"]
    assert res["data"]["train"] == 16 and res["data"]["test"] == 8 and "neuroconv lra reproduce" in res["command"]
    cfgs = {a: yaml.safe_load((out / "runs" / a / "config.yaml").read_text()) for a in arms}
    ka = {a: c["model"] for a, c in cfgs.items()}
    assert (ka["longconv_squash_smooth"]["lam"], ka["longconv_squash_smooth"]["smooth_width"]) == (0.002, 3)
    assert (ka["longconv_plain"]["lam"], ka["longconv_plain"]["smooth_width"]) == (0.0, 1)
    assert cfgs["s4d"]["model"]["layer"] == "s4d" and cfgs["attention"]["model"]["layer"] == "attention"
    for a, c in cfgs.items():  # the same budget and model size everywhere
        assert (c["model"]["d_model"], c["model"]["n_layers"], c["train"]["max_epochs"]) == (8, 1, 1), a
        m = json.loads((out / "runs" / a / "metrics.json").read_text())
        assert m["test_accuracy"] == arms[a]["test_accuracy"] and m["n_test"] == 8
        # one roughness: the reproduction's table recomputes what the run's metrics.json recorded
        assert (arms[a]["kernels"] is None) == (m["kernels"] is None) == (a == "attention"), a
        if m["kernels"] is not None:
            assert arms[a]["kernels"]["roughness"] == pytest.approx(m["kernels"]["roughness"], rel=1e-9), a
    # smoothing (width 3) lowers the second-difference energy of the kernels
    assert arms["longconv_squash_smooth"]["kernels"]["roughness"] < arms["longconv_plain"]["kernels"]["roughness"]
    assert arms["longconv_plain"]["kernels"]["zero_fraction"] == 0.0  # no squash: no exact zeros
    assert len(res["paired"]) == 6
    for pair in res["paired"]:  # exact McNemar: two-sided binomial on the discordant examples, by hand
        a, b = pair["only_first_correct"], pair["only_second_correct"]
        diff = round((arms[pair["first"]]["test_accuracy"] - arms[pair["second"]]["test_accuracy"]) * 8)
        assert a - b == diff  # discordant counts agree with the two accuracies
        n = a + b
        want = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(a, b) + 1)) / 2**n) if n else 1.0
        assert pair["p_value"] == pytest.approx(want)
    labels = ListOpsDataset(out / "data", "test").labels
    assert res["majority_baseline"]["test_accuracy"] == pytest.approx(
        labels.count(res["majority_baseline"]["class"]) / len(labels))
    assert (out / "kernels.png").is_file() and "| longconv_plain | longconv | 0.0 | 1 |" in (out / "results.md").read_text()
    # a second call reuses the generated data
    before = (out / "data" / "basic_train.tsv").stat().st_mtime_ns
    assert main([*argv, "--arms", "attention"]) == 0
    assert (out / "data" / "basic_train.tsv").stat().st_mtime_ns == before
    (out / "results.md").unlink()
    assert main(["lra", "reproduce", "--out", str(out), "--report"]) == 0  # no training
    assert "| attention | attention | - | - |" in (out / "results.md").read_text()
    assert main(["lra", "reproduce", "--out", str(tmp_path / "empty"), "--report"]) == 1
