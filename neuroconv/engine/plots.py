"""Figures and kernel statistics shared by every job: loss curves, the learned long-conv
kernels and their roughness (matplotlib, Agg).

``neuroconv pretrain``, ``neuroconv decode`` and ``neuroconv lra`` draw their run plots and
record ``metrics.json``'s ``kernels`` entry from here, with one definition of
:func:`roughness`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["pyplot", "save_figure", "read_metrics", "plot_losses", "model_kernels", "roughness",
           "kernel_summary", "plot_kernels"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (unless a backend was chosen already)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """Write ``fig`` to ``path`` atomically (110 dpi, tight box) and close it."""
    from neuroconv.io import atomic_save_figure

    atomic_save_figure(fig, path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
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
    plt = pyplot()
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
    return save_figure(fig, Path(path))


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
    """Kernel roughness: the energy of the second difference over the energy, averaged
    over the kernel's rows (features)::

        roughness(k) = mean_h  sum_t (k[h, t+1] - 2 k[h, t] + k[h, t-1])^2 / sum_t k[h, t]^2

    with ``t`` over the interior lags (``1 <= t <= L-2``) and rows of zero energy left
    out (NaN when every row is zero). ``k``: ``(H, L)`` or ``(L,)``. 0 for a straight
    line, about 6 for white noise (``E[(x1 - 2x2 + x3)^2] = 6 E[x^2]``), at most 16 (an
    alternating sign); a kernel that varies slowly over many lags is near 0. The one
    roughness of the project: the brain and LRA runs' ``metrics.json`` (``kernels``),
    the kernel plots' titles and the LRA reproduction's tables."""
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


def plot_kernels(model: torch.nn.Module, path: Path, L: int | None = None, n_lines: int = 4,
                 step_seconds: float | None = None) -> dict | None:
    """Each layer's kernels as an image (features x lag) plus a few traces, titled with
    their roughness, to show whether they are smooth; with ``step_seconds`` (the time
    between steps), a third column: their magnitude responses (the mean over features of
    ``|FFT(k)|``, in cycles per hour for steps of a second or more, else in Hz). Returns
    :func:`kernel_summary`."""
    kernels = model_kernels(model, L)
    if not kernels:
        return None
    plt = pyplot()
    cols = 3 if step_seconds else 2
    fig, axes = plt.subplots(len(kernels), cols, figsize=(5 * cols, 2.2 * len(kernels)), squeeze=False)
    for row, (name, k) in zip(axes, kernels):
        lim = np.abs(k).max() or 1.0
        row[0].imshow(k, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        row[0].set_ylabel("feature")
        row[0].set_title(f"{name or 'kernel'}: roughness {roughness(k):.3g} (2nd-difference energy / energy)",
                         fontsize=8)
        for h in np.linspace(0, k.shape[0] - 1, min(n_lines, k.shape[0])).astype(int):
            row[1].plot(k[h], lw=0.8, label=f"feature {h}")
        row[1].legend(fontsize=6)
        if step_seconds:
            freqs = np.fft.rfftfreq(k.shape[1], d=step_seconds) * (3600.0 if step_seconds >= 1 else 1.0)
            row[2].loglog(freqs[1:], np.abs(np.fft.rfft(k, axis=1)).mean(0)[1:], lw=0.8)
            row[2].set_ylabel("mean |response|", fontsize=7)
    axes[-1][0].set_xlabel("lag (steps)")
    axes[-1][1].set_xlabel("lag (steps)")
    if step_seconds:
        axes[-1][2].set_xlabel("cycles per hour" if step_seconds >= 1 else "Hz")
    fig.tight_layout()
    save_figure(fig, Path(path))
    return _summary(kernels)
