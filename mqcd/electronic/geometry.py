"""Geometric quantities of the conditional electronic density-matrix field rho(x) and the
electron-nuclear correction terms of the coupled methods (atomic units, hbar = 1).

Notation (docs/theory/fields.md, MB = Martinazzo & Burghardt):

* quantum geometric tensor ``q_kj = Tr(rho d_k rho d_j rho)`` (MB(73)), metric ``g_kj = Re q_kj``
  (bohr^-2), Berry curvature ``B_kj = -2 Im q_kj`` (bohr^-2);
* ``d_i g_kj = Re[Tr(d_i rho d_k rho d_j rho) + Tr(rho d_i d_k rho d_j rho) + Tr(rho d_k rho d_i d_j rho)]``;
* with diagonal inverse masses ``xi^ii = 1 / M_i``:
  ``T1_k = sum_i xi^ii d_i g_ki`` and
  ``T2_k = sum_i xi^ii (1/n) d_i (n g_ki) = T1_k + sum_i xi^ii (d_i ln n) g_ki`` (hartree/bohr);
  the force corrections of MB Table II are ``-T1`` (geometric Ehrenfest), ``2 sum_j u^j g_kj``
  (quantum coupling) and ``-T2`` (both, MB(64));
* osmotic velocity ``u^j = -(1/2) xi^jj d_j ln n`` (MB(11)), ``w_k = -(1/2) d_k ln n``;
* electronic corrections (hartree, Hermitian ``(N, ns, ns)``): geometric ``-(1/2) Delta_M rho``
  (MB(40)), quantum coupling ``sum_j u^j d_j rho``, and their sum
  ``-(1/(2n)) sum_i xi^ii d_i (n d_i rho)`` (MB(67));
* nuclear quantum force (MB(38)) ``(F_q)_k = sum_j u^j d_j w_k - (1/2) sum_j xi^jj d_j d_j w_k
  = (1/4) sum_j xi^jj (d_j ln n d_j d_k ln n + d_j d_j d_k ln n)`` (hartree/bohr), equal to the last
  term of MB(68).

Identities worth knowing (used in the tests): for any trace-1 field all corrections are traceless;
for a pure-state field ``Tr(rho d_k rho) = 0``, ``Tr(d_k rho d_j rho) = 2 g_kj``, hence
``Tr(rho dH_qc) = 0`` and ``Tr(rho dH_geo) = sum_i xi^ii g_ii`` (twice the local geometric kinetic
energy density ``T_geo = (1/2) sum_i xi^ii g_ii`` of LRG(8)).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from numba import njit, prange


def _inv_mass(masses, D):
    m = np.broadcast_to(np.asarray(masses, dtype=np.float64), (D,))
    if np.any(m <= 0):
        raise ValueError("masses must be positive")
    return 1.0 / m


_CHUNK = 256  # points per parallel work item (scratch arrays are allocated once per chunk)


@njit(cache=True, inline="always")
def _rho_drho(rho, drho, t, X):
    """``X[k] = rho d_k rho`` at point ``t``."""
    D, ns = drho.shape[1], drho.shape[2]
    for k in range(D):
        for a in range(ns):
            for c in range(ns):
                v = 0j
                for b in range(ns):
                    v += rho[t, a, b] * drho[t, k, b, c]
                X[k, a, c] = v


@njit(cache=True, inline="always")
def _tr(A, drho, t, j):
    """``Tr(A d_j rho)`` at point ``t``."""
    ns = A.shape[0]
    v = 0j
    for a in range(ns):
        for c in range(ns):
            v += A[a, c] * drho[t, j, c, a]
    return v


@njit(parallel=True, cache=True)
def _qgt(rho, drho):
    N, D, ns, _ = drho.shape
    q = np.empty((N, D, D), dtype=np.complex128)
    for ch in prange((N + _CHUNK - 1) // _CHUNK):
        X = np.empty((D, ns, ns), dtype=np.complex128)
        for t in range(ch * _CHUNK, min(N, (ch + 1) * _CHUNK)):
            _rho_drho(rho, drho, t, X)
            for k in range(D):
                for j in range(D):
                    q[t, k, j] = _tr(X[k], drho, t, j)
    return q


def quantum_geometric_tensor(rho, drho):
    """``q_kj = Tr(rho d_k rho d_j rho)`` (MB(73)).

    Parameters
    ----------
    rho : (N, ns, ns) complex; drho : (N, D, ns, ns) complex (bohr^-1).

    Returns ``(N, D, D)`` complex (bohr^-2).
    """
    return _qgt(np.ascontiguousarray(rho, dtype=np.complex128),
                np.ascontiguousarray(drho, dtype=np.complex128))


def metric(rho, drho):
    """Fubini-Study metric ``g_kj = Re Tr(rho d_k rho d_j rho)``, ``(N, D, D)`` real (bohr^-2)."""
    return quantum_geometric_tensor(rho, drho).real.copy()


def berry_curvature(rho, drho):
    """Berry curvature ``B_kj = -2 Im Tr(rho d_k rho d_j rho)``, ``(N, D, D)`` real (bohr^-2)."""
    return -2.0 * quantum_geometric_tensor(rho, drho).imag


@njit(cache=True, inline="always")
def _dg_point(rho, drho, d2rho, t, X, Z, dg):
    """``dg[i, k, j] = d_i g_kj`` at point ``t`` (``X[k] = rho d_k rho`` already filled)."""
    D, ns = drho.shape[1], drho.shape[2]
    for i in range(D):
        for k in range(D):
            for a in range(ns):
                for c in range(ns):
                    v = 0j
                    for b in range(ns):
                        v += drho[t, i, a, b] * drho[t, k, b, c] + rho[t, a, b] * d2rho[t, i, k, b, c]
                    Z[a, c] = v
            for j in range(D):
                v = 0.0
                for a in range(ns):
                    for c in range(ns):
                        v += (Z[a, c] * drho[t, j, c, a] + X[k, a, c] * d2rho[t, i, j, c, a]).real
                dg[i, k, j] = v


@njit(parallel=True, cache=True)
def _metric_derivative(rho, drho, d2rho):
    N, D, ns, _ = drho.shape
    out = np.empty((N, D, D, D))
    for ch in prange((N + _CHUNK - 1) // _CHUNK):
        X = np.empty((D, ns, ns), dtype=np.complex128)
        Z = np.empty((ns, ns), dtype=np.complex128)
        for t in range(ch * _CHUNK, min(N, (ch + 1) * _CHUNK)):
            _rho_drho(rho, drho, t, X)
            _dg_point(rho, drho, d2rho, t, X, Z, out[t])
    return out


@njit(cache=True, inline="always")
def _t2_fq(t, D, xi, l1, l2, l3, g, T1, T2, Fq, have2, haveL3):
    """T2 = T1 + sum_i xi^ii d_i ln n g_ki and the quantum force at point t (both paths)."""
    if have2:
        for k in range(D):
            v = T1[t, k]
            for i in range(D):
                v += xi[i] * l1[t, i] * g[t, k, i]
            T2[t, k] = v
    if haveL3:
        for k in range(D):
            v = 0.0
            for j in range(D):
                v += xi[j] * (l1[t, j] * l2[t, j, k] + l3[t, j, j, k])
            Fq[t, k] = 0.25 * v


@njit(parallel=True, cache=True)
def _geometry_all(rho, drho, d2rho, l1, l2, l3, xi, have2, haveL, haveL3,
                  g, B, dg, T1, T2, u, dHg, dHq, Fq, Tgeo):
    """Every geometric quantity in one pass over the points (see :func:`geometry_from_fields`)."""
    N, D, ns, _ = drho.shape
    for ch in prange((N + _CHUNK - 1) // _CHUNK):
        X = np.empty((D, ns, ns), dtype=np.complex128)
        Z = np.empty((ns, ns), dtype=np.complex128)
        for t in range(ch * _CHUNK, min(N, (ch + 1) * _CHUNK)):
            _rho_drho(rho, drho, t, X)
            tg = 0.0
            for k in range(D):
                for j in range(D):
                    q = _tr(X[k], drho, t, j)
                    g[t, k, j] = q.real
                    B[t, k, j] = -2.0 * q.imag
                tg += 0.5 * xi[k] * g[t, k, k]
            Tgeo[t] = tg
            if have2:
                _dg_point(rho, drho, d2rho, t, X, Z, dg[t])
                for k in range(D):
                    v = 0.0
                    for i in range(D):
                        v += xi[i] * dg[t, i, k, i]
                    T1[t, k] = v
                for a in range(ns):
                    for c in range(ns):
                        v = 0j
                        for i in range(D):
                            v += xi[i] * d2rho[t, i, i, a, c]
                        dHg[t, a, c] = -0.5 * v
            if haveL:
                for j in range(D):
                    u[t, j] = -0.5 * xi[j] * l1[t, j]
                for a in range(ns):
                    for c in range(ns):
                        v = 0j
                        for j in range(D):
                            v += u[t, j] * drho[t, j, a, c]
                        dHq[t, a, c] = v
                _t2_fq(t, D, xi, l1, l2, l3, g, T1, T2, Fq, have2, haveL3)


def metric_derivative(rho, drho, d2rho):
    """``dg[:, i, k, j] = d_i g_kj`` by the product rule.

    Parameters
    ----------
    rho : (N, ns, ns); drho : (N, D, ns, ns); d2rho : (N, D, D, ns, ns) complex (bohr^-k).

    Returns ``(N, D, D, D)`` real (bohr^-3).
    """
    return _metric_derivative(np.ascontiguousarray(rho, dtype=np.complex128),
                              np.ascontiguousarray(drho, dtype=np.complex128),
                              np.ascontiguousarray(d2rho, dtype=np.complex128))


def t1_term(dg, masses):
    """``T1_k = sum_i xi^ii d_i g_ki`` from ``dg`` (N, D, D, D) (see :func:`metric_derivative`).

    Returns ``(N, D)`` (hartree/bohr with hbar = 1: bohr^-3 / mass)."""
    D = dg.shape[1]
    xi = _inv_mass(masses, D)
    # dg[:, i, k, i] summed over i with weight xi_i
    return np.einsum("nikj,ij,i->nk", dg, np.eye(D), xi)


def t2_term(dg, g, dlogn, masses):
    """``T2_k = sum_i xi^ii (1/n) d_i (n g_ki) = T1_k + sum_i xi^ii (d_i ln n) g_ki``.

    Parameters: dg (N, D, D, D), g (N, D, D), dlogn (N, D), masses (D,). Returns ``(N, D)``."""
    D = g.shape[1]
    xi = _inv_mass(masses, D)
    return t1_term(dg, masses) + np.einsum("nki,ni,i->nk", g, dlogn, xi)


def osmotic_velocity(dlogn, masses):
    """``u^j = -(1/2) xi^jj d_j ln n`` (MB(11)), ``(N, D)`` (bohr / a.u. time)."""
    return -0.5 * dlogn * _inv_mass(masses, dlogn.shape[1])


def geometric_correction(d2rho, masses):
    """``-(1/2) Delta_M rho = -(1/2) sum_i xi^ii d_i d_i rho`` (MB(40)), ``(N, ns, ns)`` Hermitian.

    ``d2rho`` may be the full ``(N, D, D, ns, ns)`` array or its diagonal ``(N, D, ns, ns)``."""
    if d2rho.ndim == 5:
        D = d2rho.shape[1]
        diag = d2rho[:, np.arange(D), np.arange(D)]
    else:
        diag = d2rho
        D = d2rho.shape[1]
    xi = _inv_mass(masses, D)
    return -0.5 * np.einsum("nijk,i->njk", diag, xi)


def quantum_coupling_correction(drho, dlogn, masses):
    """``sum_j u^j d_j rho`` with ``u^j = -(1/2) xi^jj d_j ln n``, ``(N, ns, ns)`` Hermitian."""
    u = osmotic_velocity(dlogn, masses)
    return np.einsum("nj,njab->nab", u.astype(np.complex128), drho)


def combined_correction(drho, d2rho, dlogn, masses):
    """``-(1/(2n)) sum_i xi^ii d_i (n d_i rho)`` (MB(67)) = geometric + quantum-coupling parts."""
    return geometric_correction(d2rho, masses) + quantum_coupling_correction(drho, dlogn, masses)


def quantum_force(dlogn, d2logn, d3logn, masses):
    """Nuclear quantum force (MB(38)) with ``w_k = -(1/2) d_k ln n``::

        (F_q)_k = sum_j u^j d_j w_k - (1/2) sum_j xi^jj d_j d_j w_k
                = (1/4) sum_j xi^jj (d_j ln n d_j d_k ln n + d_j d_j d_k ln n)

    Parameters: dlogn (N, D), d2logn (N, D, D), d3logn (N, D, D, D), masses (D,).
    Returns ``(N, D)`` (hartree/bohr)."""
    D = dlogn.shape[1]
    xi = _inv_mass(masses, D)
    jj = np.arange(D)
    d3_jjk = d3logn[:, jj, jj, :]  # (N, j, k)
    return 0.25 * (np.einsum("j,nj,njk->nk", xi, dlogn, d2logn) + np.einsum("j,njk->nk", xi, d3_jjk))


@dataclass
class Geometry:
    """Geometric quantities at ``N`` points (see module docstring; ``None`` if inputs missing).

    g (N, D, D), B (N, D, D), dg (N, D, D, D) with ``dg[:, i, k, j] = d_i g_kj``,
    T1 (N, D), T2 (N, D), u (N, D) osmotic velocity,
    dH_geo, dH_qc, dH (N, ns, ns) electronic corrections (geometric, quantum coupling, MB(67) sum),
    Fq (N, D) quantum force, T_geo (N,) ``(1/2) sum_i xi^ii g_ii``.
    """

    g: Optional[np.ndarray] = None
    B: Optional[np.ndarray] = None
    dg: Optional[np.ndarray] = None
    T1: Optional[np.ndarray] = None
    T2: Optional[np.ndarray] = None
    u: Optional[np.ndarray] = None
    dH_geo: Optional[np.ndarray] = None
    dH_qc: Optional[np.ndarray] = None
    dH: Optional[np.ndarray] = None
    Fq: Optional[np.ndarray] = None
    T_geo: Optional[np.ndarray] = None


@njit(cache=True, inline="always")
def _bloch(m, out):
    """Bloch components of a 2x2 Hermitian matrix ``m = (c0 + c.sigma)/2``: ``out = c`` (3,)."""
    out[0] = 2.0 * m[0, 1].real
    out[1] = -2.0 * m[0, 1].imag
    out[2] = (m[0, 0] - m[1, 1]).real


@njit(parallel=True, cache=True)
def _geometry_all_2(rho, drho, d2rho, l1, l2, l3, xi, have2, haveL, haveL3,
                    g, B, dg, T1, T2, u, dHg, dHq, Fq, Tgeo):
    """Two-state fast path of :func:`_geometry_all` in real Bloch-vector arithmetic.

    With ``rho = (1 + r.sigma)/2`` (any Hermitian trace-1 2x2 matrix, pure or not),
    ``a_k = d_k r`` and ``b_ik = d_i d_k r``: ``q_kj = (a_k.a_j + i r.(a_k x a_j)) / 4``, hence
    ``g_kj = a_k.a_j / 4``, ``B_kj = -r.(a_k x a_j) / 2``, ``d_i g_kj = (b_ik.a_j + a_k.b_ij) / 4``,
    ``dH_geo = -(1/4) sum_i xi^ii b_ii.sigma`` and ``dH_qc = (1/2) sum_j u^j a_j.sigma``."""
    N, D = drho.shape[0], drho.shape[1]
    for ch in prange((N + _CHUNK - 1) // _CHUNK):
        r = np.empty(3)
        a = np.empty((D, 3))
        b = np.empty((D, D, 3))
        c = np.empty(3)
        for t in range(ch * _CHUNK, min(N, (ch + 1) * _CHUNK)):
            _bloch(rho[t], r)
            for k in range(D):
                _bloch(drho[t, k], a[k])
            tg = 0.0
            for k in range(D):
                for j in range(D):
                    g[t, k, j] = 0.25 * (a[k, 0] * a[j, 0] + a[k, 1] * a[j, 1] + a[k, 2] * a[j, 2])
                    cx = a[k, 1] * a[j, 2] - a[k, 2] * a[j, 1]
                    cy = a[k, 2] * a[j, 0] - a[k, 0] * a[j, 2]
                    cz = a[k, 0] * a[j, 1] - a[k, 1] * a[j, 0]
                    B[t, k, j] = -0.5 * (r[0] * cx + r[1] * cy + r[2] * cz)
                tg += 0.5 * xi[k] * g[t, k, k]
            Tgeo[t] = tg
            if have2:
                for i in range(D):
                    for k in range(D):
                        _bloch(d2rho[t, i, k], b[i, k])
                for i in range(D):
                    for k in range(D):
                        for j in range(D):
                            dg[t, i, k, j] = 0.25 * (b[i, k, 0] * a[j, 0] + b[i, k, 1] * a[j, 1]
                                                     + b[i, k, 2] * a[j, 2] + a[k, 0] * b[i, j, 0]
                                                     + a[k, 1] * b[i, j, 1] + a[k, 2] * b[i, j, 2])
                for k in range(D):
                    v = 0.0
                    for i in range(D):
                        v += xi[i] * dg[t, i, k, i]
                    T1[t, k] = v
                for q in range(3):
                    v = 0.0
                    for i in range(D):
                        v += xi[i] * b[i, i, q]
                    c[q] = -0.25 * v
                dHg[t, 0, 0] = c[2]
                dHg[t, 1, 1] = -c[2]
                dHg[t, 0, 1] = complex(c[0], -c[1])
                dHg[t, 1, 0] = complex(c[0], c[1])
            if haveL:
                for j in range(D):
                    u[t, j] = -0.5 * xi[j] * l1[t, j]
                for q in range(3):
                    v = 0.0
                    for j in range(D):
                        v += u[t, j] * a[j, q]
                    c[q] = 0.5 * v
                dHq[t, 0, 0] = c[2]
                dHq[t, 1, 1] = -c[2]
                dHq[t, 0, 1] = complex(c[0], -c[1])
                dHq[t, 1, 0] = complex(c[0], c[1])
                _t2_fq(t, D, xi, l1, l2, l3, g, T1, T2, Fq, have2, haveL3)


def geometry_from_fields(f, masses, workspace=None, generic=False) -> Geometry:
    """All geometric quantities available from a :class:`mqcd.fields.FieldEstimate` ``f``
    (one fused numba pass; the same formulas as the single-purpose functions above).

    ``workspace``: optional :class:`mqcd.fields.FieldWorkspace`; the output arrays are then
    buffers of the workspace, overwritten by the next call (no page faults on fresh memory).
    Two states use the real Bloch-vector fast path :func:`_geometry_all_2` unless ``generic``."""
    out = Geometry()
    if f.drho is None:
        if f.dlogn is not None:
            out.u = osmotic_velocity(f.dlogn, masses)
            if f.d2logn is not None and f.d3logn is not None:
                out.Fq = quantum_force(f.dlogn, f.d2logn, f.d3logn, masses)
        return out
    rho = np.ascontiguousarray(f.rho, dtype=np.complex128)
    drho = np.ascontiguousarray(f.drho, dtype=np.complex128)
    N, D, ns, _ = drho.shape
    xi = _inv_mass(masses, D).copy()
    have2 = f.d2rho is not None
    haveL = f.dlogn is not None
    haveL3 = haveL and f.d2logn is not None and f.d3logn is not None
    z = np.empty((1,) * 5, dtype=np.complex128)
    d2rho = np.ascontiguousarray(f.d2rho, dtype=np.complex128) if have2 else z
    l1 = np.ascontiguousarray(f.dlogn, dtype=np.float64) if haveL else np.empty((1, 1))
    l2 = np.ascontiguousarray(f.d2logn, dtype=np.float64) if haveL3 else np.empty((1, 1, 1))
    l3 = np.ascontiguousarray(f.d3logn, dtype=np.float64) if haveL3 else np.empty((1, 1, 1, 1))
    if workspace is None:
        e = np.empty
    else:
        counter = iter(range(1000))

        def e(shape, dtype=np.float64):
            return workspace.array(f"geometry{next(counter)}", shape if isinstance(shape, tuple)
                                   else (shape,), dtype)
    g, B = e((N, D, D)), e((N, D, D))
    dg = e((N, D, D, D)) if have2 else e((1, 1, 1, 1))
    T1 = e((N, D)) if have2 else e((1, 1))
    T2 = e((N, D)) if have2 and haveL else e((1, 1))
    u = e((N, D)) if haveL else e((1, 1))
    dHg = e((N, ns, ns), np.complex128) if have2 else e((1, 1, 1), np.complex128)
    dHq = e((N, ns, ns), np.complex128) if haveL else e((1, 1, 1), np.complex128)
    Fq = e((N, D)) if haveL3 else e((1, 1))
    Tgeo = e(N)
    kernel = _geometry_all_2 if (ns == 2 and not generic) else _geometry_all
    kernel(rho, drho, d2rho, l1, l2, l3, xi, have2, haveL, haveL3, g, B, dg, T1, T2, u, dHg, dHq, Fq, Tgeo)
    out.g, out.B, out.T_geo = g, B, Tgeo
    if have2:
        out.dg, out.T1, out.dH_geo = dg, T1, dHg
    if haveL:
        out.u, out.dH_qc = u, dHq
        if have2:
            out.T2 = T2
            out.dH = e((N, ns, ns), np.complex128)
            np.add(dHg, dHq, out=out.dH)
        if haveL3:
            out.Fq = Fq
    return out
