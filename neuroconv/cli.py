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
    for spec in SUBCOMMANDS.values():
        module, func = spec.split(":")
        getattr(importlib.import_module(module), func)(sub)
    sub.add_parser = add_parser
    width = max(map(len, helps)) + 4
    parser.description = "\n".join([
        "Brain recordings (fMRI, EEG/MEG) to sequences, and long-convolution sequence models that learn from them.",
        "", "commands:", *(f"  {name:<{width}}{text}" for name, text in helps.items()),
        "", "examples:", *(f"  {cmd}\n      {what}" for cmd, what in EXAMPLES),
        "", "neuroconv COMMAND --help: the options of one command."])
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
