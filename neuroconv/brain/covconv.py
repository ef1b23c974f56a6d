"""CovConv: long-convolution filters read out through second-order statistics.

One readable model file for the decoder that starts where the trusted pipelines are and
learns from there::

    x (B, L, C) ──> F long-conv filters per channel ──> optional spatial mixing (S of C)
                    (B, F, C, L)                         (B, F, S, L)
        ──> shrunk covariance per filter (Ledoit-Wolf)  (B, F, S, S)
        (erp_prototypes: the training classes' mean responses, through the same filters,
         join as extra channels, as in Riemannian ERP pipelines)
        ──> readout: "tangent": log of the whitened covariance, log(W C W) with W the
                     reference's inverse square root, lower triangle  (B, F·S(S-1)/2)
                     "logvar":  log of its diagonal (ShallowConvNet form) (B, F·S)
        ──> standardise (training-fold mean and sd) ──> dropout ──> linear ──> logits

- With one filter at identity (``identity=True``: filter 0 is ``x + g · (k * x)`` with the
  gate ``g`` at 0) and no spatial mixing, the tangent features are nilearn's tangent
  connectivity features (``ConnectivityMeasure(kind="tangent")``, Ledoit-Wolf
  covariances, whitened by the reference): the model contains the connectivity
  baseline, and :meth:`CovConvNet.init_head` fits the head by logistic regression so
  that training starts at the baseline's solution.
- With several filters, spatial filters and the logvar readout it is ShallowConvNet's
  form, a learned filter-bank CSP.
- Filters are the paper's long kernels (:class:`neuroconv.LongConvKernel`, centred, with
  squash and smooth), convolved by :func:`neuroconv.fftconv`; or, with ``bands``, a
  :class:`BandPassBank`: zero-phase band-pass filters defined in Hz by two learned numbers
  each (their edges), applied as long convolutions in the frequency domain at each
  recording's own sampling rate, so that recordings with different TRs or rates are
  filtered in the same band, and the gradient moves a few meaningful parameters.

The statistics (reference matrix, feature mean and sd) are fitted on training data only,
by :meth:`CovConvNet.fit_statistics`; nothing of a test set reaches them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from neuroconv.fftconv import fftconv
from neuroconv.kernel_gen import LongConvKernel, register_optim

from .spd import ledoit_wolf_covariance, spd_function, tangent_vector

__all__ = ["CovConvNet", "BandPassBank", "ledoit_wolf_covariance", "tangent_vector", "spd_function",
           "head_regression"]


class BandPassBank(nn.Module):
    """Parametric zero-phase band-pass filters, defined in Hz, shared by every channel.

    Each band is two learned numbers, its lower edge ``lo`` and its width ``hi - lo``
    (stored as logarithms, so both stay positive); its frequency response is
    ``H(f) = σ((f - lo) / s) · σ((hi - f) / s)`` with soft edges ``s = edge · (hi - lo)``:
    a smooth, real, even response, i.e. a long centred (non-causal) kernel
    ``k = irfft(H)`` that decays fast. A band given as None is a pass-through (the
    signal itself, nothing learned). The filtering is the convolution with that kernel,
    computed in the frequency domain at each sequence's own sampling rate (zero-padded to
    ``2L``: no wrap-around), so one band means the same frequencies for recordings of
    different TRs or rates.

    ``forward(u (B, C, L), sfreq (B,)) -> (B, F, C, L)``. The edges have their own
    learning rate ``lr`` and no weight decay (:func:`neuroconv.param_groups`).
    """

    def __init__(self, bands, edge: float = 0.1, lr: float = 0.01):
        super().__init__()
        self.passthrough = [b is None for b in bands]
        learned = [b for b in bands if b is not None]
        for b in learned:
            if len(b) != 2 or not 0 < float(b[0]) < float(b[1]):
                raise ValueError(f"every band must be [lo, hi] with 0 < lo < hi Hz, or null (pass-through); got {b!r}.")
        if not 0 < edge < 1:
            raise ValueError(f"`edge` must be in (0, 1) (a fraction of the band's width); got {edge!r}.")
        lo = torch.tensor([float(b[0]) for b in learned], dtype=torch.float64)
        hi = torch.tensor([float(b[1]) for b in learned], dtype=torch.float64)
        self.log_lo = nn.Parameter(lo.log().float())
        self.log_width = nn.Parameter((hi - lo).log().float())
        self.register_buffer("start", torch.stack([lo, hi], 1).float(), persistent=False)
        self.edge = float(edge)
        register_optim(self.log_lo, lr)
        register_optim(self.log_width, lr)

    def __len__(self) -> int:
        return len(self.passthrough)

    def edges(self) -> torch.Tensor:
        """The learned bands ``(n_learned, 2)``: lower and upper edge in Hz."""
        lo = self.log_lo.exp()
        return torch.stack([lo, lo + self.log_width.exp()], 1)

    def response(self, freqs: torch.Tensor) -> torch.Tensor:
        """``H (..., n_learned, n_freq)`` at ``freqs (..., n_freq)`` Hz."""
        lo, hi = self.edges().unbind(1)  # (Fl,)
        s = self.edge * (hi - lo)
        f = freqs.unsqueeze(-2)  # (... 1 nf)
        return torch.sigmoid((f - lo[:, None]) / s[:, None]) * torch.sigmoid((hi[:, None] - f) / s[:, None])

    def forward(self, u: torch.Tensor, sfreq: torch.Tensor) -> torch.Tensor:
        B, C, L = u.shape
        n = 2 * L
        freqs = torch.fft.rfftfreq(n, device=u.device, dtype=u.dtype)[None] * sfreq.to(u)[:, None]  # (B nf) Hz
        H = self.response(freqs)  # (B Fl nf)
        U = torch.fft.rfft(u, n=n)  # (B C nf)
        Y = torch.fft.irfft(U[:, None] * H[:, :, None], n=n)[..., :L]  # (B Fl C L)
        out, k = [], 0
        for through in self.passthrough:
            if through:
                out.append(u)
            else:
                out.append(Y[:, k])
                k += 1
        return torch.stack(out, 1)  # (B F C L)


def head_regression(C: float, seed: int = 0, kind: str = "classification", class_weight=None):
    """The unfitted linear model a covconv head starts at: ``LogisticRegression(C,
    class_weight)`` for classification, ``Ridge(alpha=1/C)`` for regression."""
    from sklearn.linear_model import LogisticRegression, Ridge

    if not (isinstance(C, (int, float)) and not isinstance(C, bool) and C > 0):
        raise ValueError(f"C must be a positive number; got {C!r}.")
    if kind == "regression":
        return Ridge(alpha=1.0 / C)
    return LogisticRegression(C=C, max_iter=2000, random_state=seed, class_weight=class_weight)


class CovConvNet(nn.Module):
    """Long-conv filters, covariance, tangent space (or log-variance), linear head.

    ``forward(batch) -> (B, n_out)`` logits for the batch dict of
    :mod:`neuroconv.brain.data` (``x (B, L, C)``, ``mask (B, L)``).

    Parameters:
        n_channels: input channels (regions, electrodes).
        n_out: classes (or 1 for regression).
        filter_len: kernel half-length in steps (kernels are centred, ``2 filter_len - 1`` taps).
        n_filters: temporal filters shared by every channel.
        identity: filter 0 starts as the identity (a gated residual long conv).
        spatial: spatial filters per temporal filter (None: the channels as they are).
        readout: ``"tangent"`` or ``"logvar"``.
        erp_prototypes: join the training classes' mean responses (fitted by
            :meth:`fit_statistics`) as extra channels before the covariance.
        diagonal: tangent readout with the diagonal of the log-matrix too (log-variance
            information; False: nilearn's connectivity features exactly).
        means: add each filtered channel's mean (first-order statistics) to the features.
        reference: the tangent space's reference point: ``"riemann"``, the geometric
            (Karcher) mean of the training covariances, as nilearn's tangent connectivity
            and pyriemann's TangentSpace take it; or ``"logeuclid"``, the closed-form
            log-Euclidean mean (faster; worse on rank-deficient data such as
            average-referenced EEG).
        dropout: dropout on the standardised features.
        lam, smooth_width, kernel_lr, kernel_init: the long kernels' squash, smooth,
            learning rate and initialisation (:class:`neuroconv.LongConvKernel`);
            ``kernel_init="box"`` starts filter ``f`` as a centred moving average of
            width ``3**f`` (1, 3, 9, 27... steps: a bank of octave-spaced low-pass
            filters; filter 0 is then the identity even without the gate): a fixed box
            plus a learned long kernel that starts near zero, squashed and smoothed.
        bands: band filters instead of long kernels (:class:`BandPassBank`): a list of
            ``[lo, hi]`` Hz (learned) or None (the signal itself); ``n_filters``,
            ``identity``, ``filter_len`` and the kernel settings are then unused.
        band_edge, band_lr: the bands' edge softness (a fraction of their width) and the
            learning rate of their edges.
        n_extra: fixed features read beside the learned ones (``batch["extra"] (B,
            n_extra)``, e.g. a baseline's standardised features: the head's first
            ``n_extra`` inputs); the head is then float64 (:meth:`init_head_from`).
    """

    def __init__(self, n_channels: int, n_out: int, *, filter_len: int = 16, n_filters: int = 1,
                 identity: bool = True, spatial: int | None = None, readout: str = "tangent",
                 erp_prototypes: bool = False, diagonal: bool = False, means: bool = False,
                 reference: str = "riemann", dropout: float = 0.5,
                 lam: float = 0.0, smooth_width: int = 5, kernel_lr: float = 1e-3, kernel_init: str = "geometric",
                 bands=None, band_edge: float = 0.1, band_lr: float = 0.01, n_extra: int = 0):
        super().__init__()
        if readout not in ("tangent", "logvar"):
            raise ValueError(f"`readout` must be 'tangent' or 'logvar'; got {readout!r}.")
        if spatial is not None and (isinstance(spatial, bool) or not isinstance(spatial, int) or spatial < 1):
            raise ValueError(f"`spatial` must be None or an integer >= 1; got {spatial!r}.")
        self.config = dict(n_channels=n_channels, n_out=n_out, filter_len=filter_len, n_filters=n_filters,
                           identity=identity, spatial=spatial, readout=readout, erp_prototypes=erp_prototypes,
                           diagonal=diagonal, means=means, reference=reference, dropout=dropout, lam=lam,
                           smooth_width=smooth_width, kernel_lr=kernel_lr, kernel_init=kernel_init,
                           bands=None if bands is None else [None if b is None else list(b) for b in bands],
                           band_edge=band_edge, band_lr=band_lr, n_extra=n_extra)
        self.bank = BandPassBank(bands, band_edge, band_lr) if bands else None
        if self.bank is not None:
            n_filters, identity, kernel_init = len(self.bank), False, "box"
        if kernel_init == "box":
            identity = False  # filter 0 starts as the identity itself
        self.n_filters, self.identity, self.readout = n_filters, identity, readout
        self.diagonal, self.means = bool(diagonal), bool(means)
        if reference not in ("riemann", "logeuclid"):
            raise ValueError(f"`reference` must be 'riemann' or 'logeuclid'; got {reference!r}.")
        self.reference = reference
        if kernel_init not in ("geometric", "random", "box"):
            raise ValueError(f"`kernel_init` must be 'geometric', 'random' or 'box'; got {kernel_init!r}.")
        # box: each filter is a fixed moving average plus a learned long kernel that starts
        # near zero (alive: outside the squash's dead zone), so the filters start as the
        # boxes exactly and what training adds is squashed and smoothed like any long kernel
        self.kernel = None if self.bank is not None else LongConvKernel(
            1, filter_len, n_filters, bidirectional=True, init="random" if kernel_init == "box" else kernel_init,
            init_scale=1e-3 if kernel_init == "box" else 0.1, lam=lam, smooth_width=smooth_width, lr=kernel_lr)
        base = torch.zeros(n_filters, 2 * filter_len - 1)  # (F 2M-1), centre at M-1
        if kernel_init == "box":
            for f in range(n_filters):
                half = min(3**f // 2, filter_len - 1)
                base[f, filter_len - 1 - half: filter_len + half] = 1.0 / (2 * half + 1)
        self.register_buffer("base", base)
        self.gate = nn.Parameter(torch.zeros(1)) if identity else None
        S = spatial or n_channels
        n_means = n_filters * S if means else 0
        self.spatial = nn.Parameter(torch.eye(n_channels)[:S].repeat(n_filters, 1, 1)
                                    + 0.01 * torch.randn(n_filters, S, n_channels)) if spatial else None
        self.n_prototypes = n_out if erp_prototypes else 0
        self.register_buffer("prototypes", torch.zeros(self.n_prototypes, 0, n_channels))  # (K L C), fitted
        self.register_buffer("prototype_sfreq", torch.ones(()))  # their sampling rate (band filters)
        S = S * (1 + self.n_prototypes)
        if readout == "tangent" and S < 2:
            raise ValueError("readout 'tangent' needs at least 2 channels (its features are the off-diagonal "
                             "connectivity); use readout 'logvar' for a single channel.")
        n_feat = n_filters * ((S * (S + 1) // 2 if diagonal else S * (S - 1) // 2) if readout == "tangent" else S)
        n_feat += n_means
        self.register_buffer("whitener", torch.eye(S, dtype=torch.float64).repeat(n_filters, 1, 1))  # (F S S)
        self.register_buffer("feat_mean", torch.zeros(n_feat, dtype=torch.float64))
        self.register_buffer("feat_sd", torch.ones(n_feat, dtype=torch.float64))
        self.drop = nn.Dropout(dropout)
        self.n_extra = int(n_extra)
        # with fixed features beside the learned ones (a baseline's), the head is float64 so
        # that an untrained model reproduces that baseline's logistic regression exactly
        self.head = nn.Linear(self.n_extra + n_feat, n_out, dtype=torch.float64 if n_extra else None)

    # ------------------------------------------------------------------ pieces
    def filtered(self, x: torch.Tensor, mask: torch.Tensor | None, sfreq: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, C)`` -> ``(B, F, S, L)``: temporal filters, then spatial ones.
        ``sfreq (B,)`` Hz is needed by band filters (``bands``)."""
        u = x.transpose(1, 2)  # (B C L)
        if mask is not None:
            u = u * mask[:, None, :].to(u.dtype)
        B, C, L = u.shape
        if self.bank is not None:
            if sfreq is None:
                raise ValueError("band filters are defined in Hz: pass the batch's sampling rates (sfreq).")
            y = self.bank(u, torch.as_tensor(sfreq).reshape(-1).expand(B))  # (B F C L)
        else:
            M = min(L, self.kernel.l_max)
            c = self.kernel.l_max - 1
            k = self.kernel(M)[:, 0] + self.base[:, c - (M - 1): c + M]  # (F 2M-1), centred
            ys = []
            for f in range(self.n_filters):
                y = fftconv(u, k[f].expand(C, -1).contiguous(), causal=False)  # (B C L)
                if f == 0 and self.identity:
                    y = u + self.gate * y
                ys.append(y)
            y = torch.stack(ys, 1)  # (B F C L)
        if self.spatial is not None:
            y = torch.einsum("fsc,bfcl->bfsl", self.spatial, y)
        return y

    def covariances(self, x, mask, sfreq=None) -> torch.Tensor:
        """``(B, F, S', S')`` Ledoit-Wolf covariances of the filtered signals (with the
        filtered prototypes as extra channels when there are any), float64."""
        return self.statistics(x, mask, sfreq)[0]

    def statistics(self, x, mask, sfreq=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(covariances (B, F, S', S'), means (B, F, S))`` of the filtered signals over
        the valid steps, float64."""
        y = self.filtered(x, mask, sfreq).double()
        if mask is None:
            means = y.mean(-1)
        else:
            w = mask[:, None, None, :].to(y.dtype)
            means = (y * w).sum(-1) / w.sum(-1).clamp_min(1.0)
        if self.n_prototypes:
            if self.prototypes.shape[1] != y.shape[-1]:
                raise ValueError(f"ERP prototypes have {self.prototypes.shape[1]} steps but the windows have "
                                 f"{y.shape[-1]}: prototypes need time-locked windows of one length (no crops).")
            P = self.filtered(self.prototypes.to(x.dtype), None, self.prototype_sfreq).double()  # (K F S L)
            P = P.transpose(0, 1).reshape(1, P.shape[1], -1, P.shape[-1])  # (1 F K·S L)
            y = torch.cat([y, P.expand(y.shape[0], -1, -1, -1)], dim=2)
        m = None if mask is None else mask[:, None, :].expand(-1, y.shape[1], -1)
        return ledoit_wolf_covariance(y, m), means

    def _features_from(self, C: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        if self.readout == "tangent":
            f = tangent_vector(C, self.whitener, self.diagonal)
        else:
            f = torch.log(torch.diagonal(C, dim1=-2, dim2=-1).clamp_min(1e-12))
        parts = [f.reshape(f.shape[0], -1)] + ([means.reshape(means.shape[0], -1)] if self.means else [])
        return torch.cat(parts, 1)

    def raw_features(self, batch: dict) -> torch.Tensor:
        """Unstandardised features ``(B, n_features)`` (float64)."""
        return self._features_from(*self.statistics(batch["x"], batch.get("mask"), batch.get("sfreq")))

    def features(self, batch: dict) -> torch.Tensor:
        return ((self.raw_features(batch) - self.feat_mean) / self.feat_sd).to(self.head.weight.dtype)

    def forward(self, batch: dict) -> torch.Tensor:
        f = self.features(batch)
        if self.n_extra:
            f = torch.cat([batch["extra"].to(f.dtype), f], 1)  # (B E + n_features)
        return self.head(self.drop(f))

    # ------------------------------------------------------------------ statistics
    @torch.no_grad()
    def batch_statistics(self, loader) -> tuple[torch.Tensor, torch.Tensor]:
        """``(covariances (n, F, S', S'), means (n, F, S))`` of every window of
        ``loader``, in dataset order (float64), through the current filters."""
        was = self.training
        self.eval()
        covs, means, idx = [], [], []
        for batch in loader:
            C, m = self.statistics(batch["x"], batch.get("mask"), batch.get("sfreq"))
            covs.append(C)
            means.append(m)
            idx.append(batch["index"])
        self.train(was)
        order = torch.argsort(torch.cat(idx))
        return torch.cat(covs)[order], torch.cat(means)[order]

    @torch.no_grad()
    def fit_statistics(self, loader, *, precomputed=None, init=None, n_jobs=None) -> np.ndarray:
        """Fit the reference (see ``reference``) of the training covariances and the
        feature standardisation on a training ``loader``; returns the standardised
        training features ``(n, n_features)`` in dataset order.

        ``precomputed``: the ``(covariances, means)`` of :meth:`batch_statistics` for the
        same windows through the same filters (they are not recomputed). ``init``: a warm
        start ``(F, S', S')`` of the geometric mean (e.g. a subset's
        :attr:`reference_mean`). ``n_jobs``: threads of the geometric mean."""
        if self.n_prototypes:
            self._fit_prototypes(loader)
            if precomputed is not None:
                raise ValueError("precomputed statistics cannot be used with ERP prototypes (they depend on the "
                                 "training classes' mean responses).")
        C, m = precomputed if precomputed is not None else self.batch_statistics(loader)
        if self.readout == "tangent":
            if self.reference == "logeuclid":
                mean = spd_function(spd_function(C, torch.log).mean(0), torch.exp)  # (F S S)
            else:
                from .spd import riemann_mean_nilearn

                mean = torch.stack([torch.as_tensor(riemann_mean_nilearn(
                    C[:, f].numpy(), n_jobs=n_jobs, init=None if init is None else np.asarray(init[f]))[0])
                    for f in range(C.shape[1])])
            self.reference_mean = mean
            self.whitener.copy_(spd_function(mean, lambda v: v ** -0.5))
        f = self._features_from(C, m)
        self.feat_mean.copy_(f.mean(0))
        sd = f.std(0)
        self.feat_sd.copy_(torch.where(sd > 1e-8, sd, torch.ones_like(sd)))  # constant features stay unscaled
        return ((f - self.feat_mean) / self.feat_sd).numpy()

    @torch.no_grad()
    def standardized(self, C: torch.Tensor, m: torch.Tensor) -> np.ndarray:
        """Standardised features ``(n, n_features)`` of precomputed statistics."""
        return ((self._features_from(C, m) - self.feat_mean) / self.feat_sd).numpy()

    @torch.no_grad()
    def _fit_prototypes(self, loader) -> None:
        """The mean training window of each class, ``(K, L, C)`` (time-locked windows)."""
        sums, counts = None, torch.zeros(self.n_prototypes)
        for batch in loader:
            x, y = batch["x"].double(), batch["y"].long()
            if sums is None:
                sums = torch.zeros(self.n_prototypes, *x.shape[1:], dtype=torch.float64)
            if x.shape[1:] != sums.shape[1:]:
                raise ValueError("ERP prototypes need windows of one length (event windows, no crops).")
            sums.index_add_(0, y, x)
            counts += torch.bincount(y, minlength=self.n_prototypes)
            if "sfreq" in batch:
                self.prototype_sfreq.fill_(float(torch.as_tensor(batch["sfreq"]).reshape(-1)[0]))
        self.prototypes = (sums / counts.clamp_min(1)[:, None, None]).to(self.prototypes.dtype)

    @torch.no_grad()
    def init_head(self, features: np.ndarray, y: np.ndarray, C: float = 0.05, seed: int = 0,
                  kind: str = "classification", class_weight=None) -> float:
        """Start the head at the logistic regression (L2, ``C``, ``class_weight``) of the
        standardised features, as the connectivity baseline fits it; for regression at
        the ridge regression of penalty ``1 / C``. ``C`` is chosen by the caller (the
        zoo chooses it on the inner split, :func:`head_regression`). Returns ``C``."""
        est = head_regression(C, seed, kind, class_weight).fit(features, y)
        if kind == "regression":
            self.head.weight.copy_(torch.as_tensor(est.coef_.reshape(1, -1), dtype=self.head.weight.dtype))
            self.head.bias.fill_(float(est.intercept_))
            return float(C)
        lr = est
        W = np.zeros((self.head.out_features, features.shape[1]))
        b = np.zeros(self.head.out_features)
        classes = lr.classes_.astype(int)
        if len(classes) == 2 and self.head.out_features == 2:  # binary: logit split over the two outputs
            W[classes[1]], b[classes[1]] = lr.coef_[0] / 2, lr.intercept_[0] / 2
            W[classes[0]], b[classes[0]] = -lr.coef_[0] / 2, -lr.intercept_[0] / 2
        else:
            W[classes], b[classes] = lr.coef_, lr.intercept_
        self.head.weight.copy_(torch.as_tensor(W, dtype=self.head.weight.dtype))
        self.head.bias.copy_(torch.as_tensor(b, dtype=self.head.bias.dtype))
        return float(C)

    @torch.no_grad()
    def init_head_from(self, coef: np.ndarray, intercept: np.ndarray, classes) -> None:
        """Start the head at a fitted linear model of the fixed features alone
        (``coef (K', n_extra)``, ``intercept (K',)`` of a scikit-learn logistic regression
        with ``classes``): the learned features' weights start at zero, so the model
        starts exactly at that model."""
        coef, intercept = np.atleast_2d(coef), np.atleast_1d(intercept)
        W = np.zeros((self.head.out_features, self.head.in_features))
        b = np.zeros(self.head.out_features)
        classes = np.asarray(classes).astype(int)
        E = coef.shape[1]
        if E != self.n_extra:
            raise ValueError(f"init_head_from: the model reads {self.n_extra} fixed features; got coef for {E}.")
        if len(classes) == 2 and coef.shape[0] == 1 and self.head.out_features == 2:  # binary: split the logit
            W[classes[1], :E], b[classes[1]] = coef[0] / 2, intercept[0] / 2
            W[classes[0], :E], b[classes[0]] = -coef[0] / 2, -intercept[0] / 2
        else:
            W[classes, :E], b[classes] = coef, intercept
        self.head.weight.copy_(torch.as_tensor(W, dtype=self.head.weight.dtype))
        self.head.bias.copy_(torch.as_tensor(b, dtype=self.head.bias.dtype))

    def extra_repr(self) -> str:
        bands = "" if self.bank is None else f", bands={self.bank.edges().tolist()}"
        return f"readout={self.readout}, n_filters={self.n_filters}, identity={self.identity}{bands}"
