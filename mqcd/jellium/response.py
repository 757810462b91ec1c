"""Interacting HEG density response chi^h(q, omega) from NTG eq. (17).

    1 / chi^h = 1 / chi_s^h - 4 pi / q^2 - f_xc^h(q, omega)
    =>  chi^h = chi_0 / (1 - (v_q + f_xc) chi_0),   v_q = 4 pi / q^2,

with chi_s^h = chi_0 the Lindhard function (mqcd.jellium.lindhard) and f_xc one of the kernels of
mqcd.jellium.kernels. The omega-derivative at omega = 0 that enters the friction and wind terms
after the substitution (E1) is, with K = v_q + f_xc(q, 0) and chi_0 = chi_0(q, 0) real,

    d chi^h / d omega |_0 = [d chi_0/d omega + chi_0^2 d f_xc/d omega] / (1 - K chi_0)^2,

purely imaginary (both numerator terms are; the real parts are even in omega):
Im d chi_0/d omega = -theta(2kF - q) / (2 pi q) (Lindhard) and Im d f_xc/d omega from the kernel
(zero for static kernels; the viscosity term of the dynamic kernel, non-zero at every q).
It is negative for all q (NTG eq. (E14)). Units: 1/(hartree^2 bohr^3).
"""
from __future__ import annotations

import numpy as np

from .heg import ElectronGas
from .kernels import Kernel, make_kernel
from .lindhard import chi0, chi0_static, dchi0_domega0


class Response:
    """chi^h(q, omega) of one electron gas with one xc kernel.

    Parameters
    ----------
    rs : float
        Density parameter (bohr).
    kernel : str or Kernel
        Kernel name (``rpa``, ``alda``, ``mcp07-static``, ``mcp07``) or instance.
    lda : {"pz81", "pw92"}
        Correlation energy parametrization used by the kernel.
    """

    def __init__(self, rs: float, kernel: str | Kernel = "mcp07", lda: str = "pz81"):
        self.gas = ElectronGas(rs, lda)
        self.kernel = kernel if isinstance(kernel, Kernel) else make_kernel(kernel, self.gas)

    @property
    def kF(self):
        return self.gas.kF

    def chi0(self, q, omega=0.0):
        """Lindhard chi_0(q, omega), complex."""
        return chi0(q, omega, self.gas.kF)

    def chi(self, q, omega):
        """chi^h(q, omega) for real omega (hartree), complex, 1/(hartree bohr^3)."""
        q = np.asarray(q, dtype=float)
        c0 = chi0(q, omega, self.gas.kF)
        K = 4.0 * np.pi / q ** 2 + self.kernel(q, omega)
        return c0 / (1.0 - K * c0)

    def chi_static(self, q):
        """chi^h(q, 0), real. Written as chi_0 q^2 / (q^2 - (4 pi + f q^2) chi_0): finite at q -> 0,
        where it tends to -q^2 / (4 pi) (perfect screening)."""
        q = np.asarray(q, dtype=float)
        c0 = chi0_static(q, self.gas.kF)
        q2 = q * q
        return c0 * q2 / (q2 - (4.0 * np.pi + self.kernel.static(q) * q2) * c0)

    def dchi_domega0_parts(self, q):
        """(Lindhard part, viscous part) of Im d chi^h/d omega at omega = 0, each real and <= 0.

        Lindhard part: Im d chi_0/d omega / (1 - K chi_0)^2, identical for a dynamic kernel and its
        static limit; viscous part: chi_0^2 Im d f_xc/d omega / (1 - K chi_0)^2 (zero for static
        kernels). Their sum is ``dchi_domega0``.
        """
        q = np.asarray(q, dtype=float)
        c0 = chi0_static(q, self.gas.kF)
        q2 = q * q
        denom = q2 - (4.0 * np.pi + self.kernel.static(q) * q2) * c0        # q^2 (1 - K chi_0)
        scale = q2 ** 2 / denom ** 2
        return (dchi0_domega0(q, self.gas.kF) * scale,
                c0 ** 2 * self.kernel.dimag_domega0(q) * scale)

    def dchi_domega0(self, q):
        """Im d chi^h/d omega at omega = 0 (the App. E factor), real, < 0 (eq. (E14))."""
        a, b = self.dchi_domega0_parts(q)
        return a + b
