"""The field's classical baselines in the zoo (scikit-learn pipelines from
:mod:`neuroconv.brain.baselines`, built as their libraries and MOABB recommend).

Each is ``features -> head`` (:func:`~neuroconv.brain.baselines.baseline_parts`). Fitting
one on a training part:

1. the features are fitted once on the inner training part and applied to the inner
   validation part;
2. a head with a regulariser (a logistic regression) chooses its ``C`` from
   ``decode.c_grid`` by the class-weighted log loss on the inner validation part, the
   criterion every model of the zoo chooses by; LDA heads have none (their shrinkage is
   automatic) and skip this step;
3. the whole pipeline is refitted on the whole training part with that ``C``
   (``GridSearchCV(refit=True)``), warm-started where the features allow (the tangent
   space's geometric mean starts from the inner part's).

Class weights: the logistic regressions get ``class_weight``, the LDA heads uniform
priors (``decode.class_weight: balanced``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from .base import Decoder, DecodeData, Traits, TrainingPart, proba_of, register

__all__ = ["ClassicalDecoder"]


class ClassicalDecoder(Decoder):
    """A classical baseline of :mod:`neuroconv.brain.baselines` behind the zoo's interface."""

    def __init__(self, name: str, cfg, *, regularised: bool, fixed_length: bool, sites: bool = False,
                 options: dict | None = None):
        super().__init__(name, cfg)
        self.regularised, self.fixed_length, self.sites = regularised, fixed_length, sites
        self.options = dict(options or {})

    def _parts(self, data: DecodeData, C=None, class_weight=None, **extra):
        from ..baselines import baseline_parts

        sfreq = data.sfreq(self.name, one=self.fixed_length)
        return baseline_parts(self.name, sfreq=sfreq, seed=self.cfg.decode.seed, C=C, class_weight=class_weight,
                              n_classes=data.n_out, connectivity_kind=self.cfg.decode.connectivity_kind,
                              **self.options, **extra)

    def _arrays(self, data: DecodeData, idx):
        return data.windows.subset(idx).arrays(self.fixed_length)

    def _site_kw(self, data: DecodeData, idx) -> dict:
        return {"groups": data.sites[idx]} if self.sites else {}

    def fit(self, part: TrainingPart) -> "ClassicalDecoder":
        from mne.utils import use_log_level

        data = part.data
        if data.kind != "classification":
            raise ValueError(f"baseline {self.name!r} is a classifier; drop it from decode.models for regression.")
        cw = "balanced" if part.class_weight == "balanced" else None
        y, inner = data.y, part.inner
        warm = {}
        with use_log_level("warning"):  # CSP's per-class covariance messages
            if self.regularised and len(inner.val):
                features, head = self._parts(data, class_weight=cw)
                F_in = features.fit_transform(self._arrays(data, inner.train), y[inner.train],
                                              **self._site_kw(data, inner.train))
                F_va = features.transform(self._arrays(data, inner.val), **self._site_kw(data, inner.val))
                C = self.choose_c(clone(head), part, F_in, F_va)
                warm = _warm_start(features)
            elif self.regularised:
                C = self.choose_c(None, part, None, None)
            else:
                C = None
                self.hyperparameters = {"note": "no regulariser to choose (LDA: automatic shrinkage or none)"}
            self.features, self.head = self._parts(data, C=C, class_weight=cw, **warm)
            F = self.features.fit_transform(self._arrays(data, part.train), y[part.train],
                                            **self._site_kw(data, part.train))
            self.head.fit(F, y[part.train])
        if self.options.get("site_centering"):
            self.transductive_sites = []
        return self

    def predict(self, data: DecodeData, idx) -> np.ndarray:
        from mne.utils import use_log_level

        with use_log_level("warning"):
            F = self.features.transform(self._arrays(data, idx), **self._site_kw(data, idx))
        if self.options.get("site_centering"):
            self.transductive_sites = sorted(map(str, getattr(self.features, "transductive_sites_", [])))
        return proba_of(self.head, F, data.n_out)

    def report(self) -> dict:
        out = super().report()
        if self.options.get("site_centering"):
            out["centred_on_their_own_test_samples"] = list(getattr(self, "transductive_sites", []))
        return out


def _warm_start(features) -> dict:
    """What the refit may start from: the tangent space's geometric mean of the inner
    training part (the refit's fixed point is the same; it gets there in fewer steps)."""
    conn = getattr(features, "connectivity_", None)
    if conn is not None and getattr(conn, "reference", None) == "riemann" and hasattr(conn, "mean_"):
        return {"init_mean": conn.mean_}
    return {}


def _connectivity(cfg):
    dc = cfg.decode
    return ClassicalDecoder("connectivity", cfg, regularised=True, fixed_length=False,
                            sites=dc.site_centering,
                            options={"site_centering": dc.site_centering, "n_jobs": dc.n_jobs})


_EEG = ("eeg", "meg")

register("connectivity", Traits("baseline", "classical", ("fmri",), fixed_length=False, site_groups=True,
                                library="nilearn", paradigm="connectivity"),
         "nilearn connectivity (tangent or correlation) -> standardise -> logistic regression")(_connectivity)
#: the EEG baselines: name, regulariser?, library, paradigm, summary
_EEG_BASELINES = (
    ("ts_lr", True, "pyriemann", "motor imagery",
     "8-32 Hz band-pass -> pyriemann covariances (OAS) -> tangent space -> logistic regression (MOABB TS+LR)"),
    ("xdawn_ts", True, "pyriemann", "erp",
     "1-24 Hz band-pass -> pyriemann xDAWN covariances -> tangent space -> logistic regression"),
    ("csp_lda", False, "mne", "motor imagery", "8-32 Hz band-pass -> MNE CSP (log-variance of 4 filters) -> LDA"),
    ("erp_lda", False, "mne", "erp",
     "1-24 Hz band-pass -> decimation to about 32 Hz -> vectorised epochs -> shrinkage LDA"),
    ("bandpower", True, "mne", "any", "log band power (MNE Welch PSD) -> standardise -> logistic regression"),
)
for _name, _reg, _lib, _paradigm, _summary in _EEG_BASELINES:
    register(_name, Traits("baseline", "classical", _EEG, one_sfreq=True, fixed_length=True, library=_lib,
                           paradigm=_paradigm), _summary)(
        lambda cfg, name=_name, reg=_reg: ClassicalDecoder(name, cfg, regularised=reg, fixed_length=True))
