"""Shared training machinery: Lightning trainers, run folders, exported weights.

A run folder holds::

    RUN/
      config.yaml            the resolved experiment config
      checkpoints/last.ckpt  Lightning checkpoint (resume); best.ckpt (lowest val_loss)
      model.safetensors      exported weights
      model_config.json      what rebuilds the model (load_pretrained reads it)
      metrics.json           final metrics
      logs/                  CSV logs (and TensorBoard, when installed)
      plots/                 loss curves, learned kernels (and confusion matrices)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import json
import logging
import os
import warnings
from pathlib import Path

import lightning as L
import torch
import yaml

from neuroconv import __version__

from .config import TrainerConfig

__all__ = ["make_trainer", "quiet_lightning", "read_export", "new_run_dir", "find_run_dir", "export_model", "load_pretrained",
           "write_json", "write_yaml"]


def write_json(path: Path, obj) -> None:
    """Atomic JSON write."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def write_yaml(path: Path, obj) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(obj, sort_keys=False))
    os.replace(tmp, path)


def new_run_dir(out: str, name: str, prefix: str) -> Path:
    """``out/name`` if a name is given, else ``out/<prefix>-<UTC timestamp>``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    run = Path(out) / (name or f"{prefix}-{stamp}")
    run.mkdir(parents=True, exist_ok=True)
    return run


def find_run_dir(out: str, name: str, prefix: str) -> Path:
    """The run to resume: ``out/name``, or the newest ``out/<prefix>-*`` with a checkpoint."""
    if name:
        run = Path(out) / name
        if not (run / "checkpoints" / "last.ckpt").is_file():
            raise FileNotFoundError(f"cannot resume: {run}/checkpoints/last.ckpt does not exist.")
        return run
    runs = sorted(p for p in Path(out).glob(f"{prefix}-*") if (p / "checkpoints" / "last.ckpt").is_file())
    if not runs:
        raise FileNotFoundError(
            f"cannot resume: no run folder {out}/{prefix}-* holds checkpoints/last.ckpt; "
            "start a new run without resume, or give the run's name."
        )
    return runs[-1]


@contextlib.contextmanager
def quiet_lightning(enabled: bool = True):
    """Silence Lightning's info messages and its routine warnings inside the block
    (used for the many small fits of cross-validation and the estimators)."""
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
    """``"auto"`` -> ``"bf16-mixed"`` when training runs on a CUDA GPU with bf16 support,
    else ``"32-true"``; any other value is passed to Lightning unchanged."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"


def _devices(value: str):
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


def make_trainer(tc: TrainerConfig, run_dir: Path | None, *, quiet: bool = False,
                 checkpoint: bool = True, extra_callbacks=()) -> L.Trainer:
    """A Lightning trainer configured from ``tc``.

    With ``run_dir``: checkpoints (last + best on ``val_loss``), CSV logs and TensorBoard
    logs when tensorboard is installed. ``quiet``: no progress bar, no logs, no
    checkpoints (used inside cross-validation and the scikit-learn estimators).
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    callbacks = list(extra_callbacks)
    loggers = []
    use_ckpt = checkpoint and run_dir is not None and not quiet
    if use_ckpt:
        callbacks.append(ModelCheckpoint(dirpath=Path(run_dir) / "checkpoints", filename="best",
                                         monitor="val_loss", mode="min", save_last=True,
                                         save_top_k=1, enable_version_counter=False))
    if tc.patience > 0:
        callbacks.append(EarlyStopping(monitor="val_loss", mode="min", patience=tc.patience,
                                       check_finite=True))
    progress = tc.progress if not quiet else "none"
    if progress not in ("rich", "tqdm", "none"):
        raise ValueError(f"`progress` must be 'rich', 'tqdm' or 'none'; got {progress!r}.")
    if progress == "rich" and importlib.util.find_spec("rich") is not None:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(_without_version(RichProgressBar)(leave=True))
    elif progress != "none":
        from lightning.pytorch.callbacks import TQDMProgressBar

        callbacks.append(_without_version(TQDMProgressBar)())
    if run_dir is not None and not quiet:
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
            use_distributed_sampler=False,  # ChannelSetBatchSampler shards batches itself
            log_every_n_steps=5,
            num_sanity_val_steps=0,
            default_root_dir=str(run_dir) if run_dir is not None else None,
        )


def export_model(model: torch.nn.Module, run_dir: Path, extra: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``model_config.json`` (``model.config`` + extra)."""
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = run_dir / ".model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt", "neuroconv": __version__})
    os.replace(tmp, run_dir / "model.safetensors")
    write_json(run_dir / "model_config.json",
               {"neuroconv_version": __version__, "model": type(model).__name__,
                "config": model.config, **(extra or {})})
    return run_dir / "model.safetensors"


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


def load_pretrained(run_dir, map_location: str | torch.device = "cpu"):
    """Load the exported model of a ``neuroconv pretrain`` run folder
    (``model.safetensors`` + ``model_config.json``); returns it in eval mode."""
    from .models import BrainModel

    info, state = read_export(run_dir, "Pass the folder that `neuroconv pretrain` printed at the end "
                                       "of its run.", map_location)
    kinds = {"BrainModel": BrainModel}
    if info.get("model") not in kinds:
        raise ValueError(f"{run_dir}/model_config.json: unknown model type {info.get('model')!r}.")
    model = kinds[info["model"]].from_config(info["config"])
    model.load_state_dict(state)
    return model.to(map_location).eval()
