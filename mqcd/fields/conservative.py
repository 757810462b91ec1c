"""Zero-mean (momentum-conserving) swarm estimate of the combined geometric force term.

The force correction of geometric Ehrenfest with quantum coupling (MB(64)) contains

    T2_k(x) = sum_i xi^ii (1/n) d_i (n g_ki),

whose average over the nuclear density vanishes exactly: ``int n T2_k dx = sum_i xi^ii int d_i(n g_ki)
dx = 0`` (MB, text after (64)). Evaluated pointwise from estimated fields (``T1 + sum_i xi^ii
(d_i ln n) g_ki``, :func:`mqcd.electronic.geometry.t2_term`), the swarm average is only
approximately zero. The symmetric pair form used in smoothed-particle hydrodynamics for pressure
gradients makes it exact. With the kernel density ``n(x) = sum_J w_J K(x - x_J)``,

    T2_I,k = sum_i xi^ii sum_J w_J (g_I,ki / n_I + g_J,ki / n_J) d_i K(x_I - x_J),

which is consistent (``sum_J w_J (g_J/n_J) d_i K -> d_i g`` and ``(g_I/n_I) d_i n``: together
``d_i g + g d_i ln n``) and whose weighted sum ``sum_I w_I T2_I`` vanishes identically because the
bracket is symmetric and ``d_i K`` antisymmetric under ``I <-> J``. This holds on all three paths
(the grid's effective kernel is exactly antisymmetric too) for fixed bandwidths; with adaptive
(per-source) bandwidths the kernel is not symmetric and the sum is only approximately zero.
"""
from __future__ import annotations

import numpy as np

from .engine import Group, kernel_sums
from .kernels import neighbour_lists
from .multiindex import multi_indices


def divergence_pairs(f, x, G):
    """Symmetric-pair (conservative) estimate of ``(1/n) sum_i d_i (n G_i)`` at the trajectories.

    Parameters
    ----------
    f : :class:`mqcd.fields.FieldEstimate` computed at the trajectories (``at=None``) with need
        ``"density"``; its density bandwidth, method, options and weights are reused.
    x : (N, D) the same positions (bohr).
    G : (N, D, K) per-trajectory field, component i of the flux divided by n (any units U).
    Under MPI (``f.dist`` set by :func:`mqcd.fields.estimate_fields` with ``comm``), ``x``, ``G``
    and ``f`` are this rank's trajectories and the sums run over the whole swarm (grid moments
    summed over ranks): bit-for-bit the serial rows.

    Returns ``(N, K)`` (U/bohr): ``sum_J w_J (G_I,i / n_I + G_J,i / n_J) d_i K(x_I - x_J)`` summed over
    i; ``sum_I w_I out_I = 0`` to round-off for fixed bandwidths.
    """
    if f.n is None or f.dlogn is None:
        raise ValueError("the FieldEstimate must contain the density (need 'density')")
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    dist = f.dist
    N, D = x.shape
    if f.n.shape[0] != N:
        raise ValueError("f must be evaluated at the trajectories (at=None)")
    G = np.asarray(G, dtype=np.float64).reshape(N, D, -1)
    K = G.shape[2]
    w = f.weights
    gn = G / f.n[:, None, None]                     # G_i / n at each trajectory
    # source fields, columns i * K + k: w_J G_J,ik / n_J
    F = np.ascontiguousarray((w[:, None, None] * gn).reshape(N, D * K))
    groups = [Group(multi_indices(D, 1)[1 + i:2 + i], i * K, K, f.h_density, "deriv")
              for i in range(D)]
    settings = f.options.engine()
    nbr = None
    if f.method == "tree" and dist is None:  # under MPI the engine deals the targets out itself
        lmax = 1.0 if f.lam is None else float(f.lam.max())
        nbr = neighbour_lists(x, x, f.h_density, settings.cutoff * lmax, same=True)
    sums = kernel_sums(x, x, F, groups, f.method, settings, lam=f.lam, nbr=nbr, dist=dist,
                       nbr_h=f.h_density)
    dn = f.n[:, None] * f.dlogn                       # d_i n at the trajectories
    out = np.zeros((N, K))
    for i in range(D):
        out += gn[:, i, :] * dn[:, i:i + 1] + sums[i][:, 0, :]
    return out


def t2_conservative(f, x, g, masses):
    """Symmetric-pair estimate of ``T2_k = sum_i xi^ii (1/n) d_i(n g_ki)`` at the trajectories
    (:func:`divergence_pairs` with ``G_ik = xi^ii g_ki``).

    Parameters: f, x as for :func:`divergence_pairs`; g : (N, D, D) metric at the trajectories
    (bohr^-2); masses : (D,) nuclear masses (electron masses).

    Returns ``(N, D)`` (hartree/bohr); ``sum_I w_I T2_I = 0`` to round-off for fixed bandwidths.
    """
    x = np.asarray(x)
    D = x.shape[1]
    xi = 1.0 / np.broadcast_to(np.asarray(masses, np.float64), (D,))
    G = xi[None, :, None] * np.asarray(g).transpose(0, 2, 1)      # G[I, i, k] = xi_i g_ki
    return divergence_pairs(f, x, G)
