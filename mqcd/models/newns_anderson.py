r"""The Newns-Anderson (Anderson-Holstein) model of a molecule on a metal surface or in a
junction: a one-body model of independent electrons (docs/friction.md).

Orbitals: ``levels`` molecular levels (1 or 2) followed by ``leads`` bands (1: one metal; 2: the
left and right leads of a junction) of ``nbath`` states each. The single-particle Hamiltonian at
nuclear coordinates ``x`` (bohr) is

.. math::

    h(x) = \sum_l \epsilon_l(x) |l\rangle\langle l| - t (|0\rangle\langle 1| + h.c.)
           + \sum_{\alpha k} \epsilon_k |\alpha k\rangle\langle \alpha k|
           + \sum_{\alpha k} V_k (|l_\alpha\rangle\langle \alpha k| + h.c.),

with the level energies ``eps_l(x) = e_l + sum_k G_lk x_k`` (``e_0 = e0``, ``e_1 = e1``; the
couplings ``G`` below) and the nuclear potential ``U0(x) = sum_k M_k omega^2 x_k^2 / 2``, which
is not part of ``h`` (``nuclear_potential``): the Ehrenfest energy of the one-body density matrix
``rho`` (trace N_el) is ``Tr(rho h) + U0`` and its force ``-Tr(rho dh) - dU0``.

The band: width ``bandwidth`` = W centred at 0 (the reference Fermi level), hybridisation
``gamma`` = Gamma = 2 pi |V|^2 rho constant over the band (wide-band form), discretised by
composite Gauss-Legendre quadrature: nodes ``eps_k`` and weights ``w_k`` of the panels, and
``V_k = sqrt(Gamma w_k / (2 pi))``, so that ``sum_k |V_k|^2 delta(eps - eps_k)`` is ``Gamma /
(2 pi)`` inside the band. With ``window = 0`` the two panels are the halves ``[-W/2, 0]`` and
``[0, W/2]`` (the "split" Gauss-Legendre rule of N. Shenvi, S. Roy and J. C. Tully, J. Chem.
Phys. 130, 174107 (2009), as in NQCModels.jl): nodes cluster at the band edges and at the Fermi
level. With ``window = w > 0``, a fraction ``window_fraction`` of the states lies in
``[-w, w]`` (two Gauss-Legendre panels split at 0) and the rest in ``[-W/2, -w]`` and
``[w, W/2]``: a dense window at the Fermi level for dynamics, where the level spacing near
``mu`` limits how long the discrete band acts as a continuum (docs/friction.md). The wide-band
limit is ``W >> Gamma, k_B T, |eps_d|``.

Level-coordinate couplings ``G_lk`` (hartree/bohr): one level: ``eps_d = e0 + g x_0 (+ g2
x_1)``; two levels and two dofs: ``eps_0 = e0 + g x_0``, ``eps_1 = e1 + g2 x_1``; two levels,
one dof: ``eps_0 = e0 + g x_0``, ``eps_1 = e1 + g2 x_0``; ``g_hop`` adds ``h_01 = -t + g_hop
x_last``. Leads: one band couples to level 0;
two leads couple L to level 0 and R to the last level, each with its own ``gamma``.

``molecule`` and ``lead_widths`` give the same model in the wide-band limit (molecular block
and the level widths ``Gamma_alpha``), what mqcd/friction/junction.py needs for the
steady state of a biased junction. The kernel fills H and dH for the whole swarm (numba), as the
other built-ins do.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .base import Model


def gauss_legendre_panels(edges, counts):
    """Nodes and weights of composite Gauss-Legendre quadrature: ``counts[i]`` points on the
    panel ``[edges[i], edges[i+1]]`` (numpy.polynomial.legendre.leggauss)."""
    nodes, weights = [], []
    for (a, b), n in zip(zip(edges[:-1], edges[1:]), counts):
        if n <= 0:
            continue
        t, w = np.polynomial.legendre.leggauss(int(n))
        nodes.append(0.5 * (b - a) * t + 0.5 * (a + b))
        weights.append(0.5 * (b - a) * w)
    return np.concatenate(nodes), np.concatenate(weights)


def band_discretisation(nbath, bandwidth, window=0.0, window_fraction=0.5):
    """``(eps_k, w_k)`` (hartree) of the band ``[-W/2, W/2]`` with ``nbath`` states (see the
    module docstring)."""
    half = 0.5 * bandwidth
    if window <= 0.0:
        n1 = nbath // 2
        return gauss_legendre_panels([-half, 0.0, half], [n1, nbath - n1])
    nw = int(round(window_fraction * nbath))
    nw -= nw % 2
    nout = nbath - nw
    no1 = nout // 2
    return gauss_legendre_panels([-half, -window, 0.0, window, half],
                                 [no1, nw // 2, nw // 2, nout - no1])


@njit(cache=True)
def _newns_anderson(x, p, H, dH):
    """p = [ns, nlev, ndof, levels e (nlev), G (nlev*ndof, row-major), gt, h0 (ns*ns)]."""
    ns = int(p[0])
    nlev = int(p[1])
    D = int(p[2])
    o = 3
    e = p[o:o + nlev]
    o += nlev
    G = p[o:o + nlev * D]
    o += nlev * D
    gt = p[o]
    o += 1
    h0 = p[o:o + ns * ns]
    for i in range(x.shape[0]):
        for a in range(ns):
            for b in range(ns):
                H[i, a, b] = h0[a * ns + b]
        for k in range(D):
            for a in range(ns):
                for b in range(ns):
                    dH[i, k, a, b] = 0.0
        for l in range(nlev):
            acc = e[l]
            for k in range(D):
                acc += G[l * D + k] * x[i, k]
                dH[i, k, l, l] = G[l * D + k]
            H[i, l, l] = acc
        if nlev == 2 and gt != 0.0:
            H[i, 0, 1] = h0[1] + gt * x[i, D - 1]
            H[i, 1, 0] = H[i, 0, 1]
            dH[i, D - 1, 0, 1] = gt
            dH[i, D - 1, 1, 0] = gt


class NewnsAnderson(Model):
    """Newns-Anderson impurity (or two-level molecule) coupled to one metal band or two leads."""
    name = "newns_anderson"
    one_body = True
    nstates = 101            # at the defaults (1 level + nbath); set by setup()
    mass = 2000.0
    parameters = {
        "omega": (0.002, "hartree", "frequency of the nuclear well U0 = M omega^2 x^2 / 2 (every "
                  "dof)"),
        "e0": (0.0, "hartree", "energy of level 0 at x = 0 (relative to the band centre)"),
        "g": (0.004, "hartree/bohr", "level-coordinate coupling d eps_0 / d x_0"),
        "gamma": (0.02, "hartree", "hybridisation width Gamma = 2 pi |V|^2 rho of each band "
                  "(wide-band, constant over the band)"),
        "bandwidth": (0.5, "hartree", "band width W (band [-W/2, W/2])"),
        "nbath": (100, "1", "states per band (discretisation of the continuum)"),
        "window": (0.0, "hartree", "half-width of the dense window at the Fermi level (0: the "
                   "split Gauss-Legendre rule over the whole band)"),
        "window_fraction": (0.5, "1", "fraction of the band states inside the window"),
        "ndof": (1, "1", "nuclear degrees of freedom (1 or 2)"),
        "g2": (0.0, "hartree/bohr", "second coupling: d eps_0 / d x_1 (one level, ndof = 2) or "
               "d eps_1 / d x_last (two levels)"),
        "levels": (1, "1", "molecular levels (1 or 2)"),
        "e1": (0.0, "hartree", "energy of level 1 at x = 0 (levels = 2)"),
        "hopping": (0.0, "hartree", "hopping t between the two levels: h_01 = -t (levels = 2)"),
        "g_hop": (0.0, "hartree/bohr", "coupling of the hopping to the last dof: h_01 = -t + "
                  "g_hop x_last (levels = 2; with ndof = 2 the two dofs couple to a level and "
                  "to the bond, the minimal model with current-induced nonconservative forces)"),
        "leads": (1, "1", "1: one metal band coupled to level 0; 2: leads L (to level 0) and R "
                  "(to the last level), nbath states each"),
    }
    kernel = staticmethod(_newns_anderson)

    def setup(self):
        p = self.param_values

        def integer(key, allowed):
            v = p[key]
            if v != int(v) or int(v) not in allowed:
                raise ValueError(f"[model] newns_anderson: {key} = {v:g}; allowed: "
                                 + ", ".join(str(a) for a in allowed))
            return int(v)
        self.ndof = integer("ndof", (1, 2))
        nlev = integer("levels", (1, 2))
        nleads = integer("leads", (1, 2))
        nb = p["nbath"]
        if nb != int(nb) or nb < 2:
            raise ValueError(f"[model] newns_anderson: nbath = {nb:g} must be an integer >= 2")
        nb = int(nb)
        for k in ("omega", "gamma", "bandwidth"):
            if not p[k] > 0:
                raise ValueError(f"[model] newns_anderson: {k} = {p[k]:g} must be > 0")
        if not 0 <= p["window"] < 0.5 * p["bandwidth"]:
            raise ValueError(f"[model] newns_anderson: window = {p['window']:g} must be in "
                             f"[0, bandwidth/2 = {0.5 * p['bandwidth']:g})")
        if p["window"] > 0 and not 0 < p["window_fraction"] < 1:
            raise ValueError(f"[model] newns_anderson: window_fraction = "
                             f"{p['window_fraction']:g} must be in (0, 1)")
        self.nlevels, self.nleads, self.nbath = nlev, nleads, nb
        self.nstates = nlev + nleads * nb
        G = np.zeros((nlev, self.ndof))
        G[0, 0] = p["g"]
        if nlev == 1 and self.ndof == 2:
            G[0, 1] = p["g2"]
        elif nlev == 2:
            G[1, self.ndof - 1] = p["g2"]
        self.G = G
        self.bath_energies, self.bath_weights = band_discretisation(
            nb, p["bandwidth"], p["window"], p["window_fraction"])
        V = np.sqrt(p["gamma"] * self.bath_weights / (2.0 * math.pi))
        self.bath_couplings = V
        ns = self.nstates
        h0 = np.zeros((ns, ns))
        if nlev == 2:
            h0[0, 1] = h0[1, 0] = -p["hopping"]
        self.lead_levels = [0] if nleads == 1 else [0, nlev - 1]
        self.lead_orbitals = []
        for a, lev in enumerate(self.lead_levels):
            idx = nlev + a * nb + np.arange(nb)
            h0[idx, idx] = self.bath_energies
            h0[lev, idx] = h0[idx, lev] = V
            self.lead_orbitals.append(idx)
        self.h0 = h0
        self.level_energies = np.array([p["e0"], p["e1"]][:nlev])
        self.g_hop = p["g_hop"] if nlev == 2 else 0.0
        if p["g_hop"] != 0.0 and nlev != 2:
            raise ValueError("[model] newns_anderson: g_hop needs levels = 2")
        self.params = np.concatenate([[ns, nlev, self.ndof], self.level_energies, G.ravel(),
                                      [self.g_hop], h0.ravel()])
        self.interaction_radius = 10.0

    def nuclear_potential(self, x):
        """``(U0 (n,), dU0 (n, D))``: the harmonic well ``sum_k M_k omega^2 x_k^2 / 2`` (hartree,
        hartree/bohr), the nuclear energy outside the one-body Hamiltonian."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        k = self.masses * self.param_values["omega"] ** 2
        return 0.5 * np.sum(k * x * x, axis=1), k * x

    def harmonic_reference(self):
        """``(x0, omega)``: the minimum of U0 and its frequency per dof (the electrons shift the
        minimum of the free energy; the thermal samplings use this as the reference)."""
        return np.zeros(self.ndof), np.full(self.ndof, self.param_values["omega"])

    # ------------------------------------------------------------------ wide-band limit
    def molecule(self, x):
        """Molecular block of h and its gradient at ``x`` (n, D): ``(hM (n, L, L), dhM (n, D,
        L, L))`` with L = levels (the bands enter through :meth:`lead_widths`)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        L = self.nlevels
        hM = np.repeat(self.h0[None, :L, :L], x.shape[0], axis=0)
        eps = self.level_energies[None, :] + x @ self.G.T
        hM[:, np.arange(L), np.arange(L)] = eps
        dhM = np.zeros((x.shape[0], self.ndof, L, L))
        for k in range(self.ndof):
            dhM[:, k, np.arange(L), np.arange(L)] = self.G[:, k]
        if L == 2 and self.g_hop != 0.0:
            hM[:, 0, 1] = hM[:, 1, 0] = self.h0[0, 1] + self.g_hop * x[:, -1]
            dhM[:, -1, 0, 1] = dhM[:, -1, 1, 0] = self.g_hop
        return hM, dhM

    def lead_widths(self):
        """Wide-band level widths ``Gamma_alpha`` (nleads, L, L) (hartree): ``gamma`` on the
        level each lead couples to."""
        L = self.nlevels
        out = np.zeros((self.nleads, L, L))
        for a, lev in enumerate(self.lead_levels):
            out[a, lev, lev] = self.param_values["gamma"]
        return out
