"""Initial conditions of the swarm: positions, momenta, electronic density matrices.

``wigner``: the Wigner distribution of a Gaussian wavepacket whose density |chi|^2 has standard
deviation ``width`` (bohr) per dof: x ~ N(x0, width^2), p ~ N(p0, (1/(2 width))^2) (a.u.),
independent (minimum-uncertainty packet, hbar = 1). ``fixed``: every trajectory at (x0, p0).
The electronic state is the pure adiabatic state ``state`` at each trajectory's own position:
rho = |state(x)><state(x)| (a projector, so no eigenvector phase enters).
"""
import numpy as np

from ..electronic.adiabatic import eigh, pure_state_density
from .streams import STREAM_INITIAL, normals, trajectory_keys


def sample_phase_space(initial, keys):
    """Positions and momenta (n, D) for the trajectories with the given stream keys."""
    x0 = np.asarray(initial["position"], dtype=np.float64)
    p0 = np.asarray(initial["momentum"], dtype=np.float64)
    w = np.asarray(initial["width"], dtype=np.float64)
    n, D = keys.shape[0], x0.size
    if initial["sampling"] == "fixed":
        return np.tile(x0, (n, 1)), np.tile(p0, (n, 1))
    g = normals(keys, STREAM_INITIAL, 2 * D, np.empty((n, 2 * D)))
    x = x0 + w * g[:, :D]
    p = p0 + (0.5 / w) * g[:, D:]
    return x, p


def initial_swarm(deck, model, indices):
    """(keys, x, p, rho) for the global trajectory ``indices``."""
    keys = trajectory_keys(deck.run["seed"], indices)
    x, p = sample_phase_space(deck.initial, keys)
    H, dH = model.allocate(len(indices))
    model.evaluate_into(x, H, dH)
    _, V = eigh(H)
    rho = pure_state_density(V, deck.initial["state"])
    return keys, x, p, rho
