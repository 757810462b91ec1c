"""Born-Oppenheimer dynamics on one adiabatic surface per trajectory (no transitions).

The classical limit of Plechac, Sandberg and Szepessy (the paper in ../shared/papers, Theorem
5.1, eq. (5.17)): trajectory ``i`` moves on the eigenvalue ``lambda_j`` of its own surface ``j``
(``Swarm.active``: ``[initial] state``, or the surface drawn by ``sampling = "gibbs"``) with the
force ``F = -<psi_j| dV |psi_j>`` (Hellmann-Feynman, the eigenvector-weighted gradient), and never
leaves it. The electronic density matrix is the projector on ``psi_j`` at every step, so the
recorded adiabatic populations are those of the surfaces. This is the dynamics whose ensemble
averages the continuum fields of ``mqcd fields`` (mqcd/conservation) are built from; it conserves
every trajectory's energy ``|p|^2/2M + lambda_j``.
"""
import numpy as np
from numba import njit

from .base import Method
from .fssh import FSSH


@njit(cache=True)
def _projectors(V, active, rho):
    for i in range(V.shape[0]):
        a = active[i]
        for k in range(V.shape[1]):
            for l in range(V.shape[1]):
                rho[i, k, l] = V[i, k, a] * np.conj(V[i, l, a])


class Adiabatic(Method):
    name = "adiabatic"
    description = "Born-Oppenheimer dynamics on each trajectory's own adiabatic surface (PSS (5.17))"
    options = {}

    def setup(self, sw):
        _, V = sw.ensure_adiabatic()
        _projectors(V, sw.active, sw.rho)
        super().setup(sw)

    def electronic_step(self, sw, dt):
        _, V = sw.ensure_adiabatic()
        _projectors(V, sw.active, sw.rho)

    force = FSSH.surface_force              # the active surface's force and energy
    potential_energy = FSSH.potential_energy

    def state_weights(self, sw):
        w = np.zeros((sw.ntraj, self.model.nstates))
        w[np.arange(sw.ntraj), sw.active] = 1.0
        return w
