"""covconv in the zoo: how :class:`~neuroconv.brain.covconv.CovConvNet` is fitted on a
training part.

1. The model is built once; its filters' statistics (covariances and means) of every
   training window are computed once, before any training, and shared by the inner fit
   and the refit (both start from the same filters).
2. Inner fit: the reference and standardisation are fitted on the inner training part;
   the head's ``C`` is chosen from ``decode.c_grid`` by the class-weighted log loss on
   the inner validation part, as every regulariser of the zoo is; the head starts at
   that logistic regression, and the whole model trains end to end, early-stopped on
   the inner validation part with the starting state competing (``validate_first``: a
   model that cannot improve on its start keeps the baseline's solution).
3. Refit (``decode.refit``): the starting model is fitted again on the whole
   training part (its geometric mean warm-started from the inner part's), its head at
   the chosen ``C``, and trained for the budget the inner fit chose
   (:func:`~neuroconv.brain.zoo.neural.refit_steps`).

With ``decode.covconv.train: filters`` only the filters train (their few parameters,
e.g. band edges), against the starting head; the reference, standardisation and head
are then fitted again on the learned filters (the head's C stays the one chosen).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

import numpy as np

from .base import Decoder, DecodeData, Traits, TrainingPart, register
from .neural import _kernel_summary, fit_net, kernel_report, outputs, refit_steps, training_report

__all__ = ["CovConvDecoder", "CovConvSettings", "covconv_readout", "covconv_bands"]


@dataclass
class CovConvSettings:
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
        train: What end-to-end training moves: all (filters, spatial filters and head),
            filters (only the filters, against the head at its logistic-regression start,
            without feature dropout; reference, standardisation and head are then fitted
            again on the learned filters), or none (the start itself: with a baseline,
            that baseline's predictions exactly).
        baseline: A classical baseline of the zoo with a logistic-regression head (e.g.
            connectivity, ts_lr, xdawn_ts, ssvep_ts_lr) that covconv contains: its
            standardised features, fitted by the baseline's own pipeline and settings,
            join the learned filters' features, and the head starts at the baseline's
            logistic regression (its C chosen on the inner split as the baseline chooses
            it) with the learned features' weights at zero. The start is then the
            baseline exactly; training keeps a change only if the inner split prefers it.
            Empty: no baseline (the head starts at the logistic regression of the
            filters' features).
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
    train: Literal["all", "filters", "none"] = "all"
    baseline: str = ""


def covconv_readout(cc) -> str:
    """The readout ``auto`` resolves to: the tangent space (the Riemannian pipelines'
    readout, for connectivity, motor imagery and, with prototypes, ERPs)."""
    return "tangent" if cc.readout == "auto" else cc.readout


def covconv_bands(cc, data: DecodeData):
    """The band filters ``decode.covconv.bands`` asks for: None (long kernels), a list of
    ``[lo, hi]``/None, or for ``"classes"`` the signal itself plus ``f ± band_halfwidth``
    Hz at each class's stimulus frequency (class names such as ``"20Hz"``)."""
    if not cc.bands:
        return None
    if cc.bands == "classes":
        from ..ssvep import freqs_from_labels

        freqs = freqs_from_labels(data.classes)
        nyq = data.sfreq("covconv", one=False) / 2
        return [None] + [[max(f - cc.band_halfwidth, 1e-3), min(f + cc.band_halfwidth, 0.99 * nyq)]
                         for f in freqs.values()]
    if isinstance(cc.bands, str):
        raise ValueError(f"decode.covconv.bands must be a list of [lo, hi] / null, or 'classes'; got {cc.bands!r}.")
    return [None if b is None else [float(v) for v in b] for b in cc.bands]


class CovConvDecoder(Decoder):
    """covconv (:mod:`neuroconv.brain.covconv`) behind the zoo's interface."""

    def _new_net(self, data: DecodeData, n_extra: int = 0):
        from ..covconv import CovConvNet

        cc = self.settings
        _, chans = data.channels()
        sfreq = data.sfreq(self.name, one=False)
        return CovConvNet(len(chans), data.n_out, filter_len=max(2, int(round(cc.filter_seconds * sfreq))),
                          n_filters=cc.n_filters, identity=cc.identity, spatial=cc.spatial or None,
                          readout=covconv_readout(cc), erp_prototypes=cc.erp_prototypes, diagonal=cc.diagonal,
                          means=cc.means, dropout=cc.dropout, lam=cc.lam, smooth_width=cc.smooth_width,
                          kernel_lr=self.context.backbone.kernel_lr, kernel_init=cc.kernel_init, reference=cc.reference,
                          bands=covconv_bands(cc, data), band_edge=cc.band_edge, band_lr=cc.band_lr, n_extra=n_extra)

    def _crop(self, data: DecodeData) -> int:
        cc = self.settings
        crop = int(round(cc.crop_seconds * data.sfreq(self.name, one=False))) if cc.crop_seconds > 0 else 0
        if crop and cc.erp_prototypes:
            raise ValueError("decode.covconv: crops and erp_prototypes exclude each other (prototypes are "
                             "time-locked).")
        return crop

    def fit(self, part: TrainingPart) -> "CovConvDecoder":
        import torch

        cc, data, inner = self.settings, part.data, part.inner
        self._base = None
        if cc.baseline:
            return self._fit_from_baseline(part)
        self.crop = self._crop(data)
        cw = part.class_weights()
        self._class_weight = None if cw is None else dict(enumerate(cw))
        torch.manual_seed(part.seed)
        start = self._new_net(data)
        # statistics through the starting filters, computed once for the inner fit and the refit
        self._shared = None if cc.erp_prototypes else self._statistics(start, part, part.train)
        net = copy.deepcopy(start)
        fit_idx = inner.train if len(inner.val) else part.train
        F_in = net.fit_statistics(self._loader(data, fit_idx), precomputed=self._precomputed(fit_idx),
                                  n_jobs=self.context.n_jobs)
        ref_inner = getattr(net, "reference_mean", None)
        self._C = C = self._head_c(net, part, F_in)
        if cc.init_head:
            net.init_head(F_in, data.y[fit_idx], C=C, seed=part.seed, kind=data.kind, class_weight=self._class_weight)
        if len(inner.val):
            net, result = self._train(net, part, inner.train, inner.val, validate_first=True)
            self.training = training_report(result, self.context.trainer.weight_decay)
            self.hyperparameters["best_step"] = result.best_step
            if self.context.refit:
                net = self._refit(start, part, result.best_step, ref_inner)
        else:
            net, result = self._train(net, part, part.train, part.train[:0])
            self.training = {**training_report(result, self.context.trainer.weight_decay),
                             "note": "no inner validation part"}
        self.net = net.eval()
        self.kernels = kernel_report(self.net)
        if self.net.bank is not None:  # what the band edges became, next to where they started
            self.kernels = {"bands": self.net.bank.edges().detach().tolist(),
                            "start": self.net.bank.start.tolist()}
        return self

    @staticmethod
    def _loader(data: DecodeData, idx):
        from ..data import loader

        return loader(data.windows.subset(idx), 64, False)

    def _statistics(self, net, part: TrainingPart, idx):
        """``(covariances, means, row of each sample)`` of samples ``idx`` through ``net``'s filters."""
        C_all, m_all = net.batch_statistics(self._loader(part.data, idx))
        return C_all, m_all, {int(i): r for r, i in enumerate(idx)}

    def _precomputed(self, idx):
        """The shared statistics of samples ``idx`` (None when they are not shared)."""
        if self._shared is None:
            return None
        C_all, m_all, row = self._shared
        r = [row[int(i)] for i in idx]
        return C_all[r], m_all[r]

    def _head_c(self, net, part: TrainingPart, F_in) -> float:
        """The head's C: ``head_c`` when fixed, else chosen on the inner split."""
        cc, data, inner = self.settings, part.data, part.inner
        if cc.head_c is not None:
            self.hyperparameters = {"C": float(cc.head_c), "note": "decode.covconv.head_c fixed"}
            return float(cc.head_c)
        from ..covconv import head_regression

        F_va = None
        if len(inner.val):
            pre = self._precomputed(inner.val)
            F_va = net.standardized(*(pre if pre is not None else net.batch_statistics(self._loader(data, inner.val))))
        return self.choose_c(head_regression(min(self.context.c_grid), part.seed, data.kind, self._class_weight), part,
                             F_in, F_va)

    def _train(self, net, part: TrainingPart, idx, val_idx, dataset=None, **kw):
        """fit_net (``dataset(idx)``: the samples with their fixed features, when there are
        any); with ``train: filters``, only the filters move (the head and the
        standardisation stay those of the start, no feature dropout), and then the
        reference, standardisation and head are fitted again on the learned filters."""
        from ..data import Crops

        data, tc = part.data, self.context.trainer
        dataset = dataset or data.windows.subset
        train_ds = Crops(dataset(idx), self.crop) if self.crop else None
        kw.update(budget=self.context.budget, dataset=dataset)
        if self.settings.train != "filters":
            return fit_net(part, net, idx, val_idx, tc, train_ds=train_ds, **kw)
        for p_ in net.head.parameters():
            p_.requires_grad_(False)
        drop, net.drop.p = net.drop.p, 0.0
        net, result = fit_net(part, net, idx, val_idx, tc, train_ds=train_ds, **kw)
        net.drop.p = drop
        for p_ in net.head.parameters():
            p_.requires_grad_(True)
        moved = result.steps > 0 and (not len(val_idx) or bool(result.best_step))  # the start did not win
        if moved:
            F = net.fit_statistics(self._loader(data, idx), n_jobs=self.context.n_jobs)
            net.init_head(F, data.y[idx], C=self._C, seed=part.seed, kind=data.kind, class_weight=self._class_weight)
        return net, result

    def _refit(self, start, part: TrainingPart, best_step, ref_inner):
        """The start fitted again on the whole training part (its reference warm-started
        from the inner part's), then trained for the budget the inner fit chose."""
        data = part.data
        steps = refit_steps(best_step, len(part.inner.train), len(part.train))
        self.training["refit_steps"] = steps
        net = copy.deepcopy(start)
        F_all = net.fit_statistics(self._loader(data, part.train), precomputed=self._precomputed(part.train),
                                   init=ref_inner, n_jobs=self.context.n_jobs)
        if self.settings.init_head:
            net.init_head(F_all, data.y[part.train], C=self._C, seed=part.seed, kind=data.kind,
                          class_weight=self._class_weight)
        if steps:
            net, _ = self._train(net, part, part.train, part.train[:0], steps=steps)
        return net

    def _baseline(self, part: TrainingPart):
        """The baseline covconv contains, fitted on the part as the zoo fits it alone (its C
        chosen on the inner split, then refitted on the whole part)."""
        from . import base as zoo_base
        from .classical import ClassicalDecoder

        name = self.settings.baseline
        base = zoo_base.make(name, self.context, self.context.settings.get(name))
        if not isinstance(base, ClassicalDecoder):
            raise ValueError(f"decode.covconv.baseline={name!r} is not a classical baseline of the zoo; covconv "
                             "contains a baseline with a logistic-regression head (e.g. connectivity, ts_lr).")
        base.fit(part)
        if not hasattr(base.head, "coef_"):
            raise ValueError(f"decode.covconv.baseline={name!r} has no linear head to start from (an LDA or a "
                             "correlation classifier); choose a baseline with a logistic regression.")
        return base

    def _extra(self, data: DecodeData, base, features=None):
        """``dataset(idx)``: the samples ``idx`` with the baseline's features of them."""
        from ..data import Extra

        return lambda idx: Extra(data.windows.subset(idx), base.transform(data, idx, features))

    def _fit_from_baseline(self, part: TrainingPart) -> "CovConvDecoder":
        """covconv starting exactly at its baseline (``decode.covconv.baseline``)."""
        import torch

        cc, data, inner = self.settings, part.data, part.inner
        if cc.train == "filters":
            raise ValueError("decode.covconv.train filters cannot move the filters when the head starts at a "
                             "baseline (their features' weights start at zero); use train all or none.")
        self.crop = self._crop(data)
        cw = part.class_weights()
        self._class_weight = None if cw is None else dict(enumerate(cw))
        self._base = base = self._baseline(part)
        self.hyperparameters = {"baseline": cc.baseline, "C": base.hyperparameters.get("C")}
        has_val = bool(len(inner.val))
        fit_idx = inner.train if has_val else part.train
        feats, head = base.pipeline_at(part, fit_idx, base.hyperparameters.get("C")) if has_val else \
            (base.features, base.head)
        n_extra = base.transform(data, fit_idx[:2], feats).shape[1]
        torch.manual_seed(part.seed)
        start = self._new_net(data, n_extra)
        self._shared = None if cc.erp_prototypes else self._statistics(start, part, part.train)
        net = copy.deepcopy(start)
        net.fit_statistics(self._loader(data, fit_idx), precomputed=self._precomputed(fit_idx),
                           n_jobs=self.context.n_jobs)
        ref_inner = getattr(net, "reference_mean", None)
        net.init_head_from(head.coef_, head.intercept_, head.classes_)
        if cc.train == "none":
            self.training = {"steps": 0, "note": "decode.covconv.train none: the baseline's start"}
        elif has_val:
            net, result = self._train(net, part, inner.train, inner.val, self._extra(data, base, feats),
                                      validate_first=True)
            self.training = training_report(result, self.context.trainer.weight_decay)
            self.hyperparameters["best_step"] = result.best_step
        else:
            net, result = self._train(net, part, part.train, part.train[:0], self._extra(data, base))
            self.training = training_report(result, self.context.trainer.weight_decay)
        if has_val and self.context.refit:
            net = self._refit_from_baseline(start, part, base, ref_inner)
        self.net = net.eval()
        self.kernels = kernel_report(self.net)
        if self.net.bank is not None:
            self.kernels = {"bands": self.net.bank.edges().detach().tolist(), "start": self.net.bank.start.tolist()}
        return self

    def _refit_from_baseline(self, start, part: TrainingPart, base, ref_inner):
        """The start again on the whole training part (the baseline refitted there by its
        own rule), trained for the budget the inner fit chose."""
        data = part.data
        steps = refit_steps(self.training.get("best_step"), len(part.inner.train), len(part.train))
        self.training["refit_steps"] = steps
        net = copy.deepcopy(start)
        net.fit_statistics(self._loader(data, part.train), precomputed=self._precomputed(part.train), init=ref_inner,
                           n_jobs=self.context.n_jobs)
        net.init_head_from(base.head.coef_, base.head.intercept_, base.head.classes_)
        if steps and self.settings.train != "none":
            net, _ = self._train(net, part, part.train, part.train[:0], self._extra(data, base), steps=steps)
        return net

    def predict(self, data: DecodeData, idx) -> np.ndarray:
        from neuroconv.engine.runner import predict

        from ..data import Crops, loader

        ds = self._extra(data, self._base)(idx) if self._base is not None else data.windows.subset(idx)
        if self.crop:
            crops = Crops(ds, self.crop, self.settings.test_crops)
            return outputs(data.kind, crops.average(predict(self.net, loader(crops, 64, False))))
        return outputs(data.kind, predict(self.net, loader(ds, 64, False)))


    @classmethod
    def summarize(cls, reports: list[dict]) -> dict:
        return _kernel_summary(reports)


register("covconv", Traits("ours", "neural", ("eeg", "meg", "fmri"), ("classification", "regression"),
                           paradigm="connectivity"), CovConvDecoder, settings=CovConvSettings,
         summary="long-conv filters -> shrunk covariances -> tangent space (or log-variance) -> linear head started "
                 "at the logistic regression")
