"""One config system for every job: typed dataclasses parsed by jsonargparse.

A job (``pretrain``, ``decode``, ``lra``) is described by one root dataclass whose fields
are sections (dataclasses themselves). :class:`JobParser` turns it into a command line
with jsonargparse, the library under LightningCLI:

- every key is a dotted flag (``--model.d_model 64``), documented from the dataclass
  docstrings (``Args:`` sections);
- ``--config NAME|YAML`` reads a config file (built-in names are resolved by the job);
  flags given after it override it;
- ``--print_config`` prints the resolved config and exits;
- lists given on the command line replace the file's list: ``--decode.models scratch
  csp_lda`` (space separated) or ``--decode.models '[scratch, csp_lda]'``;
- the same shortcut means the same thing in every job: ``--max-epochs``,
  ``--max-steps``, ``--seed``, ``--out``, ``--batch-size``, ``--devices``,
  ``--accelerator``, ``--precision``, ``--strategy``, ``--num-nodes`` set those keys of
  the job's trainer section (:class:`TrainerConfig`);
- unknown keys and wrong types raise :class:`ConfigError` with a message naming the key,
  the expected type and the value received (and the keys known nearby).

YAML is read with ``yaml.safe_load`` only (jsonargparse's default loader).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Union

__all__ = ["TrainerConfig", "JobParser", "ConfigError", "SHORTCUTS", "to_dict", "leaf_types"]


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


def _is_list(tp) -> bool:
    if tp is list or typing.get_origin(tp) is list:
        return True
    if typing.get_origin(tp) is Union:
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
    if origin is Union:
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


class JobParser:
    """The command line of one job, built from its root config dataclass.

    ``root``: the dataclass (its fields are the sections). ``section``: the trainer
    section the shortcuts write to (e.g. ``"pretrain"``). ``flags``: job-specific
    boolean shortcuts, ``{"--compare": "decode.compare"}``. ``resolve_config``: maps a
    ``--config`` value that is not a file (a built-in name) to a path. ``extra``:
    ``(flags, kwargs)`` pairs for arguments outside the config (e.g. ``--data DIR``).
    ``default_config``: the config read when no ``--config`` is given.
    ``replace_together``: groups of list keys that describe one thing together (e.g.
    ``("data.stores", "data.sources")``, the data inputs): when the command line gives
    one of a group, the others it does not give are emptied, so the command line replaces
    the file's inputs instead of adding to them.
    """

    def __init__(self, root: type, *, prog: str, description: str, section: str,
                 flags: dict[str, str] | None = None,
                 resolve_config: Callable[[str], Path] | None = None,
                 extra: list[tuple[tuple[str, ...], dict]] | None = None,
                 epilog: str = "", default_config: str | None = None,
                 replace_together: tuple[tuple[str, ...], ...] = ()):
        self.root, self.prog, self.description, self.section = root, prog, description, section
        self.flags = dict(flags or {})
        self.resolve_config = resolve_config
        self.extra = list(extra or [])
        self.epilog = epilog
        self.default_config = default_config
        self.replace_together = replace_together
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

        shortcuts = "\n".join(f"  {flag:<15} = --{self.section}.{key}: {what}"
                              for flag, (key, what) in SHORTCUTS.items())
        shortcuts += "".join(f"\n  {flag:<15} = --{key}=true" for flag, key in self.flags.items())
        epilog = f"shortcuts (the same in every job):\n{shortcuts}\n" + (f"\n{self.epilog}" if self.epilog else "")
        p = ArgumentParser(prog=self.prog, description=self.description, epilog=epilog,
                           exit_on_error=False, allow_abbrev=False)
        p.add_argument("--config", action=ActionConfigFile,
                       help="a built-in config name or a YAML file; flags after it override it")
        for flags, kwargs in self.extra:
            p.add_argument(*flags, **kwargs)
        p.add_class_arguments(self.root, as_group=True, fail_untyped=True)
        return p

    def print_help(self) -> None:
        self.parser.print_help()

    # ------------------------------------------------------------------ argv
    def normalize(self, argv: list[str]) -> tuple[list[str], set[str]]:
        """Shortcuts -> dotted keys, built-in config names -> paths, space-separated
        lists -> YAML lists; returns ``(argv, dotted keys given on the command line)``."""
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
                if _is_list(self.types[key]) and not (len(values) == 1 and values[0].lstrip().startswith("[")):
                    value = "[" + ", ".join(values) + "]"
                elif len(values) == 1:
                    value = values[0]
                else:
                    raise ConfigError(f"config key `{key}` takes one value ({_describe(self.types[key])}); "
                                      f"got {values}.")
                out.append(f"--{key}={value}")
                continue
            out.append(tok if not eq else f"{flag}={inline}")
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
        lines = []
        for key in keys:
            near = difflib.get_close_matches(key, list(self.types), n=3, cutoff=0.6)
            section = key.split(".")[0]
            siblings = [k for k in self.types if k.split(".")[0] == section]
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            known = f" Known keys under {section}: {', '.join(siblings)}." if siblings else \
                f" Sections: {', '.join(sorted({k.split('.')[0] for k in self.types}))}."
            lines.append(f"unknown config key `{key}`{source}.{hint}{known}")
        return ConfigError(" ".join(lines))
