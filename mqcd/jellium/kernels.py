"""Exchange-correlation kernels f_xc^h(q, omega) of the HEG, the local-field correction of NTG eq. (17).

Kernels (``make_kernel(name, gas)``):

``rpa``
    f_xc = 0 (random phase approximation, the dashed curves of NTG Figs. 2-5).
``alda``
    f_xc = f_0 = d^2(n eps_xc)/dn^2, static and q-independent (adiabatic LDA).
``mcp07-static``
    The static MCP07 kernel of A. Ruzsinszky, N. K. Nepal, J. M. Pitarke and J. P. Perdew,
    Phys. Rev. B 101, 245135 (2020) (NTG Ref. [16]; arXiv:2004.09324, Sec. II), used by NTG for
    Fig. 1:

        f(q) = (4 pi B / q^2) [exp(-k q^2) (1 + E q^4) - 1] - (4 pi C / kF^2) / (1 + 1/(k q^2)^2),

    with B(r_s) = (1 + 2.15 sqrt(r_s) + 0.435 r_s^{3/2}) / (3 + 1.57 sqrt(r_s) + 0.409 r_s^{3/2})
    (Corradini-Del Sole-Onida-Palummo, Phys. Rev. B 57, 14569 (1998), eq. (7)),
    k = -f_0 / (4 pi B) (so that f(0) = f_0, the compressibility sum rule),
    C(r_s) = -(pi / 2kF) d(r_s eps_c)/dr_s (Constantin-Pitarke, Phys. Rev. B 75, 245127 (2007)),
    E = 2 c_xc / (4 pi B n^{4/3}) - k^2 / 2, which makes the small-q expansion
    f_0 + 2 c_xc q^2 / n^{4/3} reproduce the second-order gradient expansion of E_xc with
    c_xc(r_s) = -0.00238 + 0.00423 (1 + 3.138 r_s + 0.3 r_s^2)/(1 + 3 r_s + 0.5334 r_s^2)
    (exchange: Antoniewicz-Kleinman -0.00238; correlation: Ma-Brueckner 0.00423 at high density,
    the r_s interpolation of MCP07).
``mcp07``
    The dynamic MCP07 kernel (same reference, Sec. III): the Gross-Kohn-Iwamoto frequency
    dependence at q = 0, damped at large q like the q dependence,

        f(q, omega) = [1 + exp(-k q^2) (f_GKI(omega)/f_0 - 1)] f_MCP07(q, 0),

    with, for real omega and x = b^{1/2} omega, b = (gamma/c)^{4/3} (f_inf - f_0)^{4/3},
    c = 23 pi / 15, gamma = Gamma(1/4)^2 / (32 pi)^{1/2} (E. K. U. Gross and W. Kohn,
    Phys. Rev. Lett. 55, 2850 (1985), with the Iwamoto-Gross f_inf):

        Im f_GKI = -c b^{3/4} x / (1 + x^2)^{5/4},
        Re f_GKI = f_inf - c b^{3/4} h(x),
        h(x) = (1/gamma) (1 - 0.63 x^2) / (1 + (0.63/gamma)^{4/7} x^2)^{7/4}

    (the closed-form real part of MCP07, exact at x = 0 and with the Kramers-Kronig omega^{-3/2}
    tail). Its low-frequency slope is the longitudinal xc viscosity:
    Im f_GKI ~ -omega (4/3) eta / n^2, eta = (3/4) n^2 c b^{5/4} (``viscosity()``).

All kernels: q in 1/bohr, omega in hartree, f in hartree bohr^3. ``__call__(q, omega)`` is complex,
``static(q)`` real, ``dimag_domega0(q)`` = d Im f / d omega at omega = 0 (the real part of every kernel
here is even in omega), in bohr^3.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import gamma as gamma_fn

from .heg import ElectronGas

KERNELS = ("rpa", "alda", "mcp07-static", "mcp07")
KERNEL_DOC = {
    "rpa": "f_xc = 0 (random phase approximation)",
    "alda": "adiabatic LDA f_xc = d^2(n eps_xc)/dn^2, static, q-independent",
    "mcp07-static": "MCP07 at omega = 0 (Ruzsinszky et al., PRB 101, 245135 (2020)); no viscosity",
    "mcp07": "dynamic MCP07 (GKI frequency dependence damped by exp(-k q^2)); carries the viscosity",
}

_GKI_GAMMA = gamma_fn(0.25) ** 2 / math.sqrt(32.0 * math.pi)
_GKI_C = 23.0 * math.pi / 15.0
_GKI_AJ = 0.63


class Kernel:
    """Base class: f_xc(q, omega) of one HEG."""
    name = ""
    dynamic = False

    def __init__(self, gas: ElectronGas):
        self.gas = gas

    def static(self, q):
        """f_xc(q, omega = 0), hartree bohr^3 (real array)."""
        raise NotImplementedError

    def __call__(self, q, omega):
        """f_xc(q, omega) for real omega (hartree), complex, hartree bohr^3."""
        q, omega = np.broadcast_arrays(np.asarray(q, float), np.asarray(omega, float))
        return self.static(q) + 0j * omega

    def dimag_domega0(self, q):
        """d Im f_xc / d omega at omega = 0, bohr^3 (zero for static kernels)."""
        return np.zeros_like(np.asarray(q, float))

    def describe(self) -> str:
        return f"{self.name}: {KERNEL_DOC[self.name]}"


class RPA(Kernel):
    name = "rpa"

    def static(self, q):
        return np.zeros_like(np.asarray(q, float))


class ALDA(Kernel):
    name = "alda"

    def static(self, q):
        return np.full_like(np.asarray(q, float), self.gas.f0())


class MCP07Static(Kernel):
    """Static MCP07 kernel (see module docstring for the formula and sources)."""
    name = "mcp07-static"

    def __init__(self, gas: ElectronGas):
        super().__init__(gas)
        rs, n, kF = gas.rs, gas.n, gas.kF
        s = math.sqrt(rs)
        self.B = (1.0 + 2.15 * s + 0.435 * s ** 3) / (3.0 + 1.57 * s + 0.409 * s ** 3)
        self.f0 = gas.f0()
        self.k = -self.f0 / (4.0 * math.pi * self.B)
        e, e1, _ = gas.correlation()
        self.C = -math.pi / (2.0 * kF) * (e + rs * e1)
        self.cxc = -0.00238 + 0.00423 * (1.0 + 3.138 * rs + 0.3 * rs ** 2) / (
            1.0 + 3.0 * rs + 0.5334 * rs ** 2)
        self.E = 2.0 * self.cxc / (4.0 * math.pi * self.B * n ** (4.0 / 3.0)) - 0.5 * self.k ** 2

    def static(self, q):
        q = np.asarray(q, dtype=float)
        q2 = q * q
        kq2 = self.k * q2
        small = kq2 < 1e-4
        qs2 = np.where(small, 1.0, q2)
        # exp(-k q^2)(1 + E q^4) - 1, divided by q^2; series below k q^2 = 1e-4 (no cancellation)
        big = (np.exp(-self.k * qs2) * (1.0 + self.E * qs2 ** 2) - 1.0) / qs2
        ser = -self.k + (0.5 * self.k ** 2 + self.E) * q2 - (self.k ** 3 / 6.0 + self.k * self.E) * q2 ** 2
        first = 4.0 * math.pi * self.B * np.where(small, ser, big)
        cut = kq2 ** 2 / (1.0 + kq2 ** 2)          # 1 / (1 + 1/(k q^2)^2)
        return first - 4.0 * math.pi * self.C / self.gas.kF ** 2 * cut


class MCP07(MCP07Static):
    """Dynamic MCP07 kernel: GKI frequency dependence damped at large q (module docstring)."""
    name = "mcp07"
    dynamic = True

    def __init__(self, gas: ElectronGas):
        super().__init__(gas)
        self.f_inf = gas.f_inf()
        df = self.f_inf - self.f0
        if df <= 0:
            raise ValueError(f"f_inf - f_0 = {df} <= 0 at rs = {gas.rs}: GKI kernel undefined")
        self.b = (_GKI_GAMMA / _GKI_C) ** (4.0 / 3.0) * df ** (4.0 / 3.0)

    def gki(self, omega):
        """Gross-Kohn-Iwamoto long-wavelength kernel f_xc(q = 0, omega), real omega, hartree bohr^3."""
        omega = np.asarray(omega, dtype=float)
        x = math.sqrt(self.b) * omega
        cb = _GKI_C * self.b ** 0.75
        g = x / (1.0 + x * x) ** 1.25
        h = (1.0 - _GKI_AJ * x * x) / (1.0 + (_GKI_AJ / _GKI_GAMMA) ** (4.0 / 7.0) * x * x) ** 1.75
        h /= _GKI_GAMMA
        return (self.f_inf - cb * h) - 1j * cb * g

    def __call__(self, q, omega):
        q, omega = np.broadcast_arrays(np.asarray(q, float), np.asarray(omega, float))
        fs = self.static(q)
        return (1.0 + np.exp(-self.k * q * q) * (self.gki(omega) / self.f0 - 1.0)) * fs

    def gki_slope(self) -> float:
        """d Im f_GKI / d omega at omega = 0 = -c b^{5/4} (bohr^3)."""
        return -_GKI_C * self.b ** 1.25

    def dimag_domega0(self, q):
        q = np.asarray(q, dtype=float)
        return np.exp(-self.k * q * q) * (self.gki_slope() / self.f0) * self.static(q)

    def viscosity(self) -> float:
        """Longitudinal low-frequency xc viscosity eta = -(3/4) n^2 d Im f_GKI/d omega, hbar/bohr^3.

        From Im f_L(omega) = -omega (4 eta / 3 + zeta) / n^2 with zero bulk viscosity zeta
        (Gross-Kohn 1985; Giuliani-Vignale, Ch. 8). ``eta / n`` is dimensionless (units of hbar).
        """
        return -0.75 * self.gas.n ** 2 * self.gki_slope()


_CLASSES = {"rpa": RPA, "alda": ALDA, "mcp07-static": MCP07Static, "mcp07": MCP07}


def make_kernel(name: str, gas: ElectronGas) -> Kernel:
    """Kernel ``name`` (one of ``KERNELS``) for the electron gas ``gas``."""
    if name not in _CLASSES:
        raise ValueError(f"kernel = {name!r} is not known; allowed: " + ", ".join(KERNELS))
    return _CLASSES[name](gas)
