"""Run folders and the training loop every job uses.

A run folder holds::

    RUN/
      config.yaml            the resolved config of the job
      checkpoints/           last.ckpt (resume) and best.ckpt (lowest val_loss)
      model.safetensors      exported weights (safetensors: nothing is unpickled)
      model_config.json      what rebuilds the model
      metrics.json           final metrics
      logs/                  CSV logs (and TensorBoard, when installed)
      plots/                 loss curves, learned kernels, confusion matrices

:class:`Run` owns the folder: unique names created exclusively (two runs started in the
same second get different folders), the resolved config, JSON outputs (atomic), export.
:func:`fit` owns the loop: a Lightning trainer from a :class:`TrainerConfig`, the NaN
guard, and the reload of the best validation state (in memory, or from ``best.ckpt``
when a resumed run's best came before the resume).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from neuroconv import __version__
from neuroconv.io import atomic_save_safetensors, atomic_write_json, atomic_write_yaml

from .config import TrainerConfig, to_dict
from .tasks import NonFiniteLossError

__all__ = ["Run", "fit", "FitResult", "predict", "make_trainer", "quiet_lightning", "export_model",
           "read_export", "resolve_precision"]


# --------------------------------------------------------------------------- run folders
_STAMP = "%Y%m%d-%H%M%S"
#: the environment variable through which rank 0 tells the other DDP processes its run folder
RUN_DIR_ENV = "NEUROCONV_RUN_DIR"


def _launch_rank_zero() -> bool:
    """False in a process that a distributed launcher started as a rank other than 0:
    Lightning's own launcher (``LOCAL_RANK``, ``NODE_RANK``), torchrun (``RANK``) or
    SLURM with several tasks (``SLURM_PROCID``)."""
    env = os.environ

    def positive(key):
        try:
            return int(env.get(key, "0")) > 0
        except ValueError:
            return False

    slurm = positive("SLURM_PROCID") and int(env.get("SLURM_NTASKS", "1") or 1) > 1
    return not (positive("RANK") or positive("LOCAL_RANK") or positive("NODE_RANK") or slurm)


def _run_sort_key(path: Path):
    """Order run folders by start time, then by the counter added on a same-second clash."""
    m = re.search(r"-(\d{8}-\d{6})(?:-(\d+))?$", path.name)
    return (m.group(1), int(m.group(2) or 0)) if m else ("", 0)


class Run:
    """A run folder: create it (exclusively) or find the one to resume, then write into it.

    ``Run.create(out, name, prefix)``: ``out/name`` when a name is given (an error if it
    exists: pick another name, or resume), else ``out/<prefix>-<UTC time>``, with ``-2``,
    ``-3``... added when another run took that second.
    """

    def __init__(self, path: Path, primary: bool = True):
        self.path = Path(path)
        self.primary = primary  # False in DDP processes other than rank 0: they write nothing

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __truediv__(self, other) -> Path:
        return self.path / other

    @classmethod
    def create(cls, out, name: str, prefix: str) -> "Run":
        out = Path(out)
        if not _launch_rank_zero():  # a DDP process other than rank 0: rank 0's folder
            shared = os.environ.get(RUN_DIR_ENV)
            if shared:
                return cls(Path(shared), primary=False)
            if not name:
                raise RuntimeError(
                    "this process is not rank 0 of a distributed run and does not know rank 0's run folder: "
                    "on several nodes, give the run a name (e.g. --pretrain.name run1) so that every node "
                    "uses out/name.")
            return cls(out / name, primary=False)  # rank 0 creates it
        run = cls._create(out, name, prefix)
        # Lightning's launcher starts the other processes of this node with this
        # environment: they take this folder instead of making their own
        os.environ[RUN_DIR_ENV] = str(run.path.resolve())
        return run

    @classmethod
    def _create(cls, out: Path, name: str, prefix: str) -> "Run":
        out.mkdir(parents=True, exist_ok=True)
        if name:
            path = out / name
            try:
                path.mkdir()
            except FileExistsError:
                raise FileExistsError(
                    f"run folder {path} exists already. Give another name, leave the name empty for a "
                    "new time-stamped folder, or resume that run."
                ) from None
            return cls(path)
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime(_STAMP)
        for n in range(1, 10_000):
            path = out / (f"{prefix}-{stamp}" + (f"-{n}" if n > 1 else ""))
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise RuntimeError(f"could not create a new run folder under {out}")

    @classmethod
    def find(cls, out, name: str, prefix: str, require: str = "checkpoints/last.ckpt") -> "Run":
        """The run to resume (or read): ``out/name``, or the newest ``out/<prefix>-*``
        that holds ``require``."""
        if name:
            path = Path(out) / name
            if not (path / require).is_file():
                raise FileNotFoundError(f"{path}/{require} does not exist.")
            return cls(path)
        runs = sorted((p for p in Path(out).glob(f"{prefix}-*") if (p / require).is_file()), key=_run_sort_key)
        if not runs:
            raise FileNotFoundError(
                f"no run folder {out}/{prefix}-* holds {require}; start a new run, or give the run's name."
            )
        return cls(runs[-1])

    def write_json(self, name: str, obj) -> Path:
        if not self.primary:
            return self.path / name
        return atomic_write_json(self.path / name, obj)

    def write_config(self, cfg) -> Path:
        """The resolved config (a dataclass or a dict) as ``config.yaml``."""
        if not self.primary:
            return self.path / "config.yaml"
        return atomic_write_yaml(self.path / "config.yaml", cfg if isinstance(cfg, dict) else to_dict(cfg))

    def read_json(self, name: str):
        return json.loads((self.path / name).read_text())


# --------------------------------------------------------------------------- trainer
@contextlib.contextmanager
def quiet_lightning(enabled: bool = True):
    """Silence Lightning's info messages and routine warnings inside the block (the many
    small fits of cross-validation and the estimators)."""
    if not enabled:
        yield
        return
    names = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning")
    old = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="lightning")
            warnings.filterwarnings(
                "ignore", message=".*(LeafSpec|does not have many workers|logging interval|in eval mode).*")
            yield
    finally:
        for n, lvl in old.items():
            logging.getLogger(n).setLevel(lvl)


def resolve_precision(precision: str, accelerator: str) -> str:
    """``"auto"`` -> ``"bf16-mixed"`` on a CUDA GPU with bf16 support, else ``"32-true"``;
    any other value is passed to Lightning unchanged."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"


def _devices(value):
    if isinstance(value, int):
        return value
    value = str(value)
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        return value  # e.g. "0,1"


def _without_version(bar_cls):
    """A progress bar class that does not show the logger's version number."""

    class Bar(bar_cls):
        def get_metrics(self, trainer, pl_module):
            metrics = super().get_metrics(trainer, pl_module)
            metrics.pop("v_num", None)
            return metrics

    Bar.__name__ = bar_cls.__name__
    return Bar


def make_trainer(tc: TrainerConfig, run_dir: Path | None, *, quiet: bool = False, extra_callbacks=(),
                 validate: bool = True, monitor: tuple[str, str] = ("val_loss", "min")):
    """A Lightning trainer configured from ``tc``.

    With ``run_dir`` (and not ``quiet``): checkpoints (last + best on the monitored
    value), CSV logs and TensorBoard logs when tensorboard is installed. ``quiet``: no
    progress bar, no logs, no checkpoints (inside cross-validation and the estimators).
    ``validate``: early stopping when ``tc.patience > 0``. ``monitor``: the logged value
    both follow and its direction (``("val_loss", "min")``, or ``("val_score", "max")``).
    """
    key, mode = monitor
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    callbacks = list(extra_callbacks)
    loggers = []
    use_ckpt = run_dir is not None and not quiet
    if use_ckpt:
        callbacks.append(ModelCheckpoint(dirpath=Path(run_dir) / "checkpoints", filename="best",
                                         monitor=key if validate else None, mode=mode, save_last=True,
                                         save_top_k=1, enable_version_counter=False))
    if validate and tc.patience > 0:
        # checked after each validation only: a run that stops (max_steps) before its
        # first validation has no val_loss, which is not an error
        callbacks.append(EarlyStopping(monitor=key, mode=mode, patience=tc.patience, check_finite=True,
                                       check_on_train_epoch_end=False))
    progress = tc.progress if not quiet else "none"
    if progress not in ("rich", "tqdm", "none"):
        raise ValueError(f"`progress` must be 'rich', 'tqdm' or 'none'; got {progress!r}.")
    if progress == "rich" and importlib.util.find_spec("rich") is not None:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(_without_version(RichProgressBar)(leave=True))
    elif progress != "none":
        from lightning.pytorch.callbacks import TQDMProgressBar

        callbacks.append(_without_version(TQDMProgressBar)())
    if use_ckpt:
        from lightning.pytorch.loggers import CSVLogger

        # a resumed run logs into a new version_N folder, so no earlier log is overwritten
        loggers.append(CSVLogger(save_dir=str(run_dir), name="logs"))
        if importlib.util.find_spec("tensorboard") is not None:
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="logs/tensorboard"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        return L.Trainer(
            max_epochs=tc.max_epochs,
            max_steps=tc.max_steps,
            max_time=tc.max_time or None,
            precision=resolve_precision(tc.precision, tc.accelerator),
            accelerator=tc.accelerator,
            devices=_devices(tc.devices),
            num_nodes=tc.num_nodes,
            # per-channel-set encoders and heads sit idle in batches of other sets, so DDP
            # must look for unused parameters
            strategy={"ddp": "ddp_find_unused_parameters_true",
                      "ddp_spawn": "ddp_spawn_find_unused_parameters_true"}.get(tc.strategy, tc.strategy),
            gradient_clip_val=tc.gradient_clip or None,
            accumulate_grad_batches=tc.accumulate_grad_batches,
            limit_train_batches=tc.limit_train_batches,
            callbacks=callbacks,
            logger=loggers or False,
            enable_checkpointing=use_ckpt,
            enable_progress_bar=progress != "none",
            enable_model_summary=not quiet,
            use_distributed_sampler=False,  # the batch samplers shard batches themselves
            log_every_n_steps=5,
            num_sanity_val_steps=0,
            default_root_dir=str(run_dir) if run_dir is not None else None,
        )


# --------------------------------------------------------------------------- fit
def _callback_base():
    from lightning.pytorch.callbacks import Callback

    return Callback


class BestState(_callback_base()):
    """Keeps a CPU copy of the module's state at its best monitored value (the lowest
    ``val_loss`` by default; ``monitor=("val_score", "max")``: the highest score), and the
    validation loss of that state (``loss``). Ties keep the earlier state."""

    def __init__(self, monitor: tuple[str, str] = ("val_loss", "min")):
        self.key, self.mode = monitor
        if self.mode not in ("min", "max"):
            raise ValueError(f"monitor mode must be 'min' or 'max'; got {self.mode!r}.")
        self.best = float("inf") if self.mode == "min" else -float("inf")
        self.state = None
        self.step = None
        self.loss = None

    def better(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def on_validation_end(self, trainer, pl_module):
        v = trainer.callback_metrics.get(self.key)
        if v is not None and torch.isfinite(v) and self.better(float(v)):
            self.best, self.step = float(v), int(trainer.global_step)
            loss = trainer.callback_metrics.get("val_loss")
            self.loss = float(loss) if loss is not None else None
            self.state = {k: t.detach().cpu().clone() for k, t in pl_module.state_dict().items()}


@dataclass
class FitResult:
    """What :func:`fit` reports: ``status`` ("completed" or "stopped: <why>"), the
    ``trainer``, the validation loss of the kept state (None without validation), the
    optimizer step it was reached at (0: the state before training won), the counters,
    the step budget it ran under (set by the caller that decides it), what the kept state
    was chosen by (``monitor``) and, when that is a score, the kept state's score."""

    status: str
    trainer: object
    best_val_loss: float | None
    epochs: int
    steps: int
    best_step: int | None = None
    step_budget: int | None = None
    monitor: str = "val_loss"
    best_val_score: float | None = None


def fit(task, train_loader, val_loader, tc: TrainerConfig, *, run_dir=None, quiet: bool = False,
        ckpt_path: str | None = None, log=None, validate_first: bool = False) -> FitResult:
    """Train ``task`` (a LightningModule) and leave it holding its best state.

    - Early stopping and the best state follow ``val_loss`` on ``val_loader`` (or the
      task's ``monitor``, e.g. a :class:`~neuroconv.engine.tasks.SupervisedTask`'s
      ``val_score``); without a validation loader the last state is kept and no early
      stopping happens.
    - A non-finite training loss stops the run (the NaN guard of :class:`TrainTask`):
      the best state so far is restored and ``status`` says why; with no good state at all
      :class:`NonFiniteLossError` is raised.
    - ``run_dir``: checkpoints and logs there (``ckpt_path`` resumes from a checkpoint;
      when the best state came before the resume, it is read back from ``best.ckpt``).
    - ``validate_first``: the state before any training competes too (a model that
      starts at a fitted solution, e.g. a baseline's, keeps it when training does not
      improve the validation loss).
    """
    monitor = getattr(task, "monitor", ("val_loss", "min"))
    keeper = BestState(monitor)
    validate = val_loader is not None
    with quiet_lightning(quiet or tc.progress == "none"):
        trainer = make_trainer(tc, run_dir, quiet=quiet, extra_callbacks=[keeper] if validate else [],
                               validate=validate, monitor=monitor)
        status = "completed"
        if validate_first and validate:
            trainer.validate(task, val_loader, verbose=False)
            if keeper.state is not None:  # the state before training competes in early stopping too
                for cb in trainer.early_stopping_callbacks:
                    cb.best_score = torch.tensor(keeper.best)
        try:
            trainer.fit(task, train_loader, val_loader, ckpt_path=ckpt_path, weights_only=True)
        except NonFiniteLossError as e:
            status = f"stopped: {e}"
            if log:
                log(f"error: {e}")
    best = keeper.best if keeper.state is not None else None
    loss = keeper.loss if keeper.state is not None else None
    ckpt = trainer.checkpoint_callback if run_dir is not None and not quiet else None
    disk_score = None
    if ckpt is not None and ckpt.best_model_score is not None and Path(ckpt.best_model_path).is_file():
        disk_score = float(ckpt.best_model_score)
    if disk_score is not None and validate and (best is None or keeper.better(disk_score)):
        state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        task.load_state_dict(state)
        best = disk_score
        loss = disk_score if monitor[0] == "val_loss" else None
    elif keeper.state is not None:
        task.load_state_dict(keeper.state)
    elif status != "completed" and (validate or trainer.global_step == 0):
        raise NonFiniteLossError(status.removeprefix("stopped: "))
    epochs, steps = trainer.current_epoch, trainer.global_step
    last = Path(run_dir) / "checkpoints" / "last.ckpt" if run_dir is not None else None
    if last is not None and last.is_file():  # a spawned DDP worker's counters
        meta = torch.load(last, map_location="cpu", weights_only=True)
        epochs, steps = max(epochs, meta["epoch"] + 1), max(steps, meta["global_step"])
    score = None if monitor[0] == "val_loss" else best  # monitoring the loss, ``loss`` is ``best``
    return FitResult(status, trainer, loss, epochs, steps, keeper.step, monitor=monitor[0], best_val_score=score)


@torch.no_grad()
def predict(net: torch.nn.Module, loader, method: str = "forward", n: int | None = None):
    """Outputs of ``net`` (or of its ``method``, e.g. ``"features"``) over ``loader``,
    as a numpy array (float32, or float64 when the net computes in float64) in dataset
    order when batches carry ``"index"``, else in loader order."""
    import numpy as np

    net.eval()
    fn = getattr(net, method) if method != "forward" else net
    device = next(net.parameters()).device
    outs, order = [], []
    for batch in loader:
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) and k != "index" else v) for k, v in batch.items()}
        o = fn(batch).detach()
        outs.append((o if o.dtype == torch.float64 else o.float()).cpu().numpy())  # float64 stays float64
        if "index" in batch:
            order.append(np.asarray(batch["index"]))
    out = np.concatenate(outs)
    if order:
        idx = np.concatenate(order)
        sorted_out = np.empty_like(out)
        sorted_out[idx] = out
        return sorted_out
    return out


# --------------------------------------------------------------------------- export
def export_model(model: torch.nn.Module, run_dir, extra: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``model_config.json`` (``model.config`` + extra)."""
    run_dir = Path(run_dir)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = atomic_save_safetensors(run_dir / "model.safetensors", state,
                                   metadata={"format": "pt", "neuroconv": __version__})
    atomic_write_json(run_dir / "model_config.json",
                      {"neuroconv_version": __version__, "model": type(model).__name__,
                       "config": model.config, **(extra or {})})
    return path


def read_export(run_dir, hint: str, map_location: str | torch.device = "cpu") -> tuple[dict, dict]:
    """``(model_config.json contents, weights)`` of a run folder's exported model.

    Nothing is unpickled: weights come from safetensors, the config from JSON. ``hint``
    ends the error message when the files are missing (which command writes them).
    """
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    cfg_path, w_path = run_dir / "model_config.json", run_dir / "model.safetensors"
    if not cfg_path.is_file() or not w_path.is_file():
        raise FileNotFoundError(
            f"{run_dir} holds no exported model: expected {cfg_path.name} and {w_path.name} there. {hint}"
        )
    return json.loads(cfg_path.read_text()), load_file(str(w_path), device=str(map_location))
