"""``neuroconv pretrain`` and ``neuroconv decode``.

Both read an experiment config (``--config``: a built-in name or a YAML path; default:
the simulated ``default``) and accept every config key as a dotted flag, e.g.
``--model.d_model 64`` or ``--decode.models scratch csp_lda``. ``--help`` lists the keys.
"""

from __future__ import annotations

import argparse
import sys
import typing

import yaml

SECTIONS = {"pretrain": ("data", "model", "pretrain"), "decode": ("data", "model", "decode")}


def _parse_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _add_config_flags(p: argparse.ArgumentParser, job: str) -> None:
    from .config import ExperimentConfig, flatten

    p.add_argument("--config", default="default", metavar="NAME|YAML",
                   help="built-in experiment (default, abide, eegbci) or a YAML file (default: default)")
    for section in SECTIONS[job]:
        g = p.add_argument_group(f"{section}.* keys (override the config file)")
        for key, (value, tp) in flatten(getattr(ExperimentConfig(), section)).items():
            is_list = tp is list or typing.get_origin(tp) is list
            shown = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            g.add_argument(f"--{section}.{key}", dest=f"{section}.{key}", default=argparse.SUPPRESS,
                           nargs="+" if is_list else None, metavar="V",
                           help=f"(built-in default: {shown})")
    p.add_argument("--name", dest="name", default=argparse.SUPPRESS, help="experiment name (prefix of run folders)")
    g = p.add_argument_group(f"shortcuts for common {job}.* keys")
    for flag, key, what in (("--devices", "devices", "devices per node (auto, N, or a list like 0,1)"),
                            ("--num-nodes", "num_nodes", "nodes for multi-node training"),
                            ("--strategy", "strategy", "Lightning strategy, e.g. ddp"),
                            ("--accelerator", "accelerator", "cpu, gpu, auto"),
                            ("--precision", "precision", "auto (bf16-mixed on a bf16 GPU, else 32-true), 32-true, bf16-mixed, 16-mixed"),
                            ("--seed", "seed", "random seed"),
                            ("--max-epochs", "max_epochs", "maximum epochs"),
                            ("--out", "out", "folder for run folders")):
        g.add_argument(flag, dest=f"{job}.{key}", default=argparse.SUPPRESS, metavar="V", help=f"= --{job}.{key}: {what}")
    if job == "pretrain":
        g.add_argument("--resume", dest="pretrain.resume", action="store_const", const="true",
                       default=argparse.SUPPRESS, help="= --pretrain.resume true: continue the newest run "
                       "(or --pretrain.name NAME) from its last checkpoint")


def _load(args, job: str):
    from .config import apply_overrides, load_config

    cfg = load_config(args.config)
    overrides = {}
    for key, value in vars(args).items():
        if "." in key and key.split(".")[0] in SECTIONS[job]:
            if isinstance(value, list):
                parsed = [_parse_value(v) for v in value]
                if len(parsed) == 1 and isinstance(parsed[0], list):
                    parsed = parsed[0]
                overrides[key] = parsed
            else:
                overrides[key] = _parse_value(value)
    if getattr(args, "name", None):
        cfg.name = args.name
    return apply_overrides(cfg, overrides)


def _fail(e: Exception) -> int:
    print(f"neuroconv: error: {e}", file=sys.stderr)
    return 1


def _pretrain(args) -> int:
    from .tasks import NonFiniteLossError

    try:
        cfg = _load(args, "pretrain")
        from .pretrain import run_pretrain

        run_dir = run_pretrain(cfg)
    except (NonFiniteLossError, ValueError, FileNotFoundError, KeyError) as e:
        return _fail(e)
    print(f"\npretraining finished. Run folder: {run_dir}")
    print(f"  weights: {run_dir / 'model.safetensors'} (+ model_config.json); plots: {run_dir / 'plots'}")
    print("next: decode labels with the pretrained backbone, compared with training from scratch and "
          "with the baselines:")
    print(f"  neuroconv decode --config {args.config} --decode.pretrained {run_dir}")
    print("or, in Python: neuroconv.load_pretrained(" + repr(str(run_dir)) + ")")
    return 0


def _decode(args) -> int:
    try:
        cfg = _load(args, "decode")
        if args.compare:
            from .decode import NEURAL_MODELS

            base = [m for m in cfg.decode.models if m not in NEURAL_MODELS]
            cfg.decode.models = list(NEURAL_MODELS) + base
        from .decode import run_decode

        run_dir = run_decode(cfg)
    except (ValueError, FileNotFoundError, KeyError) as e:
        return _fail(e)
    print(f"\ndecoding finished. Run folder: {run_dir}")
    print(f"  metrics: {run_dir / 'metrics.json'}; predictions: {run_dir / 'predictions.csv'}; "
          f"plots: {run_dir / 'plots'}")
    return 0


def add_pretrain(sub) -> None:
    p = sub.add_parser(
        "pretrain", help="self-supervised pretraining on sequence stores",
        description=("Self-supervised pretraining (next-step or masked) on one or more sequence stores. "
                     "With no arguments it runs the built-in default: simulated EEG goes through the real "
                     "preprocessing pipeline and a small long-conv model pretrains on it (a few minutes on "
                     "2 CPU cores)."),
    )
    _add_config_flags(p, "pretrain")
    p.set_defaults(func=_pretrain)


def add_decode(sub) -> None:
    p = sub.add_parser(
        "decode", help="decode labels with a pretrained or fresh model, against baselines",
        description=("Cross-validated decoding of recording labels (e.g. diagnosis) or event labels (e.g. "
                     "motor imagery), with neural models and classical baselines on the same folds. With "
                     "no arguments it runs the built-in demo on the simulated default data."),
    )
    _add_config_flags(p, "decode")
    p.add_argument("--compare", action="store_true",
                   help="compare scratch, finetune, probe and attention (plus the configured baselines)")
    p.set_defaults(func=_decode)
