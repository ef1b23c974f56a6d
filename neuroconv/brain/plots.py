"""Run plots: loss curves, learned kernels, confusion matrices (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["read_metrics", "plot_losses", "plot_kernels", "plot_confusion", "model_kernels"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    _plt().close(fig)
    return path


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
    """``(name, (H, L) array)`` of the first kernel channel of every long-conv layer."""
    out = []
    for name, mod in model.named_modules():
        kern = getattr(mod, "kernel", None)
        if isinstance(kern, torch.nn.Module) and hasattr(kern, "forward") and hasattr(mod, "d_model"):
            was = kern.training
            kern.eval()
            with torch.no_grad():
                n = L or getattr(kern, "l_max", None) or 256
                k = kern(n)[0].float().cpu().numpy()  # (H L) or (H 2L-1)
            kern.train(was)
            out.append((name, k))
    return out


def plot_kernels(model: torch.nn.Module, path: Path, L: int | None = None, n_lines: int = 4) -> Path | None:
    """Each layer's kernels as an image (features x lag) plus a few traces, to show
    whether they are smooth."""
    kernels = model_kernels(model, L)
    if not kernels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(kernels), 2, figsize=(10, 2.2 * len(kernels)), squeeze=False)
    for row, (name, k) in zip(axes, kernels):
        lim = np.abs(k).max() or 1.0
        row[0].imshow(k, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        row[0].set_ylabel("feature")
        row[0].set_title(name or "kernel", fontsize=8)
        for h in np.linspace(0, k.shape[0] - 1, min(n_lines, k.shape[0])).astype(int):
            row[1].plot(k[h], lw=0.8, label=f"feature {h}")
        row[1].legend(fontsize=6)
    axes[-1][0].set_xlabel("lag (steps)")
    axes[-1][1].set_xlabel("lag (steps)")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_confusion(cm: np.ndarray, labels: list, path: Path, title: str = "") -> Path:
    """Confusion matrix (rows: true, columns: predicted) via scikit-learn's display."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ConfusionMatrixDisplay(np.asarray(cm), display_labels=[str(x) for x in labels]).plot(ax=ax, colorbar=False)
    ax.set_title(title, fontsize=9)
    return _save(fig, Path(path))
