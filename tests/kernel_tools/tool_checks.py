"""Test helpers for the kernel tooling tests (imported by the test modules beside it)."""

from __future__ import annotations

import os

import pytest
import torch

needs_interpreter_or_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="needs CUDA or TRITON_INTERPRET=1",
)
