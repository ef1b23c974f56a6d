"""The LRA experiment configs shipped in ``configs/lra/*.yaml`` (package data).

Each config is a mapping with the sections ``task``, ``source`` (where the values come
from), ``data`` (loader arguments), ``model`` (:class:`neuroconv.SequenceModel` keyword
arguments), ``optimizer``, ``scheduler`` and ``train``; Retrieval adds ``pair_head`` and
the CPU-scale configs add ``generate`` (generator arguments). Files are read with
``yaml.safe_load`` only.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import yaml

__all__ = ["lra_config_names", "lra_config_path", "load_lra_config"]


def _config_dir() -> Path:
    return Path(str(importlib.resources.files("neuroconv.configs"))) / "lra"


def lra_config_names() -> list[str]:
    """Names of the shipped LRA configs (file stems), sorted."""
    return sorted(p.stem for p in _config_dir().glob("*.yaml"))


def lra_config_path(name: str) -> Path:
    """Path of the shipped config ``name`` (e.g. ``"listops"``, ``"listops_cpu"``)."""
    path = _config_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"no LRA config named {name!r}; available: {lra_config_names()}.")
    return path


def load_lra_config(name_or_path) -> dict:
    """Load an LRA config: a shipped name (see :func:`lra_config_names`) or a YAML path."""
    p = Path(name_or_path)
    path = p if p.suffix in (".yaml", ".yml") or p.is_file() else lra_config_path(str(name_or_path))
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist.")
    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level; got {type(cfg).__name__}.")
    return cfg
