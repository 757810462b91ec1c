"""Fields of a swarm of fluid elements in one nuclear dimension (the Lagrangian frame of MB).

When the trajectories are *fluid elements* - started as quantiles of the initial density with the
local momentum ``p = dS/dx`` (``[initial] sampling = "hydrodynamic"``) and moved by the
hydrodynamic (qhd) velocity - they never cross in one dimension, each carries the same weight, and
its conditional density matrix ``rho_I`` is the value of one smooth field at ``x_I``. Every field
is then a smooth function of the element's *label*, and the swarm knows it without statistical
noise. This module uses that.

**Label.** Sort the elements by position and give element ``I`` the mass coordinate
``q_I = sum_{J<I} w_J + w_I / 2`` (the fraction of the swarm to its left) and the Gaussian label
``s_I = Phi^{-1}(q_I)`` (standard normal quantile; for the initial Gaussian packet
``s = (x - x0) / sigma0`` exactly). Because ``q(x) = int_{-inf}^x n``, the density is

    n(x) = phi(s) ds/dx,     ln n = -s^2/2 - ln sqrt(2 pi) - ln x_s,

where ``x(s)`` is the position of the element with label s and ``x_s = dx/ds``. ``x(s)`` is linear
for a Gaussian packet and smooth for any density the flow produces, including its Gaussian
tails, where a kernel estimate in x has no data. The log-density derivatives follow by the chain
rule ``d/dx = (1/x_s) d/ds`` from ``x_s .. x_ssss``:

    L_s   = -s - x_ss/x_s,   L_ss = -1 - x_sss/x_s + (x_ss/x_s)^2,
    L_sss = -x_ssss/x_s + 3 x_ss x_sss/x_s^2 - 2 (x_ss/x_s)^3,
    L_x = L_s/x_s,  L_xx = (L_ss - L_x x_ss)/x_s^2,  L_xxx = (L_sss - 3 L_xx x_s x_ss - L_x x_sss)/x_s^3.

This is the density from the *spacing* of ordered elements (``x_s`` is their spacing in the label),
not a kernel estimate: no bandwidth, no smoothing bias beyond the local polynomial fits below.

**Local fits.** The derivatives with respect to s come from least-squares fits of degree
``density_degree`` (x(s)) and ``rho_degree`` (rho(s)) in a Legendre basis over the elements with
labels in ``[s_I - w, s_I + w]`` (``w = window``, in units of s, i.e. of the initial packet width),
at most ``max_points`` of them, evenly spread (a deterministic subsample: the data are smooth,
so the extra points carry no information and only cost time), at least ``degree + 3``. The fitted
quantity is ``x_J - x_I`` (so that round-off in the absolute positions does not enter the
high derivatives).

**Coherence phase.** The coherences ``rho_nm`` (adiabatic basis) turn with the difference of the
nuclear momenta on the two surfaces, ``exp(i k_nm x)``, which on Tully 3 at k = 10 is 16-40
bohr^-1, faster than a fit window can follow at small N. With ``demodulate`` the fit is done on
``B~_J = B_J * exp(-i k_nm (x_J - x_I))``, ``B_J = V_I^dagger rho_J V_I`` in the adiabatic basis
of element I (gauge invariant: the phases of V_I cancel between B_J and the slope fit), with the
local wavenumbers ``k_nm`` fitted to the unwrapped phase of ``B_J,nm conj(B_I,nm)`` over the
nearest elements; then ``d B_nm = d B~_nm + i k_nm B~_nm`` and ``d^2 B_nm = d^2 B~_nm +
2 i k_nm d B~_nm - k_nm^2 B~_nm`` exactly, transformed back with the fixed V_I.

**Tangent space.** For a pure rho_I the fitted first derivative X is projected onto the tangent
space of the pure states at rho_I (``X -> rho X + X rho - 2 rho X rho``), and the second
derivative Y keeps its off-diagonal blocks while its diagonal blocks take the values that
``rho^2 = rho`` dictates: ``rho Y rho = -2 rho X^2 rho``, ``(1 - rho) Y (1 - rho) =
2 (1 - rho) X^2 (1 - rho)``. Then ``Tr(rho d rho) = 0`` and the metric ``g = Tr(rho d rho d rho)``
is exactly that of a curve of pure states.

**Conservative divergence.** The forces of the combined rung and of qhd are divergences,
``(1/n) d_x(n G)`` (MB(64): ``G = g / M``; MB(68): ``G = (1/4M) d_x^2 ln n``). With ``dq = n dx``
this is ``d_q (n G)``, which :meth:`FluidFields1D.divergence` discretises in flux form on the
mass coordinate: ``F_I = (Phi_{I+1/2} - Phi_{I-1/2}) / w_I`` with the interface flux
``Phi_{I+1/2}`` interpolated (4 points) from ``Phi_J = n_J G_J`` and zero flux beyond the outermost
elements (``n -> 0``). The weighted swarm sum ``sum_I w_I F_I`` telescopes to zero exactly:
these forces cannot change the total momentum, as in the exact theory.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.special
from numba import njit, prange

from .estimate import FieldEstimate


@dataclass
class FluidOptions:
    """Settings of :class:`FluidFields1D` (see the module docstring).

    window : float, default 0.025
        Width sigma (bohr) of the Gaussian weights exp(-(x_J - x_I)^2 / (2 sigma^2)) of the local
        fits (module docstring, "Local fits"); widened where fewer than ``degree + 3`` elements lie
        within ``cut`` widths.
    cut : float, default 4.0
        The fits use the elements within ``cut * window``.
    density_degree : int, default 6
        Degree of the local fit of x(s) (needs >= 4: ``ln n''' `` uses ``x_ssss``).
    rho_degree : int, default 4
        Degree of the local fit of rho(s) (>= 2).
    rho_window : float or None, default None
        Width of the Gaussian weights of the rho fits (bohr; None: ``window``).
    max_points : int, default 48
        Largest number of elements per fit.
    demodulate : bool, default False
        Fit the rho field with its coherence phases removed (module docstring).
    phase_points : int, default 3
        Neighbours on each side used to fit the local coherence wavenumbers.
    project : bool, default True
        Project the rho derivatives onto the tangent space of pure states (pure rho_I only).
    """

    window: float = 0.025
    cut: float = 4.0
    density_degree: int = 6
    rho_degree: int = 4
    rho_window: float | None = None
    max_points: int = 48
    demodulate: bool = False
    phase_points: int = 3
    project: bool = True

    def __post_init__(self):
        if not self.window > 0:
            raise ValueError("window must be > 0")
        if not 4 <= self.density_degree <= 10:
            raise ValueError("density_degree must be between 4 and 10")
        if not 2 <= self.rho_degree <= 10:
            raise ValueError("rho_degree must be between 2 and 10")
        if self.max_points < max(self.density_degree, self.rho_degree) + 3:
            raise ValueError("max_points must exceed the fit degrees by at least 3")


def _legendre_derivatives_at_zero(P):
    """``T[k, m] = d^m P_k / dt^m (0)`` for Legendre polynomials ``k < P``, ``m <= 4``."""
    coef = [np.array([1.0]), np.array([0.0, 1.0])]
    for k in range(1, P - 1):
        a = np.zeros(k + 2)
        a[1:] += (2 * k + 1) * coef[k]
        a[:k] -= k * coef[k - 1]
        coef.append(a / (k + 1))
    T = np.zeros((P, 5))
    for k in range(P):
        for m in range(min(5, len(coef[k]))):
            T[k, m] = coef[k][m] * math.factorial(m)
    return T


@njit(cache=True, inline="always")
def _legendre(t, P, out):
    out[0] = 1.0
    if P > 1:
        out[1] = t
    for k in range(1, P - 1):
        out[k + 1] = ((2 * k + 1) * t * out[k] - k * out[k - 1]) / (k + 1)


@njit(cache=True, inline="always")
def _window(s, I, W, need):
    """First and last index of the elements with ``s`` in [s_I - W, s_I + W] (``s`` sorted
    ascending: the positions or the labels), widened to at least ``need`` elements."""
    N = np.int64(s.shape[0])
    I = np.int64(I)
    lo = np.int64(np.searchsorted(s, s[I] - W))
    hi = np.int64(np.searchsorted(s, s[I] + W, side="right")) - 1
    if lo > I:
        lo = I
    if hi < I:
        hi = I
    while hi - lo + 1 < need:
        if lo == 0:
            hi += 1
        elif hi == N - 1:
            lo -= 1
        elif s[I] - s[lo - 1] <= s[hi + 1] - s[I]:
            lo -= 1
        else:
            hi += 1
    return lo, hi


#: the ``need`` nearest elements lie within this many (widened) widths of the target
SPARSE_WIDTHS = 2.5


@njit(cache=True, inline="always")
def _gauss_window(x, I, sigma, cut, need):
    """Window and width of the fit around element I (x sorted ascending).

    The width is ``max(sigma, d_need / 2.5)`` with ``d_need`` the distance to the ``need``-th
    nearest element (a continuous function of the target: sparse regions get wider fits, never
    fewer than ``need`` elements within 2.5 widths); the window holds the elements within ``cut``
    widths, where the weight :func:`_weight` vanishes smoothly."""
    lo, hi = _window(x, I, 0.0, need)
    d = max(x[I] - x[lo], x[hi] - x[I])
    sig = max(sigma, d / SPARSE_WIDTHS)
    lo, hi = _window(x, I, cut * sig, need)
    return lo, hi, sig


@njit(cache=True, inline="always")
def _weight(d, sig, cut):
    """Fit weight of an element at distance d: exp(-d^2 / (2 sig^2)) (1 - (d / (cut sig))^2)^3,
    a Gaussian with a C^2 cut-off, so that elements enter and leave the window smoothly."""
    r2 = (d / (cut * sig)) ** 2
    if r2 >= 1.0:
        return 0.0
    t = 1.0 - r2
    return math.exp(-0.5 * (d / sig) ** 2) * t * t * t


@njit(cache=True, inline="always")
def _stride(cnt, kmax):
    """Power-of-two source stride that leaves at most ``kmax`` of ``cnt`` window elements: the
    sources of every fit are the window's elements on the global lattice J = 0 mod stride. The
    lattices are nested and fixed in label space, so the fit is a smooth function of the target
    (a subsample that slides with the target makes the semi-discrete dynamics unstable)."""
    st = 1
    while cnt > kmax * st:
        st *= 2
    return st


@njit(cache=True, inline="always")
def _cholesky_solve(G, B, P, C):
    """Solve G c = B in place (G (P, P) SPD, B (P, C)); returns False if G is singular."""
    for j in range(P):
        d = G[j, j]
        for k in range(j):
            d -= G[j, k] * G[j, k]
        if d <= 0.0:
            return False
        d = math.sqrt(d)
        G[j, j] = d
        for i in range(j + 1, P):
            v = G[i, j]
            for k in range(j):
                v -= G[i, k] * G[j, k]
            G[i, j] = v / d
    for c in range(C):
        for i in range(P):
            v = B[i, c]
            for k in range(i):
                v -= G[i, k] * B[k, c]
            B[i, c] = v / G[i, i]
        for i in range(P - 1, -1, -1):
            v = B[i, c]
            for k in range(i + 1, P):
                v -= G[k, i] * B[k, c]
            B[i, c] = v / G[i, i]
    return True


@njit(parallel=True, cache=True)
def _fit_positions(s, x, W, cut, deg, kmax, T, out):
    """out[I, m] = d^m x / ds^m at s_I, m = 1..4 (m = 0 unused): Gaussian-weighted (width W, bohr)
    local polynomial fit of x(s) in a Legendre basis."""
    N = s.shape[0]
    P = deg + 1
    for I in prange(N):
        G = np.empty((P, P))
        B = np.empty((P, 1))
        L = np.empty(P)
        lo, hi, sig = _gauss_window(x, I, W, cut, P + 2)
        cnt = hi - lo + 1
        st = _stride(cnt, kmax)
        h = max(s[I] - s[lo], s[hi] - s[I])
        for a in range(P):
            B[a, 0] = 0.0
            for b in range(P):
                G[a, b] = 0.0
        for J in range(((lo + st - 1) // st) * st, hi + 1, st):
            _legendre((s[J] - s[I]) / h, P, L)
            y = x[J] - x[I]
            wt = _weight(y, sig, cut)
            for a in range(P):
                B[a, 0] += wt * L[a] * y
                for b in range(a + 1):
                    G[a, b] += wt * L[a] * L[b]
        for a in range(P):
            for b in range(a + 1, P):
                G[a, b] = G[b, a]
        if not _cholesky_solve(G, B, P, 1):
            for m in range(5):
                out[I, m] = np.nan
            continue
        hm = 1.0
        for m in range(5):
            v = 0.0
            for a in range(P):
                v += B[a, 0] * T[a, m]
            out[I, m] = v / hm
            hm *= h


@njit(cache=True, inline="always")
def _basis_block(V, rho, J, out):
    """out = V^dagger rho_J V (ns x ns)."""
    ns = V.shape[0]
    for a in range(ns):
        for b in range(ns):
            v = 0j
            for k in range(ns):
                for l in range(ns):
                    v += np.conj(V[k, a]) * rho[J, k, l] * V[l, b]
            out[a, b] = v


@njit(parallel=True, cache=True)
def _fit_rho(s, x, rho, V, W, cut, deg, kmax, T, demod, nphase, d0, d1, d2, kk):
    """Fit of the rho field around every element in the fixed basis V[I] (adiabatic basis of
    element I when ``demod``, else the identity): d0/d1/d2[I] = B, dB/ds, d2B/ds2 of the
    demodulated field at s_I; kk[I] the local coherence wavenumbers (bohr^-1)."""
    N, ns, _ = rho.shape
    P = deg + 1
    C = ns * ns
    for I in prange(N):
        G = np.empty((P, P))
        Bm = np.empty((P, C))
        L = np.empty(P)
        A = np.empty((ns, ns), dtype=np.complex128)
        BJ = np.empty((ns, ns), dtype=np.complex128)
        lo, hi, sig = _gauss_window(x, I, W, cut, P + 2)
        cnt = hi - lo + 1
        st = _stride(cnt, kmax)
        h = max(s[I] - s[lo], s[hi] - s[I])
        VI = V[I]
        _basis_block(VI, rho, I, A)
        # local coherence wavenumbers from the nearest neighbours' unwrapped phases
        for a in range(ns):
            kk[I, a, a] = 0.0
        if demod:
            jl = max(0, I - nphase)
            jh = min(N - 1, I + nphase)
            for a in range(ns):
                for b in range(a + 1, ns):
                    kk[I, a, b] = 0.0
                    kk[I, b, a] = 0.0
                    ref = A[a, b]
                    if abs(ref) < 1e-7:
                        continue
                    # walk outwards from I on both sides, unwrapping the phase step by step
                    sxx = 0.0
                    sxp = 0.0
                    for side in range(2):
                        prev = 0.0
                        prevz = ref
                        rng_ = range(I + 1, jh + 1) if side == 0 else range(I - 1, jl - 1, -1)
                        for J in rng_:
                            _basis_block(VI, rho, J, BJ)
                            z = BJ[a, b]
                            if abs(z) < 1e-7:
                                break
                            dphi = np.angle(z * np.conj(prevz))
                            prev += dphi
                            prevz = z
                            dx = x[J] - x[I]
                            sxx += dx * dx
                            sxp += dx * prev
                    if sxx > 0.0:
                        kk[I, a, b] = sxp / sxx
                        kk[I, b, a] = -kk[I, a, b]
        for a in range(P):
            for c in range(C):
                Bm[a, c] = 0.0
            for b in range(P):
                G[a, b] = 0.0
        for J in range(((lo + st - 1) // st) * st, hi + 1, st):
            _legendre((s[J] - s[I]) / h, P, L)
            _basis_block(VI, rho, J, BJ)
            dx = x[J] - x[I]
            wt = _weight(dx, sig, cut)
            q = 0
            for a in range(ns):
                for b in range(a, ns):
                    z = BJ[a, b]
                    if a != b and demod:
                        ph = kk[I, a, b] * dx
                        z = z * complex(math.cos(ph), -math.sin(ph))
                    zr = wt * (z.real - A[a, b].real)
                    zi = wt * (z.imag - A[a, b].imag)
                    for r in range(P):
                        Bm[r, q] += L[r] * zr
                        if a != b:
                            Bm[r, q + 1] += L[r] * zi
                    q += 1 if a == b else 2
            for r in range(P):
                for c2 in range(r + 1):
                    G[r, c2] += wt * L[r] * L[c2]
        for r in range(P):
            for c2 in range(r + 1, P):
                G[r, c2] = G[c2, r]
        ok = _cholesky_solve(G, Bm, P, C)
        q = 0
        for a in range(ns):
            for b in range(a, ns):
                for m in range(3):
                    vr = 0.0
                    vi = 0.0
                    for r in range(P):
                        vr += Bm[r, q] * T[r, m]
                        if a != b:
                            vi += Bm[r, q + 1] * T[r, m]
                    hm = h ** m
                    z = complex(vr / hm, vi / hm) if ok else complex(np.nan, np.nan)
                    if m == 0:
                        z += A[a, b]
                        d0[I, a, b] = z
                        d0[I, b, a] = np.conj(z)
                    elif m == 1:
                        d1[I, a, b] = z
                        d1[I, b, a] = np.conj(z)
                    else:
                        d2[I, a, b] = z
                        d2[I, b, a] = np.conj(z)
                q += 1 if a == b else 2


@njit(parallel=True, cache=True)
def _finish_rho(V, xs, xss, d0, d1, d2, kk, drho, d2rho):
    """x-derivatives of rho (diabatic basis) from the s-fits: undo the demodulation, chain rule
    ``d/dx = (1/x_s) d/ds``, back from the fixed basis V[I]."""
    N, ns, _ = d0.shape
    for I in prange(N):
        X = np.empty((ns, ns), dtype=np.complex128)
        Y = np.empty((ns, ns), dtype=np.complex128)
        T1 = np.empty((ns, ns), dtype=np.complex128)
        inv = 1.0 / xs[I]
        for a in range(ns):
            for b in range(ns):
                b1 = d1[I, a, b] * inv                                   # dB~/dx
                b2 = (d2[I, a, b] - b1 * xss[I]) * inv * inv               # d2B~/dx2
                k = kk[I, a, b]
                X[a, b] = b1 + 1j * k * d0[I, a, b]
                Y[a, b] = b2 + 2j * k * b1 - k * k * d0[I, a, b]
        VI = V[I]
        for M in range(2):
            S = X if M == 0 else Y
            for a in range(ns):
                for b in range(ns):
                    v = 0j
                    for c in range(ns):
                        v += S[a, c] * np.conj(VI[b, c])
                    T1[a, b] = v
            for a in range(ns):
                for b in range(ns):
                    v = 0j
                    for c in range(ns):
                        v += VI[a, c] * T1[c, b]
                    S[a, b] = v
        for a in range(ns):
            for b in range(ns):
                drho[I, a, b] = X[a, b]
                d2rho[I, a, b] = Y[a, b]


@njit(parallel=True, cache=True)
def _project_all(rho, drho, d2rho):
    """Tangent-space projection (in place) at every element whose rho is pure."""
    N, ns, _ = rho.shape
    for I in prange(N):
        pur = 0.0
        for a in range(ns):
            for b in range(ns):
                pur += abs(rho[I, a, b]) ** 2
        if abs(pur - 1.0) < 1e-8:
            _project_pure(rho[I], drho[I], d2rho[I], ns)


@njit(cache=True, inline="always")
def _mm(A, B, out, ns):
    for a in range(ns):
        for b in range(ns):
            v = 0j
            for c in range(ns):
                v += A[a, c] * B[c, b]
            out[a, b] = v


@njit(cache=True)
def _project_pure(r, X, Y, ns):
    """Tangent-space projection of X (first) and Y (second derivative) at the pure state r."""
    RX = np.empty((ns, ns), dtype=np.complex128)
    XR = np.empty((ns, ns), dtype=np.complex128)
    RXR = np.empty((ns, ns), dtype=np.complex128)
    _mm(r, X, RX, ns)
    _mm(X, r, XR, ns)
    _mm(RX, r, RXR, ns)
    for a in range(ns):
        for b in range(ns):
            X[a, b] = RX[a, b] + XR[a, b] - 2.0 * RXR[a, b]
    X2 = np.empty((ns, ns), dtype=np.complex128)
    _mm(X, X, X2, ns)
    # Y = P Y Q + Q Y P - 2 P X2 P + 2 Q X2 Q with P = r, Q = 1 - r
    RY = np.empty((ns, ns), dtype=np.complex128)
    YR = np.empty((ns, ns), dtype=np.complex128)
    RYR = np.empty((ns, ns), dtype=np.complex128)
    _mm(r, Y, RY, ns)
    _mm(Y, r, YR, ns)
    _mm(RY, r, RYR, ns)
    RX2 = np.empty((ns, ns), dtype=np.complex128)
    X2R = np.empty((ns, ns), dtype=np.complex128)
    RX2R = np.empty((ns, ns), dtype=np.complex128)
    _mm(r, X2, RX2, ns)
    _mm(X2, r, X2R, ns)
    _mm(RX2, r, RX2R, ns)
    for a in range(ns):
        for b in range(ns):
            od = RY[a, b] + YR[a, b] - 2.0 * RYR[a, b]          # P Y Q + Q Y P
            qx2q = X2[a, b] - RX2[a, b] - X2R[a, b] + RX2R[a, b]
            Y[a, b] = od - 2.0 * RX2R[a, b] + 2.0 * qx2q


@njit(cache=True)
def _divergence_sorted(Phi, w, out):
    """Flux-form d_q Phi on the mass coordinate (Phi (N, C) at the sorted elements, weights w)."""
    N, C = Phi.shape
    for c in range(C):
        left = 0.0
        for I in range(N):
            if I == N - 1:
                right = 0.0
            elif 1 <= I <= N - 3:
                # interface at q_I + w_I/2 between elements I and I+1: cubic Lagrange in q
                q0 = -(w[I - 1] + w[I]) * 0.5
                q1 = 0.0
                q2 = 0.5 * (w[I] + w[I + 1])
                q3 = q2 + 0.5 * (w[I + 1] + w[I + 2])
                t = 0.5 * w[I]
                l0 = (t - q1) * (t - q2) * (t - q3) / ((q0 - q1) * (q0 - q2) * (q0 - q3))
                l1 = (t - q0) * (t - q2) * (t - q3) / ((q1 - q0) * (q1 - q2) * (q1 - q3))
                l2 = (t - q0) * (t - q1) * (t - q3) / ((q2 - q0) * (q2 - q1) * (q2 - q3))
                l3 = (t - q0) * (t - q1) * (t - q2) / ((q3 - q0) * (q3 - q1) * (q3 - q2))
                right = l0 * Phi[I - 1, c] + l1 * Phi[I, c] + l2 * Phi[I + 1, c] + l3 * Phi[I + 2, c]
            else:
                a = w[I + 1] / (w[I] + w[I + 1])
                right = a * Phi[I, c] + (1.0 - a) * Phi[I + 1, c]
            out[I, c] = (right - left) / w[I]
            left = right


class FluidFields1D:
    """Fields of a one-dimensional swarm of fluid elements (module docstring).

    Parameters
    ----------
    options : :class:`FluidOptions` or None.
    """

    name = "fluid"

    def __init__(self, options: FluidOptions | None = None):
        self.opts = options or FluidOptions()
        self._T = {}
        self._s_cache = None

    def _table(self, P):
        if P not in self._T:
            self._T[P] = np.ascontiguousarray(_legendre_derivatives_at_zero(P))
        return self._T[P]

    def labels(self, w_sorted):
        """Gaussian labels ``s = Phi^{-1}(q)`` of the sorted elements (cached for fixed weights)."""
        c = self._s_cache
        if c is not None and c[0].shape == w_sorted.shape and np.array_equal(c[0], w_sorted):
            return c[1]
        N = w_sorted.size
        if np.all(w_sorted == w_sorted[0]):
            left = (np.arange(N) + 0.5) / N               # exact mass coordinates
            right = (N - np.arange(N) - 0.5) / N          # 1 - q, exact near q = 1
        else:
            w = w_sorted / math.fsum(w_sorted)
            left = np.cumsum(w) - 0.5 * w
            right = np.cumsum(w[::-1])[::-1] - 0.5 * w
        # the labels' round-off enters the fourth derivatives of x(s): take each half of the
        # swarm from its own end (1 - q by subtraction would lose digits near q = 1)
        s = np.where(left <= 0.5, scipy.special.ndtri(left), -scipy.special.ndtri(right))
        self._s_cache = (w_sorted.copy(), s)
        return s

    def estimate(self, x, rho=None, weights=None, need=("density", "logn3", "rho2"), V=None):
        """Fields at the elements.

        Parameters
        ----------
        x : (N, 1) positions (bohr); rho : (N, ns, ns) complex or None;
        weights : (N,) positive weights (normalised here) or None (equal);
        need : tokens as for :func:`mqcd.fields.estimate_fields`;
        V : (N, ns, ns) adiabatic eigenvectors at the elements (needed for ``demodulate``).

        Returns
        -------
        :class:`mqcd.fields.FieldEstimate` in the input order, with ``rho`` the elements' own
        density matrices; ``method = "fluid"``. The sorted order and weights are kept for
        :meth:`divergence`.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != 1:
            raise ValueError("the fluid-element estimator is one-dimensional: x must be (N, 1)")
        N = x.shape[0]
        o = self.opts
        if N < max(o.density_degree, o.rho_degree) + 3:
            raise ValueError(f"the fluid-element estimator needs at least "
                             f"{max(o.density_degree, o.rho_degree) + 3} trajectories, got {N}")
        w = np.full(N, 1.0 / N) if weights is None else np.asarray(weights, float) / np.sum(weights)
        order = np.argsort(x[:, 0], kind="stable")
        xs = np.ascontiguousarray(x[order, 0])
        ws = np.ascontiguousarray(w[order])
        s = self.labels(ws)
        need = set(need)
        W = float(o.window)
        Wr = float(o.rho_window if o.rho_window is not None else o.window)
        P = o.density_degree + 1
        der = np.empty((N, 5))
        _fit_positions(s, xs, W, float(o.cut), o.density_degree, int(o.max_points),
                       self._table(P), der)
        x1, x2, x3, x4 = der[:, 1], der[:, 2], der[:, 3], der[:, 4]
        r2 = x2 / x1
        Ls = -s - r2
        Lss = -1.0 - x3 / x1 + r2 * r2
        Lsss = -x4 / x1 + 3.0 * r2 * x3 / x1 - 2.0 * r2 ** 3
        Lx = Ls / x1
        Lxx = (Lss - Lx * x2) / x1 ** 2
        Lxxx = (Lsss - 3.0 * Lxx * x1 * x2 - Lx * x3) / x1 ** 3
        n = np.exp(-0.5 * s * s) / math.sqrt(2.0 * math.pi) / x1
        inv = np.empty(N, dtype=np.int64)
        inv[order] = np.arange(N)
        f = FieldEstimate(method="fluid", method_reason="fluid elements (ordered, 1D)")
        f.n = n[inv]
        f.dlogn = Lx[inv][:, None]
        f.d2logn = Lxx[inv][:, None, None]
        f.d3logn = Lxxx[inv][:, None, None, None]
        f.weights = w
        f.h_density = np.array([W])
        if "rho" in need or "rho2" in need:
            if rho is None:
                raise ValueError("rho is required for need 'rho'/'rho2'")
            rho = np.asarray(rho, dtype=np.complex128)
            ns = rho.shape[1]
            rs = np.ascontiguousarray(rho[order])
            if o.demodulate:
                if V is None:
                    raise ValueError("demodulate needs the adiabatic eigenvectors V")
                Vs = np.ascontiguousarray(np.asarray(V, dtype=np.complex128)[order])
            else:
                Vs = np.ascontiguousarray(np.broadcast_to(np.eye(ns, dtype=np.complex128),
                                                          (N, ns, ns)))
            Pr = o.rho_degree + 1
            d0 = np.empty((N, ns, ns), np.complex128)
            d1 = np.empty_like(d0)
            d2 = np.empty_like(d0)
            kk = np.zeros((N, ns, ns))
            _fit_rho(s, xs, rs, Vs, Wr, float(o.cut), o.rho_degree, int(o.max_points),
                     self._table(Pr), bool(o.demodulate), int(o.phase_points), d0, d1, d2, kk)
            drho = np.empty((N, ns, ns), np.complex128)
            d2rho = np.empty((N, ns, ns), np.complex128)
            _finish_rho(Vs, np.ascontiguousarray(x1), np.ascontiguousarray(x2), d0, d1, d2, kk,
                        drho, d2rho)
            if o.project:
                _project_all(rs, drho, d2rho)
            f.rho = np.asarray(rho)
            f.drho = drho[inv][:, None]
            f.d2rho = d2rho[inv][:, None, None] if "rho2" in need else None
            f.extra["coherence_wavenumber"] = kk[inv]
            f.h_regression = np.array([Wr])
        self._order, self._inv, self._ws = order, inv, ws
        return f

    def divergence(self, f, G):
        """Conservative ``(1/n) d_x (n G)`` at the elements (module docstring).

        Parameters
        ----------
        f : the :class:`FieldEstimate` of the last :meth:`estimate` call (same elements).
        G : (N, 1, K) per-element field (its flux divided by n), e.g. ``g / M``.

        Returns ``(N, K)``; ``sum_I w_I out_I = 0`` to round-off.
        """
        G = np.asarray(G, dtype=np.float64)
        N = G.shape[0]
        Phi = np.ascontiguousarray((f.n[:, None] * G[:, 0, :])[self._order])
        out = np.empty_like(Phi)
        _divergence_sorted(Phi, self._ws, out)
        return out[self._inv]


# --------------------------------------------------------------------------- the estimator
from .base import SwarmEstimator, local_rows, restrict  # noqa: E402


def fluid_options(opts):
    """:class:`FluidOptions` from a method's deck options (``fluid_*`` keys)."""
    return FluidOptions(window=opts.get("fluid_window", FluidOptions.window),
                        density_degree=opts.get("fluid_degree", FluidOptions.density_degree),
                        rho_degree=opts.get("fluid_rho_degree", FluidOptions.rho_degree),
                        demodulate=opts.get("fluid_demodulate", FluidOptions.demodulate),
                        max_points=opts.get("fluid_points", FluidOptions.max_points),
                        rho_window=opts.get("fluid_rho_window") or None)


class FluidEstimator(SwarmEstimator):
    """``field_method = "fluid"``: :class:`FluidFields1D` behind the common interface.

    The estimate needs the whole ordered swarm: under MPI positions and density matrices are
    all-gathered, every rank evaluates all elements and keeps its rows (bit-for-bit serial).
    """

    name = "fluid"
    has_divergence = True

    def __init__(self, opts, model, deck, comm, need, conservative=False):
        super().__init__(opts, model, deck, comm, need, conservative)
        if model.ndof != 1:
            raise ValueError(f"field_method = 'fluid' is one-dimensional; model '{model.name}' "
                             f"has {model.ndof} nuclear degrees of freedom")
        self.fields = FluidFields1D(fluid_options(opts))
        self._whole = None

    def estimate(self, sw, need=None):
        need = self.need if need is None else tuple(need)
        comm = self.comm
        x_all = comm.allgather_rows(sw.x)
        wants_rho = any(t.startswith("rho") for t in need)
        rho_all = V_all = None
        if wants_rho:
            rho_all = comm.allgather_rows(sw.rho)
            if self.fields.opts.demodulate:
                _, V = sw.ensure_adiabatic()
                V_all = comm.allgather_rows(np.ascontiguousarray(V, dtype=np.complex128))
        f = self.fields.estimate(x_all, rho_all, None, need, V=V_all)
        f.masses = self.masses
        self.last = f
        self._whole = f
        return restrict(f, local_rows(comm, sw.ntraj))

    def divergence(self, f, G):
        comm = self.comm
        G_all = comm.allgather_rows(np.ascontiguousarray(G))
        out = self.fields.divergence(self._whole, G_all)
        return out[local_rows(comm, G.shape[0])]
