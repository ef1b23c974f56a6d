"""Training and evaluation for the LRA tasks, sCIFAR and WikiText-103 (``neuroconv lra``).

This module only wires the LRA data into the shared training machinery of
:mod:`neuroconv.brain`: :class:`~neuroconv.brain.tasks.SupervisedTask` (AdamW over
:func:`neuroconv.param_groups`, kernel learning rate without weight decay, linear warm-up
then cosine decay over the run, NaN guard) and :func:`~neuroconv.brain.runner.make_trainer`
(checkpoints ``last``/``best`` on ``val_loss``, early stopping, progress bar, CSV and
TensorBoard logs).

Run config
----------
A run config is a shipped ``configs/lra/<name>.yaml`` (:func:`neuroconv.lra.load_lra_config`)
with :data:`RUN_DEFAULTS` filled in where the file is silent, then edited by
:func:`lra_run_config`: ``--layer`` swaps the sequence layer (translating
``model.layer_args`` with :func:`neuroconv.lra.models.layer_args_for`), then dotted
overrides set existing keys (``{"train.epochs": 2, "model.d_model": 32}``). How the
sections are used:

- ``data``: keyword arguments of the task's loader (:func:`neuroconv.lra.lra_dataset`;
  for ``wikitext103``: ``seq_len`` and ``max_vocab``, see :mod:`neuroconv.lra.wikitext`).
- ``model``: :class:`neuroconv.SequenceModel` arguments. ``d_input``/``vocab_size`` and
  ``d_output`` must agree with the data (an error says which flag to set).
- ``pair_head`` (Retrieval): :class:`neuroconv.lra.models.PairClassifier`.
- ``optimizer``: ``lr`` and ``weight_decay`` (AdamW, betas (0.9, 0.999), the only ones
  supported); kernel parameters use ``model.layer_args.kernel_args.lr``.
- ``scheduler``: ``warmup_steps`` (linear warm-up, optimizer steps). The cosine decays
  over the steps the run actually takes (``train.epochs`` or ``train.max_steps``);
  ``total_steps`` records the authors' value and cannot be overridden.
- ``train``: ``batch_size``, ``epochs``, ``accumulate_grad_batches``,
  ``gradient_clip_val``, ``drop_last``, ``seed`` and the run settings of
  :data:`RUN_DEFAULTS`.
- ``generate`` (ListOps, Pathfinder): arguments of the offline generator used by
  :func:`generate_data`.

Run folder (``out/name``, default ``out/<task>-<layer>-<UTC time>``)::

    config.yaml           the resolved run config
    checkpoints/          last.ckpt, best.ckpt (lowest val_loss); test metrics use best
    model.safetensors     exported weights (+ model_config.json; load_lra_model reads them)
    metrics.json          test (and val) accuracy and loss; perplexity for wikitext103;
                          parameters, steps, epochs, seconds
    logs/                 CSV (and TensorBoard) logs
    plots/                loss.png, kernels.png (learned long-conv kernels)
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .configs import load_lra_config
from .models import (
    LRA_LAYERS,
    LanguageModel,
    PairClassifier,
    SequenceClassifier,
    count_parameters,
    layer_args_for,
)
from .tokens import Batch

__all__ = ["RUN_DEFAULTS", "TASKS", "lra_run_config", "flatten_config", "batch_to_dict", "build_net",
           "evaluate_classifier", "generate_data", "run_lra"]

#: every task ``neuroconv lra`` trains (config file of the same name)
TASKS = ("listops", "text", "retrieval", "image", "scifar", "pathfinder", "pathx", "wikitext103")

#: run settings added to a config's ``train`` section where the file does not set them
RUN_DEFAULTS = {
    "max_steps": -1,          # stop after this many optimizer steps (-1: epochs decide)
    "max_time": "",           # "DD:HH:MM:SS" wall-clock limit; empty: none
    "patience": 0,            # early stopping on val_loss (epochs); 0: off, as the authors
    "precision": "32-true",   # Lightning precision, e.g. bf16-mixed on GPUs
    "accelerator": "auto",
    "devices": 1,
    "num_workers": 0,         # DataLoader workers
    "eval_batch_size": None,  # None: batch_size
    "limit_train_batches": 1.0,
    "progress": "rich",       # rich, tqdm or none
}

_NOT_OVERRIDABLE = {
    "scheduler.total_steps": "the cosine schedule spans the run itself; set train.epochs or train.max_steps",
    "scheduler.name": "only cosine_warmup is supported",
    "optimizer.name": "only adamw is supported",
    "optimizer.betas": "SupervisedTask uses AdamW's default betas (0.9, 0.999)",
    "task": "pass --task (or --config) instead",
    "source": "it records where the values come from",
}


# --------------------------------------------------------------------------- config


def flatten_config(cfg: dict, prefix: str = "") -> dict:
    """Dotted key -> value for every leaf of a nested config (lists are leaves)."""
    out = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v
    return out


def _coerce(key: str, old, new):
    """``new`` checked against the type of the config's current value ``old``."""
    if old is None or new is None:
        return new
    if isinstance(old, bool):
        if not isinstance(new, bool):
            raise ValueError(f"config key `{key}` must be true or false; got {new!r}.")
        return new
    if isinstance(old, int):
        if isinstance(new, bool) or not isinstance(new, int):
            raise ValueError(f"config key `{key}` must be an integer; got {new!r}.")
        return new
    if isinstance(old, float):
        if isinstance(new, bool) or not isinstance(new, (int, float)):
            raise ValueError(f"config key `{key}` must be a number; got {new!r}.")
        return float(new)
    if isinstance(old, str):
        if isinstance(new, (dict, list)):
            raise ValueError(f"config key `{key}` must be a string; got {new!r}.")
        return str(new)
    if isinstance(old, list):
        return new if isinstance(new, list) else [new]
    return new


def _set(cfg: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    node = cfg
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


def lra_run_config(task: str | None = None, config=None, *, layer: str | None = None,
                   overrides: dict | None = None) -> dict:
    """The resolved run config (see the module doc).

    Parameters:
        task: a name in :data:`TASKS`; with ``config`` unset, ``configs/lra/<task>.yaml``.
        config: a shipped config name (e.g. ``"listops_cpu"``) or a YAML path; its
            ``task`` must match ``task`` when both are given.
        layer: sequence layer to use instead of the config's (``longconv``, ``s4d``,
            ``butterfly``, ``attention``, ``gated``); ``overrides["model.layer"]`` does
            the same.
        overrides: dotted key -> value for keys the config holds (values already parsed,
            e.g. by ``yaml.safe_load``).
    """
    if task is None and config is None:
        raise ValueError(f"give a task (one of {list(TASKS)}) or a config.")
    if task is not None and task not in TASKS:
        raise ValueError(f"`task` must be one of {list(TASKS)}; got {task!r}.")
    cfg = copy.deepcopy(load_lra_config(config if config is not None else task))
    cfg_task = cfg.get("task")
    if cfg_task not in TASKS:
        raise ValueError(f"config {config or task!r}: `task` must be one of {list(TASKS)}; got {cfg_task!r}.")
    if task is not None and cfg_task != task:
        raise ValueError(f"config {config!r} is for task {cfg_task!r}, not {task!r}; drop --task or pick "
                         "a config of that task.")
    for section in ("data", "model", "optimizer", "scheduler", "train"):
        if not isinstance(cfg.get(section), dict):
            raise ValueError(f"config {config or task!r}: missing the `{section}` section.")
    for k, v in RUN_DEFAULTS.items():
        cfg["train"].setdefault(k, v)

    overrides = dict(overrides or {})
    new_layer = overrides.pop("model.layer", None)
    if layer is not None and new_layer is not None and layer != new_layer:
        raise ValueError(f"--layer {layer} and --model.layer {new_layer} disagree; give one.")
    new_layer = layer or new_layer
    if new_layer is not None and new_layer != cfg["model"].get("layer"):
        if new_layer not in LRA_LAYERS:
            raise ValueError(f"`layer` must be one of {list(LRA_LAYERS)}; got {new_layer!r}.")
        m = cfg["model"]
        m["layer_args"] = layer_args_for(new_layer, m.get("layer_args") or {}, m["d_model"])
        m["layer"] = new_layer
    elif new_layer is not None:
        cfg["model"]["layer"] = new_layer

    leaves = flatten_config(cfg)
    for key, value in overrides.items():
        if key in _NOT_OVERRIDABLE:
            raise ValueError(f"config key `{key}` cannot be overridden: {_NOT_OVERRIDABLE[key]}.")
        if key not in leaves:
            section = key.split(".")[0]
            near = sorted(k for k in leaves if k.split(".")[0] == section)
            raise ValueError(
                f"config key `{key}` does not exist in the {cfg_task} config; keys"
                f"{' under ' + section if near else ''}: {', '.join(near or sorted(leaves))}."
            )
        _set(cfg, key, _coerce(key, leaves[key], value))
    _check_supported(cfg)
    return cfg


def _check_supported(cfg: dict) -> None:
    opt, sch, tr = cfg["optimizer"], cfg["scheduler"], cfg["train"]
    if opt.get("name", "adamw") != "adamw":
        raise ValueError(f"optimizer.name must be adamw; got {opt.get('name')!r}.")
    if list(opt.get("betas", [0.9, 0.999])) != [0.9, 0.999]:
        raise ValueError(f"optimizer.betas must be [0.9, 0.999] (AdamW's default); got {opt.get('betas')!r}.")
    if sch.get("name", "cosine_warmup") != "cosine_warmup":
        raise ValueError(f"scheduler.name must be cosine_warmup; got {sch.get('name')!r}.")
    for key, minimum in (("batch_size", 1), ("epochs", 1), ("accumulate_grad_batches", 1)):
        v = tr.get(key, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError(f"train.{key} must be an integer >= {minimum}; got {v!r}.")
    if tr.get("progress") not in ("rich", "tqdm", "none"):
        raise ValueError(f"train.progress must be rich, tqdm or none; got {tr.get('progress')!r}.")


# --------------------------------------------------------------------------- data


def batch_to_dict(batch: Batch) -> dict:
    """A phase-1 :class:`~neuroconv.lra.tokens.Batch` as the dict the networks and
    :class:`~neuroconv.brain.tasks.SupervisedTask` read: ``{"x", "mask", "lengths",
    "y"}``. ``mask`` is None when no row is padded (same result, less work)."""
    full = bool((batch.lengths == batch.inputs.shape[1]).all())
    return {"x": batch.inputs, "mask": None if full else batch.mask, "lengths": batch.lengths,
            "y": batch.labels}


class _DictCollate:
    """Picklable collate for DataLoader workers: the dataset's collate, as a dict."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, items):
        return batch_to_dict(self.collate(items))


class _LMCollate:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items):
        from .wikitext import collate_lm

        return collate_lm(items, self.pad_id)


def _datasets(cfg: dict, data_dir, log):
    """``({split: dataset}, info)`` for the config's task."""
    task, data = cfg["task"], dict(cfg["data"])
    if task == "wikitext103":
        from .wikitext import wikitext103

        unknown = set(data) - {"seq_len", "max_vocab"}
        if unknown:
            raise ValueError(f"wikitext103: unknown data key(s) {sorted(unknown)}; known: seq_len, max_vocab.")
        vocab, sets = wikitext103(data_dir, seq_len=int(data.get("seq_len", 1024)),
                                  max_vocab=data.get("max_vocab"), log=log)
        info = {"vocab_size": len(vocab), "d_input": None, "n_classes": None, "l_max": sets["train"].seq_len,
                "pairs": False, "collate": _LMCollate(vocab.eos_id)}
        return sets, info
    from .data import lra_dataset

    try:
        sets = {s: lra_dataset(task, data_dir, s, **data) for s in ("train", "val", "test")}
    except TypeError as e:  # a data key the loader does not take
        raise ValueError(f"{task}: bad `data` section {data}: {e}") from None
    ds = sets["train"]
    for s, d in sets.items():
        if len(d) == 0:
            raise ValueError(f"{task}: the {s} split is empty ({d!r}); check the data folder {data_dir}.")
    info = {"vocab_size": ds.vocab_size, "d_input": ds.d_input, "n_classes": ds.n_classes, "l_max": ds.l_max,
            "pairs": ds.pairs, "collate": _DictCollate(ds.collate)}
    if log:
        log(f"{task}: {len(sets['train'])} train, {len(sets['val'])} val, {len(sets['test'])} test examples "
            f"from {data_dir}")
    return sets, info


def _check_model_vs_data(cfg: dict, info: dict) -> dict:
    """The model section, checked against the data; returns SequenceModel kwargs."""
    m = copy.deepcopy(cfg["model"])
    task = cfg["task"]
    if info["vocab_size"] is not None:
        if m.get("d_input") is not None or m.get("vocab_size") != info["vocab_size"]:
            if task == "wikitext103" and m.get("d_input") is None:
                m["vocab_size"] = info["vocab_size"]  # the vocabulary comes from the training file
            else:
                raise ValueError(
                    f"{task}: the data are token ids with a vocabulary of {info['vocab_size']}; set "
                    f"--model.d_input null --model.vocab_size {info['vocab_size']} (got d_input="
                    f"{m.get('d_input')!r}, vocab_size={m.get('vocab_size')!r})."
                )
    elif m.get("d_input") != info["d_input"]:
        raise ValueError(
            f"{task}: the data have {info['d_input']} float feature(s) per step; set --model.d_input "
            f"{info['d_input']} (got {m.get('d_input')!r})."
        )
    if info["n_classes"] is not None and not info["pairs"] and m.get("d_output") != info["n_classes"]:
        raise ValueError(f"{task}: {info['n_classes']} classes; set --model.d_output {info['n_classes']} "
                         f"(got {m.get('d_output')!r}).")
    if m.get("l_max", 0) < info["l_max"]:
        raise ValueError(f"{task}: sequences reach {info['l_max']} steps but model.l_max is {m.get('l_max')}; "
                         f"set --model.l_max {info['l_max']} or shorten the data.")
    return m


def build_net(cfg: dict, info: dict) -> tuple[torch.nn.Module, str]:
    """The network for ``cfg`` and the data ``info``; returns ``(net, kind)`` with
    ``kind`` the :class:`SupervisedTask` kind (``classification`` or ``lm``)."""
    m = _check_model_vs_data(cfg, info)
    if cfg["task"] == "wikitext103":
        return LanguageModel(m, tie_embeddings=bool(cfg.get("lm", {}).get("tie_embeddings", True))), "lm"
    if info["pairs"]:
        ph = dict(cfg.get("pair_head") or {})
        if ph.get("n_classes", info["n_classes"]) != info["n_classes"]:
            raise ValueError(f"{cfg['task']}: {info['n_classes']} classes; set --pair_head.n_classes "
                             f"{info['n_classes']}.")
        ph["n_classes"] = info["n_classes"]
        return PairClassifier(m, ph), "classification"
    return SequenceClassifier(m), "classification"


# --------------------------------------------------------------------------- generation


def generate_data(cfg: dict, out_dir, log=print) -> Path:
    """Write synthetic data for ``cfg`` (ListOps or Pathfinder/Path-X) into ``out_dir``
    with the arguments of its ``generate`` section; returns ``out_dir``.

    ListOps: ``generate`` holds :func:`neuroconv.lra.write_listops` arguments.
    Pathfinder: ``n_images``, ``seed`` (and ``images_per_folder``); resolution and
    difficulty come from the ``data`` section so the loader finds the images.
    """
    task, gen = cfg["task"], dict(cfg.get("generate") or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if task == "listops":
        from .listops import write_listops

        try:
            paths = write_listops(out_dir, **gen)
        except TypeError as e:
            raise ValueError(f"listops: bad `generate` section {gen}: {e}") from None
        log(f"generated ListOps in {out_dir} ({', '.join(p.name for p in paths.values())}) "
            f"in {time.time() - t0:.1f} s")
    elif task in ("pathfinder", "pathx"):
        from .pathfinder import write_pathfinder

        if "n_images" not in gen:
            raise ValueError(f"{task}: the config's `generate` section needs n_images (e.g. --generate.n_images).")
        data = cfg["data"]
        root = write_pathfinder(out_dir, gen.pop("n_images"), resolution=data.get("resolution", 32),
                                difficulty=data.get("difficulty", "hard"), **gen)
        log(f"generated Pathfinder images in {root} in {time.time() - t0:.1f} s")
    else:
        raise ValueError(f"only listops, pathfinder and pathx can be generated offline; got task {task!r}. "
                         "The other tasks read the released files (see `neuroconv lra --help`).")
    return out_dir


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate_classifier(net, loader, device=None) -> dict:
    """``{"loss": mean cross-entropy, "accuracy": fraction correct, "n": examples}`` of
    ``net`` over every batch of ``loader`` (example-weighted)."""
    was = net.training
    net.eval()
    device = device or next(net.parameters()).device
    loss, correct, n = 0.0, 0, 0
    for batch in loader:
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        out = net(batch).float()  # (B n_classes)
        y = batch["y"]
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(-1) == y).sum())
        n += int(y.shape[0])
    net.train(was)
    if n == 0:
        raise ValueError("evaluate_classifier: the loader yielded no examples.")
    return {"loss": loss / n, "accuracy": correct / n, "n": n}


class LRAExport(torch.nn.Module):
    """What :func:`~neuroconv.brain.runner.export_model` writes for an LRA network: its
    ``config`` and its state with tied tensors stored once (safetensors refuses shared
    storage); :func:`neuroconv.lra.models.load_lra_model` re-ties them."""

    def __init__(self, net):
        super().__init__()
        self.net, self.config = net, net.config

    def state_dict(self, *args, **kwargs):
        seen, out = set(), {}
        for k, v in self.net.state_dict().items():
            key = (v.data_ptr(), tuple(v.shape))
            if key in seen:
                continue
            seen.add(key)
            out[k] = v
        return out


# --------------------------------------------------------------------------- run


def _device_for(accelerator: str) -> torch.device:
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def run_lra(cfg: dict, data_dir, *, out="runs", name: str = "", generate: bool = False, log=print,
            argv: list | None = None) -> Path:
    """Train on the train split, keep the checkpoint with the lowest validation loss,
    evaluate it on the test split; returns the run folder (see the module doc).

    ``cfg``: a run config from :func:`lra_run_config`. ``generate``: when the data are
    missing, write them first with :func:`generate_data` (ListOps, Pathfinder).
    """
    import lightning as L

    from neuroconv.brain.config import TrainerConfig
    from neuroconv.brain.plots import plot_kernels, plot_losses
    from neuroconv.brain.runner import export_model, make_trainer, new_run_dir, quiet_lightning, write_json, \
        write_yaml
    from neuroconv.brain.tasks import NonFiniteLossError, SupervisedTask

    t_start = time.time()
    log = log or (lambda *a, **k: None)
    task, tr = cfg["task"], cfg["train"]
    data_dir = Path(data_dir).expanduser()
    if generate:
        try:
            _datasets(cfg, data_dir, log=None)
        except FileNotFoundError:
            generate_data(cfg, data_dir, log=log)
    sets, info = _datasets(cfg, data_dir, log=log)

    L.seed_everything(int(tr["seed"]), workers=True, verbose=False)
    net, kind = build_net(cfg, info)
    layer = cfg["model"].get("layer", "longconv")
    run_dir = new_run_dir(str(out), name, f"{task}-{layer}")
    write_yaml(run_dir / "config.yaml", cfg)
    n_params = count_parameters(net)
    log(f"model: {type(net).__name__} with {layer} layers, {n_params:,} parameters; run folder {run_dir}")

    bs = int(tr["batch_size"])
    ebs = int(tr.get("eval_batch_size") or bs)
    workers = int(tr.get("num_workers", 0))
    g = torch.Generator().manual_seed(int(tr["seed"]))

    def loader(ds, shuffle, batch_size, drop_last=False):
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=g,
                          collate_fn=info["collate"], num_workers=workers, persistent_workers=workers > 0)

    drop_last = bool(tr.get("drop_last", True)) and len(sets["train"]) >= bs
    train_dl = loader(sets["train"], True, bs, drop_last)
    val_dl, test_dl = loader(sets["val"], False, ebs), loader(sets["test"], False, ebs)

    opt, sch = cfg["optimizer"], cfg["scheduler"]
    tc = TrainerConfig(
        max_epochs=int(tr["epochs"]), max_steps=int(tr["max_steps"]), max_time=str(tr["max_time"] or ""),
        lr=float(opt["lr"]), weight_decay=float(opt["weight_decay"]), warmup_steps=int(sch["warmup_steps"]),
        precision=str(tr["precision"]), accelerator=str(tr["accelerator"]), devices=str(tr["devices"]),
        seed=int(tr["seed"]), patience=int(tr["patience"]), gradient_clip=float(tr.get("gradient_clip_val") or 0.0),
        limit_train_batches=float(tr["limit_train_batches"]), progress=str(tr["progress"]),
        accumulate_grad_batches=int(tr.get("accumulate_grad_batches", 1)),
    )
    sup = SupervisedTask(net, kind=kind, lr=tc.lr, weight_decay=tc.weight_decay, warmup_steps=tc.warmup_steps)
    status = "completed"
    with quiet_lightning(tc.progress == "none"):
        trainer = make_trainer(tc, run_dir)
        t0 = time.time()
        try:
            trainer.fit(sup, train_dl, val_dl)
        except NonFiniteLossError as e:
            status = f"stopped: {e}"
            log(f"error: {e}")
        train_seconds = time.time() - t0

    ckpt = trainer.checkpoint_callback
    best = Path(ckpt.best_model_path) if ckpt is not None and ckpt.best_model_path else None
    if best is not None and best.is_file():
        sup.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    elif status != "completed":
        write_json(run_dir / "metrics.json", {"task": task, "status": status})
        raise NonFiniteLossError(status)

    device = _device_for(tc.accelerator)
    net = sup.net.to(device).eval()
    t_eval = time.time()
    metrics = {"task": task, "layer": layer, "status": status}
    if kind == "lm":
        from .wikitext import lm_perplexity

        for split, dl in (("val", val_dl), ("test", test_dl)):
            r = lm_perplexity(net, dl, device)
            metrics.update({f"{split}_perplexity": r["perplexity"], f"{split}_nll": r["nll"],
                            f"{split}_tokens": r["tokens"]})
    else:
        for split, dl in (("val", val_dl), ("test", test_dl)):
            r = evaluate_classifier(net, dl, device)
            metrics.update({f"{split}_accuracy": r["accuracy"], f"{split}_loss": r["loss"], f"n_{split}": r["n"]})
    metrics.update({
        "n_train": len(sets["train"]),
        "best_val_loss": float(ckpt.best_model_score) if ckpt is not None and ckpt.best_model_score is not None
        else None,
        "best_checkpoint": str(best) if best is not None else None,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "parameters": n_params,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(time.time() - t_eval, 1),
        "seconds": round(time.time() - t_start, 1),
        "seconds_per_step": round(train_seconds / max(trainer.global_step, 1), 4),
        "torch_threads": torch.get_num_threads(),
        "data_dir": str(data_dir),
        "command": argv,
    })
    net = net.cpu()
    export_model(LRAExport(net), run_dir, extra={"task": task, "metrics": {
        k: v for k, v in metrics.items() if k.startswith(("test_", "val_"))}})
    plot_losses(run_dir / "logs", run_dir / "plots" / "loss.png")
    plot_kernels(net, run_dir / "plots" / "kernels.png")
    write_json(run_dir / "metrics.json", metrics)
    headline = (f"test perplexity {metrics['test_perplexity']:.2f}" if kind == "lm"
                else f"test accuracy {metrics['test_accuracy']:.4f}")
    log(f"{task} ({layer}): {headline} after {metrics['steps']} steps in {metrics['seconds']:.0f} s")
    return run_dir
