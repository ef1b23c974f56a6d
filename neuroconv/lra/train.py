"""Training and evaluation for the LRA tasks, sCIFAR and WikiText-103 (``neuroconv lra``).

This module only wires the LRA data into the engine (:mod:`neuroconv.engine`):
:class:`~neuroconv.engine.tasks.SupervisedTask` (AdamW over :func:`neuroconv.param_groups`,
kernel learning rate without weight decay, linear warm-up then cosine decay over the run,
NaN guard), :class:`~neuroconv.engine.runner.Run` (the run folder) and
:func:`~neuroconv.engine.runner.fit` (checkpoints ``last``/``best`` on ``val_loss``, the
best state reloaded, progress bar, CSV and TensorBoard logs).

Run config
----------
A run config is a shipped ``configs/lra/<name>.yaml`` parsed into
:class:`~neuroconv.lra.configs.LRAConfig` (:func:`lra_run_config`): ``--layer`` swaps the
sequence layer (each layer takes the keys of the flat ``model`` section that it uses,
:meth:`neuroconv.ModelConfig.layer_args`), and dotted overrides set keys
(``{"train.max_epochs": 2, "model.d_model": 32}``) with the same checks as flags.

Validation never reads the test split: Text (IMDB) carves its validation reviews from
the training reviews (seeded); ``data.validation: test`` restores the LRA release's
protocol, which validates on test.

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

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from neuroconv.engine.config import to_dict
from neuroconv.layers import check_layer

from .configs import TASKS, LRAConfig, drop_none, load_lra_config, model_kwargs
from .models import LanguageModel, PairClassifier, SequenceClassifier, count_parameters
from .tokens import Batch

__all__ = ["TASKS", "lra_run_config", "batch_to_dict", "build_lra_net", "evaluate_classifier", "generate_data",
           "run_lra"]

# --------------------------------------------------------------------------- config


def lra_run_config(task: str | None = None, config=None, *, layer: str | None = None,
                   overrides: dict | None = None) -> LRAConfig:
    """The resolved run config (see the module doc).

    Parameters:
        task: a name in :data:`TASKS`; with ``config`` unset, ``configs/lra/<task>.yaml``.
        config: a shipped config name (e.g. ``"listops_cpu"``) or a YAML path; its
            ``task`` must match ``task`` when both are given.
        layer: sequence layer to use instead of the config's, a name of
            :data:`neuroconv.LAYERS`; ``overrides["model.layer"]`` does the same.
        overrides: dotted key -> value (checked like command-line flags).
    """
    if task is None and config is None:
        raise ValueError(f"give a task (one of {list(TASKS)}) or a config.")
    if task is not None and task not in TASKS:
        raise ValueError(f"`task` must be one of {list(TASKS)}; got {task!r}.")
    overrides = dict(overrides or {})
    new_layer = overrides.pop("model.layer", None)
    if layer is not None and new_layer is not None and layer != new_layer:
        raise ValueError(f"--layer {layer} and --model.layer {new_layer} disagree; give one.")
    cfg = load_lra_config(config if config is not None else task, overrides)
    return finish_config(cfg, task, layer or new_layer, config or task)


def finish_config(cfg: LRAConfig, task: str | None, layer: str | None, name) -> LRAConfig:
    """Check the task against the config and swap the layer (the model section's keys
    stay; each layer takes those it uses)."""
    if task is not None and cfg.task != task:
        raise ValueError(f"config {name!r} is for task {cfg.task!r}, not {task!r}; drop --task or pick a config of "
                         "that task.")
    if layer is not None and layer != cfg.model.layer:
        cfg.model.layer = check_layer(layer)  # any name of neuroconv.LAYERS
    cfg.model.layer_args()  # the layer's arguments resolve (e.g. attention heads), or a clear error now
    return cfg


# --------------------------------------------------------------------------- data


def batch_to_dict(batch: Batch) -> dict:
    """A phase-1 :class:`~neuroconv.lra.tokens.Batch` as the dict the networks and
    :class:`~neuroconv.engine.tasks.SupervisedTask` read: ``{"x", "mask", "lengths",
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


def _datasets(cfg: LRAConfig, data_dir, log):
    """``({split: dataset}, info)`` for the config's task."""
    task, data = cfg.task, drop_none(to_dict(cfg.data))
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


def _check_model_vs_data(cfg: LRAConfig, info: dict) -> dict:
    """The model section, checked against the data; returns SequenceModel kwargs."""
    m = model_kwargs(cfg)
    task = cfg.task
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


def build_lra_net(cfg: LRAConfig, info: dict) -> tuple[torch.nn.Module, str]:
    """The network for ``cfg`` and the data ``info``; returns ``(net, kind)`` with
    ``kind`` the :class:`SupervisedTask` kind (``classification`` or ``lm``)."""
    m = _check_model_vs_data(cfg, info)
    if cfg.task == "wikitext103":
        return LanguageModel(m, tie_embeddings=cfg.lm.tie_embeddings), "lm"
    if info["pairs"]:
        ph = to_dict(cfg.pair_head)
        if ph["n_classes"] != info["n_classes"]:
            raise ValueError(f"{cfg.task}: {info['n_classes']} classes; set --pair_head.n_classes "
                             f"{info['n_classes']}.")
        return PairClassifier(m, ph), "classification"
    return SequenceClassifier(m), "classification"


# --------------------------------------------------------------------------- generation


def generate_data(cfg: LRAConfig, out_dir, log=print) -> Path:
    """Write synthetic data for ``cfg`` (ListOps or Pathfinder/Path-X) into ``out_dir``
    with the arguments of its ``generate`` section; returns ``out_dir``.

    ListOps: ``generate`` holds :func:`neuroconv.lra.write_listops` arguments.
    Pathfinder: ``n_images`` and ``seed``; resolution and difficulty come from the
    ``data`` section so the loader finds the images.
    """
    task, gen = cfg.task, drop_none(to_dict(cfg.generate))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if task == "listops":
        from .listops import write_listops

        gen.pop("n_images", None)
        paths = write_listops(out_dir, **gen)
        log(f"generated ListOps in {out_dir} ({', '.join(p.name for p in paths.values())}) "
            f"in {time.time() - t0:.1f} s")
    elif task in ("pathfinder", "pathx"):
        from .pathfinder import write_pathfinder

        if "n_images" not in gen:
            raise ValueError(f"{task}: the config's `generate` section needs n_images (e.g. --generate.n_images).")
        root = write_pathfinder(out_dir, gen["n_images"], resolution=cfg.data.resolution or 32,
                                difficulty=cfg.data.difficulty or "hard", **({"seed": gen["seed"]} if "seed" in gen
                                                                              else {}))
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
    """What :func:`~neuroconv.engine.runner.export_model` writes for an LRA network: its
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


def run_lra(cfg: LRAConfig, data_dir, *, generate: bool = False, log=print, argv: list | None = None) -> Path:
    """Train on the train split, keep the state with the lowest validation loss, evaluate
    it on the test split; returns the run folder (see the module doc).

    ``cfg``: a run config from :func:`lra_run_config` (the run folder goes to
    ``train.out``/``train.name``). ``generate``: when the data are missing, write them
    first with :func:`generate_data` (ListOps, Pathfinder).
    """
    import lightning as L

    from neuroconv.engine.plots import plot_kernels, plot_losses
    from neuroconv.engine.runner import Run, export_model, fit
    from neuroconv.engine.tasks import SupervisedTask

    t_start = time.time()
    log = log or (lambda *a, **k: None)
    task, tr = cfg.task, cfg.train
    data_dir = Path(data_dir).expanduser()
    if generate:
        try:
            _datasets(cfg, data_dir, log=None)
        except FileNotFoundError:
            generate_data(cfg, data_dir, log=log)
    sets, info = _datasets(cfg, data_dir, log=log)

    L.seed_everything(tr.seed, workers=True, verbose=False)
    net, kind = build_lra_net(cfg, info)
    layer = cfg.model.layer
    run = Run.create(tr.out, tr.name, f"{task}-{layer}")
    run.write_config(cfg)
    n_params = count_parameters(net)
    log(f"model: {type(net).__name__} with {layer} layers, {n_params:,} parameters; run folder {run.path}")

    ebs = tr.eval_batch_size or tr.batch_size
    g = torch.Generator().manual_seed(tr.seed)

    def loader(ds, shuffle, batch_size, drop_last=False):
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=g,
                          collate_fn=info["collate"], num_workers=tr.num_workers,
                          persistent_workers=tr.num_workers > 0)

    drop_last = tr.drop_last and len(sets["train"]) >= tr.batch_size
    train_dl = loader(sets["train"], True, tr.batch_size, drop_last)
    val_dl, test_dl = loader(sets["val"], False, ebs), loader(sets["test"], False, ebs)
    sup = SupervisedTask(net, kind=kind, lr=tr.lr, weight_decay=tr.weight_decay, warmup_steps=tr.warmup_steps)
    t0 = time.time()
    result = fit(sup, train_dl, val_dl, tr, run_dir=run.path, log=log)
    train_seconds = time.time() - t0

    device = _device_for(tr.accelerator)
    net = sup.net.to(device).eval()
    t_eval = time.time()
    metrics = {"task": task, "layer": layer, "status": result.status}
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
        "best_val_loss": result.best_val_loss,
        "validation": "test split (LRA release protocol)" if cfg.data.validation == "test" else "held out of train",
        "epochs": result.epochs,
        "steps": result.steps,
        "parameters": n_params,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(time.time() - t_eval, 1),
        "seconds": round(time.time() - t_start, 1),
        "seconds_per_step": round(train_seconds / max(result.steps, 1), 4),
        "torch_threads": torch.get_num_threads(),
        "data_dir": str(data_dir),
        "command": argv,
    })
    net = net.cpu()
    export_model(LRAExport(net), run.path, extra={"task": task, "metrics": {
        k: v for k, v in metrics.items() if k.startswith(("test_", "val_"))}})
    plot_losses(run / "logs", run / "plots" / "loss.png")
    metrics["kernels"] = plot_kernels(net, run / "plots" / "kernels.png")
    run.write_json("metrics.json", metrics)
    headline = (f"test perplexity {metrics['test_perplexity']:.2f}" if kind == "lm"
                else f"test accuracy {metrics['test_accuracy']:.4f}")
    log(f"{task} ({layer}): {headline} after {metrics['steps']} steps in {metrics['seconds']:.0f} s")
    return run.path
