r"""Free-energy differences between canonical ensembles from their samples: the multistate
Bennett acceptance ratio (MBAR; M. R. Shirts and J. D. Chodera, J. Chem. Phys. 129, 124105
(2008), eq. (11)), which for two states is Bennett's acceptance ratio (C. H. Bennett,
J. Comput. Phys. 22, 245 (1976), eq. (8) with the optimal constant).

With ``N_k`` samples from each state ``k`` (pooled, ``n = 1..sum N_k``) and the reduced
energies ``u_in = V_i(x_n)/kT`` of every state at every sample, the dimensionless free energies
``f_i = -ln Z_i`` (up to a common constant; ``f_0 = 0`` here) solve

.. math:: e^{-f_i} = \sum_n \frac{e^{-u_{in}}}{\sum_k N_k e^{f_k - u_{kn}}} ,

the stationary point of the convex function
``F(f) = sum_n ln sum_k N_k e^{f_k - u_kn} - sum_k N_k f_k``; it is found by Newton's method
with a backtracking line search on ``F`` (the Hessian is that of a log-sum-exp, positive
semi-definite with the constant mode removed by ``f_0 = 0``).

Only differences of reduced energies at the same sample enter, so a translational zero mode of
a periodic box (which makes each ``Z_j`` alone hard to estimate by importance sampling from a
fitted proposal) does not. The estimator needs overlap between the states' distributions;
without it the standard error (bootstrap over independent blocks, :func:`bootstrap_q`) is large.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def mbar_free_energies(u, counts, tol=1e-12, maxiter=200):
    """Dimensionless free energies ``f`` (J,) with ``f[0] = 0`` (``Z_j / Z_0 = exp(-f_j)``).

    Parameters
    ----------
    u : ndarray, (J, n)
        Reduced energies ``V_i(x_n)/kT`` (dimensionless) of every state ``i`` at every pooled
        sample ``n`` (the samples of state 0 first, then of state 1, ...; only the counts matter).
    counts : array_like of int, (J,)
        Samples drawn from each state, ``sum(counts) == n``; every count must be > 0.
    """
    u = np.asarray(u, dtype=np.float64)
    N = np.asarray(counts, dtype=np.float64)
    J, n = u.shape
    if N.shape != (J,) or N.sum() != n or np.any(N <= 0):
        raise ValueError(f"mbar: counts {counts} do not match {J} states x {n} samples "
                         "(every state needs samples)")
    u = u - u.min(axis=0, keepdims=True)          # a common shift per sample changes nothing
    logN = np.log(N)
    f = np.zeros(J)
    # start from the free-energy perturbation of each state from state 0's samples
    s0 = slice(0, int(N[0]))
    for i in range(1, J):
        f[i] = -(logsumexp(-(u[i, s0] - u[0, s0])) - np.log(N[0]))

    def objective(f):
        a = f[:, None] - u + logN[:, None]
        lse = logsumexp(a, axis=0)
        W = np.exp(a - lse)                        # N_k e^{f_k - u_kn} / sum_k (...) per sample
        return lse.sum() - N @ f, W.sum(axis=1) - N, W

    F, g, W = objective(f)
    for _ in range(maxiter):
        if np.max(np.abs(g[1:])) < tol * n:
            break
        H = np.diag(W.sum(axis=1)) - W @ W.T
        step = np.zeros(J)
        step[1:] = np.linalg.solve(H[1:, 1:], -g[1:])
        if np.max(np.abs(step)) < 1e-13:
            break
        t = 1.0
        while True:
            F1, g1, W1 = objective(f + t * step)
            # Armijo decrease, or (near the solution, where F is flat to round-off) a smaller
            # gradient
            if F1 <= F + 1e-4 * t * (g @ step) or np.max(np.abs(g1[1:])) < np.max(np.abs(g[1:])):
                break
            if t < 1e-10:
                return f
            t *= 0.5
        f, F, g, W = f + t * step, F1, g1, W1
    return f


def probabilities(f):
    """``q_j = Z_j / sum_k Z_k`` (J,) from dimensionless free energies ``f``."""
    f = np.asarray(f, dtype=np.float64)
    return np.exp(-f - logsumexp(-f))


def bootstrap_q(u_blocks, nboot, rng):
    """``(q, q_se)``: MBAR probabilities of every state and their bootstrap standard errors.

    ``u_blocks[k]`` (B_k, S_k, J) holds the reduced energies of all J states at the samples of
    state ``k``, grouped in B_k statistically independent blocks (e.g. MCMC chains) of S_k
    correlated samples; the bootstrap resamples whole blocks, so it accounts for the
    correlation within a block. ``rng`` is a numpy Generator."""
    def q_of(blocks):
        u = np.concatenate([b.reshape(-1, b.shape[-1]) for b in blocks], axis=0).T
        return probabilities(mbar_free_energies(u, [b.shape[0] * b.shape[1] for b in blocks]))
    q = q_of(u_blocks)
    reps = np.array([q_of([b[rng.integers(0, b.shape[0], b.shape[0])] for b in u_blocks])
                     for _ in range(int(nboot))])
    return q, reps.std(axis=0, ddof=1)
