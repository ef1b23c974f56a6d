"""Kernel generators, layers and SequenceModel, including the shared layer contract."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from neuroconv import (
    AttentionLayer,
    ButterflyConv,
    LongConv,
    LongConvKernel,
    ModelConfig,
    S4DKernel,
    SequenceModel,
    fftconv,
    param_groups,
)
from neuroconv.butterfly import ButterflyFFTConv, MonarchDFT
from neuroconv.layers import LAYERS

# ---------------------------------------------------------------- LongConvKernel


def test_squash_weights_alive_at_init():
    """Pitfall 1: with the reference init (std 0.002, λ 0.003) ~87% of weights are dead."""
    ker = LongConvKernel(32, 256, channels=2, lam=0.003, init_scale=0.002, init="random")
    assert (ker.weight.abs() > ker.lam).float().mean() == 1.0
    k = ker.squash(ker.weight)
    k.sum().backward()
    assert (ker.weight.grad != 0).float().mean() == 1.0
    # the effective kernel has the intended scale
    assert 0.5 * ker.init_scale < k.std().item() < 1.5 * ker.init_scale
    # the reference init really is mostly dead (documents the pitfall)
    ref = torch.randn(100_000) * 0.002
    assert 0.8 < (ref.abs() <= 0.003).float().mean() < 0.92


@pytest.mark.parametrize("H,l_max", [(32, 256), (64, 2048)])
def test_geometric_init_keeps_every_weight_alive(H, l_max):
    """The late taps of fast-decaying features have |z| far below float32's spacing at λ;
    they start just outside the dead zone (and so have gradient), not on its edge."""
    ker = LongConvKernel(H, l_max, channels=2, init="geometric", lam=0.003, smooth_width=1, kernel_dropout=0.0)
    assert (ker.weight.abs() > ker.lam).all()
    ker.full_kernel().sum().backward()
    assert (ker.weight.grad != 0).all()
    # the decay is what it says: the slowest feature's last tap is exp(-(l_max-1)/l_max) of scale
    k = ker.squash(ker.weight).detach().abs()
    assert k[:, -1, -l_max // 8:].max() < 1e-3 * k[:, 0, : l_max // 8].mean()


def test_kernel_defaults_are_the_model_configs():
    from dataclasses import fields

    defaults = {f.name: f.default for f in fields(ModelConfig)}
    ker = LongConvKernel(4, 16)
    assert (ker.init, ker.lam, ker.smooth_width) == (defaults["kernel_init"], defaults["lam"], defaults["smooth_width"])
    assert ker.weight._optim["lr"] == defaults["kernel_lr"]
    m = SequenceModel(3)
    assert (m.config["d_model"], m.config["n_layers"], m.config["layer"], m.config["norm"], m.config["prenorm"]) \
        == tuple(defaults[k] for k in ("d_model", "n_layers", "layer", "norm", "prenorm"))
    # dropouts: none in a bare module (documented); ModelConfig's models get its own
    assert isinstance(ker.kernel_dropout, torch.nn.Identity) and m.config["dropout"] == 0.0
    assert "0 for a bare generator" in LongConvKernel.__doc__ and "dropouts are 0 in a bare model" in \
        " ".join(SequenceModel.__doc__.split())
    body = SequenceModel(**ModelConfig().model_args(l_max=16, d_input=3)).blocks[0]
    assert body.drop.p == defaults["dropout"] == body.layer.dropout.p
    assert body.layer.kernel.kernel_dropout.p == defaults["kernel_dropout"]


@pytest.mark.parametrize("init", ["random", "geometric", "double_exp"])
def test_inits_alive_and_shaped(init):
    ker = LongConvKernel(16, 128, channels=3, init=init, smooth_width=1)
    assert ker.weight.shape == (3, 16, 128)
    assert (ker.weight.abs() > ker.lam).all()
    if init != "random":
        k = ker.squash(ker.weight).detach().abs().mean(0)  # (H L)
        # decay: late taps smaller than early ones, faster for later features
        assert k[:, :16].mean() > 3 * k[:, -16:].mean()
        assert k[-1, 32:].mean() < k[0, 32:].mean()


def test_squash_is_soft_threshold():
    ker = LongConvKernel(1, 5, lam=0.5, smooth_width=1)
    x = torch.tensor([-2.0, -0.5, -0.1, 0.0, 0.3, 0.5, 1.5])
    np.testing.assert_allclose(ker.squash(x).numpy(), [-1.5, 0, 0, 0, 0, 0, 1.0])


def test_smooth_is_moving_average():
    ker = LongConvKernel(2, 50, lam=0.0, smooth_width=5)
    k = ker.weight.detach()
    got = ker.full_kernel().detach().numpy()
    w = k.numpy()
    for t in range(50):
        lo, hi = max(0, t - 2), min(50, t + 3)
        np.testing.assert_allclose(got[..., t], w[..., lo:hi].mean(-1), rtol=1e-5, atol=1e-7)


def test_kernel_truncates_never_wraps():
    """Pitfall 2: a shorter input uses the kernel's first L taps (a prefix), so the
    model's output on u[:L] equals the prefix of its output on the full sequence."""
    layer = LongConv(8, 64, kernel_args=dict(smooth_width=3)).eval()
    x = torch.randn(2, 64, 8)
    full = layer(x)
    for L in (1, 7, 33):
        torch.testing.assert_close(layer(x[:, :L]), full[:, :L], rtol=1e-4, atol=1e-5)
    k = layer.kernel(10)
    torch.testing.assert_close(k, layer.kernel.full_kernel()[..., :10])


def test_bidirectional_kernel_centre():
    ker = LongConvKernel(3, 20, bidirectional=True, smooth_width=1, kernel_dropout=0.0)
    assert ker.weight.shape[-1] == 39
    full = ker.full_kernel()
    k = ker(5)
    assert k.shape == (1, 3, 9)
    torch.testing.assert_close(k, full[..., 19 - 4 : 19 + 5])


def test_kernel_dropout_only_in_training():
    ker = LongConvKernel(4, 32, kernel_dropout=0.5)
    ker.eval()
    torch.testing.assert_close(ker(32), ker(32))
    ker.train()
    assert (ker(32) == 0).float().mean() > 0.3


def test_kernel_length_errors():
    with pytest.raises(ValueError, match="l_max"):
        LongConvKernel(2, 8)(9)
    with pytest.raises(ValueError, match="smooth_width"):
        LongConvKernel(2, 8, smooth_width=4)
    with pytest.raises(ValueError, match="init"):
        LongConvKernel(2, 8, init="zeros")


# ---------------------------------------------------------------- S4D


def test_s4d_kernel_is_the_ssm_impulse_response():
    """Independent check: run the discretised (ZOH) complex recurrence step by step."""
    ker = S4DKernel(3, channels=2, d_state=8)
    L = 40
    k = ker(L).detach().double()  # (C H L)
    dt = ker.log_dt.exp()[0].double()  # (H)
    A = (-ker.log_A_real.exp() + 1j * ker.A_imag)[0].detach().to(torch.complex128)  # (H N)
    C = torch.view_as_complex(ker.C)[0].detach().to(torch.complex128)  # (C H N)
    Ab = torch.exp(A * dt[:, None])
    Bb = (Ab - 1) / A  # ZOH with B = 1
    x = torch.zeros_like(A)
    out = []
    for t in range(L):
        x = Ab * x + Bb * (1.0 if t == 0 else 0.0)
        out.append(2 * (C * x).sum(-1).real)  # conjugate pair -> 2 Re
    want = torch.stack(out, -1)
    torch.testing.assert_close(k, want.detach(), rtol=1e-4, atol=1e-5)


def test_s4d_bidirectional_layout():
    ker = S4DKernel(2, bidirectional=True)
    k = ker(6)
    assert k.shape == (1, 2, 11)
    fwd = ker._causal(6)
    torch.testing.assert_close(k[..., 5:], fwd[0])
    torch.testing.assert_close(k[..., :5], fwd[1][..., 1:].flip(-1))


# ---------------------------------------------------------------- butterfly


@pytest.mark.parametrize("n", [16, 30, 64, 98])
def test_monarch_dft_is_exact_dft_at_init(n):
    m = MonarchDFT(n)
    x = torch.randn(3, n, dtype=torch.cfloat)
    torch.testing.assert_close(m(x), torch.fft.fft(x), rtol=1e-4, atol=1e-4)
    mi = MonarchDFT(n, inverse=True)
    torch.testing.assert_close(mi(x), torch.fft.ifft(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_butterfly_equals_fftconv_at_init(causal):
    conv = ButterflyFFTConv(50, causal=causal)
    for L, Lk in [(50, 50), (17, 9), (1, 1)]:
        Lk = Lk if causal or Lk % 2 else Lk + 1
        u, k, D = torch.randn(2, 3, L), torch.randn(3, Lk), torch.randn(3)
        torch.testing.assert_close(conv(u, k, D), fftconv(u, k, D, causal=causal), rtol=1e-4, atol=1e-4)


def test_butterfly_layer_equals_longconv_at_init_then_learns():
    torch.manual_seed(1)
    a = LongConv(8, 32)
    b = ButterflyConv(8, 32, butterfly_lr=1e-2)
    b.load_state_dict(a.state_dict(), strict=False)
    x = torch.randn(2, 32, 8)
    torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=1e-4, atol=1e-4)  # no kernel dropout
    b.train()
    groups = param_groups(b, lr=1e-3)
    factor_group = [g for g in groups if any(p is b.butterfly.dft.f1 for p in g["params"])]
    assert factor_group and factor_group[0]["lr"] == 1e-2 and factor_group[0]["weight_decay"] == 0
    opt = torch.optim.AdamW(groups)
    before = b.butterfly.dft.f1.detach().clone()
    b(x).pow(2).mean().backward()
    assert b.butterfly.dft.f1.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(before, b.butterfly.dft.f1)


# ---------------------------------------------------------------- shared layer contract

LAYER_VARIANTS = [(name, {}) for name in LAYERS] + [
    ("longconv", {"bidirectional": True, "channels": 2}),
    ("s4d", {"bidirectional": True}),
    ("butterfly", {"bidirectional": True}),
    ("attention", {"bidirectional": True}),
]


@pytest.mark.parametrize("name,kwargs", LAYER_VARIANTS, ids=lambda v: str(v))
def test_layer_contract(name, kwargs):
    d, l_max, B, L = 16, 40, 3, 29
    layer = LAYERS[name](d, l_max, **kwargs).eval()
    x = torch.randn(B, L, d)
    # 1. shape
    y = layer(x)
    assert y.shape == (B, L, d) and torch.isfinite(y).all()
    # 2. masking: padded steps never leak into real ones, and come out as zeros
    lengths = torch.tensor([L, 17, 1])
    mask = torch.arange(L)[None] < lengths[:, None]
    y1 = layer(x, mask)
    x2 = x.clone()
    x2[~mask] = torch.randn_like(x2[~mask]) * 100
    y2 = layer(x2, mask)
    torch.testing.assert_close(y1[mask], y2[mask], rtol=1e-4, atol=1e-4)
    assert (y1[~mask] == 0).all()
    # a masked sequence gives what the unpadded one gives
    torch.testing.assert_close(layer(x[1:2, :17]), y1[1:2, :17], rtol=1e-4, atol=1e-4)
    # 3. backward reaches every parameter
    layer.train()
    layer.zero_grad()
    layer(x, mask).pow(2).sum().backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    # 4. state_dict round trip
    layer.eval()
    buf = io.BytesIO()
    torch.save(layer.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(123)
    twin = LAYERS[name](d, l_max, **kwargs).eval()
    twin.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(twin(x, mask), layer(x, mask))


def test_causal_layers_are_causal():
    for name in LAYERS:
        layer = LAYERS[name](8, 32).eval()
        x = torch.randn(1, 32, 8)
        x2 = x.clone()
        x2[:, 20:] += 5
        torch.testing.assert_close(layer(x)[:, :20], layer(x2)[:, :20], rtol=1e-4, atol=1e-5)


def test_attention_rejects_bad_heads():
    with pytest.raises(ValueError, match="n_heads"):
        AttentionLayer(10, n_heads=4)


# ---------------------------------------------------------------- SequenceModel


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("norm,prenorm", [("layer", True), ("batch", False)])
def test_sequence_model_heads(layer, norm, prenorm):
    B, L = 3, 24
    x = torch.randn(B, L, 5)
    lengths = torch.tensor([24, 10, 3])
    common = dict(d_model=16, n_layers=2, layer=layer, l_max=32, norm=norm, prenorm=prenorm)
    feats = SequenceModel(5, **common).eval()
    assert feats(x).shape == (B, L, 16)
    for pool in ("mean", "last"):
        clf = SequenceModel(5, head="classification", d_output=4, pool=pool, **common).eval()
        logits = clf(x, lengths=lengths)
        assert logits.shape == (B, 4)
        x2 = x.clone()
        x2[1, 10:] = 1e3  # padding content must not matter
        x2[2, 3:] = -1e3
        torch.testing.assert_close(clf(x2, lengths=lengths), logits, rtol=1e-4, atol=1e-4)
        # and the padded sequence matches the same sequence alone
        torch.testing.assert_close(clf(x[1:2, :10]), logits[1:2], rtol=1e-4, atol=1e-4)
    reg = SequenceModel(5, head="regression", d_output=2, **common)
    assert reg(x).shape == (B, L, 2)


def test_batchnorm_statistics_ignore_padding():
    m = SequenceModel(3, d_model=8, n_layers=1, l_max=16, norm="batch", head="classification", d_output=2)
    m.train()
    x = torch.randn(2, 16, 3)
    lengths = torch.tensor([16, 5])
    x2 = x.clone()
    x2[1, 5:] = 1e4
    torch.manual_seed(0)  # the same dropout masks in both calls
    y1 = m(x, lengths=lengths)
    torch.manual_seed(0)
    torch.testing.assert_close(y1, m(x2, lengths=lengths), rtol=1e-4, atol=1e-4)


def test_lm_head_and_tokens():
    m = SequenceModel(None, d_model=16, n_layers=2, l_max=20, vocab_size=11, head="lm")
    tok = torch.randint(0, 11, (2, 20))
    out = m(tok)
    assert out.shape == (2, 20, 11)
    loss = torch.nn.functional.cross_entropy(out.reshape(-1, 11), tok.reshape(-1))
    loss.backward()
    assert math.isfinite(loss.item())


def test_from_config_round_trip():
    m = SequenceModel(4, d_model=8, n_layers=2, layer="s4d", l_max=16, head="classification",
                      d_output=3, layer_args={"channels": 2}).eval()
    twin = SequenceModel.from_config(m.config).eval()
    twin.load_state_dict(m.state_dict())
    x = torch.randn(2, 16, 4)
    torch.testing.assert_close(twin(x), m(x))


# ---------------------------------------------------------------- ModelConfig

_FLAT = dict(d_model=12, n_layers=1, channels=2, bidirectional=True, dropout=0.1, layer_dropout=0.05, lam=0.002,
             smooth_width=3, kernel_dropout=0.2, kernel_lr=5e-4, kernel_init="random", d_state=8, short_conv=5)
_KERNEL = {"lam": 0.002, "smooth_width": 3, "kernel_dropout": 0.2, "lr": 5e-4, "init": "random"}


@pytest.mark.parametrize("layer,want", [
    ("longconv", {"channels": 2, "bidirectional": True, "dropout": 0.05, "kernel_args": _KERNEL}),
    ("butterfly", {"channels": 2, "bidirectional": True, "dropout": 0.05, "kernel_args": _KERNEL}),
    ("gated", {"bidirectional": True, "dropout": 0.05, "short_conv": 5, "kernel_args": _KERNEL}),
    ("s4d", {"channels": 2, "bidirectional": True, "dropout": 0.05, "kernel_args": {"lr": 5e-4, "d_state": 8}}),
    # d_model 12: 4 heads would be 3 wide (odd), so 2 heads of 6
    ("attention", {"n_heads": 2, "bidirectional": True, "dropout": 0.05}),
])
def test_model_config_gives_each_layer_the_keys_it_takes(layer, want):
    cfg = ModelConfig(layer=layer, **_FLAT)
    assert cfg.layer_args() == want
    kwargs = cfg.model_args(l_max=20, d_input=3, head="classification", d_output=4, pool="last")
    model = SequenceModel(**kwargs)
    assert model.config == kwargs  # the model's config is the config's model_args
    assert (model.config["dropout"], model.blocks[0].drop.p) == (0.1, 0.1)  # residual dropout
    assert model.pool == "last" and model.head.out_features == 4
    body = model.blocks[0].layer
    if layer == "attention":
        assert (body.n_heads, body.dropout, body.bidirectional) == (2, 0.05, True)
    else:
        assert body.dropout.p == 0.05 and body.bidirectional
    if layer in ("longconv", "butterfly", "gated"):
        k = body.kernel
        assert (k.lam, k.smooth_width, k.kernel_dropout.p, k.init) == (0.002, 3, 0.2, "random")
    if layer == "gated":
        assert body.short_width == 5
    if layer == "s4d":
        assert body.kernel.log_A_real.shape[-1] == 8 // 2  # N = d_state / 2 complex pairs
    assert model(torch.randn(2, 20, 3)).shape == (2, 4)


def test_model_config_defaults_resolve():
    """Null keys: layer dropout = residual dropout, the kernel's d_state, the layer's
    short conv, and the first of 4, 2, 1 heads of even width."""
    assert ModelConfig(layer="longconv", dropout=0.3).layer_args()["dropout"] == 0.3
    assert ModelConfig(layer="s4d").layer_args()["kernel_args"] == {"lr": 1e-3}
    assert "short_conv" not in ModelConfig(layer="gated").layer_args()
    for d_model, heads in ((64, 4), (12, 2), (6, 1), (40, 4), (10, 1)):
        assert ModelConfig(layer="attention", d_model=d_model).layer_args()["n_heads"] == heads, d_model
    assert ModelConfig(layer="attention", d_model=64, n_heads=8).layer_args()["n_heads"] == 8
    with pytest.raises(ValueError, match="d_model=7"):
        ModelConfig(layer="attention", d_model=7).layer_args()
    with pytest.raises(ValueError, match=r"`layer` must be one of .*'lstm'"):
        ModelConfig(layer="lstm").layer_args()


def test_model_argument_errors():
    with pytest.raises(ValueError, match="layer"):
        SequenceModel(4, layer="lstm")
    with pytest.raises(ValueError, match="d_output"):
        SequenceModel(4, head="classification")
    with pytest.raises(ValueError, match="lengths"):
        SequenceModel(4, d_model=8, n_layers=1, l_max=8)(torch.randn(1, 8, 4), lengths=torch.tensor([9]))


# ---------------------------------------------------------------- param_groups


def test_param_groups():
    m = SequenceModel(4, d_model=8, n_layers=2, l_max=16, layer_args={"kernel_args": {"lr": 5e-4}})
    groups = param_groups(m, lr=1e-2, weight_decay=0.1)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in m.parameters()) and len(seen) == len(set(seen))
    kernel_ids = {id(b.layer.kernel.weight) for b in m.blocks}
    for g in groups:
        ids = {id(p) for p in g["params"]}
        if ids & kernel_ids:
            assert ids == kernel_ids and g["lr"] == 5e-4 and g["weight_decay"] == 0.0
        elif g["name"] == "decay":
            assert g["weight_decay"] == 0.1 and all(p.dim() >= 2 for p in g["params"])
        else:
            assert g["weight_decay"] == 0.0
    torch.optim.AdamW(groups)  # accepted as is


def test_eval_kernel_cache_follows_parameter_updates():
    layer = LongConv(4, 16).eval()
    x = torch.randn(1, 16, 4)
    with torch.no_grad():
        y1 = layer(x)
        k1 = layer._kernel(16)
        assert layer._kernel(16) is k1  # reused while nothing changes
        layer.kernel.weight.mul_(2.0)  # an in-place update, like an optimizer step
        assert layer._kernel(16) is not k1
        y2 = layer(x)
    assert not torch.allclose(y1, y2)
    layer.train()
    assert layer._kernel(16) is not layer._kernel(16)  # training: always regenerated


# ---------------------------------------------------------------- layouts and masks


@pytest.mark.parametrize("name,cls", [("longconv", "LongConv"), ("s4d", "LongConv"), ("butterfly", "ButterflyConv"),
                                      ("gated", "GatedLongConv"), ("attention", "AttentionLayer")])
def test_a_transposed_input_is_named(name, cls):
    """(B, H, L) given to a (B, L, D) layer: the message names both layouts and the fix."""
    layer = LAYERS[name](64, 32)
    x = torch.randn(2, 64, 16)  # (B, H, L) with H = d_model = 64, L = 16
    with pytest.raises(ValueError, match=rf"^got \(B, H, L\) = \(2, 64, 16\); {cls} expects \(B, L, D\) with D = "
                                         r"d_model = 64; pass x\.transpose\(1, 2\)\.$"):
        layer(x)
    with pytest.raises(ValueError, match=rf"{cls} expects x of shape \(B, L, D\) with D = d_model = 64; got "
                                         r"\(2, 16, 63\) \(63 features per step\)"):
        layer(torch.randn(2, 16, 63))
    with pytest.raises(ValueError, match=rf"{cls} expects x of shape \(B, L, D\).*got \(16, 64\)"):
        layer(torch.randn(16, 64))


@pytest.mark.parametrize("name", list(LAYERS))
def test_masks_are_checked(name):
    layer = LAYERS[name](8, 32)
    x = torch.randn(2, 16, 8)
    with pytest.raises(TypeError, match=r"mask must be bool \(B, L\), True on real steps; got dtype int64 \(2, 16\)"
                                        r"\. Pass mask\.bool\(\)"):
        layer(x, torch.ones(2, 16, dtype=torch.long))
    with pytest.raises(TypeError, match="mask must be bool.*got dtype float32"):
        layer(x, torch.ones(2, 16))
    with pytest.raises(ValueError, match=r"mask has length 15 but x has L = 16 steps; pass a \(B, L\) = \(2, 16\)"):
        layer(x, torch.ones(2, 15, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must be bool \(B, L\) = \(2, 16\) like x; got \(3, 16\)"):
        layer(x, torch.ones(3, 16, dtype=torch.bool))


def test_sequence_model_names_a_wrong_input():
    m = SequenceModel(19, d_model=8, n_layers=1, l_max=32)
    with pytest.raises(ValueError, match=r"x has 18 features per step \(x is \(B, L, D\) = \(2, 16, 18\)\); this "
                                         r"model was built with d_input=19\.$"):
        m(torch.randn(2, 16, 18))
    with pytest.raises(ValueError, match=r"x has 16 features per step .*d_input=19; pass x\.transpose\(1, 2\)"):
        m(torch.randn(2, 19, 16))
    with pytest.raises(ValueError, match=r"mask has length 15 but x has L = 16 steps"):
        m(torch.randn(2, 16, 19), torch.ones(2, 15, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be bool.*got dtype int64"):
        m(torch.randn(2, 16, 19), torch.ones(2, 16, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expects x of shape \(B, L, 19\) \(batch, time, features\); got \(16, 19\)"):
        m(torch.randn(16, 19))
    tokens = SequenceModel(None, d_model=8, n_layers=1, l_max=32, vocab_size=11)
    with pytest.raises(ValueError, match=r"takes token ids, integer \(B, L\) < vocab_size=11; got \(2, 16, 3\)"):
        tokens(torch.randn(2, 16, 3))
    embedded = SequenceModel(None, d_model=8, n_layers=1, l_max=32)
    with pytest.raises(ValueError, match=r"x has 5 features per step.*d_input=None: inputs already embedded, "
                                         r"d_model=8"):
        embedded(torch.randn(2, 16, 5))


def test_every_public_entry_states_its_layout():
    """The first line of each public docstring names the tensor layout."""
    from neuroconv import GatedLongConv

    for obj, layout in ((fftconv, "(B, H, L)"), (LongConv, "(B, L, D)"), (GatedLongConv, "(B, L, D)"),
                        (ButterflyConv, "(B, L, D)"), (AttentionLayer, "(B, L, D)"), (SequenceModel, "(B, L, d_input)")):
        first = " ".join(obj.__doc__.strip().split("\n\n")[0].split())
        assert layout in first, (obj, first)
    for cls in (LongConv, ButterflyConv, GatedLongConv, AttentionLayer, SequenceModel):
        assert cls.forward.__doc__ and "(B, L" in cls.forward.__doc__, cls


def test_kernel_size_is_a_short_receptive_field_at_any_length():
    """LongConv(kernel_size=5, bidirectional): 9-tap centred kernels, inputs longer than
    the kernel, equal to a direct float64 convolution with those taps (the short-context
    ablation of the same layer); the default (None) keeps kernels as long as the input."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    for L in (7, 50, 301):
        lay = LongConv(4, 1000, bidirectional=True, kernel_size=5).double()
        x = torch.randn(2, L, 4, dtype=torch.float64, requires_grad=True)
        k = lay.kernel(min(L, 5))[0]  # (H, 2M-1)
        M = (k.shape[1] + 1) // 2
        u = x.transpose(1, 2)
        ref = torch.zeros_like(u)
        for j in range(-(M - 1), M):
            shifted = torch.zeros_like(u)
            if j >= 0:
                shifted[..., j:] = u[..., : L - j]
            else:
                shifted[..., :j] = u[..., -j:]
            ref = ref + k[:, M - 1 + j][None, :, None] * shifted
        ref = ref + lay.D[0][None, :, None] * u
        want = F.glu(lay.output_linear(F.gelu(ref.transpose(1, 2))), dim=-1)
        got = lay(x)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
        g1, = torch.autograd.grad(got.sum(), x, retain_graph=True)
        g2, = torch.autograd.grad(want.sum(), x)
        torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-10)
    assert lay.kernel.l_max == 5
    with pytest.raises(ValueError, match="kernel_size"):
        LongConv(4, 10, kernel_size=0)
    with pytest.raises(ValueError, match="exceeds l_max"):
        LongConv(4, 10)(torch.randn(1, 11, 4))
