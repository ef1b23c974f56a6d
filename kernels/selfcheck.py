"""``backend="auto"``'s one-time self-check of the Triton kernels.

The first time ``backend="auto"`` would pick Triton for a (device, dtype, causal, gated,
op) combination (:func:`neuroconv.backend.resolve_backend`), :func:`auto_backend` runs
:func:`self_check`: the kernel against its torch twin on small shapes, forward and every
gradient, under the tests' error budget (:mod:`.verify`). For ``op="fftconv"`` the
FlashButterfly kernels (with the gates when ``gated``) on two shapes, one on chip and one
three-pass; for ``op="butterfly"`` the learned-butterfly kernel with random factors. The
result is cached for the process. A failure (a mismatch, or a compile or launch error)
warns once, with what failed and the report command, and that combination uses torch
from then on.

Fault injection for tests: monkeypatch :data:`SHAPES`, or a launcher such as
``flashbutterfly._fftconv_fwd``, to return wrong values or raise.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Optional

import torch

__all__ = ["SelfCheck", "self_check", "auto_backend", "results", "reset", "FallbackWarning", "SHAPES",
           "BUTTERFLY_SHAPES", "REPORT_COMMAND"]

#: ``(B, H, L, max_onchip)`` of the FlashButterfly self-check: L = 77 on chip (N = 512),
#: L = 300 through the three-pass path (N = 1024 > max_onchip = 512). Kernel length = L;
#: with D.
SHAPES = ((2, 2, 77, None), (1, 2, 300, 512))
#: ``(B, H, L, n1, n2)`` of the learned-butterfly self-check: a transform of size
#: ``n1 * n2 = 80`` (16 x 16 tiles), kernel length = L; with D.
BUTTERFLY_SHAPES = ((2, 2, 37, 8, 10),)

#: The validation command that the fallback warning asks the user to run and report.
REPORT_COMMAND = "python -m neuroconv.kernel_tools.check --json report.json"

_WHAT = {"fftconv": ("fftconv", "FlashButterfly"), "butterfly": ("ButterflyFFTConv", "learned-butterfly")}


class FallbackWarning(RuntimeWarning):
    """``backend="auto"`` found the Triton kernels faulty here and uses torch instead."""


@dataclass(frozen=True)
class SelfCheck:
    """The outcome of one self-check. ``failed``: what failed (None when ``ok``);
    ``op``: ``"fftconv"`` or ``"butterfly"``."""

    ok: bool
    device: str
    dtype: str
    causal: bool
    gated: bool
    failed: Optional[str]
    seconds: float
    op: str = "fftconv"

    def as_dict(self) -> dict:
        return asdict(self)


_RESULTS: dict[tuple, SelfCheck] = {}
_LOCK = threading.Lock()


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        try:
            return f"{device} ({torch.cuda.get_device_name(device)})"
        except Exception:  # noqa: BLE001 - a name is a nicety
            return str(device)
    return f"{device} (Triton interpreter)"


def _normalise(device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _runs(causal: bool, gated: bool, op: str, dtype: torch.dtype, device, shapes):
    """``(description, records)`` of each shape's comparison, lazily."""
    from .verify import compare_fftconv, compare_monarch

    if op == "butterfly":
        for i, (B, H, L, n1, n2) in enumerate(BUTTERFLY_SHAPES if shapes is None else shapes):
            yield (f"B={B}, H={H}, L={L}, transform {n1}x{n2}",
                   lambda: compare_monarch(B, H, L, n1, n2, L, causal, dtype=dtype, seed=i, device=device))
        return
    for i, (B, H, L, max_onchip) in enumerate(SHAPES if shapes is None else shapes):
        path = "on chip" if max_onchip is None else f"three-pass, max_onchip={max_onchip}"
        yield (f"B={B}, H={H}, L={L} ({path})",
               lambda: compare_fftconv(B, H, L, L, causal, gates=gated, with_D=True, dtype=dtype, seed=i,
                                       max_onchip=max_onchip, device=device))


def self_check(device, dtype: torch.dtype, causal: bool = True, gated: bool = False, *, op: str = "fftconv",
               shapes=None) -> SelfCheck:
    """Run a Triton kernel on ``device`` against its torch twin; never raises.

    ``op="fftconv"``: for each ``(B, H, L, max_onchip)`` in ``shapes`` (default
    :data:`SHAPES`), the FlashButterfly forward and every gradient (``u``, ``k``, ``D``
    and, when ``gated``, both gates) in ``dtype``
    (:func:`neuroconv.kernels.verify.compare_fftconv`). ``op="butterfly"``: for each
    ``(B, H, L, n1, n2)`` (default :data:`BUTTERFLY_SHAPES`), the learned-butterfly
    forward and every gradient, the six factors' included
    (:func:`neuroconv.kernels.verify.compare_monarch`). Each tensor within its error
    budget against float64. Runs with gradients enabled and autocast off whatever the
    caller's mode (inference, no_grad, autocast).
    """
    from .verify import failures

    if op not in _WHAT:
        raise ValueError(f"self_check: `op` must be one of {tuple(_WHAT)}; got {op!r}.")
    device = _normalise(device)
    t0 = time.perf_counter()
    failed = None
    try:
        with torch.inference_mode(False), torch.enable_grad(), \
                torch.autocast(device.type, enabled=False):
            for where, run in _runs(causal, gated, op, dtype, device, shapes):
                bad = failures(run())
                if bad:
                    failed = f"mismatch at {where}: " + "; ".join(bad)
                    break
    except Exception as e:  # noqa: BLE001 - a compile or launch error is a finding
        text = str(e).strip().splitlines()
        failed = f"{type(e).__name__}: {text[0][:300] if text else ''}"
    return SelfCheck(ok=failed is None, device=_describe(device), dtype=str(dtype).replace("torch.", ""),
                     causal=bool(causal), gated=bool(gated), failed=failed,
                     seconds=round(time.perf_counter() - t0, 3), op=op)


@torch.compiler.assume_constant_result  # traced: run once at trace time, a constant in the graph
def auto_backend(device, dtype: torch.dtype, causal: bool, gated: bool, op: str = "fftconv") -> str:
    """``"triton"`` when the cached (or, the first time, fresh) self-check of this
    combination passed, ``"torch"`` otherwise; warns once on a failure."""
    device = _normalise(device)
    key = (str(device), dtype, bool(causal), bool(gated), op)
    with _LOCK:
        res = _RESULTS.get(key)
        if res is None:
            res = _RESULTS[key] = self_check(device, dtype, causal, gated, op=op)
            if not res.ok:
                caller, kernel = _WHAT[op]
                warnings.warn(
                    f"neuroconv {caller}(backend='auto'): the Triton {kernel} self-check failed "
                    f"on {res.device} for dtype={res.dtype}, causal={res.causal}, gated={res.gated}: "
                    f"{res.failed}. This combination uses the torch path from now on in this process. "
                    f"Please run `{REPORT_COMMAND}` on this machine and report report.json (it checks "
                    "every kernel here). NEUROCONV_FFTCONV_BACKEND=torch chooses torch without the "
                    "check; =triton uses the kernels anyway.",
                    FallbackWarning, stacklevel=4)
    return "triton" if res.ok else "torch"


def results() -> list[dict]:
    """Every self-check run in this process (device, dtype, causal, gated, op, ok, failed,
    seconds)."""
    with _LOCK:
        return [r.as_dict() for r in _RESULTS.values()]


def reset() -> None:
    """Forget the cached self-checks (tests; or after fixing the environment)."""
    with _LOCK:
        _RESULTS.clear()
