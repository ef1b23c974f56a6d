"""The offline generators, checked against evaluators written here, independently of them.

- ListOps: labels are recomputed by two evaluators that share no code with the
  generator: a stack machine over the tokens (the view a model gets) and a parser of the
  released parenthesized layout that evaluates it the way the LRA generator's
  ``to_value`` reads its tuples.
- Pathfinder: the label is recomputed from the rendered pixels alone: the two markers
  (the 255 blobs) are connected iff they fall in one 8-connected component of the
  non-zero pixels (``scipy.ndimage.label``).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from neuroconv.lra import (
    ListOpsDataset,
    PathfinderDataset,
    read_pathfinder_metadata,
    render_pathfinder,
    sample_listops,
    write_listops,
    write_pathfinder,
)
from neuroconv.lra.tokens import LISTOPS_VOCAB

# ----------------------------------------------------------------------------- ListOps


def _op(name: str, args: list[int]) -> int:
    if name == "MIN":
        return min(args)
    if name == "MAX":
        return max(args)
    if name == "SM":
        return sum(args) % 10
    if name == "MED":
        return math.floor(statistics.median(args))
    raise AssertionError(f"unknown operator {name}")


def stack_eval(source: str) -> tuple[int, int, int]:
    """(value, token count without parentheses, nesting depth) by a stack machine."""
    stack: list = []
    depth = max_depth = n = 0
    for tok in source.split():
        if tok in "()":
            continue
        n += 1
        if tok.startswith("["):
            stack.append(tok[1:])
            depth += 1
            max_depth = max(max_depth, depth)
        elif tok == "]":
            args = []
            while not isinstance(stack[-1], str):
                args.append(stack.pop())
            name = stack.pop()
            assert 2 <= len(args), "an operator needs at least 2 arguments"
            stack.append(_op(name, args[::-1]))
            depth -= 1
        else:
            assert tok.isdigit() and len(tok) == 1
            stack.append(int(tok))
    assert len(stack) == 1 and isinstance(stack[0], int)
    return stack[0], n, max_depth


def tuple_eval(source: str) -> int:
    """Parse the released layout '( A B )' into binary tuples, then evaluate it by
    accumulating arguments into an unsaturated operator until ']' closes it."""
    toks = source.split()
    pos = 0

    def parse():
        nonlocal pos
        tok = toks[pos]
        pos += 1
        if tok != "(":
            return tok
        left, right = parse(), parse()
        assert toks[pos] == ")", f"expected ')' at token {pos}"
        pos += 1
        return (left, right)

    tree = parse()
    assert pos == len(toks), "trailing tokens after the expression"

    def value(t):
        if isinstance(t, str):
            return int(t) if t.isdigit() else t
        left, right = value(t[0]), value(t[1])
        if isinstance(left, str):  # an operator meets its first argument
            return (left, [right])
        if right == "]":
            return _op(left[0][1:], left[1])
        return (left[0], left[1] + [right])

    out = value(tree)
    assert isinstance(out, int)
    return out


def test_independent_evaluators_agree_on_known_expressions():
    cases = {
        "( ( ( [MAX 2 ) 9 ) ] )": 9,
        "( ( ( [MED 1 ) 8 ) ] )": 4,  # even count: mean of the middle two, rounded down
        "( ( ( ( [MED 3 ) 1 ) 2 ) ] )": 2,
        "( ( ( ( [SM 4 ) 5 ) 3 ) ] )": 2,
        "( ( ( ( [MAX 1 ) ( ( ( [MIN 5 ) 6 ) ] ) ) 0 ) ] )": 5,
    }
    for s, want in cases.items():
        assert stack_eval(s)[0] == want and tuple_eval(s) == want


def test_listops_labels_match_independent_evaluators_short():
    data = sample_listops(300, min_length=10, max_length=120, max_depth=6, max_args=5, seed=7)
    ops = set()
    for source, label in data:
        value, n, depth = stack_eval(source)
        assert label == value == tuple_eval(source), source
        assert 10 < n < 120 and depth <= 5  # operators live at depths 1..max_depth-1
        ops.update(t for t in source.split() if t.startswith("["))
    assert ops == {"[MIN", "[MAX", "[MED", "[SM"}
    assert len({label for _, label in data}) == 10


def test_listops_lra_lengths_and_labels():
    data = sample_listops(25, seed=3)  # the LRA defaults: 500 < length < 2000
    for source, label in data:
        value, n, depth = stack_eval(source)
        assert label == value == tuple_eval(source)
        assert 500 < n < 2000 and depth <= 9
        args_per_op = _arg_counts(source)
        assert min(args_per_op) >= 2 and max(args_per_op) <= 10


def _arg_counts(source: str) -> list[int]:
    counts, stack = [], []
    for tok in source.split():
        if tok in "()":
            continue
        if stack and tok != "]":
            stack[-1] += 1
        if tok.startswith("["):
            stack.append(0)
        elif tok == "]":
            counts.append(stack.pop())
    return counts


def test_listops_is_deterministic_and_unique():
    a = sample_listops(50, min_length=5, max_length=60, seed=1)
    assert a == sample_listops(50, min_length=5, max_length=60, seed=1)
    assert a != sample_listops(50, min_length=5, max_length=60, seed=2)
    assert len({s for s, _ in a}) == 50


def test_listops_argument_checks():
    with pytest.raises(ValueError, match="max_length"):
        sample_listops(1, min_length=10, max_length=11)
    with pytest.raises(ValueError, match="max_args"):
        sample_listops(1, max_args=1)
    with pytest.raises(RuntimeError, match="widen"):
        sample_listops(5, min_length=50, max_length=60, max_depth=2, max_args=3, max_tries=200)


def test_write_listops_round_trips_through_the_loader(tmp_path):
    paths = write_listops(tmp_path, 40, 5, 5, min_length=20, max_length=200, seed=0)
    assert sorted(paths) == ["test", "train", "val"]
    header = paths["train"].read_text().splitlines()[0]
    assert header == "Source\tTarget"
    sources = []
    for split, n in (("train", 40), ("val", 5), ("test", 5)):
        ds = ListOpsDataset(tmp_path, split, max_length=256)
        assert len(ds) == n
        for i in range(n):
            x, y = ds[i]
            assert y == stack_eval(ds.sources[i])[0]
            tokens = [t for t in ds.sources[i].split() if t not in "()"]
            assert LISTOPS_VOCAB.decode(x) == tokens + ["<eos>"]
        sources += ds.sources
    assert len(set(sources)) == 50  # splits are disjoint
    again = tmp_path / "again"
    write_listops(again, 40, 5, 5, min_length=20, max_length=200, seed=0)
    assert (again / "basic_test.tsv").read_bytes() == paths["test"].read_bytes()


# ----------------------------------------------------------------------------- Pathfinder

FULL = np.ones((3, 3), dtype=bool)


def connected_from_pixels(image: np.ndarray) -> int:
    """1 if the two 255-valued marker blobs lie in one 8-connected component of the
    non-zero pixels, else 0."""
    markers, n_markers = ndimage.label(image == 255, structure=FULL)
    assert n_markers == 2, f"expected 2 markers, found {n_markers}"
    comps, _ = ndimage.label(image > 0, structure=FULL)
    c1 = np.unique(comps[markers == 1])
    c2 = np.unique(comps[markers == 2])
    assert len(c1) == len(c2) == 1
    return int(c1[0] == c2[0])


@pytest.mark.parametrize("resolution,contour_length,n", [(32, 6, 60), (32, 14, 60), (64, 9, 25), (128, 14, 15)])
def test_pathfinder_labels_match_pixel_connectivity(resolution, contour_length, n):
    labels = []
    for k in range(n):
        s = render_pathfinder([11, k], resolution=resolution, contour_length=contour_length)
        assert s.image.shape == (resolution, resolution) and s.image.dtype == np.uint8
        assert connected_from_pixels(s.image) == s.label
        # the markers sit at contour ends, as reported
        for m in s.markers:
            assert s.image[int(round(m[0])), int(round(m[1]))] == 255
        labels.append(s.label)
    assert 0.2 < np.mean(labels) < 0.8  # both classes occur


def test_pathfinder_forced_labels_and_determinism():
    for label in (0, 1):
        s = render_pathfinder(5, label=label)
        assert s.label == label == connected_from_pixels(s.image)
    a, b = render_pathfinder([1, 2], contour_length=9), render_pathfinder([1, 2], contour_length=9)
    assert np.array_equal(a.image, b.image) and a.label == b.label
    assert not np.array_equal(a.image, render_pathfinder([1, 3], contour_length=9).image)


def test_pathfinder_difficulty_is_contour_length():
    """Longer targets: the marked contour (the component of the first marker) grows."""

    def marked_pixels(cl):
        sizes = []
        for k in range(20):
            img = render_pathfinder([4, k], contour_length=cl, n_distractors=0, n_clutter=0).image
            comps, _ = ndimage.label(img > 0, structure=FULL)
            markers, _ = ndimage.label(img == 255, structure=FULL)
            c = np.unique(comps[markers == 1])[0]
            sizes.append((comps == c).sum())
        return np.mean(sizes)

    assert marked_pixels(6) < marked_pixels(9) < marked_pixels(14)
    s = render_pathfinder(0, contour_length=14)
    assert all(len(c) == 15 for c in s.contours)


def test_pathfinder_argument_checks():
    with pytest.raises(ValueError, match="label"):
        render_pathfinder(0, label=2)
    with pytest.raises(ValueError, match="resolution"):
        render_pathfinder(0, resolution=8)
    with pytest.raises(ValueError, match="contour_value"):
        render_pathfinder(0, contour_value=255)
    with pytest.raises(RuntimeError, match="could not place"):
        render_pathfinder(0, resolution=16, contour_length=60, max_attempts=3)
    with pytest.raises(ValueError, match="difficulty"):
        write_pathfinder("unused", 1, difficulty="extreme")


def test_write_pathfinder_round_trips_through_the_loader(tmp_path):
    root = write_pathfinder(tmp_path, 24, resolution=32, difficulty="intermediate", seed=3, images_per_folder=10)
    assert root == tmp_path / "pathfinder32" / "curv_contour_length_9"
    assert sorted(p.name for p in (root / "metadata").iterdir()) == ["0.npy", "1.npy", "2.npy"]
    rows = read_pathfinder_metadata(root / "metadata" / "2.npy")
    assert [r[:2] for r in rows] == [("imgs/2", f"sample_{i}.png") for i in range(4)]
    fields = (root / "metadata" / "0.npy").read_text().splitlines()[0].split(" ")
    assert len(fields) == 11 and fields[5] == "9"  # the released 11-column layout
    n_seen = 0
    for split in ("train", "val", "test"):
        ds = PathfinderDataset(tmp_path, 32, "intermediate", split, tokenize=True)
        for path, label in ds.samples:
            img = np.asarray(Image.open(path))
            assert connected_from_pixels(img) == label
        n_seen += len(ds)
    assert n_seen == 24
    again = write_pathfinder(tmp_path / "again", 24, resolution=32, difficulty="intermediate", seed=3,
                             images_per_folder=10)
    assert (again / "imgs/1/sample_3.png").read_bytes() == (root / "imgs/1/sample_3.png").read_bytes()
    assert (again / "metadata/1.npy").read_bytes() == (root / "metadata/1.npy").read_bytes()
