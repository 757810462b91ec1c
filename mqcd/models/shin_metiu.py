r"""Shin-Metiu model: one electron and one proton between two fixed ions, in one dimension.

S. Shin and H. Metiu, J. Chem. Phys. 102, 9285 (1995); parameters of the strongly coupled case
used by e.g. Gossel, Lacombe and Maitra, J. Chem. Phys. 150, 154112 (2019): ions at
``+-L/2`` (L = 19 bohr), proton at ``R``, electron at ``r``,

.. math::

    V(r, R) = \frac{1}{|L/2 - R|} + \frac{1}{|L/2 + R|}
              - \frac{\mathrm{erf}(|r - R|/R_f)}{|r - R|}
              - \frac{\mathrm{erf}(|r - L/2|/R_r)}{|r - L/2|}
              - \frac{\mathrm{erf}(|r + L/2|/R_l)}{|r + L/2|},

``R_f = 5``, ``R_l = 3.1``, ``R_r = 4`` bohr, electron mass 1, proton mass 1836.15 m_e.

**How the electronic Hamiltonian is computed.** The electronic problem ``-1/2 d^2/dr^2 + V(r, R)``
is discretised on a uniform grid of ``grid_points`` points on ``[-box, box]`` (sinc-DVR kinetic
energy, D. T. Colbert and W. H. Miller, J. Chem. Phys. 96, 1982 (1992)). A diabatic (R-independent)
electronic basis of ``nbasis`` functions is built once, at construction: the four lowest grid
eigenvectors at nine proton positions ``R = -9 .. 9`` bohr are orthonormalised by a singular value
decomposition and the ``nbasis`` leading vectors kept. The model's diabatic matrix is the grid
Hamiltonian projected on that basis,
``H_ab(R) = sum_i B_ia B_ib V(r_i, R) + (B^T T B)_ab`` (the proton-ion repulsion on the
diagonal), with the exact analytic ``dH/dR``. Its lowest adiabatic energies agree with the full
grid's to 1e-6 hartree (states 0-2, |R| <= 9 bohr, nbasis = 12; 3e-9 with nbasis = 16; checked in
tests/test_production.py); the upper adiabats of the truncated basis are not physical but
lie far above the energies reached. ``nstates = nbasis``; state 0 is the ground state.
"""
import math

import numpy as np
import scipy.linalg
import scipy.special
from numba import njit

from .base import Model

#: proton mass in electron masses (CODATA 2018)
PROTON_MASS = 1836.15267343
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@njit(cache=True, inline="always")
def _soft(u, a):
    """erf(u/a)/u and (d/du (erf(u/a)/u)) / u for u >= 0 (series near 0)."""
    z = u / a
    if z < 1e-3:
        f = _TWO_OVER_SQRT_PI / a * (1.0 - z * z / 3.0)
        g = -_TWO_OVER_SQRT_PI / (a * a * a) * (2.0 / 3.0 - 0.4 * z * z)
        return f, g
    e = math.erf(z)
    f = e / u
    g = (_TWO_OVER_SQRT_PI * z * math.exp(-z * z) - e) / (u * u * u)
    return f, g


@njit(cache=True)
def _shin_metiu(x, p, H, dH):
    L, Rf = p[0], p[1]
    ng = int(p[2])
    nb = int(p[3])
    r = p[4:4 + ng]
    o = 4 + ng
    B = p[o:o + ng * nb]
    o += ng * nb
    H0 = p[o:o + nb * nb]
    v = np.empty(ng)
    dv = np.empty(ng)
    for i in range(x.shape[0]):
        R = x[i, 0]
        for j in range(ng):
            d = r[j] - R
            u = abs(d)
            f, g = _soft(u, Rf)
            v[j] = -f
            dv[j] = g * d          # d/dR (-erf(u/Rf)/u) = -f'(u) du/dR = f'(u)/u * (r - R)
        a1 = 0.5 * L - R
        a2 = 0.5 * L + R
        vnn = 1.0 / abs(a1) + 1.0 / abs(a2)
        dvnn = math.copysign(1.0, a1) / (a1 * a1) - math.copysign(1.0, a2) / (a2 * a2)
        for a in range(nb):
            for b in range(a, nb):
                acc = 0.0
                dacc = 0.0
                for j in range(ng):
                    w = B[j * nb + a] * B[j * nb + b]
                    acc += w * v[j]
                    dacc += w * dv[j]
                hv = H0[a * nb + b] + acc
                if a == b:
                    hv += vnn
                    dacc += dvnn
                H[i, a, b] = hv
                H[i, b, a] = hv
                dH[i, 0, a, b] = dacc
                dH[i, 0, b, a] = dacc


class ShinMetiu(Model):
    """Shin-Metiu proton-coupled electron transfer in a fixed grid-derived electronic basis."""
    name = "shin_metiu"
    doc_sizes = "`nbasis` states, 1 dof, proton mass 1836.15"
    nstates = 12
    ndof = 1
    mass = PROTON_MASS
    scattering = False
    interaction_radius = 8.0
    parameters = {"L": (19.0, "bohr", "distance between the fixed ions (at +-L/2)"),
                  "Rf": (5.0, "bohr", "softening of the electron-proton attraction"),
                  "Rl": (3.1, "bohr", "softening of the electron-left-ion attraction"),
                  "Rr": (4.0, "bohr", "softening of the electron-right-ion attraction"),
                  "nbasis": (12, "1", "electronic basis functions (= nstates)"),
                  "grid_points": (200, "1", "electron grid points"),
                  "box": (25.0, "bohr", "electron grid on [-box, box]")}
    kernel = staticmethod(_shin_metiu)

    def setup(self):
        p = self.param_values
        for k in ("nbasis", "grid_points"):
            if p[k] != int(p[k]):
                raise ValueError(f"[model] shin_metiu: {k} = {p[k]:g} must be an integer")
        nb, ng = int(p["nbasis"]), int(p["grid_points"])
        if not 2 <= nb <= 36 or ng < 4 * nb:
            raise ValueError(f"[model] shin_metiu: nbasis = {nb} must be in 2..36 and grid_points "
                             f"= {ng} >= 4 nbasis")
        if p["box"] <= 0.5 * p["L"] or min(p["L"], p["Rf"], p["Rl"], p["Rr"]) <= 0:
            raise ValueError("[model] shin_metiu: L, Rf, Rl, Rr must be > 0 and box > L/2")
        self.r = np.linspace(-p["box"], p["box"], ng)
        dr = self.r[1] - self.r[0]
        k = np.arange(ng)
        d = k[:, None] - k[None, :]
        with np.errstate(divide="ignore"):
            T = np.where(d == 0, np.pi ** 2 / 3.0, 2.0 * (-1.0) ** d / np.where(d == 0, 1, d) ** 2)
        self.T = T / (2.0 * dr * dr)
        self.v_ions = -(self._softc(self.r - 0.5 * p["L"], p["Rr"])
                        + self._softc(self.r + 0.5 * p["L"], p["Rl"]))
        vecs = [scipy.linalg.eigh(self.grid_hamiltonian(R), subset_by_index=[0, 3])[1]
                for R in np.linspace(-9.0, 9.0, 9)]
        U, _, _ = np.linalg.svd(np.hstack(vecs), full_matrices=False)
        self.basis = np.ascontiguousarray(U[:, :nb])
        H0 = self.basis.T @ (self.T + np.diag(self.v_ions)) @ self.basis
        self.nstates = nb
        self.params = np.concatenate([[p["L"], p["Rf"], ng, nb], self.r, self.basis.ravel(),
                                      (0.5 * (H0 + H0.T)).ravel()])
        self.interaction_radius = min(8.0, 0.5 * p["L"] - 1.0)

    @staticmethod
    def _softc(u, a):
        u = np.abs(u)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = scipy.special.erf(u / a) / u
        return np.where(u < 1e-12, 2.0 / (a * math.sqrt(math.pi)), f)

    def grid_hamiltonian(self, R):
        """The full electronic grid Hamiltonian (grid_points x grid_points, hartree) at proton
        position ``R`` (bohr), proton-ion repulsion included: the reference the basis is checked
        against."""
        p = self.param_values
        v = self.v_ions - self._softc(self.r - R, p["Rf"])
        vnn = 1.0 / abs(0.5 * p["L"] - R) + 1.0 / abs(0.5 * p["L"] + R)
        return self.T + np.diag(v + vnn)

