"""SSVEP baselines: each wrapper against MOABB's own class on the same trials, the scores
against independent references (canonical correlations by SVD, the TS+LR recipe built
step by step with MNE and pyriemann), and decoding of a synthetic SSVEP set whose SNR
fixes how well a working classifier must do."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.stats import binom
from sklearn.base import clone

pytest.importorskip("moabb")

from neuroconv.brain.ssvep import (SSVEP_BASELINES, SSVEPCCA, SSVEPFilterBank, SSVEPMsetCCA,  # noqa: E402
                                   SSVEPTRCA, freqs_from_labels, make_ssvep_baseline)

SFREQ = 128.0
# label 0 is the higher frequency, so MOABB's sorted label names ("11.0" < "15.0") come in
# the other order than ours: the column mapping is exercised
FREQS = {0: 15.0, 1: 11.0}
T = 251                                  # odd, about 2 s
N_TEST = 40


def ssvep_set(n, amp, *, n_channels=3, seed=0):
    """``n`` trials ``(n, n_channels, T)`` of unit white noise plus, for class ``k``, a
    phase-locked response ``amp * w_c * (sin(2 pi f_k t + phi_k) + 0.5 sin(4 pi f_k t +
    phi_k))`` (``w`` from 1 down to 0.4 across channels, phase jitter +-0.2 rad); balanced
    classes in random order."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    t = np.arange(T) / SFREQ
    w = np.linspace(1.0, 0.4, n_channels)[:, None]
    X = rng.standard_normal((n, n_channels, T))
    for i, k in enumerate(y):
        ph = 0.3 + 1.1 * k + rng.uniform(-0.2, 0.2)
        f = FREQS[int(k)]
        X[i] += amp * w * (np.sin(2 * np.pi * f * t + ph) + 0.5 * np.sin(4 * np.pi * f * t + ph))
    return X, y


def moabb_epochs(X, y=None):
    """The trials as MOABB's SSVEP classes take them: mne.Epochs, labels naming Hz."""
    import mne

    codes = np.zeros(len(X), int) if y is None else np.asarray(y)
    events = np.column_stack([np.arange(len(X)) * X.shape[2], np.zeros(len(X), int), codes + 1])
    names = {0: "trial"} if y is None else {k: str(FREQS[k]) for k in sorted(set(codes.tolist()))}
    ep = mne.EpochsArray(X, mne.create_info(X.shape[1], SFREQ, "eeg"), events=events,
                         event_id={v: k + 1 for k, v in names.items()}, verbose="error")
    return ep, None if y is None else np.array([str(FREQS[int(k)]) for k in codes])


def first_canonical_correlation(a, b):
    """Largest canonical correlation of ``a (n, p)`` and ``b (n, q)``, by QR and SVD."""
    qa, _ = np.linalg.qr(a - a.mean(0))
    qb, _ = np.linalg.qr(b - b.mean(0))
    return np.linalg.svd(qa.T @ qb, compute_uv=False)[0]


# ---------------------------------------------------------------- the same as MOABB
@pytest.fixture(scope="module")
def hard():
    """A low-SNR set (amp 0.12): the classifiers err on many trials, so equal
    predictions say more than on an easy set."""
    Xtr, ytr = ssvep_set(40, 0.12, seed=1)
    Xte, yte = ssvep_set(30, 0.12, seed=2)
    return Xtr, ytr, Xte, yte


def _moabb(name, **kw):
    from moabb.pipelines import classification

    return getattr(classification, name)(**kw)


@pytest.mark.parametrize("ours, theirs", [
    (SSVEPCCA, lambda: _moabb("SSVEP_CCA", n_harmonics=3, freq_map={str(f): f for f in FREQS.values()})),
    (SSVEPTRCA, lambda: _moabb("SSVEP_TRCA", n_fbands=2)),
    (SSVEPMsetCCA, lambda: _moabb("SSVEP_MsetCCA")),
])
def test_wrappers_predict_what_moabb_predicts(hard, ours, theirs):
    Xtr, ytr, Xte, yte = hard
    if ours is SSVEPTRCA:
        # trials centred across channels: there MOABB's in-place centring (which
        # MoabbTRCA does on a copy) changes nothing, so the two must agree
        Xtr, Xte = Xtr - Xtr.mean(1, keepdims=True), Xte - Xte.mean(1, keepdims=True)
    est = ours(sfreq=SFREQ, freqs=FREQS).fit(Xtr, ytr)
    ref = theirs().fit(*moabb_epochs(Xtr, ytr))
    expected = np.array([{str(f): k for k, f in FREQS.items()}[str(p)] for p in ref.predict(moabb_epochs(Xte)[0])])
    pred = est.predict(Xte)
    np.testing.assert_array_equal(pred, expected)
    assert 0 < (pred != yte).sum() < len(yte)          # a set with errors and successes
    proba = est.predict_proba(Xte)
    np.testing.assert_array_equal(est.classes_, [0, 1])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba.argmax(1), pred)
    # column order: ours, not MOABB's sorted frequency names
    scores = est.decision_function(Xte)
    np.testing.assert_array_equal(scores.argmax(1), pred)


def test_canonical_scores_equal_an_svd_reference(hard):
    """CCA and MsetCCA scores are first canonical correlations (with MOABB's references
    and templates); sklearn's iterative CCA stops when the squared change of its unit
    weight vector is below 1e-6, which leaves the correlation off by second order in
    that change (about 1e-6 times the eigenvalue-gap factor): 1e-4 is a safe budget."""
    Xtr, ytr, Xte, _ = hard
    t = np.arange(T) / SFREQ
    cca = SSVEPCCA(sfreq=SFREQ, freqs=FREQS, n_harmonics=2).fit(Xtr, ytr)
    refs = {k: np.column_stack([g(2 * np.pi * h * f * t) for h in (1, 2) for g in (np.sin, np.cos)])
            for k, f in FREQS.items()}
    expected = np.array([[first_canonical_correlation(x.T, refs[k]) for k in (0, 1)] for x in Xte[:8]])
    np.testing.assert_allclose(cca.decision_function(Xte[:8]), expected, atol=1e-4)
    mset = SSVEPMsetCCA(sfreq=SFREQ, freqs=FREQS).fit(Xtr, ytr)
    ym = mset.estimator_.Ym                   # MOABB's templates, in its sorted label order
    order = [list(mset.estimator_.classes_).index(str(FREQS[k])) for k in (0, 1)]
    expected = np.array([[first_canonical_correlation(x.T, ym[order[k]].T) for k in (0, 1)] for x in Xte[:8]])
    np.testing.assert_allclose(mset.decision_function(Xte[:8]), expected, atol=1e-4)


def test_trca_scores_are_moabbs(hard):
    """MOABB's TRCA predict_proba divides the (normalised-weight) scores by their sum,
    so the scores read from MOABB, divided by their sum, are exactly it."""
    Xtr, ytr, Xte, _ = hard
    est = SSVEPTRCA(sfreq=SFREQ, freqs=FREQS).fit(Xtr, ytr)
    scores = est.decision_function(Xte)
    theirs = est.estimator_.predict_proba(Xte)          # MOABB's columns: sorted names
    assert type(est.estimator_).__mro__[1].__name__ == "SSVEP_TRCA"
    cols = [list(est.estimator_.freqs_).index(str(FREQS[k])) for k in (0, 1)]
    np.testing.assert_allclose(scores / scores.sum(1, keepdims=True), theirs[:, cols], rtol=1e-9, atol=1e-12)


def test_trca_templates_are_the_class_means_of_the_filtered_trials(hard):
    """TRCA's template for class k and sub-band b is the mean of that class's training
    trials through the filter bank (Nakanishi et al. 2018): computed here with MOABB's
    own filterbank, from trials that are not centred across channels."""
    from moabb.pipelines.utils import filterbank

    Xtr, ytr, _, _ = hard
    est = SSVEPTRCA(sfreq=SFREQ, freqs=FREQS).fit(Xtr, ytr)
    m = est.estimator_
    for name, k in m.one_hot_.items():
        ours = {str(f): c for c, f in FREQS.items()}[str(name)]
        for b in range(m.n_fbands):
            expected = filterbank(Xtr[ytr == ours], SFREQ, b, m.peaks_).mean(0)
            np.testing.assert_allclose(m.templates_[k, b], expected, rtol=1e-12, atol=1e-12)


def test_ts_lr_equals_the_recipe_step_by_step(hard):
    import mne
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression

    Xtr, ytr, Xte, _ = hard
    est = make_ssvep_baseline("ssvep_ts_lr", sfreq=SFREQ, freqs=FREQS, seed=3, class_weight="balanced")
    proba = est.fit(Xtr, ytr).predict_proba(Xte)

    def extended(X):   # each band's copy of the channels, band after band
        return np.concatenate([mne.filter.filter_data(X, SFREQ, f - 0.5, f + 0.5, method="iir", verbose="error")
                               for f in (FREQS[0], FREQS[1])], axis=1)

    cov = Covariances(estimator="oas")
    ts = TangentSpace(metric="riemann").fit(cov.fit_transform(extended(Xtr)))
    lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000, random_state=3)
    lr.fit(ts.transform(cov.transform(extended(Xtr))), ytr)
    ref = lr.predict_proba(ts.transform(cov.transform(extended(Xte))))
    # the same operations on the same numbers: only BLAS summation order may differ
    np.testing.assert_allclose(proba, ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(est.predict(Xte), lr.classes_[ref.argmax(1)])
    fb = SSVEPFilterBank(SFREQ, FREQS).fit(Xtr)
    assert fb.transform(Xte).shape == Xte.shape + (2,)


# ---------------------------------------------------------------- decoding by SNR
def test_each_baseline_decodes_a_synthetic_ssvep_set():
    """At amplitude ``A = 1`` against unit white noise, ``T = 251`` samples, the
    strongest channel alone separates the classes by its periodogram: the bin of the
    other frequency holds ``T sigma^2 Exp(1)`` noise, the true bin a Rician value of
    mean square ``(A T / 2)^2``, and the noise bin wins with probability
    ``exp(-A^2 T / (8 sigma^2)) / 2``. So a classifier that uses the signal at all errs
    on almost no test trial, while one that guesses (a broken label mapping) reaches
    ``MIN_CORRECT`` of ``N_TEST`` with the binomial probability checked below."""
    amp, min_correct = 1.0, 36
    p_err = 0.5 * np.exp(-amp**2 * T / 8)
    assert N_TEST * p_err < 1e-6                        # expected errors of that weak detector
    assert binom.sf(min_correct - 1, N_TEST, 0.5) < 1e-6   # chance passes this rarely
    Xtr, ytr = ssvep_set(40, amp, seed=4)
    Xte, yte = ssvep_set(N_TEST, amp, seed=5)
    for name in SSVEP_BASELINES:
        if name == "ssvep_msetcca":
            continue                                    # below, on one channel
        est = make_ssvep_baseline(name, sfreq=SFREQ, freqs=FREQS, seed=0).fit(Xtr, ytr)
        assert (est.predict(Xte) == yte).sum() >= min_correct, name
    # MsetCCA on one channel: moabb's SSVEP_MsetCCA (1.7.2) stacks its whitened trials
    # channel by channel but reads the stack trial by trial (its within-trial blocks and
    # filter reshape), which spoils its templates when there are several channels; with
    # one channel the two orders coincide
    # one channel (the bin-level argument above is about one channel anyway); pyriemann's
    # Schaefer shrinkage, in MOABB's whitening, divides 0 by 0 for a 1x1 matrix and
    # handles it
    with np.errstate(invalid="ignore", divide="ignore"):
        one = make_ssvep_baseline("ssvep_msetcca", sfreq=SFREQ, freqs=FREQS, seed=0).fit(Xtr[:, :1], ytr)
        assert (one.predict(Xte[:, :1]) == yte).sum() >= min_correct


# ---------------------------------------------------------------- inputs
def test_freqs_from_labels():
    assert freqs_from_labels(["30Hz", "20Hz"]) == {0: 30.0, 1: 20.0}
    assert freqs_from_labels(["12.5 Hz", "8", "15hz"]) == {0: 12.5, 1: 8.0, 2: 15.0}
    with pytest.raises(ValueError, match=r"labels\[1\] must name a stimulus frequency.*got 'face'"):
        freqs_from_labels(["20Hz", "face"])
    with pytest.raises(ValueError, match="same frequency to two labels"):
        freqs_from_labels(["20Hz", "20 Hz"])
    with pytest.raises(ValueError, match="at least two"):
        freqs_from_labels(["20Hz"])
    with pytest.raises(ValueError, match="list of class names"):
        freqs_from_labels("20Hz,30Hz")


def test_builder_and_input_errors(hard):
    Xtr, ytr, _, _ = hard
    for name in SSVEP_BASELINES:
        est = make_ssvep_baseline(name, sfreq=SFREQ, freqs=[15.0, 11.0], seed=0, class_weight="balanced")
        clone(est)                                       # scikit-learn estimator rules
    first = SSVEPTRCA(SFREQ, FREQS).fit(Xtr, ytr)       # MoabbTRCA pickles (joblib workers),
    SSVEPTRCA(SFREQ, FREQS).fit(Xtr[:20], ytr[:20])     # also after another fit
    again = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(again.predict(Xtr[:5]), first.predict(Xtr[:5]))
    lr = make_ssvep_baseline("ssvep_ts_lr", sfreq=SFREQ, freqs=FREQS, seed=7, class_weight={0: 2.0, 1: 1.0})[-1]
    assert lr.class_weight == {0: 2.0, 1: 1.0} and lr.random_state == 7
    with pytest.raises(ValueError, match="name must be one of .*got 'ssvep_fbcca'"):
        make_ssvep_baseline("ssvep_fbcca", sfreq=SFREQ, freqs=FREQS, seed=0)
    with pytest.raises(ValueError, match="sfreq must exceed twice"):
        make_ssvep_baseline("ssvep_cca", sfreq=20.0, freqs=FREQS, seed=0)
    with pytest.raises(ValueError, match="no frequency for label"):
        SSVEPCCA(SFREQ, {0: 15.0, 2: 11.0}).fit(Xtr, ytr)
    with pytest.raises(ValueError, match=r"X must be an array \(n_trials, n_channels, n_times\)"):
        SSVEPTRCA(SFREQ, FREQS).fit(Xtr[:, 0], ytr)
    with pytest.raises(ValueError, match="integer labels"):
        SSVEPCCA(SFREQ, FREQS).fit(Xtr, ytr.astype(float))
    with pytest.raises(ValueError, match="n_fbands must be None or an integer from 1 to"):
        SSVEPTRCA(SFREQ, FREQS, n_fbands=5).fit(Xtr, ytr)
