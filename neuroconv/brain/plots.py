"""Brain-run plots: confusion matrices and the plots across decode runs (label
efficiency, kernel roughness against score), and ``neuroconv plot``.

The loss curves, the kernel plots and :func:`roughness` live in
:mod:`neuroconv.engine.plots` (shared with the LRA benchmarks) and are re-exported here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroconv.engine.plots import (kernel_summary, model_kernels, plot_kernels, plot_losses, pyplot,
                                    read_metrics, roughness, save_figure)

__all__ = ["read_metrics", "plot_losses", "plot_kernels", "plot_confusion", "model_kernels", "roughness",
           "kernel_summary", "plot_label_efficiency", "plot_roughness", "plot_band_filters", "plot_hypnograms",
           "plot_events"]


def plot_confusion(cm: np.ndarray, labels: list, path: Path, title: str = "") -> Path:
    """Confusion matrix (rows: true, columns: predicted) via scikit-learn's display."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ConfusionMatrixDisplay(np.asarray(cm), display_labels=[str(x) for x in labels]).plot(ax=ax, colorbar=False)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, Path(path))


def plot_hypnograms(rows, classes: list, path: Path, title: str = "", most: int = 6) -> Path:
    """Predicted hypnograms against the truth, one panel per recording (the first
    ``most``): ``rows`` are a staging model's prediction rows (``store, id, epoch, y_true,
    y_pred``); stages are drawn top to bottom in ``classes`` order, unscored epochs grey."""
    plt = pyplot()
    recs = list(rows.groupby(["store", "id"], sort=False))[:most]
    fig, axes = plt.subplots(len(recs), 1, figsize=(9, 1.6 * len(recs)), squeeze=False, sharey=True)
    K = len(classes)
    for ax, ((_, rid), rec) in zip(axes[:, 0], recs):
        e, t, p = rec["epoch"].to_numpy(), rec["y_true"].to_numpy(), rec["y_pred"].to_numpy()
        ax.step(e, np.where(t >= 0, K - 1 - t, np.nan), where="post", color="0.3", lw=1.2, label="truth")
        ax.step(e, K - 1 - p, where="post", color="tab:red", lw=0.8, alpha=0.8, label="predicted")
        ax.set_yticks(range(K), list(reversed(classes)))
        ax.set_title(str(rid), fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("epoch")
    axes[0, 0].legend(fontsize=7, loc="upper right", ncol=2)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, Path(path))


def plot_events(rows, design, folder: Path, seconds: float = 30.0) -> list[Path]:
    """Events over the signal, one figure per model: for the first test recording, the
    ``seconds`` around its densest stretch of true events, with the true events shaded
    and the predicted ones marked. ``rows``: detection prediction rows (``store, id,
    pred_events``); ``design`` gives the signals and the true events."""
    from neuroconv.engine.events import parse_events

    plt = pyplot()
    out = []
    samples = design.samples.reset_index(drop=True)
    for name, part in rows.groupby("model", sort=False):
        r = part.iloc[0]
        i = int(np.flatnonzero((samples["store"] == r["store"]).to_numpy() & (samples["id"] == r["id"]).to_numpy())[0])
        sfreq = float(design.stores[int(r["store"])].sfreq(r["id"]))
        x = design.data.windows.raw_window(i)[:, 0]
        true, pred = np.asarray(design.targets.y[i]).reshape(-1, 2), parse_events(r["pred_events"])
        n = int(seconds * sfreq)
        centre = int(np.median(true[:, 0])) if len(true) else len(x) // 2
        a = max(0, min(centre - n // 2, len(x) - n))
        b = min(len(x), a + n)
        t = np.arange(a, b) / sfreq
        fig, ax = plt.subplots(figsize=(10, 2.6))
        ax.plot(t, x[a:b], lw=0.5, color="0.2")
        for on, off in true:
            if off > a and on < b:
                ax.axvspan(max(on, a) / sfreq, min(off, b) / sfreq, color="tab:green", alpha=0.25, lw=0)
        for on, off in pred:
            if off > a and on < b:
                ax.hlines(np.max(x[a:b]) * 1.05, max(on, a) / sfreq, min(off, b) / sfreq, color="tab:red", lw=3)
        ax.set_xlabel("s")
        ax.set_title(f"{name}: {r['id']} (shaded: true events; red: predicted)", fontsize=9)
        out.append(save_figure(fig, Path(folder) / f"events_{name}.png"))
    return out


# --------------------------------------------------------------------------- across runs
def _decode_runs(run_dirs) -> list[tuple[Path, dict]]:
    import json

    out = []
    for d in run_dirs:
        path = Path(d) / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: pass the folders that `neuroconv decode` printed.")
        out.append((Path(d), json.loads(path.read_text())))
    return out


def plot_label_efficiency(run_dirs, path: Path, metric: str = "accuracy") -> dict:
    """Score against the fraction of training groups (``decode.train_fraction``), one
    curve per model, from decode runs that differ in that fraction and share their folds:
    the pooled score of each run with its 95% interval over units (``ci95`` in
    ``metrics.json``; runs written before intervals existed show the mean over folds
    without bars). Returns ``{model: {fraction: (score, low, high)}}``."""
    table: dict = {}
    runs = _decode_runs(run_dirs)
    of = {m["protocol"].get("train_fraction_of", "groups") for _, m in runs
          if float(m["protocol"].get("train_fraction", 1.0)) < 1}
    if len(of) > 1:
        raise ValueError(f"these runs subsample different things (decode.train_fraction_of: {sorted(of)}): "
                         "one curve needs runs that differ in train_fraction only.")
    of = of.pop() if of else "groups"
    for _, m in runs:
        frac = float(m["protocol"].get("train_fraction", 1.0))
        for name, agg in m["models"].items():
            v = agg.get(metric, {}) if "error" not in agg else {}
            value = v.get("value", v.get("pooled", v.get("mean")))  # the headline (its interval is ci95)
            if value is not None:
                lo, hi = v.get("ci95") or (value, value)
                table.setdefault(name, {})[frac] = (value, lo, hi)
    if not table:
        raise ValueError(f"no model has a {metric!r} score in these runs.")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in sorted(table.items()):
        fr = sorted(pts)
        val = np.array([pts[f][0] for f in fr])
        err = np.array([[pts[f][0] - pts[f][1] for f in fr], [pts[f][2] - pts[f][0] for f in fr]])
        ax.errorbar(fr, val, yerr=err, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xticks(sorted({f for pts in table.values() for f in pts}))
    ax.get_xaxis().set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("fraction of each training fold's " + ("windows used (stratified by class)" if of == "samples"
                                                         else "groups used"))
    ax.set_ylabel(f"{metric} (pooled, 95% interval over units)")
    ax.legend(fontsize=8)
    ax.set_title("label efficiency", fontsize=9)
    save_figure(fig, Path(path))
    return table


def plot_roughness(run_dirs, path: Path, metric: str = "accuracy") -> list[dict]:
    """Learned-kernel roughness against score, one point per model and run (the runs of a
    squash/smooth sweep), labelled with their lam and smooth width. Returns the points."""
    import yaml

    points = []
    for d, m in _decode_runs(run_dirs):
        cfg = yaml.safe_load((d / "config.yaml").read_text()) if (d / "config.yaml").is_file() else {}
        for name, agg in m["models"].items():
            k = agg.get("kernels")
            if k is None or agg.get(metric, {}).get("mean") is None:
                continue
            sec = cfg.get("decode", {}).get("covconv", {}) if name == "covconv" else cfg.get("model", {})
            points.append({"run": str(d), "model": name, "roughness": k["roughness"], metric: agg[metric]["mean"],
                           "sd": agg[metric]["sd"], "lam": sec.get("lam"), "smooth_width": sec.get("smooth_width")})
    if not points:
        raise ValueError("no run records learned kernels (decode metrics.json 'kernels').")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in sorted({p["model"] for p in points}):
        pts = [p for p in points if p["model"] == name]
        ax.errorbar([p["roughness"] for p in pts], [p[metric] for p in pts], yerr=[p["sd"] for p in pts],
                    fmt="o", capsize=3, label=name)
        for p in pts:
            ax.annotate(f"λ={p['lam']}, w={p['smooth_width']}", (p["roughness"], p[metric]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("kernel roughness (2nd-difference energy / energy; white noise ≈ 6)")
    ax.set_ylabel(f"{metric} (mean ± sd over folds)")
    ax.legend(fontsize=8)
    save_figure(fig, Path(path))
    return points


def plot_band_filters(run_dirs, path: Path, metric: str = "") -> dict:
    """The frequency responses of covconv's band filters (``decode.covconv.bands``) as
    each fold learned them (solid) next to where they started (dashed), one panel per
    band, from decode runs' ``metrics.json``; a reader sees what moved. Returns
    ``{run: {"start": [[lo, hi], ...], "folds": [[[lo, hi], ...], ...]}}`` in Hz."""
    import torch
    import yaml

    from .covconv import BandPassBank

    runs = {}
    for d, m in _decode_runs(run_dirs):
        cc = m["models"].get("covconv", {})
        folds = [f["kernels"] for f in cc.get("folds", []) if f.get("kernels", {}).get("bands")]
        if folds:
            cfg = yaml.safe_load((d / "config.yaml").read_text()) if (d / "config.yaml").is_file() else {}
            edge = (cfg.get("decode", {}).get("covconv", {}) or {}).get("band_edge", 0.1)
            runs[str(d)] = {"start": folds[0]["start"], "folds": [f["bands"] for f in folds], "edge": edge}
    if not runs:
        raise ValueError("no run has covconv band filters (decode.covconv.bands) in its metrics.json.")
    n_bands = max(len(r["start"]) for r in runs.values())
    plt = pyplot()
    fig, axes = plt.subplots(1, n_bands, figsize=(4 * n_bands, 3), squeeze=False)
    for k in range(n_bands):
        ax = axes[0, k]
        for i, (run, r) in enumerate(runs.items()):
            if k >= len(r["start"]):
                continue
            lo0, hi0 = r["start"][k]
            top = 1.6 * max([hi0] + [f[k][1] for f in r["folds"]])
            freqs = torch.linspace(0, top, 400, dtype=torch.float64)

            def response(band):
                bank = BandPassBank([band], edge=r["edge"]).double()
                return bank.response(freqs)[0].detach().numpy()

            color = f"C{i}"
            ax.plot(freqs, response([lo0, hi0]), "--", color=color, lw=1.5,
                    label=f"start {lo0:.3g}-{hi0:.3g} Hz" + (f" ({Path(run).name})" if len(runs) > 1 else ""))
            for f in r["folds"]:
                ax.plot(freqs, response(f[k]), "-", color=color, lw=0.6, alpha=0.6)
        ax.set_xlabel("frequency (Hz)")
        ax.set_title(f"band {k + 1}: learned per fold (solid), start (dashed)", fontsize=8)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("gain")
    save_figure(fig, Path(path))
    return {run: {"start": r["start"], "folds": r["folds"]} for run, r in runs.items()}


def add_plot(sub) -> None:
    """``neuroconv plot label-efficiency|roughness|filters RUN... --out PNG``."""

    p = sub.add_parser("plot", help="plots across decode runs: label efficiency, kernel roughness vs score, "
                                    "learned band filters",
                       description="Plots that compare decode runs (their metrics.json).")
    cmds = p.add_subparsers(dest="plot_command", metavar="{label-efficiency,roughness,filters}")
    for name, fn, what in (("label-efficiency", plot_label_efficiency,
                            "score against decode.train_fraction, one curve per model"),
                           ("roughness", plot_roughness, "learned-kernel roughness against score"),
                           ("filters", plot_band_filters,
                            "covconv's learned band filters' responses next to their starting ones")):
        c = cmds.add_parser(name, help=what, description=what + ".")
        c.add_argument("runs", nargs="+", metavar="RUN", help="decode run folders")
        c.add_argument("--out", required=True, metavar="PNG", help="image to write")
        c.add_argument("--metric", default="accuracy", help="metric (default: accuracy; roc_auc, r2, ...)")
        c.set_defaults(func=lambda a, fn=fn: _plot_cmd(fn, a))
    p.set_defaults(func=None, _parser=p)


def _plot_cmd(fn, args) -> int:
    import json
    import sys

    try:
        result = fn(args.runs, Path(args.out), args.metric)
    except (FileNotFoundError, ValueError) as e:
        print(f"neuroconv plot: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0
