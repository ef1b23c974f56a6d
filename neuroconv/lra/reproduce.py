"""The paper's central comparison at CPU scale: ``neuroconv lra reproduce --out DIR``.

Fu et al. 2023 find that directly learned long kernels need regularization, squashing
small weights (λ) and smoothing, to match state-space models; without it they fall
behind. This runs that comparison on generated ListOps
(``configs/lra/listops_cpu.yaml``: lengths 50-250, 4 layers of width 64) with four arms
on the same data, model size, optimizer, epochs and seed:

==========================  =================================================
arm                         layer
==========================  =================================================
``longconv_squash_smooth``  long conv, λ = 0.002 (the authors' ListOps value),
                            smooth_width 3
``longconv_plain``          long conv, λ = 0 and smooth_width 1 (no squash, no
                            smoothing; kernel dropout kept)
``s4d``                     S4D-Lin kernels (``--layer s4d``)
``attention``               causal multi-head attention with rotary positions
==========================  =================================================

Output folder::

    DIR/data/            the generated ListOps TSVs (reused when present)
    DIR/runs/<arm>/      one ``neuroconv lra`` run folder per arm
    DIR/results.json     per arm: test/val accuracy, parameters, steps, seconds, kernel
                         statistics; the majority-class baseline; exact McNemar tests
                         between the arms on the same test examples
    DIR/results.md       the same as Markdown tables, with the command and machine
    DIR/kernels.png      learned kernels of the long-conv and S4D arms, side by side

``neuroconv lra reproduce --out DIR --report`` rewrites the last three from the run
folders without training (:func:`write_report`).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shlex
import time
from pathlib import Path

from neuroconv.engine.compare import mcnemar
from neuroconv.io import atomic_write_json, atomic_write_text

__all__ = ["ARMS", "run_reproduction", "write_report", "machine_description", "plot_kernel_comparison",
           "kernel_stats"]

CONFIG = "listops_cpu"

#: arm -> (layer, dotted overrides of listops_cpu.yaml)
ARMS = {
    "longconv_squash_smooth": ("longconv", {}),
    "longconv_plain": ("longconv", {"model.lam": 0.0, "model.smooth_width": 1}),
    "s4d": ("s4d", {}),
    "attention": ("attention", {}),
}


def machine_description() -> str:
    """CPU model (from /proc/cpuinfo when readable), core count, torch version and threads."""
    import os

    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores visible, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def kernel_stats(net) -> dict | None:
    """Summary of a trained network's kernels (first channel of every layer, eval mode),
    as every run's ``metrics.json`` records it (:func:`neuroconv.engine.plots.kernel_summary`):
    ``roughness``, the mean over layers of :func:`neuroconv.engine.plots.roughness`
    (second-difference energy over energy: 0 for a straight line, about 6 for white
    noise), ``zero_fraction`` (share of taps exactly 0, from the squash) and ``layers``.
    None when the network has no kernels."""
    from neuroconv.engine.plots import kernel_summary

    return kernel_summary(net)


def plot_kernel_comparison(nets: dict, path, layers=(0, -1), n_features: int = 4):
    """Kernels of several trained networks side by side: one column per network, one row
    per chosen layer, ``n_features`` kernel traces each (first channel). Networks
    without long-conv kernels are skipped. Returns the path or None."""
    import numpy as np

    from neuroconv.engine.plots import model_kernels, pyplot, save_figure

    cols = [(name, model_kernels(net)) for name, net in nets.items()]
    cols = [(n, k) for n, k in cols if k]
    if not cols:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(layers), len(cols), figsize=(3.1 * len(cols), 1.9 * len(layers)), squeeze=False,
                             sharex=True)
    for j, (name, kernels) in enumerate(cols):
        for i, li in enumerate(layers):
            lname, k = kernels[li]
            ax = axes[i][j]
            for h in np.linspace(0, k.shape[0] - 1, min(n_features, k.shape[0])).astype(int):
                ax.plot(k[h], lw=0.7)
            ax.axhline(0, color="0.7", lw=0.5)
            ax.set_title(f"{name}\n{lname.split('.layer')[0] or lname}", fontsize=7)
            ax.tick_params(labelsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("lag (steps)", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, Path(path))


def _table(rows: list[dict]) -> str:
    lines = ["| arm | layer | λ | smooth | test acc. | val acc. | parameters | steps | train time (s) "
             "| kernel roughness | zero taps |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ks = r.get("kernels")
        rough = f"{ks['roughness']:.3g}" if ks else "-"
        zeros = f"{ks['zero_fraction']:.2f}" if ks else "-"
        lines.append(
            f"| {r['arm']} | {r['layer']} | {r['lam'] if r['lam'] is not None else '-'} | "
            f"{r['smooth_width'] if r['smooth_width'] is not None else '-'} | {r['test_accuracy']:.4f} | "
            f"{r['val_accuracy']:.4f} | {r['parameters']:,} | {r['steps']} | {r['train_seconds']:.0f} | "
            f"{rough} | {zeros} |"
        )
    return "\n".join(lines)


def run_reproduction(out, arms=None, *, overrides: dict | None = None, threads: int | None = None,
                     progress: str = "none", command: str | None = None, log=print) -> dict:
    """Run the comparison into ``out`` (see the module doc); returns the results dict.

    Parameters:
        arms: names from :data:`ARMS` (default: all four, in that order).
        overrides: dotted config overrides applied to every arm (e.g.
            ``{"train.epochs": 5, "generate.n_train": 8000}``); the arms' own settings
            (layer, λ, smoothing) are applied after them.
        threads: ``torch.set_num_threads`` for the whole run.
        progress: progress display of each run (``none``, ``rich``, ``tqdm``).
        command: the command line, recorded in the results.
    """
    import torch

    import shutil

    from neuroconv.engine.config import to_dict

    from .configs import drop_none
    from .train import generate_data, lra_run_config, run_lra

    arms = list(arms or ARMS)
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise ValueError(f"unknown arm(s) {bad}; choose from {list(ARMS)}.")
    if threads is not None:
        if threads < 1:
            raise ValueError(f"`threads` must be >= 1; got {threads}.")
        torch.set_num_threads(threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.time()

    common = {"train.progress": progress, **(overrides or {})}
    data_dir = out / "data"
    base = lra_run_config(config=CONFIG, overrides=common)
    stamp = data_dir / "generate.json"  # regenerate when the generator arguments change
    generator = drop_none(to_dict(base.generate))
    if not (data_dir / "basic_test.tsv").is_file() or not stamp.is_file() or \
            json.loads(stamp.read_text()) != generator:
        generate_data(base, data_dir, log=log)
        atomic_write_json(stamp, generator)

    rows = []
    for arm in arms:
        layer, extra = ARMS[arm]
        cfg = lra_run_config(config=CONFIG, layer=layer, overrides={**common, **extra})
        cfg.train.out, cfg.train.name = str(out / "runs"), arm
        log(f"\n=== {arm}: {layer} ===")
        if (out / "runs" / arm).exists():  # this command's own earlier run of the arm: replaced
            log(f"replacing the earlier run {out / 'runs' / arm}")
            shutil.rmtree(out / "runs" / arm)
        run_dir = run_lra(cfg, data_dir, log=log, argv=shlex.split(command) if command else None)
        m = json.loads((run_dir / "metrics.json").read_text())
        rows.append({
            "arm": arm, "layer": layer,
            "lam": cfg.model.lam if layer == "longconv" else None,
            "smooth_width": cfg.model.smooth_width if layer == "longconv" else None,
            **{k: m[k] for k in ("test_accuracy", "val_accuracy", "test_loss", "parameters", "steps", "epochs",
                                 "train_seconds", "seconds_per_step", "seconds")},
            "run_dir": str(run_dir),
        })
        log(f"{arm}: test accuracy {m['test_accuracy']:.4f} ({m['train_seconds']:.0f} s training)")

    counts = {s: sum(1 for _ in open(data_dir / f"basic_{s}.tsv", encoding="utf-8")) - 1
              for s in ("train", "val", "test")}
    results = {
        "command": command,
        "config": CONFIG,
        "overrides": common,
        "data": {"dir": str(data_dir), **counts, "generate": generator},
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - t0, 1),
        "machine": machine_description(),
        "arms": rows,
    }
    atomic_write_json(out / "results.json", results)
    return write_report(out, log=log)


def write_report(out, log=print) -> dict:
    """(Re)write the report of a finished comparison in ``out`` from its run folders.

    Reads ``out/results.json`` (written by :func:`run_reproduction`), reloads every arm's
    exported model, predicts the test split again (the accuracy must equal the one the
    run recorded), and adds: the majority-class baseline (the most frequent training
    label), exact McNemar tests between every pair of arms on the same test examples,
    and the kernel statistics (:func:`kernel_stats`). Writes ``results.json``,
    ``results.md`` and ``kernels.png``; returns the results dict.
    """
    import itertools
    from collections import Counter

    import numpy as np
    import torch
    import yaml
    from torch.utils.data import DataLoader

    from .configs import drop_none
    from .data import ListOpsDataset
    from .models import load_lra_model
    from .train import batch_to_dict

    out = Path(out)
    path = out / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `neuroconv lra reproduce --out {out}` first.")
    results = json.loads(path.read_text())
    data_dir = Path(results["data"]["dir"])
    train_labels = ListOpsDataset(data_dir, "train").labels
    majority = Counter(train_labels).most_common(1)[0][0]
    correct, nets = {}, {}
    for row in results["arms"]:
        run_dir = Path(row["run_dir"])
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        ds = ListOpsDataset(data_dir, "test", **drop_none(cfg["data"]))
        net = nets[row["arm"]] = load_lra_model(run_dir)
        preds = []
        with torch.no_grad():
            for batch in DataLoader(ds, batch_size=100, collate_fn=ds.collate):
                preds.append(net(batch_to_dict(batch)).argmax(-1).numpy())
        labels = np.asarray(ds.labels)
        correct[row["arm"]] = np.concatenate(preds) == labels
        acc = float(correct[row["arm"]].mean())
        if abs(acc - row["test_accuracy"]) > 1e-9:
            raise RuntimeError(f"{row['arm']}: the exported model scores {acc} on test, the run recorded "
                               f"{row['test_accuracy']}; the run folder does not match results.json.")
        row["kernels"] = kernel_stats(net)
    results["majority_baseline"] = {"class": int(majority), "test_accuracy": float(np.mean(labels == majority))}
    results["paired"] = [{"first": a, "second": b, **mcnemar(correct[a], correct[b])}
                         for a, b in itertools.combinations(correct, 2)]
    atomic_write_json(path, results)
    plot_kernel_comparison(nets, out / "kernels.png")

    rows, n_test = results["arms"], results["data"]["test"]
    md = [f"# CPU-scale ListOps comparison ({results['started_utc']})", "",
          f"Command: `{results['command']}`" if results.get("command") else "Command: (Python API)", "",
          f"Machine: {results['machine']}", "",
          f"Data: generated ListOps, {results['data']['train']} / {results['data']['val']} / {n_test} examples, "
          f"generate = {results['data']['generate']}", "",
          _table(rows), "",
          "Kernel roughness: energy of the second difference over energy, mean over layers "
          "(`neuroconv.engine.plots.roughness`; 0 for a straight line, about 6 for white noise). "
          "Zero taps: share of taps exactly 0.", "",
          f"Majority class ({majority}) on test: {results['majority_baseline']['test_accuracy']:.4f}. "
          f"Standard error of one accuracy near 0.35 on {n_test} examples: "
          f"{(0.35 * 0.65 / max(n_test, 1)) ** 0.5:.3f}.", "",
          "Exact McNemar tests on the same test examples:", "",
          "| first | second | only first correct | only second correct | p |", "|---|---|---|---|---|"]
    md += [f"| {p['first']} | {p['second']} | {p['only_first_correct']} | {p['only_second_correct']} | "
           f"{p['p_value']:.3f} |" for p in results["paired"]]
    md += ["", f"Total wall time: {results['wall_seconds']:.0f} s."]
    atomic_write_text(out / "results.md", "\n".join(md) + "\n")
    log("\n" + _table(rows))
    log(f"\nresults: {out / 'results.md'}, {out / 'results.json'}; kernels: {out / 'kernels.png'}")
    return results
