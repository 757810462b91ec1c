"""Split-operator FFT propagation of a nuclear wavepacket on several coupled electronic states.

The wavefunction is stored as ``psi[a, i]`` (``a`` a diabatic state, ``i`` the grid point; ``i`` is one
index in 1D and two in 2D). One Strang step is::

    psi <- P(dt/2) K(dt) P(dt/2) psi,   P(tau) = exp(-i H(x) tau),   K(dt) = exp(-i T(p) dt)

with ``H(x)`` the diabatic electronic matrix at every grid point, exponentiated exactly through its
eigendecomposition ``H = U diag(E) U^dagger`` (computed once for the grid and reused), and ``K``
applied in momentum space (FFT). Consecutive half potential steps are merged into one full step, so
a run of ``n`` steps costs ``n`` FFT pairs and ``n + 1`` pointwise matrix products.

The optional absorbing boundary multiplies the wavefunction by ``exp(-W(x) dt)`` once per step
(``W`` quadratic in the layer: a complex absorbing potential ``-i W``). Because the mask is a scalar at
each point it commutes with ``P``; the norm it removes is booked per side (``x_0 < 0`` / ``x_0 > 0``)
and per adiabatic and diabatic state, so branching ratios stay complete.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
from numba import njit

from .grid import GridPlan

TINY = 1e-300


@njit(cache=True)
def _absorb_kernel(psi, layer, mask, uc_layer, side, dvol, acc_dia, acc_adi, acc_coh):
    """Book and remove the norm absorbed in one step on the layer points (in place).

    psi (a, npts) complex; layer (nl,) point indices; mask (nl,) = exp(-W dt); uc_layer (a, n, nl) =
    conj(U) on the layer; side (nl,) 0 for x_0 < 0 else 1; acc_* (2, ns) accumulators; acc_coh (2,)
    the coherence carried away, sum_{n<m} |c_n|^2 |c_m|^2 / n(x) times the absorbed fraction
    (the absorber removes the same fraction of every state, so the coherence density is removed in
    that fraction too).
    """
    ns = psi.shape[0]
    for l in range(layer.shape[0]):
        i = layer[l]
        m = mask[l]
        lost = (1.0 - m * m) * dvol
        s = side[l]
        tot = 0.0
        sq = 0.0
        for n in range(ns):
            c = 0j
            for a in range(ns):
                c += uc_layer[a, n, l] * psi[a, i]
            pn = c.real * c.real + c.imag * c.imag
            acc_adi[s, n] += pn * lost
            tot += pn
            sq += pn * pn
        if tot > 1e-300:
            acc_coh[s] += 0.5 * (tot * tot - sq) / tot * lost
        for a in range(ns):
            v = psi[a, i]
            acc_dia[s, a] += (v.real * v.real + v.imag * v.imag) * lost
            psi[a, i] = v * m


@njit(cache=True)
def _transport(U, order, coords, ref):
    """Radial parallel transport of eigenvectors U[i, a, n] (grid points flattened) in place.

    ``order``: point indices sorted by distance from the reference point ``ref`` (first entry is
    the reference itself); ``coords[i, k]``: integer grid index of point i along dof k (k < 2);
    ``ref``: integer grid index of the reference. Each point is aligned with its neighbour one cell
    towards the reference (the one closest to the straight line to the reference).
    """
    ns = U.shape[2]
    D = coords.shape[1]
    n1 = 1
    if D == 2:
        n1 = int(coords[:, 1].max()) + 1
    for q in range(1, order.shape[0]):
        i = order[q]
        di = coords[i, 0] - ref[0]
        dj = coords[i, 1] - ref[1] if D == 2 else 0
        si = 1 if di > 0 else (-1 if di < 0 else 0)
        sj = 1 if dj > 0 else (-1 if dj < 0 else 0)
        best = -1
        bestd = 1e300
        for c in range(3):
            mi = si if c != 1 else 0
            mj = sj if c != 0 else 0
            if mi == 0 and mj == 0:
                continue
            pi = di - mi
            pj = dj - mj
            # squared distance of the candidate from the line through 0 and (di, dj)
            cross = pi * dj - pj * di
            d = cross * cross / float(di * di + dj * dj)
            if d < bestd - 1e-12:
                bestd = d
                best = (coords[i, 0] - mi) * n1 + ((coords[i, 1] - mj) if D == 2 else 0)
        for n in range(ns):
            ov = U[best, 0, n] * 0.0
            for a in range(ns):
                ov += np.conj(U[best, a, n]) * U[i, a, n]
            m = abs(ov)
            if m > 1e-14:
                f = np.conj(ov) / m
                for a in range(ns):
                    U[i, a, n] *= f


def smooth_gauge(U, shape, spacing, ref_index):
    """Give the eigenvectors ``U[i, a, n]`` (grid of ``shape``, flattened) a smooth phase.

    Radial parallel transport from the reference point ``ref_index`` (the packet centre): every
    eigenvector has a real positive overlap with its neighbour one cell closer to the reference.
    The result is smooth wherever the adiabatic states are non-degenerate; around a conical
    intersection the unavoidable sign line starts at the intersection and runs away from the
    reference point, i.e. away from the initial packet. At the reference point every state's
    largest component is real and positive.
    """
    U = np.ascontiguousarray(U).copy()
    idx = np.indices(shape).reshape(len(shape), -1).T.astype(np.int64)   # (npts, D)
    d2 = np.zeros(idx.shape[0])
    for k in range(len(shape)):
        d2 += ((idx[:, k] - ref_index[k]) * spacing[k]) ** 2
    order = np.argsort(d2, kind="stable").astype(np.int64)
    ref_flat = int(np.ravel_multi_index(tuple(ref_index), shape))
    if order[0] != ref_flat:        # ties at distance 0 cannot happen; keep the reference first
        order = np.concatenate([[ref_flat], order[order != ref_flat]])
    ref = U[ref_flat]                                                   # (a, n)
    big = np.argmax(np.abs(ref), axis=0)
    comp = ref[big, np.arange(ref.shape[1])]
    U[ref_flat] = ref * (np.conj(comp) / np.abs(comp))[None, :]
    _transport(U, order, idx, np.asarray(ref_index, dtype=np.int64))
    return U


class SplitOperator:
    """Grid, potential eigendecomposition and Strang propagator for one model.

    Parameters
    ----------
    model : mqcd.models.Model
        Electronic model (1 or 2 nuclear dof, any number of states).
    plan : GridPlan
        Box, spacing and points (see :mod:`mqcd.exact.grid`).
    ref_position : sequence of float
        Position (bohr) where the adiabatic eigenvectors get their reference phase (the packet
        centre).
    workers : int
        Threads for scipy.fft.
    """

    def __init__(self, model, plan: GridPlan, ref_position, workers=1):
        self.model = model
        self.plan = plan
        self.ns = int(model.nstates)
        self.D = plan.ndof
        self.shape = tuple(plan.npoints)
        self.axes = plan.axes()
        self.dvol = plan.dvol
        self.workers = int(workers)
        self.fft_axes = tuple(range(1, self.D + 1))
        mesh = np.meshgrid(*self.axes, indexing="ij")
        self.mesh = mesh
        X = np.stack([m.ravel() for m in mesh], axis=1)
        H, _ = model.evaluate(np.ascontiguousarray(X))
        H = np.asarray(H)
        if not np.all(np.isfinite(H)):
            raise ValueError(f"model '{model.name}' returned non-finite H on the exact grid")
        E, U = np.linalg.eigh(H)
        ref_index = tuple(int(np.argmin(np.abs(ax - r))) for ax, r in zip(self.axes, ref_position))
        U = smooth_gauge(U, self.shape, plan.dx, ref_index)
        # state-first layouts
        self.E = np.moveaxis(E.reshape(self.shape + (self.ns,)), -1, 0).copy()        # (n, *g)
        self.U = np.ascontiguousarray(np.transpose(U, (1, 2, 0)).reshape(
            (self.ns, self.ns) + self.shape))                                          # (a, n, *g)
        self.complex_h = np.iscomplexobj(H)
        # momentum grid and kinetic energy
        ps = [2 * np.pi * np.fft.fftfreq(n, d) for n, d in zip(self.shape, plan.dx)]
        self.p = np.meshgrid(*ps, indexing="ij")
        M = np.asarray(model.masses, dtype=float)
        self.T = sum(pk ** 2 / (2 * M[k]) for k, pk in enumerate(self.p))
        # absorbing rate W(x) (hartree)
        self.W = None
        if plan.absorb_strength > 0:
            W = np.zeros(self.shape)
            for k in range(self.D):
                lo, hi = plan.box[k]
                L = plan.absorb_width[k]
                xk = mesh[k]
                s = np.clip(np.maximum((lo + L) - xk, xk - (hi - L)) / L, 0.0, None)
                W = np.maximum(W, plan.absorb_strength * s ** 2)
            self.W = W
            flat = W.ravel()
            self.layer = np.nonzero(flat > 0)[0]
            self.layer_side = (mesh[0].ravel()[self.layer] > 0).astype(np.intp)
            self.Uc_layer = np.ascontiguousarray(
                np.conj(self.U.reshape(self.ns, self.ns, -1)[:, :, self.layer]), dtype=np.complex128)
            self.absorbed_adi = np.zeros((2, self.ns))
            self.absorbed_dia = np.zeros((2, self.ns))
            self.absorbed_coh = np.zeros(2)
        self.dt = None
        self._buf = None
        self._tmp = np.empty(self.shape, dtype=np.complex128)

    # --------------------------------------------------------------- propagator pieces
    def _pot_matrix(self, tau):
        """exp(-i H tau) at every point, shape (a, b, *grid)."""
        ph = np.exp(-1j * self.E * tau)                                      # (n, *g)
        Uc = np.conj(self.U)
        return np.einsum("an...,n...,bn...->ab...", self.U, ph, Uc, optimize=True)

    def set_dt(self, dt):
        """Precompute the step operators for time step ``dt`` (a.u.)."""
        if dt == self.dt:
            return
        self.dt = float(dt)
        self.P_half = self._pot_matrix(0.5 * dt)
        self.P_full = self._pot_matrix(dt)
        self.K = np.exp(-1j * self.T * dt)
        if self.W is not None:
            self.mask_layer = np.exp(-self.W.ravel()[self.layer] * dt)

    def _apply(self, P, psi):
        """psi[a] <- sum_b P[a, b] psi[b] at every point; returns the updated array."""
        ns = self.ns
        if ns == 1:
            psi[0] *= P[0, 0]
            return psi
        buf = self._buf if self._buf is not None and self._buf is not psi else np.empty_like(psi)
        tmp = self._tmp
        for a in range(ns):
            np.multiply(P[a, 0], psi[0], out=buf[a])
            for b in range(1, ns):
                np.multiply(P[a, b], psi[b], out=tmp)
                buf[a] += tmp
        self._buf = psi            # the old array becomes the next scratch buffer
        return buf

    def _kinetic(self, psi):
        if self.D == 1:
            f = scipy.fft.fft(psi, axis=-1, workers=self.workers, overwrite_x=True)
            f *= self.K
            return scipy.fft.ifft(f, axis=-1, workers=self.workers, overwrite_x=True)
        f = scipy.fft.fftn(psi, axes=self.fft_axes, workers=self.workers, overwrite_x=True)
        f *= self.K
        return scipy.fft.ifftn(f, axes=self.fft_axes, workers=self.workers, overwrite_x=True)

    def _absorb(self, psi):
        _absorb_kernel(psi.reshape(self.ns, -1), self.layer, self.mask_layer, self.Uc_layer,
                       self.layer_side, self.dvol, self.absorbed_dia, self.absorbed_adi,
                       self.absorbed_coh)

    def propagate(self, psi, nsteps):
        """Advance ``psi`` (a, *grid) by ``nsteps`` Strang steps of ``self.dt``; returns psi."""
        psi = self._apply(self.P_half, psi)
        for s in range(nsteps):
            psi = self._kinetic(psi)
            if self.W is not None:
                self._absorb(psi)
            psi = self._apply(self.P_full if s < nsteps - 1 else self.P_half, psi)
        return psi

    # --------------------------------------------------------------- states and observables
    def initial_state(self, position, momentum, width, state, chirp=None):
        """Gaussian packet (density std ``width``) times exp(i p0 (x - x0) + i c (x - x0)^2 / 2)
        (``chirp`` c, bohr^-2, default 0) on adiabatic ``state``."""
        chi = np.ones(self.shape, dtype=np.complex128)
        c = np.zeros(self.D) if chirp is None or len(chirp) == 0 else np.asarray(chirp, float)
        for k in range(self.D):
            xk = self.mesh[k]
            d = xk - position[k]
            chi = chi * np.exp(-d ** 2 / (4.0 * width[k] ** 2) + 1j * (momentum[k] * d
                                                                       + 0.5 * c[k] * d ** 2))
        psi = self.U[:, state] * chi[None]
        psi = np.ascontiguousarray(psi, dtype=np.complex128)
        psi /= np.sqrt(np.sum(np.abs(psi) ** 2) * self.dvol)
        return psi

    def adiabatic(self, psi):
        """Adiabatic coefficients c[n, *grid] = sum_a conj(U[a, n]) psi[a]."""
        return np.einsum("an...,a...->n...", np.conj(self.U), psi)

    def observables(self, psi, exit_radius):
        """Everything recorded at one time; see :func:`mqcd.exact.run_exact`."""
        dv = self.dvol
        dens = np.abs(psi) ** 2                                   # (a, *g)
        n = dens.sum(axis=0)
        norm = float(n.sum() * dv)
        c = self.adiabatic(psi)
        pc = np.abs(c) ** 2                                       # (n, *g)
        sum_axes = tuple(range(1, self.D + 1))
        pop_dia = dens.sum(axis=sum_axes) * dv
        pop_adi = pc.sum(axis=sum_axes) * dv
        nn = max(norm, TINY)
        epot = float(np.sum(self.E * pc) * dv) / nn
        xmean = np.array([float(np.sum(self.mesh[k] * n) * dv) / nn for k in range(self.D)])
        f = scipy.fft.fftn(psi, axes=self.fft_axes, workers=self.workers)
        pk = (np.abs(f) ** 2).sum(axis=0) * (dv / np.prod(self.shape))
        ekin = float(np.sum(self.T * pk)) / nn
        pmean = np.array([float(np.sum(self.p[k] * pk)) for k in range(self.D)]) / nn
        # coherence: sum_{n<m} n(x) |rho_nm|^2 = sum_{n<m} |c_n|^2 |c_m|^2 / n(x)
        coh = 0.0
        if self.ns > 1:
            tot = pc.sum(axis=0)
            pair = 0.5 * (tot ** 2 - (pc ** 2).sum(axis=0))
            ok = tot > 1e-300
            coh_in = float(np.sum(np.where(ok, pair / np.where(ok, tot, 1.0), 0.0)) * dv)
            coh = coh_in / nn
            if self.W is not None:
                # whole-wavefunction indicator: the absorbed parts keep the coherence they carried
                # when absorbed (the convention of trajectories frozen beyond the exit radius) and
                # the normalisation is the initial norm, not the norm left on the grid
                coh = (coh_in + float(self.absorbed_coh.sum())) / max(
                    norm + float(self.absorbed_dia.sum()), TINY)
        # branching along dof 0
        right = self.mesh[0] > 0
        trans = (pc * right).sum(axis=sum_axes) * dv
        refl = pop_adi - trans
        # norm inside the interaction region and incoming norm outside it (along dof 0)
        x = self.mesh[0]
        inside = float(np.sum(n * (np.abs(x) < exit_radius)) * dv)
        incoming = 0.0
        p0 = np.fft.fftfreq(self.shape[0])                         # sign of momentum along dof 0
        bcast = (slice(None),) + (None,) * (self.D - 1)
        for region, sel in ((x < -exit_radius, p0[bcast] >= 0), (x > exit_radius, p0[bcast] <= 0)):
            if not region.any():
                continue
            g = scipy.fft.fft(psi * region, axis=1, workers=self.workers)
            incoming += float(np.sum((np.abs(g) ** 2) * sel) * dv / self.shape[0])
        return dict(norm=norm, pop_dia=pop_dia, pop_adi=pop_adi, epot=epot, ekin=ekin,
                    xmean=xmean, pmean=pmean, coh=coh, density=n, trans=trans, refl=refl,
                    inside=inside, not_out=inside + incoming)
