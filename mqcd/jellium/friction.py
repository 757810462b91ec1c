"""Electron wind, friction and cross terms of NTG eqs. (14)-(15) (App. D, App. E).

After the angular integrations (D1)-(D3) every wind/friction term of (D7)-(D10) is a q integral of
[chi^h(q, omega) - chi^h(q, 0)] / omega times one of three geometric factors,

    self:          1/3,
    parallel:      [2 qd cos qd + (q^2 d^2 - 2) sin qd] / (qd)^3 = (j0(qd) - 2 j2(qd)) / 3,
    perpendicular: (sin qd - qd cos qd) / (qd)^3             = (j0(qd) + j2(qd)) / 3,

(j_l spherical Bessel functions). With the low-frequency substitution (E1),
[chi(q, omega) - chi(q, 0)] / omega -> i Im d chi/d omega |_0, the motion is Markovian and, for each
direction (parallel or perpendicular to the bond), the two nuclei feel

    M_a dV_a/dt = sum_b gamma_ab (j / n - V_b) + (direct field) + (bond force),

with the symmetric, positive friction matrix

    gamma_ab = Z_a Z_b I_ab,   I_aa = I_0 = -8 int dq Im chi'(q) / 3,
    I_12 = I_par(d) or I_perp(d) = -8 int dq Im chi'(q) (j0 -+ ... ) / 3

(``friction_integrals``). The wind force is gamma . j/n (the electron drift j/n enters only through
V - j/n: Galilean invariance), the friction force -gamma . V. Summing and differencing the two
equations gives exactly the centre-of-mass / relative form of (D7)-(D10) in the Markov limit
(E2)-(E5); ``cm_relative_coefficients`` evaluates those brackets literally as printed, and the tests
check both routes agree. Damping and vibration: kappa (E11, E13) and omega_0^2 (E10, E12).

Single charge (Z2 = 0): gamma = Z^2 I_0, the low-velocity stopping coefficient (dE/dx = gamma v).
In RPA this equals the Lindhard-Winther result ``stopping_coefficient_lindhard_winther``.
Units: I and gamma in hartree atomic_unit_of_time / bohr^2 (force per velocity, a.u.);
kappa in 1/atomic_unit_of_time.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate
from scipy.special import spherical_jn

from .response import Response

_QUAD = dict(epsabs=1e-14, epsrel=1e-11, limit=400)


def geometric_factor(kind: str, x):
    """Angular factor of App. D for x = q d: 'self' 1/3, 'par' (j0 - 2 j2)/3, 'perp' (j0 + j2)/3."""
    x = np.asarray(x, dtype=float)
    if kind == "self":
        return np.full_like(x, 1.0 / 3.0)
    j0, j2 = spherical_jn(0, x), spherical_jn(2, x)
    if kind == "par":
        return (j0 - 2.0 * j2) / 3.0
    if kind == "perp":
        return (j0 + j2) / 3.0
    raise ValueError(f"geometric factor {kind!r}; allowed: 'self', 'par', 'perp'")


def _q_upper(resp: Response) -> float:
    """Upper q limit: 2 kF for static kernels (Im chi' = 0 beyond); for the dynamic kernel where
    its exp(-k q^2) damping is below 1e-30 (the integrand also falls as q^-4)."""
    qc = 2.0 * resp.kF
    if not resp.kernel.dynamic:
        return qc
    return max(qc * 1.5, math.sqrt(70.0 / resp.kernel.k))


PARTS = ("total", "lindhard", "viscous")


def q_integral(resp: Response, weight, part: str = "total") -> float:
    """int_0^inf dq Im d chi^h/d omega|_0 (q) * weight(q), split at 2 kF (quad).

    ``part``: "total", or only the "lindhard" or the "viscous" term of
    ``Response.dchi_domega0_parts`` (their integrals add up to the total).
    """
    if part not in PARTS:
        raise ValueError(f"part = {part!r}; allowed: " + ", ".join(PARTS))
    qc = 2.0 * resp.kF
    if part == "total":
        def f(q):
            return float(resp.dchi_domega0(q) * weight(q))
    else:
        i = 0 if part == "lindhard" else 1

        def f(q):
            return float(resp.dchi_domega0_parts(q)[i] * weight(q))
    val = integrate.quad(f, 0.0, qc, **_QUAD)[0]
    qmax = _q_upper(resp)
    if qmax > qc and part != "lindhard":
        val += integrate.quad(f, qc, qmax, **_QUAD)[0]
    return val


def friction_integrals(resp: Response, d: float, part: str = "total") -> dict:
    """I_0, I_par(d), I_perp(d) (module docstring), a.u. of force per velocity per charge^2.

    ``part`` as in :func:`q_integral` ("viscous": the share carried by d f_xc / d omega).
    """
    out = {}
    for kind, key in (("self", "I0"), ("par", "I_par"), ("perp", "I_perp")):
        out[key] = -8.0 * q_integral(resp, lambda q, kind=kind: geometric_factor(kind, q * d), part)
    return out


def friction_matrices(resp: Response, d: float, Z1: float, Z2: float, ints: dict | None = None):
    """2x2 friction matrices gamma_par, gamma_perp (numpy arrays), hartree a.u.-time / bohr^2."""
    I = ints or friction_integrals(resp, d)
    g = {}
    for key, cross in (("par", I["I_par"]), ("perp", I["I_perp"])):
        g[key] = np.array([[Z1 * Z1 * I["I0"], Z1 * Z2 * cross],
                           [Z1 * Z2 * cross, Z2 * Z2 * I["I0"]]])
    return g["par"], g["perp"]


def cm_relative_coefficients(resp: Response, d: float, Z1: float, Z2: float, M1: float, M2: float,
                             geometry: str) -> dict:
    """The Markov-limit coefficients of (D7)-(D10) / (E2)-(E13), brackets evaluated as printed.

    With Im chi' = Im d chi^h / d omega|_0 and X(q) = the parallel or perpendicular factor
    [2qd cos qd + (q^2 d^2 - 2) sin qd]/(qd)^3 or (sin qd - qd cos qd)/(qd)^3, the equations
    (particle current j, see docs/jellium.md for the direct-field sign) read

        M_c dV_c/dt = wind_cm (j/n - V_c) - cross_cm V_r + direct,
        dV_r/dt     = wind_rel (j/n - V_c) - 2 kappa V_r - omega0^2 R_r + direct,

    wind_cm  = -8 int Im chi' [(Z1^2 + Z2^2)/3 + 2 Z1 Z2 X],                         (D7), (D9)
    cross_cm = -(8/M_c) int Im chi' [(M1 Z2^2 - M2 Z1^2)/3 + (M1 - M2) Z1 Z2 X],       (D7), (D9)
    wind_rel = -8 int Im chi' [(Z2^2/M2 - Z1^2/M1)/3 + (1/M2 - 1/M1) Z1 Z2 X],         (D8'), (D10')
    kappa    = -(4/M_c) int Im chi' [(M1 Z2^2/M2 + M2 Z1^2/M1)/3 - 2 Z1 Z2 X],         (E11), (E13)

    (wind_cm multiplies j/n - V_c: the same coefficient is the wind force per drift velocity and the
    friction force per c.m. velocity.) Units: wind_cm hartree a.u.-time/bohr^2, cross_cm and
    wind_rel 1/a.u.-time, kappa 1/a.u.-time.
    """
    if geometry == "par":
        def X(q):
            x = q * d
            return (2.0 * x * np.cos(x) + (x * x - 2.0) * np.sin(x)) / x ** 3 if x > 1e-3 else \
                1.0 / 3.0 - x * x / 10.0
    elif geometry == "perp":
        def X(q):
            x = q * d
            return (np.sin(x) - x * np.cos(x)) / x ** 3 if x > 1e-3 else 1.0 / 3.0 - x * x / 30.0
    else:
        raise ValueError(f"geometry = {geometry!r}; allowed: 'par', 'perp'")
    Mc = M1 + M2
    wind_cm = -8.0 * q_integral(resp, lambda q: (Z1 ** 2 + Z2 ** 2) / 3.0 + 2.0 * Z1 * Z2 * X(q))
    cross_cm = -8.0 / Mc * q_integral(
        resp, lambda q: (M1 * Z2 ** 2 - M2 * Z1 ** 2) / 3.0 + (M1 - M2) * Z1 * Z2 * X(q))
    wind_rel = -8.0 * q_integral(
        resp, lambda q: (Z2 ** 2 / M2 - Z1 ** 2 / M1) / 3.0 + (1.0 / M2 - 1.0 / M1) * Z1 * Z2 * X(q))
    kappa = -4.0 / Mc * q_integral(
        resp, lambda q: (M1 * Z2 ** 2 / M2 + M2 * Z1 ** 2 / M1) / 3.0 - 2.0 * Z1 * Z2 * X(q))
    return {"wind_cm": wind_cm, "cross_cm": cross_cm, "wind_rel": wind_rel, "kappa": kappa}


def stopping_coefficient_lindhard_winther(rs: float, Z: float = 1.0) -> float:
    """RPA low-velocity stopping coefficient Q of a point charge Z, dE/dx = Q v (a.u.).

    Q = (4 Z^2 / 3 pi) int_0^1 x^3 dx / (x^2 + chi2 F(x))^2,  x = q / 2kF, chi2 = 1 / (pi kF),
    F(x) = 1/2 + (1 - x^2)/(4x) ln|(1+x)/(1-x)| the static Lindhard function
    (J. Lindhard and A. Winther, Mat. Fys. Medd. Dan. Vid. Selsk. 34, no. 4 (1964); the
    low-velocity limit of the dielectric stopping formula S = (2 Z^2/pi v^2) int dk/k int_0^{kv}
    d omega omega Im[-1/eps(k, omega)] with Im eps = 2 omega / k^3, eps = eps_RPA(k, 0)).
    Evaluated here independently of the chi^h machinery (its own static Lindhard function).
    """
    from .heg import ElectronGas
    kF = ElectronGas(rs).kF
    chi2 = 1.0 / (math.pi * kF)

    def f(x):
        F = 0.5 + (1.0 - x * x) / (4.0 * x) * math.log(abs((1.0 + x) / (1.0 - x)))
        return x ** 3 / (x * x + chi2 * F) ** 2
    return 4.0 * Z * Z / (3.0 * math.pi) * integrate.quad(f, 0.0, 1.0, epsabs=1e-14, epsrel=1e-12)[0]


def stopping_coefficient_ritchie(rs: float, Z: float = 1.0) -> float:
    """Ritchie's Thomas-Fermi-screened approximation (R. H. Ritchie, Phys. Rev. 114, 644 (1959)):
    Q = (2 Z^2 / 3 pi) [ln(1 + pi kF) - pi kF / (1 + pi kF)], a.u. (for comparison only)."""
    from .heg import ElectronGas
    a = math.pi * ElectronGas(rs).kF
    return 2.0 * Z * Z / (3.0 * math.pi) * (math.log1p(a) - a / (1.0 + a))


def friction_at_frequency(resp: Response, d: float, omega: float, kind: str = "self") -> complex:
    """-8 int dq [chi^h(q, omega) - chi^h(q, 0)] / (i omega) * factor(q d), complex (a.u.).

    The finite-frequency version of the friction integrals before the substitution (E1); its
    omega -> 0 limit is the real I_0 / I_par / I_perp. The real part is the dissipative friction
    at frequency omega, the imaginary part a reactive (mass-like) correction. Used to show that (E1)
    is accurate at the nuclear frequencies of the problem.
    """
    kF = resp.kF
    c0 = lambda q: resp.chi_static(q)

    def f(q, part):
        val = (complex(resp.chi(q, omega)) - float(c0(q))) / (1j * omega) \
            * float(geometric_factor(kind, q * d))
        return val.real if part == 0 else val.imag
    # kinks of the Lindhard function near q = omega/vF, 2kF -+ omega/vF
    pts = sorted({p for p in (omega / kF, 2.0 * kF - omega / kF, 2.0 * kF,
                              2.0 * kF + omega / kF) if 0 < p})
    qmax = max(_q_upper(resp), 8.0 * kF)
    re = integrate.quad(f, 0.0, qmax, args=(0,), points=pts, limit=800, epsabs=1e-13)[0]
    im = integrate.quad(f, 0.0, qmax, args=(1,), points=pts, limit=800, epsabs=1e-11)[0]
    return -8.0 * complex(re, im)

