r"""Markovian electronic friction from the spectrum of the electronic Hamiltonian at one nuclear
position (MB Sec. IV.B, eqs. (113)-(121), Appendices F and G).

Both cases of MB share one formula. In the eigenbasis ``|a>`` (energies ``eps_a``) of the
electronic Hamiltonian, with ``D^k_ab = <a|d_k H|b>`` and ``Delta_ab = eps_b - eps_a``:

* many-state models, canonical populations ``p_n`` (MB (118)-(119)):
  ``eta_kj = lim_{omega->0} Re gamma^beta_kj(omega) (1 - exp(-beta omega))``,
  ``gamma^beta_kj(omega) = (pi/omega) sum_{n != m} p_n (f_k)_nm (f_j)_mn delta(omega - Delta_nm)``;
* independent electrons, Fermi occupations ``f_a`` (MB (121), Appendix G):
  ``eta_kj = lim_{omega->0} (pi/omega) Re sum_ab D^k_ab D^j_ba (f_a - f_b) delta(omega - Delta_ab)``.

Under the delta function ``omega = Delta_ab``, so both are

    eta_kj = pi sum_{a, b} w_ab Re(conj(D^k_ab) D^j_ab) delta(Delta_ab),
    w_ab = g_ab (1 - exp(-beta Delta_ab)) / Delta_ab,

with ``g_ab = p_a`` (many-state; then ``w_ab = (p_a - p_b)/Delta_ab``) or
``g_ab = f_a (1 - f_b)`` (one-body; then ``w_ab = (f_a - f_b)/Delta_ab`` by the identity of
Appendix G) - the "finite-temperature Head-Gordon-Tully" form. ``w_ab -> beta g_aa`` as
``Delta_ab -> 0`` (``-f'(eps)`` for one-body levels), computed with ``expm1`` so the limit is
smooth. Many-state models: pairs ``a = b`` are excluded (the projector ``Q_n`` of (119)).
One-body models, whose levels discretise a continuum (a band): the broadened double sum over
all pairs is the two-dimensional Riemann sum of the continuum double integral
``pi int int A_k(e) A_j(e') w(e, e') delta_sigma(e' - e)``, and the pairs ``a = b`` (weight
``-f'(eps_a)``, the ``Delta -> 0`` limit) belong to it: leaving them out removes a fraction
``~ h / (sqrt(2 pi) sigma)`` of the result (h the level spacing), 10 % at ``sigma = 4 h``
(measured, docs/friction.md).

The antisymmetric, pseudo-magnetic part: the DMS kernel (MB (114)) of a stationary state
``rho0 = sum_a occ_a |a><a|`` integrated over the memory time,
``gamma^DMS_kj = -int_0^inf Tr[d_k H e^{-iHt} (d_j rho0) e^{iHt}] dt = eta_kj - B_kj`` (MB (116)),
gives besides ``eta`` the principal-value part

    B_kj = sum_{a != b} Im(conj(D^k_ab) D^j_ab) w_ab P(1 / Delta_ab),

which in equilibrium is ``-2 Im q^av_kj`` (MB Appendix F; the Berry curvature of the canonical
ensemble). ``B = 0`` for real Hamiltonians (time-reversal symmetry).

Broadening (a finite spectrum has no continuum): the memory integral is cut off by a Gaussian,
``int_0^inf e^{-i x t} e^{-sigma^2 t^2/2} dt = pi delta_sigma(x) - i P_sigma(x)``, which gives the
normalised Gaussian ``delta_sigma(x) = exp(-x^2/(2 sigma^2)) / (sqrt(2 pi) sigma)`` for the delta
function and its Hilbert partner ``P_sigma(x) = (sqrt 2 / sigma) dawsn(x / (sqrt 2 sigma))``
(scipy.special.dawsn) for the principal value: one width ``sigma`` for both. The rule
(:func:`broadening_width` and :func:`converged_friction`): ``sigma = factor x h`` with ``h`` the
largest level spacing inside the window where the occupations change (``|eps - mu| <= WINDOW_KT
kT`` and at least the levels next to ``mu``) and ``factor = 1.5`` (the Gaussian sum over levels
of spacing ``h`` is then exact to ``~exp(-2 pi^2 factor^2) = 1e-19`` for even spacing); the bias
of the broadening is ``O(sigma^2)`` against the continuum's scales (``Gamma``, ``kT``) and is
removed by Richardson extrapolation from ``sigma`` and ``2 sigma``:
``eta = (4 eta(sigma) - eta(2 sigma)) / 3``; the change ``|eta - eta(sigma)|`` is reported as the
broadening error. ``hbar = 1`` throughout; eta in hartree atomic_unit_of_time / bohr^2
(= electron_mass / atomic_unit_of_time for unit mass).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special

#: default broadening: this many times the largest level spacing in the thermal window
BROADENING_FACTOR = 1.5
#: half-width of the thermal window in units of kT (the Fermi derivative is 2e-9 of its peak
#: there)
WINDOW_KT = 20.0


def delta_gauss(x, sigma):
    """Normalised Gaussian ``exp(-x^2/(2 sigma^2)) / (sqrt(2 pi) sigma)`` (1/hartree)."""
    return np.exp(-0.5 * (x / sigma) ** 2) / (math.sqrt(2.0 * math.pi) * sigma)


def principal_gauss(x, sigma):
    """Principal value ``P(1/x)`` broadened consistently with :func:`delta_gauss`:
    ``(sqrt 2 / sigma) dawsn(x / (sqrt 2 sigma))`` (-> 1/x for |x| >> sigma)."""
    s = math.sqrt(2.0) * sigma
    return (2.0 / s) * scipy.special.dawsn(x / s)


def pair_weights(eps, g, kT, occ=None):
    """``w_ab = g_ab (1 - exp(-beta Delta_ab)) / Delta_ab`` (1/hartree), ``Delta_ab = eps_b -
    eps_a``, symmetric in ``a, b``; evaluated as ``(occ_a - occ_b) / Delta_ab`` (the same by
    the identities of the module docstring; no overflow at low temperature), with the limit
    ``beta g_ab`` for ``|Delta_ab| < 1e-8 kT`` (0 for degenerate pairs at ``kT = 0``). The
    diagonal is set to zero."""
    eps = np.asarray(eps, dtype=np.float64)
    occ = np.asarray(occ, dtype=np.float64)
    dlt = eps[None, :] - eps[:, None]
    small = np.abs(dlt) <= 1e-8 * kT if kT > 0 else dlt == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(small, 0.0, (occ[:, None] - occ[None, :]) / np.where(small, 1.0, dlt))
    if kT > 0:
        w = np.where(small, g / kT, w)
    np.fill_diagonal(w, 0.0)
    return w


def occupation_factor(occ, kind):
    """``g_ab``: ``p_a`` for ``kind = "thermal"`` (many-state, MB (119)), ``f_a (1 - f_b)`` for
    ``"fermi"`` (independent electrons, MB Appendix G)."""
    occ = np.asarray(occ, dtype=np.float64)
    if kind == "thermal":
        return np.repeat(occ[:, None], occ.size, axis=1)
    return occ[:, None] * (1.0 - occ[None, :])


def broadening_width(eps, center, kT, factor=BROADENING_FACTOR):
    """The broadening rule: ``factor`` x the largest spacing between consecutive levels of
    ``eps`` inside ``|eps - center| <= WINDOW_KT kT``, counting at least the two spacings next to
    ``center`` (hartree). ``center``: the chemical potential (one-body) or the ground-state
    energy (many-state)."""
    e = np.sort(np.asarray(eps, dtype=np.float64))
    if e.size < 2:
        raise ValueError("friction needs at least two electronic levels")
    gaps = np.diff(e)
    mids = 0.5 * (e[1:] + e[:-1])
    inside = np.abs(mids - center) <= WINDOW_KT * kT
    k = int(np.searchsorted(e, center))
    near = [i for i in (k - 2, k - 1, k) if 0 <= i < gaps.size]
    inside[near] = True
    return float(factor * gaps[inside].max())


def spectral_friction(eps, D, occ, kind, kT, sigma):
    """``(eta, B)`` (nd, nd) from the eigenvalues ``eps`` (ns,), the matrix elements ``D``
    (nd, ns, ns) of ``d_k H`` between eigenstates and the occupations ``occ`` (ns,) of ``kind``
    ``"thermal"`` or ``"fermi"``, with the delta function broadened to width ``sigma``
    (hartree). See the module docstring for the formulas (MB (118)-(121), App. F)."""
    g = occupation_factor(occ, kind)
    w = pair_weights(eps, g, kT, occ)
    if kind == "fermi" and kT > 0:     # the pairs a = b of a discretised continuum (see above)
        np.fill_diagonal(w, np.diag(g) / kT)
    dlt = eps[None, :] - eps[:, None]
    K = w * delta_gauss(dlt, sigma)
    Wp = w * principal_gauss(dlt, sigma)
    np.fill_diagonal(Wp, 0.0)
    nd = D.shape[0]
    eta = np.empty((nd, nd))
    B = np.empty((nd, nd))
    for k in range(nd):
        Dk = np.conj(D[k])
        for j in range(k, nd):
            M = Dk * D[j]                                  # conj(D^k_ab) D^j_ab
            eta[k, j] = eta[j, k] = math.pi * np.sum(K * M.real)
            B[k, j] = np.sum(Wp * M.imag) if np.iscomplexobj(M) else 0.0
            B[j, k] = -B[k, j]
    return 0.5 * (eta + eta.T), 0.5 * (B - B.T)


def hgt_friction(eps, D, mu, sigma):
    """Head-Gordon-Tully friction at T = 0 (MB text after (121), Appendix G):
    ``eta_kj = pi sum_{a, b} Re(conj(D^k_ab) D^j_ab) delta_sigma(eps_a - mu)
    delta_sigma(eps_b - mu)`` (all pairs, as for the finite-temperature one-body sum)."""
    d = delta_gauss(np.asarray(eps) - mu, sigma)
    K = d[:, None] * d[None, :]
    eta = math.pi * np.einsum("ab,kab,jab->kj", K, np.conj(D), D).real
    return 0.5 * (eta + eta.T)


def gamma_beta_lines(E, p, D):
    """The line spectrum of MB's ``gamma^beta_kj(omega)`` (119): for every ordered pair
    ``n != m`` the frequency ``omega_nm = E_m - E_n`` and the weight
    ``(pi / omega_nm) p_n (f_k)_nm (f_j)_mn`` (a (nd, nd) complex matrix; ``f_k = -d_k H``), so
    that ``gamma^beta_kj(omega) = sum_nm W_kj(n, m) delta(omega - omega_nm)``. Returns
    ``(omega (ns, ns), W (nd, nd, ns, ns))`` with zeros on the diagonal ``n = m`` (and for
    degenerate pairs, where ``omega = 0``)."""
    E = np.asarray(E, dtype=np.float64)
    om = E[None, :] - E[:, None]
    with np.errstate(divide="ignore"):
        inv = np.where(om != 0, 1.0 / np.where(om != 0, om, 1.0), 0.0)
    W = math.pi * np.einsum("nm,n,knm,jmn->kjnm", inv, p, D, D)
    return om, W


def gamma_beta(omega, E, p, D, sigma):
    """``gamma^beta_kj(omega)`` of MB (119) with the delta function broadened to ``sigma``
    (complex (nd, nd)); ``omega`` (hartree) must be non-zero."""
    om, W = gamma_beta_lines(E, p, D)
    return np.einsum("nm,kjnm->kj", delta_gauss(omega - om, sigma), W)


def converged_friction(eps, D, occ, kind, kT, center, factor=BROADENING_FACTOR):
    """``(eta, B, sigma, change)``: :func:`spectral_friction` at the rule's ``sigma`` and
    ``2 sigma``, Richardson-extrapolated in ``sigma^2`` (module docstring); ``change`` is
    ``max |eta - eta(sigma)| / max |eta|``."""
    sigma = broadening_width(eps, center, kT, factor)
    e1, b1 = spectral_friction(eps, D, occ, kind, kT, sigma)
    e2, b2 = spectral_friction(eps, D, occ, kind, kT, 2.0 * sigma)
    eta, B = (4.0 * e1 - e2) / 3.0, (4.0 * b1 - b2) / 3.0
    scale = max(float(np.abs(eta).max()), 1e-300)
    return eta, B, sigma, float(np.abs(eta - e1).max() / scale)
