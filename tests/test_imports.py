"""The arrows between packages, read from the source (ast), not from a running import:

- no module imports a ``_private`` name (or a name from a ``_private`` module) of another
  package;
- the kernels know no layer: from the rest of neuroconv they import only the contract of
  the long convolution;
- the benchmarks (``neuroconv.lra``) do not import the brain experiments, and the engine
  imports neither.

Folders map to packages as ``pyproject.toml``'s ``package-dir`` says (``kernels/`` is
``neuroconv.kernels``)."""

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


def _package_dirs() -> dict[str, Path]:
    """Folders and the package each installs as, from pyproject.toml's ``package-dir``."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {pkg: ROOT / folder for pkg, folder in cfg.items() if (ROOT / folder / "__init__.py").is_file()}


def _modules() -> list[tuple[str, bool, Path]]:
    """``(dotted module name, is a package's __init__, path)`` of every module."""
    out = []
    for pkg, folder in _package_dirs().items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if not all((folder / Path(*parts[:i]) / "__init__.py").is_file() for i in range(len(parts))):
                continue  # not inside a package
            is_pkg = parts[-1] == "__init__"
            out.append((".".join([pkg, *(parts[:-1] if is_pkg else parts)]), is_pkg, path))
    return out


MODULES = _modules()
PACKAGES = {name for name, is_pkg, _ in MODULES if is_pkg}


def _package_of(module: str) -> str:
    """The package a module belongs to (a package is its own)."""
    return module if module in PACKAGES else module.rpartition(".")[0]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _imports(module: str, is_pkg: bool, path: Path):
    """``(line, target module, imported names)`` of every import, relative ones resolved."""
    here = module if is_pkg else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            yield node.lineno, target, [a.name for a in node.names]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_violations(modules) -> list[str]:
    """Imports of a private name, or of anything in a private module, owned by another
    package than the importing module's."""
    bad = []
    for module, is_pkg, path in modules:
        mine = _package_of(module)
        for line, target, names in _imports(module, is_pkg, path):
            if not target.startswith("neuroconv"):
                continue
            parts = target.split(".")
            owners = [".".join(parts[:i]) for i, part in enumerate(parts) if _private(part)]  # private modules
            owner_of_names = target if target in PACKAGES else _package_of(target)
            owners += [owner_of_names for n in names if _private(n)]
            if any(o != mine for o in owners):
                bad.append(f"{_rel(path)}:{line}: from {target} import {', '.join(names) or '(module)'}")
    return bad


def _neuroconv_imports(module: str, is_pkg: bool, path: Path):
    """``(line, imported module)`` of every neuroconv module this one imports: the target
    of ``import``/``from``, and for ``from package import name`` the submodule ``name``
    when it is one."""
    known = {m for m, _, _ in MODULES}
    for line, target, names in _imports(module, is_pkg, path):
        if not target.startswith("neuroconv"):
            continue
        yield line, target
        for n in names:
            if f"{target}.{n}" in known:
                yield line, f"{target}.{n}"


def test_the_module_list_covers_every_package():
    for pkg in ("neuroconv", "neuroconv.kernels", "neuroconv.pipelines", "neuroconv.lra", "neuroconv.brain",
                "neuroconv.engine", "neuroconv.kernel_tools", "neuroconv.data"):
        assert pkg in PACKAGES, pkg
    names = {m for m, _, _ in MODULES}
    assert {"neuroconv.fftconv", "neuroconv.kernels.flashbutterfly", "neuroconv.lra.reproduce",
            "neuroconv.pipelines.eeg"} <= names


@pytest.mark.parametrize("folder", ["neuroconv", "kernels", "pipelines"])
def test_no_private_name_crosses_a_package(folder):
    modules = [m for m in MODULES if m[2].is_relative_to(ROOT / folder)]
    assert modules
    bad = _private_violations(modules)
    assert not bad, "private names imported across packages:\n" + "\n".join(bad)


def test_the_private_import_rule_can_fail(tmp_path):
    """Both forms (a private module, a private name) are caught across packages; a
    package's own private names are allowed."""
    src = tmp_path / "m.py"
    src.write_text("from neuroconv.kernels._common import launch\n"
                   "from neuroconv.brain.plots import _save\n"
                   "from ._common import dot_precision\n"
                   "from neuroconv.kernels import _common\n")
    bad = _private_violations([("neuroconv.lra.m", False, src)])
    assert len(bad) == 3 and "neuroconv.lra._common" not in str(bad), bad  # the third is its own
    bad = _private_violations([("neuroconv.kernels.m", False, src)])
    assert len(bad) == 1 and "_save" in bad[0], bad


def test_the_kernels_know_no_layer():
    """From the rest of neuroconv the kernel package imports only the contract module
    (so never neuroconv.layers, neuroconv.model or neuroconv.butterfly)."""
    bad = []
    for module, is_pkg, path in MODULES:
        if not module.startswith("neuroconv.kernels"):
            continue
        for line, target in _neuroconv_imports(module, is_pkg, path):
            if not (target == "neuroconv.kernels" or target.startswith("neuroconv.kernels.")
                    or target == "neuroconv.contract"):
                bad.append(f"{_rel(path)}:{line}: imports {target}")
    assert not bad, "\n".join(bad)


def _face_imports(modules) -> list[str]:
    """Imports, by a module of a package, of a name its package's ``__init__`` defines or
    re-exports (``from . import require_triton``, ``from neuroconv.kernels import x``):
    the modules of a package import each other, never their face."""
    known = {m for m, _, _ in MODULES}
    bad = []
    for module, is_pkg, path in modules:
        if is_pkg:
            continue
        package = _package_of(module)
        for line, target, names in _imports(module, is_pkg, path):
            if target != package:
                continue
            for n in names or ["(module)"]:
                if f"{target}.{n}" not in known:
                    bad.append(f"{_rel(path)}:{line}: from {target} import {n}")
    return bad


def test_the_kernels_import_down_only():
    """No kernel module takes a name from ``neuroconv.kernels``'s ``__init__`` (the face
    re-exports; the helpers live in modules the kernels import), and the face defines no
    function of its own beyond the lazy re-export (``__getattr__``, ``__dir__``)."""
    kernels = [m for m in MODULES if m[0] == "neuroconv.kernels" or m[0].startswith("neuroconv.kernels.")]
    assert len(kernels) > 5
    bad = _face_imports(kernels)
    assert not bad, "kernel modules importing from their package's face:\n" + "\n".join(bad)
    face = next(path for name, is_pkg, path in kernels if is_pkg)
    defs = [n.name for n in ast.parse(face.read_text()).body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert set(defs) <= {"__getattr__", "__dir__"}, f"{_rel(face)} defines {defs}; move them into a module"


def test_the_face_rule_can_fail(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from . import require_triton\nfrom . import availability\n"
                   "from neuroconv.kernels import auto_backend\nimport neuroconv.kernels\n")
    bad = _face_imports([("neuroconv.kernels.m", False, src)])
    assert len(bad) == 3 and "availability" not in str(bad), bad


@pytest.mark.parametrize("package,forbidden", [("neuroconv.lra", ("neuroconv.brain",)),
                                               ("neuroconv.engine", ("neuroconv.brain", "neuroconv.lra"))])
def test_benchmarks_and_engine_do_not_import_the_brain_experiments(package, forbidden):
    bad = []
    for module, is_pkg, path in MODULES:
        if not (module == package or module.startswith(package + ".")):
            continue
        for line, target in _neuroconv_imports(module, is_pkg, path):
            if target == forbidden or target.startswith(forbidden):
                bad.append(f"{_rel(path)}:{line}: imports {target}")
    assert not bad, "\n".join(bad)


def test_the_first_name_of_the_kernel_check_still_runs_it():
    """``python -m neuroconv.kernels.check`` (the name the README and reports used first)
    runs ``neuroconv.kernel_tools.check`` with its arguments."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "neuroconv.kernels.check", "--help"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "usage: python -m neuroconv.kernel_tools.check" in out.stdout and "--quick" in out.stdout
