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
