"""Adiabatic decomposition of a batch of diabatic Hamiltonians, and basis changes.

All functions take whole-swarm arrays: ``H`` (N, ns, ns) hartree, ``dH`` (N, D, ns, ns)
hartree/bohr, ``rho`` (N, ns, ns). Eigenvalues are returned in ascending order (state 0 is the
lowest). Eigenvector phases are arbitrary (whatever the solver returns); nothing in mqcd's methods
depends on them, which the phase-randomisation tests check (``randomize_phases``).

Two-state batches use a closed-form solver (no LAPACK call; about 100x cheaper than ``eigh`` for
2x2). Larger real symmetric batches (up to ``JACOBI_MAX_STATES``) use the batched Jacobi solver
of mqcd/electronic/batched.py when a warm start is given (the previous step's eigenvectors: ``eigh(H, E, V, warm_from=V_prev)``,
what :meth:`mqcd.ensemble.swarm.Swarm.ensure_adiabatic` does), otherwise LAPACK through numba's
``np.linalg.eigh`` per trajectory (first step, complex Hermitian models). The basis changes and
adiabatic populations of real many-state batches use the batched kernels too.
"""
import math

import numpy as np
from numba import njit

from . import batched

#: largest number of states for which the warm-started batched Jacobi solver is used (measured on
#: this machine: faster than LAPACK up to about 24 states, slower from 32; docs/performance.md)
JACOBI_MAX_STATES = 24


@njit(cache=True)
def _eigh2(H, E, V):
    for i in range(H.shape[0]):
        h00 = H[i, 0, 0].real
        h11 = H[i, 1, 1].real
        h10 = H[i, 1, 0]
        ax = h10.real
        ay = h10.imag
        az = 0.5 * (h00 - h11)
        a0 = 0.5 * (h00 + h11)
        ap = math.sqrt(ax * ax + ay * ay)
        if ap < 1e-150:               # squares near underflow: hypot keeps |V| = 1 exactly
            ap = math.hypot(ax, ay)
        r = math.sqrt(az * az + ap * ap)
        if r < 1e-150:
            r = math.hypot(az, ap)
        E[i, 0] = a0 - r
        E[i, 1] = a0 + r
        if r == 0.0:
            c, s = 1.0, 0.0
        elif az >= 0.0:
            c = math.sqrt(0.5 * (r + az) / r)
            s = ap / (2.0 * r * c)
        else:
            s = math.sqrt(0.5 * (r - az) / r)
            c = ap / (2.0 * r * s)
        if ap > 0.0:
            ph = h10 / ap          # e^{i Phi}; real +-1 for real H
        else:
            ph = h10 * 0.0 + 1.0
        # lower state |-> = (-e^{-i Phi} s, c), upper |+> = (c, e^{i Phi} s)
        V[i, 0, 0] = -np.conj(ph) * s
        V[i, 1, 0] = c
        V[i, 0, 1] = c
        V[i, 1, 1] = ph * s


@njit(cache=True)
def _eighn(H, E, V):
    for i in range(H.shape[0]):
        e, v = np.linalg.eigh(H[i])
        E[i] = e
        V[i] = v


def eigh(H, E=None, V=None, warm_from=None):
    """Adiabatic energies ``E`` (N, ns) and eigenvectors ``V`` (N, ns, ns), columns = states.

    ``warm_from``: eigenvectors of a nearby Hamiltonian (e.g. the previous step's), the starting
    basis of the batched Jacobi solver for real many-state batches (ignored otherwise).
    """
    n, ns, _ = H.shape
    if E is None:
        E = np.empty((n, ns))
    if V is None:
        V = np.empty((n, ns, ns), dtype=H.dtype)
    if ns == 2:
        _eigh2(H, E, V)
    elif (warm_from is not None and ns <= JACOBI_MAX_STATES and H.dtype == np.float64
          and V.dtype == np.float64 and warm_from.dtype == np.float64
          and warm_from.shape == V.shape):
        if warm_from is not V:
            V[...] = warm_from
        batched.jacobi_eigh(np.ascontiguousarray(H), E, V, True)
    else:
        _eighn(np.ascontiguousarray(H), E, V)
    return E, V


def _real_many(M, V):
    return M.shape[1] > 2 and V.dtype == np.float64 and M.flags.c_contiguous and V.flags.c_contiguous


@njit(cache=True, inline="always")
def sandwich_one(M, V, adjoint_left, tmp, out):
    """One (ns, ns) matrix: ``out = V^dagger M V`` (adjoint_left) or ``V M V^dagger``; ``tmp``
    is scratch of the same shape."""
    ns = M.shape[0]
    for a in range(ns):
        for b in range(ns):
            acc = 0j
            for k in range(ns):
                v = V[k, b] if adjoint_left else np.conj(V[b, k])
                acc += M[a, k] * v
            tmp[a, b] = acc
    for a in range(ns):
        for b in range(ns):
            acc = 0j
            for k in range(ns):
                v = np.conj(V[k, a]) if adjoint_left else V[a, k]
                acc += v * tmp[k, b]
            out[a, b] = acc


@njit(cache=True)
def _sandwich(M, V, adjoint_left, out):
    n, ns, _ = M.shape
    tmp = np.empty((ns, ns), dtype=np.complex128)
    for i in range(n):
        sandwich_one(M[i], V[i], adjoint_left, tmp, out[i])
    return out


def to_adiabatic(M, V):
    """``V^dagger M V`` for each trajectory: M (N, ns, ns) -> adiabatic representation (M
    Hermitian when V is real and ns > 2: the batched kernel computes one triangle)."""
    out = np.empty(M.shape, dtype=np.complex128)
    if _real_many(M, V) and M.dtype == np.complex128:
        return batched.change_basis(M, V, True, out)
    return _sandwich(M, V, True, out)


def to_diabatic(M, V):
    """``V M V^dagger`` for each trajectory: adiabatic (N, ns, ns) -> diabatic representation."""
    out = np.empty(M.shape, dtype=np.complex128)
    if _real_many(M, V) and M.dtype == np.complex128:
        return batched.change_basis(M, V, False, out)
    return _sandwich(M, V, False, out)


def adiabatic_populations(rho, V):
    """Diagonal of ``V^dagger rho V``: (N, ns) real (closed form for two states, one batched real
    product for real many-state V)."""
    if _real_many(rho, V) and rho.dtype == np.complex128:
        return batched.populations(rho, V, np.empty(rho.shape[:2]))
    return _adiabatic_populations(rho, V)


@njit(cache=True)
def _adiabatic_populations(rho, V):
    """Diagonal of ``V^dagger rho V``: (N, ns) real (unrolled for two states)."""
    n, ns, _ = rho.shape
    out = np.empty((n, ns))
    if ns == 2:
        for i in range(n):
            r00 = rho[i, 0, 0].real
            r11 = rho[i, 1, 1].real
            r10 = rho[i, 1, 0]
            for a in range(2):
                v0 = V[i, 0, a]
                v1 = V[i, 1, a]
                out[i, a] = (r00 * abs(v0) ** 2 + r11 * abs(v1) ** 2
                             + 2.0 * (np.conj(v1) * r10 * v0).real)
        return out
    for i in range(n):
        for a in range(ns):
            acc = 0.0
            for k in range(ns):
                for l in range(ns):
                    acc += (np.conj(V[i, k, a]) * rho[i, k, l] * V[i, l, a]).real
            out[i, a] = acc
    return out


@njit(cache=True)
def adiabatic_gradients(dH, V):
    """Diagonal matrix elements ``<n|d_k H|n>`` = d_k E_n (Hellmann-Feynman): (N, D, ns)."""
    n, D, ns, _ = dH.shape
    out = np.zeros((n, D, ns))
    for i in range(n):
        for k in range(D):
            for a in range(ns):
                acc = 0.0
                for p in range(ns):
                    for q in range(ns):
                        acc += (np.conj(V[i, p, a]) * dH[i, k, p, q] * V[i, q, a]).real
                out[i, k, a] = acc
    return out


@njit(cache=True)
def nonadiabatic_couplings(dH, E, V):
    """Derivative couplings ``d^k_nm = <n|d_k m> = <n|d_k H|m> / (E_m - E_n)`` (N, D, ns, ns).

    Diagonal entries are set to zero (their imaginary part is a gauge choice). Exactly degenerate
    pairs give zero (the coupling is undefined there; mqcd's hopping does not use these values).
    """
    n, D, ns, _ = dH.shape
    out = np.zeros((n, D, ns, ns), dtype=np.complex128)
    for i in range(n):
        Vc = V[i].astype(np.complex128)
        for k in range(D):
            M = np.conj(Vc).T @ dH[i, k].astype(np.complex128) @ Vc
            for a in range(ns):
                for b in range(ns):
                    if a != b:
                        gap = E[i, b] - E[i, a]
                        if gap != 0.0:
                            out[i, k, a, b] = M[a, b] / gap
    return out


def randomize_phases(V, rng):
    """Multiply each eigenvector (column) by a random phase (complex V) or sign (real V).

    Used by the invariance tests: gauge-invariant results must not change.
    """
    n, ns, _ = V.shape
    if np.iscomplexobj(V):
        ph = np.exp(2j * np.pi * rng.random((n, 1, ns)))
    else:
        ph = rng.choice([-1.0, 1.0], size=(n, 1, ns))
    return V * ph


def pure_state_density(V, state):
    """``|state><state|`` in the diabatic basis for each trajectory (N, ns, ns) complex."""
    v = V[:, :, state].astype(np.complex128)
    return v[:, :, None] * np.conj(v)[:, None, :]
