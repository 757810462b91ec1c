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

**Local fits.** The derivatives with respect to s come from weighted least-squares fits of
degree ``density_degree`` (x(s)) and ``rho_degree`` (the packed real components of rho) in a
Legendre basis of the label, one fit per element over its neighbours, with the weights
``exp(-d^2/(2 sigma^2)) (1 - (d/(cut sigma))^2)^3`` in the distance d (bohr) to the element
(``sigma = window``; a C^2 cut-off so that neighbours enter and leave the window smoothly). Where
the elements are sparse (the leading and trailing edges of a packet) sigma is widened to the
distance of the (degree + 3)-th nearest source, and at the ends of the swarm, where the window is
one-sided, the fit blends towards degree ``edge_degree`` (:func:`_blend_factor`): a full-degree
polynomial fitted from one side extrapolates wildly. The fitted quantity is ``Y_J - Y_I`` (so that
round-off in absolute positions does not enter the high derivatives).

**Label bins.** Where the swarm is dense the sources of the fits are the elements averaged over
fixed bins of width ``bin_width`` in s (the bins never move in label space, so every fit stays a
smooth function of its target); each bin enters with the bin mean of the basis, not the basis at
the mean label (:func:`_legendre_binned`), so binning leaves no bias for the polynomial model.
This bounds the cost per fit as N grows.

**Coherence phase.** No demodulation: the coherences of rho turn with the momentum difference of
the two surfaces (16-40 bohr^-1 on Tully 3 at k = 10), and the narrow default window (0.025 bohr,
Gaussian) resolves that at N >~ 1e3; a demodulated fit (a local plane wave times an envelope) was
tried and did not improve on it (docs/theory/fields.md).

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

from .estimate import FieldEstimate, pack_hermitian


@dataclass
class FluidOptions:
    """Settings of :class:`FluidFields1D` (see the module docstring).

    window : float, default 0.025
        Width sigma (bohr) of the Gaussian weights of the local fits (module docstring, "Local
        fits"); widened where the elements are sparse.
    cut : float, default 4.0
        The fits use the sources within ``cut`` widths, where the weights vanish smoothly.
    density_degree : int, default 6
        Degree of the local fit of x(s) (needs >= 4: ``d^3 ln n`` uses ``x_ssss``).
    rho_degree : int, default 4
        Degree of the local fit of rho(s) (>= 2).
    edge_degree : int, default 2
        Degree the fits blend to at the ends of the swarm, where the window is one-sided
        (:func:`_blend_factor`): a full-degree polynomial fitted on one side extrapolates wildly.
    bin_width : float, default 0.002
        Sources are the elements averaged over bins of this width in the label s (0: no bins);
        bins hold several elements only where the swarm is dense (about N / 1000 at the centre
        of the initial packet), so the cost of a fit stays bounded as N grows.
    project : bool, default True
        Project the rho derivatives onto the tangent space of pure states (pure rho_I only).
    """

    window: float = 0.025
    cut: float = 4.0
    density_degree: int = 6
    rho_degree: int = 4
    edge_degree: int = 2
    bin_width: float = 0.002
    project: bool = True

    def __post_init__(self):
        if not self.window > 0:
            raise ValueError("window must be > 0")
        if not 4 <= self.density_degree <= 10:
            raise ValueError("density_degree must be between 4 and 10")
        if not 2 <= self.rho_degree <= 10:
            raise ValueError("rho_degree must be between 2 and 10")
        if not 1 <= self.edge_degree < min(self.density_degree, self.rho_degree):
            raise ValueError("edge_degree must be >= 1 and below the fit degrees")


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
def _legendre_binned(t, q, P, L, L1, L2):
    """Bin mean of the Legendre basis, ``L_k(t) + q L_k''(t) / 2`` with ``q`` the bin's variance
    of t: the exact bin average of a polynomial up to its third central moment (zero for a
    symmetric bin), so that a binned source carries no bias for the polynomial model (the bias
    ``x_ss var / 2`` of plain bin means jumps with the number of elements per bin, and the
    fourth derivatives of x(s) amplify it)."""
    _legendre(t, P, L)
    if q == 0.0:
        return
    L1[0] = 0.0
    L2[0] = 0.0
    if P > 1:
        L1[1] = 1.0
        L2[1] = 0.0
    for k in range(1, P - 1):
        L1[k + 1] = (L1[k - 1] if k >= 1 else 0.0) + (2 * k + 1) * L[k]
        L2[k + 1] = (L2[k - 1] if k >= 1 else 0.0) + (2 * k + 1) * L1[k]
    for k in range(P):
        L[k] += 0.5 * q * L2[k]


#: where the sources are sparse the fit width is at least the distance to the
#: (degree + 3)-th nearest source divided by this (about four local spacings): with fewer
#: sources per width the discrete fits let through modes near the spacing (aliasing)
SPARSE_WIDTHS = 1.0


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


#: window balance (lighter side's weight over the heavier side's) below which the fit blends
#: towards its low-degree version, and above which it is the full-degree fit
BALANCE_LOW, BALANCE_HIGH = 0.1, 0.5


@njit(cache=True, inline="always")
def _blend_factor(wl, wr):
    """Smoothstep of the window balance min(wl, wr) / max(wl, wr): 1 for targets inside the
    swarm, 0 at its ends, where a full-degree fit would extrapolate from one side."""
    big = max(wl, wr)
    if big <= 0.0:
        return 0.0
    q = (min(wl, wr) / big - BALANCE_LOW) / (BALANCE_HIGH - BALANCE_LOW)
    q = min(max(q, 0.0), 1.0)
    return q * q * (3.0 - 2.0 * q)


@njit(cache=True, inline="always")
def _solve_blended(G, B, P, PL, C, beta, T, h, D):
    """Derivatives ``D[c, m]`` (m = 0..4, w.r.t. the label) of the fits of the columns of B: the
    degree P-1 fit blended with weight ``1 - beta`` towards the degree PL-1 fit (the leading
    Legendre sub-block of the same sums). Returns False if a system is singular."""
    GL = np.empty((PL, PL))
    BL = np.empty((PL, C))
    for a in range(PL):
        for b in range(PL):
            GL[a, b] = G[a, b]
        for c in range(C):
            BL[a, c] = B[a, c]
    ok = True
    if beta > 0.0:
        ok = _cholesky_solve(G, B, P, C)
    if beta < 1.0:
        ok = ok and _cholesky_solve(GL, BL, PL, C)
    for c in range(C):
        hm = 1.0
        for m in range(5):
            v = 0.0
            if beta > 0.0:
                for a in range(P):
                    v += beta * B[a, c] * T[a, m]
            if beta < 1.0:
                for a in range(PL):
                    v += (1.0 - beta) * BL[a, c] * T[a, m]
            D[c, m] = v / hm
            hm *= h
    return ok


@njit(parallel=True, cache=True)
def _fit_windows(xt, xs, W, cut, need, lo_out, hi_out, width):
    """The source window of every target: sources ``lo_out[t] .. hi_out[t]`` (indices into the
    sources ``xs``, sorted by position) within ``cut`` widths of the target position ``xt[t]``;
    the width ``width[t]`` is W (bohr), widened to the distance of the ``need``-th nearest
    source where the sources are sparse. Needs the sources' positions only, so under MPI every
    rank finds the windows of its own targets from the all-gathered positions."""
    K = xs.shape[0]
    for t in prange(xt.shape[0]):
        lo = np.int64(np.searchsorted(xs, xt[t]))
        hi = lo - 1
        # widen to the need nearest sources, then to cut * width
        while hi - lo + 1 < need and (lo > 0 or hi < K - 1):
            if lo == 0:
                hi += 1
            elif hi == K - 1:
                lo -= 1
            elif xt[t] - xs[lo - 1] <= xs[hi + 1] - xt[t]:
                lo -= 1
            else:
                hi += 1
        d = max(xt[t] - xs[lo], xs[hi] - xt[t])
        sig = max(W, d / SPARSE_WIDTHS)
        width[t] = sig
        lo_out[t] = np.int64(np.searchsorted(xs, xt[t] - cut * sig))
        hi_out[t] = np.int64(np.searchsorted(xs, xt[t] + cut * sig, side="right")) - 1


@njit(cache=True, inline="always")
def _source(J, xt, st, xs, ss, vs, ws, sig, cut, h, P, L, L1, L2):
    """Fit weight of source J for a target at position xt, label st (and its offset dx); the
    binned Legendre basis of the source in ``L`` where the weight is non-zero."""
    dxj = xs[J] - xt
    wt = ws[J] * _weight(dxj, sig, cut)
    if wt != 0.0:
        _legendre_binned((ss[J] - st) / h, vs[J] / (h * h), P, L, L1, L2)
    return wt, dxj


@njit(cache=True, inline="always")
def _gram_add(G, L, wt, P):
    """Lower triangle of the Gram matrix: ``G[a, b] += wt L[a] L[b]`` (b <= a)."""
    for a in range(P):
        for b in range(a + 1):
            G[a, b] += wt * L[a] * L[b]


@njit(cache=True, inline="always")
def _symmetrize(G, P):
    for a in range(P):
        for b in range(a + 1, P):
            G[a, b] = G[b, a]


@njit(parallel=True, cache=True)
def _fit_all(st, Yt, ss, vs, xs, Ys, ws, nd, cut, Pd, Pr, low, T, win_lo, win_hi, width,
             J0, out):
    """Local fits at every target from the (binned) sources.

    Targets ``t`` (labels st, values Yt (M, C); column 0 of Yt is the position); sources
    ``J0, J0 + 1, ...`` (labels ss, positions xs, values Ys (K, C), weights ws and label
    variances vs within their bins, sorted by position; a contiguous piece of all sources,
    starting at source J0) and the windows of :func:`_fit_windows` (source indices
    ``win_lo .. win_hi`` of the whole, widths ``width``). Column c < nd is fitted with degree
    Pd - 1, the others with Pr - 1, both Gaussian-weighted in a Legendre basis of the label,
    blended to degree ``low`` towards the ends of the swarm; ``out[t, c, m] = d^m Y_c / ds^m``
    at the target (m = 0..4; m = 0 is the fitted value minus the target's own)."""
    M, C = Yt.shape
    Pmax = max(Pd, Pr)
    for t in prange(M):
        G = np.empty((Pmax, Pmax))
        Gr = np.empty((Pmax, Pmax))
        B = np.empty((Pmax, C))
        L = np.empty(Pmax)
        L1 = np.empty(Pmax)
        L2 = np.empty(Pmax)
        Dd = np.empty((nd, 5))
        Dr = np.empty((max(C - nd, 1), 5))
        sig = width[t]
        lo = win_lo[t] - J0
        hi = win_hi[t] - J0
        h = max(st[t] - ss[lo], ss[hi] - st[t], 1e-300)
        for a in range(Pmax):
            for c in range(C):
                B[a, c] = 0.0
            for b in range(Pmax):
                G[a, b] = 0.0
        wl = 0.0
        wr = 0.0
        for J in range(lo, hi + 1):
            wt, dxj = _source(J, Yt[t, 0], st[t], xs, ss, vs, ws, sig, cut, h, Pmax, L, L1, L2)
            if wt == 0.0:
                continue
            if dxj < 0.0:
                wl += wt
            elif dxj > 0.0:
                wr += wt
            for c in range(C):
                y = wt * (Ys[J, c] - Yt[t, c])
                for a in range(Pmax):
                    B[a, c] += L[a] * y
            _gram_add(G, L, wt, Pmax)
        _symmetrize(G, Pmax)
        for a in range(Pmax):
            for b in range(Pmax):
                Gr[a, b] = G[a, b]
        beta = _blend_factor(wl, wr)
        Bd = np.empty((Pd, nd))
        for a in range(Pd):
            for c in range(nd):
                Bd[a, c] = B[a, c]
        ok = _solve_blended(G, Bd, Pd, low + 1, nd, beta, T, h, Dd)
        for c in range(nd):
            for m in range(5):
                out[t, c, m] = Dd[c, m] if ok else np.nan
        if C > nd:
            Br = np.empty((Pr, C - nd))
            for a in range(Pr):
                for c in range(C - nd):
                    Br[a, c] = B[a, nd + c]
            ok = _solve_blended(Gr, Br, Pr, min(low, Pr - 1) + 1, C - nd, beta, T, h, Dr)
            for c in range(C - nd):
                for m in range(5):
                    out[t, nd + c, m] = Dr[c, m] if ok else np.nan


@njit(parallel=True, cache=True)
def _rho_derivatives(R, xs1, xs2, ns, drho, d2rho):
    """x-derivatives of rho (diabatic) from the label derivatives of its packed real components
    R (N, ns^2, 5): chain rule ``d/dx = (1/x_s) d/ds``; Hermitian by construction."""
    N = R.shape[0]
    nu = ns * (ns - 1) // 2
    for I in prange(N):
        inv = 1.0 / xs1[I]
        k = 0
        for a in range(ns):
            b1 = R[I, a, 1] * inv
            b2 = (R[I, a, 2] - b1 * xs2[I]) * inv * inv
            drho[I, a, a] = b1
            d2rho[I, a, a] = b2
        for a in range(ns):
            for b in range(a + 1, ns):
                r1 = R[I, ns + k, 1] * inv
                i1 = R[I, ns + nu + k, 1] * inv
                r2 = (R[I, ns + k, 2] - r1 * xs2[I]) * inv * inv
                i2 = (R[I, ns + nu + k, 2] - i1 * xs2[I]) * inv * inv
                drho[I, a, b] = complex(r1, i1)
                drho[I, b, a] = complex(r1, -i1)
                d2rho[I, a, b] = complex(r2, i2)
                d2rho[I, b, a] = complex(r2, -i2)
                k += 1


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


@njit(cache=True, inline="always")
def _sandwich(r, A, ns):
    """(r A, A r, r A r) for (ns, ns) complex matrices."""
    RA = np.empty((ns, ns), dtype=np.complex128)
    AR = np.empty((ns, ns), dtype=np.complex128)
    RAR = np.empty((ns, ns), dtype=np.complex128)
    _mm(r, A, RA, ns)
    _mm(A, r, AR, ns)
    _mm(RA, r, RAR, ns)
    return RA, AR, RAR


@njit(cache=True)
def _project_pure(r, X, Y, ns):
    """Tangent-space projection of X (first) and Y (second derivative) at the pure state r."""
    RX, XR, RXR = _sandwich(r, X, ns)
    for a in range(ns):
        for b in range(ns):
            X[a, b] = RX[a, b] + XR[a, b] - 2.0 * RXR[a, b]
    X2 = np.empty((ns, ns), dtype=np.complex128)
    _mm(X, X, X2, ns)
    # Y = P Y Q + Q Y P - 2 P X2 P + 2 Q X2 Q with P = r, Q = 1 - r
    RY, YR, RYR = _sandwich(r, Y, ns)
    RX2, X2R, RX2R = _sandwich(r, X2, ns)
    for a in range(ns):
        for b in range(ns):
            od = RY[a, b] + YR[a, b] - 2.0 * RYR[a, b]          # P Y Q + Q Y P
            qx2q = X2[a, b] - RX2[a, b] - X2R[a, b] + RX2R[a, b]
            Y[a, b] = od - 2.0 * RX2R[a, b] + 2.0 * qx2q


@njit(cache=True)
def _gauss(s):
    """``phi(s)``, the standard normal density, at every label (the fluxes' Gaussian factor)."""
    inv2pi = 1.0 / math.sqrt(2.0 * math.pi)
    out = np.empty(s.shape[0])
    for j in range(s.shape[0]):
        out[j] = inv2pi * math.exp(-0.5 * s[j] * s[j])
    return out


@njit(cache=True, inline="always")
def _interface_flux(Phi, off, s, s_if, ph, ph_if, I, out):
    """Fluxes ``Phi(Q_{I+1/2})`` (all columns, into ``out``) at the interface after sorted element
    I (I < N - 1): ``Psi = Phi / phi(s)`` interpolated in the label (cubic Lagrange through the
    four nearest elements, linear next to the ends) times the exact ``phi(s_iface)``.
    ``Phi[j - off]`` is the flux of sorted element j; ``ph``, ``ph_if``: :func:`_gauss` of the
    element and interface labels."""
    N = s.shape[0]
    C = Phi.shape[1]
    t = s_if[I]
    j0 = I - 1 if (I >= 1 and I <= N - 3) else I
    npt = 4 if (I >= 1 and I <= N - 3) else 2
    for c in range(C):
        out[c] = 0.0
    for a in range(npt):
        v = 1.0
        for b in range(npt):
            if b != a:
                v *= (t - s[j0 + b]) / (s[j0 + a] - s[j0 + b])
        j = j0 + a
        for c in range(C):
            out[c] += v * (Phi[j - off, c] / ph[j])
    for c in range(C):
        out[c] *= ph_if[I]


@njit(cache=True)
def _divergence_at(Phi, off, w, s, s_if, ph, ph_if, idx, out):
    """Flux-form ``d_q Phi`` on the cells at the sorted elements ``idx``:
    ``out[k] = (Phi(Q_{I+1/2}) - Phi(Q_{I-1/2})) / w_I`` for ``I = idx[k]``, with zero flux
    beyond the outermost cells (:func:`_interface_flux`; ``w`` and ``s`` in position order).
    ``Phi[j - off]`` is the flux of sorted element j: target I reads elements I - 2 .. I + 2
    (:meth:`FluidFields1D.divergence_range`), so a rank needs only those."""
    N = s.shape[0]
    C = Phi.shape[1]
    right = np.zeros(C)
    left = np.zeros(C)
    for k in range(idx.shape[0]):
        I = idx[k]
        if I < N - 1:
            _interface_flux(Phi, off, s, s_if, ph, ph_if, I, right)
        else:
            right[:] = 0.0
        if I > 0:
            _interface_flux(Phi, off, s, s_if, ph, ph_if, I - 1, left)
        else:
            left[:] = 0.0
        for c in range(C):
            out[k, c] = (right[c] - left[c]) / w[I]


@njit(parallel=True, cache=True)
def _derivative_rows(st, x1, ss, vs, xs, xt, ws, cut, P, low, T, win_lo, win_hi, width, J0,
                     ptr, cols, vals, diag):
    """The first x-derivative of the rho fits of :func:`_fit_all` as a linear operator.

    The fit of a rho column at target t is linear in the sources: its derivative is
    ``sum_J a_tJ (Y_J - Y_t)`` with ``a_tJ = wt_J (L_J . z) / (h x_s)``, ``z = G^{-1} T[:, 1]``
    the Gram solve of the unit first-derivative functional (blended with the low-degree fit
    exactly as :func:`_solve_blended`), ``x_s = x1[t]`` the fitted ``dx/ds``. Row t is stored
    in ``vals[ptr[t]:ptr[t + 1]]`` over the global source indices ``cols``; ``diag[t] =
    -sum_J a_tJ`` is the coefficient of the target's own value. Positions only: a rank can
    build the rows of any target from the all-gathered positions. NaN row if a Gram matrix is
    singular (as the fit)."""
    M = st.shape[0]
    PL = min(low, P - 1) + 1
    for t in prange(M):
        G = np.empty((P, P))
        GL = np.empty((PL, PL))
        z = np.empty((P, 1))
        zl = np.empty((PL, 1))
        L = np.empty(P)
        L1 = np.empty(P)
        L2 = np.empty(P)
        sig = width[t]
        lo = win_lo[t] - J0
        hi = win_hi[t] - J0
        h = max(st[t] - ss[lo], ss[hi] - st[t], 1e-300)
        for a in range(P):
            for b in range(P):
                G[a, b] = 0.0
        wl = 0.0
        wr = 0.0
        for J in range(lo, hi + 1):
            wt, dxj = _source(J, xt[t], st[t], xs, ss, vs, ws, sig, cut, h, P, L, L1, L2)
            if wt == 0.0:
                continue
            if dxj < 0.0:
                wl += wt
            elif dxj > 0.0:
                wr += wt
            _gram_add(G, L, wt, P)
        _symmetrize(G, P)
        for a in range(PL):
            for b in range(PL):
                GL[a, b] = G[a, b]
        for a in range(P):
            z[a, 0] = T[a, 1]
        for a in range(PL):
            zl[a, 0] = T[a, 1]
        beta = _blend_factor(wl, wr)
        ok = True
        if beta > 0.0:
            ok = _cholesky_solve(G, z, P, 1)
        if beta < 1.0:
            ok = ok and _cholesky_solve(GL, zl, PL, 1)
        scale = 1.0 / (h * x1[t])
        total = 0.0
        k = ptr[t]
        for J in range(lo, hi + 1):
            cols[k] = J + J0
            wt, _ = _source(J, xt[t], st[t], xs, ss, vs, ws, sig, cut, h, P, L, L1, L2)
            v = 0.0
            if wt != 0.0 and ok:
                if beta > 0.0:
                    for a in range(P):
                        v += beta * L[a] * z[a, 0]
                if beta < 1.0:
                    for a in range(PL):
                        v += (1.0 - beta) * L[a] * zl[a, 0]
                v *= wt * scale
            elif not ok:
                v = np.nan
            vals[k] = v
            total += v
            k += 1
        diag[t] = -total


@njit(parallel=True, cache=True)
def _apply_rows(ptr, cols, vals, diag, Ysrc, J0, Yt, out):
    """``out[t] = sum_k vals[k] Ysrc[cols[k] - J0] + diag[t] Yt[t]`` (rows of
    :func:`_derivative_rows`; all columns of the values)."""
    M, C = Yt.shape
    for t in prange(M):
        for c in range(C):
            out[t, c] = diag[t] * Yt[t, c]
        for k in range(ptr[t], ptr[t + 1]):
            a = vals[k]
            J = cols[k] - J0
            for c in range(C):
                out[t, c] += a * Ysrc[J, c]


@njit(cache=True)
def _scatter_rows(ptr, cols, vals, Y, J0, out):
    """Transpose of :func:`_apply_rows` without its diagonal: ``out[cols[k] - J0] += vals[k]
    Y[t]``, the rows t taken in ascending order (so that a rank holding only the rows that
    reach its sources adds the same terms in the same order as one holding all)."""
    M, C = Y.shape
    for t in range(M):
        for k in range(ptr[t], ptr[t + 1]):
            a = vals[k]
            J = cols[k] - J0
            for c in range(C):
                out[J, c] += a * Y[t, c]


def _bin_layout(s, x, w, width):
    """The label bins ``floor(s / width)`` of the sorted elements (labels s, positions x,
    weights w; width <= 0: every element its own bin): ``(starts, ss, vs, xsrc, wsrc)`` with
    ``starts`` the first element of every bin (None when every element is its own bin), the
    bins' mean labels, the variance of the label within each bin (for the exact bin mean of the
    fit basis, :func:`_legendre_binned`), mean positions and summed weights. Positions and
    weights only: every rank finds all bins from the all-gathered positions."""
    zero = np.zeros_like(s)
    if width <= 0:
        return None, s, zero, x, w
    b = np.floor(s / width).astype(np.int64)
    starts = np.concatenate([[0], np.nonzero(np.diff(b))[0] + 1])
    if starts.size == s.size:
        return None, s, zero, x, w
    wsum = np.add.reduceat(w, starts)
    sbar = _bin_mean(s[:, None], w, starts, wsum)[:, 0]
    dev = s - np.repeat(sbar, np.diff(np.concatenate([starts, [s.size]])))
    var = _bin_mean((dev * dev)[:, None], w, starts, wsum)[:, 0]
    return (starts, np.ascontiguousarray(sbar), np.ascontiguousarray(var),
            np.ascontiguousarray(_bin_mean(x[:, None], w, starts, wsum)[:, 0]),
            np.ascontiguousarray(wsum))


def _bin_mean(a, w, starts, wsum):
    """Weighted means of the rows of ``a`` (sorted elements, weights w) over the bins starting
    at ``starts``, divided by the bins' summed weights ``wsum``."""
    return np.add.reduceat(w[:, None] * a, starts, axis=0) / wsum[:, None]


def cell_labels(w):
    """Gaussian labels of the cells of weights ``w`` (sorted, positive): the centroid label of
    every cell and the labels of the N - 1 interfaces (see :meth:`FluidFields1D.labels`).

    Round-off matters (the fourth derivatives of x(s) are taken): each interface comes from the
    nearer end of the swarm (``1 - Q`` by subtraction would lose digits near Q = 1), and the
    centroid uses ``phi(a) - phi(b) = 2 phi(m) exp(-h^2/2) sinh(m h)`` (``m, h`` the cell's
    midpoint and half-width) instead of the difference of two nearly equal numbers.
    """
    w = np.asarray(w, dtype=np.float64)
    N = w.size
    if np.all(w == w[0]):
        lo = np.arange(1, N) / N
        hi = (N - np.arange(1, N)) / N
        ww = np.full(N, 1.0 / N)
    else:
        ww = w / math.fsum(w)
        lo = np.cumsum(ww)[:-1]
        hi = np.cumsum(ww[::-1])[::-1][1:]
    s_iface = np.where(lo <= 0.5, scipy.special.ndtri(lo), -scipy.special.ndtri(hi))
    a = np.concatenate([[-np.inf], s_iface])
    b = np.concatenate([s_iface, [np.inf]])
    s_elem = np.empty(N)
    inner = np.isfinite(a) & np.isfinite(b)
    m, h = 0.5 * (a[inner] + b[inner]), 0.5 * (b[inner] - a[inner])
    phi_m = np.exp(-0.5 * m * m) / math.sqrt(2.0 * math.pi)
    s_elem[inner] = 2.0 * phi_m * np.exp(-0.5 * h * h) * np.sinh(m * h) / ww[inner]
    phi = lambda z: np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)   # noqa: E731
    if N > 1:
        s_elem[0] = -phi(b[0]) / ww[0]
        s_elem[-1] = phi(a[-1]) / ww[-1]
    else:
        s_elem[0] = 0.0
    return s_elem, s_iface


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
        """Labels of the sorted elements: ``(s_elem (N,), s_iface (N-1,))`` (cached).

        Element I is the cell of the mass coordinate between ``Q_{I-1/2} = sum_{J<I} w_J`` and
        ``Q_{I+1/2}``; its interfaces have labels ``Phi^{-1}(Q)`` and the element sits at the
        cell's centroid, whose label is ``E[s | cell] = (phi(a) - phi(b)) / w`` (module
        docstring, "Cells").
        """
        c = self._s_cache
        if c is not None and c[0].shape == w_sorted.shape and np.array_equal(c[0], w_sorted):
            return c[1], c[2]
        s_elem, s_iface = cell_labels(w_sorted)
        self._s_cache = (w_sorted.copy(), s_elem, s_iface)
        return s_elem, s_iface

    def geometry(self, x, weights=None):
        """What the fits need from the positions alone (bohr, (N, 1); weights (N,) or None):
        a :class:`FluidGeometry` (position order, labels, label bins). Under MPI every rank
        computes it from the all-gathered positions (D numbers per element)."""
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
        s, s_if = self.labels(ws)
        inv = np.empty(N, dtype=np.int64)
        inv[order] = np.arange(N)
        starts, ss, vs, xsrc, wsrc = _bin_layout(s, xs, ws, o.bin_width)
        return FluidGeometry(w, order, inv, xs, ws, s, s_if, starts, ss, vs, xsrc, wsrc)

    def windows(self, g, targets):
        """Source windows of the sorted elements ``targets`` (int (M,)): ``(lo, hi, width,
        e0, e1)``, the source (bin) indices and fit widths of every target and the range
        ``e0 .. e1 - 1`` of sorted elements whose values the fits read."""
        o = self.opts
        M = targets.shape[0]
        lo, hi = np.empty(M, np.int64), np.empty(M, np.int64)
        width = np.empty(M)
        Pmax = max(o.density_degree, o.rho_degree) + 1
        _fit_windows(np.ascontiguousarray(g.xs[targets]), g.xsrc, float(o.window), float(o.cut),
                     Pmax + 2, lo, hi, width)
        if M == 0:
            return lo, hi, width, 0, 0
        J0, J1 = int(lo.min()), int(hi.max())
        if g.starts is None:
            return lo, hi, width, J0, J1 + 1
        N = g.xs.size
        return lo, hi, width, int(g.starts[J0]), int(g.starts[J1 + 1]) if J1 + 1 < g.starts.size \
            else N

    @staticmethod
    def sources(g, e0, e1):
        """The label bins that hold the sorted elements ``e0 .. e1 - 1`` (whole bins, as
        :meth:`windows` returns them): ``(J0, J1)``, bins ``J0 .. J1 - 1``."""
        if g.starts is None:
            return e0, e1
        return int(np.searchsorted(g.starts, e0)), int(np.searchsorted(g.starts, e1))

    def derivative_rows(self, g, targets, win, x1):
        """The first x-derivative of the rho fits at the sorted elements ``targets`` as a
        linear operator on the sources (:func:`_derivative_rows`): ``(ptr, cols, vals, diag)``
        in CSR layout over the global bin indices (bohr^-1)."""
        o = self.opts
        lo, hi, width, e0, e1 = win
        J0, J1 = self.sources(g, e0, e1)
        ptr = np.zeros(targets.shape[0] + 1, np.int64)
        np.cumsum(hi - lo + 1, out=ptr[1:])
        cols = np.empty(int(ptr[-1]), np.int64)
        vals = np.empty(int(ptr[-1]))
        diag = np.empty(targets.shape[0])
        Pr = o.rho_degree + 1
        _derivative_rows(np.ascontiguousarray(g.s[targets]), np.ascontiguousarray(x1),
                         np.ascontiguousarray(g.ss[J0:J1]), np.ascontiguousarray(g.vs[J0:J1]),
                         np.ascontiguousarray(g.xsrc[J0:J1]),
                         np.ascontiguousarray(g.xs[targets]),
                         np.ascontiguousarray(g.wsrc[J0:J1]), float(o.cut), Pr,
                         int(o.edge_degree), self._table(Pr), lo, hi, width, J0, ptr, cols,
                         vals, diag)
        return ptr, cols, vals, diag

    def adjoint_correction(self, g, targets, x1, Rsub, e0, own, xi):
        """The variational electronic correction of the combined rung at the sorted elements
        ``own`` (docs/theory/fields.md, "Adjoint correction"),

            G_K = (xi / 2) (W^-1 D^T W D R)_K,

        with D the first x-derivative of the local rho fits (:meth:`derivative_rows`), W the
        element weights and R the elements' density matrices: the gradient of the discrete
        geometric energy ``E = sum_I w_I (xi/4) Tr((D R)_I^2)``, so that ``-i[G, rho]``
        conserves E (and ``sum_I w_I rho_I``) exactly at fixed positions. Its continuum limit
        is MB(67), ``-(1/2n) d_x(n xi d_x rho)``.

        Parameters
        ----------
        g : the :class:`FluidGeometry`.
        targets : int (M,), ascending: every sorted element whose fit window reaches a bin of
            ``own`` (all elements in serial).
        x1 : (M,) fitted ``dx/ds`` at the targets (bohr).
        Rsub : (e1 - e0, C) real values (the real view of rho) of the sorted elements
            ``e0 .. e1 - 1``, a range holding the targets and their windows.
        own : int (K,) sorted elements where G is wanted (each also in ``targets``).
        xi : inverse nuclear mass (1/m_e).

        Returns
        -------
        (K, C) real values of G (hartree) at ``own``, and (M, C) ``D R`` at the targets.
        """
        win = self.windows(g, targets)
        lo, hi, width, w0, w1 = win
        ptr, cols, vals, diag = self.derivative_rows(g, targets, win, x1)
        J0, J1 = self.sources(g, w0, w1)
        Rt = np.ascontiguousarray(Rsub[targets - e0])
        src = Rsub[w0 - e0:w1 - e0]
        if g.starts is not None:
            src = _bin_mean(src, g.ws[w0:w1], g.starts[J0:J1] - w0, g.wsrc[J0:J1])
        X = np.empty_like(Rt)
        _apply_rows(ptr, cols, vals, diag, np.ascontiguousarray(src), J0, Rt, X)
        if g.starts is None:
            bown = own
        else:
            bown = np.searchsorted(g.starts, own, side="right") - 1
        B0 = min(J0, int(bown.min()))
        B1 = max(J1, int(bown.max()) + 1)
        Z = np.zeros((B1 - B0, Rt.shape[1]))
        _scatter_rows(ptr, cols, vals, np.ascontiguousarray(g.ws[targets][:, None] * X), B0, Z)
        k = np.searchsorted(targets, own)
        G = 0.5 * xi * (Z[bown - B0] / g.wsrc[bown][:, None] + diag[k][:, None] * X[k])
        return G, X

    def fit(self, g, targets, Yt, Ysub, win, nd):
        """Local fits at the sorted elements ``targets`` (:func:`_fit_all`), ``(M, C, 5)``.

        ``Yt`` (M, C): the targets' values (column 0 the position, then ``nd - 1`` velocity
        columns, then packed rho); ``Ysub``: the values of the sorted elements ``e0 .. e1 - 1``
        of ``win`` (:meth:`windows`) in position order."""
        o = self.opts
        lo, hi, width, e0, e1 = win
        M, C = Yt.shape
        if g.starts is None:
            J0 = e0
            ss, vs, xsrc = g.ss[e0:e1], g.vs[e0:e1], g.xsrc[e0:e1]
            Ysrc, wsrc = Ysub, g.wsrc[e0:e1]
        else:
            J0 = int(np.searchsorted(g.starts, e0))
            J1 = int(np.searchsorted(g.starts, e1))
            wsrc = g.wsrc[J0:J1]
            Ysrc = _bin_mean(Ysub, g.ws[e0:e1], g.starts[J0:J1] - e0, wsrc)
            ss, vs, xsrc = g.ss[J0:J1], g.vs[J0:J1], g.xsrc[J0:J1]
        out = np.empty((M, C, 5))
        Pd, Pr = o.density_degree + 1, o.rho_degree + 1
        _fit_all(np.ascontiguousarray(g.s[targets]), np.ascontiguousarray(Yt),
                 np.ascontiguousarray(ss), np.ascontiguousarray(vs), np.ascontiguousarray(xsrc),
                 np.ascontiguousarray(Ysrc), np.ascontiguousarray(wsrc), nd, float(o.cut), Pd,
                 Pr, int(o.edge_degree), self._table(max(Pd, Pr)), lo, hi, width, J0, out)
        return out

    @staticmethod
    def values(x, rho, velocity):
        """Fitted columns of elements, ``(rows, C)``: position, velocity (if given), packed rho
        (if given); and ``nd``, the number of columns before rho."""
        cols = [np.asarray(x, float)[:, :1]]
        if velocity is not None:
            cols.append(np.asarray(velocity, float).reshape(-1, 1))
        nd = len(cols)
        if rho is not None:
            cols.append(pack_hermitian(np.asarray(rho, dtype=np.complex128)))
        return np.ascontiguousarray(np.concatenate(cols, axis=1)), nd

    def fields_at(self, g, targets, fit, Yt, rho_t, need, nd):
        """:class:`mqcd.fields.FieldEstimate` at the sorted elements ``targets`` (in the
        targets' order) from their fits (:meth:`fit`), values ``Yt`` and density matrices."""
        o = self.opts
        s = g.s[targets]
        der = fit[:, 0]
        x1, x2, x3, x4 = der[:, 1], der[:, 2], der[:, 3], der[:, 4]
        r2 = x2 / x1
        Ls = -s - r2
        Lss = -1.0 - x3 / x1 + r2 * r2
        Lsss = -x4 / x1 + 3.0 * r2 * x3 / x1 - 2.0 * r2 ** 3
        Lx = Ls / x1
        Lxx = (Lss - Lx * x2) / x1 ** 2
        Lxxx = (Lsss - 3.0 * Lxx * x1 * x2 - Lx * x3) / x1 ** 3
        f = FieldEstimate(method="fluid", method_reason=f"fluid elements (ordered, 1D; "
                          f"{g.wsrc.size} label bins)")
        f.n = np.exp(-0.5 * s * s) / math.sqrt(2.0 * math.pi) / x1
        f.dlogn = Lx[:, None]
        f.d2logn = Lxx[:, None, None]
        f.d3logn = Lxxx[:, None, None, None]
        f.weights = g.w
        f.extra["x_s"] = x1
        f.h_density = np.array([float(o.window)])
        f.h_regression = np.array([float(o.window)])
        if nd > 1:
            f.extra["velocity_smooth"] = Yt[:, 1] + fit[:, 1, 0]
        if rho_t is not None:
            M = targets.shape[0]
            ns = rho_t.shape[1]
            drho = np.empty((M, ns, ns), np.complex128)
            d2rho = np.empty((M, ns, ns), np.complex128)
            _rho_derivatives(np.ascontiguousarray(fit[:, nd:, :]), np.ascontiguousarray(x1),
                             np.ascontiguousarray(x2), ns, drho, d2rho)
            if o.project:
                _project_all(np.ascontiguousarray(rho_t), drho, d2rho)
            f.rho = np.asarray(rho_t)
            f.drho = drho[:, None]
            f.d2rho = d2rho[:, None, None] if "rho2" in need else None
        return f

    def estimate(self, x, rho=None, weights=None, need=("density", "logn3", "rho2"),
                 velocity=None):
        """Fields at the elements.

        Parameters
        ----------
        x : (N, 1) positions (bohr); rho : (N, ns, ns) complex or None;
        weights : (N,) positive weights (normalised here) or None (equal);
        need : tokens as for :func:`mqcd.fields.estimate_fields`;
        velocity : (N,) element velocities (bohr / a.u. time) or None: with it, the smooth
            velocity field at the elements (the same local fits) is returned in
            ``f.extra["velocity_smooth"]`` (used to damp grid-scale noise, :class:`FluidEstimator`).

        Returns
        -------
        :class:`mqcd.fields.FieldEstimate` in the input order, with ``rho`` the elements' own
        density matrices; ``method = "fluid"``. The geometry is kept for :meth:`divergence`.
        """
        g = self.geometry(x, weights)
        need = set(need)
        wants_rho = "rho" in need or "rho2" in need
        if wants_rho and rho is None:
            raise ValueError("rho is required for need 'rho'/'rho2'")
        Y, nd = self.values(x, rho if wants_rho else None, velocity)
        targets = g.inv                                  # every element, in row order
        win = self.windows(g, targets)
        fit = self.fit(g, targets, Y, Y[g.order[win[3]:win[4]]], win, nd)
        f = self.fields_at(g, targets, fit, Y, rho if wants_rho else None, need, nd)
        f.extra["fit_width"] = win[2]
        self.geom = g
        return f

    def divergence(self, f, G, g=None, targets=None, Phi=None, off=0):
        """Conservative ``(1/n) d_x (n G)`` at the elements (module docstring).

        Parameters
        ----------
        f : the :class:`FieldEstimate` of the last :meth:`estimate` call (same elements).
        G : (N, 1, K) per-element field (its flux divided by n), e.g. ``g / M``.
        g, targets, Phi, off : for a part of the swarm (:class:`FluidEstimator` under MPI): the
            geometry, the sorted elements to evaluate and the fluxes ``n G`` of the sorted
            elements ``off, off + 1, ..`` (:meth:`divergence_range`).

        Returns ``(N, K)`` (or one row per target); ``sum_I w_I out_I = 0`` to round-off.
        """
        if g is None:
            g = self.geom
            targets = g.inv
            Phi = np.ascontiguousarray((f.n[:, None] * np.asarray(G, np.float64)[:, 0, :])[g.order])
        out = np.empty((targets.shape[0], Phi.shape[1]))
        if g.gauss is None:
            g.gauss = (_gauss(g.s), _gauss(g.s_if))
        _divergence_at(np.ascontiguousarray(Phi), int(off), g.ws, g.s, g.s_if, g.gauss[0],
                       g.gauss[1], np.ascontiguousarray(targets), out)
        return out

    @staticmethod
    def divergence_range(g, targets):
        """The sorted elements ``d0 .. d1 - 1`` whose fluxes the divergence at ``targets`` reads
        (two on either side)."""
        if targets.size == 0:
            return 0, 0
        return max(int(targets.min()) - 2, 0), min(int(targets.max()) + 3, g.s.size)


@dataclass
class FluidGeometry:
    """Positions-only part of a fluid-element estimate (:meth:`FluidFields1D.geometry`): the
    normalised weights ``w`` (row order), ``order`` (rows in position order) and its inverse
    ``inv``, sorted positions ``xs`` and weights ``ws``, the labels ``s`` of the elements and
    ``s_if`` of their interfaces, and the label bins (``starts`` or None, mean labels ``ss``,
    label variances ``vs``, mean positions ``xsrc``, summed weights ``wsrc``)."""

    w: np.ndarray
    order: np.ndarray
    inv: np.ndarray
    xs: np.ndarray
    ws: np.ndarray
    s: np.ndarray
    s_if: np.ndarray
    starts: object
    ss: np.ndarray
    vs: np.ndarray
    xsrc: np.ndarray
    wsrc: np.ndarray
    #: ``phi(s)`` and ``phi(s_if)`` (:func:`_gauss`), made by the first divergence
    gauss: object = None


# --------------------------------------------------------------------------- the estimator
from .base import SwarmEstimator  # noqa: E402


def fluid_options(opts):
    """:class:`FluidOptions` from a method's deck options (``fluid_*`` keys)."""
    d = FluidOptions()
    return FluidOptions(window=opts.get("fluid_window", d.window),
                        density_degree=opts.get("fluid_degree", d.density_degree),
                        rho_degree=opts.get("fluid_rho_degree", d.rho_degree),
                        bin_width=opts.get("fluid_bin", d.bin_width))


class FluidEstimator(SwarmEstimator):
    """``field_method = "fluid"``: :class:`FluidFields1D` behind the common interface.

    Under MPI the positions are all-gathered (one number per element): every rank finds the
    position order, labels, label bins and the windows of its own elements from them. The
    fitted values (position, velocity, packed rho) of the elements inside its windows come from
    their owners in one ``Alltoallv``; the fits and fields are evaluated only at the rank's own
    elements, and the conservative divergence from the all-gathered fluxes ``n G`` (K numbers
    per element). Bit-for-bit serial: every fit reads the same sources in the same order. For
    fluid elements (hydrodynamic sampling: rows in position order, which they keep) a rank
    receives its own block plus a halo of the window's width; a Wigner-ordered swarm would
    receive nearly everything.
    """

    name = "fluid"
    has_divergence = True
    #: the combined electronic correction MB(67) is taken in flux form (mqcd/methods/ladder.py)
    electronic_flux = True

    def __init__(self, opts, model, deck, comm, need, conservative=False):
        super().__init__(opts, model, deck, comm, need, conservative)
        if model.ndof != 1:
            raise ValueError(f"field_method = 'fluid' is one-dimensional; model '{model.name}' "
                             f"has {model.ndof} nuclear degrees of freedom")
        self.fields = FluidFields1D(fluid_options(opts))
        self.damping = float(opts.get("fluid_damping", 0.0))
        self.correction_form = str(opts.get("fluid_correction", "adjoint"))
        self._geom = self._targets = self._ends = None

    def estimate(self, sw, need=None):
        need = self.need if need is None else tuple(need)
        comm = self.comm
        wants_rho = any(t.startswith("rho") for t in need)
        vel = sw.p[:, 0] / self.masses[0] if self.damping > 0 else None
        Yl, nd = self.fields.values(sw.x, sw.rho if wants_rho else None, vel)
        x_all = comm.allgather_rows(np.ascontiguousarray(sw.x[:, :1]))
        g = self.fields.geometry(x_all)
        counts = comm.allgather_rows(np.array([sw.ntraj], np.int64)) if comm.size > 1 else None
        self._ends = None if counts is None else np.cumsum(counts)
        lo = 0 if counts is None else int(self._ends[comm.rank] - sw.ntraj)
        targets = np.ascontiguousarray(g.inv[lo:lo + sw.ntraj])
        win = self.fields.windows(g, targets)
        Ysub = self._halo(g, win[3], win[4], Yl)
        fit = self.fields.fit(g, targets, Yl, Ysub, win, nd)
        f = self.fields.fields_at(g, targets, fit, Yl, sw.rho if wants_rho else None,
                                  set(need), nd)
        f.extra["fit_width"] = win[2]
        f.masses = self.masses
        self._geom, self._targets = g, targets
        self.last = f
        return f

    def _halo(self, g, e0, e1, Yl):
        """Values of the sorted elements ``e0 .. e1 - 1`` (position order) from their owners,
        ``Yl`` this rank's rows: every rank announces its range (one small all-gather), the
        owners send the rows they hold (one ``Alltoallv``)."""
        comm = self.comm
        rows = g.order[e0:e1]
        if comm.size == 1:
            return Yl[rows]
        C = Yl.shape[1]
        ends = self._ends
        hi = int(ends[comm.rank])
        lo = hi - Yl.shape[0]
        ranges = comm.allgather_rows(np.array([[e0, e1]], np.int64))
        held = np.sort(g.inv[lo:hi])                    # sorted indices of this rank's rows
        blocks = []
        for q in range(comm.size):
            a, b = np.searchsorted(held, ranges[q])
            blocks.append(Yl[g.order[held[a:b]] - lo] if q != comm.rank else np.zeros((0, C)))
        owner = np.searchsorted(ends, rows, side="right")
        sizes = [int(np.count_nonzero(owner == q)) * C if q != comm.rank else 0
                 for q in range(comm.size)]
        got = comm.alltoall_blocks(blocks, sizes)
        out = np.empty((rows.size, C))
        for q in range(comm.size):
            sel = owner == q
            out[sel] = Yl[rows[sel] - lo] if q == comm.rank else got[q].reshape(-1, C)
        return out

    def extra_force(self, sw, f):
        """Damping of the element velocities' grid-scale part (hartree/bohr, (N_local, 1)).

        ``F_I = -gamma M (v_I - v^_I)`` with ``v^`` the smooth velocity field (the same local
        fits as the fields, :meth:`FluidFields1D.estimate`), minus its swarm mean so that the
        total momentum is unchanged. Smooth flows (which the fits reproduce) are not damped; the
        near-spacing modes that the fits let through with a response of either sign (~1e-6 of
        the physical one, but multiplied by the quantum force's k^4) are, at rate ``gamma``.
        """
        if self.damping <= 0:
            return None
        vs = self.last.extra["velocity_smooth"]
        M = self.masses[0]
        F = -self.damping * M * (sw.p[:, 0] / M - vs)
        mean = self.comm.sum_rows(F[:, None])[0] / max(self.comm.sum_rows(
            np.ones((sw.ntraj, 1)))[0], 1.0)
        return (F - mean)[:, None]

    def divergence(self, f, G):
        """Flux-form divergence at this rank's elements; the fluxes ``n G`` of the sorted
        elements next to them come from their owners (:meth:`_halo`)."""
        g, targets = self._geom, self._targets
        Phi = np.ascontiguousarray(f.n[:, None] * np.asarray(G, np.float64)[:, 0, :])
        d0, d1 = self.fields.divergence_range(g, targets)
        Phi_s = self._halo(g, d0, d1, Phi)
        return self.fields.divergence(f, G, g=g, targets=targets, Phi=Phi_s, off=d0)

    def electronic_correction(self, f, xi, rho):
        """The combined rung's electronic correction MB(67) at this rank's elements (hartree,
        (N_local, ns, ns) Hermitian) in the variational form
        (:meth:`FluidFields1D.adjoint_correction`), or None for ``fluid_correction = "flux"``
        (the caller then takes the flux-form divergence).

        Under MPI a rank evaluates the rows of D at every element whose fit window reaches one
        of its own bins (found from the all-gathered positions) and receives the density
        matrices of their windows from the owners (:meth:`_halo`); the transpose adds the same
        terms in the same order as in serial, so the result is bit-for-bit the serial one."""
        if self.correction_form != "adjoint":
            return None
        g, own = self._geom, self._targets
        fields, comm = self.fields, self.comm
        N = g.xs.size
        n, ns, _ = rho.shape
        R = np.ascontiguousarray(rho).view(np.float64).reshape(n, 2 * ns * ns)
        x1_own = np.asarray(f.extra["x_s"], np.float64)
        if comm.size == 1:
            targets = np.arange(N)
            x1 = np.empty(N)
            x1[own] = x1_own
            Rsub = np.empty_like(R)
            Rsub[own] = R
            e0 = 0
        else:
            every = np.arange(N)
            lo, hi, _, _, _ = fields.windows(g, every)
            nb = g.wsrc.size
            mark = np.zeros(nb + 1, np.int64)
            b_own = own if g.starts is None else np.searchsorted(g.starts, own, "right") - 1
            mark[b_own + 1] = 1
            cnt = np.cumsum(mark)
            reach = cnt[hi + 1] - cnt[lo] > 0
            reach[own] = True
            targets = np.nonzero(reach)[0]
            win = fields.windows(g, targets)
            e0 = min(win[3], int(targets[0])) if targets.size else 0
            e1 = max(win[4], int(targets[-1]) + 1) if targets.size else 0
            Rsub = self._halo(g, e0, e1, R)
            x1 = np.empty(targets.size)
            mine = np.zeros(N, bool)
            mine[own] = True
            k_own = np.searchsorted(targets, own)
            x1[k_own] = x1_own
            other = ~mine[targets]
            if np.any(other):
                t_o = np.ascontiguousarray(targets[other])
                w_o = fields.windows(g, t_o)
                fit = fields.fit(g, t_o, g.xs[t_o][:, None], g.xs[w_o[3]:w_o[4]][:, None],
                                 w_o, 1)
                x1[other] = fit[:, 0, 1]
        G, _ = fields.adjoint_correction(g, targets, x1, Rsub, e0, np.sort(own), xi)
        order = np.argsort(own, kind="stable")
        out = np.empty_like(G)
        out[order] = G
        return np.ascontiguousarray(out).view(np.complex128).reshape(n, ns, ns)
