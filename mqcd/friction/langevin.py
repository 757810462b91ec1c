r"""Molecular dynamics with electronic friction (MDEF), ``[method] name = "friction-langevin"``
(MB (116) with the random force of the fluctuation-dissipation theorem (117); docs/friction.md).

Nuclei move on ``F0(x)`` with ``-eta(x) v + B(x) v`` and a random force with
``<R_k(t) R_j(t')> = 2 k_B T eta_kj(x) delta(t - t')``:

    dp = F0 dt - (eta - B) M^{-1} p dt + sqrt(2 kT) eta^{1/2} dW.

The friction quantities come from a table: at the start of the run the calculator
(:mod:`mqcd.friction.calculator`, source "band" or "wide-band") evaluates ``F0``, ``eta``, ``B``
(and in equilibrium ``Phi_el + U0``) on a product grid over ``table_range`` with
``table_points`` per dof; the step interpolates them by cubic splines (scipy CubicSpline in one
dof, RegularGridInterpolator beyond). Each rank builds the same table (the same numbers, so MPI equals serial).

Integrator: the BAOAB splitting of Leimkuhler and Matthews (B: half kick with F0; A: half
drift; O: the exact Ornstein-Uhlenbeck step of the friction at the midpoint position; A; B), with
the O step exact for a position-dependent tensor: in mass-weighted momenta ``u = M^{-1/2} p``,
``u <- E u + L xi``, ``E = expm(-A dt)``, ``A = M^{-1/2}(eta - B)M^{-1/2}``,
``L L^T = kT (1 - E E^T)`` (the stationary covariance is ``kT M`` because ``A + A^T`` is
``2 M^{-1/2} eta M^{-1/2}``: B is antisymmetric). ``xi`` are standard normals from the
trajectory's own counter-based stream (``STREAM_FRICTION``; (key, step) only), so a trajectory's
path does not depend on the swarm size or the MPI decomposition.

The swarm of this method carries a one-state "mean-force surface" model (``H = Phi_el + U0``
from the table, ``dH = -F0``): the electrons are not propagated, the Recorder's potential energy
is the free energy (0 out of equilibrium, where there is none).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.interpolate
import scipy.linalg

from ..ensemble.streams import STREAM_FRICTION, normals
from ..models.base import Model


def step_normals(keys, step, out):
    """Standard normals ``out`` (n, D <= 64) of step ``step`` from each trajectory's stream
    ``STREAM_FRICTION`` (counters step x 64 + j)."""
    return normals(keys, STREAM_FRICTION, out.shape[1], out, np.int64(step) * 64)


class FrictionTable:
    """F0, eta, B and (equilibrium) Phi_el + U0 on a product grid, interpolated (cubic)."""

    def __init__(self, model, lo, hi, points, kT, mu=0.0, n_el=None, bias=0.0, source="auto"):
        from .calculator import friction_at
        D = model.ndof
        self.axes = [np.linspace(lo, hi, points) for _ in range(D)]
        grid = np.stack(np.meshgrid(*self.axes, indexing="ij"), axis=-1).reshape(-1, D)
        res = [friction_at(model, x, kT, mu, n_el, bias, source) for x in grid]
        shape = (points,) * D
        self.F0 = np.array([r.F0 for r in res]).reshape(shape + (D,))
        self.eta = np.array([r.eta for r in res]).reshape(shape + (D, D))
        self.B = np.array([r.B for r in res]).reshape(shape + (D, D))
        phi = [r.free_energy for r in res]
        self.Phi = None if any(p is None for p in phi) else np.array(phi).reshape(shape)
        if self.Phi is None and D == 1 and bias == 0.0:
            # equilibrium without a free energy from the source (wide-band): Phi = -int F0 dx
            # (a constant off), by the cubic spline of the tabulated force
            spl = scipy.interpolate.CubicSpline(self.axes[0], self.F0[:, 0])
            self.Phi = -spl.antiderivative()(self.axes[0])
        self.source = res[0].source
        self.broadening_error = max(r.eta_change for r in res)
        self.lo, self.hi, self.D = lo, hi, D
        method = "cubic" if points >= 4 else "linear"

        def mk(v):
            if D == 1 and method == "cubic":     # a precomputed spline: fast per call
                spl = scipy.interpolate.CubicSpline(self.axes[0], v, axis=0)
                return lambda x: spl(x[:, 0])
            return scipy.interpolate.RegularGridInterpolator(
                self.axes, v, method=method, bounds_error=False, fill_value=None)
        self._F0, self._eta, self._B = mk(self.F0), mk(self.eta), mk(self.B)
        self._Phi = mk(self.Phi) if self.Phi is not None else None

    def outside(self, x):
        """Number of rows of ``x`` (n, D) outside the table (extrapolated there)."""
        return int(np.sum(np.any((x < self.lo) | (x > self.hi), axis=1)))

    def force(self, x):
        return self._F0(x)

    def potential(self, x):
        return self._Phi(x) if self._Phi is not None else np.zeros(x.shape[0])

    def tensors(self, x):
        eta = self._eta(x)
        return 0.5 * (eta + np.swapaxes(eta, 1, 2)), self._B(x)


class MeanForceSurface(Model):
    """One-state model of the friction method's swarm: ``H = Phi_el + U0`` (table), ``dH = -F0``
    (hartree, hartree/bohr); masses, reference and name of the physical model."""

    def __init__(self, model, table):
        self.name = model.name
        self.nstates = 1
        self.ndof = model.ndof
        self.parameters = {}
        self.param_values = {}
        self.params = np.zeros(0)
        self.masses = model.masses
        self.interaction_radius = model.interaction_radius
        self.table = table
        self.physical = model
        if getattr(model, "harmonic_reference", None) is not None:
            self.harmonic_reference = model.harmonic_reference

    def evaluate(self, x):
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64)
        H = self.table.potential(x)[:, None, None].astype(np.float64)
        dH = -self.table.force(x)[:, :, None, None]
        return np.ascontiguousarray(H), np.ascontiguousarray(dH)


def ou_step(p, masses, eta, B, kT, dt, xi):
    """The exact Ornstein-Uhlenbeck step of the friction (module docstring), in place on ``p``
    (n, D); ``eta``, ``B`` (n, D, D) at the trajectories' positions, ``xi`` (n, D) normals."""
    s = 1.0 / np.sqrt(masses)
    A = (eta - B) * s[None, :, None] * s[None, None, :]
    u = p * s
    if A.shape[1] == 1:
        e = np.exp(-A[:, 0, 0] * dt)
        var = kT * np.clip(-np.expm1(-2.0 * A[:, 0, 0] * dt), 0.0, None)
        u = e[:, None] * u + np.sqrt(var)[:, None] * xi
    else:
        E = scipy.linalg.expm(-A * dt)
        C = kT * (np.eye(A.shape[1])[None] - E @ np.swapaxes(E, 1, 2))
        w, V = np.linalg.eigh(0.5 * (C + np.swapaxes(C, 1, 2)))
        L = V * np.sqrt(np.clip(w, 0.0, None))[:, None, :]
        u = np.einsum("nij,nj->ni", E, u) + np.einsum("nij,nj->ni", L, xi)
    p[...] = u / s


def check_range(warned, n_out, where):
    """One warning per run when trajectories leave the table."""
    if n_out and not warned:
        warnings.warn(f"friction-langevin: {n_out} trajector{'y' if n_out == 1 else 'ies'} "
                      f"outside [method] table_range {where}: F0, eta, B are extrapolated "
                      "there; widen table_range", RuntimeWarning, stacklevel=3)
        return True
    return warned
