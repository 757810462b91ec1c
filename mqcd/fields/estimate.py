"""Swarm fields at the trajectory positions: density, log-density derivatives and the smoothed
conditional electronic density matrix with its first and second spatial derivatives.

Estimators (``w_I``: trajectory weights normalised to 1, ``K_h``: normalised product Gaussian):

* density: ``n(x) = sum_I w_I K_{h_n lam_I}(x - x_I)`` (integrates to 1); its derivatives are the
  same sums with derivatives of the kernel, combined into ``d ln n``, ``d d ln n``, ``d d d ln n``;
* rho field: local quadratic (``order = 2``) Gaussian-weighted regression of the trajectories'
  ``rho_I`` with bandwidth ``h_r lam_I`` (see :mod:`mqcd.fields.regression`), Hermitian by
  construction, trace exactly 1, derivatives exactly traceless.

Bandwidths follow :mod:`mqcd.fields.bandwidth` (normal-reference rules with the Fisher-information
spread :func:`fisher_spread`; cross-validated multipliers in :mod:`mqcd.fields.crossval`); the
kernel sums are computed by one of three interchangeable paths (:mod:`mqcd.fields.engine`).
``docs/theory/fields.md`` has the derivations, tolerances and measured cost.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from numba import njit, prange

from .bandwidth import abramson_factors, bandwidth, effective_count
from .engine import Group, choose_method, is_pairs_fallback, kernel_sums, kernel_sums_flat
from .kernels import neighbour_lists
from .multiindex import full_symmetric_index, multi_indices
from .regression import gram_index, solve_from_columns
from .distributed import Distributed, exact_sums
from .workspace import FRESH, FieldWorkspace
from .common import (DEFAULT_NEED, NEED_TOKENS, FieldOptions, _pack, _unpack,  # noqa: F401
                     fisher_spread, pack_hermitian, swarm_spread, unpack_hermitian)



@dataclass
class FieldEstimate:
    """Fields estimated from the swarm at ``M`` evaluation points (the trajectories by default).

    Attributes (atomic units; ``None`` where not requested)
    -------------------------------------------------------
    n : (M,) nuclear density (bohr^-D), integrates to 1.
    dlogn : (M, D) ``d_j ln n`` (bohr^-1).
    d2logn : (M, D, D) ``d_j d_k ln n`` (bohr^-2), symmetric.
    d3logn : (M, D, D, D) ``d_j d_k d_l ln n`` (bohr^-3), fully symmetric.
    rho : (M, ns, ns) complex smoothed rho field (Hermitian, trace 1).
    drho : (M, D, ns, ns) complex ``d_j rho`` (bohr^-1), Hermitian, traceless.
    d2rho : (M, D, D, ns, ns) complex ``d_j d_k rho`` (bohr^-2), Hermitian, traceless, symmetric in j, k.
    h_density, h_regression : (D,) bandwidths used (bohr), before adaptive factors.
    lam : (N,) adaptive bandwidth factors or None.
    method : path used (``"grid"``, ``"tree"``, ``"pairs"``); method_reason : why.
    masses : (D,) masses (electron masses) if given, used by :meth:`geometry`.
    options : the :class:`FieldOptions` used; weights : (N,) normalised trajectory weights.
    extra : scales chosen by cross-validation (``"density_scale"``, ``"regression_scale"``).
    dist : the :class:`mqcd.fields.distributed.Distributed` of an MPI evaluation (None serially).
    """

    n: Optional[np.ndarray] = None
    dlogn: Optional[np.ndarray] = None
    d2logn: Optional[np.ndarray] = None
    d3logn: Optional[np.ndarray] = None
    rho: Optional[np.ndarray] = None
    drho: Optional[np.ndarray] = None
    d2rho: Optional[np.ndarray] = None
    h_density: Optional[np.ndarray] = None
    h_regression: Optional[np.ndarray] = None
    lam: Optional[np.ndarray] = None
    method: str = ""
    method_reason: str = ""
    masses: Optional[np.ndarray] = None
    options: Optional["FieldOptions"] = None
    weights: Optional[np.ndarray] = None
    extra: dict = field(default_factory=dict)
    dist: Optional[object] = None

    def geometry(self, masses=None, workspace=None):
        """Geometric quantities and corrections from these fields
        (:func:`mqcd.electronic.geometry.geometry_from_fields`; ``workspace`` as there)."""
        from ..electronic.geometry import geometry_from_fields
        m = self.masses if masses is None else np.asarray(masses, dtype=np.float64)
        if m is None:
            raise ValueError("masses are needed (pass them here or to estimate_fields)")
        return geometry_from_fields(self, m, workspace=workspace)


@njit(cache=True, inline="always")
def _put(dst, beta, t, p, sc, ns, nu):
    """Unpack coefficient row ``beta[t, p, :]`` times ``sc`` into the Hermitian matrix ``dst``."""
    for a in range(ns):
        dst[a, a] = beta[t, p, a] * sc
    q = 0
    for a in range(ns):
        for b in range(a + 1, ns):
            re = beta[t, p, ns + q] * sc
            im = beta[t, p, ns + nu + q] * sc
            dst[a, b] = complex(re, im)
            dst[b, a] = complex(re, -im)
            q += 1


@njit(parallel=True, cache=True)
def _assemble(beta, typ, jj, kk, scale, ns, D, want2, f0, f1, f2):
    """Coefficients ``(M, P, ns^2)`` -> complex value ``f0``, first ``f1`` and second ``f2``
    derivatives (written in place)."""
    M, P, _ = beta.shape
    nu = ns * (ns - 1) // 2
    for t in prange(M):
        _put(f0[t], beta, t, 0, 1.0, ns, nu)
        for p in range(1, 1 + D):
            _put(f1[t, jj[p]], beta, t, p, scale[p], ns, nu)
        if want2:
            for p in range(1 + D, P):
                j = jj[p]
                k = kk[p]
                _put(f2[t, j, k], beta, t, p, scale[p], ns, nu)
                if k != j:
                    f2[t, k, j] = f2[t, j, k]


def _assembly_tables(D, order, h):
    """Per basis function: type (0 value, 1 first, 2 second derivative), dofs and scale factor."""
    basis = multi_indices(D, order)
    P = basis.shape[0]
    typ = np.zeros(P, dtype=np.int64)
    jj = np.zeros(P, dtype=np.int64)
    kk = np.zeros(P, dtype=np.int64)
    scale = np.ones(P)
    for p in range(P):
        nz = [j for j in range(D) for _ in range(int(basis[p, j]))]
        typ[p] = len(nz)
        if len(nz) == 1:
            jj[p] = kk[p] = nz[0]
            scale[p] = 1.0 / h[nz[0]]
        elif len(nz) == 2:
            jj[p], kk[p] = nz
            scale[p] = (2.0 if nz[0] == nz[1] else 1.0) / (h[nz[0]] * h[nz[1]])
    return typ, jj, kk, scale


# --------------------------------------------------------------------------- main entry
def _parse_need(need):
    if isinstance(need, str):
        need = (need,)
    need = set(need)
    bad = need - set(NEED_TOKENS)
    if bad:
        raise ValueError(f"unknown need {sorted(bad)}; allowed {NEED_TOKENS}")
    if "rho2" in need:
        need.add("rho")
    dens_order = 0
    if "density" in need:
        dens_order = 1
    if "logn2" in need:
        dens_order = 2
    if "logn3" in need:
        dens_order = 3
    return need, dens_order


def log_derivatives(D0, D1, D2=None, D3=None):
    """``ln n`` derivatives from density derivatives (plain numpy reference form).

    ``D0`` (M,), ``D1`` (M, D), ``D2`` (M, D, D), ``D3`` (M, D, D, D): ``n`` and its derivatives.
    Returns ``(l1, l2, l3)`` with ``l2``/``l3`` None when the inputs are None::

        l_i = n_i / n,   l_ij = n_ij / n - l_i l_j,
        l_ijk = n_ijk / n - (n_ij l_k + n_ik l_j + n_jk l_i) / n + 2 l_i l_j l_k
    """
    l1 = D1 / D0[:, None]
    l2 = l3 = None
    if D2 is not None:
        m2 = D2 / D0[:, None, None]
        l2 = m2 - l1[:, :, None] * l1[:, None, :]
        if D3 is not None:
            c3 = D3 / D0[:, None, None, None]
            sym = (m2[:, :, :, None] * l1[:, None, None, :] + m2[:, :, None, :] * l1[:, None, :, None]
                   + m2[:, None, :, :] * l1[:, :, None, None])
            l3 = c3 - sym + 2.0 * l1[:, :, None, None] * l1[:, None, :, None] * l1[:, None, None, :]
    return l1, l2, l3


@njit(parallel=True, cache=True)
def _log_derivatives(S, i2, i3, order, n, l1, l2, l3):
    """Same as :func:`log_derivatives` from the density op sums ``S`` (M, n_ops) (ops in graded
    order: ``S[:, 0] = n``, ``S[:, 1 + j] = d_j n``, ``i2``/``i3`` index the higher ones)."""
    M = S.shape[0]
    D = l1.shape[1]
    for t in prange(M):
        n0 = S[t, 0]
        r = 1.0 / n0
        n[t] = n0
        for i in range(D):
            l1[t, i] = S[t, 1 + i] * r
        if order >= 2:
            for i in range(D):
                for j in range(D):
                    l2[t, i, j] = S[t, i2[i, j]] * r - l1[t, i] * l1[t, j]
        if order >= 3:
            for i in range(D):
                for j in range(D):
                    mij = S[t, i2[i, j]] * r
                    for k in range(D):
                        l3[t, i, j, k] = (S[t, i3[i, j, k]] * r
                                          - mij * l1[t, k] - S[t, i2[i, k]] * r * l1[t, j]
                                          - S[t, i2[j, k]] * r * l1[t, i]
                                          + 2.0 * l1[t, i] * l1[t, j] * l1[t, k])


_WARNED_ALL_PAIRS = [False]


def warn_all_pairs(N: int, reason: str, comm=None) -> None:
    """Say at once (a ``RuntimeWarning``, once per process, on the root rank) that a field
    estimate of ``N`` trajectories falls back to all pairs: O(N^2) per step, which at large N
    looks like a run that hangs. ``reason`` is the path choice's (which limit the grid and the
    tree exceeded). The run's end and ``mqcd summary`` report the count of such estimates."""
    if _WARNED_ALL_PAIRS[0]:
        return
    _WARNED_ALL_PAIRS[0] = True
    if comm is None or getattr(comm, "is_root", True):
        warnings.warn(f"field estimate of {N} trajectories falls back to all pairs, O(N^2) per "
                      f"step ({reason}). Usually trajectories thrown far out or bandwidths that "
                      "collapsed: check diagnostics/bandwidth_density and the positions "
                      "(docs/performance.md)", RuntimeWarning, stacklevel=3)


def estimate_fields(x, rho=None, masses=None, opts: Optional[FieldOptions] = None, *, weights=None,
                    need=DEFAULT_NEED, at=None, workspace: Optional[FieldWorkspace] = None,
                    comm=None) -> FieldEstimate:
    """Estimate the swarm fields at the trajectory positions (or at ``at``).

    Parameters
    ----------
    x : (N, D) float trajectory positions (bohr); any D >= 1.
    rho : (N, ns, ns) complex Hermitian conditional density matrices (trace 1), or None when only
        density quantities are requested.
    masses : (D,) nuclear masses (electron masses) or None; stored for :meth:`FieldEstimate.geometry`
        (the estimators themselves do not use them).
    opts : :class:`FieldOptions` (defaults if None).
    weights : (N,) non-negative trajectory weights or None (equal weights); normalised internally.
    need : iterable of ``"density"`` (n, d ln n), ``"logn2"`` (+ d2 ln n), ``"logn3"`` (+ d2, d3 ln n),
        ``"rho"`` (smoothed rho, d rho), ``"rho2"`` (+ d2 rho; needs ``order = 2``).
    at : (M, D) evaluation points or None (the trajectory positions).
    workspace : :class:`FieldWorkspace` or None. With a workspace, repeated calls reuse buffers
        (no page faults; see :mod:`mqcd.fields.workspace`) and the returned arrays are views that
        the next call with the same workspace overwrites.
    comm : distributed evaluation under MPI (:mod:`mqcd.fields.distributed`): ``x``, ``rho`` and
        ``weights`` are this rank's trajectories, its rows of the rank-ordered global swarm;
        ``opts.source_factors`` too. The evaluation points default to this rank's ``x``. Every
        swarm sum is exact and the kernel sums exchange only grid moments (grid path) or source
        fields (pair/tree paths), so the result is bit-for-bit the serial one at these points.
        Options that need the whole swarm at once (``spread = "silverman"``, cross-validated
        scales, ``adaptive``) all-gather it and evaluate as in a serial run. Every per-point
        array of the result (and ``weights``, ``lam``) is this rank's.

    Returns
    -------
    :class:`FieldEstimate`
    """
    opts = FieldOptions() if opts is None else opts
    ws = FRESH if workspace is None else workspace
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if x.ndim != 2 or (x.shape[0] < 1 and comm is None):
        raise ValueError("x must have shape (N, D)")
    n_loc, D = x.shape
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains non-finite values")
    need, dens_order = _parse_need(need)
    dist = Distributed(comm, x) if comm is not None and comm.size > 1 else None
    if dist is not None and (opts.spread == "silverman" or opts.adaptive
                             or "cv" in (opts.density_scale, opts.regression_scale)):
        return _estimate_gathered(dist, rho, masses, opts, weights, need, at, ws)
    N = n_loc if dist is None else dist.n
    comm_s = None if dist is None else comm
    if "rho" in need:
        if rho is None:
            raise ValueError("rho is required for need 'rho'/'rho2'")
        rho = np.asarray(rho)
        if rho.ndim != 3 or rho.shape[0] != n_loc or rho.shape[1] != rho.shape[2]:
            raise ValueError("rho must have shape (N, ns, ns)")
        if "rho2" in need and opts.order < 2:
            raise ValueError("need 'rho2' requires order = 2")
    if weights is None:
        w = np.full(n_loc, 1.0 / N)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(n_loc)
        tot = float(exact_sums(w, comm_s))
        if not comm_or_all(comm_s, np.all(w >= 0) and np.all(np.isfinite(w))) or tot <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        w = w / tot
    xt = x if at is None else np.ascontiguousarray(np.asarray(at, dtype=np.float64))
    if xt.ndim != 2 or xt.shape[1] != D:
        raise ValueError("at must have shape (M, D)")
    M = xt.shape[0]
    if dist is not None and at is not None:
        dist = dist.with_targets(xt)
    # the path depends on the sources only (N, not the number M of evaluation points), so that
    # evaluating a swarm in pieces (MPI ranks) takes the same numerical path as evaluating it
    # whole; with given evaluation points, on the number of them on all ranks
    M_all = N if at is None else (M if dist is None else int(comm.sum(np.array([M]))[0]))
    pts = x if dist is None else dist
    m_arr = None if masses is None else np.broadcast_to(np.asarray(masses, np.float64), (D,)).copy()

    # bandwidths
    wb = None if weights is None else w
    neff = float(N) if weights is None else effective_count(w, comm_s)
    extra = {}
    s_sw = None
    if opts.h_density is None or opts.h_regression is None:
        s_sw = swarm_spread(x, w, neff, opts, dist)
        extra["spread"] = s_sw
    dscale, rscale = opts.density_scale, opts.regression_scale
    if dscale == "cv" and opts.h_density is None:
        from .crossval import select_density_scale
        dscale, _ = select_density_scale(x, opts, wb, s=s_sw)
        extra["density_scale"] = dscale
    if rscale == "cv" and opts.h_regression is None and "rho" in need:
        from .crossval import select_regression_scale
        rscale, _ = select_regression_scale(x, rho, opts, wb, s=s_sw)
        extra["regression_scale"] = rscale
    dscale = 1.0 if dscale == "cv" else dscale
    rscale = 1.0 if rscale == "cv" else rscale
    h_n = (bandwidth(x, wb, deriv=opts.density_deriv, scale=dscale, s=s_sw, neff=neff)
           if opts.h_density is None
           else np.broadcast_to(np.asarray(opts.h_density, np.float64), (D,)).copy())
    h_r = (bandwidth(x, wb, deriv=opts.regression_deriv, scale=rscale, s=s_sw, neff=neff)
           if opts.h_regression is None
           else np.broadcast_to(np.asarray(opts.h_regression, np.float64), (D,)).copy())
    for name, hh in (("density", h_n), ("regression", h_r)):
        if not np.all(np.isfinite(hh)) or np.any(hh <= 0):
            raise ValueError(f"{name} bandwidth must be positive in every dof (got {hh}); the swarm "
                             "has zero spread in some dof - pass explicit bandwidths")
    settings = opts.engine()
    h_big = np.maximum(h_n, h_r)
    method, reason = choose_method(opts.method, N, N, D, pts, np.minimum(h_n, h_r), h_big, settings,
                                   opts.pairs_below, opts.max_grid_cells, opts.tree_max_fraction)
    lam = None
    if opts.source_factors is not None:
        lam = np.ascontiguousarray(opts.source_factors, dtype=np.float64).reshape(n_loc)
        lmin, lmax = float(lam.min(initial=np.inf)), float(lam.max(initial=-np.inf))
        if dist is not None:
            b = comm.max(np.array([-lmin, lmax]))
            lmin, lmax = -float(b[0]), float(b[1])
        ncls = 1 + int(np.ceil(np.log(lmax / lmin) / np.log(opts.class_ratio) - 1e-12))
        method, reason = choose_method(opts.method, N, M_all, D, pts, np.minimum(h_n, h_r) * lmin,
                                       h_big * lmax, settings, opts.pairs_below, opts.max_grid_cells,
                                       opts.tree_max_fraction, n_classes=ncls)
    elif opts.adaptive:
        # fixed-bandwidth pilot density at the trajectories, then Abramson factors
        nb_p = neighbour_lists(x, x, h_n, settings.cutoff, same=True) if method == "tree" else None
        pilot = kernel_sums(x, x, w[:, None], [Group(multi_indices(D, 0), 0, 1, h_n, "deriv")],
                            method, settings, nbr=nb_p, ws=ws)[0][:, 0, 0].copy()
        lam = abramson_factors(pilot, w, alpha=opts.adaptive_alpha, lam_max=opts.adaptive_lam_max)
        lmin, lmax = float(lam.min()), float(lam.max())
        ncls = 1 + int(np.ceil(np.log(lmax / lmin) / np.log(opts.class_ratio) - 1e-12))
        method, reason = choose_method(opts.method, N, M, D, x, np.minimum(h_n, h_r) * lmin,
                                       h_big * lmax, settings, opts.pairs_below, opts.max_grid_cells,
                                       opts.tree_max_fraction, n_classes=ncls)
    if is_pairs_fallback(method, reason):
        warn_all_pairs(N, reason, comm)
    nbr = None
    if method == "tree" and dist is None:   # under MPI the engine deals the targets out itself
        # one neighbour list serves both kernels: radius cutoff * max(lam) in units of max(h_n, h_r)
        lmax = 1.0 if lam is None else lmax
        nbr = neighbour_lists(xt, x, h_big, settings.cutoff * lmax, same=at is None)
    out = FieldEstimate(h_density=h_n, h_regression=h_r, lam=lam, method=method,
                        method_reason=reason, masses=m_arr, options=opts, weights=w, extra=extra,
                        dist=dist)

    # one engine call: density derivatives (bandwidth h_n) and regression moments (h_r) share the
    # deposited fields [w, w * rho components] on the grid path
    groups = []
    F = w[:, None]
    if dens_order > 0:
        dops = multi_indices(D, dens_order)
        groups.append(Group(dops, 0, 1, h_n, "deriv"))
    if "rho" in need:
        ns = rho.shape[1]
        nc = ns * ns
        F = ws.array("F", (n_loc, 1 + nc))
        F[:, 0] = w
        _pack(np.ascontiguousarray(rho, dtype=np.complex128), w, F, 1)
        order = opts.order
        groups.append(Group(multi_indices(D, 2 * order), 0, 1, h_r, "moment"))
        groups.append(Group(multi_indices(D, order), 1, nc, h_r, "moment"))
    X, offs = kernel_sums_flat(xt, x, F, groups, method, settings, lam=lam, nbr=nbr, ws=ws,
                               dist=dist, nbr_h=h_big)
    if dens_order > 0:
        i2 = full_symmetric_index(dops, 2) if dens_order >= 2 else np.zeros((1, 1), np.int64)
        i3 = full_symmetric_index(dops, 3) if dens_order >= 3 else np.zeros((1, 1, 1), np.int64)
        n = ws.array("n", (M,))
        l1 = ws.array("dlogn", (M, D))
        l2 = ws.array("d2logn", (M, D, D)) if dens_order >= 2 else np.empty((1, 1, 1))
        l3 = ws.array("d3logn", (M, D, D, D)) if dens_order >= 3 else np.empty((1, 1, 1, 1))
        _log_derivatives(X, i2, i3, dens_order, n, l1, l2, l3)
        out.n, out.dlogn = n, l1
        out.d2logn = l2 if dens_order >= 2 else None
        out.d3logn = l3 if dens_order >= 3 else None
    if "rho" in need:
        gidx = gram_index(D, order)
        P = gidx.shape[0]
        # ridge in units of the kernel weight of opts.ridge trajectories sitting at the target
        ridge_abs = opts.ridge / (neff * np.prod(h_r) * (2.0 * np.pi) ** (0.5 * D))
        beta = solve_from_columns(X, offs[-2], offs[-1], P, nc, gidx, ridge_abs,
                                  ws.array("beta", (M, P, nc)))
        typ, jj, kk, scale = _assembly_tables(D, order, h_r)
        want2 = "rho2" in need
        f0 = ws.array("rho", (M, ns, ns), np.complex128)
        f1 = ws.array("drho", (M, D, ns, ns), np.complex128)
        f2 = (ws.array("d2rho", (M, D, D, ns, ns), np.complex128) if want2
              else np.empty((1, 1, 1, 1, 1), np.complex128))
        _assemble(beta, typ, jj, kk, scale, ns, D, want2, f0, f1, f2)
        out.rho, out.drho = f0, f1
        if want2:
            out.d2rho = f2
    return out


def comm_or_all(comm, flag):
    """``flag`` on every rank of ``comm`` (serial: ``flag``)."""
    return bool(flag) if comm is None else not comm.any(not flag)


def _estimate_gathered(dist, rho, masses, opts, weights, need, at, ws):
    """MPI fallback for options that need the whole swarm at once: gather it, estimate at this
    rank's points as a serial run does, and keep this rank's rows of the per-source arrays."""
    comm = dist.comm
    rho_all = None if rho is None else comm.allgather_rows(np.ascontiguousarray(rho))
    w_all = None if weights is None else comm.allgather_rows(np.asarray(weights, np.float64))
    if opts.source_factors is not None:
        import dataclasses
        opts = dataclasses.replace(opts, source_factors=comm.allgather_rows(
            np.ascontiguousarray(opts.source_factors, dtype=np.float64)))
    from .base import restrict
    f = estimate_fields(dist.x_all, rho_all, masses, opts, weights=w_all, need=need, at=at,
                        workspace=ws)
    if at is None:                       # the whole swarm, as serially; keep this rank's rows
        f = restrict(f, dist.rows)
    f.weights = f.weights[dist.rows]
    if f.lam is not None:
        f.lam = f.lam[dist.rows]
    f.dist = dist
    return f
