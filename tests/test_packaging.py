"""Packaging: the pyproject package list, the CLI, and import hygiene."""

from __future__ import annotations

import subprocess
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest

from neuroconv.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = {v: k for k, v in cfg["package-dir"].items()}  # folder -> package
    found = set()
    for folder, pkg in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((pkg, *rel)))
    assert found == listed, f"pyproject packages out of date: missing {found - listed}, stale {listed - found}"


def test_import_is_light_and_offline():
    code = ("import sys, neuroconv; heavy = [m for m in ('torch', 'neuroconv.layers', 'triton', 'mne', 'nilearn', "
            "'lightning') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [[]] + [[c] for c in SUBCOMMANDS] + [["bench", "conv"], ["bench", "preprocess"]])
def test_help_on_every_subcommand(command, capsys):
    try:
        rc = main([*command, "--help"])
    except SystemExit as exc:  # argparse-built subcommands exit after printing help
        rc = exc.code
    assert rc == 0
    assert "usage: neuroconv" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run(["neuroconv", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "neuroconv" in out.stdout


def test_parser_builds_without_heavy_imports():
    code = ("import sys; from neuroconv.cli import build_parser; build_parser(); "
            "print([m for m in ('triton', 'mne', 'nilearn', 'lightning') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1]
    return section.split("```bash", 1)[1].split("```", 1)[0].strip()


def test_ci_runs_the_readme_commands():
    """CI must install the way the README says and run the README's test command."""
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = _readme_block("Tests")
    assert test_cmd in ci.splitlines()
    install = _readme_block("Install and run")
    for step in ("pip install torch==2.13.0", 'pip install -e ".[dev]"'):
        assert step in install and step in ci
    assert "neuroconv pretrain" in install


def test_readme_python_quick_start_runs():
    text = (ROOT / "README.md").read_text()
    code = text.split("## The layers in Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["y"].shape == (8, 64, 1000)
    assert namespace["out"].shape == (8, 1000, 64)
    assert namespace["logits"].shape == (8, 2)
