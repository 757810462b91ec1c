r"""Electrons in (local) equilibrium at a fixed nuclear position: occupations, density matrices
and the electronic free energy (MB Sec. III.C "type-e" mixtures and Sec. IV.B).

Two kinds of electronic Hamiltonian are handled, by the same code:

* **many-state** models (``H_el`` an ``ns x ns`` matrix of the whole electronic system): the
  canonical state ``rho = exp(-beta H_el) / Z`` with Boltzmann populations
  ``p_n = exp(-beta E_n) / Z``, and the free energy ``Phi_el = -k_B T ln Z`` (MB text after
  (116)), whose gradient is the equilibrium force ``F0 = -Tr(rho dH) = -d Phi_el``;
* **one-body** models of independent electrons (``h`` the single-particle Hamiltonian): the
  one-body density matrix ``rho = f(h)`` with Fermi-Dirac occupations
  ``f(eps) = 1 / (exp((eps - mu) / k_B T) + 1)`` (MB Appendix G), trace ``N_el``, at a chemical
  potential ``mu`` (grand canonical) or at a fixed electron number (``mu`` solved for, per
  position). Its free energy is the grand potential
  ``Omega = -k_B T sum_a ln(1 + exp(-(eps_a - mu)/k_B T))`` at fixed ``mu`` (``d Omega / dx =
  Tr(f(h) dh)``) and ``Omega + mu N_el`` at fixed ``N_el``.

At ``k_B T = 0`` the canonical state is the ground state (a degenerate ground level shared
equally) and ``f`` the step function (1/2 exactly at ``mu``). Energies in hartree, ``k_B T`` in
hartree. The exponentials and logarithms use scipy.special (``expit``, ``logsumexp``) so that
no overflow occurs at low temperature.
"""
from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.special

#: occupations this close to 0 or 1 are treated as exactly empty / full (k_B T = 0 steps)
DEGENERATE_TOL = 1e-12


def fermi(eps, mu, kT):
    """Fermi-Dirac occupation ``f(eps)`` (dimensionless) of levels ``eps`` (hartree) at chemical
    potential ``mu`` (hartree) and ``kT`` (hartree); the step function at ``kT = 0``."""
    eps = np.asarray(eps, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if kT > 0:
        return scipy.special.expit(-(eps - mu) / kT)
    return np.where(eps < mu, 1.0, np.where(eps > mu, 0.0, 0.5))


def boltzmann(E, kT):
    """Boltzmann populations ``p_n`` (..., ns) of the energies ``E`` (..., ns) (hartree); the
    ground state (degenerate ground levels shared equally) at ``kT = 0``."""
    E = np.asarray(E, dtype=np.float64)
    e0 = E.min(axis=-1, keepdims=True)
    if kT > 0:
        w = np.exp(-(E - e0) / kT)
    else:
        scale = np.maximum(np.abs(E).max(axis=-1, keepdims=True), 1.0)
        w = (E - e0 <= DEGENERATE_TOL * scale).astype(np.float64)
    return w / w.sum(axis=-1, keepdims=True)


def solve_chemical_potential(eps, n_el, kT):
    """Chemical potential (hartree) at which the levels ``eps`` (ns,) hold ``n_el`` electrons at
    ``kT``. At ``kT = 0`` the midpoint of the gap between the highest occupied and the lowest
    empty level (``n_el`` must then be an integer). ValueError if ``n_el`` is outside
    ``[0, ns]``."""
    eps = np.sort(np.asarray(eps, dtype=np.float64))
    ns = eps.size
    if not 0.0 <= n_el <= ns:
        raise ValueError(f"[initial] electron_number = {n_el:g}: a one-body model with {ns} "
                         f"orbitals holds between 0 and {ns} electrons")
    if kT <= 0:
        k = int(round(n_el))
        if abs(k - n_el) > 1e-12:
            raise ValueError(f"[initial] electron_number = {n_el:g} at temperature 0 must be an "
                             "integer (the Fermi step fills whole orbitals)")
        lo = eps[k - 1] if k > 0 else eps[0] - 1.0
        hi = eps[k] if k < ns else eps[-1] + 1.0
        return 0.5 * (lo + hi)
    if n_el <= 0.0 or n_el >= ns:
        raise ValueError(f"[initial] electron_number = {n_el:g}: at temperature > 0 a chemical "
                         f"potential exists only for 0 < electron_number < {ns}")
    span = eps[-1] - eps[0] + 1.0

    def excess(mu):
        return float(np.sum(fermi(eps, mu, kT))) - n_el
    lo, hi = eps[0] - span, eps[-1] + span
    while excess(lo) > 0:
        lo -= span
    while excess(hi) < 0:
        hi += span
    return scipy.optimize.brentq(excess, lo, hi, xtol=1e-15 * max(1.0, abs(span)), rtol=1e-15,
                                 maxiter=500)


def occupations(E, kind, kT, mu=0.0, n_el=None):
    """Occupation of each eigenstate (N, ns) and the chemical potential used (N,).

    ``kind``: ``"thermal"`` (Boltzmann populations of a many-state model; ``mu`` unused) or
    ``"fermi"`` (Fermi-Dirac occupations of one-body levels at ``mu``, or at the ``mu`` giving
    ``n_el`` electrons when ``n_el`` is not None)."""
    E = np.atleast_2d(np.asarray(E, dtype=np.float64))
    if kind == "thermal":
        return boltzmann(E, kT), np.zeros(E.shape[0])
    if kind != "fermi":
        raise ValueError(f"occupations: kind = {kind!r}; allowed: 'thermal', 'fermi'")
    if n_el is None:
        mus = np.full(E.shape[0], float(mu))
    else:
        mus = np.array([solve_chemical_potential(e, n_el, kT) for e in E])
    return fermi(E, mus[:, None], kT), mus


def density_from_eigen(V, occ):
    """``rho = V diag(occ) V^dagger`` (N, ns, ns) complex: the equilibrium density matrix in the
    model's (diabatic) basis from eigenvectors ``V`` (N, ns, ns) and occupations ``occ``."""
    V = np.asarray(V)
    rho = np.einsum("nak,nk,nbk->nab", V, occ, V.conj())
    rho = 0.5 * (rho + np.conj(np.swapaxes(rho, 1, 2)))
    return np.ascontiguousarray(rho, dtype=np.complex128)


def equilibrium_density(H, kind, kT, mu=0.0, n_el=None):
    """Equilibrium electronic density matrix (N, ns, ns) at the Hamiltonians ``H`` (N, ns, ns):
    ``exp(-beta H) / Z`` (``kind = "thermal"``, trace 1) or ``f(h)`` (``kind = "fermi"``, trace
    N_el). Returns ``(rho, mu)`` with the chemical potential per trajectory (N,)."""
    E, V = np.linalg.eigh(np.asarray(H))
    occ, mus = occupations(E, kind, kT, mu, n_el)
    return density_from_eigen(V, occ), mus


def free_energy(E, kind, kT, mu=0.0, n_el=None):
    """Electronic free energy (N,) hartree of the eigenvalues ``E`` (N, ns).

    ``"thermal"``: ``-kT ln sum_n exp(-E_n / kT)`` (``E_0`` at kT = 0); ``"fermi"``: the grand
    potential ``-kT sum_a ln(1 + exp(-(eps_a - mu) / kT))`` (``sum_{eps_a < mu} (eps_a - mu)`` at
    kT = 0), plus ``mu N_el`` when the electron number is fixed (then a Helmholtz free energy)."""
    E = np.atleast_2d(np.asarray(E, dtype=np.float64))
    if kind == "thermal":
        if kT > 0:
            return -kT * scipy.special.logsumexp(-E / kT, axis=-1)
        return E.min(axis=-1)
    _, mus = occupations(E, kind, kT, mu, n_el)
    x = E - mus[:, None]
    if kT > 0:
        omega = -kT * np.sum(np.logaddexp(0.0, -x / kT), axis=-1)
    else:
        omega = np.sum(np.where(x < 0, x, 0.0), axis=-1)
    if n_el is not None:
        omega = omega + mus * n_el
    return omega
