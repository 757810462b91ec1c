r"""Many-particle models: ``N`` identical atoms in a periodic box (1D or 3D) with a two-state
electronic matrix built from pair terms (atomic units).

Every diabatic entry is a sum over atom pairs (minimum image, smooth cut-off ``cutoff``):

.. math::

    V_{11}(x) = \sum_{n<k} \phi_1(r_{nk}),\qquad
    V_{22}(x) = \Delta + \sum_{n<k} \phi_2(r_{nk}),\qquad
    V_{12}(x) = \sum_{n<k} c(r_{nk}),

with Morse pair functions :math:`\phi_a(r) = D_a[(1 - e^{-\alpha_a (r - r_a)})^2 - 1]` and the
coupling :math:`c(r) = c_{12}\, e^{-\alpha_c (r - r_1)}`, all multiplied by the quintic switch
``S(r)`` that goes from 1 at ``cutoff - switch`` to 0 at ``cutoff`` (energies and forces
continuous). The adiabatic energies :math:`\lambda_{1,2}` are *not* sums of pair terms when
``c12 != 0``; with ``c12 = 0`` and ``D2, a2, r2 = D1, a1, r1`` the two surfaces are parallel
(constant gap ``Delta``).

This is the setting of P. Plechac, M. Sandberg and A. Szepessy (the paper in ../shared/papers,
Sec. 2.2): the per-particle partition of the electronic operator, eqs. (2.7)-(2.8), is here

.. math:: V^n = \frac{\mathrm{diag}(0, \Delta)}{N} + \frac12 \sum_{k \ne n} \Phi(r_{nk}),\qquad
          \sum_n V^n = V,

and the potential energy of particle ``n`` on surface ``j`` is
:math:`\lambda_j^n = \langle\psi_j, V^n \psi_j\rangle` (eq. (2.9)), so that
:math:`\sum_n \lambda_j^n = \lambda_j` (eq. (2.10)). ``mqcd.conservation`` builds the continuum
fields from these (docs/conservation_fields.md).

Positions are unwrapped Cartesian coordinates, ``x[3 n + a]`` (3D) or ``x[n]`` (1D); pair
distances use the minimum image, so the atoms may leave the primary box. Neighbours come from a
cell list (numba, O(N) per configuration) when the box holds at least three cells of size
``cutoff`` per direction, otherwise from all pairs. ``cutoff`` must be below half the box.

Built-ins: ``pair_chain`` (1D, 32 atoms) and ``pair_box`` (3D, 108 atoms on an fcc lattice by
default; any ``natoms = 4 m^3`` starts from an fcc lattice, others from a simple cubic one).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .base import Model

# parameter order of the kernel's ``params`` array (the ``parameters`` dicts below follow it)
_ORDER = ("natoms", "dim", "box", "cutoff", "switch", "gap", "D1", "a1", "r1", "D2", "a2", "r2",
          "c12", "ac")


@njit(cache=True)
def _switch(r, rc, ws):
    """Quintic switch S(r) and dS/dr: 1 below rc - ws, 0 above rc."""
    r0 = rc - ws
    if r <= r0:
        return 1.0, 0.0
    if r >= rc:
        return 0.0, 0.0
    t = (r - r0) / ws
    s = 1.0 - t * t * t * (10.0 - 15.0 * t + 6.0 * t * t)
    ds = -30.0 * t * t * (1.0 - t) * (1.0 - t) / ws
    return s, ds


@njit(cache=True)
def pair_terms(r, p, phi, dphi):
    """Pair matrices ``Phi(r)`` and ``dPhi/dr`` (2 x 2 each, hartree and hartree/bohr) of the
    model with parameters ``p`` at distance ``r`` (bohr), written into ``phi`` and ``dphi``."""
    rc, ws = p[3], p[4]
    s, ds = _switch(r, rc, ws)
    D1, a1, r1, D2, a2, r2, c12, ac = p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13]
    e1 = math.exp(-a1 * (r - r1))
    f1 = D1 * ((1.0 - e1) ** 2 - 1.0)
    g1 = 2.0 * D1 * a1 * e1 * (1.0 - e1)
    e2 = math.exp(-a2 * (r - r2))
    f2 = D2 * ((1.0 - e2) ** 2 - 1.0)
    g2 = 2.0 * D2 * a2 * e2 * (1.0 - e2)
    c = c12 * math.exp(-ac * (r - r1))
    gc = -ac * c
    phi[0, 0] = f1 * s
    phi[1, 1] = f2 * s
    phi[0, 1] = c * s
    phi[1, 0] = c * s
    dphi[0, 0] = g1 * s + f1 * ds
    dphi[1, 1] = g2 * s + f2 * ds
    dphi[0, 1] = gc * s + c * ds
    dphi[1, 0] = dphi[0, 1]


@njit(cache=True)
def _min_image(d, box):
    return d - box * math.floor(d / box + 0.5)


@njit(cache=True)
def _add_pair(xrow, dim, box, rc2, i, j, ii, jj, dd, npair):
    """Append pair (i, j) if closer than sqrt(rc2) (minimum image); the new count, or -1 when
    the buffers are full."""
    r2 = 0.0
    for a in range(dim):
        d = _min_image(xrow[i * dim + a] - xrow[j * dim + a], box)
        r2 += d * d
    if r2 >= rc2:
        return npair
    if npair >= ii.size:
        return -1
    ii[npair] = i
    jj[npair] = j
    for a in range(dim):
        dd[npair, a] = _min_image(xrow[i * dim + a] - xrow[j * dim + a], box)
    return npair + 1


@njit(cache=True)
def find_pairs(xrow, dim, box, rc, ii, jj, dd):
    """Pairs (i < j) closer than ``rc`` (minimum image) of one configuration ``xrow`` (N*dim,):
    indices into ``ii``, ``jj`` and separation vectors ``d = x_i - x_j`` into ``dd`` (rows).
    Returns the number of pairs, or -1 when the buffers are too small."""
    N = xrow.size // dim
    rc2 = rc * rc
    nc = int(box // rc)
    npair = 0
    if nc < 3:                                           # all pairs, minimum image
        for i in range(N):
            for j in range(i + 1, N):
                npair = _add_pair(xrow, dim, box, rc2, i, j, ii, jj, dd, npair)
                if npair < 0:
                    return -1
        return npair
    ncells = nc ** dim
    head = -np.ones(ncells, np.int64)
    nxt = np.empty(N, np.int64)
    cell = np.empty((N, 3), np.int64)
    for i in range(N):
        c = 0
        for a in range(dim):
            u = xrow[i * dim + a] / box
            u -= math.floor(u)
            k = int(u * nc)
            if k >= nc:
                k = nc - 1
            cell[i, a] = k
            c = c * nc + k
        nxt[i] = head[c]
        head[c] = i
    off = np.zeros(3, np.int64)
    nnb = 3 ** dim
    for i in range(N):
        for q in range(nnb):
            t = q
            c = 0
            for a in range(dim):
                off[a] = t % 3 - 1
                t //= 3
                k = (cell[i, a] + off[a]) % nc
                c = c * nc + k
            j = head[c]
            while j >= 0:
                if j > i:
                    npair = _add_pair(xrow, dim, box, rc2, i, j, ii, jj, dd, npair)
                    if npair < 0:
                        return -1
                j = nxt[j]
    return npair


@njit(cache=True)
def _evaluate(x, p, H, dH, cap):
    """Fill H (n, 2, 2) and dH (n, D, 2, 2); returns False when a pair buffer overflowed."""
    N, dim, box, rc, gap = int(p[0]), int(p[1]), p[2], p[3], p[5]
    ii = np.empty(cap, np.int64)
    jj = np.empty(cap, np.int64)
    dd = np.empty((cap, dim))
    phi = np.empty((2, 2))
    dphi = np.empty((2, 2))
    for t in range(x.shape[0]):
        npair = find_pairs(x[t], dim, box, rc, ii, jj, dd)
        if npair < 0:
            return False
        for a in range(2):
            for b in range(2):
                H[t, a, b] = 0.0
        H[t, 1, 1] = gap
        dH[t, :, :, :] = 0.0
        for q in range(npair):
            r2 = 0.0
            for a in range(dim):
                r2 += dd[q, a] * dd[q, a]
            r = math.sqrt(r2)
            pair_terms(r, p, phi, dphi)
            i, j = ii[q], jj[q]
            for a in range(2):
                for b in range(2):
                    H[t, a, b] += phi[a, b]
            for c in range(dim):
                u = dd[q, c] / r
                for a in range(2):
                    for b in range(2):
                        g = dphi[a, b] * u
                        dH[t, i * dim + c, a, b] += g
                        dH[t, j * dim + c, a, b] -= g
    return True


def lattice(natoms, dim, box):
    """Start geometry (natoms*dim,): evenly spaced atoms in 1D; in 3D an fcc lattice when
    ``natoms = 4 m^3``, else a simple cubic one filled in order."""
    if dim == 1:
        return (np.arange(natoms) + 0.5) * (box / natoms)
    m = round((natoms / 4) ** (1 / 3))
    if 4 * m ** 3 == natoms:
        a = box / m
        base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        cells = np.array([[i, j, k] for i in range(m) for j in range(m) for k in range(m)], float)
        pts = (cells[:, None, :] + base[None, :, :]).reshape(-1, 3) + 0.25
        return (pts * a).ravel()
    m = math.ceil(natoms ** (1 / 3))
    a = box / m
    cells = np.array([[i, j, k] for i in range(m) for j in range(m) for k in range(m)], float)
    return ((cells[:natoms] + 0.5) * a).ravel()


class PairSurfaces(Model):
    """Two-state many-particle model from pair terms (module docstring); 1D or 3D."""

    name = "pair_chain"
    nstates = 2
    mass = 50000.0
    interaction_radius = 1e300
    parameters = {
        "natoms": (32, "1", "number of atoms N"),
        "dim": (1, "1", "space dimension: 1 (chain) or 3 (cubic box)"),
        "box": (128.0, "bohr", "periodic box length (cubic in 3D)"),
        "cutoff": (7.0, "bohr", "pair cut-off radius (below box/2)"),
        "switch": (1.5, "bohr", "width of the smooth switch that ends at the cut-off"),
        "gap": (0.004, "hartree", "constant diabatic offset Delta of state 2"),
        "D1": (0.02, "hartree", "Morse well depth, state 1"),
        "a1": (1.5, "1/bohr", "Morse range parameter, state 1"),
        "r1": (4.0, "bohr", "Morse equilibrium distance, state 1"),
        "D2": (0.02, "hartree", "Morse well depth, state 2"),
        "a2": (1.5, "1/bohr", "Morse range parameter, state 2"),
        "r2": (4.05, "bohr", "Morse equilibrium distance, state 2"),
        "c12": (0.0, "hartree", "pair coupling amplitude c12 (0: uncoupled surfaces)"),
        "ac": (1.0, "1/bohr", "decay rate of the pair coupling"),
    }

    def setup(self):
        pv = self.param_values
        self.natoms = int(round(pv["natoms"]))
        self.dim = int(round(pv["dim"]))
        if self.dim not in (1, 3):
            raise ValueError(f"[model] dim = {pv['dim']:g}: allowed 1 or 3")
        if self.natoms < 2 or self.natoms != pv["natoms"]:
            raise ValueError(f"[model] natoms = {pv['natoms']:g}: an integer >= 2")
        if not 0 < pv["cutoff"] < 0.5 * pv["box"]:
            raise ValueError(f"[model] cutoff = {pv['cutoff']:g} bohr must be in (0, box/2 = "
                             f"{0.5 * pv['box']:g})")
        if not 0 < pv["switch"] <= pv["cutoff"]:
            raise ValueError(f"[model] switch = {pv['switch']:g} bohr must be in (0, cutoff]")
        self.ndof = self.natoms * self.dim
        self.translation_dim = self.dim        # a common shift of all atoms changes nothing
        self.box = float(pv["box"])
        self.params = np.array([pv[k] for k in _ORDER], dtype=np.float64)
        rho = self.natoms / self.box ** self.dim
        vol = (4.0 / 3.0) * math.pi * pv["cutoff"] ** 3 if self.dim == 3 else 2 * pv["cutoff"]
        self._cap = int(max(64, 2.0 * self.natoms * (rho * vol + 4)))

    # ------------------------------------------------------------------ evaluation
    def evaluate_into(self, x, H, dH):
        x = np.ascontiguousarray(x, dtype=np.float64)
        while not _evaluate(x, self.params, H, dH, self._cap):
            self._cap *= 2

    def evaluate(self, x):
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64)
        H, dH = self.allocate(x.shape[0])
        self.evaluate_into(x, H, dH)
        return H, dH

    def pairs(self, xrow):
        """``(i, j, d)`` of one configuration (N*dim,): pair indices (i < j) within the cut-off
        and minimum-image separations ``d = x_i - x_j`` (P, dim) in bohr."""
        xrow = np.ascontiguousarray(xrow, dtype=np.float64)
        while True:
            ii = np.empty(self._cap, np.int64)
            jj = np.empty(self._cap, np.int64)
            dd = np.empty((self._cap, self.dim))
            n = find_pairs(xrow, self.dim, self.box, self.params[3], ii, jj, dd)
            if n >= 0:
                return ii[:n].copy(), jj[:n].copy(), dd[:n].copy()
            self._cap *= 2

    def pair_matrices(self, r):
        """``Phi(r)`` and ``dPhi/dr`` for an array of distances (P,): two (P, 2, 2) arrays."""
        r = np.asarray(r, dtype=np.float64)
        phi = np.empty((r.size, 2, 2))
        dphi = np.empty((r.size, 2, 2))
        _pair_batch(r, self.params, phi, dphi)
        return phi, dphi

    def particle_energies(self, x, surface, E=None, V=None):
        """Potential energy of every particle on each trajectory's surface, PSS eq. (2.9):
        ``lambda_j^n = <psi_j, V^n psi_j>`` with the partition ``V^n`` of the module docstring
        (so ``sum_n lambda_j^n = lambda_j``, eq. (2.10)). ``x`` (n, D) bohr, ``surface`` (n,)
        adiabatic indices, ``V`` (n, 2, 2) eigenvectors (computed when not given). Returns
        (n, natoms) hartree."""
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64)
        if V is None:
            H, _ = self.evaluate(x)
            _, V = np.linalg.eigh(H)
        out = np.empty((x.shape[0], self.natoms))
        for t in range(x.shape[0]):
            i, j, d = self.pairs(x[t])
            phi, _ = self.pair_matrices(np.sqrt(np.einsum("pa,pa->p", d, d)))
            psi = np.real(V[t, :, int(surface[t])])
            e = np.einsum("a,pab,b->p", psi, phi, psi)
            lam = np.full(self.natoms, psi[1] ** 2 * self.param_values["gap"] / self.natoms)
            np.add.at(lam, i, 0.5 * e)
            np.add.at(lam, j, 0.5 * e)
            out[t] = lam
        return out

    def offsets(self):
        """Constant diagonal part of V (the gaps), (nstates,) hartree."""
        return np.array([0.0, self.param_values["gap"]])

    def harmonic_reference(self):
        """``(x0, omega)``: the start lattice (``lattice``) and, per dof, the Einstein
        frequency ``sqrt(z k / M)`` of an atom in the state-1 well with ``z`` nearest
        neighbours (2 in 1D, 12 fcc) and ``k = 2 D1 a1^2`` (an estimate, for the sampling's
        start widths)."""
        pv = self.param_values
        k = 2.0 * pv["D1"] * pv["a1"] ** 2
        z = 2.0 if self.dim == 1 else 12.0 / 3.0
        return (lattice(self.natoms, self.dim, self.box),
                np.sqrt(z * k / self.masses))

    def describe(self):
        pv = self.param_values
        return (f"{self.name}: {self.natoms} atoms in a periodic {'chain' if self.dim == 1 else 'box'} "
                f"of {pv['box']:g} bohr, 2 states, gap {pv['gap']:g} hartree, c12 {pv['c12']:g}")


@njit(cache=True)
def _pair_batch(r, p, phi, dphi):
    for q in range(r.size):
        pair_terms(r[q], p, phi[q], dphi[q])


class PairChain(PairSurfaces):
    """1D periodic chain (``pair_chain``)."""
    name = "pair_chain"


class PairBox(PairSurfaces):
    """3D periodic cubic box (``pair_box``); defaults: 108 atoms (fcc, 3 x 3 x 3 cells)."""
    name = "pair_box"
    parameters = dict(PairSurfaces.parameters)
    parameters.update({
        "natoms": (108, "1", "number of atoms N"),
        "dim": (3, "1", "space dimension: 1 (chain) or 3 (cubic box)"),
        "box": (16.97, "bohr", "periodic box length (cubic)"),
    })
