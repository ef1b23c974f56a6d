"""Sleep baselines: YASA's detector equal to YASA, the threshold search against a loop
over YASA itself, the sigma-window features against a per-window reference, the hybrid
HMM against brute-force decoding and hmmlearn's CategoricalHMM, the GRU's padding."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

from neuroconv.brain.sleep import (
    HMMSmoother,
    SigmaSpindleClassifier,
    SleepGRU,
    YasaSpindles,
    require,
    sigma_features,
    sleep_gru_n_parameters,
    yasa_spindles,
)
from neuroconv.engine.events import event_scores, events_to_mask, match_events


# --------------------------------------------------------------------------- optional extra
def test_module_imports_without_the_sleep_extra_and_says_how_to_install():
    code = ("import sys, neuroconv.brain.sleep; "
            "print([m for m in ('yasa', 'lightgbm', 'hmmlearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    with pytest.raises(ImportError, match=r"pip install 'neuroconv\[sleep\]'"):
        require("neuroconv_no_such_module")


# --------------------------------------------------------------------------- YASA
def _excerpt(shared_data, k):
    root = shared_data / "dreams-spindles"
    x = np.loadtxt(root / f"excerpt{k}.txt", skiprows=1)
    ev = np.loadtxt(root / f"Visual_scoring1_excerpt{k}.txt", skiprows=1, ndmin=2)
    hyp = np.loadtxt(root / f"Hypnogram_excerpt{k}.txt", skiprows=1).astype(int)
    return x, ev, hyp


def test_yasa_spindles_equal_yasa_on_a_real_excerpt(shared_data):
    yasa = pytest.importorskip("yasa")
    x, _, hyp = _excerpt(shared_data, 1)  # 100 Hz, 30 min
    sf = 100.0
    nrem = np.repeat((hyp >= 0) & (hyp <= 3), 5 * int(sf))  # DREAMS coding: 0-3 are S4..S1
    for thresh, mask in ((None, None), ({"rel_pow": 0.1, "corr": 0.5, "rms": 2.0}, None), (None, nrem)):
        on, off = yasa_spindles(x, sf, thresh=thresh, mask=mask)
        kw = {} if mask is None else {"hypno": mask.astype(int), "include": (1,)}
        sp = yasa.spindles_detect(x, sf, thresh=thresh, **kw)
        ev = sp.summary()
        assert len(ev) > 10
        np.testing.assert_array_equal(on, np.round(ev["Start"].to_numpy() * sf).astype(int))
        np.testing.assert_array_equal(off - 1, np.round(ev["End"].to_numpy() * sf).astype(int))
        np.testing.assert_array_equal(events_to_mask(on, off, len(x)), sp.get_mask().astype(bool))


def test_yasa_spindles_errors(shared_data):
    pytest.importorskip("yasa")
    x, _, _ = _excerpt(shared_data, 3)  # 50 Hz: YASA's 1-30 Hz band is above Nyquist
    with pytest.raises(ValueError, match="Nyquist"):
        yasa_spindles(x, 50.0)
    with pytest.raises(ValueError, match="microvolts"):
        yasa_spindles(x[:20000] * 1e-6, 100.0)
    with pytest.raises(ValueError, match="grid"):
        YasaSpindles(grid={"power": [1]}).fit([x], 100.0, [np.zeros((0, 2))])


def test_yasa_threshold_search_picks_the_best_training_f1(shared_data):
    yasa = pytest.importorskip("yasa")
    x, ev, _ = _excerpt(shared_data, 1)
    sf, half = 100.0, len(x) // 2
    # two "recordings": the two 15-minute halves, with the expert's spindles of each
    sigs = [x[:half], x[half:]]
    true_s = [ev[(ev[:, 0] + ev[:, 1]) * sf <= half], ev[ev[:, 0] * sf >= half]]
    true_s[1] = true_s[1] - [half / sf, 0]
    true = [np.stack([np.round(t[:, 0] * sf), np.round((t[:, 0] + t[:, 1]) * sf)], 1) for t in true_s]
    grid = {"rel_pow": [0.1, 0.3], "corr": [0.5, 0.8], "rms": [1.0, 2.0]}
    est = YasaSpindles(grid=grid).fit(sigs, sf, true)
    # reference: YASA's detector and YASA's own by-event comparison, counts pooled by hand
    ref = []
    for rp, co, rm in itertools.product(*grid.values()):
        tp = fp = fn = 0
        for s, t in zip(sigs, true_s):
            sp = yasa.spindles_detect(s, sf, thresh={"rel_pow": rp, "corr": co, "rms": rm})
            det = np.zeros((0, 2)) if sp is None else sp.summary()[["Start", "End"]].to_numpy() + [0, 1 / sf]
            c = yasa.compare_detection(det, np.stack([t[:, 0], t[:, 0] + t[:, 1]], 1), method="intersection",
                                       iou_threshold=0.2)
            tp, fp, fn = tp + len(c["tp"]), fp + len(c["fp"]), fn + len(c["fn"])
        ref.append(((rp, co, rm), 2 * tp / (2 * tp + fp + fn)))
    f1s = [r["f1"] for r in est.cv_results_]
    np.testing.assert_allclose(f1s, [f for _, f in ref], rtol=1e-12)
    assert len(set(np.round(f1s, 12))) > 1  # the grid makes a difference here
    best = max(range(len(ref)), key=lambda i: (ref[i][1], -i))
    assert tuple(est.thresh_[k] for k in ("rel_pow", "corr", "rms")) == ref[best][0]
    assert est.best_score_ == max(f1s)
    # predict runs the chosen thresholds
    on, off = est.predict(sigs[0], sf)
    np.testing.assert_array_equal(on, yasa_spindles(sigs[0], sf, thresh=est.thresh_)[0])


def test_yasa_with_one_candidate_is_plain_yasa(shared_data):
    pytest.importorskip("yasa")
    x, _, _ = _excerpt(shared_data, 1)
    x = x[:60000]
    est = YasaSpindles(grid={"rel_pow": [0.2], "corr": [0.65], "rms": [1.5]}).fit([x], 100.0, [np.zeros((0, 2))])
    assert est.thresh_ == {"rel_pow": 0.2, "corr": 0.65, "rms": 1.5} and len(est.cv_results_) == 1
    for a, b in zip(est.predict(x, 100.0), yasa_spindles(x, 100.0)):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- sigma windows
@pytest.mark.parametrize("n, sf, window, step", [(1001, 100.0, 0.5, 0.1), (2345, 128.0, 0.37, 0.13)])
def test_sigma_features_equal_a_per_window_reference(n, sf, window, step):
    from mne.filter import filter_data

    x = np.random.default_rng(n).standard_normal(n) * 20
    feats, centres = sigma_features(x, sf, window=window, step=step)
    b = filter_data(x, sf, 1.0, 30.0, method="fir", verbose=False)
    s = filter_data(x, sf, 11.0, 16.0, l_trans_bandwidth=1.5, h_trans_bandwidth=1.5, method="fir", verbose=False)
    w, st = int(round(window * sf)), int(round(step * sf))
    starts = range(0, n - w + 1, st)
    assert len(feats) == len(starts)
    for k, a in enumerate(starts):
        bw, sw = b[a:a + w], s[a:a + w]
        ref = [np.sum(sw**2) / np.sum(bw**2), np.log(np.sqrt(np.mean(sw**2))), np.corrcoef(sw, bw)[0, 1],
               np.log(np.mean(bw**2))]
        np.testing.assert_allclose(feats[k], ref, rtol=1e-9, atol=1e-12)
        assert centres[k] == a + (w - 1) / 2


def _synthetic_recording(rng, sf=100.0, minutes=3):
    """Brown-ish noise with 13 Hz bursts (Hann envelope, 0.6-1.5 s) planted at random."""
    n = int(minutes * 60 * sf)
    noise = np.cumsum(rng.standard_normal(n))
    noise = 10 * (noise - np.convolve(noise, np.ones(101) / 101, mode="same")) + 5 * rng.standard_normal(n)
    x, events, t = noise.copy(), [], int(rng.integers(100, 300))
    while t < n - 400:
        d = int(rng.uniform(0.6, 1.5) * sf)
        x[t:t + d] += 25 * np.hanning(d) * np.sin(2 * np.pi * 13.0 * np.arange(d) / sf + rng.uniform(0, 6))
        events.append((t, t + d))
        t += d + int(rng.uniform(3, 10) * sf)
    return x, np.array(events)


def test_sigma_classifier_finds_planted_spindles():
    rng = np.random.default_rng(0)
    recs = [_synthetic_recording(rng) for _ in range(4)]
    est = SigmaSpindleClassifier(Cs=(0.01, 1.0), thresholds=(0.3, 0.5, 0.7, 0.9))
    est.fit([r[0] for r in recs[:3]], 100.0, [r[1] for r in recs[:3]])
    assert est.C_ in (0.01, 1.0) and len(est.inner_log_loss_) == 2 and len(est.inner_f1_) == 4
    x, true = recs[3]
    p = est.predict_proba(x, 100.0)
    assert p.shape == x.shape
    inside = events_to_mask(true[:, 0], true[:, 1], len(x))
    assert p[inside].mean() > 0.5 > p[~inside].mean()
    f1 = event_scores(match_events(true, np.c_[est.predict(x, 100.0)], 0.2))[2]
    assert f1 >= 0.8, f1
    # a mask of nothing detects nothing
    assert len(est.predict(x, 100.0, mask=np.zeros(len(x), bool))[0]) == 0
    with pytest.raises(ValueError, match="at least 2 training recordings"):
        SigmaSpindleClassifier().fit([x], 100.0, [true])


def test_sigma_window_labels_follow_the_half_rule():
    est = SigmaSpindleClassifier(window=0.1, step=0.05)
    n, sf = 200, 100.0
    events = np.array([[12, 17], [40, 45], [80, 90]])
    centres = np.arange(0, n - 10 + 1, 5) + 4.5
    labels = est._labels(n, sf, events.astype(float), centres)
    inside = events_to_mask(events[:, 0], events[:, 1], n)
    ref = [inside[int(c - 4.5):int(c - 4.5) + 10].sum() >= 5 for c in centres]
    np.testing.assert_array_equal(labels, ref)


# --------------------------------------------------------------------------- HMM
def _brute_force(hmm, P):
    """Every path's log-score, the best path and the exact marginals."""
    L, K = P.shape
    em = np.log(P) - np.log(hmm.class_prior_)
    paths = np.array(list(itertools.product(range(K), repeat=L)))
    score = np.log(hmm.startprob_[paths[:, 0]]) + em[np.arange(L), paths].sum(1)
    score += np.log(hmm.transmat_[paths[:, :-1], paths[:, 1:]]).sum(1)
    w = np.exp(score - score.max())
    marg = np.stack([np.bincount(paths[:, t], weights=w, minlength=K) for t in range(L)]) / w.sum()
    return paths[np.argmax(score)], marg


def test_hmm_counts_and_smoothing():
    pytest.importorskip("hmmlearn")
    h = HMMSmoother(n_classes=3, alpha=0.5).fit([np.array([0, 0, 1, 2]), np.array([1, 1])])
    # transitions: 0->0, 0->1, 1->2, 1->1 ; firsts: 0, 1 ; stage counts: 2, 3, 1
    np.testing.assert_allclose(h.transmat_, [[1.5 / 3.5, 1.5 / 3.5, 0.5 / 3.5], [0.5 / 3.5, 1.5 / 3.5, 1.5 / 3.5],
                                             [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15)
    np.testing.assert_allclose(h.startprob_, [1.5, 1.5, 0.5] / np.float64(3.5), rtol=1e-15)
    np.testing.assert_allclose(h.class_prior_, [2.5, 3.5, 1.5] / np.float64(7.5), rtol=1e-15)
    assert np.allclose(HMMSmoother(classifier_prior="uniform").fit([np.array([0, 1, 1])]).class_prior_, 0.5)
    with pytest.raises(ValueError, match="classifier_prior"):
        HMMSmoother(classifier_prior="flat").fit([np.array([0, 1])])
    with pytest.raises(ValueError, match="proba"):
        h.predict(np.ones((4, 2)) / 2)


def test_hmm_decoding_equals_brute_force():
    pytest.importorskip("hmmlearn")
    rng = np.random.default_rng(0)
    for case in range(60):
        K, L = int(rng.integers(2, 4)), int(rng.integers(1, 7))
        seqs = [rng.integers(0, K, int(rng.integers(2, 30))) for _ in range(3)]
        prior = rng.choice(["counts", "uniform", "array"])
        prior = rng.dirichlet(np.ones(K)) if prior == "array" else str(prior)
        h = HMMSmoother(n_classes=K, alpha=float(rng.uniform(0.1, 2)), classifier_prior=prior).fit(seqs)
        P = rng.dirichlet(np.ones(K) * 0.7, size=L)
        path, marg = _brute_force(h, P)
        np.testing.assert_array_equal(h.predict(P), path, err_msg=str(case))
        np.testing.assert_allclose(h.predict_proba(P), marg, rtol=1e-9, atol=1e-12)


def test_hmm_equals_hmmlearn_categorical_hmm_and_splits_nights():
    hmm_mod = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(1)
    K, M, L = 4, 6, 300
    h = HMMSmoother(n_classes=K, classifier_prior=rng.dirichlet(np.ones(K))).fit(
        [rng.integers(0, K, 200) for _ in range(2)] + [np.repeat(rng.integers(0, K, 20), 10)])
    ref = hmm_mod.CategoricalHMM(n_components=K, n_features=M)
    ref.startprob_, ref.transmat_ = h.startprob_, h.transmat_
    ref.emissionprob_ = rng.dirichlet(np.ones(M), size=K)
    obs, _ = ref.sample(L, random_state=2)  # (L, 1) symbols, states
    # posteriors whose division by the prior is the emission likelihood (up to a per-epoch constant)
    P = ref.emissionprob_[:, obs[:, 0]].T * h.class_prior_
    P /= P.sum(1, keepdims=True)
    np.testing.assert_array_equal(h.predict(P), ref.decode(obs, algorithm="viterbi")[1])
    np.testing.assert_allclose(h.predict_proba(P), ref.predict_proba(obs), rtol=1e-9, atol=1e-12)
    # several nights: each is decoded on its own
    both = h.predict(np.concatenate([P[:120], P[120:]]), lengths=[120, 180])
    np.testing.assert_array_equal(both, np.concatenate([h.predict(P[:120]), h.predict(P[120:])]))


# --------------------------------------------------------------------------- GRU
def _gru_batch(rng, lengths, L, F, pad_value=0.0):
    x = torch.full((len(lengths), L, F), pad_value)
    mask = torch.zeros(len(lengths), L, dtype=torch.bool)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.as_tensor(rng.standard_normal((n, F)), dtype=torch.float32)
        mask[i, :n] = True
    return x, mask


def test_gru_padding_never_reaches_valid_steps():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    F, lengths = 7, [13, 5, 9]
    model = SleepGRU(F, n_classes=4, hidden_size=8, num_layers=2, dropout=0.3, proj_size=6).eval()
    x, mask = _gru_batch(rng, lengths, 13, F)
    out = model({"x": x, "mask": mask})
    assert out.shape == (3, 13, 4)
    # append padding holding garbage (large values, NaN): valid outputs are bitwise the same
    x2 = torch.cat([x, torch.full((3, 6, F), float("nan"))], 1)
    x2[0, 13:] = 1e6
    x2[1, 5:13] = -1e6
    mask2 = torch.cat([mask, torch.zeros(3, 6, dtype=torch.bool)], 1)
    x2.requires_grad_(True)
    out2 = model({"x": x2, "mask": mask2})
    assert torch.equal(out2[:, :13][mask], out[mask])
    assert torch.all(out2[~mask2] == 0) and torch.isfinite(out2).all()
    # gradients reach every valid input and no padded one
    out2[mask2].pow(2).sum().backward()
    assert torch.all(x2.grad[~mask2] == 0)
    assert torch.all(x2.grad[mask2].abs().sum(-1) > 0)
    # both directions: a change at the last valid step moves the first step's output
    x3 = x.clone()
    x3[1, 4] += 1.0
    assert not torch.equal(model({"x": x3, "mask": mask})[1, 0], out[1, 0])


def test_gru_batched_equals_each_night_alone():
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    F, lengths = 5, [11, 3, 8]
    model = SleepGRU(F, n_classes=3, hidden_size=16, num_layers=3, dropout=0.0, proj_size=12).eval()
    x, mask = _gru_batch(rng, lengths, 11, F)
    out = model({"x": x, "mask": mask})
    for i, n in enumerate(lengths):
        alone = model({"x": x[i:i + 1, :n], "mask": torch.ones(1, n, dtype=torch.bool)})[0]
        # float32 sums of <= 2 * 16 + 12 terms per unit, through a contractive recurrence:
        # a few hundred ulps at most
        torch.testing.assert_close(out[i, :n], alone, rtol=1e-5, atol=1e-6)


def test_gru_parameter_count_and_mask_errors():
    for F, K, H, n, P in [(72, 5, 64, 2, 64), (3, 2, 5, 1, 4), (10, 7, 9, 3, 11)]:
        model = SleepGRU(F, K, hidden_size=H, num_layers=n, proj_size=P)
        assert sum(p.numel() for p in model.parameters()) == sleep_gru_n_parameters(F, K, H, n, P)
    model = SleepGRU(4, 5)
    x = torch.zeros(2, 6, 4)
    with pytest.raises(ValueError, match="prefix"):
        model({"x": x, "mask": torch.tensor([[True, False, True, False, False, False]] * 2)})
    with pytest.raises(ValueError, match="prefix"):
        model({"x": x, "mask": torch.zeros(2, 6, dtype=torch.bool)})
    with pytest.raises(ValueError, match="hidden_size"):
        SleepGRU(4, 5, hidden_size=0)
