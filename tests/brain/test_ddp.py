"""Pretraining across processes: DDP (gloo, on the CPU) gives the single-process result
with the same global batch."""

from __future__ import annotations

import pytest
import torch

from neuroconv.brain.data import ChannelSetBatchSampler, StoreWindows, open_stores, pretrain_windows
from neuroconv.brain.pretrain import _split, pretrain_backbone

from .conftest import tiny_config


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("shuffle", [True, False])
def test_ranks_split_the_single_process_global_batches(monkeypatch, world, shuffle):
    keys = ["a"] * 23 + ["b"] * 14 + ["c"] * 2
    single = ChannelSetBatchSampler(keys, 4 * world, shuffle=shuffle, seed=3)
    single.set_epoch(2)
    shares = []
    for rank in range(world):
        monkeypatch.setattr(ChannelSetBatchSampler, "_world", staticmethod(lambda r=rank: (world, r)))
        s = ChannelSetBatchSampler(keys, 4, shuffle=shuffle, seed=3)
        s.set_epoch(2)
        shares.append(list(s))
        assert len(s) == len(shares[-1])
    monkeypatch.undo()
    glob = list(single)
    assert all(len(sh) == len(glob) for sh in shares)  # every rank runs the same number of steps
    for step, batch in enumerate(glob):
        parts = [shares[r][step] for r in range(world)]
        assert all(len({keys[i] for i in p}) == 1 for p in parts)
        if len(batch) >= world:  # the ranks' slices, in rank order, are the global batch
            assert [i for p in parts for i in p] == batch
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
        else:  # fewer indices than ranks: each rank still gets one of them
            assert all(len(p) == 1 and p[0] in batch for p in parts) and {p[0] for p in parts} == set(batch)


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(eeg_store, tmp_path, monkeypatch):
    """2 processes x batch 8 (Lightning's ddp_spawn, gloo) == 1 process x batch 16.

    Both runs see the same global batches in the same order (the sampler above), start
    from the same seed, and take ``steps`` AdamW steps. They then differ only in the
    order of float reductions: each gradient element is a sum of n = B * L * C per-step
    terms (here 16 windows x 100 steps x the store's channels, about 1e4), summed as one
    sum in one process, as two half sums plus an all-reduce in DDP. The two sums differ by
    at most about n * eps * sum|terms| (the standard bound on recursive summation).
    AdamW divides each gradient element by its own running magnitude, so an element whose
    terms cancel to a fraction 1/kappa of sum|terms| moves by lr * n * eps * kappa per step
    more or less; over ``steps`` steps (and the small knock-on effect on later gradients)
    the weights differ by at most about steps * lr * n * eps * kappa.

    The runs are in float64: in float32, n * eps is about 1e-3, so an element whose
    gradient cancels to within 1e-3 of its terms' size (a few of a few thousand
    parameters) could get the opposite sign at the first step in the two runs, and AdamW's
    first step moves every element by +-lr whatever its size: a 2 * lr difference that
    says nothing about the loop. In float64 n * eps is about 2e-12, and kappa = 1e3 allows
    for cancellation and knock-on effects a thousand times beyond that without hiding a
    real difference (a wrong global batch moves weights by about lr = 2e-3).
    """
    monkeypatch.chdir(tmp_path)  # ddp_spawn brings rank 0's weights back through a file in the cwd
    steps, lr = 4, 2e-3
    common = {"pretrain.max_epochs": 1, "pretrain.max_steps": steps, "pretrain.lr": lr,
              "pretrain.precision": "64-true", "pretrain.accelerator": "cpu", "pretrain.patience": 0,
              "pretrain.warmup_steps": 1, "pretrain.objective": "next_step"}
    one = tiny_config([eeg_store], tmp_path, **common, **{"pretrain.batch_size": 16})
    two = tiny_config([eeg_store], tmp_path, **common, **{"pretrain.batch_size": 8, "pretrain.devices": 2,
                                                           "pretrain.strategy": "ddp_spawn"})
    stores = open_stores([eeg_store])
    windows = pretrain_windows(stores, one.data.window_seconds, one.data.stride_seconds, one.data.max_len)
    # the global batches of these steps split evenly over 2 processes, so that the mean of
    # the processes' mean losses is the global batch's mean loss
    keys = StoreWindows(stores, windows.iloc[_split(stores, windows, one).train]).keys
    sizes = [len(b) for b in ChannelSetBatchSampler(keys, 16, shuffle=True, seed=one.pretrain.seed)][:steps]
    assert len(sizes) == steps and all(n % 2 == 0 for n in sizes), sizes
    task1, res1, _ = pretrain_backbone(one, stores, windows, quiet=True, log=None)
    task2, _, _ = pretrain_backbone(two, stores, windows, quiet=True, log=None)
    assert res1.steps == steps  # (ddp_spawn's main process keeps no counters without a run folder)
    w1, w2 = task1.model.state_dict(), task2.model.state_dict()
    assert set(w1) == set(w2)
    init = tiny_config([eeg_store], tmp_path, **{**common, "pretrain.batch_size": 16, "pretrain.max_steps": 0})
    w0 = pretrain_backbone(init, stores, windows, quiet=True, log=None)[0].model.state_dict()
    moved = max(float((w1[k] - w0[k]).abs().max()) for k in w1 if w1[k].is_floating_point())
    assert moved > 0.5 * lr  # training moved the weights: the comparison below is not of two untrained models
    n_terms = 16 * int(round(one.data.window_seconds * stores[0].sfreq(stores[0].ids[0]))) * \
        len(stores[0].channels(stores[0].ids[0]))
    atol = steps * lr * n_terms * torch.finfo(torch.float64).eps * 1e3
    # ddp_spawn loads rank 0's weights into the main process's model, which stays float32:
    # the float64 results meet in float32, where they may round to neighbours (1 ulp)
    for k in w1:
        if w1[k].is_floating_point():
            assert w1[k].dtype == torch.float64
            torch.testing.assert_close(w2[k], w1[k].to(w2[k].dtype), rtol=torch.finfo(w2[k].dtype).eps, atol=atol,
                                       msg=lambda m, k=k: f"{k}: {m}")
        else:
            assert torch.equal(w1[k], w2[k])


def test_every_process_of_a_ddp_run_uses_rank_zeros_run_folder(tmp_path, monkeypatch):
    from neuroconv.engine.runner import RUN_DIR_ENV, Run

    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_NTASKS", RUN_DIR_ENV):
        monkeypatch.delenv(key, raising=False)
    first = Run.create(tmp_path, "", "x-pretrain")  # rank 0 (no launcher): a new folder, told to its children
    assert first.path.is_dir()
    import os

    assert os.environ[RUN_DIR_ENV] == str(first.path.resolve())
    monkeypatch.setenv("LOCAL_RANK", "1")  # a process Lightning's launcher started on this node
    assert Run.create(tmp_path, "", "x-pretrain").path == first.path.resolve()
    assert len(list(tmp_path.iterdir())) == 1
    monkeypatch.delenv(RUN_DIR_ENV)  # another node: only a name can say where
    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(RuntimeError, match="give the run a name"):
        Run.create(tmp_path, "", "x-pretrain")
    other = Run.create(tmp_path, "named", "x-pretrain")
    assert other.path == tmp_path / "named" and not other.primary and not other.path.exists()  # rank 0 makes it
    other.write_config({"a": 1})  # only rank 0 writes the run folder
    assert not other.path.exists()


def test_max_steps_before_the_first_validation_with_early_stopping(eeg_store, tmp_path):
    """A run that stops (max_steps) inside its first epoch has no val_loss yet; early
    stopping waits for one instead of failing the run."""
    cfg = tiny_config([eeg_store], tmp_path, **{"pretrain.max_steps": 2, "pretrain.max_epochs": 1,
                                                "pretrain.patience": 3})
    stores = open_stores([eeg_store])
    windows = pretrain_windows(stores, cfg.data.window_seconds, cfg.data.stride_seconds, cfg.data.max_len)
    _, result, _ = pretrain_backbone(cfg, stores, windows, quiet=True, log=None)
    assert result.status == "completed" and result.steps == 2 and result.best_val_loss is None
