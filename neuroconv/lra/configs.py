"""The LRA experiment configs: typed sections, and the files in ``configs/lra/*.yaml``.

A config has ``task``, ``source`` (where the values come from), ``data`` (loader
arguments), ``model`` (the shared :class:`neuroconv.ModelConfig` plus the task's inputs
and outputs), ``pair_head`` (Retrieval), ``lm`` (WikiText-103), ``generate`` (offline
ListOps/Pathfinder generator arguments) and ``train`` (the engine's
:class:`~neuroconv.engine.config.TrainerConfig`, the same keys as every other job, plus
``drop_last`` and ``eval_batch_size``). Parsing, dotted flags and messages come from
:mod:`neuroconv.engine.config`; files are read with ``yaml.safe_load`` only. Optional
keys left ``null`` are not passed on (the loaders and layers use their own defaults).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from neuroconv.engine.config import JobParser, TrainerConfig
from neuroconv.model import ModelConfig

__all__ = ["LRAConfig", "LRAData", "LRAModel", "PairHeadConfig", "LMConfig",
           "GenerateConfig", "LRATrainConfig", "lra_config_names", "lra_config_path", "load_lra_config",
           "lra_parser", "model_kwargs", "drop_none", "TASKS"]

#: every task ``neuroconv lra`` trains (config file of the same name)
TASKS = ("listops", "text", "retrieval", "image", "scifar", "pathfinder", "pathx", "wikitext103")


@dataclass
class LRAData:
    """Loader arguments (null: the loader's default; each task reads its own keys).

    Args:
        max_length: Longest token sequence, <eos> included (listops, text, retrieval).
        append_eos: End every sequence with <eos>.
        grayscale: image: grayscale (LRA Image) or colour (sCIFAR).
        tokenize: image/pathfinder: pixel ids 0-255 instead of floats.
        val_fraction: Fraction of the training split held out for validation (image,
            pathfinder, text).
        test_fraction: Fraction held out for test (pathfinder).
        resolution: Pathfinder image size (32, 64, 128).
        difficulty: Pathfinder difficulty: easy, intermediate, hard.
        seed: Seed of the split (pathfinder; text's validation split).
        validation: text: "train" carves validation from the training reviews (seeded, the
            default, so the test score is not chosen on the test set); "test" validates on
            the test reviews as the LRA release does (the paper's protocol).
        seq_len: wikitext103: tokens per window.
        max_vocab: wikitext103: keep this many most frequent words (null: all).
    """

    max_length: Optional[int] = None
    append_eos: Optional[bool] = None
    grayscale: Optional[bool] = None
    tokenize: Optional[bool] = None
    val_fraction: Optional[float] = None
    test_fraction: Optional[float] = None
    resolution: Optional[int] = None
    difficulty: Optional[str] = None
    seed: Optional[int] = None
    validation: Optional[Literal["train", "test"]] = None
    seq_len: Optional[int] = None
    max_vocab: Optional[int] = None


@dataclass
class LRAModel(ModelConfig):
    """The backbone (every key of :class:`neuroconv.ModelConfig`) with the task's inputs and
    outputs (:class:`neuroconv.SequenceModel` arguments).

    Args:
        d_input: Float features per step (null: token ids).
        vocab_size: Token vocabulary (null: float features).
        l_max: Longest sequence the kernels cover.
        head: classification, lm or null (retrieval's pair head sits outside the model).
        d_output: Number of classes.
        pool: mean or last (classification).
    """

    d_input: Optional[int] = None
    vocab_size: Optional[int] = None
    l_max: int = 1024
    head: Optional[Literal["classification", "lm"]] = "classification"
    d_output: Optional[int] = None
    pool: Optional[Literal["mean", "last"]] = "mean"


@dataclass
class PairHeadConfig:
    """Retrieval's pair head.

    Args:
        pool: mean or last pooling per document.
        features: nli ([u, v, u*v, u-v]) or concat.
        activation: gelu or relu.
        n_classes: Classes.
    """

    pool: Literal["mean", "last"] = "mean"
    features: Literal["nli", "concat"] = "nli"
    activation: Literal["gelu", "relu"] = "gelu"
    n_classes: int = 2


@dataclass
class LMConfig:
    """Language model (wikitext103).

    Args:
        tie_embeddings: Share the input embedding and the output layer.
    """

    tie_embeddings: bool = True


@dataclass
class GenerateConfig:
    """Offline data generation (null: the generator's default).

    Args:
        n_train: Generated ListOps training examples.
        n_val: Generated ListOps validation examples.
        n_test: Generated ListOps test examples.
        min_length: ListOps lengths strictly above this.
        max_length: ListOps lengths strictly below this.
        max_depth: Deepest ListOps nesting.
        max_args: Most arguments per ListOps operator.
        n_images: Generated Pathfinder images (split 80/10/10).
        seed: Generator seed.
    """

    n_train: Optional[int] = None
    n_val: Optional[int] = None
    n_test: Optional[int] = None
    min_length: Optional[int] = None
    max_length: Optional[int] = None
    max_depth: Optional[int] = None
    max_args: Optional[int] = None
    n_images: Optional[int] = None
    seed: Optional[int] = None


@dataclass
class LRATrainConfig(TrainerConfig):
    """The training loop (the engine's keys), with the LRA's run defaults.

    Args:
        drop_last: Drop the last incomplete training batch.
        eval_batch_size: Batch size for validation and test (null: batch_size).
    """

    patience: int = 0  # the authors train for a fixed number of epochs
    precision: str = "32-true"
    devices: int | str = 1
    gradient_clip: float = 0.0
    drop_last: bool = True
    eval_batch_size: Optional[int] = None


@dataclass
class LRAConfig:
    """One LRA, sCIFAR or WikiText-103 experiment.

    Args:
        task: listops, text, retrieval, image, scifar, pathfinder, pathx or wikitext103.
        source: Where the values come from (informational).
        data: Loader arguments.
        model: The model.
        pair_head: Retrieval's pair head.
        lm: The language model (wikitext103).
        generate: Offline generator arguments (listops, pathfinder, pathx).
        train: The training loop.
    """

    task: Literal["listops", "text", "retrieval", "image", "scifar", "pathfinder", "pathx", "wikitext103"] = "listops"
    source: str = ""
    data: LRAData = field(default_factory=LRAData)
    model: LRAModel = field(default_factory=LRAModel)
    pair_head: PairHeadConfig = field(default_factory=PairHeadConfig)
    lm: LMConfig = field(default_factory=LMConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    train: LRATrainConfig = field(default_factory=LRATrainConfig)


def drop_none(d: dict) -> dict:
    """A nested dict without its ``None`` leaves and without the sub-dicts that leaves empty."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = drop_none(v)
            if not v:
                continue
        if v is not None:
            out[k] = v
    return out


def model_kwargs(cfg: LRAConfig) -> dict:
    """The :class:`SequenceModel` keyword arguments of a config
    (:meth:`neuroconv.ModelConfig.model_args` with the model section's inputs and outputs)."""
    m = cfg.model
    return m.model_args(l_max=m.l_max, d_input=m.d_input, vocab_size=m.vocab_size, head=m.head,
                        d_output=m.d_output, pool=m.pool)


def _config_dir() -> Path:
    return Path(str(importlib.resources.files("neuroconv.configs"))) / "lra"


def lra_config_names() -> list[str]:
    """Names of the shipped LRA configs (file stems), sorted."""
    return sorted(p.stem for p in _config_dir().glob("*.yaml"))


def lra_config_path(name) -> Path:
    """Path of the shipped config ``name`` (e.g. ``"listops"``, ``"listops_cpu"``), or of a YAML file."""
    p = Path(name)
    if p.is_file():
        return p
    if p.suffix in (".yaml", ".yml"):
        raise FileNotFoundError(f"config file {p} does not exist.")
    path = _config_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"no LRA config named {str(name)!r}; available: {lra_config_names()}.")
    return path


def lra_parser() -> JobParser:
    """The command line of ``neuroconv lra``."""
    return JobParser(
        LRAConfig, prog="neuroconv lra", section="train", resolve_config=lra_config_path,
        description=("Train on a long-range-arena task, sequential CIFAR or WikiText-103 with the authors' long-conv "
                     "hyperparameters (configs/lra/<task>.yaml), keep the state with the lowest validation loss and "
                     "evaluate it on the test split. Writes a run folder with metrics.json, checkpoints, exported "
                     "weights and kernel plots."),
    )


def load_lra_config(name_or_path, overrides: dict | None = None) -> LRAConfig:
    """An LRA config: a shipped name (see :func:`lra_config_names`) or a YAML path, plus
    ``{dotted key: value}`` overrides checked like command-line flags."""
    return lra_parser().load(lra_config_path(name_or_path), overrides)


def replace(cfg: LRAConfig, **sections) -> LRAConfig:
    """A copy of ``cfg`` with whole sections replaced."""
    return dataclasses.replace(cfg, **sections)
