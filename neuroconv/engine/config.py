"""One config system for every job: typed dataclasses parsed by jsonargparse.

A job (``pretrain``, ``decode``, ``lra``) is described by one root dataclass whose fields
are sections (dataclasses themselves). :class:`JobParser` turns it into a command line
with jsonargparse, the library under LightningCLI. One flag style:

- config keys are dotted and use the dataclasses' field names, underscores included:
  ``--model.d_model 64``, ``--decode.group_by subject``; they are documented from the
  dataclass docstrings (``Args:`` sections);
- a few shortcuts use dashes, and the same shortcut means the same thing in every job:
  ``--max-epochs``, ``--max-steps``, ``--seed``, ``--out``, ``--batch-size``,
  ``--devices``, ``--accelerator``, ``--precision``, ``--strategy``, ``--num-nodes`` set
  those keys of the job's trainer section (:class:`TrainerConfig`); a job adds its own
  (``--data-dir``, and switches such as ``--compare``);
- ``--config NAME|YAML`` reads a config file (built-in names are resolved by the job);
  flags given after it override it;
- ``--print-config`` prints the resolved config and exits (jsonargparse's own spelling
  ``--print_config`` works too);
- ``--help`` is one screen: what to run, the job's sections with one line per key, the
  job's lists (read from the registries), the shortcuts one per line and examples;
  ``--help-all`` lists every key of every section;
- lists given on the command line replace the file's list: ``--decode.models scratch
  csp_lda`` (space separated) or ``--decode.models '[scratch, csp_lda]'``;
- unknown keys and wrong types raise :class:`ConfigError` with a message naming the key,
  the expected type and the value received (and the keys known nearby); a flag that
  belongs to another command says which (the job tells, see ``elsewhere``).

YAML is read with ``yaml.safe_load`` only (jsonargparse's default loader).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import shutil
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence, Union

__all__ = ["TrainerConfig", "JobParser", "ConfigError", "SHORTCUTS", "to_dict", "leaf_types", "field_docs"]


class ConfigError(ValueError):
    """A config file or flag is not valid; the message says which key and why."""


@dataclass
class TrainerConfig:
    """Training-loop settings, the same in every job (pretrain, decode, lra).

    Args:
        max_epochs: Maximum number of epochs.
        max_steps: Stop after this many optimizer steps (-1: the epochs decide).
        max_time: Wall-clock limit "DD:HH:MM:SS" (empty: none).
        batch_size: Examples (windows, recordings, sequences) per batch.
        lr: Learning rate of AdamW (kernel parameters have their own, from the model section).
        weight_decay: AdamW weight decay (matrices only; never kernels, biases, norms or D).
        warmup_steps: Linear warm-up steps before the cosine decay over the run.
        precision: Lightning precision; "auto" is bf16-mixed on GPUs that support it, else 32-true.
        accelerator: "auto", "cpu" or "gpu".
        devices: Devices per node: "auto", a count, or a list like "0,1".
        num_nodes: Nodes for multi-node training.
        strategy: Lightning strategy, e.g. "ddp".
        seed: Seed of initialisation, shuffling and every split.
        patience: Early stopping on the validation loss, in epochs (0: off).
        gradient_clip: Gradient-norm clip (0: off).
        accumulate_grad_batches: Batches per optimizer step.
        limit_train_batches: Fraction (or count) of training batches per epoch.
        num_workers: DataLoader worker processes.
        progress: Progress display: rich, tqdm or none.
        out: Folder that holds the run folders.
        name: Run folder name (empty: <experiment>-<job>-<UTC time>).
    """

    max_epochs: int = 20
    max_steps: int = -1
    max_time: str = ""
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    precision: str = "auto"
    accelerator: str = "auto"
    devices: Union[int, str] = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    seed: int = 0
    patience: int = 5
    gradient_clip: float = 1.0
    accumulate_grad_batches: int = 1
    limit_train_batches: float = 1.0
    num_workers: int = 0
    progress: Literal["rich", "tqdm", "none"] = "rich"
    out: str = "runs"
    name: str = ""


#: shortcut flag -> (key in the job's trainer section, what it does); the same in every job
SHORTCUTS = {
    "--max-epochs": ("max_epochs", "maximum epochs"),
    "--max-steps": ("max_steps", "maximum optimizer steps (-1: the epochs decide)"),
    "--seed": ("seed", "random seed of initialisation, shuffling and splits"),
    "--out": ("out", "folder that holds the run folders"),
    "--batch-size": ("batch_size", "examples per batch"),
    "--devices": ("devices", "devices per node (auto, N, or a list like 0,1)"),
    "--num-nodes": ("num_nodes", "nodes for multi-node training"),
    "--strategy": ("strategy", "Lightning strategy, e.g. ddp"),
    "--accelerator": ("accelerator", "cpu, gpu or auto"),
    "--precision": ("precision", "auto, 32-true, bf16-mixed, 16-mixed"),
}


def to_dict(cfg) -> dict:
    """A config dataclass as a plain nested dict (YAML- and JSON-safe)."""
    return dataclasses.asdict(cfg)


def leaf_types(cls, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> type hint for every leaf field of the dataclass ``cls``."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(leaf_types(tp, f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = tp
    return out


def field_docs(cls) -> dict[str, str]:
    """Field name -> its description in the ``Args:`` section of the docstring of ``cls``,
    or of the class it inherits the field from (read with ``docstring_parser``, as
    jsonargparse reads them)."""
    import docstring_parser

    out = {}
    for klass in reversed(cls.__mro__):  # a subclass's text wins
        doc = klass.__dict__.get("__doc__")
        if doc:
            out.update({p.arg_name: " ".join((p.description or "").split())
                        for p in docstring_parser.parse(doc).params})
    return out


_ABBREV = ("e.g.", "i.e.", "etc.", "vs.")
#: ``Union[a, b]`` and ``a | b``
_UNIONS = (Union, types.UnionType)


def _short(text: str) -> str:
    """The first clause of ``text``: up to its first full stop or semicolon, without its
    asides in brackets (a full stop inside brackets, or of an abbreviation, ends
    nothing)."""
    out, depth = [], 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}" and depth:
            depth -= 1
            continue
        if depth:
            continue
        if ch == "." and (i + 1 == len(text) or text[i + 1] == " ") \
                and not any(text[:i + 1].endswith(a) for a in _ABBREV):
            break
        if ch == ";":
            break
        out.append(ch)
    return re.sub(r"\s+([,;:])", r"\1", re.sub(r"\s{2,}", " ", "".join(out))).strip()


def _metavar(tp, name: str = "") -> str:
    """How a value of the field ``name`` of type ``tp`` is typed on a command line."""
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true|false"
    if origin is Literal:
        return "|".join(map(str, typing.get_args(tp)))
    if origin in _UNIONS:
        return "|".join(dict.fromkeys(_metavar(a, name) for a in typing.get_args(tp) if a is not type(None)))
    if _is_list(tp):
        return "LIST"
    if tp is dict or origin is dict:
        return "MAP"
    if tp is str:
        return "DIR" if name == "out" or name.endswith("_dir") else "TEXT"
    return {int: "N", float: "X"}.get(tp, getattr(tp, "__name__", "VALUE").upper())


def _key_row(flag: str, tp, doc: str, name: str = "") -> tuple[str, str]:
    """``(flag and value, what it is)``: choices too long for the first column go to the
    second when its text does not name them already."""
    meta, text = _metavar(tp, name), _short(doc)
    if len(meta) > 16:
        choices = [str(c) for c in typing.get_args(tp)]
        if not all(c in text for c in choices):
            text = f"{text} ({', '.join(choices)})"
        meta = "CHOICE"
    return f"{flag} {meta}", text


def _is_list(tp) -> bool:
    if tp is list or typing.get_origin(tp) is list:
        return True
    if typing.get_origin(tp) in _UNIONS:
        return any(_is_list(a) for a in typing.get_args(tp) if a is not type(None))
    return False


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if origin in _UNIONS:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        text = " or ".join(_describe(a) for a in args)
        return text + (" or null" if type(None) in typing.get_args(tp) else "")
    if _is_list(tp):
        return "a list"
    if tp is dict or origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _override_args(overrides: dict | None) -> list[str]:
    import yaml

    out = []
    for k, v in (overrides or {}).items():
        # strings go as typed on a command line; other values as YAML (lists, mappings, null)
        text = v if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()
        out.append(f"--{k}={text}")
    return out


def _width() -> int:
    """Columns of help text: the terminal's, at most 100."""
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 100))


def _rows(rows: list[tuple[str, str]], width: int, col: int = 30, indent: int = 2, most: int = 1) -> list[str]:
    """``(name, text)`` rows as two columns: the text starts at column ``col`` (after a
    longer name: two spaces after it) and wraps under itself, in at most ``most`` lines
    (the last one cut short with an ellipsis where the text goes on)."""
    out = []
    for name, text in rows:
        head = " " * indent + name
        head = head.ljust(col) if len(head) < col - 1 else head + "  "
        lines = textwrap.wrap(text, width=max(width - len(head), 20), break_on_hyphens=False) or [""]
        if len(lines) > most:
            lines = lines[:most - 1] + [textwrap.shorten(" ".join(lines[most - 1:]), max(width - len(head), 20),
                                                         placeholder=" ...")]
        out.append((head + lines[0]).rstrip())
        out += [" " * len(head) + line for line in lines[1:]]
    return out


def _key_docs(cls, prefix: str = "") -> dict[str, str]:
    """Dotted key -> its ``Args:`` description, for every leaf of ``cls``."""
    out, hints, docs = {}, typing.get_type_hints(cls), field_docs(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(_key_docs(hints[f.name], f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = docs.get(f.name, "")
    return out


class JobParser:
    """The command line of one job, built from its root config dataclass.

    ``root``: the dataclass (its fields are the sections). ``section``: the trainer
    section the shortcuts write to (e.g. ``"pretrain"``). ``flags``: job-specific
    boolean shortcuts, ``{"--compare": "decode.compare"}``. ``aliases``: job-specific
    shortcuts that take a value, ``{"--data-dir": ("data.data_dir", "what it is")}``.
    ``resolve_config``: maps a ``--config`` value that is not a file (a built-in name) to
    a path. ``extra``: ``(flags, kwargs)`` pairs for arguments outside the config (e.g.
    ``--data DIR``). ``default_config``: the config read when no ``--config`` is given.
    ``replace_together``: groups of list keys that describe one thing together (e.g.
    ``("data.stores", "data.sources")``, the data inputs): when the command line gives
    one of a group, the others it does not give are emptied, so the command line replaces
    the file's inputs instead of adding to them.

    The one-screen ``--help`` (:meth:`format_help`) is written from the dataclasses:
    ``help_sections`` names the root's sections it shows, in order (None: ``--help`` is
    the full listing of :meth:`format_help_all`); ``help_skip`` holds dotted keys or
    sections left to ``--help-all``; ``examples`` are ``(command line, what it does)``
    pairs; ``lists(full)`` returns the job's lists, read from its registries when the
    help is written: ``[(title, items)]``, an item being a line of text or a ``(name,
    summary)`` row (``full``: the longer lists of ``--help-all``). ``elsewhere(flag)``
    says where an unknown flag belongs when it is an option of another command (None: it
    is not).
    """

    def __init__(self, root: type, *, prog: str, description: str, section: str,
                 flags: dict[str, str] | None = None,
                 resolve_config: Callable[[str], Path] | None = None,
                 extra: list[tuple[tuple[str, ...], dict]] | None = None,
                 epilog: str = "", default_config: str | None = None,
                 replace_together: tuple[tuple[str, ...], ...] = (),
                 aliases: Mapping[str, tuple[str, str]] | None = None,
                 help_sections: Sequence[str] | None = None, help_skip: Sequence[str] = (),
                 examples: Sequence[tuple[str, str]] = (),
                 lists: Callable[[bool], Sequence[tuple[str, Sequence]]] | None = None,
                 elsewhere: Callable[[str], str | None] | None = None):
        self.root, self.prog, self.description, self.section = root, prog, description, section
        self.flags = dict(flags or {})
        self.aliases = dict(aliases or {})
        self.resolve_config = resolve_config
        self.extra = list(extra or [])
        self.epilog = epilog
        self.default_config = default_config
        self.replace_together = replace_together
        self.help_sections = None if help_sections is None else tuple(help_sections)
        self.help_skip = tuple(help_skip)
        self.examples = list(examples)
        self.lists = lists
        self.elsewhere = elsewhere
        self.types = leaf_types(root)
        self._parser = None

    # ------------------------------------------------------------------ parser
    @property
    def parser(self):
        if self._parser is None:
            self._parser = self._build()
        return self._parser

    def _build(self):
        from jsonargparse import ActionConfigFile, ArgumentParser

        p = ArgumentParser(prog=self.prog, description=self.description, exit_on_error=False, allow_abbrev=False)
        p.add_argument("--config", action=ActionConfigFile,
                       help="a built-in config name or a YAML file; flags after it override it")
        for flags, kwargs in self.extra:
            p.add_argument(*flags, **kwargs)
        p.add_class_arguments(self.root, as_group=True, fail_untyped=True)
        return p

    # ------------------------------------------------------------------ help
    @staticmethod
    def wants_help(argv: list[str]) -> str | None:
        """``"all"`` for ``--help-all``, ``"short"`` for ``-h``/``--help``, else None."""
        if "--help-all" in argv:
            return "all"
        return "short" if any(a in ("-h", "--help") for a in argv) else None

    def print_help(self, full: bool = False) -> None:
        """Print :meth:`format_help`, or with ``full`` :meth:`format_help_all`."""
        print(self.format_help_all() if full else self.format_help(), end="")

    def format_help_all(self) -> str:
        """Every key of every section (jsonargparse's listing), the job's lists in full
        (``lists(full=True)``: e.g. one line per model with what it is), then the shortcuts."""
        text = self.parser.format_help()
        width = _width()

        def fill(t, indent=""):
            return textwrap.wrap(t, width, initial_indent=indent, subsequent_indent=indent + "  ") or [""]

        full = self._list_block(self.lists(full=True) if self.lists else (), width, fill, wide=True)
        tail = full + [""] + self._shortcut_block(width, most=20) + (["", self.epilog] if self.epilog else [])
        return text.rstrip("\n") + "\n\n" + "\n".join(tail) + "\n"

    def format_help(self, width: int | None = None) -> str:
        """One screen: what to run, the sections of ``help_sections`` with one line per
        key, the job's lists, the shortcuts one per line, and examples; ``width``:
        columns (default: the terminal's, at most 100). Each line of text is the first
        clause of a field's ``Args:`` description; ``--help-all`` has the whole text."""
        if self.help_sections is None:
            return self.format_help_all()
        width = width or _width()

        def fill(text, indent="", more="  "):
            return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent + more,
                                 break_on_hyphens=False)

        usage = f"usage: {self.prog} "
        out = [*textwrap.wrap("[--config NAME|YAML] [--SECTION.KEY VALUE ...] [--print-config] [-h | --help-all]",
                              width=width, initial_indent=usage, subsequent_indent=" " * len(usage),
                              break_on_hyphens=False, break_long_words=False),
               "", *fill(self.description, more=""), "",
               *fill("Config keys are dotted field names, --SECTION.KEY VALUE (a list: --SECTION.KEY A B replaces "
                     "the file's list), and override the --config file; a few shortcuts use dashes.", more="")]
        if self.examples:
            out += ["", "examples:"]
            for command, what in self.examples:
                out += [f"  {command}", *fill(what, " " * 6)]
        docs, hints = field_docs(self.root), typing.get_type_hints(self.root)
        rows = [("--config NAME|YAML", "a built-in config name or a YAML file; flags after it override it")]
        rows += [(f"{flags[0]} {kw.get('metavar', '')}".rstrip(), kw.get("help", "")) for flags, kw in self.extra]
        rows += [_key_row(f"--{f.name}", hints[f.name], docs.get(f.name, ""), f.name)
                 for f in dataclasses.fields(self.root) if not dataclasses.is_dataclass(hints[f.name])]
        out += ["", "what to run:", *_rows(rows, width)]
        for name in self.help_sections:
            out += ["", f"{name} (--{name}.KEY): {_short(docs.get(name, '')).lower()}",
                    *self._section_rows(hints[name], name, width)]
        out += self._list_block(self.lists(full=False) if self.lists else (), width, fill)
        out += ["", *self._shortcut_block(width)]
        return "\n".join(out + (["", self.epilog] if self.epilog else [])) + "\n"

    @staticmethod
    def _list_block(lists, width: int, fill, wide: bool = False) -> list[str]:
        """The job's lists: a title, then each item (a line of text, or a ``(name, what)``
        row; ``wide`` keeps a row's whole text, wrapped)."""
        out = []
        for title, items in lists:
            out += ["", *fill(f"{title}:")]
            col = min(max((len(i[0]) for i in items if isinstance(i, tuple)), default=0) + 6, 30)
            for item in items:
                if isinstance(item, tuple) and wide:
                    out += fill(f"{item[0]:<{col - 4}}{item[1]}", "    ")
                elif isinstance(item, tuple):
                    out += _rows([item], width, col, indent=4)
                else:
                    out += fill(item, "  ")
        return out

    def _section_rows(self, cls, prefix: str, width: int) -> list[str]:
        """One line per key of the section ``prefix`` (class ``cls``); a nested section is
        one line naming its keys, the training loop's keys one paragraph."""
        hints, docs = typing.get_type_hints(cls), field_docs(cls)
        loop = [f.name for f in dataclasses.fields(TrainerConfig)] \
            if prefix == self.section and issubclass(cls, TrainerConfig) else []
        rows = []
        for f in dataclasses.fields(cls):
            key, tp = f"{prefix}.{f.name}", hints[f.name]
            if f.name in loop or key in self.help_skip:
                continue
            if dataclasses.is_dataclass(tp):
                keys = ", ".join(x.name for x in dataclasses.fields(tp))
                rows.append((f"--{key}.KEY", f"{_short(docs.get(f.name, ''))}: KEY one of {keys}"))
            else:
                rows.append(_key_row(f"--{key}", tp, docs.get(f.name, ""), f.name))
        out = _rows(rows, width)
        if loop:
            out += textwrap.wrap(f"the training loop: --{prefix}.KEY with KEY one of {', '.join(loop)}", width=width,
                                 initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
        return out

    def _shortcut_block(self, width: int, most: int = 1) -> list[str]:
        rows = []
        for flag, (key, what) in [*((f, (f"{self.section}.{k}", w)) for f, (k, w) in SHORTCUTS.items()),
                                  *self.aliases.items()]:
            rows.append((f"{flag} {_metavar(self.types[key], key.rsplit('.', 1)[-1])}", f"--{key}: {what}"))
        docs = _key_docs(self.root)
        flags = [(flag, f"--{key} true: {_short(docs.get(key, '')).lower()}") for flag, key in self.flags.items()]
        flags += [("--print-config", "print the resolved config (YAML) and exit: save it, edit it, run it with "
                                     "--config FILE (also spelled --print_config)")]
        if self.help_sections is not None:  # --help is the short page: say where the rest is
            flags.append(("--help-all", "every key of every section, each with its whole text"))
        return ["shortcuts (dashes; the same in every job):", *_rows(rows, width, 22, most=most),
                "", "job flags:", *_rows(flags, width, 22, most=most)]

    # ------------------------------------------------------------------ argv
    def normalize(self, argv: list[str]) -> tuple[list[str], set[str]]:
        """Shortcuts and aliases -> dotted keys, ``--print-config`` -> jsonargparse's
        ``--print_config``, built-in config names -> paths, space-separated lists -> YAML
        lists, a true/false key given alone -> true; returns ``(argv, dotted keys given on
        the command line)``."""
        out, given = [], set()
        i = 0
        argv = list(argv)
        if self.default_config and not any(a == "--config" or a.startswith("--config=") for a in argv):
            argv = ["--config", self.default_config, *argv]
        while i < len(argv):
            tok = argv[i]
            flag, eq, inline = tok.partition("=")
            if flag in self.flags:
                key = self.flags[flag]
                out.append(f"--{key}={inline if eq else 'true'}")
                given.add(key)
                i += 1
                continue
            if flag in SHORTCUTS:
                flag = f"--{self.section}.{SHORTCUTS[flag][0]}"
            elif flag in self.aliases:
                flag = f"--{self.aliases[flag][0]}"
            elif flag == "--print-config":
                flag = "--print_config"
            if flag == "--config":
                value, i = (inline, i + 1) if eq else (argv[i + 1] if i + 1 < len(argv) else "", i + 2)
                out += ["--config", self._config_path(value)]
                continue
            key = flag[2:] if flag.startswith("--") else None
            if key in self.types:
                given.add(key)
                if eq:
                    values, i = [inline], i + 1
                else:
                    j = i + 1
                    while j < len(argv) and not argv[j].startswith("--"):
                        j += 1
                    values, i = argv[i + 1:j], j
                if not values and self.types[key] is bool:
                    values = ["true"]  # a switch: --decode.refit alone means true
                if _is_list(self.types[key]) and not (len(values) == 1 and values[0].lstrip().startswith("[")):
                    value = "[" + ", ".join(values) + "]"
                elif len(values) == 1:
                    value = values[0]
                else:
                    raise ConfigError(f"config key `{key}` takes one value ({_describe(self.types[key])}); "
                                      f"got {values}.")
                out.append(f"--{key}={value}")
                continue
            out.append(f"{flag}={inline}" if eq else flag)
            i += 1
        for group in self.replace_together:
            if given & set(group):
                out += [f"--{k}=[]" for k in group if k not in given]
        return out, given

    def _config_path(self, value: str) -> str:
        if "\n" in value or value.lstrip().startswith("{") or self.resolve_config is None:
            return value  # an inline YAML/JSON config
        if Path(value).is_file():
            return value
        return str(self.resolve_config(value))

    # ------------------------------------------------------------------ parse
    def parse(self, argv: list[str]):
        """``(config, extras, given)``: the root dataclass instance, a namespace with the
        non-config arguments, and the dotted keys given on the command line."""
        from jsonargparse import ArgumentError

        argv, given = self.normalize(argv)
        try:
            ns = self.parser.parse_args(argv)
        except ArgumentError as e:
            raise self._explain(str(e), argv, given) from None
        init = self.parser.instantiate(ns)
        cfg = self.root(**{f.name: getattr(init, f.name) for f in dataclasses.fields(self.root)})
        extras = {k: v for k, v in vars(init).items()
                  if k not in {f.name for f in dataclasses.fields(self.root)} and k != "config"}
        return cfg, extras, given

    def load(self, path, overrides: dict | None = None):
        """A config from a YAML file (or built-in name) plus ``{dotted key: value}``
        overrides, checked like command-line flags."""
        return self.parse(["--config", str(path), *_override_args(overrides)])[0]

    def override(self, cfg, overrides: dict):
        """A copy of the config ``cfg`` with ``{dotted key: value}`` overrides, checked
        like command-line flags."""
        import yaml

        return self.parse(["--config", yaml.safe_dump(to_dict(cfg)), *_override_args(overrides)])[0]

    def dump(self, cfg) -> str:
        import yaml

        return yaml.safe_dump(to_dict(cfg), sort_keys=False)

    def _explain(self, msg: str, argv: list[str], given: set) -> ConfigError:
        source = ""
        if "--config" in argv:
            source = f" (config {argv[argv.index('--config') + 1]})"
        m = re.search(r'Parser key "([^"]+)":\s*(?:Expected a .*?Got value: (.*))?', msg, re.S)
        if m and m.group(1) in self.types:
            key = m.group(1)
            source = "" if key in given else source
            got = (m.group(2) or "").strip().splitlines()[0] if m.group(2) else "?"
            return ConfigError(f"config key `{key}` must be {_describe(self.types[key])}; got {got}{source}.")
        m = re.search(r"Group '([^']+)' does not accept (?:nested key|option) '([^']+)'", msg)
        if m:
            return self._unknown([f"{m.group(1)}.{m.group(2)}"], source)
        m = re.search(r"unrecognized arguments: (.*)", msg)
        if m:
            keys = [t.split("=")[0][2:] for t in m.group(1).split() if t.startswith("--")]
            return self._unknown(keys or [m.group(1)], "")
        if "does not accept" in msg or "Unrecognized" in msg or "unrecognized" in msg:
            return ConfigError(f"{msg.strip()}{source}. Run with --help for the list of keys.")
        return ConfigError(f"{msg.strip()}{source}")

    def _unknown(self, keys: list[str], source: str) -> ConfigError:
        return ConfigError(" ".join(self._unknown_one(key, source) for key in keys))

    def _unknown_one(self, key: str, source: str) -> str:
        """What an unknown key (``l-freq`` for ``--l-freq``, ``model.dmodel``) is, in words."""
        flag, name = f"--{key}", key.replace("-", "_")
        if name != key and name in self.types:
            return f"unknown config key `{key}`{source}: config keys use the field names, with underscores: --{name}."
        if "." not in key:
            same = [k for k in self.types if k.rsplit(".", 1)[-1] == name]
            mine = [k for k in same if k == f"{self.section}.{name}"] or \
                [k for k in same if k.startswith(self.section + ".")] or same
            if mine:
                return (f"unknown option `{flag}`{source}: config keys are dotted; did you mean "
                        f"{' or '.join('--' + k for k in mine)}?")
            where = self.elsewhere(flag) if self.elsewhere else None
            if where:
                return where
            close = difflib.get_close_matches(flag, [*SHORTCUTS, *self.aliases, *self.flags], n=3, cutoff=0.6) or \
                ["--" + k for k in difflib.get_close_matches(key, list(self.types), n=3, cutoff=0.6)]
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            return (f"unknown option `{flag}`{source}.{hint} Config keys are dotted, --SECTION.KEY, with sections "
                    f"{', '.join(sorted({k.split('.')[0] for k in self.types}))}; run with --help for the options.")
        near = difflib.get_close_matches(key, list(self.types), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        section = key.rsplit(".", 1)[0]
        siblings = [k for k in self.types if k.rsplit(".", 1)[0] == section]
        if not siblings:
            section = key.split(".")[0]
            siblings = [k for k in self.types if k.split(".")[0] == section]
        known = f" Known keys under {section}: {', '.join(siblings)}." if siblings else \
            f" Sections: {', '.join(sorted({k.split('.')[0] for k in self.types}))}."
        return f"unknown config key `{key}`{source}.{hint}{known}"
