r"""Steady state of a molecular junction in the wide-band limit: current-induced forces and the
nonequilibrium friction tensor (MB Sec. IV.B, eqs. (113)-(116) for a general steady state).

The molecular block ``h(x)`` (L x L) couples to leads ``alpha`` (chemical potentials
``mu_alpha``, one temperature) through energy-independent level widths ``Gamma_alpha`` (L x L,
hartree): the retarded Green's function is ``G^R(eps) = (eps - h + i Gamma / 2)^{-1}`` with
``Gamma = sum_alpha Gamma_alpha``, the lesser one ``G^<(eps) = i G^R Gamma_f G^A`` with
``Gamma_f(eps) = sum_alpha f_alpha(eps) Gamma_alpha`` (Landauer / NEGF form). Then

* the steady-state one-body density matrix of the molecule ``rho0 = int deps/(2 pi)
  G^R Gamma_f G^A`` and the force ``F0_k = -Tr(rho0 d_k h)`` (hartree/bohr), conservative
  (``-d Phi_el``) only when every ``mu_alpha`` is equal;
* the friction of MB (113)-(116): the force's linear response to a slow velocity,
  ``F_k = F0_k - sum_j gamma_kj v^j`` with (the Kubo form of the DMS kernel for independent
  electrons in the continuum, evaluated on the NEGF steady state)

      gamma_kj = 2 Re int deps/(2 pi) Tr[d_k h (d G^R/d eps) d_j h G^<],

  whose symmetric part is ``eta`` and antisymmetric part ``-B`` (MB (116): ``gamma = eta - B``).
  In equilibrium (one ``mu``) it reduces to ``eta_kj = pi int deps (-f') Tr[d_k h A d_j h A]``,
  ``A = i (G^R - G^A) / (2 pi)``: for one level ``pi (d eps_d/dx)^2 int A_d^2 (-f')``, the
  wide-band result of docs/friction.md.

The energy integrals use scipy.integrate.quad_vec over the real axis, split at the chemical
potentials (steps of ``f`` at ``kT = 0``) and at the real parts of the resonances; tolerances
``EPSABS``/``EPSREL``. hbar = 1.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.integrate

from .equilibrium import fermi

EPSABS = 1e-13
EPSREL = 1e-10


def _breakpoints(h, Gam, mus, kT):
    """Sorted energies where the integrands change fast: the chemical potentials and the
    resonances (eigenvalues of h), and an outer box ``[lo, hi]`` beyond which the tails are
    smooth."""
    ev = np.linalg.eigvalsh(0.5 * (h + h.conj().T)).real
    g = max(float(np.trace(Gam).real), 1e-12)
    pts = np.unique(np.concatenate([ev, np.asarray(mus, float)]))
    span = 40.0 * (g + kT) + (pts.max() - pts.min())
    return pts, pts.min() - span, pts.max() + span


def _integrate(fun, pts, lo, hi, shape):
    """``int_{-inf}^{inf} fun(eps) deps`` (quad_vec; finite pieces split at ``pts``)."""
    total = np.zeros(shape, dtype=np.complex128)
    edges = np.concatenate([[lo], pts, [hi]])
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            total += scipy.integrate.quad_vec(fun, a, b, epsabs=EPSABS, epsrel=EPSREL)[0]
    total += scipy.integrate.quad_vec(fun, -np.inf, lo, epsabs=EPSABS, epsrel=EPSREL)[0]
    total += scipy.integrate.quad_vec(fun, hi, np.inf, epsabs=EPSABS, epsrel=EPSREL)[0]
    return total


def steady_state(h, dh, Gam_leads, mus, kT, friction=True):
    """``(rho0 (L, L), F0 (D,), eta (D, D), B (D, D))`` of the junction at one nuclear position.

    Parameters
    ----------
    h : (L, L) array
        Molecular one-body Hamiltonian (hartree).
    dh : (D, L, L) array
        Its gradient ``d_k h`` (hartree/bohr).
    Gam_leads : (nleads, L, L) array
        Wide-band level widths ``Gamma_alpha`` (hartree).
    mus : sequence of float
        Chemical potential of each lead (hartree).
    kT : float
        ``k_B T`` of the leads (hartree); 0 allowed.
    friction : bool
        False: skip the friction integral (``eta``, ``B`` returned as None).

    Returns
    -------
    rho0 : one-body density matrix of the molecule (trace = its electron number).
    F0 : ``-Tr(rho0 d_k h)`` (hartree/bohr), without the nuclear potential.
    eta, B : symmetric and antisymmetric friction (hartree atomic_unit_of_time / bohr^2),
        ``F = F0 - eta v + B v``.
    """
    h = np.asarray(h, dtype=np.complex128)
    dh = np.asarray(dh, dtype=np.complex128)
    Gl = np.asarray(Gam_leads, dtype=np.complex128)
    L, D = h.shape[0], dh.shape[0]
    Gam = Gl.sum(axis=0)
    one = np.eye(L)
    mus = [float(m) for m in mus]

    def green(eps):
        GR = np.linalg.inv(eps * one - h + 0.5j * Gam)
        Gf = sum(fermi(eps, m, kT) * Gl[a] for a, m in enumerate(mus))
        return GR, GR @ Gf @ GR.conj().T                 # G^R, -i G^<

    def f_rho(eps):
        return green(eps)[1] / (2.0 * math.pi)

    def f_gamma(eps):
        GR, Gl_ = green(eps)
        dGR = -GR @ GR
        M = np.einsum("kab,bc,jcd,de->kjae", dh, dGR, dh, 1j * Gl_)
        return np.einsum("kjaa->kj", M) / math.pi     # 2 Re taken below: 2/(2 pi)

    pts, lo, hi = _breakpoints(h, Gam, mus, kT)
    rho = _integrate(f_rho, pts, lo, hi, (L, L))
    rho = 0.5 * (rho + rho.conj().T)
    F0 = -np.einsum("ab,kba->k", rho, dh).real
    if not friction:
        return rho, F0, None, None
    gam = _integrate(f_gamma, pts, lo, hi, (D, D)).real
    return rho, F0, 0.5 * (gam + gam.T), -0.5 * (gam - gam.T)


def loop_work(force, center, radius, points=64):
    """Work ``oint F0 . dx`` (hartree) around the circle of ``radius`` (bohr) about ``center``
    in the plane of dofs 0 and 1, counter-clockwise, by the periodic trapezoid rule (exponentially
    convergent for a smooth force): ``force(x)`` returns F0 (D,) at x (D,)."""
    c = np.asarray(center, dtype=np.float64)
    th = 2.0 * math.pi * np.arange(points) / points
    w = 0.0
    for t in th:
        x = c.copy()
        x[0] += radius * math.cos(t)
        x[1] += radius * math.sin(t)
        F = force(x)
        w += F[0] * (-radius * math.sin(t)) + F[1] * (radius * math.cos(t))
    return w * 2.0 * math.pi / points
