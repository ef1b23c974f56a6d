"""Intervals on a sampled time axis, and by-event scoring of detections.

Events are half-open intervals ``[onset, offset)`` on one time axis: in samples for the
mask functions (``offset`` exclusive, so an event covers ``offset - onset`` samples), in
any unit (samples, seconds) for the matching. Functions that take events accept either a
tuple ``(onsets, offsets)`` of two 1-D arrays, as :func:`mask_to_events` returns, or an
array of shape ``(n, 2)`` whose rows are ``[onset, offset)``.

- :func:`mask_to_events`, :func:`events_to_mask`: a boolean mask ``(L,)`` to and from
  events.
- :func:`proba_to_events`: a probability per sample ``(L,)`` to events, with a threshold,
  merging of close events and a duration range (the rule is in its docstring).
- :func:`match_events`: a one-to-one matching of true and predicted events. A pair is
  eligible when the two intervals overlap (positive intersection) and their intersection
  over union (IoU) is at least ``iou_threshold``; the matching has the largest possible
  number of pairs (and among those the largest total IoU). It returns the pairs and the
  counts ``tp`` (matched pairs), ``fp`` (unmatched predictions), ``fn`` (unmatched true
  events).
- :func:`event_scores`: precision, recall and F1 from counts; pool counts over recordings
  by adding them before scoring.

This is the by-event F1 of the sleep-spindle literature (e.g. Warby et al. 2014 score
with an overlap threshold of 0.2; YASA's ``compare_detection(method="intersection")`` uses
the same rule). Nothing here knows what the events are.

Speed: the matching only looks at overlapping pairs (found by binary search on the sorted
onsets) and solves one small assignment problem per connected group of eligible pairs, so
2,000 true against 2,000 predicted events take milliseconds:
``python -c "from neuroconv.engine.events import benchmark_match_events as b; print(b())"``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["format_events", "parse_events", "mask_to_events", "events_to_mask", "proba_to_events", "match_events", "event_scores", "EventMatch",
           "as_intervals", "benchmark_match_events"]


# --------------------------------------------------------------------------- masks
def mask_to_events(mask, min_len: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The runs of ``True`` in a boolean mask, as events.

    Args:
        mask: ``(L,)`` boolean (or 0/1) array.
        min_len: Runs shorter than this many samples are dropped (``1`` keeps all).

    Returns:
        ``(onsets, offsets)``: two ``(n,)`` int64 arrays, in time order; run ``k`` covers
        samples ``onsets[k] .. offsets[k] - 1`` (offset exclusive).
    """
    m = np.asarray(mask)
    if m.ndim != 1:
        raise ValueError(f"`mask` must be 1-D (L,); got shape {m.shape}.")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise ValueError("`mask` must be boolean or hold only 0 and 1; got other values.")
        m = m.astype(bool)
    min_len = _check_int("min_len", min_len, 1)
    edges = np.diff(np.concatenate([[0], m.view(np.int8), [0]]))
    onsets = np.flatnonzero(edges == 1).astype(np.int64)
    offsets = np.flatnonzero(edges == -1).astype(np.int64)
    keep = (offsets - onsets) >= min_len
    return onsets[keep], offsets[keep]


def events_to_mask(onsets, offsets, length: int) -> np.ndarray:
    """A boolean mask ``(length,)`` that is ``True`` on every sample of every event.

    ``onsets``, ``offsets``: ``(n,)`` integer samples with ``0 <= onset < offset <=
    length``. Events may overlap (the mask is their union).
    """
    length = _check_int("length", length, 0)
    ev = as_intervals((onsets, offsets))
    if len(ev) and (np.any(ev != np.round(ev))):
        raise ValueError("`onsets` and `offsets` must be whole samples for a mask; got fractional values.")
    ev = ev.astype(np.int64)
    if len(ev) and (ev[:, 0].min() < 0 or ev[:, 1].max() > length):
        raise ValueError(f"events must lie in [0, length={length}]; got onsets from {ev[:, 0].min()} and "
                         f"offsets up to {ev[:, 1].max()}.")
    acc = np.zeros(length + 1, dtype=np.int64)
    np.add.at(acc, ev[:, 0], 1)
    np.add.at(acc, ev[:, 1], -1)
    return np.cumsum(acc[:-1]) > 0


def proba_to_events(proba, threshold: float, *, min_len: int = 1, max_len: int | None = None,
                    max_gap: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Events from a probability (or any score) per sample.

    The rule, in this order:

    1. every sample with ``proba >= threshold`` is inside an event; runs of such samples
       are the candidate events;
    2. two consecutive candidates separated by at most ``max_gap`` samples below the
       threshold are joined into one event that includes the gap (repeatedly, so chains
       of close events become one); ``max_gap=0`` joins nothing;
    3. events shorter than ``min_len`` or longer than ``max_len`` samples (after joining)
       are dropped; both bounds are inclusive (an event of exactly ``min_len`` samples is
       kept).

    Args:
        proba: ``(L,)`` float array; NaN counts as below the threshold.
        threshold: Scalar.
        min_len, max_len: Duration range in samples (``max_len=None``: no upper bound).
        max_gap: Largest gap (in samples) that is bridged.

    Returns:
        ``(onsets, offsets)``: ``(n,)`` int64 arrays, offsets exclusive.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"`proba` must be 1-D (L,); got shape {p.shape}.")
    if not np.isfinite(threshold):
        raise ValueError(f"`threshold` must be a finite number; got {threshold!r}.")
    min_len = _check_int("min_len", min_len, 1)
    max_gap = _check_int("max_gap", max_gap, 0)
    if max_len is not None:
        max_len = _check_int("max_len", max_len, min_len)
    with np.errstate(invalid="ignore"):
        on, off = mask_to_events(p >= threshold)
    if max_gap > 0 and len(on) > 1:
        gap = on[1:] - off[:-1]  # samples between consecutive events, >= 1
        starts_new = np.concatenate([[True], gap > max_gap])
        on = on[starts_new]
        off = np.maximum.reduceat(off, np.flatnonzero(starts_new))
    dur = off - on
    keep = dur >= min_len
    if max_len is not None:
        keep &= dur <= max_len
    return on[keep], off[keep]


# --------------------------------------------------------------------------- matching
def as_intervals(events) -> np.ndarray:
    """Events as a float64 ``(n, 2)`` array of ``[onset, offset)`` rows.

    ``events``: a tuple ``(onsets, offsets)`` of two ``(n,)`` arrays, or an array-like of
    shape ``(n, 2)`` (``(0, 2)`` or an empty list for no events). Every event must have
    ``offset > onset`` and finite ends.
    """
    if isinstance(events, tuple):
        if len(events) != 2:
            raise ValueError(f"events given as a tuple must be (onsets, offsets); got a tuple of {len(events)}.")
        on, off = (np.asarray(a, dtype=np.float64).reshape(-1) if np.ndim(a) <= 1 else None for a in events)
        if on is None or off is None:
            raise ValueError("events given as a tuple (onsets, offsets) must hold two 1-D arrays.")
        if on.shape != off.shape:
            raise ValueError(f"onsets and offsets must have the same length; got {on.shape[0]} and {off.shape[0]}.")
        ev = np.stack([on, off], axis=1)
    else:
        ev = np.asarray(events, dtype=np.float64)
        if ev.size == 0:
            ev = ev.reshape(0, 2)
        if ev.ndim != 2 or ev.shape[1] != 2:
            raise ValueError(f"events must be an (n, 2) array of [onset, offset) rows or a tuple (onsets, offsets); "
                             f"got shape {ev.shape}.")
    if not np.isfinite(ev).all():
        raise ValueError("events must have finite onsets and offsets; got NaN or inf.")
    bad = np.flatnonzero(ev[:, 1] <= ev[:, 0])
    if len(bad):
        raise ValueError(f"every event needs offset > onset; event {bad[0]} is [{ev[bad[0], 0]}, {ev[bad[0], 1]}).")
    return ev


@dataclass(frozen=True)
class EventMatch:
    """The result of :func:`match_events`.

    Attributes:
        pairs: ``(tp, 2)`` int64, rows ``(index into true, index into pred)``, sorted by
            the true index.
        iou: ``(tp,)`` float64, the IoU of each matched pair.
        tp: Matched pairs.
        fp: Predicted events left unmatched.
        fn: True events left unmatched.
    """

    pairs: np.ndarray
    iou: np.ndarray
    tp: int
    fp: int
    fn: int

    @property
    def counts(self) -> tuple[int, int, int]:
        """``(tp, fp, fn)``."""
        return self.tp, self.fp, self.fn


def _starts_within(a: np.ndarray, b: np.ndarray, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)`` where ``b[j]`` starts inside ``a[i]``: ``a_on <= b_on < a_off``
    (``a_on < b_on`` when ``strict``). ``b`` must be sorted by onset."""
    lo = np.searchsorted(b[:, 0], a[:, 0], side="right" if strict else "left")
    hi = np.searchsorted(b[:, 0], a[:, 1], side="left")
    n = np.maximum(hi - lo, 0)
    i = np.repeat(np.arange(len(a)), n)
    j = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())
    return i, j


def match_events(true, pred, iou_threshold: float = 0.2) -> EventMatch:
    """One-to-one matching of true and predicted events with the most matched pairs.

    A true and a predicted event form an eligible pair when their intersection is
    positive (touching intervals such as ``[0, 5)`` and ``[5, 9)`` never match) and
    ``IoU = intersection / union >= iou_threshold``, with IoU computed in float64 as
    that one division: with whole-sample ends, an IoU exactly at the threshold counts
    (``2 / 10 >= 0.2``). Each event is in at most one pair. Among the matchings with the
    largest number of pairs, one with the largest total IoU is returned (the Hungarian
    algorithm, ``scipy.optimize.linear_sum_assignment``, on each connected group of
    eligible pairs, with weight ``1 + IoU / (k + 1)`` per pair, ``k`` the group's
    smaller side, so that one more pair always outweighs any IoU gain).

    Args:
        true, pred: events, a tuple ``(onsets, offsets)`` or an ``(n, 2)`` array, in the
            same unit (samples or seconds). Order does not matter; events of one side
            may overlap each other.
        iou_threshold: In ``[0, 1]``; ``0`` makes any overlap eligible.

    Returns:
        :class:`EventMatch` with ``pairs`` (indices into ``true`` and ``pred`` as given),
        their ``iou`` and the counts ``tp``, ``fp``, ``fn``.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    thr = float(iou_threshold)
    if not 0.0 <= thr <= 1.0:
        raise ValueError(f"`iou_threshold` must be in [0, 1]; got {iou_threshold!r}.")
    t, p = as_intervals(true), as_intervals(pred)
    nt, npred = len(t), len(p)
    empty = EventMatch(np.zeros((0, 2), np.int64), np.zeros(0), 0, npred, nt)
    if nt == 0 or npred == 0:
        return empty
    ot, op = np.argsort(t[:, 0], kind="stable"), np.argsort(p[:, 0], kind="stable")
    ts, ps = t[ot], p[op]
    # Two intervals with a positive overlap: one starts inside the other (ties of onset
    # are found once, by the non-strict side).
    i1, j1 = _starts_within(ts, ps, strict=False)
    j2, i2 = _starts_within(ps, ts, strict=True)
    i, j = ot[np.concatenate([i1, i2])], op[np.concatenate([j1, j2])]
    inter = np.minimum(t[i, 1], p[j, 1]) - np.maximum(t[i, 0], p[j, 0])
    union = (t[i, 1] - t[i, 0]) + (p[j, 1] - p[j, 0]) - inter
    iou = inter / union
    keep = (inter > 0) & (iou >= thr)
    i, j, iou = i[keep], j[keep], iou[keep]
    if len(i) == 0:
        return empty
    # connected groups of the bipartite graph of eligible pairs (nodes: true, then pred)
    graph = coo_matrix((np.ones(len(i)), (i, nt + j)), shape=(nt + npred, nt + npred))
    _, label = connected_components(graph, directed=False)
    comp = label[i]
    n_edges = np.bincount(comp, minlength=label.max() + 1)
    single = n_edges[comp] == 1  # a group of one pair: matched as is
    mi, mj, miou = [i[single]], [j[single]], [iou[single]]
    multi = ~single
    if multi.any():
        ci, cj, cw, cc = i[multi], j[multi], iou[multi], comp[multi]
        order = np.argsort(cc, kind="stable")
        ci, cj, cw, cc = ci[order], cj[order], cw[order], cc[order]
        bounds = np.flatnonzero(np.diff(np.concatenate([[-1], cc, [cc[-1] + 1]])))
        for a, b in zip(bounds[:-1], bounds[1:]):
            gi, gj, gw = ci[a:b], cj[a:b], cw[a:b]
            ui, ri = np.unique(gi, return_inverse=True)
            uj, rj = np.unique(gj, return_inverse=True)
            k = min(len(ui), len(uj))
            weight = np.zeros((len(ui), len(uj)))
            weight[ri, rj] = 1.0 + gw / (k + 1)
            rows, cols = linear_sum_assignment(weight, maximize=True)
            ok = weight[rows, cols] > 0
            rows, cols = rows[ok], cols[ok]
            lookup = np.full((len(ui), len(uj)), np.nan)
            lookup[ri, rj] = gw
            mi.append(ui[rows]), mj.append(uj[cols]), miou.append(lookup[rows, cols])
    mi, mj, miou = np.concatenate(mi), np.concatenate(mj), np.concatenate(miou)
    order = np.argsort(mi, kind="stable")
    pairs = np.stack([mi[order], mj[order]], axis=1).astype(np.int64)
    tp = len(pairs)
    return EventMatch(pairs, miou[order], tp, npred - tp, nt - tp)


def event_scores(counts) -> tuple[float, float, float]:
    """Precision, recall and F1 from by-event counts.

    ``counts``: ``(tp, fp, fn)`` or an :class:`EventMatch`; to pool recordings, add their
    counts first. ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``,
    ``f1 = 2 tp / (2 tp + fp + fn)`` (the harmonic mean of the two where both are defined).

    Empty sets:

    - no true and no predicted events (``tp = fp = fn = 0``): the prediction agrees with
      the truth, and precision, recall and F1 are all ``1.0``;
    - predicted events but no true ones: recall (0/0) is ``0.0``, precision and F1 are
      ``0.0``; true events but no predicted ones: precision (0/0) is ``0.0``, recall and
      F1 are ``0.0`` (as YASA and scikit-learn's default ``zero_division`` do).
    """
    if isinstance(counts, EventMatch):
        counts = counts.counts
    try:
        tp, fp, fn = (int(c) for c in counts)
    except (TypeError, ValueError):
        raise ValueError(f"`counts` must be (tp, fp, fn) or an EventMatch; got {counts!r}.") from None
    if min(tp, fp, fn) < 0:
        raise ValueError(f"`counts` must be non-negative; got (tp, fp, fn) = {(tp, fp, fn)}.")
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * tp / (2 * tp + fp + fn)


def benchmark_match_events(n_events: int = 2000, seed: int = 0, repeats: int = 3) -> dict:
    """Time :func:`match_events` on ``n_events`` true against ``n_events`` predicted
    random spindle-like events (0.5-2 s at 100 Hz on a 10-hour axis; predictions are the
    true events jittered, with a third replaced by random ones). Returns the best time
    in seconds of ``repeats`` runs and the counts."""
    rng = np.random.default_rng(seed)
    length = 10 * 3600 * 100
    on = np.sort(rng.integers(0, length - 200, n_events))
    true = np.stack([on, on + rng.integers(50, 200, n_events)], axis=1)
    pred = true + rng.integers(-30, 30, (n_events, 1))
    pred[:, 1] = np.maximum(pred[:, 1], pred[:, 0] + 10)
    swap = rng.random(n_events) < 1 / 3
    pred[swap, 0] = rng.integers(0, length - 200, swap.sum())
    pred[swap, 1] = pred[swap, 0] + rng.integers(50, 200, swap.sum())
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        m = match_events(true, pred, 0.2)
        best = min(best, time.perf_counter() - t0)
    return {"n_true": n_events, "n_pred": n_events, "seconds": best, "tp": m.tp, "fp": m.fp, "fn": m.fn}


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def format_events(events) -> str:
    """Events ``(n, 2)`` as text, ``"onset-offset;onset-offset"`` (samples), for a table cell."""
    return ";".join(f"{int(a)}-{int(b)}" for a, b in np.asarray(events, dtype=np.int64).reshape(-1, 2))


def parse_events(text) -> np.ndarray:
    """The events ``(n, 2)`` int64 of :func:`format_events` text (none for an empty cell)."""
    if not isinstance(text, str) or not text:
        return np.zeros((0, 2), dtype=np.int64)
    return np.asarray([[int(v) for v in e.split("-")] for e in text.split(";")], dtype=np.int64)
