"""``neuroconv lra``: train and evaluate on the long-range arena, sCIFAR and WikiText-103.

::

    neuroconv lra --task listops --data DIR                  # configs/lra/listops.yaml
    neuroconv lra --config listops_cpu --data DIR --generate --layer s4d --max-epochs 3
    neuroconv lra --task wikitext103 --data DIR --model.n_layers 4
    neuroconv lra generate --task listops --out DIR [--config listops_cpu]
    neuroconv lra reproduce --out DIR                        # the CPU-scale comparison

Every config key is a dotted flag (``--model.d_model 64``, ``--train.max_epochs 2``)
through the same config system as ``pretrain`` and ``decode``
(:mod:`neuroconv.engine.config`), with the same shortcuts (``--max-epochs``,
``--max-steps``, ``--seed``, ``--out``) and ``--print_config``. Training code is imported
when a command runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys

_TASKS = ("listops", "text", "retrieval", "image", "scifar", "pathfinder", "pathx", "wikitext103")

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


def _fail(e: Exception) -> int:
    print(f"neuroconv lra: error: {e}", file=sys.stderr)
    return 1


def _front(argv: list[str], prog: str, *, generate_cmd: bool = False):
    """The LRA-specific arguments (task, data, layer...) and the rest, for the config parser."""
    p = argparse.ArgumentParser(prog=prog, add_help=False)
    p.add_argument("--task", choices=_TASKS, default=None)
    p.add_argument("--config", default=None)
    p.add_argument("--layer", default=None)  # a name of neuroconv.LAYERS, checked with the config
    if generate_cmd:
        p.add_argument("--out", required=True)
    else:
        p.add_argument("--data", default=None)
        p.add_argument("--generate", action="store_true")
        p.add_argument("--name", default=None)
    return p.parse_known_args(argv)


def _config(front, rest):
    from .configs import lra_parser
    from .train import finish_config

    name = front.config or front.task
    argv = ["--config", name, *rest] if name else list(rest)
    cfg, _, given = lra_parser().parse(argv)
    if getattr(front, "name", None):
        cfg.train.name = front.name
    layer = front.layer or (cfg.model.layer if "model.layer" in given else None)
    return finish_config(cfg, front.task, layer, name), given


def _help(extra: str = "") -> None:
    from neuroconv.layers import LAYERS

    from .configs import lra_parser

    print("usage: neuroconv lra (--task TASK | --config NAME|YAML) --data DIR [--layer LAYER] [--generate] "
          "[--name NAME] [config flags]\n       neuroconv lra generate --task TASK --out DIR [config flags]\n"
          "       neuroconv lra reproduce --out DIR [--arms ...] [--report] [config flags]\n\n"
          f"  --task        one of {', '.join(_TASKS)} (its config is configs/lra/<task>.yaml)\n"
          "  --data DIR    folder holding the task's files\n"
          f"  --layer       swap the sequence layer: {', '.join(LAYERS)} (neuroconv.LAYERS; each layer takes the "
          "model keys it uses)\n"
          "  --generate    listops/pathfinder/pathx: generate the data into --data first when it is missing\n"
          "  --name NAME   run folder name (= --train.name)\n\n" + _DATA_HELP + extra)
    lra_parser().print_help()


def _train(argv: list[str]) -> int:
    from neuroconv.engine.config import ConfigError

    front, rest = _front(argv, "neuroconv lra")
    if front.task is None and front.config is None:
        _help()
        return 2
    try:
        cfg, _ = _config(front, rest)
    except SystemExit as e:  # --print_config
        return int(e.code or 0)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        return _fail(e)
    if not front.data:
        return _fail(ValueError("--data DIR is required: the folder with the task's files (see --help)."))
    try:
        from .train import run_lra

        run_dir = run_lra(cfg, front.data, generate=front.generate, argv=["neuroconv", "lra", *argv])
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, FloatingPointError) as e:
        return _fail(e)  # NonFiniteLossError is a FloatingPointError
    print(f"\nRun folder: {run_dir}\n  metrics: {run_dir / 'metrics.json'}; checkpoints: {run_dir / 'checkpoints'}; "
          f"plots: {run_dir / 'plots'}")
    return 0


def _generate(argv: list[str]) -> int:
    from neuroconv.engine.config import ConfigError

    if any(a in ("-h", "--help") for a in argv):
        print("usage: neuroconv lra generate (--task TASK | --config NAME|YAML) --out DIR [config flags]\n\n"
              "Write synthetic ListOps (basic_{train,val,test}.tsv) or Pathfinder (pathfinderN/<difficulty>/imgs, "
              "metadata) data in the released formats, with the config's `generate` section (listops.yaml: the "
              "released sizes; listops_cpu.yaml: CPU scale).\n")
        from .configs import lra_parser

        lra_parser().print_help()
        return 0
    try:
        front, rest = _front(argv, "neuroconv lra generate", generate_cmd=True)
        cfg, _ = _config(front, rest)
        from .train import generate_data

        generate_data(cfg, front.out)
    except SystemExit as e:
        return int(e.code or 0)
    except (ConfigError, ValueError, FileNotFoundError, KeyError) as e:
        return _fail(e)
    print(f"train on it with: neuroconv lra --config {front.config or front.task} --data {front.out}")
    return 0


def _reproduce(argv: list[str]) -> int:
    from neuroconv.engine.config import ConfigError

    r = argparse.ArgumentParser(
        prog="neuroconv lra reproduce",
        description=("Generate CPU-scale ListOps (configs/lra/listops_cpu.yaml) and train, on the same budget, long "
                     "convs with squash/smooth, long convs without them (lam 0, smooth_width 1), S4D and attention; "
                     "write results.json, results.md and kernel plots into --out. Dotted flags (e.g. "
                     "--train.max_epochs 5, --generate.n_train 8000) apply to every model."))
    r.add_argument("--out", required=True, metavar="DIR", help="folder for the data, the runs and the results")
    r.add_argument("--arms", nargs="+", default=None, metavar="ARM",
                   help="subset of: longconv_squash_smooth longconv_plain s4d attention (default: all)")
    r.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    r.add_argument("--progress", choices=("rich", "tqdm", "none"), default="none", help="progress display")
    r.add_argument("--report", action="store_true",
                   help="only rewrite results.json/results.md/kernels.png from the run folders in --out")
    args, rest = r.parse_known_args(argv)
    try:
        from .reproduce import CONFIG, run_reproduction, write_report

        if args.report:
            write_report(args.out)
            return 0
        overrides = _overrides(CONFIG, rest)
        run_reproduction(args.out, arms=args.arms, overrides=overrides, threads=args.threads, progress=args.progress,
                         command=" ".join(["neuroconv", "lra", "reproduce", *map(shlex.quote, argv)]))
    except (ConfigError, ValueError, FileNotFoundError, KeyError, FloatingPointError, RuntimeError) as e:
        return _fail(e)
    return 0


def _overrides(config: str, rest: list[str]) -> dict:
    """``{dotted key: value}`` of the flags in ``rest`` (checked against ``config``)."""
    from .configs import lra_parser

    cfg, _, given = lra_parser().parse(["--config", config, *rest])
    out = {}
    for key in given:
        obj = cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        out[key] = obj
    return out


def _run(argv: list[str]) -> int:
    if argv and argv[0] == "generate":
        return _generate(argv[1:])
    if argv and argv[0] == "reproduce":
        return _reproduce(argv[1:])
    if any(a in ("-h", "--help") for a in argv):
        _help()
        return 0
    return _train(argv)


def add_lra(sub) -> None:
    p = sub.add_parser("lra", help="long-range-arena, sCIFAR and WikiText-103 benchmarks", add_help=False,
                       prefix_chars="\x00")
    p.add_argument("job_argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda args: _run(args.job_argv))
