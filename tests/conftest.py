"""Shared test set-up.

- Without CUDA, Triton kernels run on the CPU interpreter: ``TRITON_INTERPRET=1`` is set
  here, before anything imports triton.
- ``shared_data`` points at the real recordings in ``../shared/data`` (override with
  ``NEUROCONV_SHARED_DATA``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per xdist worker, for torch and for the BLAS under numpy/scipy: two
    # workers with two threads each oversubscribe 2 cores, which made eigh 20x slower here
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NEUROCONV_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set NEUROCONV_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
