"""The ``neuroconv`` command line.

Each subcommand lives in the module that owns its job and registers itself through an
``add_*(subparsers)`` function that builds its parser and sets ``func`` (``args ->
exit status``). Only argparse work happens at parser-build time; heavy imports wait until
a subcommand runs, so ``neuroconv --help`` stays fast.

A subcommand whose extra is not installed (``pip install neuroconv`` is the sequence
library alone) is still listed; running it, ``--help`` included, says which extra to
install and exits with status 1 (:mod:`neuroconv.extras`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .extras import MissingExtraError

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
    for name, spec in SUBCOMMANDS.items():
        module, func = spec.split(":")
        try:
            add = getattr(importlib.import_module(module), func)
        except MissingExtraError as e:
            add_unavailable(sub, name, e)
            continue
        add(sub)
    return parser


def add_unavailable(sub, name: str, error: MissingExtraError, prog: str | None = None) -> None:
    """Register subcommand ``name`` of ``sub`` (argparse subparsers) whose extra is
    missing: it is listed, and running it says what to install (status 1)."""
    p = sub.add_parser(name, help=f"(not installed: pip install 'neuroconv[{error.extra}]')", add_help=False,
                       prefix_chars="\x00")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda args: _missing(prog or f"neuroconv {name}", error))


def _missing(what: str, error: MissingExtraError) -> int:
    print(f"{what}: needs neuroconv's '{error.extra}' extra, which is not installed here (missing: "
          f"{', '.join(error.missing)}). Install it with:\n    pip install 'neuroconv[{error.extra}]'",
          file=sys.stderr)
    return 1


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
    except MissingExtraError as e:  # a command that reaches a part whose extra is missing
        return _missing(f"neuroconv {args.command}", e)
    except KeyboardInterrupt:
        print("neuroconv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
