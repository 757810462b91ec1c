"""Exact-factorisation fields of a grid wavefunction, on the grid and at arbitrary points.

For the total state ``Psi(x, r) = sum_a psi_a(x) |a>`` (diabatic states ``|a>``) the exact
factorisation (Abedi, Maitra & Gross; in the density-matrix form of Martinazzo & Burghardt, MB)
gives, at every nuclear point x (atomic units, hbar = 1):

* the nuclear density ``n = sum_a |psi_a|^2`` (bohr^-D) and the derivatives of ``ln n``;
* the conditional electronic density matrix ``rho_ab = psi_a psi_b^* / n`` (diabatic basis,
  Hermitian, trace 1, pure) and its first and second spatial derivatives.

With ``A = psi psi^dagger = n rho`` and ``l_i = d_i ln n``, ``l_ij = d_i d_j ln n``::

    d_i rho     = (A_i - l_i A) / n
    d_i d_j rho = (A_ij - l_j A_i - l_i A_j - (l_ij - l_i l_j) A) / n

with ``A_i = psi_i psi^dagger + psi psi_i^dagger`` and ``A_ij = psi_ij psi^dagger + psi_i psi_j^dagger
+ psi_j psi_i^dagger + psi psi_ij^dagger``; the density derivatives are
``n_i = 2 Re(psi^dagger psi_i)``, ``n_ij = 2 Re(psi_j^dagger psi_i + psi^dagger psi_ij)``,
``n_ijk = 2 Re(psi_jk^dagger psi_i + psi_j^dagger psi_ik + psi_k^dagger psi_ij + psi^dagger psi_ijk)``.
These are the fields the coupled trajectory methods estimate from the swarm; here they are exact
up to the grid's accuracy, which makes them the *oracle* of ``[method] field_method = "exact"``
(mqcd/fields/oracle.py) and the reference of the frozen-snapshot estimator tests.

The derivatives of psi are spectral (FFT on the periodic grid). Values at arbitrary points come
from the derivative fields upsampled by FFT zero padding (factor ``upsample``) and local Lagrange
interpolation of ``order`` points per dof on the fine grid: psi is band limited to
``p_max <= pi / (2 dx)`` by the grid rules (mqcd/exact/grid.py), so on the fine grid every field
has at least ``4 * upsample`` points per wavelength. With the defaults (upsample 2, 10 points) the
interpolation error against a 8x upsampled reference is <= 4e-6 of the field's maximum for n,
d ln n, d rho and d^2 rho and 6e-5 for d^3 ln n on Tully 3 (k = 10, t = 2750 a.u.).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from numba import njit, prange

from ..fields.estimate import FieldEstimate, log_derivatives
from ..fields.multiindex import index_of, multi_indices

#: highest derivative of psi the fields need (third derivatives of ln n)
MAX_ORDER = 3


def derivative_table(D: int):
    """Multi-indices of the psi derivatives (total order <= 3), graded order; (n_ops, D) int."""
    return multi_indices(D, MAX_ORDER)


def spectral_derivatives(psi, dx, ops, upsample=1, workers=1):
    """Spectral derivatives ``d^a psi`` on the periodic grid, optionally on a finer grid.

    Parameters
    ----------
    psi : (ns, n1[, n2]) complex wavefunction on the grid (points ``x0 + j dx``).
    dx : sequence of float, grid spacing per dof (bohr).
    ops : (n_ops, D) int multi-indices (from :func:`derivative_table`).
    upsample : int
        Fine-grid factor: the outputs are sampled at ``x0 + j dx / upsample`` (FFT zero padding;
        the Nyquist bin of the coarse grid is dropped, it carries no physical amplitude).

    Returns
    -------
    (n_ops, ns, m1[, m2]) complex, ``m = upsample * n`` (bohr^-|a| times psi's units).
    """
    psi = np.asarray(psi, dtype=np.complex128)
    ns = psi.shape[0]
    shape = psi.shape[1:]
    D = len(shape)
    axes = tuple(range(1, D + 1))
    f = scipy.fft.fftn(psi, axes=axes, workers=workers)
    ks = [2 * np.pi * np.fft.fftfreq(n, d) for n, d in zip(shape, dx)]
    for k, n in zip(ks, shape):
        if n % 2 == 0:
            k[n // 2] = 0.0           # Nyquist bin: its derivative is ill-defined; dropped below
    fine = tuple(upsample * n for n in shape)
    out = np.empty((len(ops), ns) + fine, dtype=np.complex128)
    for o, a in enumerate(ops):
        g = f.copy()
        for j in range(D):
            if a[j]:
                sh = [1] * (D + 1)
                sh[j + 1] = shape[j]
                g *= ((1j * ks[j]) ** int(a[j])).reshape(sh)
        if upsample > 1:
            # zero padding: non-negative frequencies stay at the start of each axis, negative
            # ones move to the end of the longer axis (the coarse Nyquist bin is left out)
            src = [np.concatenate([np.arange(0, (n + 1) // 2), np.arange(n - (n - 1) // 2, n)])
                   for n in shape]
            dst = [np.concatenate([np.arange(0, (n + 1) // 2),
                                   np.arange(n - (n - 1) // 2, n) - n + m])
                   for n, m in zip(shape, fine)]
            pad = np.zeros((ns,) + fine, dtype=np.complex128)
            pad[(slice(None),) + np.ix_(*dst)] = g[(slice(None),) + np.ix_(*src)]
            g = pad * float(upsample ** D)
        out[o] = scipy.fft.ifftn(g, axes=axes, workers=workers)
    return out


@njit(cache=True, inline="always")
def _lagrange_weights(t, order, w):
    """Lagrange weights of ``order`` equispaced nodes 0..order-1 at position t (node units)."""
    for i in range(order):
        v = 1.0
        for j in range(order):
            if j != i:
                v *= (t - j) / (i - j)
        w[i] = v


@njit(parallel=True, cache=True)
def _interp1(F, x0, h, order, pts, out):
    """out[p, c] = interpolation of F[c, :] (uniform grid x0 + j h) at pts[p] (Lagrange)."""
    C, n = F.shape
    P = pts.shape[0]
    half = order // 2
    for p in prange(P):
        w = np.empty(order)
        u = (pts[p] - x0) / h
        j0 = int(np.floor(u)) - half + 1
        if j0 < 0 or j0 + order > n or not np.isfinite(u):
            for c in range(C):
                out[p, c] = np.nan
            continue
        _lagrange_weights(u - j0, order, w)
        for c in range(C):
            v = 0j
            for i in range(order):
                v += w[i] * F[c, j0 + i]
            out[p, c] = v


@njit(parallel=True, cache=True)
def _interp2(F, x0, y0, hx, hy, order, pts, out):
    C, n1, n2 = F.shape
    P = pts.shape[0]
    half = order // 2
    for p in prange(P):
        wx = np.empty(order)
        wy = np.empty(order)
        u = (pts[p, 0] - x0) / hx
        v = (pts[p, 1] - y0) / hy
        if not (np.isfinite(u) and np.isfinite(v)):
            for c in range(C):
                out[p, c] = np.nan
            continue
        i0 = int(np.floor(u)) - half + 1
        j0 = int(np.floor(v)) - half + 1
        if i0 < 0 or i0 + order > n1 or j0 < 0 or j0 + order > n2:
            for c in range(C):
                out[p, c] = np.nan
            continue
        _lagrange_weights(u - i0, order, wx)
        _lagrange_weights(v - j0, order, wy)
        for c in range(C):
            acc = 0j
            for i in range(order):
                row = 0j
                for j in range(order):
                    row += wy[j] * F[c, i0 + i, j0 + j]
                acc += wx[i] * row
            out[p, c] = acc


@dataclass
class PointDerivatives:
    """psi and its derivatives at M points: ``values[o]`` (M, ns) for the multi-index ``ops[o]``."""
    ops: np.ndarray
    values: np.ndarray        # (n_ops, M, ns) complex


def fields_from_derivatives(d: PointDerivatives, need_rho2=True) -> FieldEstimate:
    """Exact-factorisation fields (module docstring) from psi derivatives at M points.

    Returns a :class:`mqcd.fields.FieldEstimate` with ``n``, ``dlogn``, ``d2logn``, ``d3logn``,
    ``rho``, ``drho`` and (``need_rho2``) ``d2rho``; points where ``n`` is zero or not finite get
    NaN.
    """
    ops = np.asarray(d.ops)
    D = ops.shape[1]
    idx = index_of(ops)

    def P(*dofs):
        a = [0] * D
        for j in dofs:
            a[j] += 1
        return d.values[idx[tuple(a)]]

    psi = P()
    M = psi.shape[0]
    cdot = lambda a, b: np.einsum("ma,ma->m", np.conj(a), b)     # noqa: E731  a^dagger b
    n = np.einsum("ma,ma->m", np.conj(psi), psi).real
    n1 = np.empty((M, D))
    n2 = np.empty((M, D, D))
    n3 = np.empty((M, D, D, D))
    for i in range(D):
        n1[:, i] = 2.0 * cdot(psi, P(i)).real
        for j in range(D):
            n2[:, i, j] = 2.0 * (cdot(P(j), P(i)) + cdot(psi, P(i, j))).real
            for k in range(D):
                n3[:, i, j, k] = 2.0 * (cdot(P(j, k), P(i)) + cdot(P(j), P(i, k))
                                        + cdot(P(k), P(i, j)) + cdot(psi, P(i, j, k))).real
    bad = ~(np.isfinite(n) & (n > 0))
    nn = np.where(bad, 1.0, n)
    l1, l2, l3 = log_derivatives(nn, n1, n2, n3)
    outer = lambda a, b: np.einsum("ma,mb->mab", a, np.conj(b))   # noqa: E731  a b^dagger
    A = outer(psi, psi)
    Ai = [outer(P(i), psi) + outer(psi, P(i)) for i in range(D)]
    rho = A / nn[:, None, None]
    drho = np.empty((M, D) + rho.shape[1:], dtype=np.complex128)
    for i in range(D):
        drho[:, i] = (Ai[i] - l1[:, i, None, None] * A) / nn[:, None, None]
    d2rho = None
    if need_rho2:
        d2rho = np.empty((M, D, D) + rho.shape[1:], dtype=np.complex128)
        for i in range(D):
            for j in range(i, D):
                Aij = (outer(P(i, j), psi) + outer(P(i), P(j)) + outer(P(j), P(i))
                       + outer(psi, P(i, j)))
                v = (Aij - l1[:, j, None, None] * Ai[i] - l1[:, i, None, None] * Ai[j]
                     - (l2[:, i, j] - l1[:, i] * l1[:, j])[:, None, None] * A) / nn[:, None, None]
                d2rho[:, i, j] = v
                d2rho[:, j, i] = v
    f = FieldEstimate(n=n, dlogn=l1, d2logn=l2, d3logn=l3, rho=rho, drho=drho, d2rho=d2rho,
                      method="exact", method_reason="exact split-operator wavefunction")
    if bad.any():
        for name in ("n", "dlogn", "d2logn", "d3logn", "rho", "drho", "d2rho"):
            a = getattr(f, name)
            if a is not None:
                a[bad] = np.nan
    return f


class GridFields:
    """psi derivatives of one grid wavefunction, ready for evaluation at arbitrary points.

    Parameters
    ----------
    psi : (ns, n1[, n2]) complex wavefunction on the solver grid.
    axes : list of 1-D arrays, the grid coordinates per dof (bohr, uniform).
    upsample : int, fine-grid factor (default 2).
    order : int, Lagrange points per dof on the fine grid (default 10).
    """

    def __init__(self, psi, axes, upsample=2, order=10, workers=1):
        self.D = len(axes)
        self.upsample = int(upsample)
        self.order = int(order)
        self.dx = [float(a[1] - a[0]) for a in axes]
        self.x0 = [float(a[0]) for a in axes]
        self.ops = derivative_table(self.D)
        self.ns = psi.shape[0]
        fine = spectral_derivatives(psi, self.dx, self.ops, self.upsample, workers=workers)
        # (n_ops * ns, m1[, m2]) channels for the interpolation kernels
        self.F = np.ascontiguousarray(fine.reshape((-1,) + fine.shape[2:]))
        self.h = [d / self.upsample for d in self.dx]

    def at(self, x) -> PointDerivatives:
        """psi derivatives at points ``x`` (M, D) (bohr); NaN outside the grid."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(-1, self.D))
        out = np.empty((x.shape[0], self.F.shape[0]), dtype=np.complex128)
        if self.D == 1:
            _interp1(self.F, self.x0[0], self.h[0], self.order, x[:, 0], out)
        else:
            _interp2(self.F, self.x0[0], self.x0[1], self.h[0], self.h[1], self.order, x, out)
        vals = out.reshape(x.shape[0], len(self.ops), self.ns).transpose(1, 0, 2)
        return PointDerivatives(self.ops, np.ascontiguousarray(vals))

    def fields_at(self, x, need_rho2=True) -> FieldEstimate:
        """Exact-factorisation fields at ``x`` (:func:`fields_from_derivatives`)."""
        return fields_from_derivatives(self.at(x), need_rho2=need_rho2)


def grid_fields(psi, axes, need_rho2=True, workers=1) -> FieldEstimate:
    """Exact-factorisation fields at every grid point (flattened, C order), spectral derivatives."""
    D = len(axes)
    ops = derivative_table(D)
    dx = [float(a[1] - a[0]) for a in axes]
    der = spectral_derivatives(psi, dx, ops, 1, workers=workers)
    vals = der.reshape(len(ops), psi.shape[0], -1).transpose(0, 2, 1)
    return fields_from_derivatives(PointDerivatives(ops, np.ascontiguousarray(vals)), need_rho2)


def quantile_positions(psi, axes, N: int, upsample=8, workers=1) -> np.ndarray:
    """Where N equal-weight fluid elements of the density of the grid wavefunction ``psi`` sit:
    the points with cumulative probability (I + 1/2) / N, I = 0..N-1 (1D; bohr, ascending).

    The density is sampled on the grid refined ``upsample`` times by FFT zero padding (exact
    for the band-limited psi), interpolated by a septic spline (``scipy.interpolate``; C^6, so
    that the positions are smooth functions of the label to ~1e-13, as the fourth derivatives
    taken by the fluid-element estimator need: a piecewise interpolant with kinks at its knots
    would show up there), integrated exactly (the spline's antiderivative) and inverted with
    Newton steps.
    """
    from scipy.interpolate import make_interp_spline
    if len(axes) != 1:
        raise ValueError("quantile_positions is one-dimensional")
    dx = float(axes[0][1] - axes[0][0])
    fine = spectral_derivatives(psi, [dx], np.zeros((1, 1), np.int64), upsample, workers)[0]
    n = np.sum(np.abs(fine) ** 2, axis=0)
    xf = axes[0][0] + np.arange(n.size) * dx / upsample
    spl = make_interp_spline(xf, n, k=7)
    C = spl.antiderivative()
    c0, c1 = C(xf[0]), C(xf[-1])
    q = c0 + (np.arange(N) + 0.5) / N * (c1 - c0)
    cg = C(xf)
    x = np.interp(q, cg, xf)
    for _ in range(30):
        step = (C(x) - q) / np.maximum(spl(x), 1e-300)
        x = np.clip(x - step, xf[0], xf[-1])
        if np.max(np.abs(step)) < 1e-14:
            break
    return x
