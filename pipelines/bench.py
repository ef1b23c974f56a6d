"""``neuroconv bench preprocess``."""

from __future__ import annotations

import sys


def _not_yet(args) -> int:
    print("neuroconv bench preprocess: not implemented yet.", file=sys.stderr)
    return 2


def add_bench_preprocess(sub) -> None:
    p = sub.add_parser("preprocess", help="time the preprocessing extractors",
                       description="Time the preprocessing extractors.")
    p.set_defaults(func=_not_yet)
