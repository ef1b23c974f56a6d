"""``neuroconv lra``: train and evaluate on the long-range arena, sCIFAR and WikiText-103.

::

    neuroconv lra --task listops --data DIR                  # configs/lra/listops.yaml
    neuroconv lra --config listops_cpu --data DIR --generate --layer s4d --train.epochs 3
    neuroconv lra --task wikitext103 --data DIR --model.n_layers 4
    neuroconv lra generate --task listops --out DIR [--config listops_cpu]
    neuroconv lra reproduce --out DIR                        # the CPU-scale comparison

Every config key is a dotted flag (``--model.d_model 64``, ``--train.epochs 2``), parsed
as YAML; ``--help`` lists them. Only argparse work happens here at parser-build time;
training code is imported when a command runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys

#: every overridable config key (the union over the shipped configs; a test keeps this
#: list in step with configs/lra/*.yaml), with its flag help
CONFIG_KEYS = {
    "data.max_length": "longest token sequence, <eos> included (listops, text, retrieval)",
    "data.append_eos": "end every sequence with <eos>",
    "data.grayscale": "image: grayscale (LRA Image) or colour (sCIFAR)",
    "data.tokenize": "image/pathfinder: pixel ids 0-255 instead of floats",
    "data.val_fraction": "fraction held out for validation (image, pathfinder)",
    "data.test_fraction": "fraction held out for test (pathfinder)",
    "data.resolution": "pathfinder image size (32, 64, 128)",
    "data.difficulty": "pathfinder difficulty: easy, intermediate, hard",
    "data.seed": "seed of the pathfinder split",
    "data.seq_len": "wikitext103: tokens per window",
    "data.max_vocab": "wikitext103: keep this many most frequent words (null: all)",
    "generate.n_train": "generated ListOps training examples",
    "generate.n_val": "generated ListOps validation examples",
    "generate.n_test": "generated ListOps test examples",
    "generate.min_length": "ListOps lengths strictly above this",
    "generate.max_length": "ListOps lengths strictly below this",
    "generate.max_depth": "deepest ListOps nesting",
    "generate.max_args": "most arguments per ListOps operator",
    "generate.n_images": "generated Pathfinder images (split 80/10/10)",
    "generate.seed": "generator seed",
    "model.d_input": "float features per step (null: token ids)",
    "model.vocab_size": "token vocabulary",
    "model.d_model": "model width",
    "model.n_layers": "number of residual blocks",
    "model.layer": "sequence layer (same as --layer)",
    "model.l_max": "longest sequence the kernels cover",
    "model.prenorm": "pre-norm (true) or post-norm blocks",
    "model.norm": "layer, batch or none",
    "model.dropout": "residual dropout",
    "model.head": "classification, lm or null",
    "model.d_output": "number of classes",
    "model.pool": "mean or last (classification)",
    "model.layer_args.channels": "kernels per feature (longconv, s4d)",
    "model.layer_args.bidirectional": "centred (non-causal) layers",
    "model.layer_args.dropout": "dropout inside each layer",
    "model.layer_args.short_conv": "gated: width of the short depthwise conv",
    "model.layer_args.n_heads": "attention heads",
    "model.layer_args.kernel_args.lam": "squash threshold lambda (0: off)",
    "model.layer_args.kernel_args.smooth_width": "smoothing window, odd (1: off)",
    "model.layer_args.kernel_args.kernel_dropout": "dropout on kernel taps",
    "model.layer_args.kernel_args.lr": "kernel learning rate (no weight decay)",
    "model.layer_args.kernel_args.init": "kernel init: random or geometric",
    "model.layer_args.kernel_args.d_state": "s4d state size",
    "pair_head.pool": "retrieval: mean or last pooling per document",
    "pair_head.features": "retrieval: nli ([u, v, u*v, u-v]) or concat",
    "pair_head.activation": "retrieval: gelu or relu",
    "pair_head.n_classes": "retrieval: classes",
    "lm.tie_embeddings": "wikitext103: share input embedding and output layer",
    "optimizer.name": "adamw (the only one)",
    "optimizer.lr": "learning rate",
    "optimizer.weight_decay": "AdamW weight decay (matrices only)",
    "optimizer.betas": "AdamW betas (fixed to 0.9 0.999)",
    "scheduler.name": "cosine_warmup (the only one)",
    "scheduler.warmup_steps": "linear warm-up steps",
    "scheduler.total_steps": "the authors' schedule length (informational)",
    "train.batch_size": "examples per batch",
    "train.epochs": "training epochs",
    "train.accumulate_grad_batches": "batches per optimizer step",
    "train.gradient_clip_val": "gradient norm clip (0: off)",
    "train.drop_last": "drop the last incomplete training batch",
    "train.seed": "seed of initialisation and shuffling",
    "train.max_steps": "stop after this many optimizer steps (-1: epochs decide)",
    "train.max_time": "wall-clock limit DD:HH:MM:SS",
    "train.patience": "early-stopping patience in epochs (0: off)",
    "train.precision": "Lightning precision (32-true, bf16-mixed, ...)",
    "train.accelerator": "auto, cpu or gpu",
    "train.devices": "devices to use",
    "train.num_workers": "DataLoader workers",
    "train.eval_batch_size": "batch size for validation and test (null: batch_size)",
    "train.limit_train_batches": "fraction (or count) of training batches per epoch",
    "train.progress": "rich, tqdm or none",
}

_TASKS = ("listops", "text", "retrieval", "image", "scifar", "pathfinder", "pathx", "wikitext103")
_LAYERS = ("longconv", "s4d", "butterfly", "attention", "gated")

_DATA_HELP = """\
data folders (--data DIR; DIR may also be the parent, e.g. the unpacked lra_release):
  listops      basic_{train,val,test}.tsv (listops-1000/); or make them: --generate
  text         aclImdb/{train,test}/{pos,neg}/*.txt
  retrieval    new_aan_pairs.{train,eval,test}.tsv (tsv_data/)
  image,scifar cifar-10-batches-py/{data_batch_1..5,test_batch}
  pathfinder   pathfinder32/curv_contour_length_14/{imgs,metadata}/; or --generate
  pathx        pathfinder128/curv_contour_length_14/{imgs,metadata}/; or --generate
  wikitext103  wiki.{train,valid,test}.tokens (wikitext-103/)
"""


def _parse_value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _add_config_flags(p: argparse.ArgumentParser, sections=None) -> None:
    groups = {}
    for key, help_text in CONFIG_KEYS.items():
        section = key.split(".")[0]
        if sections is not None and section not in sections:
            continue
        if section not in groups:
            groups[section] = p.add_argument_group(f"{section}.* keys (override the config; YAML values)")
        groups[section].add_argument(f"--{key}", dest=key, default=argparse.SUPPRESS, metavar="V",
                                     nargs="+" if key == "optimizer.betas" else None, help=help_text)


def _overrides(args) -> dict:
    out = {}
    for key, value in vars(args).items():
        if key in CONFIG_KEYS:
            if isinstance(value, list):
                parsed = [_parse_value(v) for v in value]
                out[key] = parsed[0] if len(parsed) == 1 and isinstance(parsed[0], list) else parsed
            else:
                out[key] = _parse_value(value)
    return out


def _fail(e: Exception) -> int:
    print(f"neuroconv lra: error: {e}", file=sys.stderr)
    return 1


def _config(args):
    from .train import lra_run_config

    return lra_run_config(args.task, args.config, layer=args.layer, overrides=_overrides(args))


def _train(args) -> int:
    if args.task is None and args.config is None:
        args._parser.print_help()
        return 2
    if not args.data:
        return _fail(ValueError("--data DIR is required: the folder with the task's files (see --help)."))
    try:
        cfg = _config(args)
        from .train import run_lra

        run_dir = run_lra(cfg, args.data, out=args.out, name=args.name or "", generate=args.generate,
                          argv=["neuroconv", *getattr(args, "argv", ["lra"])])
    except (ValueError, FileNotFoundError, KeyError, FloatingPointError) as e:  # NonFiniteLossError included
        return _fail(e)
    print(f"\nRun folder: {run_dir}\n  metrics: {run_dir / 'metrics.json'}; checkpoints: {run_dir / 'checkpoints'}; "
          f"plots: {run_dir / 'plots'}")
    return 0


def _generate(args) -> int:
    try:
        cfg = _config(args)
        from .train import generate_data

        generate_data(cfg, args.out)
    except (ValueError, FileNotFoundError, KeyError) as e:
        return _fail(e)
    print(f"train on it with: neuroconv lra --config {args.config or args.task} --data {args.out}")
    return 0


def _reproduce(args) -> int:
    try:
        from .reproduce import run_reproduction, write_report

        if args.report:
            write_report(args.out)
            return 0
        run_reproduction(args.out, arms=args.arms, overrides=_overrides(args), threads=args.threads,
                         progress=args.progress,
                         command=" ".join(["neuroconv", *map(shlex.quote, getattr(args, "argv", []))]))
    except (ValueError, FileNotFoundError, KeyError, FloatingPointError, RuntimeError) as e:
        return _fail(e)
    return 0


def add_lra(sub) -> None:
    p = sub.add_parser(
        "lra", help="long-range-arena, sCIFAR and WikiText-103 benchmarks",
        description=("Train on a long-range-arena task, sequential CIFAR or WikiText-103 with the authors' "
                     "long-conv hyperparameters (configs/lra/<task>.yaml), keep the checkpoint with the lowest "
                     "validation loss and evaluate it on the test split. Writes a run folder with "
                     "metrics.json, checkpoints, exported weights and kernel plots."),
        epilog=_DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", choices=_TASKS, default=None, help="task (its config is configs/lra/<task>.yaml)")
    p.add_argument("--config", default=None, metavar="NAME|YAML",
                   help="another shipped config (e.g. listops_cpu) or a YAML file")
    p.add_argument("--data", default=None, metavar="DIR", help="folder holding the task's files")
    p.add_argument("--layer", choices=_LAYERS, default=None,
                   help="swap the sequence layer (layer_args are translated; default: the config's)")
    p.add_argument("--generate", action="store_true",
                   help="listops/pathfinder/pathx: generate the data into --data first when it is missing")
    p.add_argument("--out", default="runs", metavar="DIR", help="parent of the run folder (default: runs)")
    p.add_argument("--name", default=None, help="run folder name (default: <task>-<layer>-<UTC time>)")
    _add_config_flags(p)
    p.set_defaults(func=_train, _parser=p)

    cmds = p.add_subparsers(dest="lra_command", metavar="{generate,reproduce}", required=False)
    g = cmds.add_parser(
        "generate", help="write synthetic ListOps or Pathfinder data offline",
        description=("Write synthetic ListOps (basic_{train,val,test}.tsv) or Pathfinder (pathfinderN/<difficulty>/"
                     "imgs, metadata) data in the released formats, with the config's `generate` section "
                     "(listops.yaml: the released sizes; listops_cpu.yaml: CPU scale)."),
    )
    g.add_argument("--task", choices=("listops", "pathfinder", "pathx"), default=None)
    g.add_argument("--config", default=None, metavar="NAME|YAML", help="config whose `generate` section is used")
    g.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    g.add_argument("--layer", default=None, help=argparse.SUPPRESS)
    _add_config_flags(g, sections=("generate", "data"))
    g.set_defaults(func=_generate, _parser=g)

    r = cmds.add_parser(
        "reproduce", help="the paper's central comparison at CPU scale (generated ListOps)",
        description=("Generate CPU-scale ListOps (configs/lra/listops_cpu.yaml) and train, on the same budget, "
                     "long convs with squash/smooth, long convs without them (lam 0, smooth_width 1), S4D and "
                     "attention; write results.json, results.md and kernel plots into --out. Dotted flags "
                     "(e.g. --train.epochs 5, --generate.n_train 8000) apply to every model."),
    )
    r.add_argument("--out", required=True, metavar="DIR", help="folder for the data, the runs and the results")
    r.add_argument("--arms", nargs="+", default=None, metavar="ARM",
                   help="subset of: longconv_squash_smooth longconv_plain s4d attention (default: all)")
    r.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    r.add_argument("--progress", choices=("rich", "tqdm", "none"), default="none", help="progress display")
    r.add_argument("--report", action="store_true",
                   help="only rewrite results.json/results.md/kernels.png from the run folders in --out")
    _add_config_flags(r)
    r.set_defaults(func=_reproduce, _parser=r)
