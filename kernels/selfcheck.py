"""``backend="auto"``'s one-time self-check of the FlashButterfly kernels.

The first time ``fftconv(backend="auto")`` would pick Triton for a (device, dtype,
causal, gated) combination, :func:`auto_backend` runs :func:`self_check`: the kernels
against the torch path on two small shapes (one on chip, one three-pass), forward and
every gradient, under the tests' error budget (:mod:`.verify`). The result is cached for
the process. A failure (a mismatch, or a compile or launch error) warns once, with what
failed and the report command, and that combination uses torch from then on.

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
           "REPORT_COMMAND"]

#: ``(B, H, L, max_onchip)`` of the self-check: L = 77 on chip (N = 512), L = 300 through
#: the three-pass path (N = 1024 > max_onchip = 512). Kernel length = L; with D.
SHAPES = ((2, 2, 77, None), (1, 2, 300, 512))

REPORT_COMMAND = "python -m neuroconv.kernels.check --json report.json"


class FallbackWarning(RuntimeWarning):
    """``backend="auto"`` found the Triton kernels faulty here and uses torch instead."""


@dataclass(frozen=True)
class SelfCheck:
    """The outcome of one self-check. ``failed``: what failed (None when ``ok``)."""

    ok: bool
    device: str
    dtype: str
    causal: bool
    gated: bool
    failed: Optional[str]
    seconds: float

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


def self_check(device, dtype: torch.dtype, causal: bool, gated: bool, *, shapes=None) -> SelfCheck:
    """Run the FlashButterfly kernels on ``device`` against the torch path; never raises.

    For each ``(B, H, L, max_onchip)`` in ``shapes`` (default :data:`SHAPES`): forward
    and every gradient (``u``, ``k``, ``D`` and, when ``gated``, both gates) in
    ``dtype``, each within its error budget against float64
    (:func:`neuroconv.kernels.verify.compare_fftconv`). Runs with gradients enabled and
    autocast off whatever the caller's mode (inference, no_grad, autocast).
    """
    from .verify import compare_fftconv, failures

    device = _normalise(device)
    t0 = time.perf_counter()
    failed = None
    try:
        with torch.inference_mode(False), torch.enable_grad(), \
                torch.autocast(device.type, enabled=False):
            for i, (B, H, L, max_onchip) in enumerate(SHAPES if shapes is None else shapes):
                path = "on chip" if max_onchip is None else f"three-pass, max_onchip={max_onchip}"
                recs = compare_fftconv(B, H, L, L, causal, gates=gated, with_D=True, dtype=dtype,
                                       seed=i, max_onchip=max_onchip, device=device)
                bad = failures(recs)
                if bad:
                    failed = f"mismatch at B={B}, H={H}, L={L} ({path}): " + "; ".join(bad)
                    break
    except Exception as e:  # noqa: BLE001 - a compile or launch error is a finding
        text = str(e).strip().splitlines()
        failed = f"{type(e).__name__}: {text[0][:300] if text else ''}"
    return SelfCheck(ok=failed is None, device=_describe(device), dtype=str(dtype).replace("torch.", ""),
                     causal=bool(causal), gated=bool(gated), failed=failed,
                     seconds=round(time.perf_counter() - t0, 3))


@torch.compiler.assume_constant_result  # traced: run once at trace time, a constant in the graph
def auto_backend(device, dtype: torch.dtype, causal: bool, gated: bool) -> str:
    """``"triton"`` when the cached (or, the first time, fresh) self-check of this
    combination passed, ``"torch"`` otherwise; warns once on a failure."""
    device = _normalise(device)
    key = (str(device), dtype, bool(causal), bool(gated))
    with _LOCK:
        res = _RESULTS.get(key)
        if res is None:
            res = _RESULTS[key] = self_check(device, dtype, causal, gated)
            if not res.ok:
                warnings.warn(
                    f"neuroconv fftconv(backend='auto'): the Triton FlashButterfly self-check failed "
                    f"on {res.device} for dtype={res.dtype}, causal={res.causal}, gated={res.gated}: "
                    f"{res.failed}. This combination uses the torch path from now on in this process. "
                    f"Please run `{REPORT_COMMAND}` on this machine and report report.json (it checks "
                    "every kernel here). NEUROCONV_FFTCONV_BACKEND=torch chooses torch without the "
                    "check; =triton uses the kernels anyway.",
                    FallbackWarning, stacklevel=4)
    return "triton" if res.ok else "torch"


def results() -> list[dict]:
    """Every self-check run in this process (device, dtype, causal, gated, ok, failed, seconds)."""
    with _LOCK:
        return [r.as_dict() for r in _RESULTS.values()]


def reset() -> None:
    """Forget the cached self-checks (tests; or after fixing the environment)."""
    with _LOCK:
        _RESULTS.clear()
