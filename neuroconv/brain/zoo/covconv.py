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
from .neural import _kernel_summary, fit_net, kernel_report, outputs, refit_steps

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

    def _new_net(self, data: DecodeData):
        from ..covconv import CovConvNet

        cc = self.settings
        _, chans = data.channels()
        sfreq = data.sfreq(self.name, one=False)
        return CovConvNet(len(chans), data.n_out, filter_len=max(2, int(round(cc.filter_seconds * sfreq))),
                          n_filters=cc.n_filters, identity=cc.identity, spatial=cc.spatial or None,
                          readout=covconv_readout(cc), erp_prototypes=cc.erp_prototypes, diagonal=cc.diagonal,
                          means=cc.means, dropout=cc.dropout, lam=cc.lam, smooth_width=cc.smooth_width,
                          kernel_lr=self.context.backbone.kernel_lr, kernel_init=cc.kernel_init, reference=cc.reference,
                          bands=covconv_bands(cc, data), band_edge=cc.band_edge, band_lr=cc.band_lr)

    def _crop(self, data: DecodeData) -> int:
        cc = self.settings
        crop = int(round(cc.crop_seconds * data.sfreq(self.name, one=False))) if cc.crop_seconds > 0 else 0
        if crop and cc.erp_prototypes:
            raise ValueError("decode.covconv: crops and erp_prototypes exclude each other (prototypes are "
                             "time-locked).")
        return crop

    def fit(self, part: TrainingPart) -> "CovConvDecoder":
        from ..data import Crops, loader

        import torch

        cc, tc, data, inner = self.settings, self.context.trainer, part.data, part.inner
        n_jobs = self.context.n_jobs
        self.crop = crop = self._crop(data)
        y, kind = data.y, data.kind
        cw = part.class_weights()
        class_weight = None if cw is None else dict(enumerate(cw))
        torch.manual_seed(part.seed)
        start = self._new_net(data)
        shared = not cc.erp_prototypes  # statistics through the starting filters, computed once
        if shared:
            C_all, m_all = start.batch_statistics(loader(data.windows.subset(part.train), 64, False))
            row = {int(i): r for r, i in enumerate(part.train)}

        def stats(idx):
            r = [row[int(i)] for i in idx]
            return C_all[r], m_all[r]

        def train_ds(idx):
            return Crops(data.windows.subset(idx), crop) if crop else None

        net = copy.deepcopy(start)
        fit_idx = inner.train if len(inner.val) else part.train
        F_in = net.fit_statistics(loader(data.windows.subset(fit_idx), 64, False),
                                  precomputed=stats(fit_idx) if shared else None, n_jobs=n_jobs)
        ref_inner = getattr(net, "reference_mean", None)
        if cc.head_c is not None:
            C = float(cc.head_c)
            self.hyperparameters = {"C": C, "note": "decode.covconv.head_c fixed"}
        else:
            from ..covconv import head_regression

            F_va = None
            if len(inner.val):
                F_va = net.standardized(*(stats(inner.val) if shared else
                                          net.batch_statistics(loader(data.windows.subset(inner.val), 64, False))))
            C = self.choose_c(head_regression(min(self.context.c_grid), part.seed, kind, class_weight), part, F_in,
                              F_va)
        if cc.init_head:
            net.init_head(F_in, y[fit_idx], C=C, seed=part.seed, kind=kind, class_weight=class_weight)
        filters_only = cc.train == "filters"

        def train(net, idx, val_idx, **kw):
            """fit_net; with decode.covconv.train filters, only the filters move (the head and
            the standardisation stay those of the start, no feature dropout), and then the
            reference, standardisation and head are fitted again on the learned filters."""
            if not filters_only:
                return fit_net(part, net, idx, val_idx, tc, train_ds=train_ds(idx), **kw)
            for p_ in net.head.parameters():
                p_.requires_grad_(False)
            drop, net.drop.p = net.drop.p, 0.0
            net, result = fit_net(part, net, idx, val_idx, tc, train_ds=train_ds(idx), **kw)
            net.drop.p = drop
            for p_ in net.head.parameters():
                p_.requires_grad_(True)
            moved = result.steps > 0 and (not len(val_idx) or bool(result.best_step))  # the start did not win
            if moved:
                F = net.fit_statistics(loader(data.windows.subset(idx), 64, False), n_jobs=n_jobs)
                net.init_head(F, y[idx], C=C, seed=part.seed, kind=kind, class_weight=class_weight)
            return net, result

        if len(inner.val):
            net, result = train(net, inner.train, inner.val, validate_first=True)
            self.training = {"epochs": result.epochs, "steps": result.steps, "best_step": result.best_step,
                             "best_val_loss": result.best_val_loss}
            self.hyperparameters["best_step"] = result.best_step
            if self.context.refit:
                steps = refit_steps(result.best_step, len(inner.train), len(part.train))
                self.training["refit_steps"] = steps
                net = copy.deepcopy(start)
                F_all = net.fit_statistics(loader(data.windows.subset(part.train), 64, False),
                                           precomputed=(C_all, m_all) if shared else None, init=ref_inner,
                                           n_jobs=n_jobs)
                if cc.init_head:
                    net.init_head(F_all, y[part.train], C=C, seed=part.seed, kind=kind, class_weight=class_weight)
                if steps:
                    net, _ = train(net, part.train, part.train[:0], steps=steps)
        else:
            net, result = train(net, part.train, part.train[:0])
            self.training = {"epochs": result.epochs, "steps": result.steps, "note": "no inner validation part"}
        self.net = net.eval()
        self.kernels = kernel_report(self.net)
        if self.net.bank is not None:  # what the band edges became, next to where they started
            self.kernels = {"bands": self.net.bank.edges().detach().tolist(),
                            "start": self.net.bank.start.tolist()}
        return self

    def predict(self, data: DecodeData, idx) -> np.ndarray:
        from neuroconv.engine.runner import predict

        from ..data import Crops, loader

        if self.crop:
            crops = Crops(data.windows.subset(idx), self.crop, self.settings.test_crops)
            return outputs(data.kind, crops.average(predict(self.net, loader(crops, 64, False))))
        return outputs(data.kind, predict(self.net, loader(data.windows.subset(idx), 64, False)))


    @classmethod
    def summarize(cls, reports: list[dict]) -> dict:
        return _kernel_summary(reports)


register("covconv", Traits("ours", "neural", ("eeg", "meg", "fmri"), ("classification", "regression"),
                           paradigm="connectivity"), CovConvDecoder, settings=CovConvSettings,
         summary="long-conv filters -> shrunk covariances -> tangent space (or log-variance) -> linear head started "
                 "at the logistic regression")
