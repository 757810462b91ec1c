"""Bandwidth rules for the swarm fields.

Normal-reference rule (per degree of freedom ``j``, diagonal bandwidth)::

    h_j = scale * c(D, r) * s_j * N_eff^(-1 / (D + 2 r + 4)),
    c(D, r) = (4 / (D + 2 r + 2))^(1 / (D + 2 r + 4))

``r`` is the highest derivative order the bandwidth is tuned for. For a Gaussian kernel and a
Gaussian swarm of standard deviations ``s_j`` this ``h`` minimises the asymptotic mean integrated
squared error of the ``r``-th derivative of the density estimate (Silverman 1986 for ``r = 0``,
where ``c(1, 0) = 1.06``; Chacon, Duong & Wand, Stat. Sinica 21, 807 (2011) for general ``r``):
the bias grows like ``h^2`` and the variance of an ``r``-th derivative like ``1 / (N h^(D + 2r))``.
The exponent is the part that matters for convergence; the constant is the Gaussian reference.

* density and its log-derivatives: ``r = density_deriv`` (default 1, because ``grad ln n`` - the
  osmotic velocity - is the quantity the coupled methods use; ``r = 0`` would make the variance of
  the gradient decay only like ``N^(-2/5)`` in 1D instead of ``N^(-4/7)``; use ``r = 3`` if the
  third derivatives for the quantum force matter most);
* local quadratic regression of rho: ``r = 2``, rate ``N^(-1/(D+8))``. A local quadratic estimate of
  a second derivative has bias ``O(h^2)`` and variance ``O(1 / (N h^(D+4)))`` - the same structure
  as a second density derivative (the regression is a ratio of kernel-weighted moment sums) - so the
  same normal-reference rule is used. It is larger than the density bandwidth: derivatives need
  more smoothing.

``s_j`` is, by default (``spread="fisher"``, :func:`mqcd.fields.estimate.fisher_spread`), the
Fisher-information width ``F_j^(-1/2)`` with ``F_j = int n (-d_j^2 ln n)``: equal to the standard
deviation for a Gaussian swarm (so the rule is exactly the normal reference there), but the
(harmonic) mean width of the packets for a swarm that has split into separated packets, where the
standard deviation measures their separation and oversmooths each packet by a large factor.
Alternatives: the weighted standard deviation (``"std"``) or Silverman's ``min(std, IQR / 1.349)``
(``"silverman"``). ``N_eff = (sum w)^2 / sum w^2`` is the effective number of trajectories (Kish)
for weighted swarms.

Adaptive (Abramson 1982) factors: ``lam_I = (n_pilot(x_I) / g)^(-alpha)`` with ``g`` the weighted
geometric mean of the pilot density over the swarm and ``alpha = 1/2``: wider kernels where the
swarm is sparse (tails), narrower where it is dense. Clipped to ``[1/lam_max, lam_max]``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .distributed import exact_sums

#: IQR of a unit normal distribution
_IQR_NORMAL = 1.3489795003921634


def effective_count(weights, comm=None) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2`` (``N`` for equal weights); exact sums,
    over all ranks of ``comm`` if given (then ``weights`` are this rank's)."""
    w = np.asarray(weights, dtype=np.float64)
    s = exact_sums(np.stack([w, w * w], axis=1), comm)
    return float(s[0] ** 2 / s[1])


@njit(cache=True)
def _group_moments(v, w, lab, G, quantiles):
    """One pass over values ``v`` sorted ascending (weights ``w``, group labels ``lab`` in the
    same order; labels outside ``0..G-1`` are ignored): per group the weighted standard
    deviation and the weighted midpoint quantiles ``quantiles`` (the k-th value of a group sits
    at cumulative weight ``(W_k - w_k / 2) / W``, linear in between, clamped at the ends; the
    rule of ``numpy.interp`` on those positions). Sequential sums in the sorted order: the same
    bits for the same rows. Returns ``(std (G,), q (G, nq), count (G,))``."""
    n = v.size
    nq = quantiles.size
    W = np.zeros(G)
    S = np.zeros(G)
    cnt = np.zeros(G, dtype=np.int64)
    for i in range(n):
        g = lab[i]
        if 0 <= g < G:
            W[g] += w[i]
            S[g] += w[i] * v[i]
            cnt[g] += 1
    mean = S / np.where(W > 0, W, 1.0)
    V = np.zeros(G)
    C = np.zeros(G)
    q = np.full((G, nq), np.nan)
    done = np.zeros((G, nq), dtype=np.bool_)
    pprev = np.zeros(G)
    vprev = np.zeros(G)
    seen = np.zeros(G, dtype=np.int64)
    for i in range(n):
        g = lab[i]
        if not 0 <= g < G:
            continue
        d = v[i] - mean[g]
        V[g] += w[i] * d * d
        C[g] += w[i]
        pos = (C[g] - 0.5 * w[i]) / W[g]
        for a in range(nq):
            if not done[g, a] and pos >= quantiles[a]:
                if seen[g] == 0 or pos == pprev[g]:      # first row of the group
                    q[g, a] = v[i]
                else:
                    q[g, a] = vprev[g] + ((quantiles[a] - pprev[g]) * (v[i] - vprev[g])
                                          / (pos - pprev[g]))
                done[g, a] = True
        pprev[g] = pos
        vprev[g] = v[i]
        seen[g] += 1
    for g in range(G):
        for a in range(nq):
            if cnt[g] and not done[g, a]:
                q[g, a] = vprev[g]
    std = np.sqrt(np.maximum(V / np.where(W > 0, W, 1.0), 0.0))
    return std, q, cnt


def sort_rows(v, hint=None):
    """Stable ascending order of the values ``v`` (N,); ``hint``: the order of a previous,
    nearby state of the same rows (warm start: a nearly sorted input sorts in ~O(N)). The
    result is the stable order whatever the hint (ties, where the hint could decide, fall
    back to the cold sort)."""
    if hint is not None and hint.size == v.size:
        o = hint[np.argsort(v[hint], kind="stable")]
        if not np.any(np.diff(v[o]) == 0.0):
            return o
    return np.argsort(v, kind="stable")


def group_spreads(x, weights, labels=None, n_groups=1, kind="silverman", whole=False,
                  hint=None):
    """Per-dof spreads of groups of rows, ``(n_groups, D)`` (bohr).

    Parameters
    ----------
    x : (N, D) positions (bohr), all rows on this rank.
    weights : (N,) non-negative weights.
    labels : (N,) int; rows labelled ``0..n_groups-1`` form the groups, other labels none
        (None: one group of all rows).
    kind : ``"std"`` (weighted standard deviation) or ``"silverman"`` (``min(std, IQR/1.349)``,
        weighted midpoint quartiles; a zero value falls back to std).
    whole : also return the spread of all rows, ``(groups (n_groups, D), all (D,))``.
    hint : list to keep the per-dof sort orders in between calls on the same rows (a warm
        start, :func:`sort_rows`); the result does not depend on it.

    One stable sort per dof and one compiled pass for all groups (``O(N log N + N)``, the sums
    sequential in sorted order). A group without rows gets NaN.
    """
    if kind not in ("std", "silverman"):
        raise ValueError(f"unknown spread kind {kind!r}; use 'std' or 'silverman'")
    x = np.asarray(x, dtype=np.float64)
    w = np.ascontiguousarray(weights, dtype=np.float64)
    N, D = x.shape
    lab = np.zeros(N, dtype=np.int64) if labels is None else np.asarray(labels, np.int64)
    quart = np.array([0.25, 0.75])
    out = np.full((n_groups + 1, D), np.nan)
    for j in range(D):
        order = sort_rows(x[:, j], None if hint is None or len(hint) <= j else hint[j])
        if hint is not None:
            hint[j:j + 1] = [order]
        v, ws, ls = x[order, j], w[order], lab[order]
        std, q, cnt = _group_moments(v, ws, ls, n_groups, quart)
        if whole:
            sa, qa, _ = _group_moments(v, ws, np.zeros(N, np.int64), 1, quart)
            std, q, cnt = np.r_[std, sa], np.vstack([q, qa]), np.r_[cnt, N]
        for g in range(std.size):
            if cnt[g]:
                s = std[g] if kind == "std" else min(std[g], (q[g, 1] - q[g, 0]) / _IQR_NORMAL)
                out[g, j] = s if s > 0 else std[g]
    return (out[:n_groups], out[n_groups]) if whole else out[:n_groups]


def spread(x, weights=None, kind="std", comm=None):
    """Per-dof spread ``s_j`` of the swarm (bohr).

    Parameters
    ----------
    x : (N, D) positions; weights : (N,) or None.
    kind : ``"std"`` (weighted standard deviation) or ``"silverman"`` (``min(std, IQR/1.349)``).
    comm : communicator or None: ``x`` and ``weights`` are then this rank's rows and the sums
        run over all ranks (``"std"`` only). The sums are exact (:mod:`mqcd.parallel.exactsum`),
        so the result does not depend on the number of ranks.

    Returns ``(D,)``.
    """
    x = np.asarray(x, dtype=np.float64)
    N, D = x.shape
    if kind == "silverman" and weights is not None and (comm is None or comm.size == 1):
        return group_spreads(x, weights)[0]
    if weights is None:
        w = None
        n = float(N) if comm is None else float(comm.sum(np.array([N], np.int64))[0])
        mean = exact_sums(x, comm) / n
        std = np.sqrt(np.maximum(exact_sums((x - mean) ** 2, comm) / n, 0.0))
    else:
        w = np.asarray(weights, dtype=np.float64)
        w = w / exact_sums(w, comm)
        mean = exact_sums(w[:, None] * x, comm)
        std = np.sqrt(np.maximum(exact_sums(w[:, None] * (x - mean) ** 2, comm), 0.0))
    if kind == "std":
        return std
    if comm is not None and comm.size > 1:
        raise ValueError("spread 'silverman' needs the whole swarm (quantiles)")
    if kind == "silverman":              # equal weights (the weighted case returned above)
        q75, q25 = np.percentile(x, [75.0, 25.0], axis=0)
        s = np.minimum(std, (q75 - q25) / _IQR_NORMAL)
        return np.where(s > 0, s, std)
    raise ValueError(f"unknown spread kind {kind!r}; use 'std' or 'silverman'")


def normal_reference_constant(D: int, deriv: int) -> float:
    """``c(D, r) = (4 / (D + 2r + 2))^(1 / (D + 2r + 4))`` (Gaussian kernel, Gaussian reference)."""
    return (4.0 / (D + 2 * deriv + 2)) ** (1.0 / (D + 2 * deriv + 4))


def bandwidth(x, weights=None, *, deriv=0, scale=1.0, spread_kind="std", s=None, neff=None):
    """Normal-reference bandwidth per degree of freedom (bohr).

    Parameters
    ----------
    x : (N, D) positions (bohr).
    weights : (N,) non-negative trajectory weights or None (equal).
    deriv : derivative order ``r`` the rule is tuned for (rate ``N_eff^(-1/(D+2r+4))``).
    scale : dimensionless multiplier (1 = the normal-reference rule).
    spread_kind : ``"std"`` or ``"silverman"`` (see :func:`spread`).
    s : (D,) precomputed spread (overrides ``spread_kind``; e.g. from
        :func:`mqcd.fields.estimate.fisher_spread`).
    neff : effective number of trajectories of the whole swarm (default from ``x``/``weights``;
        give it when ``x`` holds only this rank's rows).

    Returns ``(D,)`` float64. A degree of freedom with zero spread gets a zero bandwidth, which the
    estimators reject; pass explicit bandwidths for degenerate swarms.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("x must have shape (N, D)")
    N, D = x.shape
    if neff is None:
        neff = float(N) if weights is None else effective_count(weights)
    if s is None:
        s = spread(x, weights, spread_kind)
    return scale * normal_reference_constant(D, deriv) * s * neff ** (-1.0 / (D + 2 * deriv + 4))


def abramson_factors(n_pilot, weights=None, *, alpha=0.5, lam_max=4.0):
    """Adaptive bandwidth factors ``lam_I = clip((n_pilot_I / g)^(-alpha), 1/lam_max, lam_max)``.

    ``g = exp(sum_I w_I ln n_pilot_I)`` (weighted geometric mean, weights normalised). Returns
    ``(N,)``.
    """
    n = np.asarray(n_pilot, dtype=np.float64)
    w = np.full(n.shape, 1.0 / n.size) if weights is None else np.asarray(weights) / np.sum(weights)
    if np.any(n <= 0):
        raise ValueError("pilot density must be positive at every trajectory")
    lg = float((w * np.log(n)).sum())
    lam = np.exp(-alpha * (np.log(n) - lg))
    return np.clip(lam, 1.0 / lam_max, lam_max)


def class_ladder(lam, ratio, span=None):
    """Bandwidth classes for the grid path: ``c_k = lam_min * ratio^k`` spanning ``lam``, and the
    variance-preserving split of each source between its two bracketing classes.

    ``span``: ``(lam_min, lam_max)`` of the whole swarm when ``lam`` holds only some of its
    sources (MPI ranks); default the range of ``lam``.

    Returns ``(classes (C,), cls (N,) int64, tau (N,))`` with
    ``(1 - tau) c_cls^2 + tau c_{cls+1}^2 = lam^2``.
    """
    lam = np.asarray(lam, dtype=np.float64)
    lo, hi = (float(lam.min()), float(lam.max())) if span is None else map(float, span)
    if hi <= lo * (1.0 + 1e-12):
        return np.array([lo]), np.zeros(lam.size, dtype=np.int64), np.zeros(lam.size)
    K = int(np.ceil(np.log(hi / lo) / np.log(ratio)))
    classes = lo * ratio ** np.arange(K + 1)
    classes[-1] = max(classes[-1], hi)
    cls = np.clip(np.searchsorted(classes, lam, side="right") - 1, 0, K - 1).astype(np.int64)
    c0 = classes[cls] ** 2
    c1 = classes[cls + 1] ** 2
    tau = np.clip((lam ** 2 - c0) / (c1 - c0), 0.0, 1.0)
    return classes, cls, tau
