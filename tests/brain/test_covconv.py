"""CovConv: its pieces against sklearn and nilearn, its contracts, and tiny training runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from neuroconv.brain.covconv import CovConvNet
from neuroconv.brain.spd import ledoit_wolf_covariance, tangent_vector
from neuroconv.brain.data import ArrayWindows, Crops, loader

from .conftest import tiny_config


def _padded(xs):
    L = max(len(a) for a in xs)
    x = torch.zeros(len(xs), L, xs[0].shape[1], dtype=torch.float64)
    mask = torch.zeros(len(xs), L, dtype=torch.bool)
    for i, a in enumerate(xs):
        x[i, : len(a)] = torch.as_tensor(a)
        mask[i, : len(a)] = True
    return x, mask


@pytest.mark.parametrize("seed", [0, 1])
def test_ledoit_wolf_matches_sklearn_on_ragged_batches(seed):
    from sklearn.covariance import ledoit_wolf

    rng = np.random.default_rng(seed)
    C = int(rng.integers(2, 9))
    xs = [rng.standard_normal((int(T), C)) @ rng.standard_normal((C, C)) + 3 for T in rng.integers(5, 60, 4)]
    x, mask = _padded(xs)
    ours = ledoit_wolf_covariance(x.transpose(1, 2), mask)
    for i, a in enumerate(xs):
        ref = ledoit_wolf(a)[0]
        # float64 throughout: a few ulps of the entries' scale, times the sums' length
        np.testing.assert_allclose(ours[i].numpy(), ref, rtol=0, atol=64 * len(a) * np.finfo(float).eps * np.abs(ref).max())


def test_identity_filter_features_are_nilearns_tangent_connectivity():
    """With its identity filter and nilearn's reference, the model's features are the
    connectivity baseline's (ConnectivityMeasure, tangent, vectorised without diagonal)."""
    from nilearn.connectome import ConnectivityMeasure

    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((int(T), 6)) @ rng.standard_normal((6, 6)) for T in (40, 33, 57, 48)]
    cm = ConnectivityMeasure(kind="tangent", vectorize=True, discard_diagonal=True, standardize=False)
    ref = cm.fit_transform(xs)
    net = CovConvNet(6, 2, filter_len=5, identity=True).double()
    net.whitener.copy_(torch.as_tensor(cm.whitening_)[None])
    x, mask = _padded(xs)
    with torch.no_grad():
        got = net.raw_features({"x": x, "mask": mask}).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e3 * np.finfo(float).eps * np.abs(ref).max())
    # the tangent map itself, on one matrix: log of the whitened matrix, strict lower triangle
    C = torch.as_tensor(np.cov(xs[0].T))
    v = tangent_vector(C, torch.eye(6, dtype=torch.float64))
    evals, evecs = np.linalg.eigh(C.numpy())
    log = (evecs * np.log(evals)) @ evecs.T
    np.testing.assert_allclose(v.numpy(), log[np.tril_indices(6, -1)], atol=1e-12)


def test_reference_and_standardisation_are_those_of_the_fitted_windows():
    """The whitener is the inverse square root of the fitted windows' reference mean
    (log-Euclidean or geometric), the feature mean and sd are theirs, and statistics given
    precomputed give the same model as statistics computed from the loader. (That decode
    fits them on training windows only is tested in test_zoo.py.)"""
    rng = np.random.default_rng(0)
    train = rng.standard_normal((12, 5, 64)).astype(np.float32)
    net = CovConvNet(5, 2, filter_len=4, reference="logeuclid")
    feats = net.fit_statistics(loader(ArrayWindows(train, np.arange(12) % 2), 5, False))
    np.testing.assert_allclose(feats.mean(0), 0, atol=1e-9)
    twin = CovConvNet(5, 2, filter_len=4, reference="logeuclid")
    twin.load_state_dict(net.state_dict())
    pre = twin.batch_statistics(loader(ArrayWindows(train, np.arange(12) % 2), 5, False))
    np.testing.assert_array_equal(twin.fit_statistics(None, precomputed=pre), feats)
    with torch.no_grad():
        C = net.covariances(torch.as_tensor(train).transpose(1, 2), None)[:, 0]
        evals, evecs = torch.linalg.eigh(C)
        mean_log = ((evecs * torch.log(evals)[:, None, :]) @ evecs.transpose(1, 2)).mean(0)
        e, v = torch.linalg.eigh(mean_log)
        np.testing.assert_allclose(net.whitener[0].numpy(), ((v * torch.exp(-e / 2)) @ v.T).numpy(), atol=1e-10)
    # the default reference is the geometric mean, nilearn's (and the connectivity baseline's)
    from neuroconv.brain.spd import riemann_mean_nilearn

    net = CovConvNet(5, 2, filter_len=4)
    net.fit_statistics(loader(ArrayWindows(train, np.arange(12) % 2), 5, False))
    with torch.no_grad():
        C = net.covariances(torch.as_tensor(train).transpose(1, 2), None)[:, 0].numpy()
    M = riemann_mean_nilearn(C)[0]
    e, v = np.linalg.eigh(M)
    np.testing.assert_allclose(net.whitener[0].numpy(), (v / np.sqrt(e)) @ v.T, atol=1e-10)


def test_crop_averaging_is_invariant_to_crop_order():
    rng = np.random.default_rng(1)
    ds = ArrayWindows(rng.standard_normal((3, 4, 50)).astype(np.float32), None)
    crops = Crops(ds, crop=20, n_crops=4)
    assert len(crops) == 12
    starts = [crops[j]["x"][0, 0].item() for j in range(4)]
    assert starts[0] == ds[0]["x"][0, 0].item() and starts[-1] == ds[0]["x"][30, 0].item()  # 0 ... L - crop
    out = rng.standard_normal((12, 2))
    avg = crops.average(out)
    perm = np.concatenate([np.random.default_rng(2).permutation(4) + 4 * i for i in range(3)])
    np.testing.assert_allclose(crops.average(out[perm]), avg)  # the crops of a window, in any order
    np.testing.assert_allclose(avg[1], out[4:8].mean(0))
    torch.manual_seed(0)
    train = Crops(ds, crop=20)
    assert train[0]["x"].shape == (20, 4) and len(train) == 3
    with pytest.raises(ValueError, match="`crop` must be"):
        Crops(ds, crop=1)


def test_init_head_reproduces_the_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    net = CovConvNet(3, 2, filter_len=3)  # 3 channels -> 3 tangent features
    feats = rng.standard_normal((40, 3))
    y = (feats[:, 0] > 0).astype(int)
    net.init_head(feats, y, C=0.5)
    lr = LogisticRegression(C=0.5, max_iter=2000).fit(feats, y)
    with torch.no_grad():
        logits = net.head(torch.as_tensor(feats, dtype=torch.float32)).numpy()
    p1 = torch.softmax(torch.as_tensor(logits), 1)[:, 1].numpy()
    np.testing.assert_allclose(p1, lr.predict_proba(feats)[:, 1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("readout, extra", [("logvar", {"decode.covconv.n_filters": 2, "decode.covconv.spatial": 4}),
                                            ("tangent", {"decode.covconv.erp_prototypes": True}),
                                            ("tangent", {"decode.covconv.bands": [None, [4.0, 12.0]],
                                                         "decode.covconv.train": "filters"})])
def test_covconv_trains_in_decode(eeg_store, tmp_path, readout, extra):
    from neuroconv.brain.decode import run_decode

    cfg = tiny_config([eeg_store], tmp_path, **{
        "decode.event_labels": ["left", "right"], "decode.tmin": 0.0, "decode.tmax": 2.0,
        "decode.models": ["covconv"], "decode.covconv.readout": readout, **extra})
    run = run_decode(cfg, log=lambda *_: None)
    m = json.loads((run / "metrics.json").read_text())
    cc = m["models"]["covconv"]
    assert not m["failed"] and len(cc["accuracy"]["folds"]) == 2
    # it trained on the inner split, chose its head's C from the grid, and its learned
    # filters are summarised per fold
    assert all(t["steps"] > 0 and t["best_step"] is not None for t in cc["training"])
    for h in cc["hyperparameters"]:  # from the grid, or the decades it was extended by at an edge
        assert h["C"] in list(cfg.decode.c_grid) + [c for ext in h.get("grid_extended", []) for c in ext]
    if "decode.covconv.bands" in extra:  # band filters: their edges per fold, next to the start
        assert all(f["kernels"]["start"] == [[4.0, 12.0]] and len(f["kernels"]["bands"]) == 1 for f in cc["folds"])
    else:
        assert len(cc["kernels"]["folds"]) == 2 and all(np.isfinite(cc["kernels"]["folds"]))
    preds = pd.read_csv(run / "predictions.csv")
    assert cc["accuracy"]["pooled"] == pytest.approx((preds.y_true == preds.y_pred).mean())


def test_box_filters_start_exactly_as_boxes_whatever_the_smoothing():
    net = CovConvNet(3, 2, filter_len=6, n_filters=3, kernel_init="box", smooth_width=5).eval()
    x = torch.randn(2, 40, 3, dtype=torch.float64)
    net = net.double()
    box3 = torch.nn.functional.avg_pool1d(x.transpose(1, 2), 3, stride=1, padding=1, count_include_pad=True)
    with torch.no_grad():
        residual = net.kernel(6)[:, 0]  # (F 2M-1): the learned part, started near zero
        y = net.filtered(x, None)  # (B F C L)
        # the learned part moves each output by at most its L1 norm times the largest input
        bound = residual.abs().sum(-1) * x.abs().max() + 1e-12
        assert 0 < bound.max() < 0.1
        np.testing.assert_array_less((y[:, 0] - x.transpose(1, 2)).abs().max(), bound[0])
        np.testing.assert_array_less((y[:, 1, :, 1:-1] - box3[..., 1:-1]).abs().max(), bound[1])
        net.kernel.weight.zero_()  # without it, the filters are the boxes (identity, 3 steps) exactly
        y = net.filtered(x, None)
    np.testing.assert_allclose(y[:, 0].numpy(), x.transpose(1, 2).numpy(), atol=1e-12)
    np.testing.assert_allclose(y[:, 1, :, 1:-1].numpy(), box3[..., 1:-1].numpy(), atol=1e-12)


def test_band_filters_are_a_long_convolution_in_hz():
    """The band bank's output is the direct (float64) linear convolution of each sequence
    with the kernel irfft(H) of its own sampling rate; a band is the same band in Hz at
    any rate; in-band sines pass and out-of-band ones do not; the edges get gradients."""
    from neuroconv.brain.covconv import BandPassBank

    rng = np.random.default_rng(0)
    bank = BandPassBank([None, [8.0, 13.0], [20.0, 30.0]]).double()
    L, C = 137, 3  # odd length
    u = torch.as_tensor(rng.standard_normal((2, C, L)))
    sfreq = torch.tensor([100.0, 250.0], dtype=torch.float64)
    y = bank(u, sfreq).detach()
    assert y.shape == (2, 3, C, L)
    torch.testing.assert_close(y[:, 0], u)  # the pass-through
    n = 2 * L
    for b in range(2):
        H = bank.response(torch.fft.rfftfreq(n, dtype=torch.float64) * sfreq[b]).detach()  # (2 nf)
        for f in range(2):
            k = np.fft.irfft(H[f].numpy(), n)  # circular, centred at 0
            taps = np.arange(-(L - 1), L)
            direct = np.stack([[sum(k[tau % n] * u[b, c, t - tau].item() for tau in taps if 0 <= t - tau < L)
                                for t in range(L)] for c in range(C)])
            np.testing.assert_allclose(y[b, f + 1].numpy(), direct, rtol=0, atol=1e-12 * L)
    # one band in Hz at any rate: a 10 Hz sine passes band 1 at 100 and at 250 Hz, and
    # band 2 removes it (the response, a product of two sigmoids, bounds both gains)
    for fs in (100.0, 250.0):
        t = torch.arange(int(8 * fs), dtype=torch.float64) / fs
        s = torch.sin(2 * np.pi * 10 * t)[None, None]
        out = bank(s, torch.tensor([fs], dtype=torch.float64)).detach()[0, :, 0, int(2 * fs): int(6 * fs)]
        gain = out.std(-1) / s[0, 0, int(2 * fs): int(6 * fs)].std()
        h = bank.response(torch.tensor([10.0], dtype=torch.float64)).detach()[:, 0]
        np.testing.assert_allclose(gain[1:].numpy(), h.numpy(), atol=0.02)
        assert gain[1] > 0.95 and gain[2] < 0.01
    bank(u, sfreq)[:, 1:].pow(2).sum().backward()
    assert bank.log_lo.grad.abs().min() > 0 and bank.log_width.grad.abs().min() > 0
    with pytest.raises(ValueError, match="0 < lo < hi"):
        BandPassBank([[13.0, 8.0]])


def test_covconv_with_bands_starts_with_the_signal_itself_as_filter_0():
    """With a pass-through band first, filter 0's covariances are those of the signal."""
    from neuroconv.brain.spd import ledoit_wolf_covariance

    net = CovConvNet(4, 2, bands=[None, [0.01, 0.027], [0.027, 0.073]]).double()
    x = torch.randn(3, 150, 4, dtype=torch.float64)
    C = net.covariances(x, None, torch.full((3,), 0.5, dtype=torch.float64))
    torch.testing.assert_close(C[:, 0], ledoit_wolf_covariance(x.transpose(1, 2)))
    with pytest.raises(ValueError, match="pass the batch's sampling rates"):
        net.covariances(x, None)
