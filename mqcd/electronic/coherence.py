"""Per-trajectory derivatives of the density-matrix field ("route (b)", as in CTMQC).

A pure conditional state is ``psi(x) = sum_n c_n(x) |n(x)>`` in the adiabatic basis. Its spatial
derivative has two parts: the basis part ``c_n d_j|n>``, known analytically from the derivative
couplings, and the coefficient part ``d_j c_n``. Semiclassically the phase of ``c_n`` advances with
the momentum the nuclei would have on surface n, so (CTMQC, Min, Agostini & Gross, PRL 115, 073001
(2015)) ``d_j c_n ~ i f_nj c_n`` with the accumulated adiabatic force

    f_nj(t) = - int_0^t d_j E_n(x(t')) dt'          (bohr^-1; momentum units, hbar = 1)

integrated along the trajectory. Only differences ``f_n - f_m`` enter (the coherence phase
gradient). The amplitude gradient ``d_j |c_n|`` is neglected, as in CTMQC. Then, with
``G_j = i F_j + D_j``, ``F_j = sum_n f_nj |n><n|`` and ``D_j = sum_{m != n} |m> d^j_mn <n|``
(``d^j_mn = <m|d_j H|n> / (E_n - E_m)``), for any density matrix

    d_j rho = [G_j, rho].

The coupling part ``D_j`` is optional (``basis``): CTMQC keeps only the coefficient part
``i [F_j, rho]`` in its decoherence term, and mqcd's coupled methods do the same by default because,
without the amplitude gradient, the coupling part distorts the transfer at an avoided crossing
(docs/validation_ladder.md). Second derivatives are not provided: the curvature terms they need
(amplitude and phase curvature) are exactly what this route does not know, and the geometric
methods built on them were unstable in tests; those methods use the regression route.

Gauge invariance: ``F_j`` is a sum of projectors and ``D_j`` has no diagonal (Berry-connection)
entries, so both are independent of eigenvector phases (D_j transforms as an operator). ``G_j`` is
anti-Hermitian, so ``d_j rho`` is Hermitian and traceless, and ``Tr(rho d_j rho) = 0`` for pure
states. Nothing here needs neighbours: these derivatives cost one small matrix product per
trajectory.

Arrays (atomic units): rho (N, ns, ns); dH (N, D, ns, ns) hartree/bohr; E (N, ns) hartree;
V (N, ns, ns) eigenvectors as columns; f (N, D, ns) bohr^-1.
"""
import numpy as np
from numba import njit, prange

from .adiabatic import sandwich_one


@njit(parallel=True, cache=True)
def accumulate_forces(f, grad_prev, grad_now, dt):
    """Trapezoidal step of ``df_n/dt = -d E_n``: ``f -= dt/2 (grad_prev + grad_now)`` in place."""
    N, D, ns = f.shape
    h = 0.5 * dt
    for t in prange(N):
        for j in range(D):
            for n in range(ns):
                f[t, j, n] -= h * (grad_prev[t, j, n] + grad_now[t, j, n])


@njit(cache=True, inline="always")
def _commutator(A, B, out):
    """``out = A B - B A`` (small square matrices)."""
    ns = A.shape[0]
    for a in range(ns):
        for b in range(ns):
            v = 0j
            for k in range(ns):
                v += A[a, k] * B[k, b] - B[a, k] * A[k, b]
            out[a, b] = v


_CHUNK = 256  # trajectories per parallel work item (scratch matrices allocated once per chunk)


@njit(cache=True, inline="always")
def _derivatives_one(rho, dH, E, V, f, basis, G, drho, t, A, K, C):
    """G_j and d_j rho of trajectory t (A, K, C: (ns, ns) scratch)."""
    D, ns = dH.shape[1], dH.shape[2]
    for j in range(D):
        sandwich_one(dH[t, j], V[t], True, C, A)      # adiabatic representation of d_j H
        # K: i f on the diagonal, couplings d_ab = A_ab / (E_b - E_a) off it
        for a in range(ns):
            for b in range(ns):
                if a == b:
                    K[a, b] = 1j * f[t, j, a]
                else:
                    gap = E[t, b] - E[t, a]
                    K[a, b] = A[a, b] / gap if (gap != 0.0 and basis) else 0j
        sandwich_one(K, V[t], False, C, G[t, j])       # G_j = V K V^dagger
        _commutator(G[t, j], rho[t], drho[t, j])


@njit(parallel=True, cache=True)
def _derivatives(rho, dH, E, V, f, basis, G, drho):
    N, ns = dH.shape[0], dH.shape[2]
    for ch in prange((N + _CHUNK - 1) // _CHUNK):
        A = np.empty((ns, ns), dtype=np.complex128)
        K = np.empty((ns, ns), dtype=np.complex128)
        C = np.empty((ns, ns), dtype=np.complex128)
        for t in range(ch * _CHUNK, min(N, (ch + 1) * _CHUNK)):
            _derivatives_one(rho, dH, E, V, f, basis, G, drho, t, A, K, C)


def trajectory_derivatives(rho, dH, E, V, f, basis=False, out=None):
    """``(G, d rho)`` at every trajectory from the accumulated adiabatic forces ``f``.

    G : (N, D, ns, ns) anti-Hermitian generators ``i F_j (+ D_j if basis)``; d rho : (N, D, ns, ns)
    Hermitian, traceless (bohr^-1). ``out``: optional dict of arrays reused between steps.
    """
    c, r = np.complex128, np.float64
    rho, dH, V = (np.ascontiguousarray(a, dtype=c) for a in (rho, dH, V))
    E, f = (np.ascontiguousarray(a, dtype=r) for a in (E, f))
    N, D, ns, _ = dH.shape
    out = {} if out is None else out
    for name in ("G", "drho"):
        if out.get(name) is None or out[name].shape != (N, D, ns, ns):
            out[name] = np.empty((N, D, ns, ns), dtype=np.complex128)
    _derivatives(rho, dH, E, V, f, basis, out["G"], out["drho"])
    return out["G"], out["drho"]


@njit(parallel=True, cache=True)
def population_rates(X, rho, V, out):
    """``out[t, k, n] = (V^dagger (-i [X_k, rho]) V)_nn``: the rate at which a Hermitian term
    ``X_k`` (N, K, ns, ns) added to H changes the adiabatic populations (N, K, ns), 1/a.u. time
    per unit of ``X``."""
    N, K, ns, _ = X.shape
    for ch in prange((N + _CHUNK - 1) // _CHUNK):
        M = np.empty((ns, ns), dtype=np.complex128)
        for t in range(ch * _CHUNK, min(N, (ch + 1) * _CHUNK)):
            for k in range(K):
                _commutator(X[t, k], rho[t], M)
                for n in range(ns):
                    v = 0j
                    for a in range(ns):
                        for b in range(ns):
                            v += np.conj(V[t, a, n]) * M[a, b] * V[t, b, n]
                    out[t, k, n] = v.imag          # Re(-i z) = Im z
    return out
