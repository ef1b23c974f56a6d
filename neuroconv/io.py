"""Atomic file writes: the one place every job and pipeline writes its outputs through.

Each writer writes to a temporary file in the destination folder, flushes it to disk,
then renames it onto the destination (``os.replace``), so a reader never sees a half
written file and a killed run leaves either the old file or the new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_write_yaml", "jsonable",
           "atomic_write_csv", "atomic_save_npy", "atomic_save_figure", "atomic_save_safetensors",
           "json_default"]


def atomic_write(path, write: Callable) -> Path:
    """Write through ``write(fileobj)`` (binary) to a temporary file, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def json_default(o):
    """JSON for numpy scalars and arrays, paths, sets and tuples; non-finite floats as null."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def jsonable(v):
    """``v`` with numpy scalars as Python numbers, tuples as lists, dict keys as strings,
    and non-finite floats as None, recursively (what JSON can hold)."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path, obj: Any, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=json_default) + "\n")


def atomic_write_yaml(path, obj: Any) -> Path:
    import yaml

    return atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False))


def atomic_write_csv(path, df, sep: str = ",") -> Path:
    """A DataFrame as CSV (``sep="\\t"``: TSV), without its index, atomically."""
    return atomic_write(path, lambda f: f.write(df.to_csv(index=False, sep=sep).encode("utf-8")))


def atomic_save_npy(path, array: np.ndarray) -> Path:
    return atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def atomic_save_figure(fig, path, **savefig_kwargs) -> Path:
    """``fig.savefig`` onto ``path``; the format follows the file extension."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **savefig_kwargs))


def atomic_save_safetensors(path, tensors: dict, metadata: dict | None = None) -> Path:
    from safetensors.torch import save

    return atomic_write(path, lambda f: f.write(save(tensors, metadata=metadata)))
