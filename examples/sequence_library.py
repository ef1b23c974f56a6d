"""
The layers as a sequence library
================================

neuroconv's long convolutions are a general sequence library: nothing here is about
brain data. This example

1. checks :func:`neuroconv.fftconv` against a direct convolution written as a loop over
   lags (causal and centred kernels);
2. runs a :class:`neuroconv.LongConv` layer on a padded batch;
3. trains a small :class:`neuroconv.SequenceModel` classifier for a few hundred steps on
   a toy task that needs a long memory: the class is the sign of the first step of a
   noisy sequence, and the model must carry it to the last step.

Shapes: ``fftconv`` works on ``(B, H, L)`` (batch, channels, time); the layers and the
model take ``(B, L, D)`` (batch, time, features), the layout of most sequence models.

Run it with ``python examples/sequence_library.py [--out DIR]``; it writes
``fftconv_check.json``, ``training.csv`` and ``kernels.png`` into ``DIR`` (default: a new
temporary folder) and prints their paths.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neuroconv import LongConv, SequenceModel, fftconv, param_groups

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temporary folder)")
args = parser.parse_args()
out = args.out or Path(tempfile.mkdtemp(prefix="neuroconv_example_"))
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
t_start = time.perf_counter()

# %%
# 1. ``fftconv`` against a direct convolution
# -------------------------------------------
# Causal: ``y[t] = sum_{s <= t} k[t - s] u[s] + D u[t]``. Centred: the kernel has odd
# length ``2M - 1`` and tap ``M - 1`` is lag 0. Both are linear convolutions (zeros
# outside the sequence), never circular. The direct sums below are the definition; the
# FFT path must agree with them to float64 rounding.


def direct(u, k, D, causal):
    """The definition, one lag at a time: u (B, H, L), k (H, Lk), D (H,) -> (B, H, L)."""
    B, H, L = u.shape
    y = D[None, :, None] * u
    lags = range(k.shape[1]) if causal else range(-(k.shape[1] // 2), k.shape[1] // 2 + 1)
    for i, lag in enumerate(lags):
        if abs(lag) >= L:
            continue
        shifted = torch.zeros_like(u)  # u[t - lag], zero outside the sequence
        if lag >= 0:
            shifted[..., lag:] = u[..., : L - lag]
        else:
            shifted[..., :lag] = u[..., -lag:]
        y = y + k[:, i, None] * shifted
    return y


check = {}
for causal, Lk in ((True, 300), (False, 301)):  # odd lengths on purpose; a kernel longer than L is truncated
    u = torch.randn(3, 5, 257, dtype=torch.float64)  # (B, H, L)
    k = torch.randn(5, Lk, dtype=torch.float64)  # (H, Lk)
    D = torch.randn(5, dtype=torch.float64)  # (H,)
    y = fftconv(u, k, D, causal=causal, backend="torch")  # (B, H, L)
    err = (y - direct(u, k, D, causal)).abs().max().item()
    scale = direct(u.abs(), k.abs(), D.abs(), causal).max().item()  # the sums' magnitude
    check["causal" if causal else "centred"] = {"max_abs_error": err, "relative_to_sum_of_magnitudes": err / scale}
    print(f"fftconv {'causal' if causal else 'centred'}: max |fft - direct| = {err:.2e} "
          f"({err / scale:.1e} of the largest sum of |terms|)")
(out / "fftconv_check.json").write_text(json.dumps(check, indent=2))

# %%
# 2. A ``LongConv`` layer
# -----------------------
# ``(B, L, D) -> (B, L, D)``. Its kernels are learned directly, one per feature (times
# ``channels``), as long as the input, and regularised by squash (``lam``: weights below
# it are set to zero) and smooth (``smooth_width``: a moving average over taps).
# A padding mask marks the valid steps of each sequence; padded steps never leak into
# valid ones.

layer = LongConv(d_model=16, l_max=512, channels=2, kernel_args=dict(lam=0.003, smooth_width=9))
x = torch.randn(4, 400, 16)  # (B, L, D)
lengths = torch.tensor([400, 350, 200, 17])
mask = torch.arange(400)[None] < lengths[:, None]  # (B, L), True on valid steps
y = layer(x, mask)  # (B, L, D)
print(f"LongConv: x {tuple(x.shape)} -> y {tuple(y.shape)}; kernels {tuple(layer.kernel(400).shape)}")

# %%
# 3. A ``SequenceModel`` classifier on a task that needs a long memory
# --------------------------------------------------------------------
# Each sequence is noise, except its first step, which is +1 or -1: that is the class.
# A causal model that reads only the last step (``pool="last"``) must carry the first
# step over the whole sequence. ``param_groups`` gives the kernels their own learning
# rate and no weight decay.

L = 256


def batch(n, generator):
    y = torch.randint(0, 2, (n,), generator=generator)
    x = 0.5 * torch.randn(n, L, 1, generator=generator)  # (B, L, 1)
    x[:, 0, 0] = 2.0 * y - 1.0
    return x, y


model = SequenceModel(d_input=1, d_model=32, n_layers=2, layer="longconv", l_max=L,
                      head="classification", d_output=2, pool="last")
opt = torch.optim.AdamW(param_groups(model, lr=3e-3, weight_decay=0.01))
gen = torch.Generator().manual_seed(1)
x_test, y_test = batch(512, torch.Generator().manual_seed(2))
rows = []
for step in range(1, 201):
    x, y = batch(32, gen)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 25 == 0:
        model.eval()
        with torch.no_grad():
            acc = (model(x_test).argmax(1) == y_test).float().mean().item()
        model.train()
        rows.append((step, loss.item(), acc))
        print(f"step {step:3d}  loss {loss.item():.3f}  test accuracy {acc:.3f}")
with open(out / "training.csv", "w") as f:
    f.write("step,train_loss,test_accuracy\n")
    f.writelines(f"{s},{l:.6f},{a:.6f}\n" for s, l, a in rows)

# %%
# The learned kernels of the first layer: how far back each feature looks.
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

with torch.no_grad():
    k = model.blocks[0].layer.kernel(L)  # (channels, d_model, L)
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(k[0, :8].T.numpy(), lw=0.8)
ax.set(xlabel="lag (steps)", ylabel="weight", title="first layer's long kernels (8 of them)")
fig.tight_layout()
fig.savefig(out / "kernels.png", dpi=100)

for name in ("fftconv_check.json", "training.csv", "kernels.png"):
    print(f"wrote {out / name}")
print(f"done in {time.perf_counter() - t_start:.1f} s")
