"""Energy, momentum and angular-momentum budgets of a run and the residuals of their identities.

Every run records, per output time, the quantities of the subsystem Ehrenfest identities of Li,
Requist & Gross (LRG, PRL 128, 113001 (2022); docs/transfer.md):

=================================  ================================  ==============================
quantity (dataset)                 its rate (dataset)                identity
=================================  ================================  ==============================
``nuclear/momentum_mean`` P        ``nuclear/force_mean`` <F>        dP/dt = <F>        (LRG (17))
``energy/kinetic`` T               ``energy/power`` <F.v>            dT/dt = <F.v>      (LRG (19))
``nuclear/angular_momentum`` L     ``nuclear/torque`` <(x-o) x F>    dL/dt = <torque>   (LRG (18))
=================================  ================================  ==============================

plus, for methods with discontinuous events (surface hopping: momentum rescaling at hops and
reversals at frustrated hops), the accumulated mean event impulse ``nuclear/event_impulse``, work
``energy/event_work`` and angular impulse ``nuclear/event_angular_impulse``, so that
``P(t) - P(0) = int_0^t <F> dt' + J(t)`` closes.

:func:`time_derivative` (derivative of an interpolating spline, ``scipy.interpolate``) gives the
finite-difference side of an identity, :func:`identity_residuals` both forms of the residual:

* rate form ``r(t) = dX/dt - rate`` (exact runs: the rates are smooth), relative to
  ``max |rate|``;
* integrated form ``R(t) = X(t) - X(0) - int_0^t rate dt' - event(t)`` (trajectory runs: the
  integral of the recorded rate by the spline's antiderivative), relative to
  ``max |X - X(0)|`` (or the integral of ``|rate|`` if larger). For the velocity-Verlet step the
  integrated residual is the trapezoid error of the step, ``-(dt^2/12) [rate'(t) - rate'(0)]``:
  it shrinks as dt^2 (tests/test_transfer.py).
"""
from __future__ import annotations

import numpy as np

#: (quantity, rate, event term, label) of each identity
IDENTITIES = (
    ("nuclear/momentum_mean", "nuclear/force_mean", "nuclear/event_impulse", "momentum"),
    ("energy/kinetic", "energy/power", "energy/event_work", "kinetic energy"),
    ("nuclear/angular_momentum", "nuclear/torque", "nuclear/event_angular_impulse",
     "angular momentum"),
)
#: the exact solver's identities of the exact-factorisation split (LRG (5), (10), (19))
EXACT_IDENTITIES = (
    ("energy/kinetic_marginal", "energy/power_marginal", None, "marginal kinetic energy"),
    ("energy/geometric", "energy/power_geometric", None, "geometric kinetic energy"),
)


def _spline(t, y, k=5):
    from scipy.interpolate import make_interp_spline
    t = np.asarray(t, float)
    y = np.asarray(y, float)
    keep = np.concatenate([[True], np.diff(t) > 1e-12 * max(abs(t[-1]), 1.0)])
    t, y = t[keep], y[keep]
    k = int(min(k, len(t) - 1)) if len(t) > 1 else 0
    if k % 2 == 0:
        k = max(k - 1, 1)
    return make_interp_spline(t, y, k=k, axis=0), keep


def time_derivative(t, y, k=5):
    """dy/dt at the times ``t`` from the interpolating spline of order ``k`` (odd, default 5,
    lowered for short series; ``scipy.interpolate.make_interp_spline``). ``y``: (nt, ...)."""
    y = np.asarray(y, float)
    if len(t) < 2:
        return np.zeros_like(y)
    s, _ = _spline(t, y, k)
    return s.derivative()(np.asarray(t, float))


def cumulative_integral(t, y, k=5):
    """int_{t_0}^{t} y dt' at the times ``t`` (antiderivative of the interpolating spline)."""
    y = np.asarray(y, float)
    if len(t) < 2:
        return np.zeros_like(y)
    s, _ = _spline(t, y, k)
    a = s.antiderivative()
    t = np.asarray(t, float)
    return a(t) - a(t[:1])


def identity_residual(t, X, rate, event=None, k=5):
    """Residuals of ``dX/dt = rate (+ d event/dt)`` (module docstring).

    Returns a dict: ``rate_fd`` (dX/dt by :func:`time_derivative`), ``rate_residual``
    (rate_fd - rate - d event/dt), ``integrated_residual`` (X - X0 - int rate - event), and the
    scalars ``rate_relative`` = max |rate_residual| / max |rate| (interior points: the spline's
    end intervals are left out) and ``integrated_relative`` = max |R| / scale, scale =
    max(max |X - X0|, int |rate|, max |event|)."""
    t = np.asarray(t, float)
    X = np.asarray(X, float)
    rate = np.asarray(rate, float)
    ev = np.zeros_like(X) if event is None else np.asarray(event, float)
    fd = time_derivative(t, X, k)
    evr = time_derivative(t, ev, k) if event is not None else 0.0
    r = fd - rate - evr
    R = X - X[:1] - cumulative_integral(t, rate, k) - (ev - ev[:1])
    inner = slice(k, len(t) - k) if len(t) > 2 * k + 2 else slice(None)
    top = np.max(np.abs(rate)) if rate.size else 0.0
    scale = max(np.max(np.abs(X - X[:1])) if X.size else 0.0,
                float(np.max(np.abs(cumulative_integral(t, np.abs(rate), k)))) if rate.size
                else 0.0, np.max(np.abs(ev)) if ev.size else 0.0)
    return {"rate_fd": fd, "rate_residual": r, "integrated_residual": R,
            "rate_relative": float(np.max(np.abs(r[inner])) / top) if top > 0 else 0.0,
            "integrated_relative": float(np.max(np.abs(R)) / scale) if scale > 0 else 0.0}


def identity_residuals(res, k=5):
    """:func:`identity_residual` of every identity the run ``res`` (a Result) has data for:
    {label: dict}; the exact solver's split identities included."""
    t = np.asarray(res["time"], float)
    out = {}
    for X, rate, ev, label in IDENTITIES + EXACT_IDENTITIES:
        if X in res and rate in res:
            out[label] = identity_residual(t, res[X], res[rate],
                                           res[ev] if ev is not None and ev in res else None, k)
    return out


def step_residuals(res):
    """Budgets of a trajectory run recorded at *every* step (``[output] stride = 1``), integrated
    with the trapezoid rule, which is what velocity Verlet's two half kicks are: {label:
    relative residual} with ``R = X(t) - X(0) - trapezoid(rate) - event(t)`` and the relative
    value ``max |R| / max |X - X(0)|``. The momentum residual is round-off when every momentum
    change is either a kick with the recorded force or a booked event (hops, reversals,
    ehrenfest-qc's energy restoration and the half kick a hop's force jump leaves,
    :func:`mqcd.methods.base.book_events`), for forces that jump in time too (the population
    reset of ehrenfest-qc's accumulated forces); kinetic energy and angular momentum close to the
    step's O(dt^2), and so does the momentum with a Berry force (its exact rotation of p is not a
    kick). Raises ValueError if the records are not uniformly spaced."""
    t = np.asarray(res["time"], float)
    if t.size < 3 or np.ptp(np.diff(t)) > 1e-9 * max(1.0, float(t[-1])):
        raise ValueError("step_residuals needs records at every step ([output] stride = 1) "
                         "and a run that is not cut short between records")
    out = {}
    for X, rate, ev, label in IDENTITIES:
        if X not in res or rate not in res:
            continue
        x = np.asarray(res[X], float)
        r = np.asarray(res[rate], float)
        e = np.asarray(res[ev], float) if ev in res else np.zeros_like(x)
        dt = np.diff(t).reshape((-1,) + (1,) * (x.ndim - 1))
        trap = np.concatenate([np.zeros_like(x[:1]), np.cumsum(0.5 * dt * (r[1:] + r[:-1]), 0)])
        R = x - x[:1] - trap - (e - e[:1])
        scale = float(np.max(np.abs(x - x[:1])))
        out[label] = float(np.max(np.abs(R)) / scale) if scale > 0 else 0.0
    return out


def geometric_peak(res):
    """``(value, time)`` of the largest ``energy/geometric`` of the run (None if absent)."""
    if "energy/geometric" not in res:
        return None
    g = np.asarray(res["energy/geometric"], float)
    i = int(np.nanargmax(g))
    return float(g[i]), float(np.asarray(res["time"])[i])


def marginal_kinetic(res):
    """T_marg(t): ``energy/kinetic_marginal`` of an exact run; for a trajectory run the kinetic
    energy of the trajectories (``energy/kinetic``, plus ``energy/quantum`` for qhd), its
    counterpart in the hydrodynamic picture (docs/transfer.md)."""
    if "energy/kinetic_marginal" in res:
        return np.asarray(res["energy/kinetic_marginal"], float)
    if "energy/kinetic" not in res:
        return None
    T = np.asarray(res["energy/kinetic"], float)
    if "energy/quantum" in res:
        T = T + np.asarray(res["energy/quantum"], float)
    return T


# ----------------------------------------------------------------------------- trajectory budgets
#: the angular momentum is recorded for 2 <= D <= MAX_ANGULAR_DOF (all planes (i, j), i < j)
MAX_ANGULAR_DOF = 10

BUDGET_UNITS = {
    "nuclear/force_mean": "hartree / bohr",
    "energy/power": "hartree / atomic_unit_of_time",
    "energy/electronic": "hartree",
    "nuclear/angular_momentum": "electron_mass * bohr ** 2 / atomic_unit_of_time",
    "nuclear/torque": "hartree",
    "nuclear/event_impulse": "electron_mass * bohr / atomic_unit_of_time",
    "energy/event_work": "hartree",
    "nuclear/event_angular_impulse": "electron_mass * bohr ** 2 / atomic_unit_of_time",
    "energy/geometric": "hartree",
}
BUDGET_DIMS = {"nuclear/force_mean": ("time", "dof"),
               "nuclear/event_impulse": ("time", "dof"),
               "nuclear/angular_momentum": ("time", "plane"),
               "nuclear/torque": ("time", "plane"),
               "nuclear/event_angular_impulse": ("time", "plane")}


def angular_pairs(D):
    """The planes (i, j), i < j, whose angular momentum ``x_i p_j - x_j p_i`` is recorded (none
    for D = 1 or D > :data:`MAX_ANGULAR_DOF`); D = 2: the one plane (0, 1)."""
    if D < 2 or D > MAX_ANGULAR_DOF:
        return []
    return [(i, j) for i in range(D) for j in range(i + 1, D)]


class Budget:
    """Per-trajectory columns of the energy, momentum and angular-momentum budget of a swarm
    (module docstring); the :class:`mqcd.analysis.observables.Recorder` sums them exactly over the
    trajectories (and MPI ranks) with its other columns.

    ``[output] budgets`` (default true) switches them on, ``angular_origin`` is the origin of L and
    the torque, and ``geometric = true`` adds the swarm estimate of T_geo for methods that have no
    metric of their own (Ehrenfest, surface hopping): ``(1/2) sum_k g_kk / M_k`` at the
    trajectories from the kernel estimator's d rho (mqcd/fields/kernel.py, default bandwidths), a
    diagnostic that costs one field estimate per record.
    """

    def __init__(self, method):
        from ..electronic.propagate import mean_field_energy
        self._energy = mean_field_energy
        self.method = method
        out = getattr(method.deck, "output", {}) or {}
        self.on = bool(out.get("budgets", True))
        D = int(method.model.ndof)
        self.D = D
        o = out.get("angular_origin", []) or []
        self.origin = np.zeros(D) if len(o) == 0 else np.asarray(o, dtype=np.float64)
        if self.origin.size != D:
            raise ValueError(f"[output] angular_origin has {self.origin.size} entries for "
                             f"{D} nuclear dof")
        self.pairs = angular_pairs(D)
        self.geometric = bool(out.get("geometric", False)) and not hasattr(method, "T_geo") \
            and not hasattr(method, "_init_fields")
        self.estimator = None
        self.names = []

    def _tgeo(self, sw):
        from ..electronic.geometry import geometry_from_fields
        if self.estimator is None:
            from ..fields import build_estimator
            from ..methods.ladder import FIELD_KEYS
            opts = {k: v.default for k, v in FIELD_KEYS.items()}
            self.estimator = build_estimator("kernel", opts, self.method.model, self.method.deck,
                                             self.method.comm, ("density", "rho"))
        f = self.estimator.estimate(sw)
        return geometry_from_fields(f, self.method.model.masses).T_geo

    def columns(self, sw):
        """(N, K) per-trajectory columns; ``self.names`` lists (name, width) in order."""
        if not self.on:
            self.names = []
            return np.empty((sw.ntraj, 0))
        m = self.method
        F = sw.F if m.magnetic is None else sw.F + m.magnetic.force(sw)
        v = sw.p / sw.masses
        cols = [F, np.sum(F * v, axis=1)[:, None], self._energy(sw.rho, sw.H)[:, None]]
        names = [("nuclear/force_mean", self.D), ("energy/power", 1), ("energy/electronic", 1)]
        if self.pairs:
            r = sw.x - self.origin
            L = np.stack([r[:, i] * sw.p[:, j] - r[:, j] * sw.p[:, i] for i, j in self.pairs], 1)
            xi = 1.0 / np.asarray(sw.masses, dtype=np.float64)
            tau = np.stack([r[:, i] * F[:, j] - r[:, j] * F[:, i]
                            + sw.p[:, i] * sw.p[:, j] * (xi[i] - xi[j]) for i, j in self.pairs], 1)
            cols += [L, tau]
            names += [("nuclear/angular_momentum", len(self.pairs)),
                      ("nuclear/torque", len(self.pairs))]
        if m.books_events:
            c = sw.counters
            J = c.get("event_impulse", np.zeros_like(sw.p))
            cols += [J, c.get("event_work", np.zeros(sw.ntraj))[:, None]]
            names += [("nuclear/event_impulse", self.D), ("energy/event_work", 1)]
            if self.pairs:
                A = c.get("event_angular", np.zeros((sw.ntraj, len(self.pairs)))).copy()
                for q, (i, j) in enumerate(self.pairs):
                    A[:, q] -= self.origin[i] * J[:, j] - self.origin[j] * J[:, i]
                cols.append(A)
                names.append(("nuclear/event_angular_impulse", len(self.pairs)))
        if self.geometric:
            cols.append(np.asarray(self._tgeo(sw))[:, None])
            names.append(("energy/geometric", 1))
        self.names = names
        return np.concatenate(cols, axis=1) if cols else np.empty((sw.ntraj, 0))

    def values(self, s):
        """{name: ensemble mean} from the summed (and normalised) columns ``s``."""
        out, k = {}, 0
        for name, w in self.names:
            v = s[k:k + w]
            scalar = w == 1 and (name not in BUDGET_DIMS or BUDGET_DIMS[name][1] == "plane")
            out[name] = float(v[0]) if scalar else v
            k += w
        return out
