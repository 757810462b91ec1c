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
    E_prev, V_prev : the decomposition before that (``adiabatic_prev_step``): surface hopping's
        many-state propagator reuses it, and it is the warm start of the next one
    counters : per-trajectory integer counters (hops, frustrated hops, ...)
    weight : (N,) statistical weight of each trajectory (None: all equal); ensemble averages are
        sum_i w_i A_i / sum_i w_i (e.g. the multi-surface canonical ensemble, q_j = Z_j / Z)
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
    E_prev: np.ndarray = None
    V_prev: np.ndarray = None
    adiabatic_prev_step: int = -1
    weight: np.ndarray = None
    info: dict = field(default_factory=dict)

    @property
    def ntraj(self):
        return self.x.shape[0]

    @property
    def t(self):
        return self.step * self.dt

    def kinetic_energy(self):
        return 0.5 * np.sum(self.p * self.p / self.masses, axis=1)

    def ensure_adiabatic(self):
        """Adiabatic energies and eigenvectors at the current positions (computed once per step).

        The previous decomposition is kept (``previous_adiabatic``) and, for real many-state
        models, is the warm start of the batched Jacobi solver."""
        if self.adiabatic_step != self.step:
            old_E, old_V, old_step = self.E, self.V, self.adiabatic_step
            E, V = self.E_prev, self.V_prev
            if E is None or old_E is None or E.shape != old_E.shape or V.shape != old_V.shape \
                    or V.dtype != old_V.dtype:
                E = V = None
            if diagonalize is _diagonalize and old_V is not None and old_step >= 0:
                self.E, self.V = adiabatic.eigh(self.H, E, V, warm_from=old_V)
            else:
                self.E, self.V = diagonalize(self.H, E, V)
            self.E_prev, self.V_prev, self.adiabatic_prev_step = old_E, old_V, old_step
            self.adiabatic_step = self.step
        return self.E, self.V

    def previous_adiabatic(self):
        """``(E, V)`` of the step before the current one, or None if not at hand."""
        if self.adiabatic_prev_step == self.step - 1 and self.V_prev is not None \
                and self.V_prev.shape[0] == self.ntraj:
            return self.E_prev, self.V_prev
        return None


def _diagonalize(H, E=None, V=None):
    """The one place where methods obtain eigenvectors (tests randomise phases here)."""
    return adiabatic.eigh(H, E, V)


diagonalize = _diagonalize
