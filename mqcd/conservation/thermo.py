r"""Surface probabilities q_j and the equation of state of the pair models (PSS Thm 5.2, Sec. 6).

* :func:`bar_q`: ``q_1 = Z_1 / (Z_0 + Z_1)`` of a two-surface canonical ensemble from samples of
  both surfaces by Bennett's acceptance ratio (C. H. Bennett, J. Comput. Phys. 22, 245 (1976),
  eq. (8) with the optimal constant; the two-state case of mqcd/ensemble/freeenergy.py): with ``u = (lambda_1 - lambda_0)/kT`` at the samples of
  surface 0 (``u0``) and of surface 1 (``u1``), ``df = -ln(Z_1/Z_0)`` solves

  .. math:: \sum_{i \in 0} \frac{1}{1 + \frac{n_0}{n_1} e^{u0_i - df}}
          = \sum_{i \in 1} \frac{1}{1 + \frac{n_1}{n_0} e^{-u1_i + df}} ;

  it needs only the energy difference at the samples (translation-invariant), so the zero
  modes of a periodic box do not enter, unlike an importance-sampling estimate of each ``Z_j``.
* :func:`chain_exact`: for the 1D ring with nearest-neighbour pair terms and ``c12 = 0``,
  ``Z_j(L) = L e^{-\Delta_j/kT} (f_j^{*N})(L)`` with ``f_j(r) = e^{-\phi_j(r)/kT}`` (the bond
  lengths sum to the box ``L``; the N-fold convolution by FFT on a fine grid) and
  ``P_j = kT\, \partial_L \ln Z_j``: the pressure on each surface and ``q_j`` without sampling,
  the prediction of Theorem 5.2, ``P = \sum_j q_j P_j``, to compare with the fields' stress.
"""
from __future__ import annotations

import math

import numpy as np


def surface_energies(model, X):
    """Adiabatic energies (n, nstates) hartree of configurations ``X`` (n, ndof)."""
    out = np.empty((X.shape[0], model.nstates))
    for k in range(0, X.shape[0], 64):
        H, _ = model.evaluate(X[k:k + 64])
        out[k:k + 64] = np.linalg.eigvalsh(H.real)
    return out


def bar_q(u0, u1):
    """``(q_1, df)`` from the reduced energy differences ``u = (lambda_1 - lambda_0)/kT`` at
    samples of surface 0 (``u0``) and surface 1 (``u1``); ``df = -ln(Z_1/Z_0)``."""
    from ..ensemble.freeenergy import mbar_free_energies, probabilities
    u0, u1 = np.ravel(np.asarray(u0, float)), np.ravel(np.asarray(u1, float))
    if u0.size == 0 or u1.size == 0:
        raise ValueError("BAR needs samples on both surfaces")
    du = np.concatenate([u0, u1])
    f = mbar_free_energies(np.stack([np.zeros_like(du), du]), [u0.size, u1.size])
    return float(probabilities(f)[1]), float(f[1])


def chain_exact(model, kT, h=1e-3, rmin=None, rmax=None):
    """Exact ``(q, P)`` of a 1D ring of the pair model with ``c12 = 0`` and nearest-neighbour
    bonds only: ``q`` (2,) surface probabilities, ``P`` (2,) pressures (hartree; force in 1D)
    of each surface at the model's box and ``kT`` (hartree). ``h`` is the bond-length grid
    (bohr). Surface j is diabatic state j (state 2 above state 1 at every thermal
    configuration: ``gap + sum (phi_2 - phi_1) > 0``)."""
    pv = model.param_values
    if model.dim != 1 or pv["c12"] != 0.0:
        raise ValueError("chain_exact: a 1D chain with c12 = 0")
    N, L = model.natoms, model.box
    rc = pv["cutoff"]
    rmin = 0.5 * rc if rmin is None else rmin
    rmax = rc if rmax is None else rmax
    if 2 * rmin < rc:
        raise ValueError("chain_exact: second neighbours may come within the cut-off")
    r = np.arange(rmin, rmax, h)
    phi, _ = model.pair_matrices(r)
    lnZ, P = np.empty(2), np.empty(2)
    for j in range(2):
        e = phi[:, j, j]
        f = np.exp(-(e - e.min()) / kT)
        c = f.sum() * h
        f = f * h / c
        n = 1 << int(math.ceil(math.log2(N * r.size + 1)))
        g = np.fft.irfft(np.fft.rfft(f, n) ** N, n)
        x = N * rmin + np.arange(n) * h           # g[k]: density of sum r = x[k] (times h)
        lg = lambda y: math.log(np.interp(y, x, g))   # noqa: E731
        lnZ[j] = (lg(L) + N * (math.log(c / h) - e.min() / kT) + math.log(L)
                  - model.offsets()[j] / kT)
        P[j] = kT * (1.0 / L + (lg(L + h) - lg(L - h)) / (2 * h))
    q = np.exp(lnZ - np.logaddexp.reduce(lnZ))
    return q, P
