"""Baselines: each wrapper against a direct call to its library on the same data.

Tolerances:
- Same library calls on the same data: the same floating-point operations, so the
  results must be identical (``assert_array_equal``).
- Our batched tangent space against nilearn's loop: both are backward-stable
  eigendecompositions and products in float64. One such step perturbs a whitened
  covariance ``W`` by about ``p * eps * ||W||`` relatively, which moves ``logm(W)`` by
  up to ``p * eps * cond(W)`` (the derivative of log at the smallest eigenvalue is
  ``1 / lambda_min``). The geometric mean repeats this once per iteration and the
  transform once more, so the budget is ``(n_iter + 1) * p * eps * max cond(W)``,
  times 10 for the constants of LAPACK's error bounds.
- Two different algorithms for the Karcher mean (nilearn's iteration, pyriemann's):
  the Karcher function is 1-strongly geodesically convex (Hadamard manifold), so a
  point whose gradient has norm g lies within distance g of the minimiser, and two
  such points within g1 + g2 of each other.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from neuroconv.brain import baselines as B
from neuroconv.brain import spd
from neuroconv.brain.zoo.classical import make_baseline

EPS = np.finfo(np.float64).eps
EEGBCI = "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"
MUSE_P300 = "eeg-notebooks/visual/P300/subject2/session1"
ABIDE = "nilearn_data/ABIDE_pcp"


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """The library references loop over small matrices; on a busy 2-core machine
    (CI with xdist) oversubscribed BLAS threads made nilearn's loop about 20x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------- data


def _random_series(rng, p, n, short=False):
    """n recordings of p correlated regions with odd lengths (some shorter than p)."""
    mix = rng.standard_normal((p, p))
    lo, hi = (p // 2, p + 5) if short else (p + 3, 4 * p)
    return [rng.standard_normal((int(rng.integers(lo, hi)), p)) @ mix + 0.3 * rng.standard_normal(p)
            for _ in range(n)]


@pytest.fixture(scope="module")
def abide_small(shared_data):
    """The first 21 labelled subjects of two ABIDE sites (real CC200 series)."""
    import pandas as pd

    root = shared_data / ABIDE
    pheno = pd.read_csv(root / "Phenotypic_V1_0b_preprocessed1.csv").set_index("FILE_ID")
    X, y, site = [], [], []
    for prefix, n in (("Leuven_1", 11), ("OHSU", 10)):
        files = sorted((root / "cpac" / "filt_noglobal").glob(f"{prefix}_*_rois_cc200.1D"))
        fids = [f.name[: -len("_rois_cc200.1D")] for f in files]
        for f, fid in [(f, fid) for f, fid in zip(files, fids) if fid in pheno.index][:n]:
            X.append(np.loadtxt(f, skiprows=1))
            y.append(int(pheno.loc[fid, "DX_GROUP"] == 1))
            site.append(pheno.loc[fid, "SITE_ID"])
    if len(X) < 21:
        pytest.skip("ABIDE subset not found")
    return X, np.array(y), np.array(site)


@pytest.fixture(scope="module")
def eegbci_epochs(shared_data):
    """S001 run 4 (imagined left/right fist): 0.5-3.5 s after T1/T2, 1-40 Hz, 160 Hz."""
    import mne

    raw = mne.io.read_raw_edf(shared_data / EEGBCI, preload=True, verbose="error")
    raw.filter(1.0, 40.0, verbose="error")
    events, ids = mne.events_from_annotations(raw, event_id={"T1": 0, "T2": 1}, verbose="error")
    ep = mne.Epochs(raw, events, ids, tmin=0.5, tmax=3.5 - 1 / 160, baseline=None, preload=True,
                    verbose="error")
    X, y = ep.get_data(copy=True), ep.events[:, 2]
    assert X.shape[1:] == (64, 480) and set(y) == {0, 1}
    return X, y


@pytest.fixture(scope="module")
def muse_p300(shared_data):
    """Muse P300 subject 2, session 1: -0.1 to 0.8 s around each stimulus, 1-30 Hz,
    256 Hz, 4 channels; y = 1 for targets (marker 2)."""
    import mne
    import pandas as pd

    files = sorted((shared_data / MUSE_P300).glob("*.csv"))
    if not files:
        pytest.skip("Muse P300 recordings not found")
    Xs, ys = [], []
    for f in files:
        df = pd.read_csv(f)
        marker = df["Marker" if "Marker" in df else "Marker0"].to_numpy()
        sig = mne.filter.filter_data(df[["TP9", "AF7", "AF8", "TP10"]].to_numpy().T.astype(np.float64), 256.0,
                                     1.0, 30.0, verbose="error")
        for i in np.flatnonzero(marker > 0):
            if i - 26 >= 0 and i + 205 <= sig.shape[1]:
                Xs.append(sig[:, i - 26: i + 205])
                ys.append(int(marker[i] == 2))
    X, y = np.stack(Xs), np.array(ys)
    assert X.shape[1:] == (4, 231) and 0.1 < y.mean() < 0.3
    return X, y


def _half_split(y, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    tr, te = idx[: len(y) // 2], idx[len(y) // 2:]
    assert set(y[tr]) == set(y)
    return tr, te


# --------------------------------------------------------------------------- tangent space


def _whitened_cond(conn, X):
    covs = B.TangentConnectivity.covariances(X)
    w = np.linalg.eigvalsh(spd.congruence(conn.whitening_, covs))
    return float((w[:, -1] / w[:, 0]).max())


@pytest.mark.parametrize("p,n,short", [(7, 11, False), (13, 9, True), (30, 17, False)])
def test_fast_tangent_equals_nilearn(p, n, short):
    from nilearn.connectome import ConnectivityMeasure

    X = _random_series(np.random.default_rng(p), p, n, short)
    ours = B.TangentConnectivity().fit(X[:-3])
    ref = ConnectivityMeasure(kind="tangent", vectorize=True, discard_diagonal=True).fit(X[:-3])
    F, F_ref = ours.transform(X), ref.transform(X)
    assert F.shape == F_ref.shape == (n, p * (p - 1) // 2)
    budget = 10 * (ours.n_iter_ + 1) * p * EPS * _whitened_cond(ours, X)
    np.testing.assert_allclose(F, F_ref, rtol=0, atol=budget)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=0, atol=budget * np.abs(ref.mean_).max())
    # fit_transform on the training set is fit then transform
    np.testing.assert_allclose(B.TangentConnectivity().fit_transform(X[:-3]), F[:-3], rtol=0, atol=budget)


def test_fast_tangent_equals_nilearn_on_abide(abide_small):
    """Real CC200 series: 200 regions, fewer volumes than regions in some subjects."""
    from nilearn.connectome import ConnectivityMeasure

    X = abide_small[0][7:19]  # 12 subjects (two sites), to keep nilearn's loop short
    ours = B.TangentConnectivity().fit(X[:-3])
    ref = ConnectivityMeasure(kind="tangent", vectorize=True, discard_diagonal=True).fit(X[:-3])
    budget = 10 * (ours.n_iter_ + 1) * 200 * EPS * _whitened_cond(ours, X)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=0, atol=budget)


def test_riemann_reference_is_the_karcher_mean():
    """nilearn's iteration and pyriemann's mean_riemann reach the same minimiser
    within the sum of their gradient norms (1-strong convexity)."""
    try:  # pyriemann >= 0.12 moved these; the old path warns
        from pyriemann.geometry.distance import distance_riemann
        from pyriemann.geometry.mean import mean_riemann
    except ImportError:
        from pyriemann.utils.distance import distance_riemann
        from pyriemann.utils.mean import mean_riemann

    X = _random_series(np.random.default_rng(5), 9, 14)
    covs = B.TangentConnectivity.covariances(X)
    ours = B.TangentConnectivity().fit(X)

    def grad_norm(m):
        w = spd.eig_map(lambda v: 1 / np.sqrt(v), m)
        return np.linalg.norm(spd.eig_map(np.log, spd.congruence(w, covs)).mean(0))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyriemann may warn before its 1e-8 criterion
        m_pyr = mean_riemann(covs, maxiter=200)
    bound = grad_norm(ours.mean_) + grad_norm(m_pyr) + 10 * 9 * EPS * np.linalg.cond(ours.mean_)
    assert distance_riemann(ours.mean_, m_pyr) <= bound
    assert grad_norm(ours.mean_) <= ours.tol * 81  # nilearn's own stopping rule, on the returned mean


def test_warm_started_mean_reaches_the_same_minimiser():
    """A warm start (the mean of a subset, as the refit on a whole training fold gets from
    its inner part) stops at the same Karcher mean within the two gradient norms (the
    same 1-strong-convexity bound as above), in no more iterations."""
    try:
        from pyriemann.geometry.distance import distance_riemann
    except ImportError:
        from pyriemann.utils.distance import distance_riemann

    X = _random_series(np.random.default_rng(6), 12, 30)  # 12 regions, 30 subjects
    covs = B.TangentConnectivity.covariances(X)
    cold = B.TangentConnectivity().fit(X)
    part = B.TangentConnectivity().fit(X[:24])
    warm = B.TangentConnectivity(init_mean=part.mean_).fit(X)
    assert warm.n_iter_ <= cold.n_iter_
    bound = cold.grad_norm_ + warm.grad_norm_ + 10 * 12 * EPS * np.linalg.cond(cold.mean_)
    assert distance_riemann(cold.mean_, warm.mean_) <= bound
    with pytest.raises(ValueError, match="init must be a \\(12, 12\\) matrix"):
        B.riemann_mean_nilearn(covs, init=np.eye(3))


def test_logeuclid_reference_equals_pyriemann():
    """reference="logeuclid": pyriemann's log-Euclidean mean, then its affine-invariant
    log map; pyriemann vectorises the upper triangle with sqrt(2) off the diagonal."""
    from pyriemann.tangentspace import TangentSpace

    p = 8
    X = _random_series(np.random.default_rng(3), p, 12, short=True)
    covs = B.TangentConnectivity.covariances(X)
    ours = B.TangentConnectivity(reference="logeuclid").fit(X[:9])
    ts = TangentSpace(metric={"mean": "logeuclid", "map": "riemann"}).fit(covs[:9])
    np.testing.assert_allclose(ours.mean_, ts.reference_, rtol=0,
                               atol=10 * p * EPS * np.linalg.cond(ts.reference_) * np.abs(ts.reference_).max())
    T = ts.transform(covs)  # (n, p (p + 1) / 2), row-major upper triangle
    iu = np.triu_indices(p)
    up = np.zeros((len(covs), p, p))
    up[:, iu[0], iu[1]] = T
    rows, cols = np.tril_indices(p, k=-1)
    expected = up[:, cols, rows] / np.sqrt(2)  # (i, j), i > j  <->  upper (j, i)
    budget = 10 * 2 * p * EPS * _whitened_cond(ours, X)
    np.testing.assert_allclose(ours.transform(X), expected, rtol=0, atol=budget)
    assert not np.allclose(ours.mean_, B.TangentConnectivity().fit(X[:9]).mean_, atol=1e-3)


@pytest.mark.parametrize("reference", ["riemann", "logeuclid"])
def test_tangent_threads_give_the_same_features(reference):
    X = _random_series(np.random.default_rng(2), 11, 13)
    one = B.TangentConnectivity(reference=reference).fit(X[:9])
    two = B.TangentConnectivity(reference=reference, n_jobs=2).fit(X[:9])
    budget = 10 * (one.n_iter_ + 1) * 11 * EPS * _whitened_cond(one, X)
    np.testing.assert_allclose(two.transform(X), one.transform(X), rtol=0, atol=budget)
    with pytest.raises(ValueError, match="n_jobs must be None, -1 or a positive integer; got 0"):
        B.TangentConnectivity(n_jobs=0).fit(X)


def test_tangent_input_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="reference must be one of .*'euclid'"):
        B.TangentConnectivity(reference="euclid").fit(_random_series(rng, 4, 3))
    with pytest.raises(ValueError, match="same number of regions"):
        B.TangentConnectivity().fit([rng.standard_normal((20, 4)), rng.standard_normal((20, 5))])
    with pytest.raises(ValueError, match="at least 2 subjects"):
        B.TangentConnectivity().fit([rng.standard_normal((20, 4))])
    with pytest.raises(ValueError, match="not fitted"):
        B.TangentConnectivity().transform(_random_series(rng, 4, 3))


# --------------------------------------------------------------------------- connectivity classifier


def _nilearn_pipeline(kind, C):
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(ConnectivityMeasure(kind=kind, vectorize=True, discard_diagonal=True),
                         StandardScaler(), LogisticRegression(C=C, max_iter=5000, random_state=0))


def test_connectivity_wrapper_equals_nilearn_pipeline(abide_small):
    X, y, _ = abide_small
    Xtr, Xte, ytr = X[0::2], X[1::2], y[0::2]
    est = make_baseline("connectivity", sfreq=1.0, seed=0, kind="correlation").fit(Xtr, ytr)
    np.testing.assert_array_equal(est.predict_proba(Xte), _nilearn_pipeline("correlation", 1.0).fit(Xtr, ytr)
                                  .predict_proba(Xte))
    np.testing.assert_array_equal(est.classes_, [0, 1])


def test_tangent_wrapper_equals_nilearn_pipeline():
    X = _random_series(np.random.default_rng(1), 12, 16)
    y = np.array([0, 1] * 8)
    est = make_baseline("connectivity", sfreq=1.0, seed=0, tangent_backend="nilearn").fit(X[:10], y[:10])
    np.testing.assert_array_equal(est.predict_proba(X[10:]), _nilearn_pipeline("tangent", 0.05).fit(X[:10], y[:10])
                                  .predict_proba(X[10:]))
    # the fast backend feeds the same standardised features, within the tangent budget
    fast = make_baseline("connectivity", sfreq=1.0, seed=0).fit(X[:10], y[:10])
    budget = 10 * (fast.connectivity_.n_iter_ + 1) * 12 * EPS * _whitened_cond(fast.connectivity_, X)
    np.testing.assert_allclose(fast.features(X) * fast.scaler_.scale_, est.features(X) * est.scaler_.scale_,
                               rtol=0, atol=2 * budget)


def test_make_baseline_connectivity_defaults():
    est = make_baseline("connectivity", sfreq=160.0, kind="correlation", seed=3)
    assert (est.kind, est.C, est.seed, est.site_centering, est.class_weight) == ("correlation", None, 3, False, None)
    assert make_baseline("connectivity", sfreq=160.0, seed=0).kind == "tangent"


def test_site_centering_semantics():
    rng = np.random.default_rng(0)
    F = rng.standard_normal((9, 4)) + 5.0
    sites = np.array(["a", "a", "a", "b", "b", "c", "c", "c", "c"])
    train = np.arange(5)  # sites a, b
    sc = B.SiteCentering().fit(F[train], groups=sites[train])
    out = sc.transform(F, groups=sites)
    np.testing.assert_array_equal(out[:3], F[:3] - F[:3].mean(0))  # a: its training mean
    np.testing.assert_array_equal(out[3:5], F[3:5] - F[3:5].mean(0))
    np.testing.assert_array_equal(out[5:], F[5:] - F[5:].mean(0))  # c unseen: its own test mean
    assert sc.transductive_groups_ == ["c"]
    # a test sample of a seen site uses the training mean, not the test rows' mean
    out_te = sc.transform(F[[0, 3]], groups=sites[[0, 3]])
    np.testing.assert_array_equal(out_te, F[[0, 3]] - np.stack([F[:3].mean(0), F[3:5].mean(0)]))
    assert sc.transductive_groups_ == []
    with pytest.raises(ValueError, match="groups="):
        B.SiteCentering().fit(F)
    with pytest.warns(UserWarning, match="site 'c' .* one sample"):
        sc.transform(F[5:6], groups=sites[5:6])


def test_connectivity_site_centering_leave_site_out(abide_small):
    X, y, site = abide_small
    te = site == site[-1]
    Xtr, Xte = [x for x, t in zip(X, te) if not t], [x for x, t in zip(X, te) if t]
    est = make_baseline("connectivity", sfreq=1.0, seed=0, kind="correlation", site_centering=True)
    with pytest.raises(ValueError, match="groups="):
        est.fit(Xtr, y[~te])
    est.fit(Xtr, y[~te], groups=site[~te])
    assert est.transductive_sites_ == []
    proba = est.predict_proba(Xte, groups=site[te])
    assert est.transductive_sites_ == [site[-1]]
    # what the classifier saw: the test site's connectomes minus their own mean, standardised
    from nilearn.connectome import ConnectivityMeasure

    F = ConnectivityMeasure(kind="correlation", vectorize=True, discard_diagonal=True).fit(Xtr).transform(Xte)
    expected = est.scaler_.transform(F - F.mean(0))
    # the two means may sum in another order: at most n * eps * max|F| apart, then / scale
    atol = len(F) * EPS * np.abs(F).max() / est.scaler_.scale_.min()
    np.testing.assert_allclose(est.features(Xte, groups=site[te]), expected, rtol=0, atol=atol)
    np.testing.assert_array_equal(proba, est.classifier_.predict_proba(est.features(Xte, groups=site[te])))


def test_connectivity_option_errors():
    X = _random_series(np.random.default_rng(0), 4, 6)
    y = np.array([0, 1] * 3)
    with pytest.raises(ValueError, match="kind must be one of .*got 'partial'"):
        B.ConnectivityClassifier(kind="partial").fit(X, y)
    with pytest.raises(ValueError, match="tangent_backend must be one of"):
        B.ConnectivityClassifier(tangent_backend="gpu").fit(X, y)
    with pytest.raises(ValueError, match="needs tangent_backend='fast'"):
        B.ConnectivityClassifier(reference="logeuclid", tangent_backend="nilearn").fit(X, y)
    with pytest.raises(ValueError, match="C must be a positive number"):
        B.ConnectivityClassifier(C=0).fit(X, y)
    with pytest.raises(ValueError, match="site_centering must be True or False"):
        B.ConnectivityClassifier(site_centering="yes").fit(X, y)


# --------------------------------------------------------------------------- EEG pipelines


def _fit_proba(est, X, y, tr, te):
    from mne.utils import use_log_level

    with use_log_level("warning"):
        return est.fit(X[tr], y[tr]).predict_proba(X[te])


def _band(sfreq, lo, hi):
    """MOABB's paradigm filter, written with MNE directly: IIR (4th-order Butterworth,
    forwards and backwards) band-pass of every epoch."""
    from mne.filter import filter_data
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(lambda X: filter_data(np.asarray(X, float), sfreq, lo, hi, method="iir",
                                                     verbose=False))


def test_band_pass_is_mne_iir_filter_and_passes_the_band():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 2, 481))
    bp = B.BandPass(sfreq=160.0, l_freq=8.0, h_freq=32.0).fit(X)
    np.testing.assert_array_equal(bp.transform(X), _band(160.0, 8.0, 32.0).fit_transform(X))
    # a 16 Hz sine passes (middle of the band), 2 Hz and 60 Hz are attenuated (4th order
    # Butterworth, forwards and backwards: more than 20 dB two octaves away)
    t = np.arange(481) / 160.0
    mid = slice(120, 361)  # away from the padded edges

    def gain(f):
        s = np.sin(2 * np.pi * f * t)[None, None]
        return np.abs(bp.transform(s)[..., mid]).max() / np.abs(s[..., mid]).max()

    assert gain(16.0) == pytest.approx(1.0, abs=0.05) and gain(2.0) < 0.1 and gain(60.0) < 0.1
    assert B.BandPass(sfreq=50.0, l_freq=1.0, h_freq=30.0).fit(X).band_ == (1.0, None)  # above Nyquist
    with pytest.raises(ValueError, match="0 < l_freq < h_freq"):
        B.BandPass(l_freq=30.0, h_freq=8.0).fit(X)
    with pytest.raises(ValueError, match="shape \\(n, channels, times\\)"):
        bp.transform(X[0])


def test_ts_lr_and_csp_lda_equal_their_libraries(eegbci_epochs):
    from mne.decoding import CSP
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = eegbci_epochs
    tr, te = _half_split(y)
    ref = make_pipeline(_band(160.0, 8.0, 32.0), Covariances(estimator="oas"), TangentSpace(metric="riemann"),
                        StandardScaler(),
                        LogisticRegression(C=0.3, max_iter=5000, random_state=0, class_weight="balanced"))
    est = make_baseline("ts_lr", sfreq=160.0, seed=0, C=0.3, class_weight="balanced")
    np.testing.assert_array_equal(_fit_proba(est, X, y, tr, te), _fit_proba(ref, X, y, tr, te))
    ref = make_pipeline(_band(160.0, 8.0, 32.0), CSP(n_components=4, reg="ledoit_wolf", log=True),
                        LinearDiscriminantAnalysis(priors=[0.5, 0.5], solver="lsqr", shrinkage="auto"))
    est = make_baseline("csp_lda", sfreq=160.0, seed=0, class_weight="balanced", n_classes=2)
    np.testing.assert_array_equal(_fit_proba(est, X, y, tr, te), _fit_proba(ref, X, y, tr, te))
    # without its band (band=None) it is the broadband pipeline
    ref = make_pipeline(CSP(n_components=4, reg="ledoit_wolf", log=True),
                        LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
    est = make_baseline("csp_lda", sfreq=160.0, seed=0, band=None)
    np.testing.assert_array_equal(_fit_proba(est, X, y, tr, te), _fit_proba(ref, X, y, tr, te))


def test_xdawn_ts_and_erp_lda_equal_their_libraries(muse_p300):
    from mne.decoding import Vectorizer
    from pyriemann.estimation import XdawnCovariances
    from pyriemann.tangentspace import TangentSpace
    from scipy.signal import decimate
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = muse_p300
    tr, te = _half_split(y)
    ref = make_pipeline(_band(256.0, 1.0, 24.0), XdawnCovariances(nfilter=4, estimator="oas"),
                        TangentSpace(metric="riemann"), StandardScaler(),
                        LogisticRegression(C=1.0, max_iter=5000, random_state=0))
    np.testing.assert_array_equal(_fit_proba(make_baseline("xdawn_ts", sfreq=256.0, seed=0), X, y, tr, te),
                                  _fit_proba(ref, X, y, tr, te))
    # erp_lda: 1-24 Hz, decimate 256 Hz by 8 (to 32 Hz), then MNE's Vectorizer and shrinkage LDA
    Xf = _band(256.0, 1.0, 24.0).fit_transform(X)
    Xd = decimate(Xf, 8, ftype="fir", zero_phase=True, axis=-1)
    assert Xd.shape[1:] == (4, 29)
    ref = make_pipeline(Vectorizer(), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
    est = make_baseline("erp_lda", sfreq=256.0, seed=0)
    np.testing.assert_array_equal(_fit_proba(est, X, y, tr, te), _fit_proba(ref, Xd, y, tr, te))
    assert est[1].factor_ == 8


def test_epoch_decimate_factor():
    from scipy.signal import decimate

    X = np.random.default_rng(0).standard_normal((2, 3, 100))
    np.testing.assert_array_equal(B.EpochDecimate(sfreq=50.0, target_sfreq=32.0).fit(X).transform(X), X)  # q = 1
    np.testing.assert_array_equal(B.EpochDecimate(sfreq=50.0).fit(X).transform(X), X)  # q = 1
    np.testing.assert_array_equal(B.EpochDecimate(sfreq=160.0).fit(X).transform(X),  # q = 5
                                  decimate(X, 5, ftype="fir", zero_phase=True, axis=-1))
    assert B.EpochDecimate(sfreq=160.0).fit(X).transform(X).shape == (2, 3, 20)
    with pytest.raises(ValueError, match="target_sfreq must be a positive"):
        B.EpochDecimate(target_sfreq=0).fit(X)


# --------------------------------------------------------------------------- registry


def test_registry_and_errors():
    """Every classical baseline is a zoo entry with its own settings and pipeline: the
    head has a regulariser C exactly when it is a logistic regression, and the LDA heads
    get uniform priors for balanced classes."""
    from sklearn.linear_model import LogisticRegression

    from neuroconv.brain import zoo
    from neuroconv.brain.zoo.classical import _classical

    names = sorted(_classical())
    assert names == ["bandpower", "connectivity", "csp_lda", "erp_lda", "ts_lr", "xdawn_ts"]
    for name in names:
        est = make_baseline(name, sfreq=128.0, seed=0)
        assert hasattr(est, "fit") and hasattr(est, "predict_proba")
        e = zoo.ZOO[name]
        settings = e.settings() if e.settings else None
        features, head = e.options["pipeline"](settings, sfreq=128.0, seed=0, C=0.5, class_weight="balanced",
                                               n_classes=2)
        assert hasattr(features, "transform")
        if isinstance(head, LogisticRegression):
            assert (head.C, head.class_weight) == (0.5, "balanced")
        else:
            np.testing.assert_array_equal(head.priors, [0.5, 0.5])
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        make_baseline("svm", sfreq=128.0, seed=0)
    with pytest.raises(ValueError, match="name must be a classical baseline"):
        make_baseline("eegnet", sfreq=128.0, seed=0)
    with pytest.raises(ValueError, match=r"among \['estimator', 'band'\]; got \['nfilter'\]"):
        make_baseline("ts_lr", sfreq=128.0, seed=0, nfilter=2)
    with pytest.raises(ValueError, match="needs n_classes"):
        make_baseline("csp_lda", sfreq=128.0, seed=0, class_weight="balanced")
    with pytest.raises(ValueError, match="class_weight must be None or 'balanced'"):
        make_baseline("ts_lr", sfreq=128.0, seed=0, class_weight="auto")


def test_import_stays_light():
    code = ("import sys, neuroconv.brain.baselines; "
            "print(sorted(m for m in ('pyriemann', 'braindecode', 'nilearn', 'mne') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- braindecode

SHAPES = [  # (n_chans, n_times, sfreq): EEGBCI 3 s epochs, Muse P300 epochs, short low-rate windows
    (64, 480, 160.0), (4, 231, 256.0), (19, 100, 50.0)]


def _reference_net(name, n_chans, n_times, sfreq):
    """braindecode's class called directly with the sizes braindecode_net documents."""
    from neuroconv.data.braindecode import import_braindecode

    braindecode = import_braindecode()
    bm = import_braindecode("braindecode.models")
    if name == "eegnet":
        cls = getattr(bm, "EEGNet", None) or bm.EEGNetv4
        return cls(n_chans=n_chans, n_outputs=3, n_times=n_times, final_conv_length="auto",
                   kernel_length=int(round(sfreq / 2)))
    filt = int(round(0.1 * sfreq))
    pool = min(int(round(0.3 * sfreq)), n_times - filt + 1)
    kw = {"add_log_softmax": False} if braindecode.__version__ < "1" else {}
    return bm.ShallowFBCSPNet(n_chans=n_chans, n_outputs=3, n_times=n_times, final_conv_length="auto",
                              filter_time_length=filt, pool_time_length=pool,
                              pool_time_stride=min(int(round(0.06 * sfreq)), pool), **kw)


@pytest.mark.parametrize("name", ["eegnet", "shallow_fbcsp"])
@pytest.mark.parametrize("n_chans,n_times,sfreq", SHAPES)
def test_braindecode_net_equals_module(name, n_chans, n_times, sfreq):
    net = B.braindecode_net(name, n_chans=n_chans, n_outputs=3, n_times=n_times, sfreq=sfreq).eval()
    ref = _reference_net(name, n_chans, n_times, sfreq).eval()
    ref.load_state_dict(net.net.state_dict())
    assert not any(isinstance(m, torch.nn.LogSoftmax) for m in net.modules())
    x = torch.randn(5, n_times, n_chans)  # (B L C)
    batch = {"x": x, "mask": torch.ones(5, n_times, dtype=torch.bool), "sfreq": torch.full((5,), sfreq), "key": "k"}
    with torch.no_grad():
        logits = net(batch)
        expected = ref(x.transpose(1, 2).contiguous())  # (B C T)
    assert logits.shape == (5, 3)
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    # padded steps are ignored: garbage there gives the logits of zeros there
    mask = torch.ones(5, n_times, dtype=torch.bool)
    mask[:, -7:] = False
    x_pad = x.clone()
    x_pad[:, -7:] = 1e3
    x_zero = x.clone()
    x_zero[:, -7:] = 0
    with torch.no_grad():
        torch.testing.assert_close(net({"x": x_pad, "mask": mask}), ref(x_zero.transpose(1, 2).contiguous()),
                                   rtol=0, atol=0)
        # a shorter batch is zero-padded on the right to n_times
        torch.testing.assert_close(net({"x": x[:, :-7], "mask": mask[:, :-7]}),
                                   ref(x_zero.transpose(1, 2).contiguous()), rtol=0, atol=0)


def test_braindecode_net_errors():
    with pytest.raises(ValueError, match="eegnet needs n_times >= 32"):
        B.braindecode_net("eegnet", n_chans=4, n_outputs=2, n_times=20, sfreq=128.0)
    with pytest.raises(ValueError, match="shallow_fbcsp needs n_times >= 17"):
        B.braindecode_net("shallow_fbcsp", n_chans=4, n_outputs=2, n_times=10, sfreq=160.0)
    with pytest.raises(ValueError, match="name must be one of"):
        B.braindecode_net("deep4", n_chans=4, n_outputs=2, n_times=200, sfreq=128.0)
    with pytest.raises(ValueError, match="n_outputs must be a positive integer"):
        B.braindecode_net("eegnet", n_chans=4, n_outputs=0, n_times=200, sfreq=128.0)
    net = B.braindecode_net("shallow_fbcsp", n_chans=4, n_outputs=2, n_times=100, sfreq=100.0)
    with pytest.raises(ValueError, match="built for n_times=100"):
        net({"x": torch.zeros(1, 120, 4), "mask": torch.ones(1, 120, dtype=torch.bool)})


def test_batched_ledoit_wolf_equals_sklearn_per_recording():
    """TangentConnectivity.covariances batches recordings of equal length through one
    estimator; each equals scikit-learn's LedoitWolf of that recording (the same float64
    sums, in another order: n·eps of the covariance's scale)."""
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(3)
    X = [rng.standard_normal((T, 7)) @ rng.standard_normal((7, 7)) for T in (31, 48, 31, 17, 48, 31)]
    got = B.TangentConnectivity.covariances(X)
    for x, c in zip(X, got):
        want = LedoitWolf(store_precision=False).fit(x).covariance_
        np.testing.assert_allclose(c, want, rtol=0, atol=len(x) * 7 * EPS * np.abs(want).max())
