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

import numpy as np
import torch

from .base import Decoder, DecodeData, Traits, TrainingPart, register
from .neural import _kernels, fit_net, outputs, refit_steps

__all__ = ["CovConvDecoder", "covconv_readout", "covconv_bands"]


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

    def _build(self, data: DecodeData):
        from ..covconv import CovConvNet

        cc = self.cfg.decode.covconv
        _, chans = data.channels()
        sfreq = data.sfreq(self.name, one=False)
        return CovConvNet(len(chans), data.n_out, filter_len=max(2, int(round(cc.filter_seconds * sfreq))),
                          n_filters=cc.n_filters, identity=cc.identity, spatial=cc.spatial or None,
                          readout=covconv_readout(cc), erp_prototypes=cc.erp_prototypes, diagonal=cc.diagonal,
                          means=cc.means, dropout=cc.dropout, lam=cc.lam, smooth_width=cc.smooth_width,
                          kernel_lr=self.cfg.model.kernel_lr, kernel_init=cc.kernel_init, reference=cc.reference,
                          bands=covconv_bands(cc, data), band_edge=cc.band_edge, band_lr=cc.band_lr)

    def _crop(self, data: DecodeData) -> int:
        cc = self.cfg.decode.covconv
        crop = int(round(cc.crop_seconds * data.sfreq(self.name, one=False))) if cc.crop_seconds > 0 else 0
        if crop and cc.erp_prototypes:
            raise ValueError("decode.covconv: crops and erp_prototypes exclude each other (prototypes are "
                             "time-locked).")
        return crop

    def fit(self, part: TrainingPart) -> "CovConvDecoder":
        from ..data import Crops, loader

        cc, tc, data, inner = self.cfg.decode.covconv, self.cfg.decode, part.data, part.inner
        n_jobs = self.cfg.decode.n_jobs
        self.crop = crop = self._crop(data)
        y, kind = data.y, data.kind
        cw = part.class_weights()
        class_weight = None if cw is None else dict(enumerate(cw))
        torch.manual_seed(part.seed)
        start = self._build(data)
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
            C = self.choose_c(head_regression(min(tc.c_grid), part.seed, kind, class_weight), part, F_in, F_va)
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
            if tc.refit:
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
        self.kernels = _kernels(self.net)
        if self.net.bank is not None:  # what the band edges became, next to where they started
            self.kernels = {"bands": self.net.bank.edges().detach().tolist(),
                            "start": self.net.bank.start.tolist()}
        return self

    def predict(self, data: DecodeData, idx) -> np.ndarray:
        from neuroconv.engine.runner import predict

        from ..data import Crops, loader

        if self.crop:
            crops = Crops(data.windows.subset(idx), self.crop, self.cfg.decode.covconv.test_crops)
            return outputs(data.kind, crops.average(predict(self.net, loader(crops, 64, False))))
        return outputs(data.kind, predict(self.net, loader(data.windows.subset(idx), 64, False)))


register("covconv", Traits("ours", "neural", ("eeg", "meg", "fmri"), ("classification", "regression"),
                           paradigm="connectivity"),
         "long-conv filters -> shrunk covariances -> tangent space (or log-variance) -> linear head started at "
         "the logistic regression")(lambda cfg: CovConvDecoder("covconv", cfg))
