"""The swarm: whole-ensemble state as a structure of arrays (no per-trajectory objects)."""
from dataclasses import dataclass, field

import numpy as np

from ..electronic import adiabatic


@dataclass
class Swarm:
    """State of the (local part of the) swarm, atomic units.

    x, p : (N, D) positions (bohr) and momenta (a.u.); masses (D,) electron masses
    rho : (N, ns, ns) complex conditional electronic density matrices, diabatic basis
    active : (N,) int active adiabatic state (surface hopping; initial state otherwise)
    H, dH : diabatic Hamiltonian and gradient at x; H_prev the Hamiltonian at the previous step
    F : (N, D) force used for the next half kick (hartree/bohr)
    keys : (N, 2) uint64 random-stream keys; index : (N,) global trajectory indices
    E, V : adiabatic energies and eigenvectors at x, valid when ``adiabatic_step == step``
    counters : per-trajectory integer counters (hops, frustrated hops, ...)
    """
    x: np.ndarray
    p: np.ndarray
    rho: np.ndarray
    masses: np.ndarray
    keys: np.ndarray
    index: np.ndarray
    H: np.ndarray
    dH: np.ndarray
    H_prev: np.ndarray
    active: np.ndarray
    F: np.ndarray = None
    E: np.ndarray = None
    V: np.ndarray = None
    step: int = 0
    dt: float = 0.0
    adiabatic_step: int = -1
    counters: dict = field(default_factory=dict)
    E0: np.ndarray = None

    @property
    def ntraj(self):
        return self.x.shape[0]

    @property
    def t(self):
        return self.step * self.dt

    def kinetic_energy(self):
        return 0.5 * np.sum(self.p * self.p / self.masses, axis=1)

    def ensure_adiabatic(self):
        """Adiabatic energies and eigenvectors at the current positions (computed once per step)."""
        if self.adiabatic_step != self.step:
            self.E, self.V = diagonalize(self.H, self.E, self.V)
            self.adiabatic_step = self.step
        return self.E, self.V


def diagonalize(H, E=None, V=None):
    """The one place where methods obtain eigenvectors (tests randomise phases here)."""
    return adiabatic.eigh(H, E, V)
