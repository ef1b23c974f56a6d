"""Optional dependencies: which extra of ``pip install 'neuroconv[...]'`` a part needs,
and the one error that says so.

``pip install neuroconv`` (the core) brings torch and numpy: the sequence library
(``fftconv``, the layers, the kernel generators, ``SequenceModel``, ``ModelConfig``,
``param_groups``) and the kernels' torch path. Each other part checks its extra when it
is imported, before anything else loads:

- ``neuroconv.brain``, ``neuroconv.pipelines``, the estimators, and the ``pretrain``,
  ``decode``, ``preprocess`` and ``plot`` commands: the ``brain`` extra;
- ``neuroconv.lra`` and ``neuroconv lra``: the ``lra`` extra;
- the Triton kernels on GPUs: the ``gpu`` extra (``backend="triton"`` says so itself).

A missing one raises :class:`MissingExtraError` (an ``ImportError``) that names the
extra, the modules missing and the command that installs them. The check looks the
modules up (``importlib.util.find_spec``) without importing them.

A package checks its extra in one line at the top of its ``__init__``::

    from neuroconv.extras import require_brain  # noqa: F401 - the ImportError that names the extra

(``require_<extra>`` runs :func:`require` for that extra when imported.)
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["EXTRAS", "MissingExtraError", "missing", "require"]

_LRA = ("lightning", "jsonargparse", "yaml", "safetensors", "PIL", "scipy", "pandas", "matplotlib", "rich")

#: extra -> the modules (import names) it installs that neuroconv imports; one of them
#: absent means the extra is not installed. ``tests/test_extras.py`` checks these against
#: pyproject.toml's extras.
EXTRAS: dict[str, tuple[str, ...]] = {
    "lra": _LRA,
    "brain": _LRA + ("sklearn", "mne", "mne_bids", "nilearn", "nibabel", "edfio", "joblib"),
    "gpu": ("triton",),
    "moabb": ("moabb",),
    "baselines": ("pyriemann", "braindecode", "moabb", "autoreject"),
    "dask": ("dask", "distributed"),
    "sleep": ("yasa", "lightgbm", "hmmlearn"),
    "docs": ("mkdocs", "material", "mkdocstrings"),
    "tensorboard": ("tensorboard",),
}


class MissingExtraError(ImportError):
    """A part of neuroconv was imported without its extra; the message says what to run.

    Attributes: ``extra`` (e.g. ``"brain"``), ``missing`` (the module names absent),
    ``what`` (the part that needs them).
    """

    def __init__(self, extra: str, missing: list[str], what: str):
        self.extra, self.missing, self.what = extra, list(missing), what
        super().__init__(
            f"{what} needs neuroconv's '{extra}' extra, which is not installed here (missing: "
            f"{', '.join(missing)}). Install it with: pip install 'neuroconv[{extra}]'",
            name=missing[0] if missing else None)


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a broken install, or a module set to None in sys.modules
        return True


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` (a key of :data:`EXTRAS`) that are not installed."""
    if extra not in EXTRAS:
        raise ValueError(f"`extra` must be one of {sorted(EXTRAS)}; got {extra!r}.")
    return [m for m in EXTRAS[extra] if _absent(m)]


def require(extra: str, what: str = "this part of neuroconv") -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` unless all its modules are
    installed; ``what`` names the part in the message (e.g. ``"neuroconv.brain"``)."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(extra, absent, what)


def __getattr__(name: str):
    """``from neuroconv.extras import require_brain``: :func:`require` ``("brain", <the
    importing module>)``; the imported value is the extra's name."""
    extra = name[len("require_"):] if name.startswith("require_") else None
    if extra in EXTRAS:
        importer = sys._getframe(1).f_globals.get("__name__", "this part of neuroconv")
        require(extra, importer)
        return extra
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
