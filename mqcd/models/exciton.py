r"""Excitonic models: sites coupled by a constant electronic matrix, each with its own harmonic bath.

Both models share one kernel: for ``ns`` sites and ``D`` bath modes in mass-weighted coordinates
(mass 1 per mode, ``x_k`` in bohr sqrt(m_e)), mode ``k`` belonging to site ``s_k``,

.. math::

    H = H_{el} + \sum_k \tfrac12\omega_k^2 x_k^2\,\mathbb 1 + \sum_k c_k x_k\,|s_k\rangle\langle s_k|,

the Holstein form (local, linear, diagonal coupling). The reorganisation energy of site ``n`` is
:math:`\lambda_n = \sum_{k: s_k = n} c_k^2 / (2\omega_k^2)` and the spectral density of its bath
:math:`J_n(\omega) = (\pi/2)\sum_{k: s_k = n} (c_k^2/\omega_k)\,\delta(\omega - \omega_k)` (the
convention of mqcd/models/multidim.py). The reference geometry is ``x = 0`` (the bath minimum of
the electronic ground state, which carries no coupling), the frequencies are ``omega_k``:
``harmonic_reference()`` feeds ``[initial] sampling = "wigner-thermal"``, which is then the
thermal bath of the ground state before a vertical (Franck-Condon) excitation.

* ``holstein``: a one-dimensional lattice of ``sites`` sites, site energy ``epsilon``, nearest
  neighbour hopping ``-J`` (periodic or open), one local phonon of frequency ``omega`` per site
  with the dimensionless Holstein coupling ``g``: ``c = g omega sqrt(2 omega)``, i.e. the usual
  ``g omega (b + b^dagger)`` per site, reorganisation energy ``g^2 omega`` per site (T. Holstein,
  Ann. Phys. 8, 325 (1959)). Optional site energies from a parameter file.
* ``fmo``: the seven-site Fenna-Matthews-Olson complex of C. tepidum with the electronic
  Hamiltonian of J. Adolphs and T. Renger, Biophys. J. 91, 2778 (2006) (as used by A. Ishizaki and
  G. R. Fleming, Proc. Natl. Acad. Sci. USA 106, 17255 (2009), their Table S1 / Fig. 1), and an
  independent Debye bath per site, ``J(w) = 2 lambda w omega_c / (w^2 + omega_c^2)``, lambda =
  35 cm^-1, 1/omega_c = 50 fs (Ishizaki-Fleming's parameters), discretised into ``modes`` modes
  per site by :func:`debye_bath`.
"""
import math

import numpy as np
from numba import njit
from scipy import constants

from .base import Model
from .lvc import read_parameter_file

#: hartree per cm^-1
CM = 100.0 * constants.physical_constants["inverse meter-hartree relationship"][0]
#: atomic units of time per femtosecond
FS = 1e-15 / constants.physical_constants["atomic unit of time"][0]


@njit(cache=True)
def _exciton_bath(x, p, H, dH):
    ns = int(p[0])
    D = int(p[1])
    o = 2
    hel = p[o:o + ns * ns]
    o += ns * ns
    w = p[o:o + D]
    o += D
    c = p[o:o + D]
    o += D
    site = p[o:o + D]
    for i in range(x.shape[0]):
        vb = 0.0
        for a in range(ns):
            for b in range(ns):
                H[i, a, b] = hel[a * ns + b]
        for k in range(D):
            q = x[i, k]
            w2q = w[k] * w[k] * q
            vb += 0.5 * w2q * q
            s = int(site[k])
            H[i, s, s] += c[k] * q
            for a in range(ns):
                for b in range(ns):
                    dH[i, k, a, b] = 0.0
                dH[i, k, a, a] = w2q
            dH[i, k, s, s] += c[k]
        for a in range(ns):
            H[i, a, a] += vb


def debye_bath(lam, omega_c, modes):
    r"""Discretised Debye (overdamped Brownian) bath: ``(omega_j, c_j)``, j = 1..modes.

    Spectral density :math:`J(\omega) = 2\lambda\omega\omega_c/(\omega^2 + \omega_c^2)` (with the
    convention :math:`J = (\pi/2)\sum_j c_j^2/\omega_j\,\delta(\omega - \omega_j)`, so that the
    reorganisation energy is :math:`\lambda = (1/\pi)\int J/\omega\,d\omega`). The frequencies
    split :math:`J(\omega)/\omega`, whose cumulative weight is :math:`(2/\pi)\arctan(\omega/
    \omega_c)`, into ``modes`` parts of equal reorganisation energy and take their midpoints,
    :math:`\omega_j = \omega_c\tan(\pi(j - 1/2)/(2f))`, with :math:`c_j = \omega_j
    \sqrt{2\lambda/f}` (each mode carries :math:`\lambda/f`; the discrete bath has exactly the
    continuum :math:`\lambda`). This is the discretisation of e.g. Mulvihill et al., J. Chem. Phys.
    154, 204109 (2021) and QC Lab's FMO model. Energies in hartree.
    """
    f = int(modes)
    j = np.arange(1, f + 1, dtype=np.float64)
    w = omega_c * np.tan(0.5 * np.pi * (j - 0.5) / f)
    c = w * math.sqrt(2.0 * lam / f)
    return w, c


class _ExcitonModel(Model):
    """Shared part: packing of (H_el, omega, c, site) for :func:`_exciton_bath`."""
    nstates = 2
    ndof = 1
    mass = 1.0
    scattering = False
    kernel = staticmethod(_exciton_bath)

    def _pack(self, hel, omega, coupling, site):
        hel = np.asarray(hel, dtype=np.float64)
        self.nstates = hel.shape[0]
        self.ndof = int(omega.size)
        self.H_el = hel
        self.omega = np.asarray(omega, dtype=np.float64)
        self.coupling = np.asarray(coupling, dtype=np.float64)
        self.site = np.asarray(site, dtype=np.int64)
        self.params = np.concatenate([[self.nstates, self.ndof], hel.ravel(), self.omega,
                                      self.coupling, self.site.astype(np.float64)])
        # displaced minimum plus three zero-point widths of the softest mode
        self.interaction_radius = float(np.max(np.abs(self.coupling) / self.omega ** 2
                                               + 3.0 / np.sqrt(2.0 * self.omega)))

    def harmonic_reference(self):
        """``(x0, omega)``: the bath minimum of the uncoupled ground state (x = 0) and the mode
        frequencies (hartree); masses 1 (mass-weighted coordinates)."""
        return np.zeros(self.ndof), self.omega.copy()

    def reorganisation_energies(self):
        """Reorganisation energy of each site's bath, ``sum_k c_k^2 / (2 omega_k^2)`` (hartree)."""
        lam = np.zeros(self.nstates)
        np.add.at(lam, self.site, self.coupling ** 2 / (2.0 * self.omega ** 2))
        return lam


class Holstein(_ExcitonModel):
    """One-dimensional Holstein lattice: ``sites`` sites, hopping ``-J``, one phonon per site."""
    name = "holstein"
    accepts_parameter_file = True
    doc_sizes = "`sites` states and modes, mass 1"
    parameters = {"sites": (8, "1", "number of sites (= electronic states = phonon modes)"),
                  "J": (1.0, "hartree", "hopping: H_n,n+1 = -J"),
                  "omega": (1.0, "hartree", "phonon frequency (mass-weighted coordinates, mass 1)"),
                  "g": (1.0, "1", "dimensionless Holstein coupling: c = g omega sqrt(2 omega); "
                        "reorganisation energy g^2 omega per site"),
                  "epsilon": (0.0, "hartree", "site energy (all sites; see parameter_file)"),
                  "periodic": (1, "1", "1: ring (site N couples to site 1), 0: open chain")}

    def __init__(self, parameter_file=None, mass=None, **params):
        self.site_energies = None
        self.parameter_file = "" if parameter_file is None else str(parameter_file)
        if parameter_file is not None:
            raw = read_parameter_file(parameter_file)
            bad = sorted(set(raw) - {"site_energies", "title", "reference", "notes"})
            if bad or not isinstance(raw.get("site_energies"), list):
                raise ValueError(f"[model] parameter_file {parameter_file} for holstein: expected "
                                 "site_energies = [...] (hartree, one per site)"
                                 + (f"; unknown key(s) {bad}" if bad else ""))
            self.site_energies = np.asarray(raw["site_energies"], dtype=np.float64)
        super().__init__(mass=mass, **params)

    def setup(self):
        p = self.param_values
        n = p["sites"]
        if n != int(n) or n < 2:
            raise ValueError(f"[model] holstein: sites = {n:g} must be an integer >= 2")
        if p["omega"] <= 0:
            raise ValueError(f"[model] holstein: omega = {p['omega']:g} must be > 0")
        if p["periodic"] not in (0, 1):
            raise ValueError(f"[model] holstein: periodic = {p['periodic']:g} must be 0 or 1")
        n = int(n)
        hel = np.diag(np.full(n, p["epsilon"]))
        if self.site_energies is not None:
            if self.site_energies.size != n:
                raise ValueError(f"[model] holstein: site_energies has {self.site_energies.size} "
                                 f"entries but sites = {n}")
            hel = np.diag(self.site_energies + p["epsilon"])
        for a in range(n - 1):
            hel[a, a + 1] = hel[a + 1, a] = -p["J"]
        if p["periodic"] and n > 2:
            hel[0, n - 1] = hel[n - 1, 0] = -p["J"]
        w = np.full(n, p["omega"])
        c = np.full(n, p["g"] * p["omega"] * math.sqrt(2.0 * p["omega"]))
        self._pack(hel, w, c, np.arange(n))


#: FMO electronic Hamiltonian of C. tepidum, sites BChl 1..7 (cm^-1), Adolphs & Renger (2006)
FMO_HAMILTONIAN_CM = np.array([
    [12410.0, -87.7, 5.5, -5.9, 6.7, -13.7, -9.9],
    [-87.7, 12530.0, 30.8, 8.2, 0.7, 11.8, 4.3],
    [5.5, 30.8, 12210.0, -53.5, -2.2, -9.6, 6.0],
    [-5.9, 8.2, -53.5, 12320.0, -70.7, -17.0, -63.3],
    [6.7, 0.7, -2.2, -70.7, 12480.0, 81.1, -1.3],
    [-13.7, 11.8, -9.6, -17.0, 81.1, 12630.0, 39.7],
    [-9.9, 4.3, 6.0, -63.3, -1.3, 39.7, 12440.0]])
#: energy origin subtracted from the diagonal (site 3, the lowest; a constant shift of H changes
#: no population or coherence)
FMO_ORIGIN_CM = 12210.0


class FMO(_ExcitonModel):
    """Seven-site FMO complex with a Debye bath per site (Ishizaki-Fleming parameters)."""
    name = "fmo"
    doc_sizes = "7 states, 7 `modes` dof, mass 1"
    parameters = {"lambda_cm": (35.0, "cm^-1", "reorganisation energy of each site's bath"),
                  "omega_c_cm": (round(1.0 / (50.0 * FS * CM), 4), "cm^-1", "Debye cut-off omega_c = 1/tau_c (tau_c = 50 fs: "
                                 "106.14 cm^-1)"),
                  "modes": (30, "1", "bath modes per site (ndof = 7 modes)")}

    def setup(self):
        p = self.param_values
        if p["modes"] != int(p["modes"]) or p["modes"] < 1:
            raise ValueError(f"[model] fmo: modes = {p['modes']:g} must be a positive integer")
        if p["lambda_cm"] < 0 or p["omega_c_cm"] <= 0:
            raise ValueError("[model] fmo: lambda_cm must be >= 0 and omega_c_cm > 0")
        f = int(p["modes"])
        hel = (FMO_HAMILTONIAN_CM - FMO_ORIGIN_CM * np.eye(7)) * CM
        w1, c1 = debye_bath(p["lambda_cm"] * CM, p["omega_c_cm"] * CM, f)
        self._pack(hel, np.tile(w1, 7), np.tile(c1, 7), np.repeat(np.arange(7), f))

    def spectral_density(self, w):
        """Continuum Debye ``J(w) = 2 lambda w omega_c / (w^2 + omega_c^2)`` of one site (hartree)."""
        p = self.param_values
        lam, wc = p["lambda_cm"] * CM, p["omega_c_cm"] * CM
        w = np.asarray(w, dtype=np.float64)
        return 2.0 * lam * w * wc / (w * w + wc * wc)
