"""Offline ListOps generator with the grammar and labels of the LRA generator.

Semantics (google-research/long-range-arena ``lra_benchmarks/data/listops.py``):

- An expression is a digit ``0``-``9`` or ``[OP a_1 ... a_k ]`` with ``OP`` one of
  ``MIN``, ``MAX``, ``MED``, ``SM`` and ``2 <= k <= max_args`` arguments, each itself an
  expression. ``MED`` is ``int(numpy.median(args))``: the middle value, or for an even
  count the mean of the two middle values rounded down. ``SM`` is ``sum(args) % 10``.
- Trees grow from depth 1: a node below ``max_depth`` is an operator with probability
  0.25 (else a digit); a node at ``max_depth`` is a digit. Operator, argument count and
  digits are uniform.
- The length of an expression is its token count without parentheses (digits,
  operators, ``]``). Only expressions with ``min_length < length < max_length`` are
  kept (strict, as in LRA); the released data uses 500 and 2000.
- Strings are written in the released layout, where each argument closes one
  parenthesis: ``[MAX 2 9]`` is ``( ( ( [MAX 2 ) 9 ) ] )``.
- Examples are unique across train, val and test.

Randomness comes from one ``numpy.random.Generator`` seeded by ``seed``: the same
arguments give the same files. Drawing stops as soon as a tree reaches ``max_length``
tokens (it would be rejected anyway), which makes the rejection sampling cheap.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .tokens import LISTOPS_OPERATORS

__all__ = ["sample_listops", "write_listops"]

_VALUE_P = 0.25  # a node below max_depth is an operator with this probability


class _TooLong(Exception):
    pass


class _Uniforms:
    """Buffered stream of uniform [0, 1) floats from a numpy Generator."""

    def __init__(self, rng: np.random.Generator, block: int = 1 << 16):
        self.rng, self.block = rng, block
        self.buf: list[float] = []
        self.pos = 0

    def __call__(self) -> float:
        if self.pos == len(self.buf):
            self.buf, self.pos = self.rng.random(self.block).tolist(), 0
        u = self.buf[self.pos]
        self.pos += 1
        return u


def _apply(op: str, args: list[int]) -> int:
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[SM":
        return sum(args) % 10
    s = sorted(args)  # [MED: int(np.median) on non-negative digits
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) // 2


def _sample_one(u: _Uniforms, max_depth: int, max_args: int, max_length: int):
    """One tree as (string, value, length); raises _TooLong once length >= max_length."""
    pieces: list[str] = []
    length = 0

    def node(depth: int) -> int:
        nonlocal length
        if depth < max_depth and u() <= _VALUE_P:
            k = 2 + int(u() * (max_args - 1))  # uniform on 2..max_args
            op = LISTOPS_OPERATORS[int(u() * 4)]
            length += 2  # the operator and ']'
            if length >= max_length:
                raise _TooLong
            pieces.append("( " * (k + 1) + op)
            args = []
            for _ in range(k):
                pieces.append(" ")
                args.append(node(depth + 1))
                pieces.append(" )")
            pieces.append(" ] )")
            return _apply(op, args)
        length += 1
        if length >= max_length:
            raise _TooLong
        v = int(u() * 10)
        pieces.append(str(v))
        return v

    value = node(1)
    return "".join(pieces), value, length


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def sample_listops(
    n: int,
    *,
    min_length: int = 500,
    max_length: int = 2000,
    max_depth: int = 10,
    max_args: int = 10,
    seed: int = 0,
    max_tries: int | None = None,
) -> list[tuple[str, int]]:
    """Draw ``n`` distinct ListOps examples ``(source string, label 0-9)``.

    Parameters:
        n: number of examples.
        min_length, max_length: keep expressions whose token count (parentheses
            excluded) is strictly between the two. LRA: 500 and 2000.
        max_depth: deepest nesting level (the root is depth 1). LRA: 10.
        max_args: most arguments per operator (at least 2). LRA: 10.
        seed: seed of the random stream; equal arguments give equal output.
        max_tries: give up (``RuntimeError``) after this many drawn trees; default
            ``1000 * n + 100000``. Narrow length windows or a small ``max_depth`` can
            make acceptance rare.

    Returns a list of ``n`` pairs in draw order.
    """
    n = _check_int("n", n, 0)
    min_length = _check_int("min_length", min_length, 0)
    max_length = _check_int("max_length", max_length, 2)
    if max_length <= min_length + 1:
        raise ValueError(
            f"need `max_length` > `min_length` + 1 (lengths are strictly between); got {min_length}, {max_length}."
        )
    max_depth = _check_int("max_depth", max_depth, 1)
    max_args = _check_int("max_args", max_args, 2)
    if max_tries is None:
        max_tries = 1000 * n + 100_000
    u = _Uniforms(np.random.default_rng(seed))
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > max_tries:
            raise RuntimeError(
                f"sample_listops: only {len(out)} of {n} examples after {max_tries} trees; widen "
                f"(min_length, max_length)=({min_length}, {max_length}) or raise max_depth/max_args/max_tries."
            )
        try:
            s, value, length = _sample_one(u, max_depth, max_args, max_length)
        except _TooLong:
            continue
        if length > min_length and s not in seen:
            seen.add(s)
            out.append((s, value))
    return out


def write_listops(
    out_dir,
    n_train: int = 96000,
    n_val: int = 2000,
    n_test: int = 2000,
    *,
    min_length: int = 500,
    max_length: int = 2000,
    max_depth: int = 10,
    max_args: int = 10,
    seed: int = 0,
    prefix: str = "basic",
) -> dict[str, Path]:
    """Generate ListOps and write it in the released TSV format.

    Writes ``out_dir/{prefix}_{train,val,test}.tsv``: a header row ``Source<TAB>Target``
    then one ``expression<TAB>label`` row per example, the layout of the LRA release
    (``listops-1000``), read back by :class:`neuroconv.lra.ListOpsDataset`. The three
    splits are disjoint (examples are unique). The defaults reproduce the released sizes
    (96000 / 2000 / 2000) and lengths; other arguments as in :func:`sample_listops`.

    Returns ``{"train": path, "val": path, "test": path}``.
    """
    for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        _check_int(name, v, 0)
    data = sample_listops(
        n_train + n_val + n_test, min_length=min_length, max_length=max_length,
        max_depth=max_depth, max_args=max_args, seed=seed,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = {"train": data[:n_train], "val": data[n_train:n_train + n_val], "test": data[n_train + n_val:]}
    paths = {}
    for split, rows in parts.items():
        path = out_dir / f"{prefix}_{split}.tsv"
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["Source", "Target"])
            w.writerows(rows)
        paths[split] = path
    return paths
