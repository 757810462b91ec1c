"""The exactly solvable two-nucleus model of Li, Requist & Gross (2019 preprint with supplement,
main text eqs. (29)-(34), supplement Sec. III, (S70)-(S93)), solved on a grid and checked against
its analytic solution and the subsystem Ehrenfest identity for the momentum of nucleus 1.

Two nuclei in one dimension each (coordinates X_1, X_2; a 2D grid), mass M, with the prescribed
potentials (a0 = 1 bohr)

    A_1 = -X_2 + g_2(t) + M g_1'(t),   A_2 = X_1 - g_1(t) + M g_2'(t)            (33), (34)
    eps = (1/2M) (lap chi / chi - A_1^2 - A_2^2)                                  (31), (S93)
    g_1 = a0 (cos(t / sqrt M) + 2),    g_2 = a0 (sin(2 t / sqrt M) - 2)

whose solution of (29) is the moving Gaussian (30), (S90)

    chi = (M pi)^(-1/2) exp(-sum_mu (X_mu - g_mu(t))^2 / 2M).

Identity checked (2019 (25), (26); LRG 2022 (16), (17)): with v_hat_mu = (p_mu + A_mu)/M,
``P_1 = <chi|p_1 + A_1|chi>``, the electromotive force ``E_1 = d_t A_1 - d_1 eps`` (in 1D per
nucleus ``F_1 = E_1``) and the internuclear magnetic force ``D_1 = C_21 v_hat_2``
(``C_21 = d_2 A_1 - d_1 A_2 = -2``; the 2022 paper writes ``-C_12 v_hat_2`` with ``C_12 = 2``):

    dP_1/dt = Re<F_1 + D_1> = M g_1''(t) = -a0 cos(t / sqrt M)

while ``Re<F_1>`` alone differs by ``-Re<D_1> = 2 g_2'(t)``: the paper's Fig. 1. The same
identities hold for nucleus 2 and for the kinetic energy (2019 (14)). :func:`solve` propagates
the grid equation with :class:`mqcd.exact.gauge.VectorPotentialPropagator` and evaluates every
term from the *numerical* chi (spectral derivatives), so the checks test the propagator, not
the algebra.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .gauge import VectorPotentialPropagator


@dataclass
class LRGModel:
    """The solvable model (module docstring); ``M`` electron masses, ``a0`` bohr."""
    M: float = 2000.0
    a0: float = 1.0

    @property
    def masses(self):
        return np.array([self.M, self.M])

    @property
    def period(self):
        """Period of g_1, 2 pi sqrt(M) (a.u. of time)."""
        return 2.0 * math.pi * math.sqrt(self.M)

    def g(self, t, order=0):
        """``(g_1, g_2)`` and their time derivatives of ``order`` (bohr / a.u.^order)."""
        w1, w2 = 1.0 / math.sqrt(self.M), 2.0 / math.sqrt(self.M)
        ph = order * math.pi / 2
        g1 = self.a0 * w1 ** order * math.cos(w1 * t + ph) + (2.0 * self.a0 if order == 0 else 0)
        g2 = self.a0 * w2 ** order * math.sin(w2 * t + ph) - (2.0 * self.a0 if order == 0 else 0)
        return g1, g2

    def vector_potential(self, X, t):
        (g1, g2), (d1, d2) = self.g(t), self.g(t, 1)
        return np.stack([-X[1] + g2 + self.M * d1, X[0] - g1 + self.M * d2])

    def dA_dt(self, X, t):
        (d1, d2), (e1, e2) = self.g(t, 1), self.g(t, 2)
        one = np.ones_like(X[0])
        return np.stack([(d2 + self.M * e1) * one, (-d1 + self.M * e2) * one])

    def curvature(self, X, t):
        """``C[nu, mu] = d_nu A_mu - d_mu A_nu`` (bohr^-2), (2, 2, *grid)."""
        one = np.ones_like(X[0])
        return np.array([[0 * one, 2 * one], [-2 * one, 0 * one]])

    def _lap_ratio(self, X, t):
        g1, g2 = self.g(t)
        r2 = (X[0] - g1) ** 2 + (X[1] - g2) ** 2
        return r2 / self.M ** 2 - 2.0 / self.M                 # lap chi / chi

    def scalar_potential(self, X, t):
        A = self.vector_potential(X, t)
        return (self._lap_ratio(X, t) - A[0] ** 2 - A[1] ** 2) / (2.0 * self.M)

    def grad_eps(self, X, t):
        """``d_mu eps`` (hartree/bohr), (2, *grid)."""
        g1, g2 = self.g(t)
        A = self.vector_potential(X, t)
        # d_1 A_1 = 0, d_1 A_2 = 1, d_2 A_1 = -1, d_2 A_2 = 0
        d1 = (2.0 * (X[0] - g1) / self.M ** 2 - 2.0 * A[1]) / (2.0 * self.M)
        d2 = (2.0 * (X[1] - g2) / self.M ** 2 + 2.0 * A[0]) / (2.0 * self.M)
        return np.stack([d1, d2])

    def chi(self, X, t):
        """The analytic solution (30) on the meshes X."""
        g1, g2 = self.g(t)
        return (np.exp(-((X[0] - g1) ** 2 + (X[1] - g2) ** 2) / (2.0 * self.M))
                / math.sqrt(self.M * math.pi)).astype(np.complex128)

    def grid(self, half_width=None, dx=2.5):
        """Grid axes centred on the orbit: +- half_width (default 7 sqrt(M): amplitude
        exp(-24.5) ~ 2e-11 at the edge), spacing dx (bohr). chi's momentum spread is
        1/sqrt(2M), so dx = 2.5 bohr still holds 1/(dx sigma_p) ~ 25 points per unit."""
        L = 7.0 * math.sqrt(self.M) if half_width is None else float(half_width)
        n = int(2 * math.ceil(L / dx))
        c = (2.0 * self.a0, -2.0 * self.a0)
        return [ci - L + (np.arange(n) + 0.5) * (2 * L / n) for ci in c]


def observables(model, prop, chi, t):
    """The terms of the momentum identity for both nuclei from a grid chi at time t:
    ``P`` (2,), ``F`` = Re<E_mu> (2,), ``D`` = Re<D_mu> (2,), ``T`` (marginal kinetic energy),
    ``power`` = Re<sum E_mu v_mu>; per norm."""
    X, dv = prop.mesh, prop.dvol
    n = np.abs(chi) ** 2
    norm = float(n.sum() * dv)
    A = model.vector_potential(X, t)
    pchi = prop.momentum(chi)
    vel = [np.real(np.conj(chi) * (pchi[k] + A[k] * chi)) / model.M for k in range(2)]
    P = np.array([model.M * vel[k].sum() * dv for k in range(2)]) / norm
    E = model.dA_dt(X, t) - model.grad_eps(X, t)
    F = np.array([(E[k] * n).sum() * dv for k in range(2)]) / norm
    C = model.curvature(X, t)
    Dm = np.array([sum((C[nu, mu] * vel[nu]).sum() * dv for nu in range(2) if nu != mu)
                   for mu in range(2)]) / norm
    T = sum(float(np.sum(np.abs(pchi[k] + A[k] * chi) ** 2) * dv) for k in range(2)) \
        / (2.0 * model.M * norm)
    power = sum(float((E[k] * vel[k]).sum() * dv) for k in range(2)) / norm
    return {"P": P, "F": F, "D": Dm, "T": T, "power": power, "norm": norm}


def solve(model=None, periods=10.0, h=5.0, record=5.0, dx=2.5, half_width=None, tol=1e-12):
    """Propagate chi(0) = the analytic Gaussian over ``periods`` periods of g_1 with CF4-Lanczos
    steps of at most ``h`` (a.u.), recording every ``record`` a.u.; returns a dict of arrays:
    ``time``, ``P``, ``F``, ``D`` (nt, 2), ``T``, ``power``, ``norm_error`` (||chi - chi_exact||),
    ``norm`` and the analytic ``Mg1dd`` = M g_1''(t), plus ``krylov`` (largest Krylov dimension)."""
    model = model or LRGModel()
    prop = VectorPotentialPropagator(model, model.grid(half_width, dx), tol=tol)
    t_end = periods * model.period
    nrec = int(math.floor(t_end / record + 1e-9))
    times = np.concatenate([np.arange(nrec + 1) * record, [t_end]]) if nrec * record < t_end \
        - 1e-9 else np.arange(nrec + 1) * record
    chi = model.chi(prop.mesh, 0.0)
    out = {k: [] for k in ("P", "F", "D", "T", "power", "norm", "norm_error")}
    t = 0.0
    for tr in times:
        if tr > t:
            chi = prop.propagate(chi, t, tr, h)
            t = tr
        o = observables(model, prop, chi, t)
        for k in ("P", "F", "D", "T", "power", "norm"):
            out[k].append(o[k])
        err = chi - model.chi(prop.mesh, t)
        out["norm_error"].append(math.sqrt(float(np.sum(np.abs(err) ** 2) * prop.dvol)))
    res = {k: np.array(v) for k, v in out.items()}
    res["time"] = times
    res["Mg1dd"] = np.array([model.M * model.g(s, 2)[0] for s in times])
    res["krylov"] = prop.krylov_used
    res["grid"] = [a.size for a in prop.axes]
    return res
