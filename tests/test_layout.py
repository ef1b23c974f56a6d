"""The house's layout, read from the source (ast), not from a running import:

- no import runs in a circle between modules (top-level and function-level imports alike);
- no import runs up: the engine knows no experiment, the store and the pipelines know no
  training, the zoo knows no decode run, the tasks know no model, and the sequence library
  knows none of the rooms above it;
- the brain wing's functions stay short (at most 80 lines) and ``decode.py`` is the loop
  (at most 450 lines).

Folders map to packages as ``pyproject.toml``'s ``package-dir`` says."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (path, is a package's __init__)."""
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out = {}
    for pkg, folder in dirs.items():
        base = ROOT / folder
        if not (base / "__init__.py").is_file():
            continue
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if not all((base / Path(*parts[:i]) / "__init__.py").is_file() for i in range(len(parts))):
                continue
            is_pkg = parts[-1] == "__init__"
            out[".".join([pkg, *(parts[:-1] if is_pkg else parts)])] = (path, is_pkg)
    return out


MODULES = _modules()


def _imports(name: str, path: Path, is_pkg: bool) -> set[str]:
    """The neuroconv modules ``name`` imports, anywhere in its code (the nearest module
    for ``from package import name``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = name if is_pkg else name.rpartition(".")[0]
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            mod = (base + ("." + node.module if node.module else "")) if node.level else node.module
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


EDGES = {m: _imports(m, p, is_pkg) for m, (p, is_pkg) in MODULES.items()}


def _cycles(edges: dict) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))
    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_runs_in_a_circle():
    assert _cycles(EDGES) == []


def test_the_cycle_check_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


LIBRARY = ("neuroconv.contract", "neuroconv.backend", "neuroconv.fftconv", "neuroconv.kernel_gen", "neuroconv.layers",
           "neuroconv.model", "neuroconv.butterfly", "neuroconv.optim", "neuroconv.io")
ABOVE_LIBRARY = ("neuroconv.brain", "neuroconv.engine", "neuroconv.lra", "neuroconv.pipelines", "neuroconv.data",
                 "neuroconv.estimators", "neuroconv.cli", "neuroconv.bench", "neuroconv.kernel_tools")

#: (modules of this room, rooms above it that it must never import)
DOWN_ONLY = [
    (("neuroconv.engine",), ("neuroconv.brain", "neuroconv.lra", "neuroconv.pipelines", "neuroconv.estimators",
                             "neuroconv.cli")),
    (("neuroconv.lra",), ("neuroconv.brain", "neuroconv.pipelines", "neuroconv.estimators")),
    (("neuroconv.data",), ("neuroconv.brain", "neuroconv.engine", "neuroconv.lra", "neuroconv.pipelines")),
    (("neuroconv.pipelines",), ("neuroconv.brain", "neuroconv.engine", "neuroconv.lra", "neuroconv.estimators")),
    (("neuroconv.brain.zoo",), ("neuroconv.brain.design", "neuroconv.brain.decode", "neuroconv.brain.tasks",
                                "neuroconv.brain.cli", "neuroconv.brain.config")),
    (("neuroconv.brain.tasks",), ("neuroconv.brain.zoo", "neuroconv.brain.design", "neuroconv.brain.decode",
                                  "neuroconv.brain.cli")),
    (LIBRARY, ABOVE_LIBRARY),
]


def _inside(module: str, rooms) -> bool:
    return any(module == r or module.startswith(r + ".") for r in rooms)


@pytest.mark.parametrize("rooms, above", DOWN_ONLY, ids=[r[0] for r, _ in DOWN_ONLY])
def test_no_import_runs_up(rooms, above):
    up = sorted(f"{m} -> {t}" for m, ts in EDGES.items() if _inside(m, rooms) for t in ts if _inside(t, above))
    assert up == []


def test_brain_functions_stay_short_and_decode_is_the_loop():
    long = []
    for path in sorted((ROOT / "neuroconv" / "brain").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                            f"({node.end_lineno - node.lineno + 1} lines)")
    assert long == []
    assert len((ROOT / "neuroconv" / "brain" / "decode.py").read_text().splitlines()) <= 450
