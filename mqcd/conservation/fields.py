r"""Continuum fields on a spatial grid from stored trajectories (PSS Sec. 3 and Theorem 5.2).

For one trajectory phase point (positions ``x^n``, momenta ``p^n``, surface ``j``) and the
Gaussian mollifier ``eta`` (mqcd/conservation/kernels.py), the microscopic densities are
(PSS Sec. 3, (5.22))

.. math::

    \rho = \sum_n M\eta(y - x^n), \qquad \rho u = \sum_n p^n \eta(y - x^n), \qquad
    E = \sum_n \eta(y - x^n)\Big(\frac{|p^n|^2}{2M} + \lambda_j^n\Big),

the momentum flux (the divergence form (3.7))

.. math:: \Pi_{\ell m} = \sum_n \frac{p^n_\ell p^n_m}{M}\eta(y - x^n)
          - \sum_{p=(n,k)} \frac{g_p}{r_p} d_{p\ell} d_{pm} \int_0^1\eta(y - x^k - s d_p)\,ds,

(``d_p = x^n - x^k``, ``g_p`` the pair derivative of :mod:`mqcd.conservation.micro`), and the
energy flux (the divergence form (3.11))

.. math:: J_\ell = \sum_n \frac{p^n_\ell}{M} e_n \eta(y - x^n)
          + \sum_{n, m} \int_0^1 \eta(y - x^m - s(x^n - x^m))\,ds\,(x^n_\ell - x^m_\ell)\,
          \frac{p^m}{M}\cdot\nabla_{x^m}\lambda_j^n .

The pair-local part of the last sum is the Hardy flux
:math:`-\sum_p \frac{g^{HF}_p}{2 r_p} d_p\cdot(v^n + v^k)\, d_p \int\eta`; the part from the
eigenvector derivative (``a_n``, ``s_m`` of micro.py) couples all pairs ``(n, m)``: ``paths =
"pairs"`` sums it over all ordered pairs as (3.12) is written (O(N^2) segments), ``"star"``
uses ``sum_n a_n = 0`` to route it through atom 0 (O(N) segments, the same divergence; the two
differ by a divergence-free field, the non-uniqueness of PSS Sec. 7); ``"tree"`` routes the
star's segments along a spanning tree of the bonds (:func:`tree_segments`: O(N) segments of
bond length, the star's divergence; the cheap choice in 3D, where star segments are as long
as the box).

The ensemble fields are the weighted means over trajectories, ``sum_i w_i A_i / sum_i w_i``, with
the gibbs weights ``w_i = q_j N / N_j`` of trajectory i's surface j (mqcd/ensemble/thermal.py):
that is the ``sum_j q_j^* int A_jj f_jj`` of Theorem 5.2, eq. (5.21). From them
``u = (rho u)/rho``, the stress ``sigma = -(Pi - rho u u)`` (3.8) and the heat flux
``q = J - E u + sigma u`` (from (2.17), (3.12)).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kernels import add_points, add_segments
from .micro import configuration

PATHS = ("pairs", "star", "tree")


def _min_image(d, box):
    return d - box * np.floor(d / box + 0.5)


@dataclass
class Grid:
    """Periodic grid of ``ng`` points per direction on the box ``[0, box)^dim`` and the kernel
    width ``width`` (bohr)."""
    box: float
    dim: int
    ng: int
    width: float

    @property
    def h(self):
        return self.box / self.ng

    @property
    def size(self):
        return self.ng ** self.dim

    @property
    def cell_volume(self):
        return self.h ** self.dim

    def points(self):
        """Grid coordinates (dim, ng), bohr (the same axis in every direction)."""
        return np.arange(self.ng) * self.h


def tree_segments(cfg, c, box):
    """The star flux ``sum_n c_n [segment x^0 -> x^n]`` routed along a spanning tree of the
    pair graph (breadth-first from atom 0, scipy.sparse.csgraph; atoms of other connected
    components hang from atom 0 by a direct segment): edge ``parent -> child`` carries the
    sum of ``c`` over the child's subtree. The divergence is the star's (every path from
    ``x^0`` to ``x^n`` has the same end points), with O(N) segments of bond length instead of
    box length. Returns ``(start, vector, coefficient)`` of the segments."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import breadth_first_order, connected_components
    N = cfg.X.shape[0]
    A = sp.coo_matrix((np.ones(cfg.i.size), (cfg.i, cfg.j)), shape=(N, N)).tocsr()
    ncomp, label = connected_components(A, directed=False)
    parent = np.full(N, -1)
    orders = []
    roots = [0] + [int(np.argmax(label == k)) for k in range(ncomp) if k != label[0]]
    for root in roots:
        order, pred = breadth_first_order(A, root, directed=False, return_predecessors=True)
        parent[order[1:]] = pred[order[1:]]
        if root != 0:
            parent[root] = 0
        orders.append(order)
    order = np.concatenate(orders)
    sub = np.asarray(c, dtype=np.float64).copy()
    for n in order[::-1]:                       # children before parents
        if parent[n] >= 0:
            sub[parent[n]] += sub[n]
    child = order[parent[order] >= 0]
    start = cfg.X[parent[child]]
    return start, _min_image(cfg.X[child] - start, box), sub[child][:, None]


def trajectory_fields(cfg, grid, paths="pairs"):
    """Microscopic fields of one :class:`~mqcd.conservation.micro.Configuration` on ``grid``:
    ``{name: array}`` with ``rho`` (G,), ``mom`` (dim, G), ``E`` (G,), ``Pi`` and ``Pi_bond``
    (dim, dim, G), ``J``, ``J_bond`` and ``J_nonlocal`` (dim, G), and the whole-box sums
    ``box_kinetic = sum p p / M`` and ``box_bond = sum_p g_p d d / r`` (dim, dim)."""
    dim, G = grid.dim, grid.size
    X, P, M = cfg.X, cfg.P, cfg.M
    N = X.shape[0]
    v = P / M
    pp = (P[:, :, None] * P[:, None, :] / M).reshape(N, dim * dim)
    C = np.concatenate([np.full((N, 1), M), P, cfg.e[:, None], pp, v * cfg.e[:, None]], axis=1)
    out = np.zeros((C.shape[1], G))
    add_points(np.ascontiguousarray(X), np.ascontiguousarray(C), grid.box, grid.ng, grid.width,
               out)
    k = 0
    rho = out[k]; k += 1
    mom = out[k:k + dim]; k += dim
    E = out[k]; k += 1
    Pi_kin = out[k:k + dim * dim].reshape(dim, dim, G); k += dim * dim
    J_kin = out[k:k + dim]
    # bonds: segment from x^k (= x_j) to x^n (= x_i), vector d = x_i - x_j
    d, r = cfg.d, cfg.r
    x0 = X[cfg.j]
    vsum = np.einsum("pa,pa->p", d, v[cfg.i] + v[cfg.j])
    Cb = np.concatenate([-(cfg.g / r)[:, None] * d, (-(cfg.g_hf / (2 * r)) * vsum)[:, None]],
                        axis=1)
    ob = np.zeros((dim + 1, dim, G))
    add_segments(np.ascontiguousarray(x0), np.ascontiguousarray(d), np.ascontiguousarray(Cb),
                 grid.box, grid.ng, grid.width, ob)
    Pi_bond = ob[:dim]                                  # [m, l] -> symmetric in (l, m)
    J_bond = ob[dim]
    J_nl = np.zeros((dim, G))
    if np.any(cfg.a) and np.any(cfg.s):
        if paths == "pairs":
            n_idx, m_idx = np.nonzero(~np.eye(N, dtype=bool))
            dv = _min_image(X[n_idx] - X[m_idx], grid.box)
            cn = (2.0 * cfg.a[n_idx] * cfg.s[m_idx])[:, None]
            start = X[m_idx]
        elif paths == "star":
            dv = _min_image(X - X[0], grid.box)
            cn = (2.0 * cfg.s.sum() * cfg.a)[:, None]
            start = np.repeat(X[:1], N, axis=0)
        elif paths == "tree":
            start, dv, cn = tree_segments(cfg, 2.0 * cfg.s.sum() * cfg.a, grid.box)
        else:
            raise ValueError(f"paths = '{paths}': allowed {', '.join(PATHS)}")
        on = np.zeros((1, dim, G))
        add_segments(np.ascontiguousarray(start), np.ascontiguousarray(dv),
                     np.ascontiguousarray(cn), grid.box, grid.ng, grid.width, on)
        J_nl = on[0]
    box_kin = P.T @ P / M
    box_bond = np.einsum("p,pa,pb->ab", cfg.g / r, d, d)
    return {"rho": rho, "mom": mom, "E": E, "Pi": Pi_kin + Pi_bond, "Pi_bond": Pi_bond,
            "J": J_kin + J_bond + J_nl, "J_bond": J_bond, "J_nonlocal": J_nl,
            "box_kinetic": box_kin, "box_bond": box_bond}


@dataclass
class FieldSeries:
    """Ensemble fields at a sequence of records: ``data[name]`` has a leading record axis."""
    time: np.ndarray
    grid: Grid
    data: dict = field(default_factory=dict)
    weights: np.ndarray | None = None
    surfaces: np.ndarray | None = None
    derivatives: str = "minimum-norm"
    paths: str = "pairs"

    def __getitem__(self, name):
        return self.data[name]

    def derived(self):
        """``u`` (R, dim, G), ``sigma`` (R, dim, dim, G), ``q`` (R, dim, G) from the means."""
        rho, mom, E, Pi, J = (self.data[k] for k in ("rho", "mom", "E", "Pi", "J"))
        u = mom / np.where(rho > 0, rho, np.inf)[:, None]
        sigma = -(Pi - rho[:, None, None] * u[:, :, None] * u[:, None, :])
        q = J - E[:, None] * u + np.einsum("rlmg,rmg->rlg", sigma, u)
        return {"u": u, "sigma": sigma, "q": q}


def ensemble_fields(model, positions, momenta, surfaces, grid, weights=None, times=None,
                    derivatives="minimum-norm", paths="pairs", select=None):
    """Weighted ensemble fields at every record.

    Parameters
    ----------
    model : PairSurfaces
        The many-particle model (mqcd/models/pairs.py) the trajectories ran on.
    positions, momenta : ndarray, (R, ntraj, N*dim)
        Per-record phase points (bohr; electron_mass * bohr / atomic_unit_of_time).
    surfaces : ndarray of int, (R, ntraj)
        Adiabatic surface of every trajectory at every record.
    grid : Grid
    weights : ndarray, (ntraj,), optional
        Trajectory weights (gibbs: ``final/weight``); None = equal.
    times : ndarray, (R,), optional
        Record times (atomic_unit_of_time).
    derivatives : {"minimum-norm", "hellmann-feynman"}
    paths : {"pairs", "star", "tree"}
    select : ndarray of bool, (ntraj,), optional
        Only these trajectories (e.g. one surface's).

    Returns
    -------
    FieldSeries
    """
    R, ntraj = positions.shape[:2]
    w = np.ones(ntraj) if weights is None else np.asarray(weights, dtype=np.float64)
    use = np.ones(ntraj, bool) if select is None else np.asarray(select, bool)
    wsum = w[use].sum()
    series = FieldSeries(time=np.arange(R, dtype=float) if times is None else np.asarray(times),
                         grid=grid, weights=w, surfaces=surfaces, derivatives=derivatives,
                         paths=paths)
    acc = None
    for rec in range(R):
        tot = None
        for t in np.nonzero(use)[0]:
            cfg = configuration(model, positions[rec, t], momenta[rec, t], surfaces[rec, t],
                                derivatives)
            f = trajectory_fields(cfg, grid, paths)
            if tot is None:
                tot = {k: w[t] * v for k, v in f.items()}
            else:
                for k, v in f.items():
                    tot[k] += w[t] * v
        if acc is None:
            acc = {k: np.empty((R,) + v.shape) for k, v in tot.items()}
        for k, v in tot.items():
            acc[k][rec] = v / wsum
    series.data = acc
    return series
