"""``SequenceModel``: encoder -> N residual blocks -> optional head, and its
``ModelConfig``.

Tensors are ``(B, L, D)`` at this boundary. :class:`ModelConfig` is the one dataclass
that describes a backbone in every job (brain pretraining and decoding, the LRA
benchmarks, the scikit-learn estimators; each job extends it with its own fields).
:meth:`ModelConfig.model_args` turns it into the model's constructor arguments, which
are the model's config (:attr:`SequenceModel.config`), stored with every checkpoint so
that :meth:`SequenceModel.from_config` rebuilds it (nanoGPT's ``model_args``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn as nn

from .layers import LAYERS, build_layer, check_layer, check_mask, layer_keywords

__all__ = ["SequenceModel", "ModelConfig", "lengths_to_mask", "masked_mean"]

_NORMS = ("layer", "batch", "none")
_HEADS = (None, "classification", "regression", "lm")
_POOLS = ("mean", "last")


def lengths_to_mask(lengths: torch.Tensor, L: int) -> torch.Tensor:
    """``lengths (B,)`` -> boolean ``(B, L)`` mask, True on the first ``lengths[b]`` steps."""
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"`lengths` must have shape (B,); got {tuple(lengths.shape)}.")
    if (lengths < 1).any() or (lengths > L).any():
        raise ValueError(f"`lengths`: every length must be in [1, L={L}]; got {lengths.tolist()}.")
    return torch.arange(L, device=lengths.device)[None, :] < lengths[:, None]


class MaskedNorm(nn.Module):
    """LayerNorm, or BatchNorm whose statistics use only the valid (unmasked) steps."""

    def __init__(self, d_model: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "layer":
            self.norm = nn.LayerNorm(d_model)
        elif kind == "batch":
            self.norm = nn.BatchNorm1d(d_model)
        else:
            self.norm = nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.kind != "batch":
            return self.norm(x)
        if mask is None:
            return self.norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        out = torch.zeros_like(x)
        out[mask] = self.norm(x[mask])  # (n_valid D): padding never enters the statistics
        return out


class Block(nn.Module):
    def __init__(self, layer: nn.Module, d_model: int, norm: str, prenorm: bool, dropout: float):
        super().__init__()
        self.layer, self.prenorm = layer, prenorm
        self.norm = MaskedNorm(d_model, norm)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x, mask):
        if self.prenorm:
            return x + self.drop(self.layer(self.norm(x, mask), mask))
        return self.norm(x + self.drop(self.layer(x, mask)), mask)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None, dim=None) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is true.

    ``mask`` has the leading shape of ``x`` (e.g. ``(B, L)`` for ``x (B, L, D)``) and is
    broadcast over the trailing dimensions. ``dim=None`` averages everything to a scalar
    (a loss); ``dim=1`` pools ``(B, L, D)`` to ``(B, D)``. Positions with no valid entry
    give 0, not NaN. ``mask=None`` is a plain mean.
    """
    if mask is None:
        return x.mean() if dim is None else x.mean(dim)
    m = mask.to(x.dtype)
    m = m.reshape(m.shape + (1,) * (x.dim() - m.dim())).expand_as(x)
    if dim is None:
        return (x * m).sum() / m.sum().clamp_min(1.0)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


def LayerName():  # noqa: N802 - called in an annotation, where it stands for a type
    """The type of :attr:`ModelConfig.layer`: ``Literal`` of the names in
    :data:`neuroconv.LAYERS` as they are when the annotation is evaluated (by
    ``typing.get_type_hints``, which the config parser calls when it is built), so the
    command line checks the name, ``--help`` lists the choices, and a layer registered
    later is one of them."""
    return Literal[tuple(LAYERS)]


@dataclass
class ModelConfig:
    """The backbone of a :class:`SequenceModel`: its layers and their kernels.

    Every key is flat, whatever the layer; :meth:`layer_args` hands each layer the keys it
    takes and leaves out the others, so one config can swap ``layer`` freely. The
    defaults are those of the shipped brain experiments (``configs/*.yaml``), and the
    layers' and kernel generators' own defaults are the same.

    Args:
        layer: Sequence layer, a name of neuroconv.LAYERS.
        d_model: Width of the residual stream.
        n_layers: Residual blocks.
        channels: Kernels per feature (longconv, s4d, butterfly; gated has one kernel per
            feature and ignores it).
        bidirectional: Centred (non-causal) layers.
        dropout: Residual dropout.
        layer_dropout: Dropout inside each layer (null: the same as dropout).
        norm: layer, batch or none.
        prenorm: Pre-norm (true) or post-norm blocks.
        lam: Squash threshold of the long-conv kernels (0: off; longconv, butterfly, gated).
        smooth_width: Moving-average width of the long-conv kernels (odd; 1: off).
        kernel_dropout: Dropout on the taps of the long-conv kernels.
        kernel_lr: Learning rate of the kernel parameters (no weight decay), s4d's included.
        kernel_init: Long-conv kernel initialisation: geometric (decaying) or random.
        n_heads: Attention heads (null: the first of 4, 2, 1 that splits d_model into heads
            of even width).
        d_state: State size of the s4d kernels (null: the kernel's default, 64).
        short_conv: Width of the gated layers' short depthwise convolution (null: the
            layer's default, 3).
    """

    layer: LayerName() = "longconv"
    d_model: int = 64
    n_layers: int = 4
    channels: int = 1
    bidirectional: bool = False
    dropout: float = 0.1
    layer_dropout: Optional[float] = None
    norm: Literal["layer", "batch", "none"] = "layer"
    prenorm: bool = True
    lam: float = 0.003
    smooth_width: int = 9
    kernel_dropout: float = 0.1
    kernel_lr: float = 1e-3
    kernel_init: Literal["geometric", "random"] = "geometric"
    n_heads: Optional[int] = None
    d_state: Optional[int] = None
    short_conv: Optional[int] = None

    def __post_init__(self):
        check_layer(self.layer)

    def layer_args(self) -> dict:
        """The ``layer_args`` of :class:`SequenceModel` for ``self.layer``: each layer
        gets the keys its constructor names (:func:`neuroconv.layers.layer_keywords`),
        whatever the layer, so a layer added to :data:`neuroconv.LAYERS` needs no edit
        here.

        - ``channels``, ``bidirectional``, ``dropout``, ``n_heads`` (resolved, see the
          class doc), and ``short_conv`` and ``d_state`` when set, to the layers that
          take them;
        - ``kernel_args``, to layers that take them, with the keys that their kernel
          generator takes of ``lam``, ``smooth_width``, ``kernel_dropout``, ``lr``
          (``kernel_lr``), ``init`` (``kernel_init``) and ``d_state``.

        So ``longconv`` and ``butterfly`` get ``channels``, ``bidirectional``,
        ``dropout`` and :class:`neuroconv.LongConvKernel`'s ``lam``, ``smooth_width``,
        ``kernel_dropout``, ``lr``, ``init``; ``gated`` the same without ``channels``
        (one kernel per feature) and with ``short_conv``; ``s4d`` gets
        :class:`neuroconv.S4DKernel`'s ``lr`` and ``d_state`` only (S4D-Lin has no
        squash, smoothing or kernel dropout); ``attention`` gets ``n_heads``,
        ``bidirectional``, ``dropout``.

        ``dropout`` is ``layer_dropout``, or ``dropout`` when that is null. Returns a new
        dict.
        """
        named, kernel_named = layer_keywords(check_layer(self.layer))
        offered = dict(channels=self.channels, bidirectional=self.bidirectional,
                       dropout=self.dropout if self.layer_dropout is None else self.layer_dropout)
        for key in ("short_conv", "d_state"):
            if getattr(self, key) is not None:
                offered[key] = getattr(self, key)
        out = {k: v for k, v in offered.items() if k in named}
        if "n_heads" in named:
            out["n_heads"] = self._n_heads()
        if "kernel_args" in named:
            kernel = dict(lam=self.lam, smooth_width=self.smooth_width, kernel_dropout=self.kernel_dropout,
                          lr=self.kernel_lr, init=self.kernel_init)
            if self.d_state is not None:
                kernel["d_state"] = self.d_state
            out["kernel_args"] = {k: v for k, v in kernel.items() if k in kernel_named}
        return out

    def model_args(self, *, l_max: int, d_input: int | None = None, vocab_size: int | None = None,
                   head: str | None = None, d_output: int | None = None, pool: str = "mean") -> dict:
        """The :class:`SequenceModel` keyword arguments of this backbone with the job's
        inputs and outputs (``d_input``, ``vocab_size``, ``l_max``, ``head``,
        ``d_output``, ``pool``: see :class:`SequenceModel`). The result is the model's
        :attr:`~SequenceModel.config`: ``SequenceModel(**cfg.model_args(...))``."""
        return dict(d_input=d_input, d_model=self.d_model, n_layers=self.n_layers, layer=self.layer,
                    l_max=int(l_max), layer_args=self.layer_args(), prenorm=self.prenorm, norm=self.norm,
                    dropout=self.dropout, head=head, d_output=d_output, pool=pool, vocab_size=vocab_size)

    def _n_heads(self) -> int:
        if self.n_heads is not None:
            return self.n_heads
        n_heads = next((h for h in (4, 2, 1) if self.d_model % h == 0 and (self.d_model // h) % 2 == 0), None)
        if n_heads is None:
            raise ValueError(f"attention needs heads of even width, and d_model={self.d_model} is odd; set "
                             "d_model to an even width.")
        return n_heads


class SequenceModel(nn.Module):
    """A stack of sequence layers with an input encoder and an optional head:
    ``x (B, L, d_input) -> (B, L, d_model)``, or the head's output.

    Parameters:
        d_input: input features per step (``x`` is ``(B, L, d_input)`` floats), or
            ``None`` with ``vocab_size`` for token inputs (``x`` is ``(B, L)`` ints), or
            ``None`` without ``vocab_size`` for inputs already embedded,
            ``(B, L, d_model)`` (an outside encoder, as in the brain-data models).
        d_model: width of the residual stream.
        n_layers: number of residual blocks.
        layer: a name in :data:`neuroconv.LAYERS` ({layers}).
        l_max: longest sequence length.
        layer_args: keyword arguments for each layer (e.g. ``channels``,
            ``bidirectional``, ``kernel_args``, ``n_heads``); None builds each layer with
            its own defaults (no dropout inside the layer; :class:`ModelConfig` sets the
            layer's dropout to ``dropout`` unless ``layer_dropout`` says otherwise).
        prenorm: pre-norm (``True``) or post-norm residual blocks.
        norm: ``"layer"``, ``"batch"`` (masked statistics) or ``"none"``.
        dropout: residual dropout.
        head: ``None`` (return ``(B, L, d_model)``), ``"classification"`` (``(B,
            d_output)`` logits after mask-aware pooling), ``"regression"`` (per-step
            ``(B, L, d_output)``) or ``"lm"`` (``(B, L, vocab_size)`` logits).
        d_output: classes or regression targets for the head.
        pool: ``"mean"`` over valid steps or ``"last"`` valid step (classification).
        vocab_size: token vocabulary for embedding inputs and the ``"lm"`` head.

    ``forward(x, mask=None, lengths=None)``: ``mask`` is boolean ``(B, L)`` (True = real
    step) or ``lengths`` is ``(B,)``; padded steps never affect real outputs. The
    defaults of ``d_model``, ``n_layers``, ``layer``, ``norm`` and ``prenorm`` are
    :class:`ModelConfig`'s, and the kernels' are too; dropouts are 0 in a bare model
    (residual, layer and kernel), as in every bare layer, and :class:`ModelConfig` sets
    them (0.1).
    """

    def __init__(
        self,
        d_input: int | None,
        d_model: int = 64,
        n_layers: int = 4,
        layer: LayerName() = "longconv",
        *,
        l_max: int = 1024,
        layer_args: dict | None = None,
        prenorm: bool = True,
        norm: str = "layer",
        dropout: float = 0.0,
        head: str | None = None,
        d_output: int | None = None,
        pool: str = "mean",
        vocab_size: int | None = None,
    ):
        super().__init__()
        check_layer(layer)
        if norm not in _NORMS:
            raise ValueError(f"`norm` must be one of {_NORMS}; got {norm!r}.")
        if head not in _HEADS:
            raise ValueError(f"`head` must be one of {_HEADS}; got {head!r}.")
        if pool not in _POOLS:
            raise ValueError(f"`pool` must be one of {_POOLS}; got {pool!r}.")
        if head in ("classification", "regression") and not d_output:
            raise ValueError(f"head={head!r} needs `d_output` (number of classes or targets).")
        if head == "lm" and not vocab_size:
            raise ValueError("head='lm' needs `vocab_size`.")
        self.config = dict(
            d_input=d_input, d_model=d_model, n_layers=n_layers, layer=layer, l_max=l_max,
            layer_args=dict(layer_args or {}), prenorm=prenorm, norm=norm, dropout=dropout,
            head=head, d_output=d_output, pool=pool, vocab_size=vocab_size,
        )
        if d_input is not None:
            self.encoder = nn.Linear(d_input, d_model)
        elif vocab_size is not None:
            self.encoder = nn.Embedding(vocab_size, d_model)
        else:  # inputs arrive already embedded: (B, L, d_model)
            self.encoder = nn.Identity()
        self.blocks = nn.ModuleList(
            Block(build_layer(layer, d_model, l_max, **(layer_args or {})), d_model, norm, prenorm, dropout)
            for _ in range(n_layers)
        )
        self.final_norm = MaskedNorm(d_model, norm) if prenorm else None
        self.head_kind, self.pool = head, pool
        if head == "lm":
            self.head = nn.Linear(d_model, vocab_size, bias=False)
        elif head is not None:
            self.head = nn.Linear(d_model, d_output)
        else:
            self.head = None

    @classmethod
    def from_config(cls, config: dict) -> "SequenceModel":
        config = dict(config)
        return cls(config.pop("d_input"), **config)

    def features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Backbone output ``(B, L, d_model)`` (no head)."""
        h = self.encoder(x)  # (B L d_model)
        if mask is not None:
            h = h.masked_fill(~mask[..., None], 0.0)
        for block in self.blocks:
            h = block(h, mask)
        if self.final_norm is not None:
            h = self.final_norm(h, mask)
        if mask is not None:
            h = h.masked_fill(~mask[..., None], 0.0)
        return h

    def pooled(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Pool ``(B, L, D)`` to ``(B, D)`` over valid steps (mean or last)."""
        if mask is None:
            return h.mean(1) if self.pool == "mean" else h[:, -1]
        if self.pool == "mean":
            return masked_mean(h, mask, dim=1)
        last = mask.long().cumsum(1).argmax(1)  # index of the last valid step
        return h[torch.arange(h.shape[0], device=h.device), last]

    def _check_input(self, x) -> None:
        """Raise unless ``x`` has the layout the encoder takes, naming what it got."""
        d_input, vocab = self.config["d_input"], self.config["vocab_size"]
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        if d_input is None and vocab is not None:
            if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.is_floating_point():
                raise ValueError(f"SequenceModel: this model takes token ids, integer (B, L) < vocab_size="
                                 f"{vocab}; got {shape}" + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else "")
                                 + ".")
            return
        width, what = (d_input, f"d_input={d_input}") if d_input is not None else \
            (self.config["d_model"], f"d_input=None: inputs already embedded, d_model={self.config['d_model']}")
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ValueError(f"SequenceModel expects x of shape (B, L, {width}) (batch, time, features); got {shape}.")
        if x.shape[2] != width:
            hint = "; pass x.transpose(1, 2)" if x.shape[1] == width else ""
            raise ValueError(f"SequenceModel: x has {x.shape[2]} features per step (x is (B, L, D) = {shape}); this "
                             f"model was built with {what}{hint}.")
        if not x.is_floating_point():
            raise TypeError(f"SequenceModel expects floating-point x (B, L, {width}); got dtype {x.dtype}.")

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the encoder, the blocks and the head.

        Arguments:
            x: ``(B, L, d_input)`` floats; ``(B, L)`` integer token ids when built with
                ``vocab_size``; ``(B, L, d_model)`` when built with neither. ``L <= l_max``.
            mask: boolean ``(B, L)``, True on real steps; or None.
            lengths: ``(B,)`` valid steps of each sequence (from the start), instead of
                ``mask``.

        Returns:
            ``(B, L, d_model)`` features (``head=None``), ``(B, d_output)`` logits
            (``"classification"``, pooled over the valid steps), ``(B, L, d_output)``
            (``"regression"``) or ``(B, L, vocab_size)`` (``"lm"``). Padded steps never
            change the outputs of real ones.
        """
        self._check_input(x)
        B, L = x.shape[:2]
        if lengths is not None:
            if mask is not None:
                raise ValueError("pass `mask` or `lengths`, not both.")
            mask = lengths_to_mask(lengths.to(x.device), L)
        check_mask(mask, B, L, "SequenceModel")
        h = self.features(x, mask)
        if self.head_kind is None:
            return h
        if self.head_kind == "classification":
            return self.head(self.pooled(h, mask))
        return self.head(h)


_NAMES = ", ".join(LAYERS)
SequenceModel.__doc__ = SequenceModel.__doc__.replace("{layers}", _NAMES)
