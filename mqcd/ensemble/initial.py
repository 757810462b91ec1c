"""Initial conditions of the swarm: positions, momenta, electronic density matrices.

``wigner``: the Wigner distribution of a Gaussian wavepacket whose density |chi|^2 has standard
deviation ``width`` (bohr) per dof: x ~ N(x0, width^2), p ~ N(p0 + c (x - x0), (1/(2 width))^2)
(a.u.; c the chirp, bohr^-2), the minimum-uncertainty packet (hbar = 1) with the chirp's
position-momentum correlation.
``hydrodynamic``: fluid elements (MB, Lagrangian frame): positions distributed as the initial
density - in 1D the stratified quantiles x_I = x0 + width Phi^-1((I + 1/2) / N) of the global
trajectory index I, in D > 1 a scrambled Halton set (scipy.stats.qmc, seeded with the deck seed)
mapped through the inverse normal distribution per dof - and the local momentum of the packet,
p = dS/dx = p0 + c (x - x0) (no momentum spread: each element *is* a piece of the packet). Every
trajectory carries the same weight. Deterministic in the global index: independent of the number
of MPI ranks.
``fixed``: every trajectory at (x0, p0).
The electronic state is the pure adiabatic state ``state`` at each trajectory's own position:
rho = |state(x)><state(x)| (a projector, so no eigenvector phase enters).
"""
import numpy as np
import scipy.special
from scipy.stats import qmc

from ..electronic.adiabatic import eigh, pure_state_density
from .streams import STREAM_INITIAL, normals, trajectory_keys


def fluid_element_quantiles(indices, ntotal, D, seed=0):
    """Uniform numbers (n, D) in (0, 1) of the fluid elements with global ``indices`` (of
    ``ntotal``): the stratified midpoints (I + 1/2)/N in 1D, rows of a scrambled Halton set
    (seeded with ``seed``) in D > 1."""
    idx = np.asarray(indices, dtype=np.int64).ravel()
    if D == 1:
        return ((idx + 0.5) / ntotal)[:, None]
    if idx.size == 0:
        return np.empty((0, D))
    lo, hi = int(idx.min()), int(idx.max()) + 1
    gen = qmc.Halton(d=D, scramble=True, seed=np.random.default_rng(int(seed)))
    if lo:
        gen.fast_forward(lo)
    u = gen.random(hi - lo)[idx - lo]
    eps = 0.5 / ntotal
    return np.clip(u, eps, 1.0 - eps)


def sample_phase_space(initial, keys, indices=None, ntotal=None, seed=0):
    """Positions and momenta (n, D) for the trajectories with the given stream keys (and, for
    ``sampling = "hydrodynamic"``, global ``indices`` out of ``ntotal``)."""
    x0 = np.asarray(initial["position"], dtype=np.float64)
    p0 = np.asarray(initial["momentum"], dtype=np.float64)
    w = np.asarray(initial["width"], dtype=np.float64)
    c = np.asarray(initial.get("chirp") or np.zeros(x0.size), dtype=np.float64)
    n, D = keys.shape[0], x0.size
    kind = initial["sampling"]
    if kind == "fixed":
        return np.tile(x0, (n, 1)), np.tile(p0, (n, 1))
    if kind == "hydrodynamic":
        if indices is None or ntotal is None:
            raise ValueError("hydrodynamic sampling needs the global indices and the swarm size")
        u = fluid_element_quantiles(indices, ntotal, D, seed)
        x = x0 + w * scipy.special.ndtri(u)
        return x, p0 + c * (x - x0)
    g = normals(keys, STREAM_INITIAL, 2 * D, np.empty((n, 2 * D)))
    x = x0 + w * g[:, :D]
    p = p0 + c * (x - x0) + (0.5 / w) * g[:, D:]
    return x, p


def initial_swarm(deck, model, indices):
    """(keys, x, p, rho) for the global trajectory ``indices``."""
    keys = trajectory_keys(deck.run["seed"], indices)
    x, p = sample_phase_space(deck.initial, keys, indices, deck.run["trajectories"],
                              deck.run["seed"])
    H, dH = model.allocate(len(indices))
    model.evaluate_into(x, H, dH)
    _, V = eigh(H)
    rho = pure_state_density(V, deck.initial["state"])
    return keys, x, p, rho
