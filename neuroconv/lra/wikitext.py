"""WikiText-103, word level, from the raw token files; language-model batches and
perplexity.

Files (``data_dir`` or ``data_dir/wikitext-103``): ``wiki.train.tokens``,
``wiki.valid.tokens``, ``wiki.test.tokens``, the tokenized release (Merity et al. 2016,
``wikitext-103-v1.zip``), UTF-8 text with words separated by spaces and rare words
already replaced by ``<unk>``.

Tokenization (the word-level convention of Transformer-XL and fairseq): every line, the
empty ones included, is ``line.split()`` followed by ``<eos>``. The files are one stream
of tokens each.

Vocabulary (:class:`WordVocab`): built from the training file only. Ids: ``<eos>`` = 0,
``<unk>`` = 1, then every training word by decreasing count, ties in order of first
appearance. ``max_size`` keeps only the most frequent words (the rest become ``<unk>``);
the default keeps all (267,735 ids on WikiText-103). A word of the validation or test
file that is not in the vocabulary is read as ``<unk>``.

Examples (:class:`LMChunks`): the stream ``t_0 .. t_{N-1}`` is cut into non-overlapping
windows of ``seq_len`` inputs; window ``i`` has inputs ``t[i*L : i*L+L]`` and targets
``t[i*L+1 : i*L+L+1]``, so every token but the first is predicted exactly once. The last
window is shorter; its missing targets are ``-100`` (ignored by the loss) and its
missing inputs are ``<eos>`` (never seen by real steps: the model is causal).

Perplexity (:func:`lm_perplexity`) is ``exp(sum of token NLL / number of predicted
tokens)`` over all windows, each token conditioned only on the earlier tokens of its own
window (no state carried across windows), so it is an upper bound on a sliding-window
evaluation.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["WIKITEXT_FILES", "WordVocab", "read_wikitext_tokens", "wikitext_vocab", "LMChunks",
           "wikitext103", "collate_lm", "lm_perplexity"]

WIKITEXT_FILES = {"train": "wiki.train.tokens", "val": "wiki.valid.tokens", "test": "wiki.test.tokens"}
EOS, UNK = "<eos>", "<unk>"
IGNORE_INDEX = -100


def _resolve(data_dir) -> Path:
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"wikitext103: data directory {data_dir} does not exist. Unpack wikitext-103-v1.zip "
            "(the tokenized release) and pass its folder."
        )
    for cand in (data_dir, data_dir / "wikitext-103"):
        if (cand / WIKITEXT_FILES["train"]).is_file() or (cand / WIKITEXT_FILES["test"]).is_file():
            return cand
    return data_dir


def _missing(root: Path) -> FileNotFoundError:
    lines = [f"wikitext103: required files not found under {root}. Expected:"]
    for name in WIKITEXT_FILES.values():
        p = root / name
        lines.append(f"  {p}  [{'found' if p.is_file() else 'MISSING'}]")
    lines.append("These are the raw token files of wikitext-103-v1.zip (Merity et al. 2016), "
                 "in DIR or DIR/wikitext-103.")
    return FileNotFoundError("\n".join(lines))


def _lines(path: Path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield line.split()


class WordVocab:
    """Word vocabulary: ``<eos>`` = 0, ``<unk>`` = 1, then words by decreasing count.

    Build it with :meth:`from_counts` or :func:`wikitext_vocab`; ``words`` is the id
    order.
    """

    def __init__(self, words):
        words = list(words)
        if words[:2] != [EOS, UNK]:
            raise ValueError(f"a WordVocab starts with {EOS!r}, {UNK!r}; got {words[:2]!r}.")
        if len(set(words)) != len(words):
            raise ValueError("WordVocab words must be unique.")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}

    @classmethod
    def from_counts(cls, counts: Counter, max_size: int | None = None) -> "WordVocab":
        """Most frequent first (ties: first seen first); ``max_size`` counts the two specials."""
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 2):
            raise ValueError(f"`max_size` must be an integer >= 2 or None; got {max_size!r}.")
        ranked = [w for w, _ in sorted(counts.items(), key=lambda kv: -kv[1]) if w not in (EOS, UNK)]
        words = [EOS, UNK] + ranked
        return cls(words[:max_size] if max_size else words)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def eos_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def encode_line(self, words: list[str]) -> np.ndarray:
        """Ids of one line's words followed by ``<eos>``, int32."""
        get, unk = self.index.get, 1
        out = np.fromiter((get(w, unk) for w in words), dtype=np.int32, count=len(words))
        return np.append(out, np.int32(0))

    def decode(self, ids) -> list[str]:
        return [self.words[int(i)] for i in ids]


def wikitext_vocab(data_dir, max_size: int | None = None) -> WordVocab:
    """The vocabulary of ``wiki.train.tokens`` under ``data_dir`` (see the module doc)."""
    root = _resolve(data_dir)
    path = root / WIKITEXT_FILES["train"]
    if not path.is_file():
        raise _missing(root)
    counts: Counter = Counter()
    for words in _lines(path):
        counts.update(words)
    return WordVocab.from_counts(counts, max_size)


def read_wikitext_tokens(data_dir, split: str, vocab: WordVocab) -> np.ndarray:
    """The token stream of ``split`` (``train``, ``val``, ``test``) as int32 ids ``(N,)``."""
    if split not in WIKITEXT_FILES:
        raise ValueError(f"`split` must be one of {list(WIKITEXT_FILES)}; got {split!r}.")
    root = _resolve(data_dir)
    path = root / WIKITEXT_FILES[split]
    if not path.is_file():
        raise _missing(root)
    parts = [vocab.encode_line(words) for words in _lines(path)]
    if not parts:
        raise ValueError(f"{path} is empty; expected tokenized text, one paragraph or heading per line.")
    return np.concatenate(parts)


class LMChunks(Dataset):
    """Non-overlapping language-model windows of a token stream (see the module doc).

    Parameters:
        tokens: ``(N,)`` integer ids, ``N >= 2``.
        seq_len: inputs per window ``L``.
        pad_id: input id written after the end of the last, shorter window.

    Items: ``(x int64 (L_i,), y int64 (L_i,))`` with ``L_i = L`` except possibly for the
    last window; :func:`collate_lm` pads them.
    """

    def __init__(self, tokens, seq_len: int, pad_id: int = 0):
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"`seq_len` must be an integer >= 1; got {seq_len!r}.")
        tokens = np.asarray(tokens)
        if tokens.ndim != 1 or len(tokens) < 2 or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError("`tokens` must be a 1-D stream of at least 2 integer ids.")
        # int32 storage (WikiText-103's 103M tokens: 0.4 GB); items are int64
        self.tokens = torch.from_numpy(tokens.astype(np.int32, copy=False))
        self.seq_len, self.pad_id = seq_len, pad_id
        self.n_targets = len(self.tokens) - 1

    def __len__(self) -> int:
        return -(-self.n_targets // self.seq_len)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(i)
        a = i * self.seq_len
        b = min(a + self.seq_len, self.n_targets)
        return self.tokens[a:b].long(), self.tokens[a + 1 : b + 1].long()


def collate_lm(items, pad_id: int = 0) -> dict:
    """Pad ``(x, y)`` windows into ``{"x": (B, L), "y": (B, L), "mask": (B, L), "lengths":
    (B,)}``; padded targets are ``-100``. ``mask`` is None when no window is short."""
    L = max(len(x) for x, _ in items)
    B = len(items)
    x = torch.full((B, L), pad_id, dtype=torch.int64)
    y = torch.full((B, L), IGNORE_INDEX, dtype=torch.int64)
    lengths = torch.empty(B, dtype=torch.int64)
    for i, (xi, yi) in enumerate(items):
        x[i, : len(xi)] = xi
        y[i, : len(yi)] = yi
        lengths[i] = len(xi)
    mask = None if bool((lengths == L).all()) else torch.arange(L)[None, :] < lengths[:, None]
    return {"x": x, "y": y, "mask": mask, "lengths": lengths}


def wikitext103(data_dir, seq_len: int = 1024, max_vocab: int | None = None, splits=("train", "val", "test"),
                log=None):
    """Vocabulary and :class:`LMChunks` of each split: ``(vocab, {split: LMChunks})``."""
    root = _resolve(data_dir)
    if not all((root / WIKITEXT_FILES[s]).is_file() for s in ("train", *splits)):
        raise _missing(root)
    vocab = wikitext_vocab(root, max_vocab)
    out = {}
    for s in splits:
        tokens = read_wikitext_tokens(root, s, vocab)
        out[s] = LMChunks(tokens, seq_len, pad_id=vocab.eos_id)
        if log:
            n_unk = int((tokens == vocab.unk_id).sum())
            log(f"wikitext103 {s}: {len(tokens):,} tokens ({n_unk:,} <unk>), {len(out[s]):,} windows of {seq_len}")
    return vocab, out


@torch.no_grad()
def lm_perplexity(net, loader, device=None) -> dict:
    """Exact corpus perplexity of a language model.

    ``net(batch) -> (B, L, V)`` logits; ``loader`` yields :func:`collate_lm` batches.
    Returns ``{"nll": mean token NLL (nats), "perplexity": exp(nll), "tokens": count}``
    where the mean is over every target that is not ``-100`` (token-weighted, not a
    mean of batch means).
    """
    was = net.training
    net.eval()
    device = device or next(net.parameters()).device
    total, count = 0.0, 0
    for batch in loader:
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        logits = net(batch).float()  # (B L V)
        y = batch["y"]
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                       ignore_index=IGNORE_INDEX, reduction="sum"))
        count += int((y != IGNORE_INDEX).sum())
    net.train(was)
    if count == 0:
        raise ValueError("lm_perplexity: the loader yielded no target tokens.")
    nll = total / count
    return {"nll": nll, "perplexity": math.exp(nll), "tokens": count}
