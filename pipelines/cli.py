"""``neuroconv preprocess``."""

from __future__ import annotations

import sys


def _not_yet(args) -> int:
    print("neuroconv preprocess: not implemented yet.", file=sys.stderr)
    return 2


def add_preprocess(sub) -> None:
    p = sub.add_parser("preprocess", help="recordings to sequence stores",
                       description="Turn fMRI/EEG recordings into sequence stores.")
    p.set_defaults(func=_not_yet)
