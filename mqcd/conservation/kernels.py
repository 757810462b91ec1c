r"""Gaussian smoothing of particle and bond quantities on a periodic grid (numba).

The mollifier of PSS Sec. 3 is here the Gaussian of width ``w`` (bohr) in ``dim`` dimensions,

.. math:: \eta(z) = (2\pi w^2)^{-\mathrm{dim}/2}\, e^{-|z|^2/2w^2},

periodised over the box (every image within ``RADIUS * w`` is added; the tail beyond is below
``exp(-RADIUS^2/2) = 1.3e-14`` of the peak). The grid has ``ng`` points per direction,
``y_g = g L / ng``.

Bond ("Hardy") terms need the line integral of eq. (3.6) along a segment from ``x0`` to
``x0 + d``; for the Gaussian it is closed form:

.. math::

    \int_0^1 \eta(y - x_0 - s d)\, ds = (2\pi w^2)^{-\mathrm{dim}/2}
    e^{-\rho_\perp^2 / 2w^2}\ \frac{\sqrt{2\pi}\, w}{|d|}
    \Big[\Phi\big((1 - t)|d|/w\big) - \Phi\big(-t|d|/w\big)\Big],

with ``z = y - x0``, ``t = z.d / |d|^2``, ``rho_perp^2 = |z|^2 - t^2 |d|^2`` and ``Phi`` the
standard normal distribution function (differences of ``Phi`` are taken with ``erfc`` in the
tails so that no digits cancel).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

#: kernel truncation radius in units of the width
RADIUS = 8.0
_SQ2 = math.sqrt(2.0)


@njit(cache=True)
def phi_diff(a, b):
    """Phi(a) - Phi(b) for the standard normal distribution function, without cancellation."""
    if a > 0.0 and b > 0.0:
        return 0.5 * (math.erfc(b / _SQ2) - math.erfc(a / _SQ2))
    if a < 0.0 and b < 0.0:
        return 0.5 * (math.erfc(-a / _SQ2) - math.erfc(-b / _SQ2))
    if a > 8.5 and b < -8.5:          # erf(+-8.5/sqrt 2) is +-1 to the last bit: skip both calls
        return 1.0
    return 0.5 * (math.erf(a / _SQ2) - math.erf(b / _SQ2))


@njit(cache=True)
def _lo_hi(c, R, h):
    return int(math.ceil((c - R) / h)), int(math.floor((c + R) / h))


@njit(cache=True)
def add_points(X, C, box, ng, w, out):
    """``out[k, g] += sum_n C[n, k] eta(y_g - x_n)``; ``X`` (N, dim), ``C`` (N, K), ``out``
    (K, ng**dim) with the grid flattened in C order."""
    N, dim = X.shape
    K = C.shape[1]
    h = box / ng
    R = RADIUS * w
    norm = 1.0 / (math.sqrt(2.0 * math.pi) * w)
    inv = 0.5 / (w * w)
    m = int(2 * R / h) + 3
    g1 = np.empty((3, m))
    ix = np.empty((3, m), np.int64)
    cnt = np.zeros(3, np.int64)
    for n in range(N):
        for a in range(dim):
            lo, hi = _lo_hi(X[n, a], R, h)
            c = 0
            for g in range(lo, hi + 1):
                z = g * h - X[n, a]
                g1[a, c] = norm * math.exp(-z * z * inv)
                ix[a, c] = g % ng
                c += 1
            cnt[a] = c
        if dim == 1:
            for q in range(cnt[0]):
                for k in range(K):
                    out[k, ix[0, q]] += C[n, k] * g1[0, q]
        else:
            for q0 in range(cnt[0]):
                for q1 in range(cnt[1]):
                    f01 = g1[0, q0] * g1[1, q1]
                    base = (ix[0, q0] * ng + ix[1, q1]) * ng
                    for q2 in range(cnt[2]):
                        f = f01 * g1[2, q2]
                        idx = base + ix[2, q2]
                        for k in range(K):
                            out[k, idx] += C[n, k] * f
    return out


@njit(cache=True)
def line_integral(z, d, w, dim):
    """Closed-form ``int_0^1 eta(z - s d) ds`` for one point ``z = y - x0`` (module docstring)."""
    dd = 0.0
    zd = 0.0
    zz = 0.0
    for a in range(dim):
        dd += d[a] * d[a]
        zd += z[a] * d[a]
        zz += z[a] * z[a]
    norm = (2.0 * math.pi * w * w) ** (-0.5 * dim)
    if dd < 1e-24:
        return norm * math.exp(-zz / (2.0 * w * w))
    L = math.sqrt(dd)
    t = zd / dd
    perp2 = zz - t * t * dd
    if perp2 < 0.0:
        perp2 = 0.0
    if perp2 > RADIUS * RADIUS * w * w:                # beyond the truncation radius
        return 0.0
    return (norm * math.exp(-perp2 / (2.0 * w * w)) * math.sqrt(2.0 * math.pi) * w / L
            * phi_diff((1.0 - t) * L / w, -t * L / w))


@njit(cache=True)
def add_segments(X0, Dv, C, box, ng, w, out):
    """``out[k, a, g] += sum_s C[s, k] d_s[a] int_0^1 eta(y_g - x0_s - u d_s) du``; ``X0`` and
    ``Dv`` (S, dim) start points and vectors, ``C`` (S, K), ``out`` (K, dim, ng**dim)."""
    S, dim = X0.shape
    K = C.shape[1]
    h = box / ng
    R = RADIUS * w
    z = np.empty(dim)
    d = np.empty(dim)
    lo = np.zeros(3, np.int64)
    hi = np.zeros(3, np.int64)
    norm3 = (2.0 * math.pi * w * w) ** -1.5
    R2 = R * R
    inv2w2 = 0.5 / (w * w)
    for s in range(S):
        for a in range(dim):
            d[a] = Dv[s, a]
            a0 = min(X0[s, a], X0[s, a] + d[a])
            a1 = max(X0[s, a], X0[s, a] + d[a])
            lo[a] = int(math.ceil((a0 - R) / h))
            hi[a] = int(math.floor((a1 + R) / h))
        if dim == 1:
            for g in range(lo[0], hi[0] + 1):
                z[0] = g * h - X0[s, 0]
                v = line_integral(z, d, w, 1)
                gi = g % ng
                for k in range(K):
                    out[k, 0, gi] += C[s, k] * d[0] * v
        else:
            dd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            A = 1.0 - d[2] * d[2] / dd if dd > 1e-24 else 1.0
            inv_dd = 1.0 / dd if dd > 1e-24 else 0.0
            Lw = math.sqrt(dd) / w
            pref = norm3 * math.sqrt(2.0 * math.pi) / Lw if dd > 1e-24 else 0.0
            for g0 in range(lo[0], hi[0] + 1):
                z[0] = g0 * h - X0[s, 0]
                for g1 in range(lo[1], hi[1] + 1):
                    z[1] = g1 * h - X0[s, 1]
                    base = ((g0 % ng) * ng + (g1 % ng)) * ng
                    # only the points within the truncation radius of the line through the
                    # segment: rho_perp^2(z2) = A z2^2 + B z2 + C <= R^2 (a quadratic in z2)
                    l2, h2 = lo[2], hi[2]
                    c = z[0] * d[0] + z[1] * d[1]
                    if dd > 1e-24:
                        B = -2.0 * c * d[2] / dd
                        C0 = z[0] * z[0] + z[1] * z[1] - c * c / dd - R * R
                    else:
                        B = 0.0
                        C0 = z[0] * z[0] + z[1] * z[1] - R * R
                    if A > 1e-12:
                        disc = B * B - 4.0 * A * C0
                        if disc < 0.0:
                            continue
                        sq = math.sqrt(disc)
                        za = (-B - sq) / (2.0 * A) + X0[s, 2]
                        zb = (-B + sq) / (2.0 * A) + X0[s, 2]
                        l2 = max(l2, int(math.floor(za / h)))
                        h2 = min(h2, int(math.ceil(zb / h)))
                    elif C0 > 0.0:
                        continue
                    gw = l2 % ng - 1                   # g2 % ng, advanced without a modulo
                    for g2 in range(l2, h2 + 1):
                        gw += 1
                        if gw == ng:
                            gw = 0
                        z[2] = g2 * h - X0[s, 2]
                        if dd < 1e-24:
                            v = line_integral(z, d, w, 3)
                        else:                      # line_integral with per-segment constants
                            zd = c + z[2] * d[2]
                            t = zd * inv_dd
                            perp2 = z[0] * z[0] + z[1] * z[1] + z[2] * z[2] - t * zd
                            if perp2 > R2:
                                continue
                            if perp2 < 0.0:
                                perp2 = 0.0
                            v = pref * math.exp(-perp2 * inv2w2) * phi_diff((1.0 - t) * Lw,
                                                                            -t * Lw)
                        if v == 0.0:
                            continue
                        idx = base + gw
                        for k in range(K):
                            ck = C[s, k] * v
                            for a in range(3):
                                out[k, a, idx] += ck * d[a]
    return out
