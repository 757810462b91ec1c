"""The homogeneous electron gas (HEG, jellium): density parameters and LDA ingredients.

Atomic units throughout (hbar = m_e = e = 1): lengths in bohr, energies in hartree, wave vectors in
1/bohr, frequencies in hartree (= 1/atomic_unit_of_time). The gas is spin-unpolarized with
density ``n = 3 / (4 pi r_s^3)`` (Nazarov-Todorov-Gross, text after eq. (1)).

The correlation energy per electron ``eps_c(r_s)`` is either the Perdew-Zunger 1981 fit
(J. P. Perdew and A. Zunger, Phys. Rev. B 23, 5048 (1981), Appendix C, unpolarized) or the
Perdew-Wang 1992 fit (J. P. Perdew and Y. Wang, Phys. Rev. B 45, 13244 (1992), eq. (10) with the
unpolarized parameters of Table I). Both are given with their first and second ``r_s`` derivatives
in closed form, from which the adiabatic LDA kernel ``f_0 = d^2 (n eps_xc) / dn^2`` and the
infinite-frequency kernel of Iwamoto and Gross (N. Iwamoto and E. K. U. Gross, Phys. Rev. B 35,
3003 (1987)) follow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

LDA_CHOICES = ("pz81", "pw92")

# Perdew-Zunger 1981, unpolarized (hartree)
_PZ_GAMMA, _PZ_BETA1, _PZ_BETA2 = -0.1423, 1.0529, 0.3334
_PZ_A, _PZ_B, _PZ_C, _PZ_D = 0.0311, -0.048, 0.0020, -0.0116
# Perdew-Wang 1992, unpolarized (hartree); A = (1 - ln 2) / pi^2
_PW_A = (1.0 - math.log(2.0)) / math.pi ** 2
_PW_ALPHA, _PW_B1, _PW_B2, _PW_B3, _PW_B4 = 0.21370, 7.5957, 3.5876, 1.6382, 0.49294


def eps_c(rs: float, lda: str = "pz81") -> tuple[float, float, float]:
    """Correlation energy per electron and its first two r_s derivatives.

    Parameters
    ----------
    rs : float
        Density parameter (bohr), > 0.
    lda : {"pz81", "pw92"}
        Parametrization (Perdew-Zunger 1981 or Perdew-Wang 1992).

    Returns
    -------
    (eps, deps/drs, d2eps/drs2) : tuple of float
        hartree, hartree/bohr, hartree/bohr^2.
    """
    if lda == "pz81":
        if rs >= 1.0:
            s = math.sqrt(rs)
            D = 1.0 + _PZ_BETA1 * s + _PZ_BETA2 * rs
            D1 = 0.5 * _PZ_BETA1 / s + _PZ_BETA2
            D2 = -0.25 * _PZ_BETA1 / s ** 3
            e = _PZ_GAMMA / D
            e1 = -_PZ_GAMMA * D1 / D ** 2
            e2 = -_PZ_GAMMA * (D2 / D ** 2 - 2.0 * D1 ** 2 / D ** 3)
            return e, e1, e2
        L = math.log(rs)
        e = _PZ_A * L + _PZ_B + _PZ_C * rs * L + _PZ_D * rs
        e1 = _PZ_A / rs + _PZ_C * (L + 1.0) + _PZ_D
        e2 = -_PZ_A / rs ** 2 + _PZ_C / rs
        return e, e1, e2
    if lda == "pw92":
        s = math.sqrt(rs)
        A = _PW_A
        Q = 2.0 * A * (_PW_B1 * s + _PW_B2 * rs + _PW_B3 * s ** 3 + _PW_B4 * rs ** 2)
        Q1 = 2.0 * A * (0.5 * _PW_B1 / s + _PW_B2 + 1.5 * _PW_B3 * s + 2.0 * _PW_B4 * rs)
        Q2 = 2.0 * A * (-0.25 * _PW_B1 / s ** 3 + 0.75 * _PW_B3 / s + 2.0 * _PW_B4)
        L = math.log1p(1.0 / Q)
        L1 = -Q1 / (Q * Q + Q)
        L2 = -Q2 / (Q * Q + Q) + Q1 ** 2 * (2.0 * Q + 1.0) / (Q * Q + Q) ** 2
        e = -2.0 * A * (1.0 + _PW_ALPHA * rs) * L
        e1 = -2.0 * A * (_PW_ALPHA * L + (1.0 + _PW_ALPHA * rs) * L1)
        e2 = -2.0 * A * (2.0 * _PW_ALPHA * L1 + (1.0 + _PW_ALPHA * rs) * L2)
        return e, e1, e2
    raise ValueError(f"lda = {lda!r} is not known; allowed: " + ", ".join(LDA_CHOICES))


@dataclass(frozen=True)
class ElectronGas:
    """Spin-unpolarized jellium of density parameter ``rs``.

    Attributes (derived, atomic units): ``n`` (1/bohr^3), ``kF`` (1/bohr), ``EF`` (hartree),
    ``vF`` (bohr/atomic_unit_of_time), ``omega_p = sqrt(4 pi n)`` (hartree), ``kTF`` (Thomas-Fermi
    wave vector sqrt(4 kF / pi), 1/bohr).
    """
    rs: float
    lda: str = "pz81"

    def __post_init__(self):
        if not (isinstance(self.rs, (int, float)) and math.isfinite(self.rs) and self.rs > 0):
            raise ValueError(f"rs = {self.rs!r}: the density parameter must be a number > 0 (bohr)")
        if self.lda not in LDA_CHOICES:
            raise ValueError(f"lda = {self.lda!r} is not known; allowed: " + ", ".join(LDA_CHOICES))

    @property
    def n(self) -> float:
        return 3.0 / (4.0 * math.pi * self.rs ** 3)

    @property
    def kF(self) -> float:
        return (9.0 * math.pi / 4.0) ** (1.0 / 3.0) / self.rs

    @property
    def vF(self) -> float:
        return self.kF

    @property
    def EF(self) -> float:
        return 0.5 * self.kF ** 2

    @property
    def omega_p(self) -> float:
        return math.sqrt(4.0 * math.pi * self.n)

    @property
    def kTF(self) -> float:
        return math.sqrt(4.0 * self.kF / math.pi)

    def correlation(self) -> tuple[float, float, float]:
        """``eps_c, deps_c/drs, d2eps_c/drs2`` of the chosen LDA (hartree, per bohr powers)."""
        return eps_c(self.rs, self.lda)

    def f0(self) -> float:
        """Adiabatic LDA kernel ``f_xc(q -> 0, omega = 0) = d^2 (n eps_xc)/dn^2`` (hartree bohr^3).

        Exchange: ``-pi / kF^2``; correlation: ``(rs / 9n) (rs eps_c'' - 2 eps_c')`` (from
        d/dn = -(rs / 3n) d/drs).
        """
        e, e1, e2 = self.correlation()
        return -math.pi / self.kF ** 2 + self.rs / (9.0 * self.n) * (self.rs * e2 - 2.0 * e1)

    def f_inf(self) -> float:
        """Infinite-frequency long-wavelength kernel (Iwamoto-Gross 1987), hartree bohr^3.

        ``f_inf = -(4/5) n^{2/3} d/dn (eps_xc / n^{2/3}) + 6 n^{1/3} d/dn (eps_xc / n^{1/3})``, i.e.
        exchange ``-(1/5) (3 / (pi n^2))^{1/3}`` and correlation ``-(22 eps_c + 26 rs eps_c')/(15 n)``.
        """
        e, e1, _ = self.correlation()
        fx = -0.2 * (3.0 / (math.pi * self.n ** 2)) ** (1.0 / 3.0)
        return fx - (22.0 * e + 26.0 * self.rs * e1) / (15.0 * self.n)
