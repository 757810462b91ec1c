"""The magnetic (Berry-curvature) force of the active adiabatic surface, and its integrator.

For a complex electronic Hamiltonian (broken time-reversal symmetry) a nucleus moving adiabatically
on surface ``a`` feels, besides ``-d_k E_a``, the velocity-dependent force

    F^mag_k = sum_j B^a_kj v^j,   B^a_kj = -2 Im <d_k a | Q_a | d_j a>  (bohr^-2, antisymmetric),

the pseudo-magnetic force of MB (58) (Martinazzo & Burghardt; LRG (14): ``B x v`` of the
intranuclear curvature, and the internuclear term ``D`` (LRG (16)) for curvature between
coordinates of different nuclei; with all D coordinates in one vector the two are the same sum).
It does no work (``v . B v = 0``). Where the method propagates the electrons (Ehrenfest and the
ladder rungs) the force is already contained in the mean-field force of the propagated rho: MB
Table I and the text before (64) ("the pseudo-magnetic force vanishes precisely" in the
Lagrangian frame) - adding it there would count it twice. Surface hopping moves the nuclei on one
adiabatic surface, the adiabatic approximation of MB Table I (second column), so it needs the
force explicitly (G. Miao, N. Bellonzi and J. E. Subotnik, J. Chem. Phys. 150, 124101 (2019)):
``[method] berry_force`` of fssh and fssh-coupled.

The curvature comes from the projector ``P_a = |a><a|`` and its derivative ``d_k P_a =
[D_k, P_a]`` (``D_k = sum_{m != n} |m> d^k_mn <n|``, the coupling part of
:func:`mqcd.electronic.coherence.trajectory_derivatives`) through
:func:`mqcd.electronic.geometry.berry_curvature`; it is independent of eigenvector phases.

Integrator. The step of :class:`mqcd.methods.base.Method` becomes

    p += dt/2 F;  p <- R(x_n, dt/2) p;  x += dt p/M;  (H, rho, F at x_{n+1});
    p <- R(x_{n+1}, dt/2) p;  p += dt/2 F

with ``R(x, tau)`` the exact flow of ``dp/dt = B(x) M^-1 p`` at fixed x: with ``q = M^-1/2 p``,
``q <- exp(tau M^-1/2 B M^-1/2) q``, an orthogonal map, so the kinetic energy is unchanged by the
magnetic part to round-off (a rotation by the angle ``tau B_01 / sqrt(M_0 M_1)`` in 2D,
``scipy.linalg.expm`` otherwise). The composition is symmetric, hence second order, and the energy
``T + E_a`` is conserved to O(dt^2) like velocity Verlet's; for a uniform curvature on a flat
surface the motion is the cyclotron orbit with ``omega = B / M`` exactly (tests/test_transfer.py).
"""
from __future__ import annotations

import numpy as np

from ..electronic.coherence import trajectory_derivatives
from ..electronic.geometry import berry_curvature
from ..io.schema import Key

BERRY_KEYS = {
    "berry_force": Key("str", "auto", "the Berry-curvature (magnetic) force of the active surface, "
                       "sum_j B_kj v^j, with the magnetic-rotation step (mqcd/methods/magnetic.py): "
                       "'on', 'off', 'auto' (on for complex models, where B can be nonzero)",
                       choices=("auto", "on", "off")),
}


def active_curvature(dH, E, V, active):
    """Berry curvature ``B^a_kj`` (N, D, D) of the active adiabatic state of each trajectory
    (bohr^-2); dH (N, D, ns, ns), E (N, ns), V (N, ns, ns) columns = states, active (N,)."""
    N, D, ns, _ = dH.shape
    idx = np.arange(N)
    va = V[idx, :, active]                                           # (N, ns)
    P = np.einsum("na,nb->nab", va, va.conj()).astype(np.complex128)
    _, dP = trajectory_derivatives(P, dH, E, V, np.zeros((N, D, ns)), basis=True)
    return berry_curvature(P, dP)


def rotate(p, B, masses, tau):
    """``p <- exp(tau B M^-1) p`` in place (exact flow of dp/dt = B v at fixed B; kinetic energy
    conserved to round-off). p (N, D), B (N, D, D) antisymmetric, masses (D,)."""
    D = p.shape[1]
    s = 1.0 / np.sqrt(np.asarray(masses, dtype=np.float64))
    if D == 2:
        th = tau * B[:, 0, 1] * s[0] * s[1]
        c, sn = np.cos(th), np.sin(th)
        q0, q1 = p[:, 0] * s[0], p[:, 1] * s[1]
        p[:, 0] = (c * q0 + sn * q1) / s[0]
        p[:, 1] = (-sn * q0 + c * q1) / s[1]
        return p
    from scipy.linalg import expm
    S = tau * B * s[None, :, None] * s[None, None, :]
    R = expm(S)
    q = p * s
    p[...] = np.einsum("nkj,nj->nk", R, q) / s
    return p


class BerryForce:
    """The magnetic part of a surface-hopping method (module docstring).

    ``B`` (N, D, D) is the curvature of the active state at the current positions; ``force(sw)``
    the magnetic force ``B v`` at the current momenta (hartree/bohr).
    """

    def __init__(self, masses):
        self.masses = np.asarray(masses, dtype=np.float64)
        self.B = None

    def update(self, sw):
        E, V = sw.ensure_adiabatic()
        self.B = active_curvature(sw.dH, E, V, sw.active)

    def rotate(self, sw, tau):
        rotate(sw.p, self.B, self.masses, tau)

    def force(self, sw):
        return np.einsum("nkj,nj->nk", self.B, sw.p / self.masses)


def build_berry_force(opts, model):
    """A :class:`BerryForce` if ``[method] berry_force`` asks for it (and the model can have
    curvature), else None."""
    mode = opts.get("berry_force", "off")
    if mode == "off" or model.ndof < 2:
        return None
    if mode == "auto" and np.dtype(model.dtype).kind != "c":
        return None
    return BerryForce(model.masses)
