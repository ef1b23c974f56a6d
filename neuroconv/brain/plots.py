"""Run plots: loss curves, learned kernels, confusion matrices (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["read_metrics", "plot_losses", "plot_kernels", "plot_confusion", "model_kernels", "roughness",
           "kernel_summary", "plot_label_efficiency", "plot_roughness"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from neuroconv.io import atomic_save_figure

    atomic_save_figure(fig, path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return Path(path)


def read_metrics(log_dir: Path) -> pd.DataFrame:
    """Lightning's CSV metrics of a run, every ``version_*`` (resumed parts) in order."""
    files = sorted(Path(log_dir).glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    frames = [pd.read_csv(f) for f in files if f.stat().st_size > 0]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot_losses(log_dir: Path, path: Path) -> Path | None:
    """Training (per step) and validation (per epoch) loss from Lightning's CSV logs."""
    df = read_metrics(log_dir)
    if df.empty or "step" not in df:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for col, style in (("train_loss", "-"), ("train_loss_step", "-"), ("val_loss", "o-")):
        if col in df:
            d = df[["step", col]].dropna()
            if len(d):
                ax.plot(d["step"], d[col], style, label=col.replace("_step", ""), lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if (df.filter(like="loss").dropna(how="all").min().min() or 0) > 0 else "linear")
    ax.legend()
    ax.set_title("loss")
    return _save(fig, Path(path))


def model_kernels(model: torch.nn.Module, L: int | None = None) -> list[tuple[str, np.ndarray]]:
    """``(name, (H, L) array)`` of the first kernel channel of every long-conv layer
    (every channel, ``(C, L)``, of a kernel generator with a single feature, such as
    covconv's filter bank)."""
    from neuroconv.kernel_gen import LongConvKernel, S4DKernel

    out = []
    for name, mod in model.named_modules():
        kern = getattr(mod, "kernel", None)
        if isinstance(kern, (LongConvKernel, S4DKernel)):
            was = kern.training
            kern.eval()
            with torch.no_grad():
                n = L or getattr(kern, "l_max", None) or 256
                k = kern(n)
                k = (k[:, 0] if k.shape[1] == 1 else k[0]).float().cpu().numpy()  # (H L) or (H 2L-1)
            kern.train(was)
            out.append((name, k))
    return out


def roughness(k: np.ndarray) -> float:
    """Energy of the second difference over energy, ``sum((k[t+1] - 2k[t] + k[t-1])^2) /
    sum(k^2)``, averaged over the kernel's rows (features). About 6 for white noise, 0 for a
    straight line; a kernel that varies slowly over many lags is near 0."""
    k = np.atleast_2d(np.asarray(k, dtype=np.float64))
    d2 = np.diff(k, n=2, axis=-1)
    energy = (k**2).sum(-1)
    ok = energy > 0
    return float(((d2**2).sum(-1)[ok] / energy[ok]).mean()) if ok.any() else float("nan")


def kernel_summary(model: torch.nn.Module, L: int | None = None) -> dict | None:
    """Roughness (:func:`roughness`) and the fraction of exactly-zero taps of every
    long-conv layer's kernels, and their means; None for a model without long convs."""
    return _summary(model_kernels(model, L))


def _summary(kernels: list) -> dict | None:
    if not kernels:
        return None
    layers = [{"layer": name, "roughness": roughness(k), "zero_fraction": float((k == 0).mean())}
              for name, k in kernels]
    return {"roughness": float(np.mean([r["roughness"] for r in layers])),
            "zero_fraction": float(np.mean([r["zero_fraction"] for r in layers])), "layers": layers}


def plot_kernels(model: torch.nn.Module, path: Path, L: int | None = None, n_lines: int = 4) -> dict | None:
    """Each layer's kernels as an image (features x lag) plus a few traces, titled with
    their roughness, to show whether they are smooth; returns :func:`kernel_summary`."""
    kernels = model_kernels(model, L)
    if not kernels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(kernels), 2, figsize=(10, 2.2 * len(kernels)), squeeze=False)
    for row, (name, k) in zip(axes, kernels):
        lim = np.abs(k).max() or 1.0
        row[0].imshow(k, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        row[0].set_ylabel("feature")
        row[0].set_title(f"{name or 'kernel'}: roughness {roughness(k):.3g} (2nd-difference energy / energy)",
                         fontsize=8)
        for h in np.linspace(0, k.shape[0] - 1, min(n_lines, k.shape[0])).astype(int):
            row[1].plot(k[h], lw=0.8, label=f"feature {h}")
        row[1].legend(fontsize=6)
    axes[-1][0].set_xlabel("lag (steps)")
    axes[-1][1].set_xlabel("lag (steps)")
    fig.tight_layout()
    _save(fig, Path(path))
    return _summary(kernels)


def plot_confusion(cm: np.ndarray, labels: list, path: Path, title: str = "") -> Path:
    """Confusion matrix (rows: true, columns: predicted) via scikit-learn's display."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ConfusionMatrixDisplay(np.asarray(cm), display_labels=[str(x) for x in labels]).plot(ax=ax, colorbar=False)
    ax.set_title(title, fontsize=9)
    return _save(fig, Path(path))


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
    curve per model, mean ± sd over folds, from decode runs that differ in that fraction
    and share their folds. Returns ``{model: {fraction: (mean, sd)}}``."""
    table: dict = {}
    for _, m in _decode_runs(run_dirs):
        frac = float(m["protocol"].get("train_fraction", 1.0))
        for name, agg in m["models"].items():
            if "error" not in agg and agg.get(metric, {}).get("mean") is not None:
                table.setdefault(name, {})[frac] = (agg[metric]["mean"], agg[metric]["sd"])
    if not table:
        raise ValueError(f"no model has a {metric!r} score in these runs.")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in sorted(table.items()):
        fr = sorted(pts)
        mean = np.array([pts[f][0] for f in fr])
        sd = np.array([pts[f][1] for f in fr])
        ax.errorbar(fr, mean, yerr=sd, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xticks(sorted({f for pts in table.values() for f in pts}))
    ax.get_xaxis().set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("fraction of training subjects used")
    ax.set_ylabel(f"{metric} (mean ± sd over folds)")
    ax.legend(fontsize=8)
    ax.set_title("label efficiency", fontsize=9)
    _save(fig, Path(path))
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
    plt = _plt()
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
    _save(fig, Path(path))
    return points


def add_plot(sub) -> None:
    """``neuroconv plot label-efficiency|roughness RUN... --out PNG``."""

    p = sub.add_parser("plot", help="plots across decode runs: label efficiency, kernel roughness vs score",
                       description="Plots that compare decode runs (their metrics.json).")
    cmds = p.add_subparsers(dest="plot_command", metavar="{label-efficiency,roughness}")
    for name, fn, what in (("label-efficiency", plot_label_efficiency,
                            "score against decode.train_fraction, one curve per model"),
                           ("roughness", plot_roughness, "learned-kernel roughness against score")):
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
