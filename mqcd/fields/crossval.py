"""Leave-one-out cross-validation of the rho regression bandwidth.

The normal-reference rule (:mod:`mqcd.fields.bandwidth`) assumes that the trajectories' ``rho_I``
scatter around the smooth field like noisy observations. When they do not - a single-valued
field, as in exact hydrodynamics, or a swarm whose trajectories have not yet crossed - the error
is almost pure smoothing bias and a much smaller bandwidth is better (tools/fields_convergence.py
shows errors falling by an order of magnitude between ``regression_scale = 1`` and ``0.15`` on a
noise-free field). Cross-validation finds out which case applies from the data.

For a linear smoother the leave-one-out prediction needs no refitting: with the fitted value
``rho_hat(x_I)`` and the self-influence ``H_II = w_I K_{h lam_I}(0) [A^-1]_00`` (``A``: the
regularised Gram matrix at ``x_I``, ``e_0``: the constant basis function),

    rho_hat_{-I}(x_I) = (rho_hat(x_I) - H_II rho_I) / (1 - H_II),

and the score is ``CV(s) = sum_I w_I || rho_I - rho_hat_{-I}(x_I) ||_F^2``. For a local quadratic
fit the value and the second derivatives have the same optimal rate ``N^(-1/(D+8))`` (bias
``h^4`` vs ``h^2``, variance ``1/(N h^D)`` vs ``1/(N h^(D+4))``), so the CV choice scales correctly
with N; it is tuned for the values, which favours somewhat smaller bandwidths than optimal for the
derivatives.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .bandwidth import bandwidth, effective_count
from .engine import Group, choose_method, kernel_sums_flat
from .common import FieldOptions, _pack, swarm_spread
from .kernels import neighbour_lists
from .multiindex import multi_indices
from .regression import gram_index, solve_from_columns

#: default candidate multipliers of the normal-reference regression bandwidth (log-spaced)
DEFAULT_SCALES = (0.1, 0.14, 0.2, 0.28, 0.4, 0.56, 0.8, 1.12)


def _plain(opts):
    """Options with numeric scales (the CV functions set the scale they test themselves)."""
    from dataclasses import replace
    opts = FieldOptions() if opts is None else opts
    return replace(opts, density_scale=1.0 if opts.density_scale == "cv" else opts.density_scale,
                   regression_scale=1.0 if opts.regression_scale == "cv" else opts.regression_scale)


def _spread(x, weights, opts, s):
    if s is not None:
        return np.asarray(s, dtype=np.float64)
    N = x.shape[0]
    w = np.full(N, 1.0 / N) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    return swarm_spread(x, w, float(N) if weights is None else effective_count(w), opts)


def regression_cv_score(x, rho, scale, opts: Optional[FieldOptions] = None, weights=None, s=None) -> float:
    """Leave-one-out score ``sum_I w_I ||rho_I - rho_hat_{-I}(x_I)||_F^2`` for
    ``regression_scale = scale`` (other settings from ``opts``; fixed bandwidths only; ``s``: the
    swarm spread, computed from ``opts.spread`` if None)."""
    opts = _plain(opts)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    s = _spread(x, weights, opts, s)
    N, D = x.shape
    rho = np.ascontiguousarray(rho, dtype=np.complex128)
    ns = rho.shape[1]
    w = np.full(N, 1.0 / N) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    neff = float(N) if weights is None else effective_count(w)
    h = bandwidth(x, None if weights is None else w, deriv=opts.regression_deriv, scale=scale, s=s)
    settings = opts.engine()
    method, _ = choose_method(opts.method, N, N, D, x, h, h, settings, opts.pairs_below,
                              opts.max_grid_cells, opts.tree_max_fraction)
    nbr = neighbour_lists(x, x, h, settings.cutoff, same=True) if method == "tree" else None
    nc = ns * ns
    F = np.empty((N, 1 + nc))
    F[:, 0] = w
    _pack(rho, w, F, 1)
    order = opts.order
    groups = [Group(multi_indices(D, 2 * order), 0, 1, h, "moment"),
              Group(multi_indices(D, order), 1, nc, h, "moment")]
    X, offs = kernel_sums_flat(x, x, F, groups, method, settings, nbr=nbr)
    gidx = gram_index(D, order)
    P = gidx.shape[0]
    k0 = 1.0 / (np.prod(h) * (2.0 * np.pi) ** (0.5 * D))
    ridge_abs = opts.ridge * k0 / neff
    beta = solve_from_columns(X, offs[0], offs[1], P, nc, gidx, ridge_abs, np.empty((N, P, nc)))
    A = X[:, offs[0] + gidx] + ridge_abs * np.diag([0.0] + [1.0] * (P - 1))
    e0 = np.zeros((N, P, 1))
    e0[:, 0, 0] = 1.0
    a00 = np.linalg.solve(A, e0)[:, 0, 0]
    H = w * k0 * a00
    comps = F[:, 1:] / w[:, None]
    loo = (beta[:, 0, :] - H[:, None] * comps) / (1.0 - H[:, None])
    fro = np.concatenate([np.ones(ns), np.full(nc - ns, 2.0)])
    return float(np.sum(w[:, None] * fro[None, :] * (comps - loo) ** 2))


def select_regression_scale(x, rho, opts: Optional[FieldOptions] = None, weights=None,
                            scales=DEFAULT_SCALES, s=None):
    """The candidate ``regression_scale`` with the smallest leave-one-out score.

    Returns ``(best_scale, scores)`` with ``scores`` an array aligned with ``scales``. Cost: one
    regression per candidate. Use it at the start of a run (or every few hundred steps) and pass
    the result as ``FieldOptions(regression_scale=...)``.
    """
    opts = _plain(opts)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    s = _spread(x, weights, opts, s)
    scores = np.array([regression_cv_score(x, rho, c, opts, weights, s) for c in scales])
    return float(scales[int(np.argmin(scores))]), scores


def density_cv_score(x, scale, opts: Optional[FieldOptions] = None, weights=None, s=None) -> float:
    """Least-squares cross-validation score of the density at bandwidth ``scale * h_NR`` with
    ``h_NR`` the normal-reference rule for the density itself (``r = 0``)::

        LSCV = int n_hat^2 dx - 2 sum_I w_I n_hat_{-I}(x_I),

    an unbiased estimate of the integrated squared error minus a constant. For Gaussian kernels
    ``int n_hat^2 = sum_IJ w_I w_J K_{sqrt(2) h}(x_I - x_J)`` and
    ``n_hat_{-I}(x_I) = (n_hat(x_I) - w_I K_h(0)) / (1 - w_I)``: two kernel sums."""
    opts = FieldOptions() if opts is None else opts
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    N, D = x.shape
    w = np.full(N, 1.0 / N) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    h = bandwidth(x, None if weights is None else w, deriv=0, scale=scale, s=s)
    settings = opts.engine()
    h2 = np.sqrt(2.0) * h
    method, _ = choose_method(opts.method, N, N, D, x, h, h2, settings, opts.pairs_below,
                              opts.max_grid_cells, opts.tree_max_fraction)
    nbr = neighbour_lists(x, x, h2, settings.cutoff, same=True) if method == "tree" else None
    zero = multi_indices(D, 0)
    X, _ = kernel_sums_flat(x, x, w[:, None], [Group(zero, 0, 1, h, "deriv"),
                                               Group(zero, 0, 1, h2, "deriv")], method, settings, nbr=nbr)
    k0 = 1.0 / (np.prod(h) * (2.0 * np.pi) ** (0.5 * D))
    loo = (X[:, 0] - w * k0) / (1.0 - w)
    return float(np.sum(w * X[:, 1]) - 2.0 * np.sum(w * loo))


#: candidate density-bandwidth multipliers: down to 0.05 because a swarm split into distant
#: packets (scattering) has a global spread many times the width of each packet
DENSITY_SCALES = (0.05, 0.07, 0.1, 0.14, 0.2, 0.28, 0.4, 0.56, 0.8, 1.12, 1.6)


def select_density_scale(x, opts: Optional[FieldOptions] = None, weights=None, scales=DENSITY_SCALES,
                         s=None):
    """The candidate density-bandwidth multiplier with the smallest least-squares CV score.

    The score is evaluated for the density itself (``r = 0``); the returned multiplier expresses
    how much narrower (or wider) than the Gaussian reference the data want the kernel, and is
    meant to be passed as ``FieldOptions(density_scale=...)``, which applies it to the rule for
    ``density_deriv``. It matters for multi-modal swarms, where the global standard deviation
    overstates the width of each mode. Returns ``(best_scale, scores)``.
    """
    opts = _plain(opts)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    s = _spread(x, weights, opts, s)
    scores = np.array([density_cv_score(x, c, opts, weights, s) for c in scales])
    return float(scales[int(np.argmin(scores))]), scores
