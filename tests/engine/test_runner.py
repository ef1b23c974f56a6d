"""Run folders: unique, exclusive, resumable; fit: best state and NaN guard."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from neuroconv.engine.config import TrainerConfig
from neuroconv.engine.runner import Run, fit
from neuroconv.engine.tasks import NonFiniteLossError, SupervisedTask


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    frozen = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.timezone.utc)

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    monkeypatch.setattr("neuroconv.engine.runner._dt.datetime", Clock)
    made = []
    threads = [threading.Thread(target=lambda: made.append(Run.create(tmp_path, "", "x").path)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8 and all(p.is_dir() for p in made)
    assert sorted(p.name for p in made) == sorted(["x-20261201-120000"] +
                                                  [f"x-20261201-120000-{k}" for k in range(2, 9)])
    for p in made:
        (p / "checkpoints").mkdir()
        (p / "checkpoints" / "last.ckpt").write_bytes(b"")
    # the newest is found by start time, then by counter (-8 after -2..-7, not by text order)
    assert Run.find(tmp_path, "", "x").path.name == "x-20261201-120000-8"
    later = tmp_path / "x-20261201-120001"
    (later / "checkpoints").mkdir(parents=True)
    (later / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert Run.find(tmp_path, "", "x").path == later
    (tmp_path / "x-20261201-120000-9").mkdir()  # newer counter, but nothing to resume: skipped
    assert Run.find(tmp_path, "", "x").path == later


def test_a_named_run_is_never_overwritten(tmp_path):
    Run.create(tmp_path, "mine", "x")
    with pytest.raises(FileExistsError, match="exists already"):
        Run.create(tmp_path, "mine", "x")
    with pytest.raises(FileNotFoundError, match="last.ckpt"):
        Run.find(tmp_path, "mine", "x")


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.config = {}

    def forward(self, batch):
        return self.lin(batch["x"])


def _loader(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x[:, 0] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=8, collate_fn=lambda b: {
        "x": torch.stack([t[0] for t in b]), "y": torch.stack([t[1] for t in b])})


def test_fit_keeps_the_best_validation_state_and_stops_on_nan(monkeypatch):
    tc = TrainerConfig(max_epochs=6, progress="none", accelerator="cpu", devices=1, patience=0, warmup_steps=1)
    task = SupervisedTask(_Net(), lr=0.05)
    losses = []
    real = SupervisedTask.validation_step

    def record(self, batch, i):
        loss = real(self, batch, i)
        losses.append(float(loss))
        return loss

    monkeypatch.setattr(SupervisedTask, "validation_step", record)
    result = fit(task, _loader(), _loader(16, 1), tc, quiet=True)
    per_epoch = [sum(losses[i:i + 2]) / 2 for i in range(0, len(losses), 2)]
    assert result.status == "completed" and result.best_val_loss == pytest.approx(min(per_epoch), rel=1e-5)
    # NaN from the third epoch on: the run stops and the state of the best finite epoch stays
    class Flaky(SupervisedTask):
        def compute_loss(self, batch, out=None):
            loss, out = super().compute_loss(batch, out)
            return (loss * float("nan") if self.training and self.current_epoch >= self.nan_from else loss), out

    class NaNFrom(Flaky):
        def __init__(self, epoch):
            super().__init__(_Net(), lr=0.05)
            self.nan_from = epoch

    task = NaNFrom(2)
    result = fit(task, _loader(), _loader(16, 1), tc, quiet=True)
    assert result.status.startswith("stopped") and "nan" in result.status and result.epochs == 2
    assert all(torch.isfinite(p).all() for p in task.parameters())
    # NaN from the very first step: nothing good to keep
    with pytest.raises(NonFiniteLossError):
        fit(NaNFrom(0), _loader(), _loader(16, 1), tc, quiet=True)


def test_validate_first_lets_the_starting_state_win():
    """A model whose training only makes the validation loss worse keeps its start
    (and without validate_first it could not)."""
    tc = TrainerConfig(max_epochs=2, progress="none", accelerator="cpu", devices=1, patience=0, warmup_steps=1)

    class Wrecked(SupervisedTask):
        def on_train_batch_end(self, outputs, batch, batch_idx):  # every step ruins the weights
            with torch.no_grad():
                self.net.lin.weight.zero_()

    def good_start():
        net = _Net()
        with torch.no_grad():  # the label is x[:, 0] > 0
            net.lin.weight.copy_(torch.tensor([[-3.0, 0.0], [3.0, 0.0]]))
            net.lin.bias.zero_()
        return net

    net = good_start()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    result = fit(Wrecked(net), _loader(), _loader(16, 1), tc, quiet=True, validate_first=True)
    assert result.best_step == 0 and result.best_val_loss < 0.3
    assert all(torch.equal(v, start[k]) for k, v in net.state_dict().items())
    net = good_start()
    result = fit(Wrecked(net), _loader(), _loader(16, 1), tc, quiet=True)
    assert result.best_step > 0 and not net.lin.weight.any()


def test_early_stopping_counts_from_the_start_when_it_competes():
    """With validate_first, the state before training is early stopping's first best: a run
    whose epochs never beat it stops after exactly `patience` epochs (not patience + 1)."""
    tc = TrainerConfig(max_epochs=10, progress="none", accelerator="cpu", devices=1, patience=2, warmup_steps=1)

    class Wrecked(SupervisedTask):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            with torch.no_grad():
                self.net.lin.weight.zero_()

    net = _Net()
    with torch.no_grad():
        net.lin.weight.copy_(torch.tensor([[-3.0, 0.0], [3.0, 0.0]]))
        net.lin.bias.zero_()
    result = fit(Wrecked(net), _loader(), _loader(16, 1), tc, quiet=True, validate_first=True)
    assert result.best_step == 0 and result.epochs == 2


def test_a_validation_score_decides_the_kept_state_and_early_stopping():
    """With a val_score, the kept state is the epoch of the highest score, whatever the
    validation loss did, and early stopping counts epochs without a better score."""
    tc = TrainerConfig(max_epochs=8, progress="none", accelerator="cpu", devices=1, patience=0, warmup_steps=1)
    scores = iter([0.1, 0.7, 0.3, 0.9, 0.2, 0.9, 0.5, 0.4])  # a scripted score per validation
    seen = []

    def score(items):
        # one (proba, y) pair per validation sample, probabilities of the net's outputs
        assert len(items) == 16 and all(p.shape == (2,) and abs(p.sum() - 1) < 1e-9 for p, _ in items)
        seen.append(next(scores))
        return seen[-1]

    states = []

    class Recorder(SupervisedTask):
        def on_validation_epoch_end(self):
            super().on_validation_epoch_end()
            states.append((self.global_step, {k: v.clone() for k, v in self.state_dict().items()}))

    task = Recorder(_Net(), lr=0.05, val_score=score)
    assert task.monitor == ("val_score", "max")
    result = fit(task, _loader(), _loader(16, 1), tc, quiet=True)
    assert result.monitor == "val_score" and result.best_val_score == pytest.approx(0.9, rel=1e-6) and len(seen) == 8  # logged in float32
    step, state = states[3]  # the first 0.9 (ties keep the earlier state)
    assert result.best_step == step and all(torch.equal(v, state[k]) for k, v in task.state_dict().items())
    assert result.best_val_loss is not None  # the loss of the kept state, for the record
    # patience counts epochs without a higher score: 0.1, 0.7, 0.3, 0.9 then two worse ones
    scores = iter([0.1, 0.7, 0.3, 0.9, 0.2, 0.3, 0.95, 0.99])
    seen.clear()
    tc.patience = 2
    result = fit(SupervisedTask(_Net(), lr=0.05, val_score=score), _loader(), _loader(16, 1), tc, quiet=True)
    assert len(seen) == 6 and result.best_val_score == pytest.approx(0.9, rel=1e-6)
    with pytest.raises(ValueError, match="val_score"):
        SupervisedTask(_Net(), kind="regression", val_score=score)
