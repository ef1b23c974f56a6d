"""The examples gallery runs: every script in ``examples/`` exits 0, writes each file it
says it wrote (its ``wrote PATH`` lines), and writes only inside its ``--out`` folder.

Each script runs in a subprocess from an empty working folder, with a home folder of
its own; afterwards the working folder must hold only ``--out`` and the home folder only
matplotlib's caches. Scripts on real data (the sleep examples) get ``NEUROCONV_DATA``
pointed at ``../shared/data`` when it is there, and must say ``skipped:`` and exit 0
when it is not. Nothing downloads: MOABB's example uses its in-memory ``FakeDataset``.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
#: the shared real data, as tests/conftest.py finds it
SHARED_DATA = Path(os.environ.get("NEUROCONV_SHARED_DATA", ROOT.parent / "shared" / "data"))

#: every example, with what it needs; a script added to examples/ must be listed here
#: (test_every_example_is_listed)
NEEDS = {
    "sequence_library.py": (),
    "eeg_decoding_vs_baselines.py": ("mne", "pyriemann"),
    "fmri_connectivity_decoding.py": ("nilearn",),
    "moabb_evaluation.py": ("moabb", "pyriemann"),
    "dask_preprocessing.py": ("distributed",),
    "sleep_staging.py": ("lightgbm",),
    "spindle_detection.py": ("yasa",),
}
#: examples that read the shared real data (skip themselves cleanly without it)
REAL_DATA = {"sleep_staging.py", "spindle_detection.py"}
#: each example's budget: 2 minutes on an idle 2-core CPU; the limit here is for a
#: machine shared with other jobs (the test suite runs on 2 workers)
LIMIT_S = 600
#: what a run may leave in its home folder (matplotlib's font cache and config folder)
HOME_ALLOWED = {".cache", ".config"}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(NEEDS)
    assert len(NEEDS) >= 6


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_example_has_a_gallery_header(name):
    """A docstring whose first line is the title, underlined, then the explanation."""
    doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text(encoding="utf-8")), clean=True)
    assert doc, f"{name}: no module docstring"
    lines = doc.splitlines()
    assert len(lines) > 3 and set(lines[1]) == {"="} and len(lines[1]) == len(lines[0]), \
        f"{name}: the docstring must start with a title and a line of '=' as long as it"
    assert "--out" in doc, f"{name}: the docstring must say how to run it (--out DIR)"


def _env(home: Path) -> dict:
    env = dict(os.environ)
    env.update(HOME=str(home), MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env.pop("MNE_DATA", None)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on two cores: one thread each
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if SHARED_DATA.is_dir():
        env["NEUROCONV_DATA"] = str(SHARED_DATA)
    else:
        env.pop("NEUROCONV_DATA", None)
    return env


def _run(name: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path, Path, Path, float]:
    for module in NEEDS[name]:
        pytest.importorskip(module)
    cwd, home, out = tmp_path / "cwd", tmp_path / "home", tmp_path / "cwd" / "out"
    cwd.mkdir()
    home.mkdir()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--out", str(out)], cwd=cwd, env=_env(home),
                          capture_output=True, text=True, timeout=LIMIT_S)
    return proc, cwd, home, out, time.perf_counter() - t0


@pytest.mark.slow
@pytest.mark.timeout(LIMIT_S + 60)
@pytest.mark.parametrize("name", sorted(NEEDS))
def test_example_runs_and_writes_what_it_says(name, tmp_path):
    proc, cwd, home, out, seconds = _run(name, tmp_path)
    log = f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{log}"
    if proc.stdout.startswith("skipped:"):
        assert name in REAL_DATA and not SHARED_DATA.is_dir(), f"{name} skipped although it should run\n{log}"
        assert not out.exists() or not any(out.iterdir()), f"{name} skipped but wrote into {out}"
        return
    wrote = [Path(p) for p in re.findall(r"^wrote (.+)$", proc.stdout, flags=re.M)]
    assert wrote, f"{name} printed no 'wrote PATH' line\n{log}"
    for path in wrote:
        assert path.is_file() and path.stat().st_size > 0, f"{name} says it wrote {path}, which is missing or empty"
        assert path.resolve().is_relative_to(out.resolve()), f"{name} wrote {path} outside --out {out}"
    assert sorted(p.name for p in cwd.iterdir()) == ["out"], f"{name} wrote into its working folder"
    assert {p.name for p in home.iterdir()} <= HOME_ALLOWED, \
        f"{name} wrote into the home folder: {sorted(p.name for p in home.iterdir())}"
    print(f"{name}: {seconds:.1f} s")  # shown with pytest -s; the per-example times in docs/examples.md
