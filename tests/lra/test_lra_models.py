"""LRA networks: the Retrieval pair head, layer swapping, export round trips, and the
gated long-conv layer against an independent computation."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
import torch.nn.functional as F

from neuroconv.layers import LAYERS, GatedLongConv
from neuroconv.lra.configs import LRAConfig, LRAModel, model_kwargs
from neuroconv.lra.models import (
    LanguageModel,
    PairClassifier,
    PairHead,
    SequenceClassifier,
    count_parameters,
    net_from_config,
)

BACKBONE = dict(d_input=None, vocab_size=20, d_model=16, n_layers=2, layer="longconv", l_max=32, prenorm=True,
                norm="batch", head=None, layer_args={"channels": 2, "kernel_args": {"lam": 0.001}})


# ----------------------------------------------------------------------------- pair head


def test_pair_head_features_and_mlp():
    torch.manual_seed(0)
    head = PairHead(8, 3, features="nli", activation="gelu")
    u, v = torch.randn(5, 8), torch.randn(5, 8)
    feats = head.pair_features(u, v)
    torch.testing.assert_close(feats, torch.cat([u, v, u * v, u - v], -1))
    lin1, act, lin2 = head.mlp
    assert lin1.in_features == 32 and lin1.out_features == 8 and isinstance(act, torch.nn.GELU)
    want = lin2(F.gelu(lin1(feats)))
    torch.testing.assert_close(head(u, v), want)
    assert PairHead(8, 2, features="concat", hidden=5).mlp[0].in_features == 16
    with pytest.raises(ValueError, match="features"):
        PairHead(8, 2, features="dot")
    with pytest.raises(ValueError, match="activation"):
        PairHead(8, 2, activation="tanh")


def _pair_batch(B=3, L=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 20, (2 * B, L), generator=g)
    lengths = torch.tensor([12, 5, 9, 3, 12, 7])[: 2 * B]
    mask = torch.arange(L)[None] < lengths[:, None]
    x[~mask] = 0
    return {"x": x, "mask": mask, "lengths": lengths, "y": torch.tensor([0, 1, 1])[:B]}


def test_pair_classifier_is_mean_pool_then_head():
    net = PairClassifier(BACKBONE, {"pool": "mean", "features": "nli", "activation": "gelu", "n_classes": 2}).eval()
    batch = _pair_batch()
    out = net(batch)
    assert out.shape == (3, 2)
    # independent: run each document alone (no padding), mean over its steps
    pooled = []
    for i in range(6):
        n = int(batch["lengths"][i])
        h = net.backbone(batch["x"][i : i + 1, :n])  # (1 n D)
        pooled.append(h.mean(1)[0])
    pooled = torch.stack(pooled)
    u, v = pooled[:3], pooled[3:]
    want = net.head.mlp(torch.cat([u, v, u * v, u - v], -1))
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)
    # padding content never matters; swapping the documents of a pair does
    b2 = dict(batch, x=batch["x"].clone())
    b2["x"][~batch["mask"]] = 19
    torch.testing.assert_close(net(b2), out, rtol=1e-4, atol=1e-5)
    swapped = dict(batch, x=torch.cat([batch["x"][3:], batch["x"][:3]]),
                   mask=torch.cat([batch["mask"][3:], batch["mask"][:3]]))
    assert not torch.allclose(net(swapped), out)


def test_pair_classifier_last_pool_and_errors():
    net = PairClassifier(BACKBONE, {"pool": "last", "n_classes": 2}).eval()
    batch = _pair_batch()
    h = net.backbone(batch["x"], mask=batch["mask"])
    idx = batch["lengths"] - 1
    z = h[torch.arange(6), idx]
    torch.testing.assert_close(net(batch), net.head(z[:3], z[3:]))
    with pytest.raises(ValueError, match="without head"):
        PairClassifier(dict(BACKBONE, head="classification", d_output=2))
    with pytest.raises(ValueError, match="pool"):
        PairClassifier(BACKBONE, {"pool": "max"})
    with pytest.raises(ValueError, match="unknown pair_head"):
        PairClassifier(BACKBONE, {"dropout": 0.1})
    with pytest.raises(ValueError, match="2B documents"):
        net({"x": batch["x"][:5], "mask": batch["mask"][:5]})


# ----------------------------------------------------------------------------- layer swap


@pytest.mark.parametrize("layer", list(LAYERS))
def test_every_layer_builds_from_the_flat_model_section(layer):
    """One model section (written for long convs) serves every layer: each takes the keys
    it uses (neuroconv.ModelConfig.layer_args)."""
    cfg = LRAConfig(model=LRAModel(vocab_size=17, d_model=16, n_layers=1, layer=layer, l_max=24, d_output=10,
                                   channels=2, dropout=0.0, lam=0.002, kernel_dropout=0.2, kernel_lr=5e-4,
                                   smooth_width=3, kernel_init="random"))
    out = model_kwargs(cfg)["layer_args"]
    kernel = {"lam": 0.002, "smooth_width": 3, "kernel_dropout": 0.2, "lr": 5e-4, "init": "random"}
    assert out == {
        "longconv": {"channels": 2, "bidirectional": False, "dropout": 0.0, "kernel_args": kernel},
        "butterfly": {"channels": 2, "bidirectional": False, "dropout": 0.0, "kernel_args": kernel},
        "gated": {"bidirectional": False, "dropout": 0.0, "kernel_args": kernel},
        "s4d": {"channels": 2, "bidirectional": False, "dropout": 0.0, "kernel_args": {"lr": 5e-4}},
        "attention": {"n_heads": 4, "bidirectional": False, "dropout": 0.0},
    }[layer]
    net = SequenceClassifier(model_kwargs(cfg))
    x = torch.randint(1, 17, (2, 24))
    assert net({"x": x, "mask": None}).shape == (2, 10)


# ----------------------------------------------------------------------------- export


def test_net_from_config_round_trips_including_tied_lm(tmp_path):
    from neuroconv.lra.models import load_lra_model
    from neuroconv.lra.train import LRAExport
    from neuroconv.engine.runner import export_model

    lm_cfg = dict(d_input=None, vocab_size=30, d_model=16, n_layers=1, layer="gated", l_max=16, head="lm",
                  layer_args={"kernel_args": {"lam": 0.0}})
    lm = LanguageModel(lm_cfg).eval()
    assert lm.model.head.weight is lm.model.encoder.weight
    assert count_parameters(lm) == sum(p.numel() for p in lm.parameters())  # shared once
    assert count_parameters(lm) < sum(v.numel() for k, v in lm.state_dict().items())
    nets = [lm, PairClassifier(BACKBONE, {"n_classes": 2}).eval(),
            SequenceClassifier(dict(BACKBONE, head="classification", d_output=3)).eval()]
    batches = [{"x": torch.randint(0, 30, (2, 16)), "mask": None}, _pair_batch(),
               {"x": torch.randint(0, 20, (2, 10)), "mask": None}]
    for i, (net, batch) in enumerate(zip(nets, batches)):
        twin = net_from_config(net.config).eval()
        assert twin.config == net.config
        run = tmp_path / f"run{i}"
        run.mkdir()
        export_model(LRAExport(net), run)
        loaded = load_lra_model(run)
        torch.testing.assert_close(loaded(batch), net(batch))
    loaded = load_lra_model(tmp_path / "run0")
    assert loaded.model.head.weight is loaded.model.encoder.weight
    with pytest.raises(FileNotFoundError, match="model_config.json"):
        load_lra_model(tmp_path)
    with pytest.raises(ValueError, match="causal"):
        LanguageModel(dict(lm_cfg, layer_args={"bidirectional": True}))
    with pytest.raises(ValueError, match="model.bidirectional false"):
        LanguageModel(model_kwargs(LRAConfig(model=LRAModel(layer="gated", vocab_size=30, head="lm",
                                                            bidirectional=True))))


# ----------------------------------------------------------------------------- gated layer


def _gated_direct(layer: GatedLongConv, x: torch.Tensor) -> torch.Tensor:
    """Independent float64 computation of the gated layer: explicit loops over lags."""
    layer = layer.double()
    x = x.double()
    B, L, H = x.shape
    z = layer.in_proj(x)  # (B L 3H)
    w = layer.short_width
    zt = z.transpose(1, 2)
    pad = (w // 2, w // 2) if layer.bidirectional else (w - 1, 0)
    zt = F.conv1d(F.pad(zt, pad), layer.short_conv.weight, layer.short_conv.bias, groups=3 * H)
    q, k, v = zt.chunk(3, dim=1)  # (B H L)
    u = k * v
    ker = layer.kernel.eval()(L)[0].double()  # (H L) or (H 2L-1)
    y = torch.zeros_like(u)
    for t in range(L):
        for s in range(L):
            lag = t - s
            if layer.bidirectional:
                y[..., t] += ker[:, lag + L - 1] * u[..., s]
            elif lag >= 0:
                y[..., t] += ker[:, lag] * u[..., s]
    y = q * (y + layer.D.double()[:, None] * u)
    return layer.out_proj(y.transpose(1, 2))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gated_layer_matches_direct_computation(bidirectional):
    layer = GatedLongConv(6, 20, bidirectional=bidirectional, kernel_args={"lam": 0.0, "smooth_width": 3}).eval()
    x = torch.randn(2, 11, 6)
    got = layer(x).double()
    want = _gated_direct(layer, x)  # converts the layer to float64
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_gated_bidirectional_masking_and_args():
    layer = LAYERS["gated"](8, 16, bidirectional=True, short_conv=5).eval()
    x = torch.randn(2, 16, 8)
    mask = torch.arange(16)[None] < torch.tensor([16, 9])[:, None]
    y = layer(x, mask)
    x2 = x.clone()
    x2[~mask] = 50.0
    torch.testing.assert_close(layer(x2, mask), y)
    assert (y[~mask] == 0).all()
    torch.testing.assert_close(layer(x[1:, :9]), y[1:, :9], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="odd"):
        GatedLongConv(8, 16, bidirectional=True, short_conv=4)
    with pytest.raises(ValueError, match="backend"):
        GatedLongConv(8, 16, backend="cuda")
    with pytest.raises(ValueError, match="short_conv"):
        GatedLongConv(8, 16, short_conv=0)


@pytest.mark.skipif(importlib.util.find_spec("triton") is None or not (
    torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"), reason="needs triton")
def test_gated_fused_triton_path_matches_torch():
    """The fused gated kernel (neuroconv.kernels) computes what the torch path computes."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    no_drop = {"kernel_dropout": 0.0}  # the two paths would draw different dropout masks
    ref = GatedLongConv(4, 8, backend="torch", kernel_args=no_drop).to(device)
    fused = GatedLongConv(4, 8, backend="triton", kernel_args=no_drop).to(device)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(1, 8, 4, device=device, requires_grad=True)
    y_ref, y = ref(x), fused(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-3, atol=1e-4)
    y.square().sum().backward()
    y_ref.square().sum().backward()
    for (name, p), q in zip(fused.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-4, msg=name)


def test_gated_explicit_triton_on_plain_cpu_says_how(monkeypatch):
    from neuroconv.kernels import availability

    monkeypatch.setattr(availability, "_triton_importable", lambda: False)
    layer = GatedLongConv(4, 8, backend="triton")
    with pytest.raises(RuntimeError, match="triton"):
        layer(torch.randn(1, 8, 4))

