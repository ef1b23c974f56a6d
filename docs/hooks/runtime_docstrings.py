"""Griffe extension: docstrings that the code completes when it is imported.

A few modules finish their docstrings at import time: the scikit-learn estimators share
their parameter sections (``__doc__ = _init_doc(...)``), ``SequenceModel`` lists the
registered layers, and the data-source modules append the registry's table. Griffe reads
the source without importing it and would see no docstring, or a template. For each
module whose source assigns to ``__doc__``, this extension imports the module and takes
the docstrings of the module, its classes and their methods and its functions from the
imported objects.

Importing those modules needs the project installed with its ``brain`` extra (the
documentation build: ``pip install -e ".[brain,docs]"``); a module that cannot be
imported is reported as a warning, which ``mkdocs build --strict`` turns into an error.
"""

from __future__ import annotations

import importlib
import inspect
import logging

import griffe

logger = logging.getLogger("mkdocs.plugins.neuroconv")


def _modules(module: griffe.Module):
    yield module
    for member in module.modules.values():
        if not member.is_alias:
            yield from _modules(member)


def _refresh(obj: griffe.Object, runtime) -> None:
    doc = getattr(runtime, "__doc__", None)
    if isinstance(doc, str) and doc.strip():
        text = inspect.cleandoc(doc)
        if obj.docstring is None or obj.docstring.value != text:
            lineno = obj.docstring.lineno if obj.docstring is not None else obj.lineno
            obj.docstring = griffe.Docstring(text, lineno=lineno, parent=obj)
    if obj.is_class or obj.is_module:
        for name, member in obj.members.items():
            if member.is_alias or member.is_module or not (member.is_class or member.is_function):
                continue
            if getattr(member, "parent", None) is not obj:
                continue
            child = inspect.getattr_static(runtime, name, None)
            if isinstance(child, (staticmethod, classmethod)):
                child = child.__func__
            if child is not None:
                _refresh(member, child)


class RuntimeDocstrings(griffe.Extension):
    """Docstrings from the imported modules where the source assigns ``__doc__``."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for module in _modules(pkg):
            source = module.filepath.read_text(encoding="utf-8") if not isinstance(module.filepath, list) else ""
            if "__doc__" not in source:
                continue
            try:
                runtime = importlib.import_module(module.path)
            except Exception as err:  # noqa: BLE001 - reported, and fatal under --strict
                logger.warning("runtime docstrings: cannot import %s (%s: %s); install the project with "
                               "pip install -e \".[brain,docs]\" to build the documentation",
                               module.path, type(err).__name__, err)
                continue
            _refresh(module, runtime)
