"""Sequence layers: ``(B, L, D) -> (B, L, D)``, each with an optional validity mask.

Every layer takes ``forward(x, mask=None)`` where ``x`` is ``(B, L, D)`` (batch, time,
features; ``D = d_model``) and ``mask`` is a boolean ``(B, L)`` tensor, True on real steps
and False on padding. Padded steps never leak into real ones and come out as zeros. A
tensor in another layout (``(B, D, L)``, the convolution's ``(B, H, L)``) is refused with
an error that names the layout it got and how to fix it (:func:`check_sequence`).

:data:`LAYERS` is the one list of layer names: :class:`neuroconv.ModelConfig`,
:class:`neuroconv.SequenceModel`, ``neuroconv lra --layer`` and the estimators all read
it, and every entry passes one shared contract test (``tests/test_layers.py``). Adding a
layer is one entry here: a constructor ``(d_model, l_max, **keywords) -> module``;
:meth:`neuroconv.ModelConfig.layer_args` hands it the config keys its signature names
(:func:`layer_keywords`).
"""

from __future__ import annotations

import functools
import inspect

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backend import check_backend, resolve_backend
from .butterfly import ButterflyFFTConv
from .fftconv import fftconv
from .kernel_gen import LongConvKernel, S4DKernel, register_optim

__all__ = ["LongConv", "ButterflyConv", "GatedLongConv", "AttentionLayer", "LAYERS", "build_layer", "check_layer",
           "layer_keywords", "check_sequence", "check_mask"]

_KERNELS = {"longconv": LongConvKernel, "s4d": S4DKernel}


def _apply_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x.masked_fill(~mask[..., None], 0.0)


def _shape(t) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def check_mask(mask, B: int, L: int, where: str) -> None:
    """Raise unless ``mask`` is None or a boolean ``(B, L)`` tensor (True on real steps)."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        dtype = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"{where}: mask must be bool (B, L), True on real steps; got dtype {str(dtype).replace('torch.', '')}"
                        f" {_shape(mask)}. Pass mask.bool() (or lengths= where it is taken).")
    if mask.dim() != 2 or mask.shape[0] != B:
        raise ValueError(f"{where}: mask must be bool (B, L) = ({B}, {L}) like x; got {_shape(mask)}.")
    if mask.shape[1] != L:
        raise ValueError(f"{where}: mask has length {mask.shape[1]} but x has L = {L} steps; pass a (B, L) = "
                         f"({B}, {L}) mask.")


def check_sequence(x, mask, d_model: int, where: str) -> None:
    """Raise unless ``x`` is a floating ``(B, L, D)`` tensor with ``D = d_model`` and
    ``mask`` is None or boolean ``(B, L)``. The message names the layout received: a
    ``(B, D, L)`` tensor (the convolution's ``(B, H, L)``) is told to transpose."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"{where} expects x of shape (B, L, D) with D = d_model = {d_model}; got {_shape(x)}.")
    B, L, D = x.shape
    if D != d_model:
        if L == d_model:
            raise ValueError(f"got (B, H, L) = {tuple(x.shape)}; {where} expects (B, L, D) with D = d_model = "
                             f"{d_model}; pass x.transpose(1, 2).")
        raise ValueError(f"{where} expects x of shape (B, L, D) with D = d_model = {d_model}; got {tuple(x.shape)} "
                         f"({D} features per step).")
    if not x.is_floating_point():
        raise TypeError(f"{where} expects a floating-point x (B, L, D); got dtype {x.dtype}.")
    check_mask(mask, B, L, where)


class LongConv(nn.Module):
    """Long-convolution layer (the paper's block body): ``x (B, L, D) -> (B, L, D)``.

    ``x -> kernel generator -> fftconv (+ D skip) -> GELU -> dropout -> Linear -> GLU``.

    Parameters:
        d_model: feature width ``D``.
        l_max: longest input length.
        channels: kernels per feature; the ``channels * D`` conv outputs are mixed back
            to ``D`` by the output projection.
        bidirectional: centred (non-causal) kernels.
        kernel: ``"longconv"`` (:class:`LongConvKernel`) or ``"s4d"`` (:class:`S4DKernel`).
        kernel_args: keyword arguments for the kernel generator (``lam``,
            ``smooth_width``, ``kernel_dropout``, ``init``, ``lr``, ...); the generator's
            own defaults otherwise, which are :class:`neuroconv.ModelConfig`'s.
        dropout: dropout after the activation. 0 for a bare layer;
            :class:`neuroconv.ModelConfig` builds its layers with its ``dropout`` (0.1)
            unless ``layer_dropout`` is set.
        backend: ``fftconv`` backend (``"auto"``, ``"torch"`` or ``"triton"``).
        kernel_size: the kernel's length in lags (``None``: ``l_max``, as long as the
            longest input). A shorter kernel gives the same layer with a short receptive
            field (``kernel_size=5`` and ``bidirectional``: 9-tap centred kernels, a
            short-context ablation); inputs may then be longer than it.
    """

    def __init__(
        self,
        d_model: int,
        l_max: int,
        *,
        channels: int = 1,
        bidirectional: bool = False,
        kernel: str = "longconv",
        kernel_args: dict | None = None,
        dropout: float = 0.0,
        backend: str = "auto",
        kernel_size: int | None = None,
    ):
        super().__init__()
        if kernel not in _KERNELS:
            raise ValueError(f"`kernel` must be one of {sorted(_KERNELS)}; got {kernel!r}.")
        if kernel_size is not None and (isinstance(kernel_size, bool) or not isinstance(kernel_size, int)
                                        or kernel_size < 1):
            raise ValueError(f"`kernel_size` must be None or an integer >= 1; got {kernel_size!r}.")
        check_backend(backend, type(self).__name__)
        self.d_model, self.l_max, self.channels = d_model, l_max, channels
        self.kernel_size = kernel_size
        self.bidirectional, self.backend = bool(bidirectional), backend
        self.kernel = _KERNELS[kernel](
            d_model, kernel_size or l_max, channels, bidirectional=bidirectional, **(kernel_args or {})
        )
        self.D = nn.Parameter(torch.randn(channels, d_model))
        register_optim(self.D, lr=None)  # a skip gain: never weight-decayed, whatever its shape
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output_linear = nn.Linear(channels * d_model, 2 * d_model)

    def conv(self, u: torch.Tensor, k: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
        """``u (B, C*H, L)``, ``k (C*H, Lk)``, ``D (C*H,)`` -> ``(B, C*H, L)``."""
        return fftconv(u, k, D, causal=not self.bidirectional, backend=self.backend)

    def _kernel(self, L: int) -> torch.Tensor:
        """The kernel for length ``L``; in eval mode without autograd it is generated once
        and reused (the same tensor object, so the Triton path's spectrum cache hits too)
        until a kernel parameter changes."""
        if self.training or torch.is_grad_enabled():
            self._k_cache = None
            return self.kernel(L)
        versions = tuple(p._version for p in self.kernel.parameters())
        key = (L, versions, tuple(p.data_ptr() for p in self.kernel.parameters()))
        cache = getattr(self, "_k_cache", None)
        if cache is None or cache[0] != key:
            cache = self._k_cache = (key, self.kernel(L))
        return cache[1]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, D) -> (B, L, D)``, ``D = d_model``, ``L <= l_max`` (any ``L`` with
        ``kernel_size``).

        ``mask``: boolean ``(B, L)``, True on real steps, or None (every step real).
        Padded steps are zeroed before the convolution, so they never reach real ones, and
        come out as zeros. A ``(B, D, L)`` input raises an error that says to transpose it.
        """
        check_sequence(x, mask, self.d_model, type(self).__name__)
        B, L, H = x.shape  # (B L H)
        x = _apply_mask(x, mask)
        k = self._kernel(min(L, self.kernel_size) if self.kernel_size else L)  # (C H Lk) or (C H 2Lk-1)
        C = k.shape[0]
        u = x.transpose(1, 2)  # (B H L)
        if C > 1:
            u = u.unsqueeze(1).expand(B, C, H, L).reshape(B, C * H, L)  # (B C*H L)
        y = self.conv(u, k.reshape(C * H, -1), self.D.reshape(-1))  # (B C*H L)
        y = self.dropout(F.gelu(y.transpose(1, 2)))  # (B L C*H)
        y = F.glu(self.output_linear(y), dim=-1)  # (B L H)
        return _apply_mask(y, mask)


class ButterflyConv(LongConv):
    """:class:`LongConv` whose FFT is a learned butterfly (:class:`ButterflyFFTConv`):
    ``x (B, L, D) -> (B, L, D)``.

    At initialisation it computes exactly what :class:`LongConv` computes; the Monarch
    DFT factors then train with their own learning rate ``butterfly_lr``. The other
    parameters are :class:`LongConv`'s.
    """

    def __init__(self, d_model: int, l_max: int, *, channels: int = 1, bidirectional: bool = False,
                 kernel: str = "longconv", kernel_args: dict | None = None, dropout: float = 0.0,
                 backend: str = "auto", butterfly_lr: float | None = 1e-4):
        super().__init__(d_model, l_max, channels=channels, bidirectional=bidirectional, kernel=kernel,
                         kernel_args=kernel_args, dropout=dropout, backend=backend)
        self.butterfly = ButterflyFFTConv(l_max, causal=not self.bidirectional, lr=butterfly_lr,
                                          backend=self.backend)

    def conv(self, u, k, D):
        return self.butterfly(u, k, D)


class GatedLongConv(nn.Module):
    """Gated long convolution, the H3/Hyena form: ``x (B, L, D) -> (B, L, D)``::

        q, k, v = split(short_conv(in_proj(x)))        # (B L D) each
        y = q * (longconv(k * v) + D * (k * v))        # elementwise gates around one long conv
        out = out_proj(dropout(y))

    ``in_proj`` maps ``D -> 3D``; ``short_conv`` is a depthwise convolution of width
    ``short_conv`` over the ``3D`` projected channels (causal, or centred when
    bidirectional; width 1 turns it off); the long convolution has one kernel per
    feature from the same kernel generators as :class:`LongConv` (squash, smooth,
    kernel dropout, own learning rate). This is the language-model layer of the paper's
    H3-style experiments; unlike H3 it has no shift-SSM (the short conv plays that role,
    as in Hyena) and a single head.

    Parameters:
        d_model: feature width ``D``.
        l_max: longest input length.
        bidirectional: centred (non-causal) long and short convolutions.
        kernel: ``"longconv"`` (:class:`LongConvKernel`) or ``"s4d"`` (:class:`S4DKernel`).
        kernel_args: keyword arguments for the kernel generator (``lam``,
            ``smooth_width``, ``kernel_dropout``, ``init``, ``lr``, ...).
        short_conv: width of the depthwise short convolution (odd when bidirectional).
        dropout: dropout on the gated output, before ``out_proj`` (0 for a bare layer;
            :class:`neuroconv.ModelConfig` passes its own, as for :class:`LongConv`).
        backend: ``"auto"`` (the fused Triton kernel with its gates,
            ``neuroconv.kernels``, for CUDA tensors when triton is installed and its
            one-time self-check passes; torch otherwise), ``"torch"`` or ``"triton"`` (an
            error says how to get it when it cannot run). The rules are
            :func:`neuroconv.backend.resolve_backend`'s, shared with :func:`fftconv`.

    Masking: projections are zeroed on padded steps before any convolution, so padded
    steps never reach real ones (also when bidirectional), and padded outputs are zero.
    """

    def __init__(
        self,
        d_model: int,
        l_max: int,
        *,
        bidirectional: bool = False,
        kernel: str = "longconv",
        kernel_args: dict | None = None,
        short_conv: int = 3,
        dropout: float = 0.0,
        backend: str = "auto",
    ):
        super().__init__()
        if kernel not in _KERNELS:
            raise ValueError(f"`kernel` must be one of {sorted(_KERNELS)}; got {kernel!r}.")
        check_backend(backend, "GatedLongConv")
        if isinstance(short_conv, bool) or not isinstance(short_conv, int) or short_conv < 1:
            raise ValueError(f"`short_conv` must be an integer >= 1; got {short_conv!r}.")
        if bidirectional and short_conv % 2 == 0:
            raise ValueError(f"`short_conv` must be odd when bidirectional (centred); got {short_conv}.")
        self.d_model, self.l_max, self.channels = d_model, l_max, 1
        self.bidirectional, self.backend, self.short_width = bool(bidirectional), backend, short_conv
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.short_conv = (
            nn.Conv1d(3 * d_model, 3 * d_model, short_conv, groups=3 * d_model) if short_conv > 1 else None
        )
        self.kernel = _KERNELS[kernel](d_model, l_max, 1, bidirectional=bidirectional, **(kernel_args or {}))
        self.D = nn.Parameter(torch.randn(d_model))
        register_optim(self.D, lr=None)  # a skip gain: never weight-decayed
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_proj = nn.Linear(d_model, d_model)

    def _short(self, z: torch.Tensor) -> torch.Tensor:
        """Depthwise short conv on ``z (B, 3D, L)``: causal (left pad) or centred."""
        if self.short_conv is None:
            return z
        w = self.short_width
        pad = (w // 2, w // 2) if self.bidirectional else (w - 1, 0)
        return self.short_conv(F.pad(z, pad))

    def gated_conv(self, v: torch.Tensor, g1: torch.Tensor, g2: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """``(fftconv(v * g1, k) + D * v * g1) * g2``; all ``(B, H, L)``, ``k (H, Lk)``.
        The backend is :func:`neuroconv.backend.resolve_backend`'s choice for the fused
        gated kernel (``gated=True``)."""
        backend = resolve_backend(self.backend, v, causal=not self.bidirectional, gated=True)
        if backend == "triton":
            from neuroconv.kernels.flashbutterfly import fftconv_fn

            return fftconv_fn(v, k, self.D, causal=not self.bidirectional, g1=g1, g2=g2)
        return fftconv(v * g1, k, self.D, causal=not self.bidirectional, backend="torch") * g2

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, D) -> (B, L, D)``, ``D = d_model``, ``L <= l_max``.

        ``mask``: boolean ``(B, L)``, True on real steps, or None. Projections are zeroed
        on padded steps before both convolutions; padded outputs are zero.
        """
        check_sequence(x, mask, self.d_model, "GatedLongConv")
        B, L, H = x.shape  # (B L H)
        z = _apply_mask(self.in_proj(x), mask).transpose(1, 2)  # (B 3H L), zero on padding
        z = self._short(z)
        if mask is not None:
            z = z.masked_fill(~mask[:, None, :], 0.0)
        q, k, v = z.chunk(3, dim=1)  # (B H L) each
        kern = self.kernel(L)[0]  # (H L) or (H 2L-1)
        y = self.gated_conv(v.contiguous(), k.contiguous(), q.contiguous(), kern)  # (B H L)
        y = self.out_proj(self.dropout(y.transpose(1, 2)))  # (B L H)
        return _apply_mask(y, mask)


def _rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding on ``(B, heads, L, d_head)`` (even ``d_head``)."""
    L, d = x.shape[-2], x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d))
    ang = torch.arange(L, device=x.device, dtype=torch.float32)[:, None] * inv  # (L d/2)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class AttentionLayer(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``:
    ``x (B, L, D) -> (B, L, D)``.

    Causal by default (``bidirectional=False``), with rotary position embeddings so that
    it needs no positional encoder. ``l_max`` is accepted for a uniform constructor and
    not used. Padded keys are masked out; padded queries produce zeros. ``dropout`` (on
    the attention weights, training only) is 0 for a bare layer;
    :class:`neuroconv.ModelConfig` passes its own, as for :class:`LongConv`.
    """

    def __init__(
        self,
        d_model: int,
        l_max: int | None = None,
        *,
        n_heads: int = 4,
        bidirectional: bool = False,
        dropout: float = 0.0,
        rotary: bool = True,
    ):
        super().__init__()
        if d_model % n_heads or (d_model // n_heads) % 2:
            raise ValueError(
                f"AttentionLayer: d_model={d_model} must split into n_heads={n_heads} heads "
                "of even width."
            )
        self.d_model, self.n_heads = d_model, n_heads
        self.bidirectional, self.rotary, self.dropout = bool(bidirectional), rotary, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, D) -> (B, L, D)``, ``D = d_model`` (any ``L``).

        ``mask``: boolean ``(B, L)``, True on real steps, or None. Padded keys are never
        attended to; padded queries give zeros.
        """
        check_sequence(x, mask, self.d_model, "AttentionLayer")
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        if self.rotary:
            q, k = _rotary(q), _rotary(k)  # (B heads L d_head)
        drop = self.dropout if self.training else 0.0
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=not self.bidirectional, dropout_p=drop)
        else:
            allowed = mask[:, None, None, :]  # (B 1 1 L) keys
            if not self.bidirectional:
                allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
            # A padded query may see no key at all; let it see itself, then zero it below.
            allowed = allowed | torch.eye(L, dtype=torch.bool, device=x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=drop)
        y = self.out(y.transpose(1, 2).reshape(B, L, D))
        return _apply_mask(y, mask)


#: The one list of sequence layers: name -> constructor ``(d_model, l_max, **keywords)
#: -> module`` of a ``(B, L, D) -> (B, L, D)`` layer with ``forward(x, mask=None)``.
#: ModelConfig, SequenceModel, ``neuroconv lra --layer`` and the estimators read it; the
#: shared contract test runs every entry. A new layer is one entry here.
LAYERS = {
    "longconv": LongConv,
    "s4d": functools.partial(LongConv, kernel="s4d"),  # LongConv with the diagonal state-space kernel
    "butterfly": ButterflyConv,
    "attention": AttentionLayer,
    "gated": GatedLongConv,
}


def check_layer(name, where: str = "layer") -> str:
    """Return ``name`` when it is a key of :data:`LAYERS`; raise a ``ValueError`` that
    lists the registered names otherwise."""
    if not isinstance(name, str) or name not in LAYERS:
        raise ValueError(f"`{where}` must be one of {sorted(LAYERS)} (neuroconv.LAYERS); got {name!r}.")
    return name


def layer_keywords(name: str) -> tuple[set[str], set[str]]:
    """``(layer keywords, kernel keywords)``: the keyword arguments that the constructor
    of ``LAYERS[name]`` names, and those that its kernel generator names when the layer
    takes ``kernel_args`` (empty otherwise). The generator is the one of the
    constructor's ``kernel`` default (``"longconv"`` when it has none). Constructors that
    take only ``**kwargs`` name nothing, so they get no optional keyword."""
    ctor = LAYERS[check_layer(name)]
    params = inspect.signature(ctor).parameters
    named = {n for n, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"d_model", "l_max"}
    kernel = set()
    if "kernel_args" in named:
        default = params["kernel"].default if "kernel" in params else "longconv"
        gen = _KERNELS.get(default, LongConvKernel)
        kernel = {n for n, p in inspect.signature(gen).parameters.items()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"H", "l_max", "channels", "bidirectional"}
    return named, kernel


def build_layer(name: str, d_model: int, l_max: int, **kwargs) -> nn.Module:
    """``LAYERS[name](d_model, l_max, **kwargs)``, after :func:`check_layer`."""
    return LAYERS[check_layer(name)](d_model, l_max, **kwargs)
