"""Kernel generators: modules whose ``forward(L)`` returns convolution kernels.

A generator with ``bidirectional=False`` returns causal kernels ``(C, H, L)``; with
``bidirectional=True`` it returns centred kernels ``(C, H, 2L - 1)`` whose tap ``L - 1``
is lag zero (the layout :func:`neuroconv.fftconv` takes with ``causal=False``).

Generators are separate from the convolution (as in state-spaces/s4 ``s4d.py``); their
parameters carry their own learning rate and no weight decay through
:func:`register_optim` and :func:`neuroconv.param_groups`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LongConvKernel", "S4DKernel", "register_optim"]


def register_optim(param: nn.Parameter, lr: float | None, weight_decay: float = 0.0) -> None:
    """Tag ``param`` with its own optimizer settings (read by :func:`neuroconv.param_groups`).

    ``lr=None`` keeps the model's base learning rate; ``weight_decay`` defaults to 0.
    """
    param._optim = {"weight_decay": weight_decay} | ({"lr": lr} if lr is not None else {})


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return value


class LongConvKernel(nn.Module):
    """The paper's directly learned long kernel, with squash, smooth and kernel dropout.

    Parameters:
        H: number of channels (features) convolved independently.
        l_max: longest sequence the kernel covers. Shorter inputs use the first ``L``
            taps (causal) or the centre ``2L - 1`` taps (bidirectional), never a
            wrapped-around version.
        channels: kernels per feature (``C``).
        bidirectional: centred kernels of ``2 * l_max - 1`` taps instead of causal ones.
        init: ``"geometric"`` (default: Gaussian under an exponential decay whose rate
            grows geometrically across features; the authors call it ``double_exp``,
            which is accepted as an alias) or ``"random"`` (i.i.d. Gaussian, the
            paper's LRA setting).
        init_scale: standard deviation of the Gaussian part of the *effective* kernel at
            initialisation.
        lam: squash threshold λ: ``k -> sign(k) * max(|k| - λ, 0)``. 0 turns squash off.
        smooth_width: width ``w`` (odd) of the moving average applied along the kernel
            after squash. 1 turns smoothing off.
        kernel_dropout: dropout probability on the kernel taps (training only).
        lr: learning rate of the kernel weights (None: the model's base rate). Weight
            decay on them is always 0.

    The defaults (``init="geometric"``, ``lam=0.003``, ``smooth_width=9``, ``lr=1e-3``)
    are :class:`neuroconv.ModelConfig`'s, those of the shipped brain experiments
    (``configs/*.yaml``); the LRA configs set the paper's own (``init: random``,
    ``smooth_width: 1``). ``kernel_dropout`` is 0 for a bare generator, as every dropout
    of a bare module is; :class:`neuroconv.ModelConfig` sets 0.1.

    Initialisation and λ are chosen together (pitfall of the reference implementation:
    its 0.002-std init under λ = 0.003 leaves ~87% of the weights inside the squash's
    dead zone, where the gradient is exactly zero, so they never move). Here every raw
    weight starts *outside* the dead zone: ``raw = sign(z) * (init_scale * |z| + λ)``
    with ``z ~ N(0, 1)``, so ``squash(raw) = init_scale * z`` exactly: the effective
    kernel has the intended Gaussian law and 100% of the weights receive gradient at
    init. Squash still sparsifies during training as weights drift into ``[-λ, λ]``.

    ``forward(L)`` returns ``(C, H, L)`` (causal) or ``(C, H, 2L - 1)`` (bidirectional).
    """

    def __init__(
        self,
        H: int,
        l_max: int,
        channels: int = 1,
        *,
        bidirectional: bool = False,
        init: str = "geometric",
        init_scale: float = 0.002,
        lam: float = 0.003,
        smooth_width: int = 9,
        kernel_dropout: float = 0.0,
        lr: float | None = 1e-3,
    ):
        super().__init__()
        self.H = _check_positive_int("H", H)
        self.l_max = _check_positive_int("l_max", l_max)
        self.channels = _check_positive_int("channels", channels)
        if init == "double_exp":
            init = "geometric"
        if init not in ("random", "geometric"):
            raise ValueError(
                f"`init` must be 'random' or 'geometric' (alias 'double_exp'); got {init!r}."
            )
        if lam < 0:
            raise ValueError(f"`lam` (squash threshold) must be >= 0; got {lam!r}.")
        if not isinstance(smooth_width, int) or smooth_width < 1 or smooth_width % 2 == 0:
            raise ValueError(f"`smooth_width` must be an odd integer >= 1; got {smooth_width!r}.")
        if not 0.0 <= kernel_dropout < 1.0:
            raise ValueError(f"`kernel_dropout` must be in [0, 1); got {kernel_dropout!r}.")
        self.bidirectional = bool(bidirectional)
        self.init, self.init_scale, self.lam = init, float(init_scale), float(lam)
        self.smooth_width = smooth_width
        self.kernel_dropout = nn.Dropout(kernel_dropout) if kernel_dropout > 0 else nn.Identity()
        n_taps = 2 * l_max - 1 if self.bidirectional else l_max
        self.weight = nn.Parameter(self._init_weight(n_taps))  # (C H n_taps)
        register_optim(self.weight, lr)

    def _lag(self, n_taps: int) -> torch.Tensor:
        """|lag| of every stored tap, shape (n_taps,)."""
        lag = torch.arange(n_taps, dtype=torch.float32)
        return (lag - (self.l_max - 1)).abs() if self.bidirectional else lag

    def _init_weight(self, n_taps: int) -> torch.Tensor:
        z = torch.randn(self.channels, self.H, n_taps) * self.init_scale
        if self.init == "geometric":
            # Feature h decays as exp(-(lag / l_max) * (H/2)^(h/H)): slow for the first
            # features, fast for the last.
            rate = (max(self.H / 2, 1.0)) ** (torch.arange(self.H) / self.H)  # (H,)
            z = z * torch.exp(-self._lag(n_taps)[None, :] / self.l_max * rate[:, None])
        # Strictly outside [-λ, λ], where squash has gradient: a decayed |z| below float32's
        # spacing at λ (late taps of fast features under "geometric") would round onto λ.
        edge = torch.nextafter(torch.tensor(self.lam), torch.tensor(float("inf")))
        raw = torch.sign(z) * (z.abs() + self.lam)
        return torch.where(raw.abs() > self.lam, raw, torch.where(z < 0, -edge, edge))

    def squash(self, k: torch.Tensor) -> torch.Tensor:
        """Soft threshold at λ (zero gradient inside ``[-λ, λ]``)."""
        if self.lam == 0:
            return k
        return torch.sign(k) * F.relu(k.abs() - self.lam)

    def smooth(self, k: torch.Tensor) -> torch.Tensor:
        """Moving average of width ``smooth_width`` along the taps (edges average fewer taps)."""
        if self.smooth_width == 1:
            return k
        C, H, n = k.shape
        w = self.smooth_width
        out = F.avg_pool1d(k.reshape(C * H, 1, n), w, stride=1, padding=w // 2, count_include_pad=False)
        return out.reshape(C, H, n)

    def full_kernel(self) -> torch.Tensor:
        """The regularized kernel over all ``l_max`` lags, before dropout."""
        return self.smooth(self.squash(self.weight))

    def forward(self, L: int) -> torch.Tensor:
        """Kernels for an input of length ``L``: ``(C, H, L)`` or ``(C, H, 2L - 1)``."""
        if L > self.l_max:
            raise ValueError(
                f"LongConvKernel: input length L={L} exceeds l_max={self.l_max}; build the "
                f"layer with l_max >= {L}."
            )
        k = self.kernel_dropout(self.full_kernel())
        if self.bidirectional:
            c = self.l_max - 1
            return k[..., c - (L - 1) : c + L]
        return k[..., :L]

    def extra_repr(self) -> str:
        return (
            f"H={self.H}, l_max={self.l_max}, channels={self.channels}, "
            f"bidirectional={self.bidirectional}, init={self.init!r}, lam={self.lam}, "
            f"smooth_width={self.smooth_width}"
        )


class S4DKernel(nn.Module):
    """Diagonal state-space (S4D-Lin) kernel: the baseline the paper compares against.

    ``K[c, h, l] = 2 * Re( sum_n C[c, h, n] * (exp(dt_h A_hn) - 1) / A_hn * exp(dt_h A_hn l) )``
    with ``A = -exp(log_A_real) + i * pi * n`` (S4D-Lin init) and ``dt`` log-uniform in
    ``[dt_min, dt_max]``. ``A`` and ``dt`` use learning rate ``lr`` with no weight decay;
    ``C`` is an ordinary parameter.

    ``forward(L)`` returns ``(C, H, L)``; with ``bidirectional=True`` it returns centred
    ``(C, H, 2L - 1)`` kernels built from two independent SSMs (one per direction).
    """

    def __init__(
        self,
        H: int,
        l_max: int | None = None,
        channels: int = 1,
        *,
        bidirectional: bool = False,
        d_state: int = 64,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        lr: float | None = 1e-3,
    ):
        super().__init__()
        self.H = _check_positive_int("H", H)
        self.channels = _check_positive_int("channels", channels)
        _check_positive_int("d_state", d_state, 2)
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max; got dt_min={dt_min}, dt_max={dt_max}.")
        self.l_max = l_max
        self.bidirectional = bool(bidirectional)
        n_dir = 2 if self.bidirectional else 1
        N = d_state // 2
        log_dt = torch.rand(n_dir, H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)  # (dir H)
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(n_dir, H, N)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(N).float().expand(n_dir, H, N).clone())
        C = torch.randn(n_dir, channels, H, N, dtype=torch.cfloat) * (0.5**0.5)
        self.C = nn.Parameter(torch.view_as_real(C))  # (dir C H N 2)
        for p in (self.log_dt, self.log_A_real, self.A_imag):
            register_optim(p, lr)

    def _causal(self, L: int) -> torch.Tensor:
        dt = torch.exp(self.log_dt)  # (dir H)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag  # (dir H N)
        dtA = A * dt[..., None]  # (dir H N)
        C = torch.view_as_complex(self.C) * ((torch.exp(dtA) - 1.0) / A)[:, None]  # (dir C H N)
        pos = torch.arange(L, device=dtA.device)
        V = torch.exp(dtA[..., None] * pos)  # (dir H N L)
        return 2 * torch.einsum("dchn,dhnl->dchl", C, V).real  # (dir C H L)

    def forward(self, L: int) -> torch.Tensor:
        if self.l_max is not None and L > self.l_max:
            raise ValueError(
                f"S4DKernel: input length L={L} exceeds l_max={self.l_max}; build the layer "
                f"with l_max >= {L}."
            )
        k = self._causal(L)
        if not self.bidirectional:
            return k[0]
        fwd, bwd = k[0], k[1]  # lag >= 0 from fwd, lag < 0 from bwd (its tap 0 unused)
        return torch.cat([bwd[..., 1:].flip(-1), fwd], dim=-1)  # (C H 2L-1)
