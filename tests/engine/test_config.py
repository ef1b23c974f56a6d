"""The generic command line of a job (:class:`neuroconv.engine.config.JobParser`): one
flag style, the one-screen help written from the dataclasses, and the error messages."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from neuroconv.engine.config import SHORTCUTS, ConfigError, JobParser, TrainerConfig, _short, field_docs, leaf_types


@dataclass
class DataSection:
    """Where the data are.

    Args:
        path: Folder of the data (e.g. ~/data). Read once.
        size: How many items; the rest are dropped.
        data_dir: Root folder.
    """

    path: str = ""
    size: int = 3
    data_dir: str = ""


@dataclass
class Budget:
    """A nested section.

    Args:
        depth: Depth of the search.
        width: Width of the search.
    """

    depth: int = 1
    width: int = 2


@dataclass
class JobSection(TrainerConfig):
    """The job.

    Args:
        mode: fast or slow (slow by default).
        budget: The inner budget.
        hidden: A key left to the full listing.
        switch: Turn the thing on.
    """

    mode: Literal["fast", "slow"] = "slow"
    budget: Budget = field(default_factory=Budget)
    hidden: float = 0.5
    switch: bool = False


@dataclass
class Root:
    """A toy job.

    Args:
        name: Run name.
        data: The data section.
        job: The job section.
        other: Another job.
    """

    name: str = "x"
    data: DataSection = field(default_factory=DataSection)
    job: JobSection = field(default_factory=JobSection)
    other: TrainerConfig = field(default_factory=TrainerConfig)


def _parser(**kw) -> JobParser:
    spec = dict(prog="toy run", description="Run the toy job.", section="job", flags={"--switch": "job.switch"},
                aliases={"--data-dir": ("data.data_dir", "the root folder")}, help_sections=("data", "job"),
                help_skip=("job.hidden",), examples=[("toy run --job.mode fast", "the fast mode")],
                lists=lambda full: [("things", ["one line: a, b", ("thing_a", "the first thing")])],
                elsewhere=lambda flag: f"`{flag}` belongs to toy prepare." if flag == "--prep" else None)
    spec.update(kw)
    return JobParser(Root, **spec)


def test_field_docs_read_every_class_of_the_field():
    docs = field_docs(JobSection)
    assert docs["mode"] == "fast or slow (slow by default)."
    assert docs["max_epochs"] == "Maximum number of epochs."  # inherited from TrainerConfig's docstring
    assert set(docs) >= {f.name for f in dataclasses.fields(JobSection)}


@pytest.mark.parametrize("text, short", [
    ("Folder of the data (e.g. ~/data). Read once.", "Folder of the data"),
    ("How many items; the rest are dropped.", "How many items"),
    ("Lightning strategy, e.g. \"ddp\". More.", "Lightning strategy, e.g. \"ddp\""),
    ("A sentence (with. a stop inside) goes on.", "A sentence goes on"),
    ("no full stop", "no full stop"),
    ("", ""),
])
def test_short_is_the_first_clause(text, short):
    assert _short(text) == short


@pytest.mark.parametrize("width", [60, 80, 100])
def test_help_is_written_from_the_dataclasses(width):
    text = _parser().format_help(width=width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines if not line.startswith("  toy run"))
    row = {line.split()[0]: line for line in lines if line.startswith("  --")}
    assert row["--data.path"].split()[1:] == ["TEXT", "Folder", "of", "the", "data"]
    assert row["--data.data_dir"].split()[1] == "DIR"
    assert row["--job.mode"].split()[1:] == ["fast|slow", "fast", "or", "slow"]
    budget = ["The", "inner", "budget:", "KEY", "one", "of", "depth,", "width"]
    assert row["--job.budget.KEY"].split()[1:] == (budget if width >= 80 else budget[:5] + ["..."])  # one line each
    assert "--job.hidden" not in text and "--other." not in text  # help_skip and sections not shown
    assert not any(f"--job.{f.name} " in text for f in dataclasses.fields(TrainerConfig))  # one paragraph:
    loop = " ".join(lines[next(i for i, line in enumerate(lines) if "the training loop" in line):]).split()
    assert all(f.name + "," in loop or f.name in loop for f in dataclasses.fields(TrainerConfig))
    for flag, (key, _) in SHORTCUTS.items():  # one per line, writing to the job's section
        assert sum(line.startswith(f"  {flag} ") and f"--job.{key}:" in line for line in lines) == 1, flag
    assert sum(line.startswith("  --data-dir DIR") and "--data.data_dir" in line for line in lines) == 1
    assert sum(line.startswith("  --switch ") and "--job.switch true: turn the thing on" in line
               for line in lines) == 1
    assert sum(line.startswith("  --print-config ") for line in lines) == 1
    assert "  toy run --job.mode fast" in lines and "      the fast mode" in lines
    assert "  one line: a, b" in lines and any(line.split() == ["thing_a", "the", "first", "thing"] for line in lines)


def test_help_all_lists_every_key():
    parser = _parser()
    text = parser.format_help_all()
    assert all(f"--{k}" in text for k in leaf_types(Root))
    assert "--print-config" in text
    assert all(any(line.startswith(f"  {flag} ") for line in text.splitlines()) for flag in SHORTCUTS)
    # a job without help_sections keeps the full listing as its --help
    assert _parser(help_sections=None).format_help() == _parser(help_sections=None).format_help_all()


def test_wants_help():
    assert JobParser.wants_help(["--job.mode", "fast", "--help-all"]) == "all"
    assert JobParser.wants_help(["-h"]) == JobParser.wants_help(["--help"]) == "short"
    assert JobParser.wants_help(["--job.mode", "fast"]) is None


def test_one_flag_style(capsys):
    parser = _parser()
    cfg, _, given = parser.parse(["--data-dir", "/root", "--switch", "--job.mode", "fast", "--max-epochs", "4"])
    assert (cfg.data.data_dir, cfg.job.switch, cfg.job.mode, cfg.job.max_epochs) == ("/root", True, "fast", 4)
    assert given == {"data.data_dir", "job.switch", "job.mode", "job.max_epochs"}
    assert parser.parse(["--job.switch"])[0].job.switch is True  # a true/false key alone: true
    assert parser.parse(["--job.switch", "false"])[0].job.switch is False
    outs = []
    for spelling in ("--print-config", "--print_config"):
        with pytest.raises(SystemExit) as e:
            parser.parse(["--job.budget.depth", "7", spelling])
        assert e.value.code == 0
        outs.append(yaml.safe_load(capsys.readouterr().out))
    assert outs[0] == outs[1] and outs[0]["job"]["budget"]["depth"] == 7


@pytest.mark.parametrize("argv, message", [
    (["--prep", "1"], "`--prep` belongs to toy prepare."),  # the job's `elsewhere`
    (["--mode", "fast"], "unknown option `--mode`: config keys are dotted; did you mean --job.mode?"),
    (["--lr", "1"], "did you mean --job.lr?"),  # the job's own section first, not other.lr
    (["--job.max-epochs", "1"], "config keys use the field names, with underscores: --job.max_epochs."),
    (["--max-epoch", "1"], "Did you mean --max-epochs"),
    (["--job.mdoe", "fast"], "unknown config key `job.mdoe`. Did you mean job.mode"),
    (["--job.budget.dept", "1"], "Known keys under job.budget: job.budget.depth, job.budget.width."),
    (["--job.mode", "medium"], "config key `job.mode` must be one of 'fast', 'slow'; got medium."),
])
def test_errors_say_what_to_type(argv, message):
    with pytest.raises(ConfigError) as e:
        _parser().parse(argv)
    assert message in str(e.value)


def test_without_elsewhere_an_unknown_flag_is_unknown():
    with pytest.raises(ConfigError, match="unknown option `--prep`"):
        _parser(elsewhere=None).parse(["--prep", "1"])
