"""Surface-hopping parts: active-surface force, hop probabilities, momentum adjustment.

Hop probability over a step (gauge invariant, robust at trivial crossings)
---------------------------------------------------------------------------
The density matrix is propagated exactly in the diabatic basis, so the adiabatic populations
P_n = <n|rho|n> at both ends of the step are exact and do not depend on eigenvector phases
(they are expectation values of projectors). Their change over the step is the integral of the
fewest-switches flux, dP_n/dt = sum_m 2 Re(rho_nm <m|n_dot>) = -sum_m 2 Re(rho_mn d_nm . v) (plus,
for the coupled methods, -i Tr(|n><n| [G, rho]) of the correction G). The hop probability out of
the active state a is

    g_a = max(0, P_a(t) - P_a(t+dt)) / P_a(t)       (capped at 1)

and the target b is chosen with weight proportional to its gain max(0, P_b(t+dt) - P_b(t)).
For two states this is Tully's fewest-switches probability integrated exactly over the step; for
more states it is the global-flux (GFSH) distribution of Wang, Trivedi and Prezhdo, JCTC 10, 3598
(2014). Because states are ordered by energy, a trivial (unavoided) crossing appears as a complete
population swap between neighbouring labels within one step, and the active state follows the
diabatic character with probability 1 (no substepping or overlap tracking needed).

Momentum adjustment after an accepted hop a -> b conserves E_kin + E_active at the end of the
step: along the derivative coupling d_ab (``rescale = "nac"``; where d_ab vanishes, e.g. an exact
trivial crossing, along p), or along p (``"velocity"``). If the kinetic energy along that direction
is insufficient the hop is frustrated: ``keep`` the momentum, ``reverse`` its component along d_ab,
or ``reverse_if_gradient`` (Jasper and Truhlar: reverse only if (F_b . d)(v . d) < 0).
"""
import numpy as np
from numba import njit

FRUSTRATED = {"keep": 0, "reverse": 1, "reverse_if_gradient": 2}
RESCALE = {"nac": 0, "velocity": 1}


@njit(cache=True)
def _active_force_row(dH, V, active, F, i):
    D, ns = dH.shape[1], dH.shape[2]
    a = active[i]
    if ns == 2:
        v0 = V[i, 0, a]
        v1 = V[i, 1, a]
        w0 = abs(v0) * abs(v0)
        w1 = abs(v1) * abs(v1)
        c = 2.0 * np.conj(v1) * v0          # 2 Re(conj(v1) dH10 v0) = Re(c dH10)
        cr, ci = c.real, c.imag
        for k in range(D):
            h = dH[i, k, 1, 0]
            F[i, k] = -(dH[i, k, 0, 0].real * w0 + dH[i, k, 1, 1].real * w1
                        + cr * h.real - ci * h.imag)
        return
    for k in range(D):
        acc = 0.0
        for p in range(ns):
            vp = np.conj(V[i, p, a])
            for q in range(ns):
                acc += (vp * dH[i, k, p, q] * V[i, q, a]).real
        F[i, k] = -acc


@njit(cache=True)
def active_force(dH, V, active, F):
    """F_k = -<a|d_k H|a> for the active state a of each trajectory (hartree/bohr)."""
    for i in range(dH.shape[0]):
        _active_force_row(dH, V, active, F, i)
    return F


@njit(cache=True)
def active_force_rows(dH, V, active, F, rows):
    """:func:`active_force` for the trajectories ``rows`` only (after hops)."""
    for i in rows:
        _active_force_row(dH, V, active, F, i)
    return F


@njit(cache=True)
def active_energy(E, active):
    out = np.empty(E.shape[0])
    for i in range(E.shape[0]):
        out[i] = E[i, active[i]]
    return out


@njit(cache=True)
def choose_hops(P0, P1, active, u, target):
    """Target state per trajectory (-1: no hop) from populations before (P0) and after (P1)."""
    n, ns = P0.shape
    nhop = 0
    for i in range(n):
        a = active[i]
        target[i] = -1
        loss = P0[i, a] - P1[i, a]
        if loss <= 0.0 or P0[i, a] <= 0.0:
            continue
        g = min(loss / P0[i, a], 1.0)
        if u[i] >= g:
            continue
        gain_sum = 0.0
        for b in range(ns):
            if b != a:
                gain_sum += max(P1[i, b] - P0[i, b], 0.0)
        if gain_sum <= 0.0:
            continue
        cum = 0.0
        thr = u[i] / g * gain_sum
        for b in range(ns):
            if b == a:
                continue
            cum += max(P1[i, b] - P0[i, b], 0.0)
            if thr < cum:
                target[i] = b
                nhop += 1
                break
    return nhop


@njit(cache=True)
def _direction(dH, E, V, i, a, b, d):
    """Real direction of the derivative coupling d_ab at trajectory i (phase removed)."""
    D, ns = dH.shape[1], dH.shape[2]
    gap = E[i, b] - E[i, a]
    best = 0.0
    ph = 1.0 + 0.0j
    tmp = np.empty(D, dtype=np.complex128)
    for k in range(D):
        acc = 0.0j
        for p in range(ns):
            for q in range(ns):
                acc += np.conj(V[i, p, a]) * dH[i, k, p, q] * V[i, q, b]
        tmp[k] = acc / gap if gap != 0.0 else 0.0j
        if abs(tmp[k]) > best:
            best = abs(tmp[k])
            ph = tmp[k] / abs(tmp[k])
    for k in range(D):
        d[k] = (tmp[k] * np.conj(ph)).real
    return best


@njit(cache=True)
def adjust_momenta(target, active, p, masses, E, V, dH, rescale, frustrated, accepted, frust):
    """Apply accepted hops (update active, p) and frustrated-hop policies. Returns counts."""
    n, D = p.shape
    d = np.empty(D)
    nacc = 0
    nfr = 0
    for i in range(n):
        b = target[i]
        accepted[i] = False
        frust[i] = False
        if b < 0:
            continue
        a = active[i]
        norm = 0.0
        if rescale == 0:
            norm = _direction(dH, E, V, i, a, b, d)
        if rescale == 1 or norm == 0.0:
            for k in range(D):
                d[k] = p[i, k]
        A = 0.0
        B = 0.0
        for k in range(D):
            A += 0.5 * d[k] * d[k] / masses[k]
            B += p[i, k] * d[k] / masses[k]
        C = E[i, b] - E[i, a]
        disc = B * B - 4.0 * A * C
        if A > 0.0 and disc >= 0.0:
            sq = np.sqrt(disc)
            gamma = (-B + sq) / (2.0 * A) if B >= 0.0 else (-B - sq) / (2.0 * A)  # smaller |gamma|
            for k in range(D):
                p[i, k] += gamma * d[k]
            active[i] = b
            accepted[i] = True
            nacc += 1
        else:
            frust[i] = True
            nfr += 1
            rev = frustrated == 1
            if frustrated == 2:
                # target-surface force along d times velocity along d (Jasper-Truhlar)
                fd = 0.0
                for k in range(D):
                    g = 0.0
                    for pp in range(dH.shape[2]):
                        for qq in range(dH.shape[2]):
                            g += (np.conj(V[i, pp, b]) * dH[i, k, pp, qq] * V[i, qq, b]).real
                    fd += -g * d[k]
                rev = fd * B < 0.0
            if rev and A > 0.0:
                gamma = -B / A
                for k in range(D):
                    p[i, k] += gamma * d[k]
    return nacc, nfr
