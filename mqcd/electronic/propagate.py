"""Exact unitary propagation of the conditional density matrix over one nuclear step.

Over a nuclear step from x(t) to x(t+dt), the electronic Hamiltonian is interpolated linearly in
time between its values at the two ends, H(s) = H0 + s (H1 - H0), and, with ``nsub`` substeps,
each substep uses the exact exponential of H at the substep midpoint:

    rho <- U rho U^dagger,   U = exp(-i H(s_k) dt/nsub),   s_k = (k + 1/2)/nsub.

This is the exponential midpoint rule: second order in dt, time-reversible, and -- because each
factor is an exact unitary -- trace, hermiticity and purity are conserved to round-off for any dt.
An optional Hermitian correction ``G`` (N, ns, ns) (the electronic corrections of the
exact-factorisation methods) is added to H over the whole step.

Which path runs (``propagate``):

* two states: the Bloch-vector form: with H = a0 + a.sigma and rho = (1 + r.sigma)/2,
  i drho/dt = [H, rho] is dr/dt = 2 a x r, a rotation about a by the angle 2|a|dt (Rodrigues'
  formula; no LAPACK call);
* more states (up to ``TAYLOR_MAX_STATES``), real symmetric H, no correction G: the batched
  matrix exponential of
  mqcd/electronic/batched.py (``propagate_taylor``: cos/sin of H tau by Paterson-Stockmeyer, no
  eigensolver) - the same exponential midpoint rule to round-off; Ehrenfest's path;
* otherwise (complex Hermitian H, or a correction G): one LAPACK eigendecomposition per
  substep.

``propagate_adiabatic`` is the surface-hopping path for many states: the symmetric split
``exp(-i H1 dt/2) exp(-i H0 dt/2)`` from the eigen-decompositions at the step ends, which the
method needs anyway (second order and time-reversible as well; it differs from the midpoint rule
by O(dt^3) per step), with the adiabatic populations at the end of the step as a by-product.
"""
import math

import numpy as np
from numba import njit

from . import batched
from .fastmath import sincos

#: largest number of states for which the batched exponential is used (faster than the LAPACK
#: path up to at least 32 states on this machine; larger ones are not measured)
TAYLOR_MAX_STATES = 32


@njit(cache=True, inline="always")
def _rotate(r0, r1, r2, ax, ay, az, tau):
    """Rotate the Bloch vector r about a by angle 2|a|tau (branch-free; a = 0 is the identity)."""
    amp = math.sqrt(ax * ax + ay * ay + az * az)
    th = 2.0 * amp * tau
    inv = 1.0 / max(amp, 1e-300)
    kx, ky, kz = ax * inv, ay * inv, az * inv
    s, c = sincos(th)
    kr = kx * r0 + ky * r1 + kz * r2
    cx = ky * r2 - kz * r1
    cy = kz * r0 - kx * r2
    cz = kx * r1 - ky * r0
    f = kr * (1.0 - c)
    return (r0 * c + cx * s + kx * f, r1 * c + cy * s + ky * f, r2 * c + cz * s + kz * f)


@njit(cache=True)
def _propagate2(rv, H0, H1, G, use_g, dt, nsub):
    """Two-state step on the float view rv (N, 8) = (re, im) of rho00, rho01, rho10, rho11."""
    tau = dt / nsub
    for i in range(rv.shape[0]):
        r0 = 2.0 * rv[i, 2]
        r1 = -2.0 * rv[i, 3]
        r2 = rv[i, 0] - rv[i, 6]
        tr = rv[i, 0] + rv[i, 6]
        # Bloch vector of H at the two ends: a = (Re H10, Im H10, (H00 - H11)/2)
        bx0 = H0[i, 1, 0].real
        by0 = H0[i, 1, 0].imag
        bz0 = 0.5 * (H0[i, 0, 0].real - H0[i, 1, 1].real)
        bx1 = H1[i, 1, 0].real
        by1 = H1[i, 1, 0].imag
        bz1 = 0.5 * (H1[i, 0, 0].real - H1[i, 1, 1].real)
        gx = 0.0
        gy = 0.0
        gz = 0.0
        if use_g:
            gx = G[i, 1, 0].real
            gy = G[i, 1, 0].imag
            gz = 0.5 * (G[i, 0, 0].real - G[i, 1, 1].real)
        if nsub == 1:
            r0, r1, r2 = _rotate(r0, r1, r2, 0.5 * (bx0 + bx1) + gx, 0.5 * (by0 + by1) + gy,
                                 0.5 * (bz0 + bz1) + gz, tau)
        else:
            for k in range(nsub):
                s = (k + 0.5) / nsub
                r0, r1, r2 = _rotate(r0, r1, r2, bx0 + s * (bx1 - bx0) + gx,
                                     by0 + s * (by1 - by0) + gy, bz0 + s * (bz1 - bz0) + gz, tau)
        rv[i, 0] = 0.5 * (tr + r2)
        rv[i, 1] = 0.0
        rv[i, 6] = 0.5 * (tr - r2)
        rv[i, 7] = 0.0
        rv[i, 2] = 0.5 * r0
        rv[i, 3] = -0.5 * r1
        rv[i, 4] = 0.5 * r0
        rv[i, 5] = 0.5 * r1


@njit(cache=True, inline="always")
def _matmul(A, B, adjoint_a, adjoint_b, out):
    """out = op(A) op(B) for small square matrices, op = identity or conjugate transpose."""
    n = out.shape[0]
    for a in range(n):
        for b in range(n):
            acc = 0j
            for c in range(n):
                x = np.conj(A[c, a]) if adjoint_a else A[a, c]
                y = np.conj(B[b, c]) if adjoint_b else B[c, b]
                acc += x * y
            out[a, b] = acc


@njit(cache=True)
def _propagaten(rho, H0, H1, G, use_g, dt, nsub):
    """N-state step: in the eigenbasis of H(s_k), rho_ab <- rho_ab exp(-i (E_a - E_b) tau)."""
    tau = dt / nsub
    ns = rho.shape[1]
    Hm = np.empty((ns, ns), dtype=np.complex128)
    T = np.empty((ns, ns), dtype=np.complex128)
    R = np.empty((ns, ns), dtype=np.complex128)
    for i in range(rho.shape[0]):
        for a in range(ns):
            for b in range(ns):
                R[a, b] = rho[i, a, b]
        for k in range(nsub):
            s = (k + 0.5) / nsub
            for a in range(ns):
                for b in range(ns):
                    Hm[a, b] = H0[i, a, b] + s * (H1[i, a, b] - H0[i, a, b])
                    if use_g:
                        Hm[a, b] += G[i, a, b]
            e, v = np.linalg.eigh(Hm)
            # T = v^dagger R v, phases, R = v T v^dagger (explicit loops: no temporaries)
            _matmul(R, v, False, False, Hm)
            _matmul(v, Hm, True, False, T)
            for a in range(ns):
                for b in range(ns):
                    T[a, b] *= np.exp(-1j * tau * (e[a] - e[b]))
            _matmul(T, v, False, True, Hm)
            _matmul(v, Hm, False, False, R)
        for a in range(ns):
            for b in range(ns):
                rho[i, a, b] = R[a, b]


def propagate(rho, H0, H1, dt, nsub=1, G=None):
    """Advance ``rho`` (N, ns, ns) in place over ``dt`` (a.u.) between Hamiltonians H0 and H1.

    G: optional Hermitian correction (N, ns, ns) added to H over the whole step.
    """
    use_g = G is not None
    if G is None:
        G = np.zeros((1, 1, 1), dtype=np.complex128)
    if rho.shape[1] == 2:
        rv = rho.reshape(rho.shape[0], 4).view(np.float64)   # no copy: rho is C-contiguous
        _propagate2(rv, H0, H1, G, use_g, float(dt), int(nsub))
    elif (not use_g and rho.shape[1] <= TAYLOR_MAX_STATES and H0.dtype == np.float64
          and H1.dtype == np.float64):
        batched.propagate_taylor(rho, H0, H1, float(dt), int(nsub))
    else:
        _propagaten(rho, H0, H1, G, use_g, float(dt), int(nsub))
    return rho


def propagate_adiabatic(rho, E0, V0, E1, V1, dt, P=None):
    """Advance ``rho`` (N, ns, ns) in place over ``dt`` with
    ``U = exp(-i H1 dt/2) exp(-i H0 dt/2)`` given the real eigen-decompositions ``(E0, V0)`` and
    ``(E1, V1)`` of H at the two step ends; returns the adiabatic populations (N, ns) at the end
    of the step (into ``P`` if given)."""
    if P is None:
        P = np.empty(rho.shape[:2])
    batched.propagate_split(rho, np.ascontiguousarray(E0), np.ascontiguousarray(V0),
                            np.ascontiguousarray(E1), np.ascontiguousarray(V1), float(dt), P)
    return P


@njit(cache=True)
def mean_field_force(rho, dH, F):
    """Ehrenfest force ``F_k = -Re Tr(rho d_k H)`` (hartree/bohr) into F (N, D)."""
    n, D, ns, _ = dH.shape
    for i in range(n):
        for k in range(D):
            acc = 0.0
            for a in range(ns):
                for b in range(ns):
                    acc += (rho[i, a, b] * dH[i, k, b, a]).real
            F[i, k] = -acc
    return F


@njit(cache=True)
def mean_field_energy(rho, H):
    """``Re Tr(rho H)`` per trajectory (N,) hartree."""
    n, ns, _ = rho.shape
    out = np.empty(n)
    for i in range(n):
        acc = 0.0
        for a in range(ns):
            for b in range(ns):
                acc += (rho[i, a, b] * H[i, b, a]).real
        out[i] = acc
    return out
