"""Folds: every split keeps groups apart; missing groups and too-few-groups follow one rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroconv.engine.folds import Folds, group_values, time_holdout


def test_missing_group_values_are_each_their_own_group():
    vals = ["s1", None, float("nan"), "", "n/a", "s1", "s2"]
    g = group_values(vals, [f"r{i}" for i in range(len(vals))])
    assert list(g) == ["s1", "recording:r1", "recording:r2", "recording:r3", "recording:r4", "s1", "s2"]
    # two recordings of unknown subject never share a group, even with the same missing value
    assert len(set(g[1:5])) == 4


@settings(max_examples=30, deadline=None)
@given(n_groups=st.integers(2, 12), per=st.integers(1, 6), seed=st.integers(0, 10**6),
       cv=st.sampled_from(["group_kfold", "leave_group_out"]))
def test_outer_folds_never_share_a_group(n_groups, per, seed, cv):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"g{i}" for i in range(n_groups)], per)
    y = rng.integers(0, 2, len(groups))
    splits = Folds(cv, n_splits=5, seed=seed).split(y, groups)
    covered = np.concatenate([te for _, te in splits])
    assert sorted(covered) == list(range(len(groups)))  # every sample is tested exactly once
    for tr, te in splits:
        assert not set(groups[tr]) & set(groups[te])


@settings(max_examples=30, deadline=None)
@given(n_groups=st.integers(3, 15), per=st.integers(1, 5), seed=st.integers(0, 10**6))
def test_inner_split_is_by_group_when_there_are_enough(n_groups, per, seed):
    groups = np.repeat([f"g{i}" for i in range(n_groups)], per)
    y = np.random.default_rng(seed).normal(size=len(groups))  # a regression target: no class rule
    h = Folds(val_fraction=0.2, seed=seed).holdout(y, groups)
    assert h.by == "group" and len(h.val) and len(h.train)
    assert not set(groups[h.train]) & set(groups[h.val])
    assert sorted(np.r_[h.train, h.val]) == list(range(len(groups)))


def test_too_few_groups_hold_out_the_end_of_each_recording_without_overlap():
    # two runs (groups), each one recording with windows of 100 samples every 50
    rec = np.repeat(["run4", "run8"], 10)
    starts = np.tile(np.arange(10) * 50, 2)
    stops = starts + 100
    h = Folds(val_fraction=0.2).holdout(np.zeros(20), rec, recordings=rec, starts=starts, stops=stops)
    assert h.by == "time" and "only 2 training group(s)" in h.note
    for r in ("run4", "run8"):
        tr = [i for i in h.train if rec[i] == r]
        va = [i for i in h.val if rec[i] == r]
        assert va and tr
        boundary = min(starts[va])
        assert max(stops[tr]) <= boundary  # no training window reaches into validation time
        assert min(starts[va]) > max(starts[tr])
    assert h.dropped == 2  # one straddling window per recording


@settings(max_examples=40, deadline=None)
@given(n_groups=st.integers(1, 8), per=st.integers(2, 6), seed=st.integers(0, 10**6))
def test_inner_training_part_keeps_every_class_or_nothing_is_held_out(n_groups, per, seed):
    # labels in blocks of time (as in a run of 30 Hz trials then 20 Hz trials): a split can
    # leave a class out of the training part, and a model could not be fitted there
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"g{i}" for i in range(n_groups)], per)
    y = rng.integers(0, 3, len(groups))
    starts = np.tile(np.arange(per) * 10, n_groups)
    h = Folds(val_fraction=0.3, seed=seed).holdout(y, groups, recordings=groups, starts=starts, stops=starts + 10)
    assert set(y[h.train]) == set(y)
    if h.by == "none":
        assert len(h.val) == 0 and sorted(h.train) == list(range(len(y)))


def test_a_split_that_drops_a_class_from_training_holds_nothing_out():
    # one recording; the last windows are the only ones of class 1
    y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    starts = np.arange(10) * 10
    h = Folds(val_fraction=0.2).holdout(y, np.array(["r"] * 10), recordings=["r"] * 10, starts=starts,
                                       stops=starts + 10)
    assert h.by == "none" and len(h.val) == 0 and "would leave class(es) [1]" in h.note
    # the same split for a target that is not classes is kept
    h = Folds(val_fraction=0.2).holdout(y.astype(float), np.array(["r"] * 10), recordings=["r"] * 10,
                                       starts=starts, stops=starts + 10)
    assert h.by == "time" and len(h.val) == 2


def test_time_holdout_with_one_window_per_recording_trains_without_validation():
    h = time_holdout(["a", "b"], [0, 0], [10, 10], 0.2)
    assert h.by == "none" and len(h.val) == 0 and sorted(h.train) == [0, 1]
    h = Folds().holdout(np.array([0, 1]), np.array(["a", "b"]), recordings=["a", "b"], starts=[0, 0], stops=[10, 10])
    assert h.by == "none" and "without early stopping" in h.note


def test_errors_name_the_parameter():
    with pytest.raises(ValueError, match="`cv` must be one of"):
        Folds("kfold")
    with pytest.raises(ValueError, match="`val_fraction` must be in"):
        Folds(val_fraction=1.0)
    with pytest.raises(ValueError, match="at least 2 groups"):
        Folds().split([0, 1], ["a", "a"])
    with pytest.raises(ValueError, match="no window times"):
        Folds().holdout([0, 1], ["a", "b"])


def test_cv_none_trains_on_everything():
    (tr, te), = Folds("none").split([0, 1, 0], ["a", "b", "c"])
    assert list(tr) == [0, 1, 2] and len(te) == 0
