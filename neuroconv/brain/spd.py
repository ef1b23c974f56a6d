"""SPD-matrix tools shared by covconv and the baselines: Ledoit-Wolf covariances,
functions of symmetric matrices, tangent vectors and the geometric (Karcher) mean.

- :func:`ledoit_wolf_covariance` (torch, differentiable, batched, masked) is
  scikit-learn's ``ledoit_wolf`` estimator; :func:`ledoit_wolf_covariances` runs it over a
  list of ``(T_i, p)`` recordings in batches of equal length (tested equal to
  ``sklearn.covariance.LedoitWolf``, much faster than one estimator per recording).
- :func:`riemann_mean_nilearn` is nilearn's geometric-mean iteration, batched and
  optionally threaded, with an optional warm start.
- :func:`spd_function`, :func:`tangent_vector` (torch) and :func:`eig_map`,
  :func:`congruence`, :func:`log_whitened` (numpy).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["ledoit_wolf_covariance", "ledoit_wolf_covariances", "spd_function", "tangent_vector", "eig_map",
           "congruence", "log_whitened", "resolve_n_jobs", "riemann_mean_nilearn"]


def ledoit_wolf_covariance(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Ledoit-Wolf shrunk covariance of each sequence, differentiable.

    ``x (..., C, L)``, ``mask (..., L)`` (valid steps) -> ``(..., C, C)``. The same
    estimator as :func:`sklearn.covariance.ledoit_wolf` (data centred on the valid steps,
    covariance normalised by the number of steps, shrinkage towards ``mu I`` with the
    Ledoit-Wolf intensity), in the dtype of ``x``.
    """
    if mask is None:
        mask = torch.ones(x.shape[:-2] + x.shape[-1:], dtype=torch.bool, device=x.device)
    m = mask.to(x.dtype).unsqueeze(-2)  # (... 1 L)
    n = m.sum(-1, keepdim=True).clamp_min(1.0)  # (... 1 1)
    xc = (x - (x * m).sum(-1, keepdim=True) / n) * m  # (... C L), zero where masked
    n = n[..., 0]  # (... 1)
    p = x.shape[-2]
    emp = xc @ xc.transpose(-1, -2) / n[..., None]  # (... C C)
    x2 = xc**2
    trace = x2.sum(-1) / n  # (... C): the diagonal of emp
    mu = trace.sum(-1, keepdim=True) / p  # (... 1)
    beta_ = (x2 @ x2.transpose(-1, -2)).sum((-1, -2))  # (...)
    delta_ = (emp**2).sum((-1, -2))  # == sum((X^T X)^2) / n^2
    beta = (beta_ / n[..., 0] - delta_) / (p * n[..., 0])
    delta = (delta_ - 2 * mu[..., 0] * trace.sum(-1) + p * mu[..., 0] ** 2) / p
    beta = torch.minimum(beta, delta)
    shrink = torch.where(delta > 0, beta / delta.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(delta))
    eye = torch.eye(p, dtype=x.dtype, device=x.device)
    return (1 - shrink)[..., None, None] * emp + (shrink * mu[..., 0])[..., None, None] * eye


def spd_function(C: torch.Tensor, fn) -> torch.Tensor:
    """``V fn(λ) Vᵀ`` for symmetric ``C (..., n, n)`` with eigenpairs ``(λ, V)``."""
    vals, vecs = torch.linalg.eigh(C)
    return (vecs * fn(vals).unsqueeze(-2)) @ vecs.transpose(-1, -2)


def tangent_vector(C: torch.Tensor, whitener: torch.Tensor, diagonal: bool = False) -> torch.Tensor:
    """nilearn's tangent connectivity features: the lower triangle of ``log(W C W)``
    (``W`` the reference's inverse square root). ``diagonal=False``: the strict lower
    triangle, ``(..., n(n-1)/2)``, as ``ConnectivityMeasure(discard_diagonal=True)``;
    ``True``: with the diagonal divided by sqrt(2) (nilearn's ``sym_matrix_to_vec``),
    ``(..., n(n+1)/2)``."""
    log = spd_function(whitener @ C @ whitener, lambda v: torch.log(v.clamp_min(torch.finfo(v.dtype).tiny)))
    n = C.shape[-1]
    i, j = torch.tril_indices(n, n, offset=0 if diagonal else -1, device=C.device)
    v = log[..., i, j]
    return v / torch.where(i == j, 2**0.5, 1.0).to(v.dtype) if diagonal else v


def ledoit_wolf_covariances(series) -> np.ndarray:
    """Ledoit-Wolf covariances ``(n, p, p)`` float64 of a list of ``(T_i, p)`` arrays:
    scikit-learn's ``LedoitWolf(store_precision=False)`` of each (signals centred on their
    own mean), computed by :func:`ledoit_wolf_covariance` in batches of equal ``T``."""
    out = np.empty((len(series), series[0].shape[1], series[0].shape[1]))
    lengths = np.array([len(x) for x in series])
    for T in np.unique(lengths):
        rows = np.flatnonzero(lengths == T)
        x = torch.as_tensor(np.stack([np.asarray(series[i], dtype=np.float64) for i in rows])).transpose(1, 2)
        out[rows] = ledoit_wolf_covariance(x).numpy()  # (b p T) -> (b p p)
    return out


def eig_map(fn, mats):
    """``fn`` applied to the eigenvalues of symmetric ``mats (..., p, p)``, batched
    (``np.linalg.eigh``: one LAPACK call per matrix, no Python loop)."""
    w, v = np.linalg.eigh(mats)
    return (v * fn(w)[..., None, :]) @ np.swapaxes(v, -1, -2)


def congruence(w, mats):
    """``w @ mats @ w`` for one symmetric ``w (p, p)`` and a stack ``mats (n, p, p)``."""
    return np.matmul(np.matmul(w, mats), w)


def resolve_n_jobs(n_jobs) -> int:
    import os

    if n_jobs is None:
        return 1
    if n_jobs == -1:
        return os.cpu_count() or 1
    if not (isinstance(n_jobs, (int, np.integer)) and n_jobs >= 1):
        raise ValueError(f"n_jobs must be None, -1 or a positive integer; got {n_jobs!r}.")
    return int(n_jobs)


def log_whitened(w, covs, n_jobs: int | None = None):
    """``logm(w @ C @ w)`` for each ``C`` in ``covs (n, p, p)`` -> ``(n, p, p)``
    (``logm(C)`` when ``w`` is None).

    With ``n_jobs > 1`` (or -1: all CPUs) the subjects are split into chunks that run
    in threads (LAPACK releases the GIL), each with one BLAS thread. The result does
    not depend on ``n_jobs``.
    """
    n_jobs = resolve_n_jobs(n_jobs)

    def log_chunk(c):
        return eig_map(np.log, c if w is None else congruence(w, c))

    if n_jobs == 1 or len(covs) < 2:
        return log_chunk(covs)
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    chunks = np.array_split(covs, min(n_jobs, len(covs)))
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(len(chunks)) as pool:
        return np.concatenate(list(pool.map(log_chunk, chunks)))


def riemann_mean_nilearn(covs, *, max_iter: int = 30, tol: float = 1e-7, n_jobs: int | None = None, init=None):
    """The geometric (affine-invariant, Karcher) mean of SPD matrices ``covs (n, p, p)``,
    by the same iteration as ``nilearn.connectome``'s ``_geometric_mean`` (Fletcher &
    Joshi 2007, algorithm 3, as ``ConnectivityMeasure(kind="tangent")`` calls it:
    ``max_iter=30, tol=1e-7``), batched over subjects.

    Same start (the arithmetic mean), same step rule (step 1, halved whenever the
    gradient norm grows), same stop (``||grad||_F / p**2 < tol``) and the same update
    ``M <- M^1/2 expm(step * mean_i logm(M^-1/2 C_i M^-1/2)) M^1/2``. So it returns
    nilearn's matrix up to float64 rounding, including when nilearn stops at
    ``max_iter`` before its tolerance. ``n_jobs``: see :func:`log_whitened`.

    ``init``: a warm start ``(p, p)`` instead of the arithmetic mean, e.g. the mean of a
    subset of ``covs`` (the inner training part of a cross-validation fold when the
    model is refitted on the whole fold). The iteration and its stopping rule are the
    same, so it stops at the same fixed point to within the tolerance, usually after a
    few iterations; it is no longer nilearn's matrix to float64 rounding.
    Returns ``(mean (p, p), n_iter, grad_norm)``.
    """
    mean = covs.mean(axis=0) if init is None else np.array(init, dtype=np.float64)
    if mean.shape != covs.shape[1:]:
        raise ValueError(f"init must be a ({covs.shape[1]}, {covs.shape[2]}) matrix; got shape {mean.shape}.")
    norm_old, step, norm, n_iter = np.inf, 1.0, np.inf, 0
    for n_iter in range(1, max_iter + 1):
        vals, vecs = np.linalg.eigh(mean)
        inv_sqrt = (vecs / np.sqrt(vals)) @ vecs.T
        logs_mean = log_whitened(inv_sqrt, covs, n_jobs).mean(axis=0)
        if np.isnan(logs_mean).any():
            raise FloatingPointError("NaN after the matrix logarithm: a covariance is not positive definite.")
        norm = np.linalg.norm(logs_mean)
        sqrt_m = (vecs * np.sqrt(vals)) @ vecs.T
        mean = sqrt_m @ eig_map(lambda w: np.exp(w * step), logs_mean) @ sqrt_m
        if norm < norm_old:
            norm_old = norm
        elif norm > norm_old:
            step /= 2.0
            norm = norm_old
        if norm / mean.size < tol:
            break
    return mean, n_iter, norm
