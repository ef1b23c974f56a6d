"""Brain-data model: per-channel-set encoders + time embedding + a shared backbone.

Recordings from different caps, atlases or sites have different channel sets. Each set
(identified by :func:`channel_set_key` of its channel names) gets its own input encoder
``Linear(n_channels, d_model)`` and its own reconstruction head; the backbone
(:class:`neuroconv.SequenceModel`) is shared. Tensors are ``(B, L, C)`` in and
``(B, L, d_model)`` inside.
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn as nn

from neuroconv.model import SequenceModel

__all__ = ["BrainModel", "BrainClassifier", "TimeEmbedding", "channel_set_key", "backbone_config",
           "load_pretrained", "make_classifier"]


def channel_set_key(channels) -> str:
    """A stable, ModuleDict-safe key for an ordered list of channel names."""
    digest = hashlib.sha1("\x1f".join(map(str, channels)).encode()).hexdigest()[:12]
    return f"cs{len(channels)}_{digest}"


def backbone_config(model_cfg, l_max: int, pool: str = "mean") -> dict:
    """The :class:`SequenceModel` config of a brain backbone for a ``ModelConfig``
    (:meth:`neuroconv.ModelConfig.model_args`): no input encoder (the channel-set
    encoders of :class:`BrainModel` embed the inputs) and no head."""
    return model_cfg.model_args(l_max=l_max, pool=pool)


class TimeEmbedding(nn.Module):
    """Embeds time in seconds and the sampling rate, so different TRs/rates can mix.

    ``forward(times (B, L) seconds, sfreq (B,) Hz) -> (B, L, d_model)``. Time uses fixed
    sinusoids with periods from 0.05 s to 2000 s (log-spaced); the sampling rate enters
    as ``log(sfreq)``. A linear map, initialised at zero, projects both to ``d_model``,
    so an untrained embedding changes nothing.
    """

    def __init__(self, d_model: int, n_freqs: int = 16):
        super().__init__()
        periods = torch.logspace(math.log10(0.05), math.log10(2000.0), n_freqs)
        self.register_buffer("omega", 2 * math.pi / periods, persistent=False)
        self.proj = nn.Linear(2 * n_freqs + 1, d_model)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, times: torch.Tensor, sfreq: torch.Tensor) -> torch.Tensor:
        ang = times[..., None].float() * self.omega  # (B L F)
        rate = torch.log(sfreq.float().clamp_min(1e-6))[:, None, None].expand(*times.shape, 1)
        return self.proj(torch.cat([ang.sin(), ang.cos(), rate], dim=-1))


class BrainModel(nn.Module):
    """Encoders per channel set -> (+ time embedding) -> backbone -> heads.

    ``config`` holds everything needed to rebuild the module (saved with the weights):
    ``backbone`` (SequenceModel config), ``channel_sets`` (key -> channel names),
    ``time_embedding``, ``bidirectional`` and ``objective``.
    """

    def __init__(self, backbone: dict, channel_sets: dict[str, list], time_embedding: bool = True,
                 **extra):
        super().__init__()
        self.config = dict(backbone=dict(backbone), channel_sets={k: list(v) for k, v in channel_sets.items()},
                           time_embedding=bool(time_embedding), **extra)
        self.backbone = SequenceModel.from_config({**backbone, "d_input": None, "vocab_size": None,
                                                    "head": None})
        d = backbone["d_model"]
        self.d_model = d
        self.encoders = nn.ModuleDict({k: nn.Linear(len(v), d) for k, v in channel_sets.items()})
        self.recon = nn.ModuleDict({k: nn.Linear(d, len(v)) for k, v in channel_sets.items()})
        self.time = TimeEmbedding(d) if time_embedding else None
        self.mask_token = nn.Parameter(torch.zeros(d))

    def add_channel_set(self, key: str, channels: list) -> None:
        """Add an encoder (and head) for a channel set the model has not seen."""
        if key in self.encoders:
            return
        ref = self.mask_token
        self.encoders[key] = nn.Linear(len(channels), self.d_model).to(ref.device)
        self.recon[key] = nn.Linear(self.d_model, len(channels)).to(ref.device)
        self.config["channel_sets"][key] = list(channels)

    def embed(self, x: torch.Tensor, key: str, sfreq: torch.Tensor | None = None,
              hide: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, C)`` -> ``(B, L, d_model)``; ``hide (B, L)`` swaps in the mask token."""
        if key not in self.encoders:
            raise KeyError(
                f"channel set {key} is unknown to this model (it knows {sorted(self.encoders)}); "
                "call add_channel_set first."
            )
        h = self.encoders[key](x)
        if hide is not None:
            h = torch.where(hide[..., None], self.mask_token.to(h.dtype), h)
        if self.time is not None:
            B, L = x.shape[:2]
            if sfreq is None:
                raise ValueError("this model has a time embedding: pass `sfreq` (B,) in Hz.")
            times = torch.arange(L, device=x.device)[None, :] / sfreq[:, None].float()  # (B L) s
            h = h + self.time(times, sfreq)
        return h

    def features(self, x, key, sfreq=None, mask=None, hide=None) -> torch.Tensor:
        """Backbone features ``(B, L, d_model)``."""
        return self.backbone(self.embed(x, key, sfreq, hide), mask=mask)

    def reconstruct(self, h: torch.Tensor, key: str) -> torch.Tensor:
        return self.recon[key](h)  # (B L C)

    @classmethod
    def from_config(cls, config: dict) -> "BrainModel":
        return cls(**config)


class BrainClassifier(nn.Module):
    """A :class:`BrainModel` backbone with a linear head on mask-aware pooled features.

    ``forward(batch) -> (B, n_out)``. ``freeze_backbone=True`` trains the head only (a
    linear probe); the backbone then also stays in eval mode.
    """

    def __init__(self, brain: BrainModel, n_out: int, freeze_backbone: bool = False):
        super().__init__()
        self.brain, self.freeze_backbone = brain, freeze_backbone
        self.head = nn.Linear(brain.d_model, n_out)
        if freeze_backbone:
            for p in self.brain.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.brain.eval()
        return self

    def features(self, batch: dict) -> torch.Tensor:
        h = self.brain.features(batch["x"], batch["key"], batch["sfreq"], batch["mask"])
        return self.brain.backbone.pooled(h, batch["mask"])  # (B D)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.features(batch))


def load_pretrained(run_dir, map_location: str | torch.device = "cpu") -> BrainModel:
    """Load the exported model of a ``neuroconv pretrain`` run folder
    (``model.safetensors`` + ``model_config.json``; nothing is unpickled); returns it in
    eval mode."""
    from neuroconv.engine.runner import read_export

    info, state = read_export(run_dir, "Pass the folder that `neuroconv pretrain` printed at the end of its "
                                       "run.", map_location)
    if info.get("model") != "BrainModel":
        raise ValueError(f"{run_dir}/model_config.json: unknown model type {info.get('model')!r}; expected "
                         "the BrainModel that `neuroconv pretrain` exports.")
    model = BrainModel.from_config(info["config"])
    model.load_state_dict(state)
    return model.to(map_location).eval()


def make_classifier(model_cfg, channel_sets: dict, key: str, channels: list, n_out: int, l_max: int, *,
                    pretrained=None, freeze: bool = False, pool: str = "mean"):
    """A :class:`BrainClassifier`: a fresh backbone from
    ``model_cfg`` (a :class:`~neuroconv.brain.config.ModelConfig`), or a pretrained
    :class:`BrainModel` (a run folder or the model itself). With ``freeze``, every
    pretrained weight is frozen and only a new channel set's encoder and the head train
    (a linear probe)."""
    import copy

    if pretrained is not None and not isinstance(pretrained, BrainModel):
        pretrained = load_pretrained(pretrained)
    if pretrained is not None:
        brain = copy.deepcopy(pretrained)
        pre_l_max = brain.config["backbone"]["l_max"]
        if l_max > pre_l_max and brain.config["backbone"]["layer"] != "attention":
            raise ValueError(
                f"decode samples have up to {l_max} steps but the pretrained model covers l_max={pre_l_max}. "
                f"Lower data.max_len (or decode.tmax) to {pre_l_max}, or pretrain with a larger data.max_len."
            )
        brain.backbone.pool = pool
    else:
        brain = BrainModel(backbone_config(model_cfg, l_max, pool), channel_sets,
                           time_embedding=model_cfg.time_embedding)
    net = BrainClassifier(brain, n_out, freeze_backbone=freeze)
    brain.add_channel_set(key, channels)  # after freezing: a new encoder stays trainable
    return net
