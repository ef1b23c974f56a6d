"""The ``neuroconv`` command line.

Each subcommand lives in the module that owns its job and registers itself through an
``add_*(subparsers)`` function that builds its parser and sets ``func`` (``args ->
exit status``). Only argparse work happens at parser-build time; heavy imports wait until
a subcommand runs, so ``neuroconv --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

#: subcommand -> "module:function" that adds its parser
SUBCOMMANDS = {
    "pretrain": "neuroconv.brain.cli:add_pretrain",
    "decode": "neuroconv.brain.cli:add_decode",
    "preprocess": "neuroconv.pipelines.cli:add_preprocess",
    "lra": "neuroconv.lra.cli:add_lra",
    "bench": "neuroconv.bench:add_bench",
    "plot": "neuroconv.brain.plots:add_plot",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuroconv",
        description=(
            "Brain recordings (fMRI, EEG/MEG) to sequences, and long-convolution sequence "
            "models that learn from them."
        ),
    )
    parser.add_argument("--version", action="version", version=f"neuroconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for spec in SUBCOMMANDS.values():
        module, func = spec.split(":")
        getattr(importlib.import_module(module), func)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded by jobs that log their own command line
    if getattr(args, "func", None) is None:
        # `neuroconv` or `neuroconv bench` alone: show the relevant help.
        (getattr(args, "_parser", None) or parser).print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("neuroconv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
