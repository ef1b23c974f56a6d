"""The core install: ``pip install neuroconv`` without extras is the sequence library.

A fresh virtual environment gets torch 2.13.0 (pip takes the CPU wheel from the local
disk), then the project and the core dependencies of pyproject.toml's
``[project.dependencies]`` with ``--no-deps``, so nothing else can come in. There the
layers run (fftconv against a float64 direct convolution, a SequenceModel forward and
backward, an optimizer step on ``param_groups``), the brain and benchmark packages are
absent, and every part that needs an extra says which one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the core environment (cwd outside the source tree, so the installed package
# is the one imported).
CHECK = r'''
import importlib, importlib.util, itertools, sys
import torch
import neuroconv
from neuroconv import fftconv, LongConv, GatedLongConv, SequenceModel, ModelConfig, param_groups, LAYERS

torch.manual_seed(0)

def direct(u, k, D, causal):
    """The definition, term by term, in float64."""
    B, H, L = u.shape
    y = torch.zeros(B, H, L, dtype=torch.float64)
    M = (k.shape[1] + 1) // 2
    for t in range(L):
        for s in range(L):
            lag = t - s
            j = lag if causal else lag + M - 1
            if 0 <= j < k.shape[1] and (not causal or lag >= 0):
                y[:, :, t] += k[:, j] * u[:, :, s]
    return y + D[:, None] * u

for (B, H, L, Lk), causal in itertools.product([(2, 3, 17, 17), (1, 2, 9, 4), (3, 1, 5, 11)], (True, False)):
    Lk = Lk if causal or Lk % 2 else Lk + 1
    u, k, D = torch.randn(B, H, L, dtype=torch.float64), torch.randn(H, Lk, dtype=torch.float64), torch.randn(H, dtype=torch.float64)
    want = direct(u, k, D, causal)
    got = fftconv(u, k, D, causal=causal)  # backend="auto": the torch path here
    # float64 FFT of length n: error ~ n * eps * |u| |k| sums, far below 1e-10 at these sizes
    assert (got - want).abs().max() < 1e-10, (B, H, L, Lk, causal, (got - want).abs().max())
    uf, kf = u.float().requires_grad_(), k.float().requires_grad_()
    (fftconv(uf, kf, D.float(), causal=causal) ** 2).sum().backward()
    ud, kd = u.clone().requires_grad_(), k.clone().requires_grad_()
    (direct(ud, kd, D, causal) ** 2).sum().backward()
    scale = ud.grad.abs().max() + kd.grad.abs().max()
    assert (uf.grad.double() - ud.grad).abs().max() < 1e-4 * scale and (kf.grad.double() - kd.grad).abs().max() < 1e-4 * scale

for layer in LAYERS:
    cfg = ModelConfig(layer=layer, d_model=8, n_layers=2, bidirectional=layer != "gated")
    model = SequenceModel(**cfg.model_args(l_max=32, d_input=5, head="classification", d_output=3))
    opt = torch.optim.AdamW(param_groups(model, lr=1e-3, weight_decay=0.01))
    x = torch.randn(4, 27, 5)
    loss = torch.nn.functional.cross_entropy(model(x, lengths=torch.tensor([27, 20, 3, 1])), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters()), layer
    opt.step()
assert LongConv(8, 16)(torch.randn(2, 16, 8)).shape == (2, 16, 8)

absent = [m for m in ("mne", "nilearn", "lightning", "sklearn", "scipy", "pandas", "jsonargparse", "triton")
          if importlib.util.find_spec(m) is not None]
assert not absent, f"present in the core install: {absent}"
for module, extra in (("neuroconv.brain", "brain"), ("neuroconv.pipelines", "brain"), ("neuroconv.lra", "lra"),
                      ("neuroconv.estimators", "brain")):
    try:
        importlib.import_module(module)
    except ImportError as e:
        assert f"pip install 'neuroconv[{extra}]'" in str(e) and module in str(e), (module, str(e))
    else:
        raise AssertionError(f"{module} imported without its extra")
print("core ok")
'''


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_core_install_runs_the_layers_and_names_the_extras(tmp_path):
    t0 = time.perf_counter()
    venv = tmp_path / "core"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "TRITON_INTERPRET")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(*cmd, check=True, **kw):
        out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=tmp_path, **kw)
        if check and out.returncode:
            raise AssertionError(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
                                 f"{out.stderr[-3000:]}")
        return out

    run(sys.executable, "-m", "venv", venv)
    py = venv / "bin" / "python"
    run(py, "-m", "pip", "install", "-q", "torch==2.13.0")
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    run(py, "-m", "pip", "install", "-q", "--no-deps", ROOT, *core)
    installed = run(py, "-m", "pip", "list", "--format=freeze").stdout.lower()
    names = sorted(line.split("==")[0] for line in installed.split())
    assert "torch" in names and "numpy" in names and "neuroconv" in names
    assert not {"mne", "nilearn", "lightning", "scikit-learn", "scipy", "triton"} & set(names), names
    t_install = time.perf_counter() - t0

    out = run(py, "-c", CHECK, timeout=300)
    assert "core ok" in out.stdout
    help_ = run(venv / "bin" / "neuroconv", "decode", "--help", check=False)
    assert help_.returncode == 1, help_
    assert "pip install 'neuroconv[brain]'" in help_.stderr and "missing: " in help_.stderr, help_.stderr
    listing = run(venv / "bin" / "neuroconv", "--help")
    assert re.search(r"\n\s+decode\s+\(not installed: pip install 'neuroconv\[brain\]'\)", listing.stdout), listing.stdout
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    print(f"core install: {t_install:.0f} s to install, {time.perf_counter() - t0:.0f} s in all, venv "
          f"{size / 2**20:.0f} MiB; packages: {', '.join(names)}")
