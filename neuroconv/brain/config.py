"""Experiment configs of the brain-data jobs (``neuroconv pretrain`` / ``neuroconv decode``).

One YAML file describes one experiment (``configs/*.yaml``, shipped with the package):
its data, its model and the ``pretrain`` and ``decode`` jobs. Both jobs read the whole
file (decode uses the pretrain section too, to pretrain inside folds). Parsing, dotted
flags, ``--print_config`` and error messages come from :mod:`neuroconv.engine.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np

from neuroconv.engine.config import JobParser, TrainerConfig, to_dict
from neuroconv.model import ModelConfig as BackboneConfig

__all__ = ["ExperimentConfig", "DataConfig", "SourceConfig", "ModelConfig", "PretrainConfig", "DecodeConfig",
           "CovConvConfig",
           "FoldPretrainConfig", "load_config", "builtin_configs", "config_path", "job_parser", "to_dict"]


@dataclass
class SourceConfig:
    """One input data set, turned into a sequence store by a pipeline before training.

    Args:
        pipeline: Pipeline name: simulate_eeg, simulate_fmri, eeg, fmri, abide, eegbci, eeg_notebooks.
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
class CovConvConfig:
    """The covconv decoder (:class:`neuroconv.brain.covconv.CovConvNet`): long-conv filters,
    shrunk covariances, tangent space (or log-variance), linear head.

    Args:
        readout: tangent (the Riemannian pipelines' readout: connectivity, motor imagery,
            ERPs with prototypes), logvar (ShallowConvNet form, band power after spatial
            filters), or auto (tangent).
        n_filters: Temporal filters shared by every channel.
        identity: With kernel_init geometric or random, filter 0 starts as the identity (a
            gated residual; box starts it as the identity anyway): with one filter and no
            spatial filters the model starts as the connectivity baseline.
        spatial: Spatial filters per temporal filter (0: the channels as they are).
        filter_seconds: Half-length of the centred kernels, in seconds.
        erp_prototypes: Add the training classes' mean responses as extra channels before
            the covariance (the ERP covariances of xDAWN/Riemannian ERP pipelines).
        diagonal: Tangent features include the diagonal (log-variances; false: exactly
            nilearn's connectivity features).
        means: Add the filtered channels' means (first-order statistics) to the features.
        init_head: Start the head at the logistic regression of the training features
            (C = head_c), the connectivity baseline's solution.
        head_c: Inverse L2 strength of that logistic regression (ridge penalty 1/C for
            regression); null: chosen from decode.c_grid on the inner split, as every
            model's regulariser is.
        crop_seconds: Train on random crops of this length and average predictions over
            test_crops evenly spaced crops (0: whole windows).
        test_crops: Crops averaged at test time.
        dropout: Dropout on the standardised features.
        lam: Squash threshold of the kernels.
        smooth_width: Moving-average width of the kernels (odd).
        kernel_init: box (filter f starts as a moving average of width 3**f: identity,
            3, 9... steps, octave-spaced low-pass filters), geometric or random.
        bands: Band filters instead of long kernels: a list of [lo, hi] in Hz (each band's
            two edges are learned) or null (the signal itself, as the connectivity
            baseline sees it), e.g. [null, [0.01, 0.027], [0.027, 0.073]]; "classes" puts
            one band of +-band_halfwidth Hz at each class's frequency (SSVEP classes named
            "20Hz", "30Hz") plus the signal itself. Empty: long-conv kernels
            (n_filters, kernel_init).
        band_halfwidth: Half-width in Hz of the bands that bands: classes builds.
        band_edge: Edge softness of the bands, a fraction of their width.
        band_lr: Learning rate of the band edges (their logarithms; no weight decay).
        train: What end-to-end training moves: all (filters, spatial filters and head) or
            filters (only the filters, against the head at its logistic-regression start,
            without feature dropout; reference, standardisation and head are then fitted
            again on the learned filters).
        reference: The tangent space's reference point: riemann (the geometric mean of the
            training covariances, as nilearn's tangent connectivity takes it) or logeuclid
            (the log-Euclidean mean: one eigendecomposition per window instead of one per
            window and iteration; band-filtered covariances are ill-conditioned and the
            geometric mean's iteration then needs many steps).
    """

    readout: Literal["auto", "tangent", "logvar"] = "auto"
    n_filters: int = 2
    identity: bool = True
    spatial: int = 0
    filter_seconds: float = 0.5
    erp_prototypes: bool = False
    diagonal: bool = True
    means: bool = False
    init_head: bool = True
    head_c: Optional[float] = None
    crop_seconds: float = 0.0
    test_crops: int = 5
    dropout: float = 0.5
    lam: float = 0.0
    smooth_width: int = 5
    kernel_init: Literal["box", "geometric", "random"] = "box"
    bands: Union[str, list[Optional[list[float]]]] = field(default_factory=list)
    band_halfwidth: float = 1.0
    band_edge: float = 0.1
    band_lr: float = 0.01
    reference: Literal["riemann", "logeuclid"] = "riemann"
    train: Literal["all", "filters"] = "all"


@dataclass
class DecodeConfig(TrainerConfig):
    """Supervised decoding with cross-validation, neural models and baselines on the same folds.

    Args:
        target: A manifest column (one label per recording, e.g. diagnosis) or "events"
            (one label per window around each event, e.g. left/right).
        query: pandas query selecting recordings from the manifest, e.g. "imagery == True".
        task: classification, regression, or auto (decided from the target's values; the
            choice and its reason are logged and saved).
        event_labels: Event classes to decode, in this order (empty: all).
        tmin: Start of event windows relative to each event, in seconds.
        tmax: End of event windows relative to each event, in seconds.
        cv: group_kfold (stratified), leave_group_out, or none (train once on everything;
            evaluate on test_stores).
        n_splits: Folds of group_kfold.
        group_by: Manifest column whose groups the folds keep apart (subject, session, run, site,
            or id: each recording its own group).
        within: Cross-validate separately inside each value of this manifest column (e.g.
            subject: within-subject decoding, one model per subject and fold); empty: pooled.
        models: Neural models (scratch, finetune, probe, attention, covconv) and baselines
            (connectivity; ts_lr, xdawn_ts, csp_lda, erp_lda, bandpower; braindecode's
            eegnet and shallow_fbcsp, trained by the same loop) on the same folds.
        compare: Run every neural model that applies and every baseline that fits the data.
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
        connectivity_kind: tangent or correlation (the connectivity baseline).
        site_centering: Remove site effects from the connectivity baseline's features
            without labels: each site centred on its training samples' mean, fitted inside
            each fold; a test site never seen in training on its own test samples' mean
            (recorded in metrics.json).
        pool: How the sequence models (scratch, attention, finetune, probe) pool their
            outputs over time before the head: mean (over the valid steps) or last.
        class_weight: balanced (every class weighs the same in every model's loss: class
            weights in losses and logistic regressions, uniform LDA priors) or none.
        c_grid: Inverse L2 strengths every regularised model (covconv's head, probe, the
            logistic regressions of the baselines) chooses from on the inner split, by
            the class-weighted log loss of its validation part.
        refit: After the inner split has made every choice (regulariser, training
            budget), fit each model again on the whole training fold with those choices.
        unit: The independent unit for intervals and paired tests: a manifest column,
            or auto (site when group_by is site, else subject; the groups when a single
            subject is tested).
        n_boot: Bootstrap resamples of the units for the 95% intervals.
        n_perm: Sign-flip permutations of the units for the paired tests.
        n_jobs: Threads of the tangent spaces' geometric means (connectivity and covconv; -1:
            all CPUs).
        covconv: The covconv decoder's settings.
    """

    max_epochs: int = 30
    batch_size: int = 16
    target: str = "events"
    query: str = ""
    task: Literal["auto", "classification", "regression"] = "auto"
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
    connectivity_kind: Literal["tangent", "correlation"] = "tangent"
    site_centering: bool = False
    pool: Literal["mean", "last"] = "mean"
    class_weight: Literal["balanced", "none"] = "balanced"
    c_grid: list[float] = field(default_factory=lambda: [float(c) for c in np.logspace(-4, 2, 13)])
    refit: bool = True
    unit: str = "auto"
    n_boot: int = 2000
    n_perm: int = 2000
    n_jobs: int = 1
    covconv: CovConvConfig = field(default_factory=CovConvConfig)


@dataclass
class ExperimentConfig:
    """An experiment: its data, model, and the pretrain and decode jobs.

    Args:
        name: Experiment name (prefix of its run folders).
        data: Data inputs and windows.
        model: The backbone.
        pretrain: The pretrain job.
        decode: The decode job.
    """

    name: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


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


def job_parser(job: str) -> JobParser:
    """The command line of ``neuroconv pretrain`` or ``neuroconv decode``."""
    if job == "pretrain":
        return JobParser(
            ExperimentConfig, prog="neuroconv pretrain", section="pretrain", resolve_config=config_path,
            default_config="default", replace_together=(("data.stores", "data.sources"),),
            flags={"--resume": "pretrain.resume"},
            description=("Self-supervised pretraining (next-step or masked) on one or more sequence stores. With "
                         "no arguments it runs the built-in default: simulated EEG goes through the real "
                         "preprocessing pipeline and a small long-conv model pretrains on it (about a minute on 2 "
                         "CPU cores). --config NAME picks a built-in experiment (default, abide, eegbci, "
                         "muse_p300, muse_n170) or a YAML file."))
    if job == "decode":
        return JobParser(
            ExperimentConfig, prog="neuroconv decode", section="decode", resolve_config=config_path,
            default_config="default", replace_together=(("data.stores", "data.sources"),),
            flags={"--compare": "decode.compare", "--transductive": "decode.transductive"},
            description=("Cross-validated decoding of recording labels (e.g. diagnosis) or event labels (e.g. "
                         "motor imagery), with neural models and classical baselines on the same folds and "
                         "inputs. With no arguments it runs the built-in demo on the simulated default data."))
    raise ValueError(f"`job` must be 'pretrain' or 'decode'; got {job!r}.")


def load_config(name_or_path: str | Path | None = None, overrides: dict | None = None,
                job: str = "pretrain") -> ExperimentConfig:
    """An experiment config: a built-in name or YAML path, plus ``{dotted key: value}``
    overrides (checked like command-line flags)."""
    return job_parser(job).load(config_path(name_or_path or "default"), overrides)
