"""MkDocs hook: let the API reference find ``neuroconv.pipelines`` and ``neuroconv.kernels``.

The project maps folders of the repository into the one ``neuroconv`` namespace
(``[tool.setuptools] package-dir`` in ``pyproject.toml``: ``pipelines/`` installs as
``neuroconv.pipelines``, ``kernels/`` as ``neuroconv.kernels``). Python finds them through
that mapping; griffe, which mkdocstrings uses to read the source without importing it,
looks only inside ``neuroconv/``. This hook reads the mapping from ``pyproject.toml`` and
adds those folders to the submodules griffe lists for ``neuroconv``, so that
``::: neuroconv.pipelines.sources`` resolves to ``pipelines/sources.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from griffe import ModuleFinder

ROOT = Path(__file__).resolve().parents[2]


def _mapped_folders() -> dict[str, list[tuple[str, Path]]]:
    """``{"neuroconv": [("pipelines", ROOT/"pipelines"), ...]}`` from pyproject.toml."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_dir = table["tool"]["setuptools"]["package-dir"]
    out: dict[str, list[tuple[str, Path]]] = {}
    for name, folder in package_dir.items():
        parent, _, child = name.rpartition(".")
        if parent and (ROOT / folder / "__init__.py").exists():
            out.setdefault(parent, []).append((child, ROOT / folder))
    return out


_MAPPED = _mapped_folders()
_submodules = ModuleFinder.submodules


def _submodules_with_mapped_folders(self, module):
    found = list(_submodules(self, module))
    for child, folder in _MAPPED.get(module.path, ()):
        found.append(((child,), folder / "__init__.py"))
        found += [((child, *parts), path) for parts, path in self.iter_submodules(folder / "__init__.py")]
    return sorted(found, key=lambda item: len(item[0]))


if not getattr(ModuleFinder.submodules, "_neuroconv_mapped", False):
    _submodules_with_mapped_folders._neuroconv_mapped = True
    ModuleFinder.submodules = _submodules_with_mapped_folders
