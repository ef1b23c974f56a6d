"""``neuroconv lra``."""

from __future__ import annotations

import sys


def _not_yet(args) -> int:
    print("neuroconv lra: not implemented yet.", file=sys.stderr)
    return 2


def add_lra(sub) -> None:
    p = sub.add_parser("lra", help="long-range-arena and text benchmarks",
                       description="Long-range-arena and text benchmarks.")
    p.set_defaults(func=_not_yet)
