"""Vocabularies, tokenization, padding and length masks of the LRA batch format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroconv.lra import (
    BYTE_VOCAB,
    LISTOPS_VOCAB,
    Batch,
    Vocab,
    collate,
    collate_pairs,
    encode_bytes,
    encode_listops,
)
from neuroconv.model import SequenceModel, lengths_to_mask


def test_listops_vocab_is_fixed_and_pad_is_zero():
    assert LISTOPS_VOCAB.tokens[:2] == ("<pad>", "<eos>")
    assert len(LISTOPS_VOCAB) == 17
    assert {"[MIN", "[MAX", "[MED", "[SM", "]"} <= set(LISTOPS_VOCAB.tokens)
    assert all(str(d) in LISTOPS_VOCAB for d in range(10))
    assert LISTOPS_VOCAB.pad_id == 0 and BYTE_VOCAB.pad_id == 0


def test_encode_listops_drops_parentheses_and_appends_eos():
    ids = encode_listops("( ( ( [MAX 2 ) 9 ) ] )")
    assert ids.dtype == np.int64
    assert LISTOPS_VOCAB.decode(ids) == ["[MAX", "2", "9", "]", "<eos>"]
    assert LISTOPS_VOCAB.decode(encode_listops("( [SM 1 ) ]", append_eos=False)) == ["[SM", "1", "]"]


def test_encode_listops_truncates_keeping_eos():
    ids = encode_listops("( ( ( ( [MIN 1 ) 2 ) 3 ) ] )", max_length=3)
    assert LISTOPS_VOCAB.decode(ids) == ["[MIN", "1", "<eos>"]
    assert len(encode_listops("( ( ( ( [MIN 1 ) 2 ) 3 ) ] )", max_length=3, append_eos=False)) == 3


@pytest.mark.parametrize("bad", ["[FIRST 1 ]", "( [MAX 1 ) 12 ]", "<pad>"])
def test_encode_listops_rejects_unknown_tokens(bad):
    with pytest.raises(ValueError, match="unknown ListOps token"):
        encode_listops(bad)


def test_encode_bytes_offsets_and_utf8():
    ids = encode_bytes("aé")  # é is two UTF-8 bytes
    assert ids.tolist() == [ord("a") + 1, 0xC3 + 1, 0xA9 + 1, 257]
    assert BYTE_VOCAB.decode_bytes(ids) == "aé".encode()
    assert len(BYTE_VOCAB) == 258 and BYTE_VOCAB.eos_id == 257
    assert encode_bytes(b"\x00\xff", append_eos=False).tolist() == [1, 256]


def test_encode_bytes_truncation_and_argument_checks():
    ids = encode_bytes(b"x" * 100, max_length=10)
    assert len(ids) == 10 and ids[-1] == 257 and (ids[:-1] == ord("x") + 1).all()
    with pytest.raises(ValueError, match="max_length"):
        encode_bytes(b"x", max_length=1)
    with pytest.raises(TypeError, match="bytes or str"):
        encode_bytes(123)


def test_vocab_validates_tokens():
    with pytest.raises(ValueError, match="<pad>"):
        Vocab(["a", "<pad>"])
    with pytest.raises(ValueError, match="unique"):
        Vocab(["<pad>", "a", "a"])
    with pytest.raises(KeyError, match="not in the vocabulary"):
        LISTOPS_VOCAB.index("[FIRST")


def test_collate_pads_right_and_reports_lengths():
    items = [(torch.tensor([5, 6, 7]), 1), (torch.tensor([8]), 0), (np.array([9, 9], dtype=np.int64), 3)]
    b = collate(items)
    assert isinstance(b, Batch)
    assert b.inputs.tolist() == [[5, 6, 7], [8, 0, 0], [9, 9, 0]]
    assert b.lengths.tolist() == [3, 1, 2] and b.labels.tolist() == [1, 0, 3]
    assert b.inputs.dtype == torch.int64 and b.lengths.dtype == torch.int64 and b.labels.dtype == torch.int64
    assert torch.equal(b.mask, lengths_to_mask(b.lengths, 3))
    assert torch.equal(b.mask, b.inputs != 0)  # no real token is id 0 here
    inputs, lengths, labels = b  # unpacks as a 3-tuple
    assert not b.pairs


def test_collate_float_features_and_pad_to_multiple():
    items = [(torch.ones(5, 3), 0), (torch.full((2, 3), 2.0), 1)]
    b = collate(items, pad_to_multiple=4)
    assert b.inputs.shape == (2, 8, 3) and b.inputs.dtype == torch.float32
    assert (b.inputs[0, :5] == 1).all() and (b.inputs[0, 5:] == 0).all()
    assert (b.inputs[1, :2] == 2).all() and (b.inputs[1, 2:] == 0).all()
    assert b.mask.sum(1).tolist() == [5, 2]


def test_collate_rejects_inconsistent_examples():
    with pytest.raises(ValueError, match="trailing shape and dtype"):
        collate([(torch.ones(5, 3), 0), (torch.ones(5, 2), 1)])
    with pytest.raises(ValueError, match="trailing shape and dtype"):
        collate([(torch.ones(5, dtype=torch.int64), 0), (torch.ones(5), 1)])
    with pytest.raises(ValueError, match="empty"):
        collate([(torch.ones(0, dtype=torch.int64), 0)])
    with pytest.raises(ValueError, match="empty list"):
        collate([])
    with pytest.raises(ValueError, match="pad_to_multiple"):
        collate([(torch.ones(2), 0)], pad_to_multiple=0)
    with pytest.raises(ValueError, match="integer label"):
        collate([(torch.ones(2), "a")])


def test_collate_pairs_stacks_first_then_second_documents():
    items = [((torch.tensor([1, 2]), torch.tensor([3])), 1), ((torch.tensor([4]), torch.tensor([5, 6, 7])), 0)]
    b = collate_pairs(items)
    assert b.inputs.tolist() == [[1, 2, 0], [4, 0, 0], [3, 0, 0], [5, 6, 7]]
    assert b.lengths.tolist() == [2, 1, 1, 3]
    assert b.labels.tolist() == [1, 0]
    assert b.pairs and b.mask.shape == (4, 3)
    with pytest.raises(ValueError, match=r"\(\(x1, x2\), label\)"):
        collate_pairs([(torch.tensor([1]), 0)])


def test_padded_batch_gives_the_same_outputs_as_unpadded_examples():
    """The batch format is what SequenceModel consumes: padding must not leak."""
    model = SequenceModel(None, 16, 2, "longconv", l_max=16, vocab_size=len(LISTOPS_VOCAB),
                          head="classification", d_output=10, norm="layer").eval()
    xs = [torch.from_numpy(encode_listops(s)) for s in ("( ( [MAX 2 ) 9 ) ]", "( ( ( [SM 1 ) 2 ) 3 ) ] )", "7")]
    b = collate([(x, 0) for x in xs], pad_to_multiple=8)
    with torch.no_grad():
        batched = model(b.inputs, lengths=b.lengths)
        single = torch.cat([model(x[None]) for x in xs])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
