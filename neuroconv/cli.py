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


#: ``neuroconv --help``'s examples: (command line, what it does)
EXAMPLES = (
    ("neuroconv preprocess eegbci --subjects 1-10 --out stores/eegbci", "EEG recordings -> a sequence store"),
    ("neuroconv pretrain --data.stores stores/eegbci --max-epochs 20", "self-supervised pretraining on the store"),
    ("neuroconv decode --config eegbci --compare", "our models and the field's baselines on the same folds"),
)


def build_parser() -> argparse.ArgumentParser:
    """The ``neuroconv`` parser: one subcommand per entry of :data:`SUBCOMMANDS`; its help
    lists them, one line each (each subcommand's own ``help``), and :data:`EXAMPLES`."""
    parser = argparse.ArgumentParser(prog="neuroconv", usage="%(prog)s [-h] [--version] COMMAND ...",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"neuroconv {__version__}")
    # (the listing below replaces argparse's; `prog` keeps the subcommands' usage "neuroconv NAME")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS, prog="neuroconv")
    helps, add_parser = {}, sub.add_parser

    def record(name, **kwargs):  # each subcommand's one line, for the listing below
        helps[name] = kwargs.get("help") or ""
        return add_parser(name, **kwargs)

    sub.add_parser = record
    for name, spec in SUBCOMMANDS.items():
        module, func = spec.split(":")
        try:
            add = getattr(importlib.import_module(module), func)
        except MissingExtraError as e:
            add_unavailable(sub, name, e)
            continue
        add(sub)
    sub.add_parser = add_parser
    width = max(map(len, helps)) + 4
    parser.description = "\n".join([
        "Brain recordings (fMRI, EEG/MEG) to sequences, and long-convolution sequence models that learn from them.",
        "", "commands:", *(f"  {name:<{width}}{text}" for name, text in helps.items()),
        "", "examples:", *(f"  {cmd}\n      {what}" for cmd, what in EXAMPLES),
        "", "neuroconv COMMAND --help: the options of one command."])
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
