"""Gaussian-weighted local polynomial regression of a field sampled on the swarm.

At a target ``x`` the field values ``f_I`` carried by the trajectories are fitted by a polynomial of
degree ``order`` in the scaled offsets ``t = (x_I - x) / h`` (``h``: the regression bandwidth)::

    minimise  sum_I w_I K_h(x_I - x) | f_I - sum_p beta_p t^{a_p} |^2  +  ridge * S_0 * sum_{p>0} beta_p^2

with ``S_0 = sum_I w_I K_h(x_I - x)``. The normal equations need the moments
``S_a = sum_I w_I K (t_I)^a`` for ``|a| <= 2 order`` (Gram matrix ``A_pq = S_{a_p + a_q}``) and
``T_a[f] = sum_I w_I K (t_I)^a f_I`` for ``|a| <= order`` (right-hand sides); both are kernel sums
computed by the engine. The ridge term acts on the non-constant coefficients only, so constants are
reproduced exactly (trace of rho stays exactly 1, derivatives of the trace exactly 0); it damps the
derivative estimates where the local design is degenerate (isolated trajectories at the swarm's
edge). It biases the fitted derivatives in the bulk by a relative amount of order ``ridge`` divided
by the smallest eigenvalue of ``A / S_0`` (about 0.36 for a locally uniform swarm in 1D).

The fit is linear in ``f``: real and imaginary parts of a Hermitian matrix field regressed with the
same weights give Hermitian estimates.

Derivatives from the coefficients: ``d_j f = beta_{e_j} / h_j``,
``d_j d_j f = 2 beta_{2 e_j} / h_j^2``, ``d_j d_k f = beta_{e_j + e_k} / (h_j h_k)`` (j != k).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .multiindex import index_of, multi_indices


def gram_index(D: int, order: int) -> np.ndarray:
    """``(P, P)`` table: row in ``multi_indices(D, 2 order)`` of ``a_p + a_q``."""
    basis = multi_indices(D, order)
    idx = index_of(multi_indices(D, 2 * order))
    P = basis.shape[0]
    out = np.empty((P, P), dtype=np.int64)
    for p in range(P):
        for q in range(P):
            out[p, q] = idx[tuple(int(v) for v in basis[p] + basis[q])]
    return out


@njit(parallel=True, cache=True)
def _solve(X, cS, cT, P, m, gidx, ridge, B, beta):
    # Cholesky solves vectorised across blocks of B targets (the target index is innermost so that
    # the square roots, divisions and updates run in SIMD lanes).
    M = X.shape[0]
    nblk = (M + B - 1) // B
    for blk in prange(nblk):
        t0 = blk * B
        nb = min(M, t0 + B) - t0
        A = np.empty((P, P, B))
        inv = np.empty((P, B))
        y = np.empty((P, m, B))
        d = np.empty(B)
        for p in range(P):
            for q in range(P):
                g = gidx[p, q]
                for b in range(nb):
                    A[p, q, b] = X[t0 + b, cS + g]
        for p in range(1, P):
            for b in range(nb):
                A[p, p, b] += ridge
        for j in range(P):
            for b in range(nb):
                d[b] = A[j, j, b]
            for k in range(j):
                for b in range(nb):
                    d[b] -= A[j, k, b] * A[j, k, b]
            for b in range(nb):
                inv[j, b] = 1.0 / np.sqrt(d[b]) if d[b] > 0.0 else np.nan
            for i in range(j + 1, P):
                for b in range(nb):
                    d[b] = A[i, j, b]
                for k in range(j):
                    for b in range(nb):
                        d[b] -= A[i, k, b] * A[j, k, b]
                for b in range(nb):
                    A[i, j, b] = d[b] * inv[j, b]
        for i in range(P):
            for f in range(m):
                for b in range(nb):
                    y[i, f, b] = X[t0 + b, cT + i * m + f]
            for k in range(i):
                for f in range(m):
                    for b in range(nb):
                        y[i, f, b] -= A[i, k, b] * y[k, f, b]
            for f in range(m):
                for b in range(nb):
                    y[i, f, b] *= inv[i, b]
        for i in range(P - 1, -1, -1):
            for k in range(i + 1, P):
                for f in range(m):
                    for b in range(nb):
                        y[i, f, b] -= A[k, i, b] * y[k, f, b]
            for f in range(m):
                for b in range(nb):
                    y[i, f, b] *= inv[i, b]
        for b in range(nb):
            for i in range(P):
                for f in range(m):
                    beta[t0 + b, i, f] = y[i, f, b]


def solve_normal_equations(S, T, gidx, ridge, block=64):
    """Solve ``(A + ridge diag(0, 1, ..., 1)) beta = T`` at every target (Cholesky).

    Parameters
    ----------
    S : (M, n_mom) moments of the weights; T : (M, P, m) moments of the fields;
    gidx : (P, P) Gram index table (:func:`gram_index`); ridge : float >= 0, in the units of ``S``.

    Returns ``(M, P, m)``. A target whose regularised Gram matrix is not numerically positive
    definite (possible only with ``ridge = 0`` or where no trajectory carries weight) gets NaN.
    """
    M, P, m = T.shape
    X = np.concatenate([np.asarray(S, np.float64), np.asarray(T, np.float64).reshape(M, P * m)], axis=1)
    beta = np.empty((M, P, m))
    _solve(X, 0, S.shape[1], P, m, gidx, float(ridge), int(block), beta)
    return beta


def solve_from_columns(X, cS, cT, P, m, gidx, ridge, beta, block=64):
    """:func:`solve_normal_equations` reading ``S = X[:, cS:cS + n_mom]`` and
    ``T = X[:, cT:cT + P m]`` (laid out ``(P, m)``) in place, writing ``beta`` ``(M, P, m)``."""
    _solve(X, int(cS), int(cT), int(P), int(m), gidx, float(ridge), int(block), beta)
    return beta
