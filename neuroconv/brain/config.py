"""Experiment configs of the brain-data jobs (``neuroconv pretrain`` / ``neuroconv decode``).

One YAML file describes one experiment (``configs/*.yaml``, shipped with the package):
its data, its model and the ``pretrain`` and ``decode`` jobs. Both jobs read the whole
file (decode uses the pretrain section too, to pretrain inside folds). Parsing, dotted
flags, ``--print-config``, the one-screen ``--help`` and error messages come from
:mod:`neuroconv.engine.config`; :func:`job_parser` supplies what is particular to each job
(its sections, examples, and the lists its help reads from the registries).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, make_dataclass
from importlib import resources
from pathlib import Path
from typing import Literal


from neuroconv.engine.config import JobParser, TrainerConfig, to_dict
from neuroconv.model import ModelConfig as BackboneConfig

from .zoo.base import C_GRID

__all__ = ["ExperimentConfig", "DataConfig", "SourceConfig", "ModelConfig", "PretrainConfig", "DecodeConfig",
           "FoldPretrainConfig", "load_config", "builtin_configs", "config_path", "job_parser", "to_dict",
           "experiment_class", "import_plugins", "plugins_of", "check_names"]


@dataclass
class SourceConfig:
    """One input data set, turned into a sequence store by a pipeline before training.

    Args:
        pipeline: A data source of neuroconv.pipelines.sources.SOURCES (neuroconv preprocess --help
            lists them), e.g. eegbci, abide, eeg-notebooks, dreams, sleep-edf.
        args: Keyword arguments of the pipeline (paths relative to the current directory).
        store: Where the sequence store goes. Reruns skip the recordings already done.
    """

    pipeline: str = "simulate_eeg"
    args: dict = field(default_factory=dict)
    store: str = ""


@dataclass
class DataConfig:
    """Where sequences come from and how they become model inputs.

    Args:
        stores: Existing sequence stores. Given on the command line, stores and sources
            replace the config file's data inputs (both lists) rather than add to them.
        sources: Data sets to preprocess into stores first (pipeline, args, store).
        data_dir: root folder of the data sets named by data.sources; empty: each source's
            own default place (NEUROCONV_DATA, the library's default)
        window_seconds: Pretraining windows, in seconds (converted with each recording's
            sampling rate; at most max_len steps).
        stride_seconds: Step between pretraining windows, in seconds.
        max_len: Longest model input in steps; kernels cover this many lags, so a
            pretrained model can read whole recordings up to this length.
        normalize: "auto" z-scores each channel with its own recording's mean and sd unless
            the store's pipeline already did (fMRI cleaning z-scores); "recording" always;
            "none" never. Statistics never cross recordings, so no test data reach them.
        align: Euclidean alignment of decode windows (He & Wu 2019): "none", "recording",
            or a manifest column such as subject. Each unit's windows are whitened by
            their own mean covariance (no labels used), so recordings of different
            people or sessions share one reference. A unit must lie inside one fold group
            (align by subject needs decode.group_by subject or coarser).
        split_by: Manifest column whose groups pretraining's validation split keeps apart.
        val_fraction: Fraction of groups (or of each recording's time, when there are too
            few groups) held out for validation and early stopping.
    """

    stores: list[str] = field(default_factory=list)
    sources: list[SourceConfig] = field(default_factory=list)
    data_dir: str = ""
    window_seconds: float = 4.0
    stride_seconds: float = 2.0
    max_len: int = 1024
    normalize: Literal["auto", "recording", "none"] = "auto"
    align: str = "none"
    split_by: str = "subject"
    val_fraction: float = 0.2


@dataclass
class ModelConfig(BackboneConfig):
    """The backbone (every key of :class:`neuroconv.ModelConfig`) and its input side.

    Args:
        time_embedding: Add a seconds-based time embedding and a sampling-rate embedding,
            so recordings with different TRs or sampling rates can be mixed.
    """

    time_embedding: bool = True


@dataclass
class PretrainConfig(TrainerConfig):
    """Self-supervised pretraining.

    Args:
        objective: next_step (causal next-step prediction) or masked (masked-span reconstruction).
        loss: l1 or mse.
        mask_ratio: Fraction of steps hidden by the masked objective.
        span_seconds: Length of each hidden span, in seconds.
        query: pandas query selecting the recordings to pretrain on, e.g. "site != 'NYU'"
            or "subject < '09'" (empty: every recording of the data stores).
        resume: Continue the newest run of this experiment (or the run named by name)
            from its last checkpoint.
    """

    query: str = ""
    objective: Literal["next_step", "masked"] = "next_step"
    loss: Literal["l1", "mse"] = "mse"
    mask_ratio: float = 0.15
    span_seconds: float = 0.5
    resume: bool = False


@dataclass
class FoldPretrainConfig:
    """The budget of pretraining inside each fold (decode.pretrain_in_fold); every other
    setting comes from the pretrain section.

    Args:
        max_epochs: Maximum epochs of each fold's pretraining.
        max_steps: Maximum optimizer steps of each fold's pretraining (-1: the epochs decide).
        max_time: Wall-clock limit of each fold's pretraining, "DD:HH:MM:SS" (empty: none).
    """

    max_epochs: int = 5
    max_steps: int = -1
    max_time: str = ""


@dataclass
class DecodeConfig(TrainerConfig):
    """Supervised decoding with cross-validation: every model on the same folds, inputs
    and inner splits, compared over independent units. Each model's own settings are its
    section ``decode.<model>`` (e.g. ``decode.covconv.bands``); the keys here are the
    protocol every model shares.

    Args:
        task: What a sample, a target and a score are: windows (one class or number per
            window around an event, or per whole recording), staging (a class per epoch of
            whole recordings) or detection (events in whole recordings, scored by event).
        reference: detection: the scorer whose events are the truth (their labels are
            <target>:<scorer>, e.g. spindle:expert1), or union (every expert* scorer).
        target: windows: a manifest column (one label per recording, e.g. diagnosis) or
            "events" (one label per window around each event, e.g. left/right); staging
            and detection: the events' label prefix (stage for stage:N2, spindle for
            spindle:expert1).
        query: pandas query selecting recordings from the manifest, e.g. "imagery == True".
        kind: classification, regression, or auto (decided from the target's values; the
            choice and its reason are logged and saved).
        event_labels: Event classes to decode, in this order (empty: all; staging: the
            stages, by default in the order W, N1, N2, N3, R).
        tmin: Start of event windows relative to each event, in seconds.
        tmax: End of event windows relative to each event, in seconds.
        cv: group_kfold (stratified), leave_group_out, or none (train once on everything;
            evaluate on test_stores).
        n_splits: Folds of group_kfold.
        group_by: Manifest column whose groups the folds keep apart (subject, session, run, site,
            or id: each recording its own group).
        within: Cross-validate separately inside each value of this manifest column (e.g.
            subject: within-subject decoding, one model per subject and fold); empty: pooled.
        models: Models of the zoo to run on the same folds (neuroconv decode --help lists
            them: ours and the field's baselines).
        compare: Run every model of the zoo that applies to the data as well.
        pretrained: A pretrain run folder for finetune/probe. Its recorded training
            recordings are checked against every test fold.
        transductive: Allow a pretrained backbone that saw test groups (the transductive
            setting); metrics.json records the overlap.
        pretrain_in_fold: Pretrain inside each fold on that fold's training groups only
            (with the pretrain section's settings and the fold_pretrain budget).
        fold_pretrain: Budget of the in-fold pretraining.
        test_stores: External test stores: train on all of data.stores/sources, evaluate
            here (another site, another data set); implies cv none.
        train_fraction: Train every model on this fraction of each training fold's groups
            (a seeded, class-stratified subset, the same for every model), for
            label-efficiency curves; the test folds stay whole.
        train_fraction_of: What train_fraction subsamples: groups (whole subjects, runs...)
            or samples (a class-stratified subset of the training windows, e.g. a fraction
            of one person's labelled trials).
        class_weight: balanced (every class weighs the same in every model's loss: class
            weights in losses and logistic regressions, uniform LDA priors) or none.
        c_grid: Inverse L2 strengths every regularised model (covconv's head, probe, the
            logistic regressions of the baselines) chooses from on the inner split, by
            the class-weighted log loss of its validation part.
        refit: After the inner split has made every choice (regulariser, training
            budget), fit each model again on the whole training fold with those choices.
        budget: steps (every neural model gets the same optimiser-step budget, max_epochs
            epochs at batch_size, and the same patience in steps, whatever its own batch
            size: braindecode's networks train at batch 64 for more epochs) or epochs
            (each model max_epochs epochs of its own batch size: its authors' schedule).
            Weight decay is each model's own and fixed; none is chosen on the inner
            split.
        early_stopping: What the neural models' early stopping and kept state follow on
            the inner validation part: loss (the class-weighted validation loss) or
            metric (the task's own score, for the dense tasks: macro-F1 of the stages;
            by-event F1 at the best threshold for events). Every neural model of the run
            follows the same one.
        reject: Leave out the windows whose peak-to-peak amplitude exceeds a threshold
            chosen on each fold's training windows alone, for every model alike (its
            training, inner split and test parts; counts in metrics.json): none, auto
            (autoreject's global threshold, cross-validated on the training windows) or a
            threshold in µV.
        comparator: The baseline that headline comparisons name, fixed in advance (e.g.
            in label-efficiency tables: docs/scripts/results_tables.py); empty: none.
        unit: The independent unit for intervals and paired tests: a manifest column,
            or auto (site when group_by is site, else subject; the groups when a single
            subject is tested).
        n_boot: Bootstrap resamples of the units for the 95% intervals.
        n_perm: Sign-flip permutations of the units for the paired tests.
        n_jobs: Threads of the tangent spaces' geometric means (connectivity and covconv; -1:
            all CPUs).
    """

    max_epochs: int = 30
    batch_size: int = 16
    task: str = "windows"
    reference: str = "expert1"
    target: str = "events"
    query: str = ""
    kind: Literal["auto", "classification", "regression"] = "auto"
    event_labels: list[str] = field(default_factory=list)
    tmin: float = 0.0
    tmax: float = 4.0
    cv: Literal["group_kfold", "leave_group_out", "none"] = "group_kfold"
    n_splits: int = 5
    group_by: str = "subject"
    within: str = ""
    models: list[str] = field(default_factory=lambda: ["scratch"])
    compare: bool = False
    pretrained: str = ""
    transductive: bool = False
    pretrain_in_fold: bool = False
    fold_pretrain: FoldPretrainConfig = field(default_factory=FoldPretrainConfig)
    test_stores: list[str] = field(default_factory=list)
    train_fraction: float = 1.0
    train_fraction_of: Literal["groups", "samples"] = "groups"
    class_weight: Literal["balanced", "none"] = "balanced"
    c_grid: list[float] = field(default_factory=lambda: list(C_GRID))
    refit: bool = True
    budget: Literal["steps", "epochs"] = "steps"
    early_stopping: Literal["loss", "metric"] = "loss"
    reject: str = "none"
    comparator: str = ""
    unit: str = "auto"
    n_boot: int = 2000
    n_perm: int = 2000
    n_jobs: int = 1

    def settings(self, model: str):
        """The settings of ``model`` (its section ``decode.<model>``), or None when the
        model has none (or this config was built without the zoo's sections)."""
        return getattr(self, model, None)


@dataclass
class ExperimentConfig:
    """An experiment: its data, model, and the pretrain and decode jobs.

    Args:
        name: Experiment name (prefix of its run folders).
        plugins: Python modules (import names, or .py files) imported before the config
            is read: they register models, baselines or tasks of their own (see
            docs/guide/extending.md).
        data: Data inputs and windows.
        model: The backbone.
        pretrain: The pretrain job.
        decode: The decode job.
    """

    name: str = "default"
    plugins: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


# --------------------------------------------------------------------------- zoo sections
_CLASSES: dict = {}


def experiment_class() -> type:
    """:class:`ExperimentConfig` whose ``decode`` section holds one section per zoo entry
    that has settings (``decode.<model>``), built from the registry as it is now
    (plugins included), so every model's options are config keys with their types and
    docs."""
    from . import zoo

    sections = tuple((n, e.settings, e.summary) for n, e in zoo.ZOO.items() if e.settings is not None)
    if sections not in _CLASSES:
        protocol = {f.name for f in fields(DecodeConfig)}
        clash = [n for n, _, _ in sections if n in protocol]
        if clash:
            raise ValueError(f"model name(s) {clash} are keys of the decode section; register them under other names.")
        doc = (DecodeConfig.__doc__ or "").rstrip() + "\n" + "".join(
            f"        {n}: Settings of model {n} ({summary}).\n" for n, _, summary in sections)
        decode = make_dataclass("DecodeConfig", [(n, s, field(default_factory=s)) for n, s, _ in sections],
                                bases=(DecodeConfig,), namespace={"__doc__": doc, "__module__": __name__})
        _CLASSES[sections] = make_dataclass("ExperimentConfig", [("decode", decode, field(default_factory=decode))],
                                            bases=(ExperimentConfig,),
                                            namespace={"__doc__": ExperimentConfig.__doc__, "__module__": __name__})
    return _CLASSES[sections]


_IMPORTED: dict = {}


def import_plugins(specs) -> list:
    """Import each plugin (a module name, or the path of a .py file) once; returns the
    modules. A plugin registers models (:func:`neuroconv.brain.zoo.register`), tasks or
    layers when imported."""
    import importlib
    import importlib.util
    import sys

    out = []
    for spec in specs or []:
        spec = str(spec)
        if spec in _IMPORTED:
            out.append(_IMPORTED[spec])
            continue
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise FileNotFoundError(f"plugin file {spec} does not exist (plugins: a module name or a .py file).")
            name = f"neuroconv_plugin_{path.stem}_{abs(hash(str(path))) % 10**8}"
            mod_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module
            try:
                mod_spec.loader.exec_module(module)
            except Exception:
                del sys.modules[name]
                raise
        else:
            try:
                module = importlib.import_module(spec)
            except ModuleNotFoundError as e:
                raise ModuleNotFoundError(f"plugin {spec!r} cannot be imported ({e}); give a module on the Python path "
                                          "or the path of a .py file.") from None
        _IMPORTED[spec] = module
        out.append(module)
    return out


def plugins_of(argv: list[str], resolve=None) -> list[str]:
    """The plugins a command line asks for: ``--plugins A B`` (or ``--plugins=[A, B]``)
    and the ``plugins`` key of its ``--config`` file (``resolve`` maps a config name to
    its path)."""
    import yaml

    found, i = [], 0
    while i < len(argv):
        flag, eq, inline = argv[i].partition("=")
        if flag == "--plugins":
            values = [inline] if eq else []
            j = i + 1
            while not eq and j < len(argv) and not argv[j].startswith("--"):
                values.append(argv[j])
                j += 1
            for v in values:
                v = v.strip()
                found += [x.strip() for x in v.strip("[]").split(",") if x.strip()] if v.startswith("[") else [v]
            i = j if not eq else i + 1
            continue
        if flag == "--config":
            value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            path = Path(value) if Path(value).is_file() else (resolve(value) if resolve else None)
            if path is not None and Path(path).is_file():
                doc = yaml.safe_load(Path(path).read_text()) or {}
                found += [str(p) for p in (doc.get("plugins") or [])] if isinstance(doc, dict) else []
        i += 1
    return list(dict.fromkeys(found))


def check_names(cfg) -> None:
    """Names that would only fail later are checked now, before any work, each against its
    registry: the task (``decode.task``), the models of ``decode.models``, the layer
    (``model.layer``, :data:`neuroconv.layers.LAYERS`) and the data sources of
    ``data.sources`` (:data:`neuroconv.pipelines.sources.SOURCES`)."""
    from neuroconv.layers import LAYERS
    from neuroconv.pipelines.sources import get_source

    from . import zoo
    from .tasks import task

    task(cfg.decode.task)
    comparator = cfg.decode.comparator
    if comparator and (comparator not in zoo.ZOO or zoo.ZOO[comparator].traits.family != "baseline"):
        raise ValueError(f"decode.comparator must name a baseline of the zoo "
                         f"({sorted(n for n, e in zoo.ZOO.items() if e.traits.family == 'baseline')}); "
                         f"got {comparator!r}.")
    unknown = [m for m in cfg.decode.models if m not in zoo.ZOO]
    if unknown:
        raise ValueError(f"decode.models: unknown model(s) {unknown}; the zoo has {sorted(zoo.ZOO)} (a model of "
                         "your own: --plugins your_module.py).")
    if cfg.model.layer not in LAYERS:
        raise ValueError(f"model.layer must be one of {sorted(LAYERS)} (neuroconv.layers.LAYERS); got "
                         f"{cfg.model.layer!r}.")
    for i, source in enumerate(cfg.data.sources):
        try:
            get_source(source.pipeline)
        except ValueError as e:
            raise ValueError(f"data.sources[{i}].pipeline: {e}") from None


def builtin_configs() -> dict[str, Path]:
    """Name -> path of the experiment configs shipped in ``neuroconv.configs``."""
    root = resources.files("neuroconv.configs")
    return {p.name[:-5]: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def config_path(name_or_path: str | Path) -> Path:
    """A built-in config name (``default``, ``abide``, ``eegbci``...) or a YAML path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    configs = builtin_configs()
    if str(name_or_path) in configs:
        return configs[str(name_or_path)]
    if path.suffix in (".yaml", ".yml"):
        raise FileNotFoundError(f"config file {path} does not exist.")
    raise FileNotFoundError(
        f"no config named {str(name_or_path)!r}; built-in configs: {sorted(configs)}, or pass the path of a "
        "YAML file."
    )


#: what each job's help shows: its description, and examples ``(command line, what it does)``
#: (a test parses every example, so each names configs, models and keys that exist)
_JOBS = {
    "pretrain": dict(
        description=("Self-supervised pretraining (next-step or masked) on one or more sequence stores. With no "
                     "arguments it runs the built-in default: simulated EEG goes through the real preprocessing "
                     "pipeline and a small long-conv model pretrains on it."),
        flags={"--resume": "pretrain.resume"},
        examples=[
            ("neuroconv pretrain", "the built-in default experiment on simulated EEG"),
            ("neuroconv pretrain --config eegbci --data-dir ~/data --max-epochs 20",
             "PhysioNet EEGBCI found in the data root ~/data (its MNE-eegbci-data/ folder)"),
            ("neuroconv pretrain --config abide --model.layer s4d --pretrain.objective masked",
             "another sequence layer and the masked objective on ABIDE"),
            ("neuroconv pretrain --config eegbci --print-config > mine.yaml",
             "the resolved config as a file to edit; then --config mine.yaml"),
        ]),
    "decode": dict(
        description=("Cross-validated decoding of recording labels (e.g. diagnosis) or event labels (e.g. motor "
                     "imagery): neural models and the field's baselines on the same folds and inputs, compared "
                     "over independent units. With no arguments: the built-in demo on simulated EEG."),
        flags={"--compare": "decode.compare", "--transductive": "decode.transductive"},
        examples=[
            ("neuroconv decode --config eegbci --compare",
             "every model of the zoo that applies to the data, ours and the baselines"),
            ("neuroconv decode --decode.pretrained runs/RUN --decode.models finetune probe scratch",
             "a pretrained backbone, fine-tuned and probed, vs training from scratch"),
            ("neuroconv decode --data.stores DIR --decode.query '' --decode.target diagnosis --compare",
             "a store of your own (every recording), one label per recording (a manifest column)"),
            ("neuroconv decode --config eegbci --print-config > mine.yaml",
             "the resolved config as a file to edit; then --config mine.yaml"),
        ]),
}


def _lists(job: str, full: bool = False):
    """The job's lists for its ``--help``, read from the registries as they are now;
    ``full`` (for ``--help-all``): one row per model with what it is."""
    from neuroconv.layers import LAYERS
    from neuroconv.pipelines.sources import source_names

    from . import zoo
    from .tasks import TASKS

    out = []
    if job == "decode":
        groups = {"windows": ("classification", "regression"), "staging": ("staging",),
                  "detection": ("detection",)}
        rows = []
        for task, kinds in groups.items():
            for family, label in (("ours", "ours"), ("baseline", "baselines")):
                names = [n for n, e in zoo.ZOO.items() if e.traits.family == family and set(kinds) & set(e.traits.tasks)]
                if names:
                    rows.append(f"{task}, {label}: {', '.join(names)}")
        out.append(("models (--decode.models NAME ...; by task; what each is, and its settings: --help-all)", rows))
        if full:
            out[-1] = ("models (--decode.models NAME ...)", [(n, f"{e.summary} [{e.traits.family}; "
                                                                 f"{'/'.join(e.traits.tasks)}; {e.traits.library}]")
                                                             for n, e in zoo.ZOO.items()])
    names = [f"configs (--config NAME): {', '.join(sorted(builtin_configs()))}",
             f"layers (--model.layer): {', '.join(LAYERS)}",
             *([f"tasks (--decode.task): {', '.join(TASKS)}"] if job == "decode" else []),
             f"data sources (data.sources[i].pipeline; neuroconv preprocess --help): {', '.join(source_names())}"]
    out.append(("names (from the registries)", names))
    return out


def _elsewhere(job: str):
    """``flag -> message`` for a flag that is an option of ``neuroconv preprocess``
    (read from the data-source registry), else None."""

    def where(flag: str) -> str | None:
        import re

        from neuroconv.pipelines.sources import SOURCES

        groups, what, kwarg = {}, "", None
        for row in SOURCES.values():
            for title, opt in row.cli_options():
                if (flag in opt.flags or flag in opt.deprecated) and opt.refuse is None:
                    groups.setdefault(title.split(" (")[0] if title else "", []).append(row.name)
                    what, kwarg = what or opt.help, kwarg or opt.fills
        if not groups:
            return None
        what = re.split(r"[;:]", re.sub(r"\s*\([^()]*\)", "", what))[0].strip()
        what = "" if what.startswith("e.g.") else f" ({what})"
        places = ", ".join(("every source" if len(names) == len(SOURCES) else ", ".join(names))
                           + (f" (group: {g})" if g else "") for g, names in groups.items())
        args = (f", or put it in the args of a data.sources entry of the config (args: {{{kwarg}: VALUE}})"
                if kwarg else "")
        return (f"`{flag}`{what} is an option of `neuroconv preprocess SOURCE`, for {places}. {job} reads sequence "
                f"stores made by preprocess: run `neuroconv preprocess SOURCE ... {flag} VALUE --out STORE` first and "
                f"give --data.stores STORE{args}.")

    return where


#: data keys only pretraining reads (decode's --help leaves them to --help-all)
_PRETRAIN_DATA_KEYS = ("data.window_seconds", "data.stride_seconds", "data.split_by", "data.val_fraction")


def job_parser(job: str) -> JobParser:
    """The command line of ``neuroconv pretrain`` or ``neuroconv decode``, over the
    experiment config with the zoo's sections as they are registered now (import plugins
    first: :func:`import_plugins`). Its ``--help`` shows the job's own sections and the
    lists of the registries (configs, models, tasks, layers, data sources)."""
    if job not in _JOBS:
        raise ValueError(f"`job` must be 'pretrain' or 'decode'; got {job!r}.")
    from . import zoo

    spec = _JOBS[job]
    return JobParser(
        experiment_class(), prog=f"neuroconv {job}", section=job, description=spec["description"],
        flags=spec["flags"], resolve_config=config_path, default_config="default",
        replace_together=(("data.stores", "data.sources"),),
        aliases={"--data-dir": ("data.data_dir", "root folder holding each data set of data.sources in its own "
                                                 "folder (default: NEUROCONV_DATA, else the library's place)")},
        help_sections=("data", "model", job), examples=spec["examples"], lists=lambda full: _lists(job, full),
        help_skip=_PRETRAIN_DATA_KEYS * (job == "decode")
        + tuple(f"decode.{n}" for n, e in zoo.ZOO.items() if e.settings is not None),
        elsewhere=_elsewhere(job))


def load_config(name_or_path: str | Path | None = None, overrides: dict | None = None,
                job: str = "pretrain") -> ExperimentConfig:
    """An experiment config: a built-in name or YAML path, plus ``{dotted key: value}``
    overrides (checked like command-line flags). The plugins it names are imported first."""
    path = config_path(name_or_path or "default")
    import_plugins(plugins_of(["--config", str(path)]) + list((overrides or {}).get("plugins") or []))
    cfg = job_parser(job).load(path, overrides)
    check_names(cfg)
    return cfg
