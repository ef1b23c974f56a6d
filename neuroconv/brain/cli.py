"""``neuroconv pretrain`` and ``neuroconv decode``.

Both read an experiment config (``--config``: a built-in name or a YAML path; default:
the simulated ``default``) through :func:`neuroconv.brain.config.job_parser`. One flag
style: every config key is a dotted flag named by its field (``--model.d_model 64``,
``--decode.group_by subject``, ``--decode.models scratch csp_lda``); a few shortcuts use
dashes and mean the same in every job (``--max-epochs``, ``--max-steps``, ``--seed``,
``--out``, ``--batch-size`` ..., ``--data-dir`` for ``--data.data_dir``), and switches
such as ``--compare`` set a key to true. ``--print-config`` prints the resolved config
(``--print_config`` works too), ``--help`` is one screen (the job's own keys, the
registries' models, layers, tasks, configs and data sources, and examples) and
``--help-all`` lists every key. An option of another command (``--l-freq`` of
``neuroconv preprocess``) is refused with a message that says where it belongs.
"""

from __future__ import annotations

import sys

__all__ = ["add_pretrain", "add_decode", "parse"]


def _fail(e: Exception) -> int:
    print(f"neuroconv: error: {e}", file=sys.stderr)
    return 1


def parse(job: str, argv: list[str], log=print):
    """The resolved :class:`ExperimentConfig` of ``neuroconv <job> ARGV``.

    Data inputs given on the command line replace the file's: ``--data.stores X`` alone
    drops the file's ``data.sources`` (and the other way round) instead of adding to them.
    """
    from .config import check_names, config_path, import_plugins, job_parser, plugins_of

    def resolve(name):
        try:
            return config_path(name)
        except FileNotFoundError:
            return None

    import_plugins(plugins_of(list(argv) if any(a.startswith("--config") for a in argv) else
                              ["--config", "default", *argv], resolve))
    cfg, _, given = job_parser(job).parse(argv)
    check_names(cfg)
    for key, other in (("data.stores", "data.sources"), ("data.sources", "data.stores")):
        if key in given and other not in given:
            log(f"{key} given on the command line: it replaces the config's data inputs ({other} left empty)")
    return cfg


def _run(job: str, argv: list[str]) -> int:
    from neuroconv.engine.config import ConfigError, JobParser

    wants = JobParser.wants_help(argv)
    if wants:
        from .config import config_path, import_plugins, job_parser, plugins_of

        try:
            import_plugins(plugins_of(argv, config_path))
        except (FileNotFoundError, ModuleNotFoundError) as e:
            return _fail(e)
        job_parser(job).print_help(full=wants == "all")
        return 0
    try:
        cfg = parse(job, argv)
    except (ConfigError, FileNotFoundError, ValueError, ModuleNotFoundError) as e:
        return _fail(e)
    except SystemExit as e:  # --print-config
        return int(e.code or 0)
    from neuroconv.engine.tasks import NonFiniteLossError

    try:
        if job == "pretrain":
            from .pretrain import run_pretrain

            run_dir = run_pretrain(cfg)
        else:
            from .decode import DecodeFailed, run_decode

            try:
                run_dir = run_decode(cfg)
            except DecodeFailed as e:
                return _fail(e)
    except (NonFiniteLossError, ValueError, FileNotFoundError, FileExistsError, KeyError) as e:
        return _fail(e)
    if job == "pretrain":
        print(f"\npretraining finished. Run folder: {run_dir}")
        print(f"  weights: {run_dir / 'model.safetensors'} (+ model_config.json); what it saw: "
              f"{run_dir / 'recordings.csv'}; plots: {run_dir / 'plots'}")
        print("next: decode labels with the pretrained backbone (on groups it did not see), compared with training "
              "from scratch and with the baselines:")
        print(f"  neuroconv decode --config {_config_arg(argv)} --decode.pretrained {run_dir} --compare")
        print("or, in Python: neuroconv.load_pretrained(" + repr(str(run_dir)) + ")")
    else:
        print(f"\ndecoding finished. Run folder: {run_dir}")
        print(f"  metrics: {run_dir / 'metrics.json'}; predictions: {run_dir / 'predictions.csv'}; "
              f"plots: {run_dir / 'plots'}")
    return 0


def _config_arg(argv: list[str]) -> str:
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return "default"


def _add(sub, job: str, help_text: str) -> None:
    import argparse

    p = sub.add_parser(job, help=help_text, add_help=False, prefix_chars="\x00")
    p.add_argument("job_argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda args: _run(job, args.job_argv))


def add_pretrain(sub) -> None:
    _add(sub, "pretrain", "self-supervised pretraining on sequence stores")


def add_decode(sub) -> None:
    _add(sub, "decode", "decode labels with neural models and baselines on the same folds")
