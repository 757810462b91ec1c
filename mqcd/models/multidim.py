"""Multi-dimensional two-state models (atomic units, hbar = 1).

* ``conical2d``: a two-state, two-mode linear vibronic coupling (LVC) conical intersection with a
  tuning mode ``x`` and a coupling mode ``y`` (the LVC form of H. Koeppel, W. Domcke and
  L. S. Cederbaum, Adv. Chem. Phys. 57, 59 (1984)). The default parameters are mqcd's own
  illustrative set (not taken from a paper); see :class:`ConicalIntersection2D`.
* ``spin_boson``: a biased two-level system linearly coupled to a discretised Ohmic bath of
  ``modes`` harmonic oscillators in mass-weighted coordinates (mass 1 per mode); see
  :class:`SpinBoson` for the spectral density convention and the discretisation.

Neither model is a scattering model. Both diabatic matrices are polynomial in the coordinates, so
there are no exponentially small couplings to flush to zero.
"""
import math

import numpy as np
from numba import njit

from .base import Model


# ----------------------------------------------------------------------------- conical2d
@njit(cache=True)
def _conical2d(x, p, H, dH):
    kx, ky, kappa, delta, lam = p[0], p[1], p[2], p[3], p[4]
    for i in range(x.shape[0]):
        q = x[i, 0]
        s = x[i, 1]
        v0 = 0.5 * kx * q * q + 0.5 * ky * s * s
        d = kappa * q + delta
        v12 = lam * s
        H[i, 0, 0] = v0 + d
        H[i, 1, 1] = v0 - d
        H[i, 0, 1] = v12
        H[i, 1, 0] = v12
        # d/dx
        dH[i, 0, 0, 0] = kx * q + kappa
        dH[i, 0, 1, 1] = kx * q - kappa
        dH[i, 0, 0, 1] = 0.0
        dH[i, 0, 1, 0] = 0.0
        # d/dy
        dH[i, 1, 0, 0] = ky * s
        dH[i, 1, 1, 1] = ky * s
        dH[i, 1, 0, 1] = lam
        dH[i, 1, 1, 0] = lam


class ConicalIntersection2D(Model):
    r"""Two-state, two-mode linear vibronic coupling conical intersection.

    .. math::

        H_{11} &= V_0 + \kappa x + \Delta, \qquad H_{22} = V_0 - \kappa x - \Delta,
        \qquad H_{12} = \lambda y,\\
        V_0 &= \tfrac12 k_x x^2 + \tfrac12 k_y y^2 .

    ``x`` is the tuning mode, ``y`` the coupling mode. The adiabatic energies are
    :math:`V_0 \mp \sqrt{(\kappa x + \Delta)^2 + \lambda^2 y^2}`; they intersect at
    :math:`(x, y) = (-\Delta/\kappa, 0)`, where the gap opens linearly with slope
    :math:`2|\kappa|` along ``x`` and :math:`2|\lambda|` along ``y``.

    The Franck-Condon point is the origin (minimum of :math:`V_0`). Defaults, with mass 2000 for
    both modes: :math:`\omega_x = \sqrt{k_x/M} = 0.01` and :math:`\omega_y = 0.006` hartree; at
    the origin diabat 1 is the upper adiabat, :math:`2\Delta = 0.1` hartree (2.7 eV) above
    diabat 2; the intersection lies at :math:`(-0.5, 0)` bohr, which is also the minimum of
    diabat 1 (:math:`x_1 = -\kappa/k_x`), about three widths of the ground vibrational state
    (:math:`\sigma_x = 0.16` bohr) from the origin. A wavepacket released at rest on the upper
    adiabat at the origin reaches the intersection after a quarter period,
    :math:`\pi/(2\omega_x) \approx 157` a.u. of time, at its fastest (kinetic energy about
    0.025 hartree). In a split-operator check (256 x 256 grid on [-4, 4)^2 bohr, dt = 0.5, the
    initial Gaussian being the vibrational ground state of :math:`V_0` on the upper adiabat) the
    upper adiabatic population falls from 0.98 at t = 80 to 0.13 at t = 240 a.u.; started in
    diabat 1, the density (above 1e-10) stays within |x|, |y| < 2.5 bohr up to t = 600 a.u.
    ``interaction_radius = 4`` bohr is the half-width of a safe grid.

    These parameters are mqcd's own illustrative set, chosen for that timing; they are not a
    published parameter set.
    """
    name = "conical2d"
    nstates = 2
    ndof = 2
    mass = 2000.0
    scattering = False
    interaction_radius = 4.0
    parameters = {"kx": (0.2, "hartree/bohr^2", "force constant of the tuning mode x"),
                  "ky": (0.072, "hartree/bohr^2", "force constant of the coupling mode y"),
                  "kappa": (0.1, "hartree/bohr", "tuning gradient: H11 - H22 = 2 (kappa x + Delta)"),
                  "Delta": (0.05, "hartree", "half the vertical diabatic gap at x = 0"),
                  "lam": (0.05, "hartree/bohr", "coupling gradient: H12 = lam y")}
    kernel = staticmethod(_conical2d)

    def setup(self):
        if self.param_values["kappa"] == 0.0:
            raise ValueError("[model] conical2d: kappa must be nonzero (it places the "
                             "intersection at x = -Delta/kappa)")

    def harmonic_reference(self):
        """``(x0, omega)``: the Franck-Condon point (the minimum of ``V0``, the origin) and the
        frequencies ``sqrt(k/M)`` (hartree) of the two modes."""
        p = self.param_values
        return np.zeros(2), np.sqrt(np.array([p["kx"], p["ky"]]) / self.masses)

    def intersection(self):
        """Position ``(x, y)`` (bohr) of the conical intersection."""
        p = self.param_values
        return np.array([-p["Delta"] / p["kappa"], 0.0])


# ----------------------------------------------------------------------------- spin_boson
_HEAD = 5  # eps, Delta, alpha, omega_c, modes; then omega_1..omega_N, c_1..c_N


@njit(cache=True)
def _spin_boson(x, p, H, dH):
    eps, delta = p[0], p[1]
    n = x.shape[1]
    w = p[_HEAD:_HEAD + n]
    c = p[_HEAD + n:_HEAD + 2 * n]
    for i in range(x.shape[0]):
        vb = 0.0
        vc = 0.0
        for j in range(n):
            q = x[i, j]
            vb += 0.5 * w[j] * w[j] * q * q
            vc += c[j] * q
            g = w[j] * w[j] * q
            dH[i, j, 0, 0] = g + c[j]
            dH[i, j, 1, 1] = g - c[j]
            dH[i, j, 0, 1] = 0.0
            dH[i, j, 1, 0] = 0.0
        H[i, 0, 0] = vb + eps + vc
        H[i, 1, 1] = vb - eps - vc
        H[i, 0, 1] = delta
        H[i, 1, 0] = delta


def ohmic_bath(alpha, omega_c, modes):
    r"""Discretised Ohmic bath: frequencies and couplings ``(omega_j, c_j)``, j = 1..modes.

    Spectral density (convention of :class:`SpinBoson`)

    .. math:: J(\omega) = \frac{\pi}{2}\sum_j \frac{c_j^2}{\omega_j}\delta(\omega-\omega_j)
              \approx \frac{\pi}{2}\,\alpha\,\omega\,e^{-\omega/\omega_c}.

    The frequencies split the density of modes :math:`\rho(\omega) = (f/\omega_c)
    e^{-\omega/\omega_c}` into ``f`` equal parts and take their midpoints,
    :math:`\omega_j = -\omega_c \ln((j - 1/2)/f)` (the frequency grid used for Ohmic baths by
    Craig and Manolopoulos, J. Chem. Phys. 122, 084106 (2005)); the couplings then follow from
    :math:`c_j^2 = (2/\pi)\,\omega_j J(\omega_j)/\rho(\omega_j)`, i.e.
    :math:`c_j = \omega_j \sqrt{\alpha\omega_c/f}`. Each mode carries the same share
    :math:`\alpha\omega_c/(2f)` of :math:`\lambda = \sum_j c_j^2/(2\omega_j^2) = \alpha\omega_c/2`,
    so the discrete bath reproduces the continuum value of :math:`\lambda` exactly for any ``f``.
    Returned in increasing frequency.
    """
    f = int(modes)
    j = np.arange(f, 0, -1, dtype=np.float64)
    w = -omega_c * np.log((j - 0.5) / f)
    c = w * math.sqrt(alpha * omega_c / f)
    return w, c


class SpinBoson(Model):
    r"""Spin-boson model with a discretised Ohmic bath (mass-weighted coordinates, mass 1).

    .. math::

        H = \begin{pmatrix} \epsilon + \sum_j c_j x_j & \Delta \\
                            \Delta & -\epsilon - \sum_j c_j x_j \end{pmatrix}
            + \sum_j \tfrac12 \omega_j^2 x_j^2 \,\mathbb{1}

    i.e. :math:`H = \epsilon\sigma_z + \Delta\sigma_x + \sigma_z\sum_j c_j x_j + V_{bath}`; the
    diabatic gap is :math:`2\epsilon` and the bare tunnelling splitting :math:`2\Delta`.
    Spectral density :math:`J(\omega) = (\pi/2)\sum_j (c_j^2/\omega_j)\delta(\omega-\omega_j)
    = (\pi/2)\alpha\omega e^{-\omega/\omega_c}`. With this convention :math:`\alpha` is the
    Kondo parameter of A. J. Leggett et al., Rev. Mod. Phys. 59, 1 (1987) (their Hamiltonian
    :math:`-\tfrac12\Delta_L\sigma_x + \tfrac12\epsilon_L\sigma_z + \tfrac12 q_0\sigma_z\sum
    C_\alpha x_\alpha` maps onto this one with :math:`\Delta_L = 2\Delta`,
    :math:`\epsilon_L = 2\epsilon`, :math:`q_0 C_\alpha/2 = c_\alpha`), so alpha = 1/2 is the
    coherent-incoherent boundary of the unbiased model at zero temperature (for Delta << omega_c).

    Reorganisation: :math:`\lambda = \sum_j c_j^2/(2\omega_j^2) = (1/\pi)\int J(\omega)/\omega\,
    d\omega = \alpha\omega_c/2` (relaxation energy of one diabat); the Marcus reorganisation
    energy (vertical gap change) is :math:`4\lambda = 2\alpha\omega_c`. The discretisation is
    :func:`ohmic_bath`.

    Every mode has mass 1 (mass-weighted coordinates ``x_j`` in bohr * sqrt(m_e), momenta
    accordingly): keep ``mass = 1`` unless you rescale the frequencies yourself. ``ndof`` equals
    ``modes``. The defaults are in units of the coupling (Delta = 1 hartree, the usual reduced
    units of spin-boson benchmarks): epsilon = 1, alpha = 0.1, omega_c = 2.5, 100 modes. They
    are an illustrative set, not one particular published benchmark.
    """
    name = "spin_boson"
    nstates = 2
    ndof = 100
    mass = 1.0
    scattering = False
    interaction_radius = 25.0
    parameters = {"epsilon": (1.0, "hartree", "bias: H11 - H22 = 2 (epsilon + sum_j c_j x_j)"),
                  "Delta": (1.0, "hartree", "tunnelling coupling H12"),
                  "alpha": (0.1, "1", "Kondo parameter of the Ohmic bath (Leggett convention)"),
                  "omega_c": (2.5, "hartree", "cut-off frequency of J(w) = (pi/2) alpha w exp(-w/omega_c)"),
                  "modes": (100, "1", "number of bath modes (= number of nuclear dof)")}
    kernel = staticmethod(_spin_boson)

    def setup(self):
        p = self.param_values
        modes = p["modes"]
        if modes != int(modes) or modes < 1:
            raise ValueError(f"[model] spin_boson: modes = {modes:g} must be a positive integer")
        if p["omega_c"] <= 0:
            raise ValueError(f"[model] spin_boson: omega_c = {p['omega_c']:g} must be > 0")
        if p["alpha"] < 0:
            raise ValueError(f"[model] spin_boson: alpha = {p['alpha']:g} must be >= 0")
        self.ndof = int(modes)
        self.omega, self.coupling = ohmic_bath(p["alpha"], p["omega_c"], self.ndof)
        self.params = np.concatenate([self.params[:_HEAD], self.omega, self.coupling])
        # scale of the region the bath explores: displaced minimum plus three zero-point widths
        # of the softest mode
        self.interaction_radius = float(np.max(np.abs(self.coupling) / self.omega ** 2
                                               + 3.0 / np.sqrt(2.0 * self.omega)))

    def harmonic_reference(self):
        """``(x0, omega)``: the bath minimum without the system coupling (x = 0) and the mode
        frequencies (hartree). For a bath equilibrated with one diabat instead (displaced by
        ``-+ c_j / omega_j^2``), give ``[initial] position``."""
        return np.zeros(self.ndof), self.omega.copy()

    def reorganisation_energy(self):
        """``lambda = sum_j c_j^2 / (2 omega_j^2)`` of the discrete bath (hartree)."""
        return float(np.sum(self.coupling ** 2 / (2.0 * self.omega ** 2)))

    def spectral_density(self, w):
        """Continuum Ohmic ``J(w) = (pi/2) alpha w exp(-w/omega_c)`` (hartree)."""
        p = self.param_values
        w = np.asarray(w, dtype=np.float64)
        return 0.5 * np.pi * p["alpha"] * w * np.exp(-w / p["omega_c"])
