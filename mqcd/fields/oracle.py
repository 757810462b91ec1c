"""The oracle: exact fields from the split-operator solution propagated alongside the swarm.

With ``[method] field_method = "exact"`` the grid solver of ``mqcd exact`` (same deck, same
``[exact]`` keys, mqcd/exact) runs in lock step with the trajectories: before every field estimate
the wavefunction is advanced to the swarm's time (an integer number of split-operator steps per
nuclear step, ``dt_exact <= min(run.dt, dt_rule)``), and the exact-factorisation fields
(mqcd/exact/factorization.py) are interpolated to the trajectories: ``n``, ``d^k ln n``
(k <= 3), ``rho(x)``, ``d rho``, ``d^2 rho``. A method fed with them has no estimator error, so
its remaining error against the exact result is the method's own ("method floor", docs/ladder.md).

The same machinery, with ``[method] exact_reference = true``, leaves the method's own estimator in
charge and only measures it: ``diagnostics/rho_deviation`` (swarm mean of the Frobenius norm
``||rho_I - rho_exact(x_I)||``) and ``diagnostics/drho_error`` (relative rms error of the
estimator's ``d rho`` at the trajectories, exact field as reference) at every record.

Trajectories outside the exact grid (or on a node of n) get no corrections (their own rho, zero
derivatives) and are counted in ``diagnostics/outside_exact_grid``; widen ``[exact] box`` if
that is not zero while they still matter. 1D and 2D models (the exact solver's limit). The wavefunction is not checkpointed: after a restart
it is propagated again from t = 0 to the restart time (deterministic, so the continued run equals
an uninterrupted one).
"""
from __future__ import annotations

import math

import numpy as np

from .base import SwarmEstimator


class ExactWavefunction:
    """The deck's initial wavepacket propagated exactly, on demand, to the swarm's steps.

    Parameters
    ----------
    deck : mqcd.io.deck.Deck (validated); model : its model.
    """

    def __init__(self, deck, model):
        from ..exact.grid import check_dimensions, plan_grid
        from ..exact.propagator import SplitOperator
        check_dimensions(model)
        ini = deck.initial
        plan = plan_grid(deck, model)
        dt = float(deck.run["dt"])
        target = deck.exact["dt"] if deck.exact.get("dt", 0.0) > 0 else min(dt, plan.dt_rule)
        self.nsub = max(1, math.ceil(dt / target - 1e-9))
        self.op = SplitOperator(model, plan, ini["position"], workers=deck.exact.get("workers", 1))
        self.psi0 = self.op.initial_state(ini["position"], ini["momentum"], ini["width"],
                                          ini["state"], chirp=ini.get("chirp"))
        self.op.set_dt(dt / self.nsub)
        self.psi = self.psi0.copy()
        self.step = 0
        self.plan = plan
        self._fields = None

    def advance(self, step):
        """Propagate to nuclear step ``step`` (from t = 0 again if ``step`` is behind)."""
        if step < self.step:
            self.psi, self.step = self.psi0.copy(), 0
        if step > self.step:
            self.psi = self.op.propagate(self.psi, self.nsub * (step - self.step))
            self.step = step
            self._fields = None

    def grid_fields(self):
        """:class:`mqcd.exact.factorization.GridFields` of the current wavefunction (cached)."""
        from ..exact.factorization import GridFields
        if self._fields is None:
            self._fields = GridFields(self.psi, self.op.axes, workers=self.op.workers)
        return self._fields

    def fields_at(self, step, x, need_rho2=True):
        self.advance(step)
        return self.grid_fields().fields_at(x, need_rho2=need_rho2)


class ExactEstimator(SwarmEstimator):
    """``field_method = "exact"``: the exact fields at the trajectories (module docstring)."""

    name = "exact"
    has_divergence = False          # exact fields: the pointwise forms are exact

    def __init__(self, opts, model, deck, comm, need, conservative=False):
        super().__init__(opts, model, deck, comm, need, conservative)
        self.wf = ExactWavefunction(deck, model)

    def estimate(self, sw, need=None):
        need = self.need if need is None else tuple(need)
        f = self.wf.fields_at(sw.step, sw.x, need_rho2="rho2" in need)
        f.masses = self.masses
        f.weights = np.full(sw.ntraj, 1.0 / max(sw.ntraj, 1))
        # trajectories outside the exact grid (or exactly on a node of n): no exact field there;
        # they get none of the corrections (their own rho, zero derivatives) and are counted
        bad = ~(np.isfinite(f.n) & (f.n > 0))
        self.outside = int(bad.sum())
        if self.outside:
            f.n[bad] = 0.0
            for name in ("dlogn", "d2logn", "d3logn", "drho", "d2rho"):
                a = getattr(f, name)
                if a is not None:
                    a[bad] = 0.0
            f.rho[bad] = sw.rho[bad]
        self.last = f
        return f

    def records(self):
        D = self.masses.size
        return {"diagnostics/bandwidth_density": (np.zeros(D), "bohr"),
                "diagnostics/bandwidth_regression": (np.zeros(D), "bohr"),
                # trajectories beyond the exact grid at the last estimate (all ranks)
                "diagnostics/outside_exact_grid": (float(self.comm.sum_rows(
                    np.full((1, 1), float(getattr(self, "outside", 0))))[0]), "1")}
