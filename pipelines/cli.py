"""``neuroconv preprocess SOURCE``: recordings -> sequence stores.

One subcommand per data source, built from the registry
(:data:`neuroconv.pipelines.sources.SOURCES`): its options, the shared option groups it
takes and how they map onto its reader's keyword arguments all come from its row.
Options are spelled with dashes (``--data-dir``, ``--l-freq``); an option that is not
given is not passed, so the reader's own default applies.

Only argparse work happens here at parser-build time; the pipelines (and MNE, nilearn)
are imported when a subcommand runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings

from . import sources as S

if __doc__:  # None under python -OO
    __doc__ += "\nThe subcommands:\n\n" + S.describe() + "\n"

_DEST = "opt:"          # namespace attributes of source options: "opt:<key>"


class _SourceParser(argparse.ArgumentParser):
    """A source's parser: refuses ``--l_freq`` with the dashed spelling to use."""

    def parse_known_args(self, args=None, namespace=None):
        ns, extras = super().parse_known_args(args, namespace)
        known = {f for a in self._actions for f in a.option_strings}
        for tok in extras:
            flag = tok.split("=", 1)[0]
            if flag.startswith("--") and "_" in flag and flag.replace("_", "-") in known:
                self.error(f"unrecognized argument {flag}: the options of neuroconv preprocess "
                           f"are spelled with dashes: {flag.replace('_', '-')}")
        return ns, extras


class _Deprecated(argparse.Action):
    """An old spelling of an option: stores like the new one, after a message."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated and will be removed; "
              f"use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


class _Refused(argparse.Action):
    """An option of a shared group that means nothing for this source."""

    def __init__(self, option_strings, dest, message: str = "", **kwargs):
        self.message = message
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is not an option of this source: {self.message}")


def _add_option(parser, row: S.Source, opt: S.Option) -> None:
    dest = _DEST + opt.key
    help_ = row.help_overrides.get(opt.flags[0], opt.help)
    cli = dict(opt.cli)
    if opt.refuse is not None:
        parser.add_argument(*opt.flags, dest=dest, action=_Refused, message=opt.refuse,
                            nargs=cli.get("nargs"), default=argparse.SUPPRESS,
                            help=argparse.SUPPRESS)
        return
    if opt.positional:
        parser.add_argument(dest, help=help_, **{"metavar": opt.flags[0].upper(), **cli})
        return
    if cli.get("action") not in ("store_true", "store_false", "count") and "choices" not in cli:
        cli.setdefault("metavar", opt.key.upper())
    parser.add_argument(*opt.flags, dest=dest, default=argparse.SUPPRESS, help=help_, **cli)
    for old in opt.deprecated:
        extra = {k: v for k, v in cli.items() if k in ("type", "nargs", "metavar", "choices")}
        parser.add_argument(old, dest=dest, action=_Deprecated, new=opt.flags[0],
                            default=argparse.SUPPRESS, help=argparse.SUPPRESS, **extra)


def _add_source(ps, row: S.Source) -> None:
    description = row.description
    if row.data_dir:
        description += (f" Data: --data-dir, else {S.data_places(row)} ({S.ENV_ROOT}: a "
                        "root folder holding every data set, each in its own folder).")
    sp = ps.add_parser(row.name, help=row.help, description=description)
    groups: dict[str | None, argparse._ActionsContainer] = {None: sp}
    for title, opt in row.cli_options():
        if title not in groups:
            groups[title] = sp.add_argument_group(title)
        _add_option(groups[title], row, opt)
    sp.set_defaults(func=_cmd_source, _source=row.name, _sub=sp)


def add_preprocess(sub) -> None:
    p = sub.add_parser(
        "preprocess", help="recordings to sequence stores",
        description="Turn fMRI/EEG/MEG recordings into sequence stores (manifest.csv, "
                    "events.csv, meta.json, one float32 .npy per recording). Reruns skip "
                    "recordings already done; failures are listed in the closing summary "
                    "and make the exit status non-zero. One subcommand per data source "
                    "(neuroconv.pipelines.sources); options are spelled with dashes.")
    p.set_defaults(func=None, _parser=p)
    ps = p.add_subparsers(dest="_source", metavar="SOURCE", parser_class=_SourceParser)
    for row in S.SOURCES.values():
        _add_source(ps, row)


# ---------------------------------------------------------------------- running
def source_kwargs(row: S.Source, a: argparse.Namespace) -> dict:
    """The reader keywords of the options given on the command line (converted)."""
    out = {}
    for _, opt in row.cli_options():
        dest = _DEST + opt.key
        if opt.fills is None or opt.refuse is not None or not hasattr(a, dest):
            continue
        value = getattr(a, dest)
        if opt.convert is not None:
            try:
                value = opt.convert(value)
            except ValueError as e:
                name = opt.flags[0] if not opt.positional else opt.flags[0].upper()
                raise ValueError(f"{name}: {e}") from None
        out[opt.fills] = value
    return out


def _given(a, key: str, default=None):
    return getattr(a, _DEST + key, default)


def _dask(a, stack) -> None:
    """Enter ``use_dask`` for ``--dask`` (nothing without it)."""
    address = _given(a, "dask")
    if address is None:
        return
    from .runner import use_dask

    jobs = _given(a, "jobs", 1)
    local = address.strip().lower() == "local"
    if not local and jobs != 1:
        raise ValueError(f"--jobs {jobs} sets the workers of --dask local; the cluster at "
                         f"--dask {address} has its own workers: leave --jobs out.")
    client = stack.enter_context(use_dask("local" if local else address.strip(),
                                          n_workers=jobs if local and jobs > 1 else None))
    if not _given(a, "progress", False):                 # --no-progress not given
        n = len(client.scheduler_info().get("workers", {}))
        print(f"Dask scheduler {client.scheduler.address}: {n} worker(s); dashboard "
              f"{client.dashboard_link}", file=sys.stderr)


def _cmd_source(a) -> int:
    from rich.console import Console

    row = S.get_source(a._source)
    prog = f"neuroconv preprocess {row.name}"
    try:
        kwargs = source_kwargs(row, a)
    except ValueError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    out = kwargs.pop("out")
    try:
        with contextlib.ExitStack() as stack:
            try:
                _dask(a, stack)
            except ImportError as e:
                print(f"{prog}: error: --dask: {e}", file=sys.stderr)
                return 2
            from .runner import RunWarning

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RunWarning)   # the summary lists them
                summary = S.run_source(row, out, **kwargs)
    except S.MissingArgumentError as e:
        flag = next((o.flags[0] for _, o in row.cli_options() if o.fills == e.argument),
                    e.argument)
        print(f"{prog}: error: {flag} is required", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, TypeError, KeyError, ImportError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    summary.print(Console(stderr=True))
    path = _given(a, "summary_json")
    if path:
        with open(path, "w") as f:
            json.dump(summary.to_dict(), f, indent=1)
    return summary.exit_code
