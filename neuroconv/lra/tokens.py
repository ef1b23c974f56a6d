"""Vocabularies, tokenization and padding for the long-range-arena (LRA) tasks.

Two fixed vocabularies, both with ``<pad>`` at id 0 (so padding is always 0):

- :data:`LISTOPS_VOCAB` (17 ids): ``<pad>``, ``<eos>``, the digits ``0``-``9``, the
  operators ``[MIN [MAX [MED [SM`` and the closing bracket ``]``. Parentheses in the
  released strings are layout only and are dropped, as the LRA input pipeline does.
- :data:`BYTE_VOCAB` (258 ids): ``<pad>`` = 0, byte ``b`` -> ``b + 1`` (the LRA
  ``ByteTextEncoder`` convention), ``<eos>`` = 257. Used by Text (IMDB) and Retrieval
  (AAN), which are byte level.

Every example ends with ``<eos>`` by default, as in the authors' pipelines
(HazyResearch/safari ``src/dataloaders/lra.py``: ``append_eos: True``); truncation keeps
the first ``max_length - 1`` tokens so that the ``<eos>`` always fits.

The common batch format (:class:`Batch`), built by :func:`collate` and
:func:`collate_pairs`::

    inputs   (B, L_pad) int64 token ids, or (B, L_pad, D) float32 features
    lengths  (B,) int64  valid steps per row; row b is real on [0, lengths[b]) and
                         padded after (pad id 0, or 0.0 for features)
    labels   (B,) int64  class index

For two-document tasks (Retrieval), ``inputs`` and ``lengths`` have ``2B`` rows: rows
``0..B-1`` are the first documents and rows ``B..2B-1`` the second documents of the same
``B`` pairs, so one backbone pass encodes both (the authors' convention); ``labels`` has
``B`` rows.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

__all__ = [
    "PAD_ID",
    "Vocab",
    "LISTOPS_VOCAB",
    "BYTE_VOCAB",
    "encode_listops",
    "encode_bytes",
    "Batch",
    "collate",
    "collate_pairs",
]

PAD_ID = 0


class Vocab:
    """A fixed vocabulary: token string <-> integer id. Id 0 is always ``<pad>``.

    Parameters:
        tokens: every token, in id order; ``tokens[0]`` must be ``"<pad>"``.
    """

    def __init__(self, tokens: Sequence[str]):
        tokens = tuple(tokens)
        if not tokens or tokens[0] != "<pad>":
            raise ValueError(f"`tokens[0]` must be '<pad>'; got {tokens[:1]!r}.")
        if len(set(tokens)) != len(tokens):
            raise ValueError("`tokens` must be unique.")
        self.tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def eos_id(self) -> int:
        return self._index["<eos>"]

    def index(self, token: str) -> int:
        """Id of ``token``; ``KeyError`` naming the known tokens if it is not in the vocabulary."""
        try:
            return self._index[token]
        except KeyError:
            raise KeyError(f"token {token!r} is not in the vocabulary {list(self.tokens)}") from None

    def decode(self, ids) -> list[str]:
        """Token strings of ``ids`` (a sequence or 1-D array of ints)."""
        return [self.tokens[int(i)] for i in ids]

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens)"


LISTOPS_OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
LISTOPS_VOCAB = Vocab(("<pad>", "<eos>", *map(str, range(10)), *LISTOPS_OPERATORS, "]"))


class _ByteVocab(Vocab):
    """``<pad>`` = 0, byte ``b`` -> ``b + 1``, ``<eos>`` = 257."""

    def __init__(self):
        super().__init__(("<pad>", *(f"<0x{b:02X}>" for b in range(256)), "<eos>"))

    def decode_bytes(self, ids) -> bytes:
        """The bytes of ``ids``, skipping ``<pad>`` and ``<eos>``."""
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[(ids >= 1) & (ids <= 256)]
        return (ids - 1).astype(np.uint8).tobytes()


BYTE_VOCAB = _ByteVocab()


def _check_max_length(max_length: int, append_eos: bool) -> None:
    minimum = 2 if append_eos else 1
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < minimum:
        raise ValueError(f"`max_length` must be an integer >= {minimum}; got {max_length!r}.")


def encode_listops(source: str, *, max_length: int = 2048, append_eos: bool = True) -> np.ndarray:
    """Token ids of one ListOps expression.

    ``source`` is an expression as written in the released TSVs, e.g.
    ``"( ( ( [MAX 2 ) 9 ) ] )"``: whitespace-separated tokens, where ``(`` and ``)``
    are dropped (they only encode the generator's tree layout) and every other token
    must be in :data:`LISTOPS_VOCAB`. The result keeps the first ``max_length - 1``
    tokens (``max_length`` without ``<eos>``) and then appends ``<eos>``.

    Returns an int64 array of shape ``(L,)`` with ``L <= max_length``. Raises
    ``ValueError`` naming the first unknown token.
    """
    _check_max_length(max_length, append_eos)
    index = LISTOPS_VOCAB._index
    ids = []
    for tok in source.split():
        if tok == "(" or tok == ")":
            continue
        i = index.get(tok)
        if i is None or i < 2:
            raise ValueError(
                f"unknown ListOps token {tok!r}; expected digits 0-9, {list(LISTOPS_OPERATORS)}, "
                "']' and the parentheses '(' ')'."
            )
        ids.append(i)
    keep = max_length - int(append_eos)
    ids = ids[:keep]
    if append_eos:
        ids.append(LISTOPS_VOCAB.eos_id)
    return np.asarray(ids, dtype=np.int64)


def encode_bytes(text: bytes | str, *, max_length: int = 4096, append_eos: bool = True) -> np.ndarray:
    """Byte-level token ids of ``text`` (``str`` is encoded as UTF-8 first).

    Byte ``b`` becomes id ``b + 1`` (:data:`BYTE_VOCAB`); the result keeps the first
    ``max_length - 1`` bytes (``max_length`` without ``<eos>``) and appends ``<eos>``
    (257). Returns an int64 array of shape ``(L,)`` with ``L <= max_length``.
    """
    _check_max_length(max_length, append_eos)
    if isinstance(text, str):
        text = text.encode("utf-8")
    elif not isinstance(text, (bytes, bytearray, memoryview)):
        raise TypeError(f"`text` must be bytes or str; got {type(text).__name__}.")
    keep = max_length - int(append_eos)
    ids = np.frombuffer(bytes(text[:keep]), dtype=np.uint8).astype(np.int64) + 1
    if append_eos:
        ids = np.append(ids, np.int64(BYTE_VOCAB.eos_id))
    return ids


class Batch(NamedTuple):
    """One padded batch; see the module docstring for the shapes.

    Unpacks as ``inputs, lengths, labels = batch``.
    """

    inputs: torch.Tensor  # (B, L_pad) int64 | (B, L_pad, D) float32; (2B, ...) for pairs
    lengths: torch.Tensor  # (B,) int64; (2B,) for pairs
    labels: torch.Tensor  # (B,) int64

    @property
    def mask(self) -> torch.Tensor:
        """Boolean ``(rows, L_pad)``: True on real steps, False on padding."""
        L = self.inputs.shape[1]
        return torch.arange(L, device=self.lengths.device)[None, :] < self.lengths[:, None]

    @property
    def pairs(self) -> bool:
        """True when ``inputs`` holds two documents per label (Retrieval)."""
        return self.inputs.shape[0] == 2 * self.labels.shape[0] and self.labels.shape[0] > 0


def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    raise TypeError(f"each example's input must be a torch.Tensor or numpy array; got {type(x).__name__}.")


def _pad(xs: list[torch.Tensor], pad_value, pad_to_multiple: int, min_length: int = 0):
    """Stack ``xs`` (each ``(L_i,)`` or ``(L_i, D)``) into ``(N, L_pad[, D])`` plus lengths ``(N,)``."""
    if not xs:
        raise ValueError("cannot collate an empty list of examples.")
    if isinstance(pad_to_multiple, bool) or not isinstance(pad_to_multiple, int) or pad_to_multiple < 1:
        raise ValueError(f"`pad_to_multiple` must be an integer >= 1; got {pad_to_multiple!r}.")
    first = xs[0]
    for i, x in enumerate(xs):
        if x.dim() not in (1, 2):
            raise ValueError(f"example {i}: input must have shape (L,) or (L, D); got {tuple(x.shape)}.")
        if x.shape[1:] != first.shape[1:] or x.dtype != first.dtype:
            raise ValueError(
                f"example {i}: input shape {tuple(x.shape)} / dtype {x.dtype} does not match example 0's "
                f"{tuple(first.shape)} / {first.dtype}; every example must share the trailing shape and dtype."
            )
        if x.shape[0] < 1:
            raise ValueError(f"example {i}: input is empty (length 0).")
    lengths = torch.tensor([x.shape[0] for x in xs], dtype=torch.int64)
    L = max(int(lengths.max()), min_length)
    L = -(-L // pad_to_multiple) * pad_to_multiple
    out = first.new_full((len(xs), L, *first.shape[1:]), pad_value)
    for i, x in enumerate(xs):
        out[i, : x.shape[0]] = x
    return out, lengths


def _labels(items) -> torch.Tensor:
    try:
        return torch.tensor([int(item[1]) for item in items], dtype=torch.int64)
    except (TypeError, ValueError, IndexError) as e:
        raise ValueError("each example must be (input, label) with an integer label.") from e


def collate(items: Sequence[tuple], *, pad_value: float = PAD_ID, pad_to_multiple: int = 1) -> Batch:
    """Pad single-input examples into a :class:`Batch` (right padding).

    Parameters:
        items: examples ``(x, label)`` where ``x`` is ``(L_i,)`` int64 token ids or
            ``(L_i, D)`` float features, all with the same dtype and ``D``; ``label`` an int.
        pad_value: value written after each example (0 = ``<pad>`` for tokens).
        pad_to_multiple: round ``L_pad`` up to a multiple of this (FFT-friendly sizes).

    Returns ``Batch(inputs (B, L_pad[, D]), lengths (B,), labels (B,))`` with
    ``L_pad = max_i L_i`` rounded up to ``pad_to_multiple``.
    """
    items = list(items)
    inputs, lengths = _pad([_as_tensor(item[0]) for item in items], pad_value, pad_to_multiple)
    return Batch(inputs, lengths, _labels(items))


def collate_pairs(items: Sequence[tuple], *, pad_value: float = PAD_ID, pad_to_multiple: int = 1) -> Batch:
    """Pad two-document examples into a :class:`Batch` (Retrieval).

    Parameters:
        items: examples ``((x1, x2), label)``; ``x1``, ``x2`` are ``(L,)`` token ids.
        pad_value, pad_to_multiple: as in :func:`collate`.

    Returns ``Batch(inputs (2B, L_pad), lengths (2B,), labels (B,))``: rows ``0..B-1``
    hold every pair's first document, rows ``B..2B-1`` the second, all padded to one
    common ``L_pad``.
    """
    items = list(items)
    firsts, seconds = [], []
    for i, item in enumerate(items):
        docs = item[0]
        if not isinstance(docs, (tuple, list)) or len(docs) != 2:
            raise ValueError(f"example {i}: expected ((x1, x2), label) for a pair task; got {type(docs).__name__}.")
        firsts.append(_as_tensor(docs[0]))
        seconds.append(_as_tensor(docs[1]))
    inputs, lengths = _pad(firsts + seconds, pad_value, pad_to_multiple)
    return Batch(inputs, lengths, _labels(items))
