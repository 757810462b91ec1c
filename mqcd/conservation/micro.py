r"""Microscopic ingredients of the PSS fields for one configuration on one surface.

For a trajectory on adiabatic surface ``j`` (eigenvector :math:`\psi_j`, the other state ``k``) of a
pair-term model (mqcd/models/pairs.py) at positions ``x`` and momenta ``p``:

* per-particle energies :math:`e_n = |p^n|^2/2M + \lambda_j^n`, with
  :math:`\lambda_j^n = \langle\psi_j, V^n\psi_j\rangle` (PSS eqs. (2.9)-(2.10));
* pair derivatives :math:`g_p = \partial\tilde\lambda_j/\partial r_p` for every pair within the
  cut-off, either

  - ``"minimum-norm"`` (PSS Sec. 7, eq. (7.1)): the least-norm solution of the chain rule
    :math:`\nabla\lambda_j = (\partial r/\partial x)^T g`; in a periodic box the box is part of
    the configuration, so the chain rule for a homogeneous deformation of positions and box,
    :math:`\partial\lambda_j/\partial\varepsilon_{\alpha\beta} =
    \sum_p g_p d_{p\alpha} d_{p\beta}/r_p` (the configurational virial), is imposed as well
    (without it the least-norm solution drops the uniform bond tension of a ring, which forces
    cannot see, and the stress would miss the pressure);
  - ``"hellmann-feynman"``: :math:`g_p = \langle\psi_j, \Phi'(r_p)\psi_j\rangle`, the derivative
    of the eigenvalue of :math:`\sum_p \Phi(r_p)` with respect to each pair distance taken as
    independent (another solution of the same chain rule; for pair-additive surfaces it is
    :math:`\phi_j'(r_p)`, the classical Irving-Kirkwood bond force);

* the energy-exchange terms of the heat flux (3.12), :math:`T_{nm} = (p^m/M)\cdot
  \nabla_{x^m}\lambda_j^n`, split into a pair-local part (from :math:`\nabla_{x^m}V^n`) and the
  part from the eigenvector derivative,

  .. math:: \nabla_{x^m}\lambda_j^n \ni 2\,\frac{\langle\psi_j, V^n\psi_k\rangle}
            {\lambda_j - \lambda_k}\,\langle\psi_k, \nabla_{x^m}V\,\psi_j\rangle
            = 2 a_n\, \nabla_{x^m} s,

  which couples every particle to every other one (the eigenvalues are not pair-additive) and
  vanishes when the eigenvectors do not depend on x (``c12 = 0``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DERIVATIVES = ("minimum-norm", "hellmann-feynman")


@dataclass
class Configuration:
    """Everything the field estimators need from one (trajectory, record)."""
    X: np.ndarray          # (N, dim) positions, bohr (unwrapped)
    P: np.ndarray          # (N, dim) momenta
    M: float               # atom mass
    e: np.ndarray          # (N,) per-particle energy, hartree
    lam: np.ndarray        # (N,) per-particle potential energy lambda_j^n
    i: np.ndarray          # (P,) pair index (i < j)
    j: np.ndarray
    d: np.ndarray          # (P, dim) x_i - x_j (minimum image)
    r: np.ndarray          # (P,)
    g: np.ndarray          # (P,) d lambda_j / d r_p (the chosen decomposition)
    g_hf: np.ndarray       # (P,) Hellmann-Feynman pair derivatives
    a: np.ndarray          # (N,) <psi_j, V^n psi_k> / (lambda_j - lambda_k)
    s: np.ndarray          # (N,) (p^m/M) . grad_m <psi_k, V psi_j>
    energy: float          # lambda_j
    box: float


def surface_state(model, xrow, surface):
    """``(lambda_j, psi_j, psi_k, lambda_k, grad lambda_j)`` of one configuration (two-state
    model; the gradient is the eigenvector-weighted model gradient, (N*dim,))."""
    H, dH = model.evaluate(xrow[None, :])
    E, V = np.linalg.eigh(H[0].real)
    j = int(surface)
    k = 1 - j
    grad = np.einsum("a,dab,b->d", V[:, j], dH[0].real, V[:, j])
    return E[j], V[:, j], V[:, k], E[k], grad


def pair_derivatives_minimum_norm(model, cfg_force, i, j, d, r, g_hf):
    """Least-norm ``g`` with ``(dr/dx)^T g = grad lambda`` and the strain rows (module
    docstring), solved densely (SVD) for small systems, by LSQR (min-norm for a consistent
    system started at 0) otherwise. ``cfg_force`` is ``grad lambda`` flattened (N*dim,)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import lsqr
    N = model.natoms
    dim = model.dim
    P = r.size
    u = d / r[:, None]
    rows = np.concatenate([i[:, None] * dim + np.arange(dim), j[:, None] * dim + np.arange(dim)],
                          axis=1).ravel()
    cols = np.repeat(np.arange(P), 2 * dim)
    vals = np.concatenate([u, -u], axis=1).ravel()
    A = sp.csr_matrix((vals, (rows, cols)), shape=(N * dim, P))
    ab = [(a, b) for a in range(dim) for b in range(a, dim)]
    B = np.array([d[:, a] * d[:, b] / r for a, b in ab])
    C = sp.vstack([A, sp.csr_matrix(B)]).tocsr()
    rhs = np.concatenate([cfg_force, B @ g_hf])
    if C.shape[0] * C.shape[1] <= 4_000_000:
        g, *_ = np.linalg.lstsq(C.toarray(), rhs, rcond=1e-13)
    else:
        g = lsqr(C, rhs, atol=1e-15, btol=1e-15, iter_lim=20 * (P + N * dim))[0]
    return g


def configuration(model, xrow, prow, surface, derivatives="minimum-norm"):
    """:class:`Configuration` of trajectory phase point ``(xrow, prow)`` on ``surface``."""
    if derivatives not in DERIVATIVES:
        raise ValueError(f"pair derivatives '{derivatives}': allowed {', '.join(DERIVATIVES)}")
    dim, N = model.dim, model.natoms
    lam_j, psi, psik, lam_k, grad = surface_state(model, xrow, surface)
    i, j, d = model.pairs(xrow)
    r = np.sqrt(np.einsum("pa,pa->p", d, d))
    phi, dphi = model.pair_matrices(r)
    g_hf = np.einsum("a,pab,b->p", psi, dphi, psi)
    e_pair = np.einsum("a,pab,b->p", psi, phi, psi)
    gap = model.offsets()
    lam = np.full(N, float(psi @ (gap * psi)) / N)
    np.add.at(lam, i, 0.5 * e_pair)
    np.add.at(lam, j, 0.5 * e_pair)
    X = xrow.reshape(N, dim)
    P = prow.reshape(N, dim)
    M = float(model.masses[0])
    v = P / M
    e = 0.5 * np.einsum("na,na->n", P, P) / M + lam
    # eigenvector-derivative part: a_n = <psi_j, V^n psi_k>/(lam_j - lam_k), s_m
    c_pair = np.einsum("a,pab,b->p", psi, phi, psik)
    a = np.full(N, float(psi @ (gap * psik)) / N)
    np.add.at(a, i, 0.5 * c_pair)
    np.add.at(a, j, 0.5 * c_pair)
    a /= (lam_j - lam_k)
    h = np.einsum("a,pab,b->p", psik, dphi, psi)
    s = np.zeros(N)
    np.add.at(s, i, h * np.einsum("pa,pa->p", d, v[i]) / r)
    np.add.at(s, j, -h * np.einsum("pa,pa->p", d, v[j]) / r)
    if derivatives == "hellmann-feynman":
        g = g_hf
    else:
        g = pair_derivatives_minimum_norm(model, grad, i, j, d, r, g_hf)
    return Configuration(X=X, P=P, M=M, e=e, lam=lam, i=i, j=j, d=d, r=r, g=g, g_hf=g_hf,
                         a=a, s=s, energy=lam_j, box=model.box)
