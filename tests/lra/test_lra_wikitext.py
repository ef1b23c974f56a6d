"""WikiText-103 word-level loader, language-model windows and perplexity, on small raw
files written here in the release's format."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neuroconv.lra.models import LanguageModel
from neuroconv.lra.wikitext import (
    LMChunks,
    WordVocab,
    collate_lm,
    lm_perplexity,
    read_wikitext_tokens,
    wikitext103,
    wikitext_vocab,
)

TRAIN = " = Valkyria Chronicles = \n\n the game was released in 2011 . \n the game began development in 2010 , <unk> the end \n"
VALID = " = Heading = \n\n the game was <unk> \n"
TEST = " the zebra game \n\n"


def write_wikitext(folder, train=TRAIN, valid=VALID, test=TEST):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wiki.train.tokens").write_text(train, encoding="utf-8")
    (folder / "wiki.valid.tokens").write_text(valid, encoding="utf-8")
    (folder / "wiki.test.tokens").write_text(test, encoding="utf-8")
    return folder


def test_vocab_from_train_by_count_with_specials(tmp_path):
    write_wikitext(tmp_path / "wikitext-103")  # the parent folder works too
    vocab = wikitext_vocab(tmp_path)
    words = TRAIN.split()
    counts = Counter(words)
    assert vocab.words[:2] == ["<eos>", "<unk>"]
    rest = vocab.words[2:]
    assert set(rest) == set(words) - {"<unk>"}
    assert [counts[w] for w in rest] == sorted((counts[w] for w in rest), reverse=True)
    assert rest[:4] == ["the", "=", "game", "in"]  # 3, 2, 2, 2: ties keep first appearance
    assert len(vocab) == 2 + len(set(words) - {"<unk>"})
    small = wikitext_vocab(tmp_path, max_size=4)
    assert small.words == ["<eos>", "<unk>", "the", "="]
    with pytest.raises(ValueError, match="max_size"):
        WordVocab.from_counts(counts, max_size=1)


def test_tokens_every_line_ends_with_eos_and_oov_is_unk(tmp_path):
    write_wikitext(tmp_path)
    vocab = wikitext_vocab(tmp_path)
    test = read_wikitext_tokens(tmp_path, "test", vocab)
    # " the zebra game " and an empty line: 3 words + <eos>, then <eos>
    assert vocab.decode(test) == ["the", "<unk>", "game", "<eos>", "<eos>"]
    assert test.dtype == np.int32
    train = read_wikitext_tokens(tmp_path, "train", vocab)
    n_lines = TRAIN.count("\n")
    assert len(train) == len(TRAIN.split()) + n_lines and (train == vocab.eos_id).sum() == n_lines
    assert vocab.decode(read_wikitext_tokens(tmp_path, "val", vocab))[-2:] == ["<unk>", "<eos>"]
    with pytest.raises(ValueError, match="split"):
        read_wikitext_tokens(tmp_path, "dev", vocab)


def test_missing_files_list_what_is_expected(tmp_path):
    (tmp_path / "wiki.train.tokens").write_text("a b\n")
    with pytest.raises(FileNotFoundError) as e:
        wikitext103(tmp_path)
    msg = str(e.value)
    for name in ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"):
        assert name in msg
    assert "MISSING" in msg and "found" in msg
    with pytest.raises(FileNotFoundError, match="does not exist"):
        wikitext103(tmp_path / "nope")


def test_chunks_predict_every_token_once():
    stream = np.arange(23)
    ds = LMChunks(stream, seq_len=5, pad_id=0)
    assert len(ds) == 5  # 22 targets in windows of 5
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    assert torch.cat(ys).tolist() == list(range(1, 23))
    assert torch.cat(xs).tolist() == list(range(0, 22))
    batch = collate_lm([ds[3], ds[4]], pad_id=0)
    assert batch["x"].shape == (2, 5) and batch["y"][1].tolist() == [21, 22, -100, -100, -100]
    assert batch["mask"][1].tolist() == [True, True, False, False, False]
    assert collate_lm([ds[0], ds[1]])["mask"] is None
    with pytest.raises(ValueError, match="seq_len"):
        LMChunks(stream, 0)
    with pytest.raises(IndexError):
        ds[5]


class _Unigram(torch.nn.Module):
    """Ignores the context: the same log-probabilities at every step."""

    def __init__(self, logp):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.as_tensor(logp, dtype=torch.float32))

    def forward(self, batch):
        B, L = batch["x"].shape
        return self.logits.expand(B, L, -1)


def test_perplexity_is_exp_mean_token_nll_unigram():
    rng = np.random.default_rng(0)
    V = 7
    stream = rng.integers(0, V, 101)
    p = rng.dirichlet(np.ones(V))
    net = _Unigram(np.log(p))
    loader = DataLoader(LMChunks(stream, 8), batch_size=3, collate_fn=collate_lm)
    r = lm_perplexity(net, loader)
    targets = stream[1:]
    want_nll = -np.mean(np.log(p[targets]))  # token-weighted over all 100 targets
    assert r["tokens"] == 100
    assert r["nll"] == pytest.approx(want_nll, rel=1e-5)
    assert r["perplexity"] == pytest.approx(math.exp(want_nll), rel=1e-5)


def test_perplexity_of_a_real_lm_against_window_by_window(tmp_path):
    """Batched, padded evaluation equals scoring each window alone in float64."""
    write_wikitext(tmp_path)
    vocab, sets = wikitext103(tmp_path, seq_len=5, splits=("train",))
    ds = sets["train"]
    torch.manual_seed(0)
    lm = LanguageModel(dict(d_input=None, vocab_size=len(vocab), d_model=16, n_layers=2, layer="gated", l_max=5,
                            head="lm", prenorm=True, norm="layer")).eval()
    r = lm_perplexity(lm, DataLoader(ds, batch_size=4, collate_fn=collate_lm))
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(len(ds)):
            x, y = ds[i]
            logits = lm({"x": x[None], "mask": None})[0].double()  # (L V)
            logp = torch.log_softmax(logits, -1)
            total -= float(logp[torch.arange(len(y)), y].sum())
            n += len(y)
    assert r["tokens"] == n == len(ds.tokens) - 1
    assert r["perplexity"] == pytest.approx(math.exp(total / n), rel=1e-4)
    assert len(ds) * 5 > n  # the last window really is padded
