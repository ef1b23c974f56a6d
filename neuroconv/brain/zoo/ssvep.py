"""SSVEP baselines in the zoo (registered once their pipelines are available)."""

from __future__ import annotations

import re

__all__ = ["classes_are_frequencies"]

_FREQ = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:hz)?\s*$", re.IGNORECASE)


def classes_are_frequencies(classes) -> bool:
    """True when every class name reads as a stimulus frequency (``"20Hz"``, ``"7.5"``)."""
    return bool(classes) and all(_FREQ.match(str(c)) for c in classes)
