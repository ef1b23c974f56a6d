"""Events and by-event scoring: masks to events and back, the probability rule, and the
one-to-one matching against an exhaustive reference and hand cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neuroconv.engine.events import (
    EventMatch,
    as_intervals,
    event_scores,
    events_to_mask,
    mask_to_events,
    match_events,
    proba_to_events,
)


# --------------------------------------------------------------------------- masks
def _runs_reference(mask):
    """Runs of True by walking the mask sample by sample."""
    runs, start = [], None
    for k, v in enumerate(list(mask) + [False]):
        if v and start is None:
            start = k
        if not v and start is not None:
            runs.append((start, k))
            start = None
    return runs


@pytest.mark.parametrize("length", [1, 2, 7, 101])
def test_mask_to_events_matches_a_sample_walk_and_round_trips(length):
    rng = np.random.default_rng(length)
    for _ in range(20):
        mask = rng.random(length) < rng.uniform(0.1, 0.9)
        on, off = mask_to_events(mask)
        assert on.dtype == np.int64 and off.dtype == np.int64
        assert list(zip(on.tolist(), off.tolist())) == _runs_reference(mask)
        np.testing.assert_array_equal(events_to_mask(on, off, length), mask)
        for min_len in (2, 3):
            on2, off2 = mask_to_events(mask, min_len=min_len)
            assert list(zip(on2, off2)) == [r for r in _runs_reference(mask) if r[1] - r[0] >= min_len]


def test_mask_edges_and_overlapping_events():
    assert [a.tolist() for a in mask_to_events(np.ones(4, bool))] == [[0], [4]]
    assert [a.tolist() for a in mask_to_events(np.zeros(4, bool))] == [[], []]
    assert [a.tolist() for a in mask_to_events(np.array([1, 0, 1]))] == [[0, 2], [1, 3]]
    # overlapping and touching events: the mask is their union
    m = events_to_mask([0, 2, 5], [3, 4, 6], 8)
    assert m.tolist() == [True, True, True, True, False, True, False, False]
    assert events_to_mask([], [], 3).tolist() == [False] * 3


def test_mask_errors_name_the_parameter():
    with pytest.raises(ValueError, match="mask"):
        mask_to_events(np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="min_len"):
        mask_to_events(np.zeros(3, bool), min_len=0)
    with pytest.raises(ValueError, match="length=5"):
        events_to_mask([3], [6], 5)
    with pytest.raises(ValueError, match="offset > onset"):
        events_to_mask([3], [3], 5)


# --------------------------------------------------------------------------- proba
def _proba_reference(p, thr, min_len, max_len, max_gap):
    """The documented rule, written as loops over events."""
    ev = [list(r) for r in _runs_reference([x >= thr for x in p])]
    merged = []
    for e in ev:
        if merged and e[0] - merged[-1][1] <= max_gap:
            merged[-1][1] = e[1]
        else:
            merged.append(e)
    return [tuple(e) for e in merged if e[1] - e[0] >= min_len and (max_len is None or e[1] - e[0] <= max_len)]


def test_proba_to_events_follows_the_documented_rule():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        p = rng.random(n)
        thr = float(rng.choice([0.3, 0.5, 0.8, p[rng.integers(n)]]))  # also a value hit exactly
        min_len, max_gap = int(rng.integers(1, 4)), int(rng.integers(0, 4))
        max_len = None if rng.random() < 0.3 else int(rng.integers(min_len, 8))
        on, off = proba_to_events(p, thr, min_len=min_len, max_len=max_len, max_gap=max_gap)
        assert list(zip(on.tolist(), off.tolist())) == _proba_reference(p, thr, min_len, max_len, max_gap)


def test_proba_to_events_hand_case():
    p = np.array([0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.9, np.nan, 0.5])
    assert [a.tolist() for a in proba_to_events(p, 0.5)] == [[0, 3, 6, 8], [2, 4, 7, 9]]
    # a gap of 1 is bridged, a gap of 2 is not; the chain 0..4 becomes one event
    assert [a.tolist() for a in proba_to_events(p, 0.5, max_gap=1)] == [[0, 6], [4, 9]]
    # duration bounds are inclusive, applied after merging
    assert [a.tolist() for a in proba_to_events(p, 0.5, max_gap=1, min_len=3, max_len=3)] == [[6], [9]]
    with pytest.raises(ValueError, match="max_len"):
        proba_to_events(p, 0.5, min_len=3, max_len=2)


# --------------------------------------------------------------------------- matching
def _iou(a, b):
    inter = min(a[1], b[1]) - max(a[0], b[0])
    return inter / (max(a[1], b[1]) - min(a[0], b[0])) if inter > 0 else 0.0


def _brute_force(true, pred, thr):
    """Largest number of one-to-one eligible pairs and, among those, the largest total
    IoU, by enumerating every matching."""
    eligible = {(i, j): _iou(t, p) for i, t in enumerate(true) for j, p in enumerate(pred)
                if min(t[1], p[1]) > max(t[0], p[0]) and _iou(t, p) >= thr}
    best = (0, 0.0)
    for choice in itertools.product(*[[None] + list(range(len(pred))) for _ in true]):
        used = [j for j in choice if j is not None]
        if len(used) != len(set(used)) or any(j is not None and (i, j) not in eligible for i, j in enumerate(choice)):
            continue
        score = (len(used), sum(eligible[i, j] for i, j in enumerate(choice) if j is not None))
        if score[0] > best[0] or (score[0] == best[0] and score[1] > best[1]):
            best = score
    return best


def _random_events(rng, n, span=30):
    on = rng.integers(0, span, n)
    return np.stack([on, on + rng.integers(1, 10, n)], axis=1)


def test_matching_is_maximum_against_exhaustive_enumeration():
    rng = np.random.default_rng(1)
    for case in range(400):
        true = _random_events(rng, int(rng.integers(0, 6)), span=int(rng.integers(5, 40)))
        pred = _random_events(rng, int(rng.integers(0, 6)), span=int(rng.integers(5, 40)))
        thr = float(rng.choice([0.0, 0.1, 0.2, 0.5, 0.9]))
        m = match_events(true, pred, thr)
        n_best, iou_best = _brute_force(true.tolist(), pred.tolist(), thr)
        assert m.tp == n_best, case
        assert (m.fp, m.fn) == (len(pred) - n_best, len(true) - n_best)
        # the pairs are a valid matching with the IoUs reported
        assert len(set(m.pairs[:, 0])) == len(set(m.pairs[:, 1])) == m.tp
        for (i, j), v in zip(m.pairs, m.iou):
            assert v == _iou(true[i], pred[j]) and v >= thr and v > 0
        # largest total IoU among the largest matchings (float sums of <= 5 terms)
        assert abs(m.iou.sum() - iou_best) <= 1e-12 * max(1, m.tp)


def test_matching_beats_greedy_and_hand_cases():
    # greedy by IoU pairs X with A (0.54) and leaves B and Y unmatched; the maximum is 2
    a, b, x, y = [0, 10], [10, 20], [3, 13], [0, 4]
    m = match_events([a, b], [x, y], 0.1)
    assert m.tp == 2 and sorted(map(tuple, m.pairs.tolist())) == [(0, 1), (1, 0)]
    # touching intervals never match, even at threshold 0
    assert match_events([[0, 5]], [[5, 9]], 0.0).counts == (0, 1, 1)
    # nested: IoU = 2 / 10 = 0.2 exactly, matched at 0.2 and not above
    assert match_events([[0, 10]], [[2, 4]], 0.2).counts == (1, 0, 0)
    assert match_events([[0, 10]], [[2, 4]], 0.2001).counts == (0, 1, 1)
    # 3 / 10 is not 0.3 * 10 in float64 (0.3 * 10 = 3.0000000000000004): still matched
    assert match_events([[0, 10]], [[0, 3]], 0.3).counts == (1, 0, 0)
    # one prediction over two true events counts once
    assert match_events([[0, 4], [5, 9]], [[0, 9]], 0.2).counts == (1, 0, 1)
    # identical events, in seconds and as (onsets, offsets)
    m = match_events((np.array([0.5, 3.0]), np.array([1.5, 4.0])), np.array([[3.0, 4.0], [0.5, 1.5]]), 1.0)
    assert m.pairs.tolist() == [[0, 1], [1, 0]] and m.iou.tolist() == [1.0, 1.0]


def test_empty_sets_and_score_conventions():
    assert match_events(np.zeros((0, 2)), [], 0.2).counts == (0, 0, 0)
    assert match_events([], [[0, 1]], 0.2).counts == (0, 1, 0)
    assert match_events([[0, 1]], np.zeros((0, 2)), 0.2).counts == (0, 0, 1)
    assert event_scores((0, 0, 0)) == (1.0, 1.0, 1.0)
    assert event_scores((0, 3, 0)) == (0.0, 0.0, 0.0)
    assert event_scores((0, 0, 3)) == (0.0, 0.0, 0.0)
    p, r, f = event_scores((3, 1, 2))
    assert (p, r) == (0.75, 0.6) and f == pytest.approx(2 * p * r / (p + r), rel=1e-15)
    assert event_scores(EventMatch(np.zeros((0, 2), np.int64), np.zeros(0), 2, 2, 0)) == (0.5, 1.0, 2 / 3)
    with pytest.raises(ValueError, match="counts"):
        event_scores((1, -1, 0))


def test_matching_errors_name_the_parameter():
    with pytest.raises(ValueError, match="iou_threshold"):
        match_events([[0, 1]], [[0, 1]], 1.5)
    with pytest.raises(ValueError, match="offset > onset"):
        as_intervals([[2, 1]])
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        as_intervals(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="same length"):
        as_intervals((np.arange(2), np.arange(3)))


def test_matching_counts_equal_yasa_compare_detection():
    yasa = pytest.importorskip("yasa")
    rng = np.random.default_rng(2)
    for _ in range(100):
        true = _random_events(rng, int(rng.integers(1, 40)), span=200)
        pred = _random_events(rng, int(rng.integers(1, 40)), span=200)
        thr = float(rng.choice([0.0, 0.2, 0.5]))
        m = match_events(true, pred, thr)
        ref = yasa.compare_detection(pred, true, method="intersection", iou_threshold=thr)
        assert (m.tp, m.fp, m.fn) == (len(ref["tp"]), len(ref["fp"]), len(ref["fn"]))
        assert event_scores(m)[2] == pytest.approx(ref["f1"], rel=1e-12)
