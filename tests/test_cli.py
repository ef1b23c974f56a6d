"""The top-level ``neuroconv`` command line: its version, and a help that lists every
subcommand (from ``SUBCOMMANDS``) in one line each, with examples that parse."""

from __future__ import annotations

import importlib.metadata
import shlex

import pytest

from neuroconv.cli import EXAMPLES, SUBCOMMANDS, build_parser, main


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"neuroconv {importlib.metadata.version('neuroconv')}\n"


def _commands(out: str) -> list[str]:
    lines = out.splitlines()
    start = lines.index("commands:") + 1
    return lines[start:lines.index("", start)]


@pytest.mark.parametrize("argv", [["--help"], []])
def test_help_lists_each_subcommand_in_one_line(argv, capsys):
    if argv:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    else:
        assert main(argv) == 0  # `neuroconv` alone: the same page
    out = capsys.readouterr().out
    commands = _commands(out)
    assert [line.split()[0] for line in commands] == list(SUBCOMMANDS)
    assert all(len(line.split()) > 1 for line in commands)  # each with its one line of help
    assert "examples:" in out and 2 <= len(EXAMPLES) <= 3
    assert all(cmd in out for cmd, _ in EXAMPLES)


def test_a_registered_subcommand_shows_in_the_help(tmp_path, monkeypatch, capsys):
    (tmp_path / "toy_command.py").write_text(
        "def add_toy(sub):\n"
        "    p = sub.add_parser('toy', help='a toy command for the test')\n"
        "    p.set_defaults(func=lambda args: 0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(SUBCOMMANDS, "toy", "toy_command:add_toy")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert any(line.split() == ["toy", "a", "toy", "command", "for", "the", "test"]
               for line in _commands(capsys.readouterr().out))
    assert main(["toy"]) == 0


def test_examples_parse():
    """Each example is a valid command line (its source, options, config and models exist)."""
    from neuroconv.brain.cli import parse

    parser = build_parser()
    for command, _ in EXAMPLES:
        argv = shlex.split(command)
        assert argv[0] == "neuroconv"
        if argv[1] in ("pretrain", "decode"):
            parse(argv[1], argv[2:], log=lambda *_: None)
        else:
            assert parser.parse_args(argv[1:]).command == argv[1]


def test_preprocess_help_lists_the_source_registry(monkeypatch, capsys):
    from neuroconv.pipelines.sources import SOURCES, Source

    monkeypatch.setitem(SOURCES, "toy-source", Source("toy-source", lambda **kw: None, help="a toy source"))
    with pytest.raises(SystemExit) as e:
        main(["preprocess", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for name, row in SOURCES.items():
        assert name in out, name
    assert any(line.split() == ["toy-source", "a", "toy", "source"] for line in out.splitlines())
