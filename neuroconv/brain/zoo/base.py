"""The zoo's one registry and one interface: every model, how it is made, and what it reports.

Every decoder and every baseline is a :class:`Decoder` registered under a name with
:func:`register`: its :class:`Traits` (ours or a baseline, neural or classical, the data
and tasks it applies to, what it needs), its class, its own settings (a dataclass: the
``decode.<name>`` section of the experiment config, or none) and a one-line summary. The
decode job (and the scikit-learn estimators) make a fresh decoder per fold with
:func:`make` and hand it a :class:`TrainingPart`: the training samples of one fold, the
fold's inner split (the group-aware :class:`~neuroconv.engine.folds.Holdout` on which
*every* choice is made: early stopping, regularisers, the head's C), the class weighting
and the seed. The decoder fits, then predicts any samples of the same
:class:`DecodeData`, then reports what it chose (:meth:`Decoder.report`).

The same chance for every model is built in here, not left to each model:

- one grid of regularisers (``decode.c_grid``, handed to every decoder in its
  :class:`Context`) and one criterion to choose from it (:func:`selection_loss`: the
  class-weighted log loss on the inner validation part, the very loss on which the
  neural models early-stop);
- one class weighting (:meth:`TrainingPart.class_weights`, ``decode.class_weight``);
- one refit rule: after the inner split has chosen, the model is fitted again on the
  whole training part with that choice (scikit-learn's ``GridSearchCV(refit=True)``).

A choice at the edge of the grid extends the grid by a decade and chooses again (up to
three times), and the report records it.

A model from outside the package registers the same way, from its own module (see
docs/guide/extending.md): ``neuroconv decode --plugins my_models.py`` imports it before
the config is read, so its settings section is a config key like any other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from neuroconv.engine.folds import Holdout

__all__ = ["Traits", "Entry", "Decoder", "Context", "DecodeData", "TrainingPart", "register", "make", "entry",
           "ZOO", "C_GRID", "choose", "selection_loss", "choose_on_holdout", "path_estimator", "regulariser_path", "proba_of",
           "edge_warning", "extend_grid", "MAX_EXTENSIONS", "CLASS_WEIGHTS", "class_weights"]

CLASS_WEIGHTS = ("balanced", "none")
#: the inverse L2 strengths every regularised model chooses from by default
#: (``decode.c_grid``: 13 log-spaced values, 1e-4 .. 1e2)
C_GRID = tuple(float(c) for c in np.logspace(-4, 2, 13))


@dataclass(frozen=True)
class Traits:
    """What a model is and what it needs.

    Attributes:
        family: ``"ours"`` (neuroconv's models) or ``"baseline"`` (the field's pipelines).
            Paired comparisons run ours against every other model.
        kind: ``"neural"`` (trained by the engine's fit loop) or ``"classical"``
            (a scikit-learn pipeline).
        modalities: the data it applies to (``"eeg"``, ``"meg"``, ``"fmri"``).
        tasks: the target kinds it predicts: ``"classification"``, ``"regression"``
            (windows), ``"detection"``, ``"staging"`` (dense tasks).
        needs_backbone: needs a pretrained backbone (finetune, probe).
        library: whose implementation it is (neuroconv, nilearn, pyriemann, mne,
            braindecode, moabb, yasa...).
        paradigm: what it was designed for (``"any"``, ``"connectivity"``,
            ``"motor imagery"``, ``"erp"``, ``"ssvep"``, ``"sleep"``), for ``--compare``'s
            choice.
    """

    family: str
    kind: str
    modalities: tuple[str, ...]
    tasks: tuple[str, ...] = ("classification",)
    needs_backbone: bool = False
    library: str = "neuroconv"
    paradigm: str = "any"

    def __post_init__(self):
        if self.family not in ("ours", "baseline"):
            raise ValueError(f"Traits.family must be 'ours' or 'baseline'; got {self.family!r}.")
        if self.kind not in ("neural", "classical"):
            raise ValueError(f"Traits.kind must be 'neural' or 'classical'; got {self.kind!r}.")


@dataclass(frozen=True)
class Entry:
    """A zoo entry: ``decoder(name, settings, context, **options)`` makes the model.

    ``settings`` is the dataclass of the model's own config section (``decode.<name>``),
    or None when the model has no settings; ``options`` are fixed keyword arguments of
    this entry (e.g. the layer of ``attention``)."""

    name: str
    traits: Traits
    decoder: type
    settings: type | None
    summary: str
    options: dict = field(default_factory=dict)


#: name -> :class:`Entry`; filled by :func:`register` (the modules of
#: :mod:`neuroconv.brain.zoo`, and plugins)
ZOO: dict[str, Entry] = {}


def register(name: str, traits: Traits, decoder: type, *, settings: type | None = None, summary: str = "",
             **options) -> Entry:
    """Register ``decoder`` (a :class:`Decoder` subclass) under ``name``.

    ``settings``: a dataclass whose fields are the model's options, with defaults and an
    ``Args:`` docstring (they become the config keys ``decode.<name>.<field>``, documented
    in ``--help``). ``options``: fixed keyword arguments passed to ``decoder``. Returns the
    :class:`Entry`. A name registered twice is an error."""
    if not name.isidentifier():
        raise ValueError(f"model names must be Python identifiers (they are config keys); got {name!r}.")
    if name in ZOO:
        raise ValueError(f"model {name!r} is registered twice")
    if not (isinstance(decoder, type) and issubclass(decoder, Decoder)):
        raise TypeError(f"register({name!r}): `decoder` must be a subclass of zoo.Decoder; got {decoder!r}.")
    if settings is not None and not dataclasses.is_dataclass(settings):
        raise TypeError(f"register({name!r}): `settings` must be a dataclass; got {settings!r}.")
    ZOO[name] = e = Entry(name, traits, decoder, settings, summary, dict(options))
    return e


def entry(name: str) -> Entry:
    """The entry ``name``, or an error that lists the zoo."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; the zoo has {sorted(ZOO)} (decode.models).")
    return ZOO[name]


@dataclass(frozen=True)
class Context:
    """What every model of one decode run shares.

    Attributes:
        trainer: the training-loop settings (:class:`~neuroconv.engine.config.TrainerConfig`
            of the ``decode`` section: epochs, batch, learning rate, patience...).
        backbone: the backbone's :class:`~neuroconv.brain.config.ModelConfig` (the
            ``model`` section), for the sequence models.
        c_grid: the regularisers every model chooses from (``decode.c_grid``).
        seed: the seed of every random choice.
        n_jobs: threads of the tangent spaces' means (``decode.n_jobs``).
        refit: after the inner split has made every choice, fit again on the whole
            training part with those choices (``decode.refit``).
        budget: ``"steps"`` (every neural model gets the same optimiser-step budget) or
            ``"epochs"`` (each its own batch size's epochs; ``decode.budget``).
        early_stopping: what the neural models' early stopping follows on the inner
            split: ``"loss"`` or ``"metric"`` (the task's own score; the dense tasks,
            ``decode.early_stopping``).
        settings: every model's settings of the run, by name (a model that contains
            another, as covconv its baseline, makes it with the run's settings).
    """

    trainer: object
    backbone: object = None
    c_grid: tuple = C_GRID
    seed: int = 0
    n_jobs: int = 1
    refit: bool = True
    budget: str = "steps"
    early_stopping: str = "loss"
    settings: dict = field(default_factory=dict)


def make(name: str, context: Context, settings=None) -> "Decoder":
    """A fresh decoder ``name`` with its ``settings`` (an instance of the entry's settings
    dataclass; None: its defaults)."""
    e = entry(name)
    if settings is None and e.settings is not None:
        settings = e.settings()
    return e.decoder(name, settings, context, **e.options)


def choose(models, *, compare: bool, targets, modalities: set) -> list[str]:
    """The models of a run: ``models`` (``decode.models``), and with ``compare`` ours first
    and every entry that applies: its tasks include the targets' kind, its modalities the
    data's, and :meth:`Decoder.applies` to the targets (those that need a pretrained
    backbone are dropped later when there is none). Unknown names are an error listing
    the zoo."""
    models = list(models)
    if compare:
        fits = [name for name, e in ZOO.items()
                if targets.kind in e.traits.tasks and set(e.traits.modalities) & set(modalities)
                and e.decoder.applies(targets)]
        ours = [m for m in fits if ZOO[m].traits.family == "ours"]
        models = list(dict.fromkeys(ours + models + [m for m in fits if m not in ours]))
    for m in models:
        entry(m)
    return models


# --------------------------------------------------------------------------- data
@dataclass
class DecodeData:
    """The samples of one decode job, as every model sees them.

    Attributes:
        windows: :class:`~neuroconv.brain.data.StoreWindows` (or ``ArrayWindows``): item
            ``i`` is sample ``i``'s normalised window, ``windows.subset(idx)`` the
            samples ``idx`` as a dataset for batches, ``windows.subset(idx).arrays()``
            as arrays for scikit-learn pipelines.
        y: ``(n,)`` integer classes ``0..K-1`` or regression targets.
        kind: ``"classification"`` or ``"regression"``.
        classes: class names (empty for regression).
        groups: ``(n,)`` the group of each sample (``decode.group_by``).
        recordings, starts, stops: ``(n,)`` the recording of each sample and its window
            (for inner splits in time).
        columns: per-sample labels from the manifests, scoped like groups (e.g.
            ``columns["site"]``, when the stores have a site column): what a model may
            read besides the signals (site centring reads the sites).
    """

    windows: object
    y: np.ndarray
    kind: str
    classes: list
    groups: np.ndarray
    recordings: np.ndarray
    starts: np.ndarray
    stops: np.ndarray
    columns: dict = field(default_factory=dict)

    @property
    def n_out(self) -> int:
        return len(self.classes) or 1

    def column(self, name: str, model: str) -> np.ndarray:
        """The per-sample labels of manifest column ``name`` (an error naming ``model``
        when the stores have no such column)."""
        if name not in self.columns:
            raise ValueError(f"model {model!r} needs the manifest column {name!r}, which the decode data's stores "
                             f"do not have (columns available: {sorted(self.columns)}).")
        return self.columns[name]

    def channels(self) -> tuple[str, list]:
        """``(key, names)`` of the one channel set (an error when the samples have several)."""
        sets = self.windows.channel_sets()
        if len(sets) != 1:
            raise ValueError("this model needs one channel set across the decode data; map the recordings onto a "
                             "common set when preprocessing (e.g. --channel-set 10-20).")
        return next(iter(sets.items()))

    def sfreq(self, name: str, one: bool = True) -> float:
        """The samples' sampling rate (the lowest when ``one`` is False); model ``name``
        needs one rate when ``one`` (an error otherwise)."""
        sfreqs = self.windows.sfreqs()
        if one and len(sfreqs) != 1:
            raise ValueError(f"model {name!r} needs one sampling rate; the data have {sorted(sfreqs)}. Resample the "
                             "stores to one rate when preprocessing (--resample).")
        return min(sfreqs)

    @property
    def l_max(self) -> int:
        return int((self.stops - self.starts).max())


def class_weights(y: np.ndarray, n_classes: int, how) -> np.ndarray | None:
    """Per-class weights for labels ``y``: ``"balanced"`` is scikit-learn's
    ``n / (K · count_k)`` (a class absent from ``y`` gets weight ``n / K``), ``"none"``
    is None (every sample counts once), a dict ``{class index: weight}`` gives them
    (1 for the classes it leaves out). This is the one place ``decode.class_weight`` is
    checked."""
    if isinstance(how, dict):
        w = np.ones(n_classes)
        for k, v in how.items():
            w[int(k)] = float(v)
        return w
    if how not in CLASS_WEIGHTS:
        raise ValueError(f"decode.class_weight must be one of {CLASS_WEIGHTS}; got {how!r}.")
    if how == "none":
        return None
    counts = np.bincount(np.asarray(y).astype(int), minlength=n_classes)
    return len(y) / (n_classes * np.maximum(counts, 1))


@dataclass
class TrainingPart:
    """One fold's training side, as a model receives it.

    Attributes:
        data: the job's :class:`DecodeData`.
        train: sample indices of the training part.
        inner: the inner split of ``train`` (absolute sample indices in ``inner.train``
            and ``inner.val``; ``inner.by`` says how it was made).
        class_weight: ``"balanced"``, ``"none"`` or a dict (``decode.class_weight``).
        seed: the seed of every random choice.
        fold: the fold number (for logs and reports).
        backbone: a callable returning the pretrained backbone for this fold (or None).
        log: where progress lines go.
    """

    data: DecodeData
    train: np.ndarray
    inner: Holdout
    class_weight: object = "balanced"
    seed: int = 0
    fold: int = 0
    backbone: Callable | None = None
    log: Callable = field(default=lambda *_: None)

    def class_weights(self, idx=None) -> np.ndarray | None:
        """The class weights of the labels of ``idx`` (default: the whole training part;
        for staging, of every labelled epoch of those recordings)."""
        if self.data.kind not in ("classification", "staging"):
            return None
        idx = self.train if idx is None else idx
        y = self.data.y[idx]
        if self.data.kind == "staging":
            y = np.concatenate([np.asarray(v) for v in y])
            y = y[y >= 0]
        return class_weights(y, self.data.n_out, self.class_weight)

    def sample_weights(self, idx, weights_from=None) -> np.ndarray | None:
        """Per-sample weights of ``idx`` under the class weights of ``weights_from``
        (default: ``idx`` itself); None when nothing is weighted."""
        cw = self.class_weights(idx if weights_from is None else weights_from)
        return None if cw is None else cw[self.data.y[idx].astype(int)]


# --------------------------------------------------------------------------- selection
def selection_loss(y_val, out_val, kind: str, n_classes: int, sample_weight=None) -> float:
    """The criterion of every choice made on the inner split: for classification the
    (class-weighted) log loss of the probabilities ``out_val (n, K)`` — the loss on which
    the neural models early-stop; for regression the (weighted) mean squared error."""
    from sklearn.metrics import log_loss, mean_squared_error

    if kind == "regression":
        return float(mean_squared_error(y_val, out_val, sample_weight=sample_weight))
    return float(log_loss(y_val, np.clip(out_val, 1e-15, 1.0), sample_weight=sample_weight,
                          labels=list(range(n_classes))))


def choose_on_holdout(fit_score: Callable[[float], float], grid) -> tuple[float, dict]:
    """The value of ``grid`` whose ``fit_score(value)`` (a loss: lower is better) is
    lowest; returns ``(value, {value: loss})``. The values are tried in ascending order
    (from the strongest regularisation: a path that :func:`path_estimator` warm-starts);
    ties go to the first."""
    scores = {float(c): float(fit_score(float(c))) for c in sorted(grid)}
    finite = {c: s for c, s in scores.items() if np.isfinite(s)}
    if not finite:
        raise FloatingPointError(f"every value of the grid {list(scores)} gave a non-finite validation loss.")
    best = min(finite, key=lambda c: (finite[c], list(finite).index(c)))
    return best, scores


def path_estimator(est):
    """``est`` set to warm-start each fit from the previous solution when it can (a
    ``LogisticRegression`` fitted along an ascending grid of C, as scikit-learn's
    regularisation paths do): the same solutions to the solver's tolerance, in fewer
    iterations."""
    from sklearn.linear_model import LogisticRegression

    return est.set_params(warm_start=True) if isinstance(est, LogisticRegression) else est


def proba_of(est, X, n_out: int) -> np.ndarray:
    """``est.predict_proba(X)`` spread over all ``n_out`` classes (a class the training
    part lacked gets probability 0), in float64 with rows that sum to 1 to float64
    precision (an estimator fitted on float32 features returns float32 probabilities,
    whose rows miss 1 by float32 rounding)."""
    p = np.asarray(est.predict_proba(X), dtype=np.float64)
    proba = np.zeros((len(X), n_out))
    proba[:, np.asarray(est.classes_).astype(int)] = p / p.sum(axis=1, keepdims=True)
    return proba


def regulariser_path(est, X_in, y_in, X_va, y_va, *, kind: str, n_out: int, grid, sample_weight=None):
    """Choose the regulariser of ``est`` (a ``LogisticRegression``, a ``Ridge`` with
    ``alpha = 1/C``, or a pipeline ending in one) from ``grid``: fitted on ``(X_in,
    y_in)`` along the grid (warm-started), scored by :func:`selection_loss` on ``(X_va,
    y_va)``. Returns ``(C, {C: loss})``; ``est`` is left fitted at the last C tried."""
    final = est[-1] if hasattr(est, "steps") else est
    path_estimator(final)

    def loss(C):
        final.set_params(**({"alpha": 1.0 / C} if kind == "regression" else {"C": C}))
        est.fit(X_in, y_in)
        out = est.predict(X_va) if kind == "regression" else proba_of(est, X_va, n_out)
        return selection_loss(y_va, out, kind, n_out, sample_weight)

    return choose_on_holdout(loss, grid)


#: how many times a choice at the grid's edge extends the grid by a decade
MAX_EXTENSIONS = 3


def extend_grid(grid, value) -> list[float] | None:
    """The values one decade beyond the edge of ``grid`` that ``value`` sits at, at the
    grid's own (logarithmic) spacing; None when ``value`` lies inside the grid."""
    g = sorted(float(v) for v in grid)
    if len(g) < 2 or g[0] < value < g[-1]:
        return None
    step = float(np.median(np.diff(np.log10(g))))
    n = max(1, int(round(1.0 / step)))
    if value <= g[0]:
        return [g[0] * 10 ** (-step * k) for k in range(n, 0, -1)]
    return [g[-1] * 10 ** (step * k) for k in range(1, n + 1)]


def edge_warning(name: str, param: str, value: float, grid) -> str | None:
    """A warning text when ``value`` sits at either end of ``grid`` (else None)."""
    grid = sorted(float(g) for g in grid)
    if len(grid) > 1 and (value <= grid[0] or value >= grid[-1]):
        return (f"{name}: {param}={value:g} is at the edge of the grid [{grid[0]:g}, {grid[-1]:g}], extended "
                f"{MAX_EXTENSIONS} times by a decade; the best value may lie further out (widen decode.c_grid).")
    return None


class Decoder:
    """One model of the zoo: ``fit(part)``, ``predict(data, idx)``, ``report()``.

    Made by :func:`make` as ``Decoder(name, settings, context, **options)``: ``settings``
    is the model's own config section (an instance of its entry's settings dataclass, or
    None), ``context`` the :class:`Context` every model of the run shares.

    ``predict`` returns class probabilities ``(n, K)`` (rows sum to 1) or regression
    predictions ``(n,)``; it changes no state. ``report(data, idx)`` returns a JSON-safe dict with what was chosen and
    learned on this fold: ``hyperparameters`` (the choices made on the inner split),
    ``training`` (steps, the step of the kept state), ``kernels`` (learned filters'
    summary), ``warnings``, and whatever the model adds. :meth:`summarize` turns the
    per-fold reports into the model's own keys of ``metrics.json``.
    """

    def __init__(self, name: str, settings, context: Context):
        self.name, self.settings, self.context = name, settings, context
        self.hyperparameters: dict = {}
        self.training: dict = {}
        self.kernels: dict | None = None
        self.warnings: list[str] = []

    def fit(self, part: TrainingPart) -> "Decoder":
        raise NotImplementedError

    def predict(self, data: DecodeData, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def choose_c(self, est, part: TrainingPart, X_in, X_va, *, y_in=None, y_va=None, sample_weight=None) -> float:
        """The regulariser ``C`` of ``est`` (see :func:`regulariser_path`) chosen on the
        inner split's features ``X_in`` (inner training part) and ``X_va`` (inner
        validation part, with targets ``y_in``/``y_va`` and validation weights
        ``sample_weight``: default, the part's samples and class weights) from the run's
        grid, recorded in the report; 1 when the part has no inner validation samples. A choice at the grid's edge extends the grid by a
        decade beyond that edge (:func:`extend_grid`) and chooses again, up to
        :data:`MAX_EXTENSIONS` times; the report records every extension
        (``grid_extended``), and warns when the choice is still at the edge."""
        inner, data, grid = part.inner, part.data, list(self.context.c_grid)
        if not len(inner.val):
            self.hyperparameters.update(C=1.0, note="no inner validation part: C fixed at 1")
            return 1.0

        if y_in is None:
            y_in, y_va = data.y[inner.train], data.y[inner.val]
            sample_weight = part.sample_weights(inner.val, inner.train)
        kind = "regression" if data.kind == "regression" else "classification"

        def path(values):
            return regulariser_path(est, X_in, y_in, X_va, y_va, kind=kind, n_out=data.n_out, grid=values,
                                    sample_weight=sample_weight)[1]

        scores, extended = path(grid), []
        C = choose_on_holdout(scores.get, scores)[0]
        for _ in range(MAX_EXTENSIONS):
            more = extend_grid(sorted(scores), C)
            if more is None:
                break
            extended.append([float(c) for c in more])
            scores.update(path(more))
            C = choose_on_holdout(scores.get, scores)[0]
        self.warn(edge_warning(self.name, "C", C, sorted(scores)))
        self.hyperparameters.update(C=C, selection_loss=scores)
        if extended:
            self.hyperparameters["grid_extended"] = extended
        return C

    def warn(self, text: str | None) -> None:
        """Keep a warning for the report (decode logs each once and writes it to metrics.json)."""
        if text:
            self.warnings.append(text)

    def report(self, data: DecodeData | None = None, idx=None) -> dict:
        """What was chosen and learned on this fold (JSON-safe); ``data, idx``: the test
        samples it predicted, for reports that describe them."""
        out = {"hyperparameters": dict(self.hyperparameters)}
        if self.training:
            out["training"] = dict(self.training)
        if self.kernels is not None:
            out["kernels"] = self.kernels
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def summarize(cls, reports: list[dict]) -> dict:
        """The model's own keys of its ``metrics.json`` section, from its per-fold
        :meth:`report` s (none by default)."""
        return {}

    def save(self, folder) -> None:
        """Write what this fold's fitted model learned into ``folder`` of the run (e.g.
        plots of its kernels); nothing by default."""

    @classmethod
    def applies(cls, targets) -> bool:
        """Whether ``--compare`` runs this model on these targets (beyond its traits'
        tasks and modalities; e.g. the SSVEP baselines need classes named by frequency)."""
        return True
