"""``neuroconv pretrain`` and ``neuroconv decode``."""

from __future__ import annotations

import sys


def _not_yet(args) -> int:
    print(f"neuroconv {args.command}: not implemented yet.", file=sys.stderr)
    return 2


def add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pretraining on sequence stores",
                       description="Self-supervised pretraining on sequence stores.")
    p.set_defaults(func=_not_yet)


def add_decode(sub) -> None:
    p = sub.add_parser("decode", help="decode labels with a pretrained or fresh model",
                       description="Decode labels with a pretrained or fresh model.")
    p.set_defaults(func=_not_yet)
