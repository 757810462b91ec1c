"""Static screened interaction of two point charges in the HEG (NTG eqs. (9)-(11), App. C).

In the weak electron-impurity interaction approximation (eq. (9)) the force along the bond and the
potential energy of charges Z1, Z2 at distance d are (eqs. (10), (11))

    F(d) = (Z1 Z2 / d^2) [1 + 8 int_0^inf dq chi^h(q, 0) (sin qd - qd cos qd) / q^3],
    U(d) = (Z1 Z2 / d)   [1 + 8 int_0^inf dq chi^h(q, 0) sin(qd) / q^3],

F > 0 repulsive, F = -dU/dd (eq. (C6)). The equilibrium distance (F = 0, F' < 0) depends on the
density only (text after eq. (11)). The bond stiffnesses of the linearised relative motion are

    parallel:      k_par(d)  = U''(d) = -8 Z1 Z2 int dq chi^h(q, 0) sin(qd)/(qd) + 2 F(d)/d,
    perpendicular: k_perp(d) = F(d) / d,

the last two terms of eqs. (D8) and (D10); at d = d_eq they reduce to (D8') and (E10), and
k_perp = 0 (eq. (E12): no restoring force against rotation). omega_0^2 = k_par (1/M1 + 1/M2).

The q integrals: [0, 2 kF] by adaptive Gauss-Kronrod (scipy.integrate.quad) on the smooth
spherical-Bessel form, [2 kF, inf) by QAWF Fourier quadrature (quad with weight 'sin'/'cos').
Units: d in bohr, F in hartree/bohr, U in hartree, k in hartree/bohr^2.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize
from scipy.special import spherical_jn

from .response import Response

_QUAD = dict(epsabs=1e-13, epsrel=1e-11, limit=400)


def _chi(resp: Response):
    return lambda q: float(resp.chi_static(q))


def _int_low_high(resp: Response, d: float, low, sin_part, cos_part):
    """int_0^2kF low(q) dq + int_2kF^inf [sin_part(q) sin(qd) + cos_part(q) cos(qd)] dq."""
    qc = 2.0 * resp.kF
    a = integrate.quad(low, 0.0, qc, **_QUAD)[0]
    b = 0.0
    if sin_part is not None:
        b += integrate.quad(sin_part, qc, np.inf, weight="sin", wvar=d, limlst=200,
                            epsabs=1e-14)[0]
    if cos_part is not None:
        b += integrate.quad(cos_part, qc, np.inf, weight="cos", wvar=d, limlst=200,
                            epsabs=1e-14)[0]
    return a + b


def _check_d(d):
    if not (math.isfinite(d) and d > 0):
        raise ValueError(f"d = {d!r}: the inter-nuclear distance must be > 0 (bohr)")


def force_bracket(resp: Response, d: float) -> float:
    """1 + 8 int chi(q,0) (sin qd - qd cos qd)/q^3 dq: F(d) d^2 / (Z1 Z2), dimensionless (eq. (10))."""
    _check_d(d)
    chi = _chi(resp)

    def low(q):
        x = q * d
        return chi(q) * d ** 3 * spherical_jn(1, x) / x
    val = _int_low_high(resp, d, low, lambda q: chi(q) / q ** 3, lambda q: -d * chi(q) / q ** 2)
    return 1.0 + 8.0 * val


def force(resp: Response, d: float, Z1: float = 1.0, Z2: float = 1.0) -> float:
    """Force F(d) along the bond, eq. (10), hartree/bohr (> 0: repulsive)."""
    return Z1 * Z2 / d ** 2 * force_bracket(resp, d)


def energy(resp: Response, d: float, Z1: float = 1.0, Z2: float = 1.0) -> float:
    """Screened interaction energy U(d), eq. (11), hartree (U -> 0 as d -> inf)."""
    _check_d(d)
    chi = _chi(resp)

    def low(q):
        return chi(q) * d * spherical_jn(0, q * d) / q ** 2
    val = _int_low_high(resp, d, low, lambda q: chi(q) / q ** 3, None)
    return Z1 * Z2 / d * (1.0 + 8.0 * val)


def sinc_integral(resp: Response, d: float) -> float:
    """int_0^inf chi^h(q, 0) sin(qd)/(qd) dq (1/(hartree bohr^4)), the integral of (E10)."""
    _check_d(d)
    chi = _chi(resp)
    return _int_low_high(resp, d, lambda q: chi(q) * spherical_jn(0, q * d),
                         lambda q: chi(q) / (q * d), None)


def stiffness(resp: Response, d: float, Z1: float = 1.0, Z2: float = 1.0) -> tuple[float, float]:
    """Bond stiffnesses (k_par, k_perp) at distance d, hartree/bohr^2 (module docstring)."""
    F = force(resp, d, Z1, Z2)
    k_par = -8.0 * Z1 * Z2 * sinc_integral(resp, d) + 2.0 * F / d
    return k_par, F / d


def equilibrium_distance(resp: Response, d_min: float = 0.5, d_max: float | None = None,
                         step: float | None = None, xtol: float = 1e-10,
                         charge_product: float = 1.0) -> float:
    """Smallest stable zero of F(d) (F changes from + to -), bohr.

    F = Z1 Z2 x (bracket) / d^2: the zeros do not depend on the charges, their stability does
    through the sign of ``charge_product`` = Z1 Z2.

    F is scanned outward from ``d_min`` in steps of ``step`` (default pi/(8 kF): eight points per
    Friedel period pi/kF of F) up to ``d_max`` (default 12 pi/kF); the first + -> - sign change is refined with
    scipy.optimize.brentq. Charges drop out (F is proportional to Z1 Z2).

    Raises
    ------
    RuntimeError
        If F has no stable zero in the range.
    """
    if charge_product == 0:
        raise ValueError("Z1 Z2 = 0: an uncharged nucleus has no bond in eqs. (10)-(11)")
    sgn = 1.0 if charge_product > 0 else -1.0
    kF = resp.kF
    step = step or math.pi / (8.0 * kF)
    d_max = d_max or 12.0 * math.pi / kF
    fb = lambda d: sgn * force_bracket(resp, d)          # noqa: E731
    d0, f0 = d_min, fb(d_min)
    while d0 < d_max:
        d1 = d0 + step
        f1 = fb(d1)
        if f0 > 0 >= f1:
            return optimize.brentq(fb, d0, d1, xtol=xtol, rtol=1e-13)
        d0, f0 = d1, f1
    raise RuntimeError(f"no stable equilibrium distance between {d_min} and {d_max:.3f} bohr at "
                       f"rs = {resp.gas.rs} with kernel {resp.kernel.name}")


def table(resp: Response, ds, Z1: float = 1.0, Z2: float = 1.0) -> dict:
    """F(d) and U(d) on the distances ``ds`` (bohr): {"d": [...], "F": [...], "U": [...]}."""
    ds = [float(d) for d in ds]
    return {"d": ds, "F": [force(resp, d, Z1, Z2) for d in ds],
            "U": [energy(resp, d, Z1, Z2) for d in ds]}
