"""Networks for the LRA and language-modelling tasks, built from a config's ``model:``
section (:class:`neuroconv.SequenceModel` keyword arguments, from
:func:`neuroconv.lra.configs.model_kwargs`).

Every network takes the batch dictionary of :func:`neuroconv.lra.train.batch_to_dict`
and is trained by :class:`neuroconv.engine.tasks.SupervisedTask` (``net(batch) ->
outputs``; the loss reads ``batch["y"]``)::

    batch = {"x": (B, L) int64 | (B, L, D) float,  "mask": (B, L) bool,
             "lengths": (B,) int64,  "y": (B,) int64 | (B, L) int64}

- :class:`SequenceClassifier`: ``(B, n_classes)`` logits (ListOps, Text, Image,
  sCIFAR, Pathfinder, Path-X).
- :class:`PairClassifier`: Retrieval. ``x`` holds ``2B`` documents (rows ``0..B-1``
  the first, ``B..2B-1`` the second of each pair); one backbone pass encodes both; the
  pair head classifies ``[u, v, u * v, u - v]`` of the mean-pooled documents with an MLP.
- :class:`LanguageModel`: WikiText-103. ``(B, L, vocab)`` next-token logits from a
  causal backbone, with tied input and output embeddings by default.

Each network has ``config`` (a JSON-safe dict); :func:`net_from_config` rebuilds it, so
:func:`neuroconv.engine.runner.export_model` and :func:`load_lra_model` round-trip.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from neuroconv.model import SequenceModel, masked_mean

__all__ = [
    "SequenceClassifier",
    "PairHead",
    "PairClassifier",
    "LanguageModel",
    "net_from_config",
    "load_lra_model",
    "count_parameters",
]


class SequenceClassifier(nn.Module):
    """A :class:`SequenceModel` with its classification head; ``forward(batch) -> (B,
    n_classes)`` logits. ``model_config``: :class:`SequenceModel` arguments with
    ``head="classification"``."""

    def __init__(self, model_config: dict):
        super().__init__()
        cfg = dict(model_config)
        if cfg.get("head") != "classification":
            raise ValueError(f"SequenceClassifier needs model head 'classification'; got {cfg.get('head')!r}.")
        self.model = SequenceModel(**cfg)

    @property
    def config(self) -> dict:
        return {"net": "classifier", "model": self.model.config}

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch["x"], mask=batch.get("mask"))  # (B n_classes)


class PairHead(nn.Module):
    """Retrieval pair head: ``(u, v) -> logits``.

    ``features="nli"``: ``[u, v, u * v, u - v]`` (``4 * d_model``); ``"concat"``:
    ``[u, v]``. Then ``Linear(n_features, hidden) -> activation -> Linear(hidden,
    n_classes)``; ``hidden`` defaults to ``d_model`` (the authors' setting,
    HazyResearch/safari ``RetrievalHead``). ``u``, ``v``: ``(B, d_model)``.
    """

    def __init__(self, d_model: int, n_classes: int = 2, *, features: str = "nli", activation: str = "gelu",
                 hidden: int | None = None):
        super().__init__()
        if features not in ("nli", "concat"):
            raise ValueError(f"pair_head `features` must be 'nli' or 'concat'; got {features!r}.")
        acts = {"gelu": nn.GELU, "relu": nn.ReLU}
        if activation not in acts:
            raise ValueError(f"pair_head `activation` must be one of {sorted(acts)}; got {activation!r}.")
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"pair_head `n_classes` must be an integer >= 2; got {n_classes!r}.")
        self.features = features
        hidden = hidden or d_model
        n_in = (4 if features == "nli" else 2) * d_model
        self.mlp = nn.Sequential(nn.Linear(n_in, hidden), acts[activation](), nn.Linear(hidden, n_classes))

    def pair_features(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.features == "nli":
            return torch.cat([u, v, u * v, u - v], dim=-1)  # (B 4D)
        return torch.cat([u, v], dim=-1)  # (B 2D)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pair_features(u, v))  # (B n_classes)


class PairClassifier(nn.Module):
    """Two-document classifier (LRA Retrieval): a shared backbone encodes both documents
    in one pass, each is pooled over its valid steps, and :class:`PairHead` classifies.

    Parameters:
        model_config: :class:`SequenceModel` arguments with ``head=None``.
        pair_head: ``pool`` (``"mean"`` or ``"last"`` valid step), ``features``,
            ``activation``, ``n_classes``, ``hidden`` (see :class:`PairHead`).

    ``forward(batch)``: ``batch["x"]`` is ``(2B, L)``, rows ``0..B-1`` the first and
    ``B..2B-1`` the second documents; returns ``(B, n_classes)``.
    """

    def __init__(self, model_config: dict, pair_head: dict | None = None):
        super().__init__()
        cfg = dict(model_config)
        if cfg.get("head") is not None:
            raise ValueError(f"PairClassifier needs a backbone without head (model.head null); got {cfg['head']!r}.")
        ph = dict(pair_head or {})
        self.pool = ph.pop("pool", "mean")
        if self.pool not in ("mean", "last"):
            raise ValueError(f"pair_head `pool` must be 'mean' or 'last'; got {self.pool!r}.")
        unknown = set(ph) - {"features", "activation", "n_classes", "hidden"}
        if unknown:
            raise ValueError(f"unknown pair_head key(s) {sorted(unknown)}; known: pool, features, activation, "
                             "n_classes, hidden.")
        self._pair_head = {"pool": self.pool, **ph}
        self.backbone = SequenceModel(**cfg)
        self.head = PairHead(self.backbone.config["d_model"], **ph)

    @property
    def config(self) -> dict:
        return {"net": "pair", "model": self.backbone.config, "pair_head": dict(self._pair_head)}

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Pooled document features ``(N, d_model)`` of ``x (N, L)``."""
        h = self.backbone(x, mask=mask)  # (N L D)
        if self.pool == "mean":
            return masked_mean(h, mask, dim=1)
        if mask is None:
            return h[:, -1]
        last = mask.long().cumsum(1).argmax(1)
        return h[torch.arange(h.shape[0], device=h.device), last]

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch["x"]
        if x.shape[0] % 2:
            raise ValueError(f"PairClassifier: batch['x'] must hold 2B documents; got {x.shape[0]} rows.")
        z = self.encode(x, batch.get("mask"))  # (2B D)
        u, v = z.chunk(2, dim=0)  # (B D) each
        return self.head(u, v)


class LanguageModel(nn.Module):
    """Causal language model: a :class:`SequenceModel` with the ``"lm"`` head.

    ``model_config``: :class:`SequenceModel` arguments with ``head="lm"``, ``d_input``
    null and ``vocab_size``; every layer must be causal. ``tie_embeddings`` shares the
    input embedding with the output projection (both ``(vocab, d_model)``, initialised
    N(0, 0.02²)).
    ``forward(batch) -> (B, L, vocab)`` logits; position ``t`` predicts token ``t + 1``.
    """

    def __init__(self, model_config: dict, tie_embeddings: bool = True):
        super().__init__()
        cfg = dict(model_config)
        if cfg.get("head") != "lm":
            raise ValueError(f"LanguageModel needs model head 'lm'; got {cfg.get('head')!r}.")
        if cfg.get("d_input") is not None or not cfg.get("vocab_size"):
            raise ValueError("LanguageModel needs token inputs: model.d_input null and model.vocab_size set.")
        if (cfg.get("layer_args") or {}).get("bidirectional"):
            raise ValueError("a language model must be causal: set model.bidirectional false.")
        self.model = SequenceModel(**cfg)
        self.tie_embeddings = bool(tie_embeddings)
        if self.tie_embeddings:
            # nn.Embedding's N(0, 1) init would give logits of std sqrt(d_model) through the
            # shared matrix; start from the small init of GPT-2/H3 instead.
            nn.init.normal_(self.model.encoder.weight, std=0.02)
            self.model.head.weight = self.model.encoder.weight  # (V D), one tensor

    @property
    def config(self) -> dict:
        return {"net": "lm", "model": self.model.config, "tie_embeddings": self.tie_embeddings}

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch["x"], mask=batch.get("mask"))  # (B L V)


def net_from_config(config: dict) -> nn.Module:
    """Rebuild a network from its ``config`` (see the classes above)."""
    kind = config.get("net")
    model = dict(config["model"])
    if kind == "classifier":
        return SequenceClassifier(model)
    if kind == "pair":
        return PairClassifier(model, config.get("pair_head"))
    if kind == "lm":
        return LanguageModel(model, config.get("tie_embeddings", True))
    raise ValueError(f"unknown network kind {kind!r}; expected classifier, pair or lm.")


def load_lra_model(run_dir, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load the exported network of an ``neuroconv lra`` run folder (``model.safetensors``
    + ``model_config.json``), in eval mode. Nothing is unpickled."""
    from neuroconv.engine.runner import read_export

    info, state = read_export(run_dir, "They are written at the end of `neuroconv lra`.", map_location)
    net = net_from_config(info["config"])
    if isinstance(net, LanguageModel) and net.tie_embeddings:
        state.setdefault("model.head.weight", state.get("model.encoder.weight"))
    net.load_state_dict(state)
    return net.to(map_location).eval()


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters, each shared tensor counted once."""
    seen, n = set(), 0
    for p in net.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n
