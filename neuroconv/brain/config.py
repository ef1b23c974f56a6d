"""Experiment configs: dataclasses, YAML files and command-line overrides.

One YAML file describes one experiment (``configs/*.yaml``, shipped with the package):
the data, the model, and the ``pretrain`` and ``decode`` jobs. Every key can be
overridden from the command line as a dotted flag, e.g.
``neuroconv pretrain --config abide --model.d_model 64 --pretrain.max_epochs 3``.
Values on the command line are parsed as YAML scalars/lists (``yaml.safe_load``), then
checked against the field's type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ExperimentConfig",
    "DataConfig",
    "ModelConfig",
    "PretrainConfig",
    "DecodeConfig",
    "load_config",
    "builtin_configs",
    "flatten",
    "apply_overrides",
    "to_dict",
]


@dataclass
class SourceConfig:
    """One input data set, turned into a sequence store by a pipeline before training.

    ``pipeline`` names a pipeline (``simulate_eeg``, ``simulate_fmri``, ``eeg``, ``fmri``,
    ``abide``, ``eegbci``) and ``args`` its keyword arguments (paths are relative to the
    current directory). ``store`` is where the sequence store goes. Reruns skip the
    recordings already done.
    """

    pipeline: str = "simulate_eeg"
    args: dict = field(default_factory=dict)
    store: str = ""


@dataclass
class DataConfig:
    """Where sequences come from and how they are cut into windows.

    ``stores``: existing sequence stores. ``sources``: data sets to preprocess into
    stores first (both may be given). ``window_seconds``/``stride_seconds`` cut fixed
    windows for pretraining (converted with each recording's sampling rate; the model
    sees at most ``max_len`` steps, and its kernels cover ``max_len`` lags, so a
    pretrained model can decode whole recordings up to that length). ``normalize``: ``"recording"`` z-scores each channel
    with its recording's own mean and sd; ``"none"`` leaves the data as stored.
    ``split_by``: the manifest column that keeps groups (subjects) apart between the
    training and validation sets.
    """

    stores: list = field(default_factory=list)
    sources: list = field(default_factory=list)  # list of SourceConfig dicts
    window_seconds: float = 4.0
    stride_seconds: float = 2.0
    max_len: int = 1024
    normalize: str = "recording"
    split_by: str = "subject"
    val_fraction: float = 0.2
    batch_size: int = 32
    num_workers: int = 0


@dataclass
class ModelConfig:
    """The backbone (:class:`neuroconv.SequenceModel`) and its input side.

    ``layer``: ``longconv``, ``s4d``, ``butterfly`` or ``attention``. ``lam``,
    ``smooth_width``, ``kernel_dropout``, ``kernel_lr`` and ``kernel_init`` configure
    long-conv kernels; ``channels`` kernels per feature. ``time_embedding``: add a
    seconds-based time embedding and a sampling-rate embedding, so recordings with
    different TRs or sampling rates can be mixed.
    """

    layer: str = "longconv"
    d_model: int = 64
    n_layers: int = 4
    channels: int = 1
    bidirectional: bool = False
    dropout: float = 0.1
    norm: str = "layer"
    prenorm: bool = True
    lam: float = 0.003
    smooth_width: int = 3
    kernel_dropout: float = 0.1
    kernel_lr: float = 1e-3
    kernel_init: str = "geometric"
    n_heads: int = 4
    time_embedding: bool = True


@dataclass
class TrainerConfig:
    """Lightning trainer settings shared by pretraining and decoding."""

    max_epochs: int = 20
    max_steps: int = -1
    max_time: str = ""  # "DD:HH:MM:SS"; empty: no limit
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    precision: str = "auto"  # auto: bf16-mixed on GPUs that support it, else 32-true; or e.g. 16-mixed
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    seed: int = 0
    patience: int = 5  # early stopping on the validation loss; 0 turns it off
    gradient_clip: float = 1.0
    accumulate_grad_batches: int = 1
    limit_train_batches: float = 1.0
    progress: str = "rich"  # rich, tqdm or none


@dataclass
class PretrainConfig(TrainerConfig):
    """Self-supervised pretraining. ``objective``: ``next_step`` (causal next-step
    prediction) or ``masked`` (masked-span reconstruction, with ``mask_ratio`` of the
    steps hidden in spans of ``span_seconds``). ``loss``: ``l1`` or ``mse``."""

    objective: str = "next_step"
    loss: str = "mse"
    mask_ratio: float = 0.15
    span_seconds: float = 0.5
    out: str = "runs"
    name: str = ""
    resume: bool = False


@dataclass
class DecodeConfig(TrainerConfig):
    """Supervised decoding with cross-validation.

    ``target``: a manifest column (labels per recording, e.g. ``dx_group``) or
    ``events`` (labels per window around events, e.g. ``T1``/``T2``). ``event_labels``
    restricts and orders the event classes; ``tmin``/``tmax`` (s) cut event windows.
    ``cv``: ``group_kfold`` (stratified, groups from ``group_by``) or ``leave_group_out``
    (e.g. ``group_by: site``). ``models``: neural models and baselines to compare on the
    same folds: ``scratch`` (fresh backbone), ``finetune`` (the pretrained backbone,
    trained end to end) and ``probe`` (a linear probe: logistic regression on the frozen
    pretrained backbone's pooled features) — both need ``pretrained``, a run folder —
    ``attention`` (a Transformer trained from scratch),
    ``connectivity`` (fMRI), ``csp_lda`` and ``bandpower`` (EEG).
    """

    target: str = "events"
    query: str = ""  # pandas query on the manifest selecting recordings, e.g. "imagery == True"
    task: str = "auto"  # classification, regression, or auto (from the target's values)
    event_labels: list = field(default_factory=list)
    tmin: float = 0.0
    tmax: float = 4.0
    cv: str = "group_kfold"
    n_splits: int = 5
    group_by: str = "subject"
    models: list = field(default_factory=lambda: ["scratch"])
    pretrained: str = ""
    batch_size: int = 16
    connectivity_kind: str = "tangent"
    out: str = "runs"
    name: str = ""


@dataclass
class ExperimentConfig:
    name: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


def _type_hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp, key: str) -> Any:
    """Check/convert ``value`` to the field type ``tp``; raise a clear error otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"config key `{key}`: {value!r} does not fit {tp}.")
    if tp is type(None):
        if value is None:
            return None
        raise ValueError(f"config key `{key}` must be null; got {value!r}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"config key `{key}` must be true or false; got {value!r}.")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config key `{key}` must be an integer; got {value!r}.")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"config key `{key}` must be a number; got {value!r}.")
        return float(value)
    if tp is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)):
            raise ValueError(f"config key `{key}` must be a string; got {value!r}.")
        return str(value)
    if tp in (list, dict) or typing.get_origin(tp) in (list, dict):
        base = typing.get_origin(tp) or tp
        if base is list and isinstance(value, (str, int, float)) and value != "":
            value = [value]
        if base is list and value in (None, ""):
            value = []
        if not isinstance(value, base):
            raise ValueError(f"config key `{key}` must be a {base.__name__}; got {value!r}.")
        return value
    return value


def _from_dict(cls, data: dict | None, prefix: str = ""):
    data = dict(data or {})
    hints = _type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data.pop(f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = _from_dict(hints[f.name], value, key + ".")
        else:
            kwargs[f.name] = _coerce(value, hints[f.name], key)
    if data:
        known = ", ".join(f.name for f in dataclasses.fields(cls))
        raise ValueError(
            f"unknown config key(s) {', '.join(prefix + k for k in data)}; "
            f"known keys{' under ' + prefix.rstrip('.') if prefix else ''}: {known}."
        )
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    """Plain nested dict (YAML/JSON-safe) of a config dataclass."""
    return dataclasses.asdict(cfg)


def builtin_configs() -> dict[str, Path]:
    """Name -> path of the experiment configs shipped in ``neuroconv.configs``."""
    root = resources.files("neuroconv.configs")
    return {p.name[:-5]: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def load_config(name_or_path: str | Path | None = None) -> ExperimentConfig:
    """Load a config by built-in name (``default``, ``abide``, ``eegbci``) or YAML path."""
    if name_or_path in (None, ""):
        name_or_path = "default"
    path = Path(name_or_path)
    if not path.suffix:
        configs = builtin_configs()
        if str(name_or_path) not in configs:
            raise FileNotFoundError(
                f"no config named {name_or_path!r}; built-in configs: {sorted(configs)}, "
                "or pass the path of a YAML file."
            )
        path = configs[str(name_or_path)]
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist.")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must hold a mapping at its top level.")
    try:
        return _from_dict(ExperimentConfig, data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def flatten(cfg, sections: tuple[str, ...] | None = None) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (current value, type) for every leaf of ``cfg``."""
    out = {}

    def walk(obj, prefix):
        hints = _type_hints(type(obj))
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                walk(v, prefix + f.name + ".")
            else:
                out[prefix + f.name] = (v, hints[f.name])

    walk(cfg, "")
    if sections:
        out = {k: v for k, v in out.items() if k.split(".")[0] in sections or "." not in k}
    return out


def apply_overrides(cfg, overrides: dict[str, Any]):
    """Set dotted keys (values already parsed) on ``cfg`` in place; returns ``cfg``."""
    leaves = flatten(cfg)
    for key, value in overrides.items():
        if key not in leaves:
            raise ValueError(f"unknown config key `{key}`; see --help for the list of keys.")
        *parents, last = key.split(".")
        obj = cfg
        for p in parents:
            obj = getattr(obj, p)
        setattr(obj, last, _coerce(value, leaves[key][1], key))
    return cfg
