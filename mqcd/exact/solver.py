"""Driver of the exact reference: deck in, :class:`mqcd.io.results.Result` out."""
from __future__ import annotations

import math
import time as _time

import numpy as np

from .._version import __version__
from ..io.results import Result
from .grid import check_dimensions, plan_grid
from .propagator import SplitOperator


def _as_deck(deck):
    """The validated deck and its model (the deck module imports this package's schema, so it
    is imported here, where it is used, not at module level)."""
    from ..io.deck import Deck, deck_model, read_deck
    if not isinstance(deck, Deck):
        deck = read_deck(deck, for_exact=True)
    return deck, deck_model(deck)


def exact_plan(deck):
    """The grid and time step :func:`run_exact` would use for ``deck`` (no propagation).

    Returns ``(plan, dt_used, steps_per_record)``: the :class:`~mqcd.exact.grid.GridPlan`, the
    propagator step (a.u. of time) and the number of steps between output times.
    """
    deck, model = _as_deck(deck)
    check_dimensions(model)
    plan = plan_grid(deck, model)
    dt_rec = deck.output["stride"] * deck.run["dt"]
    target = deck.exact["dt"] if deck.exact.get("dt", 0.0) > 0 else min(deck.run["dt"], plan.dt_rule)
    nsub = max(1, math.ceil(dt_rec / target - 1e-9))
    return plan, dt_rec / nsub, nsub


def wavefunction_at(deck, t):
    """The deck's initial packet propagated on the solver's grid to time ``t`` (a.u. of time,
    rounded to the propagator step), without records: for analysing one snapshot.

    Returns ``(op, psi, model, plan)``: the :class:`SplitOperator` (step set), the grid
    wavefunction psi[a, *grid] (diabatic), the model and the :class:`~mqcd.exact.grid.GridPlan`.
    """
    deck, model = _as_deck(deck)
    plan, dt, _ = exact_plan(deck)
    ini = deck.initial
    op = SplitOperator(model, plan, ini["position"], workers=deck.exact.get("workers", 1))
    psi = op.initial_state(ini["position"], ini["momentum"], ini["width"], ini["state"],
                           chirp=ini.get("chirp"))
    op.set_dt(dt)
    n = int(round(float(t) / dt))
    return op, (op.propagate(psi, n) if n > 0 else psi), model, plan


def run_exact(deck, *, progress=None) -> Result:
    """Propagate the deck's initial wavepacket exactly on a grid (split-operator FFT).

    Parameters
    ----------
    deck : Deck, dict, str or path
        A deck (validated with ``for_exact=True`` if not already a :class:`Deck`). Uses
        ``[initial]`` (position, momentum, width = density std, state = adiabatic state),
        ``[run]`` (dt, t_end, stop, exit_radius, seed), ``[output]`` (stride) and ``[exact]``
        (see :data:`mqcd.exact.EXACT_KEYS`).
    progress : callable, optional
        Called as ``progress(t, t_end)`` after every output time.

    Returns
    -------
    Result
        Time series recorded at ``t = j * stride * run.dt`` (and at the final time):
        ``time`` (a.u. of time), ``norm``, ``populations/adiabatic`` and ``populations/diabatic``
        (nt, ns; absorbed norm included, so they sum to 1), ``energy/total|kinetic|potential``
        (hartree, per remaining norm), ``nuclear/position_mean`` (bohr) and
        ``nuclear/momentum_mean`` (a.u.) (nt, ndof; per remaining norm), ``coherence/indicator``,
        ``exact/norm_inside`` and ``exact/norm_not_out`` (nt), ``density/grid_x`` [``grid_y``]
        (bohr) and ``density/n`` (nt, nx[, ny]) (1/bohr^ndof); for scattering models
        ``branching/transmission`` and ``branching/reflection`` (ns) at the final time, and with
        the absorbing boundary ``exact/absorbed`` (nt, 2, ns) (side: x_0 < 0, x_0 > 0; adiabatic).
    """
    t_wall = _time.perf_counter()
    deck, model = _as_deck(deck)
    plan, dt, nsub = exact_plan(deck)
    ini, run, ex = deck.initial, deck.run, deck.exact
    exit_radius = run["exit_radius"] if run["exit_radius"] > 0 else float(model.interaction_radius)
    exit_norm = float(ex["exit_norm"])
    stop_exit = run["stop"] == "exit"
    t_end = float(run["t_end"])
    dt_rec = deck.output["stride"] * run["dt"]

    op = SplitOperator(model, plan, ini["position"], workers=ex.get("workers", 1))
    psi = op.initial_state(ini["position"], ini["momentum"], ini["width"], ini["state"],
                           chirp=ini.get("chirp"))
    op.set_dt(dt)
    fac = None
    if ex.get("factorization", False):
        from .transfer import FactorizationRecorder
        fac = FactorizationRecorder(op, model, ex.get("angular_origin"),
                                    fields=ex.get("factorization_fields", False),
                                    upsample=ex.get("factorization_upsample", 0)
                                    or (4 if op.D == 1 else 2))
    fac_rows, fac_fields, fac_times = [], [], []

    rec = {k: [] for k in ("time", "norm", "pop_dia", "pop_adi", "epot", "ekin", "xmean", "pmean",
                           "coh", "density", "inside", "not_out", "absorbed_adi", "absorbed_dia")}
    last = {}

    def record(t):
        o = op.observables(psi, exit_radius)
        pop_adi, pop_dia = o["pop_adi"].copy(), o["pop_dia"].copy()
        if op.W is not None:
            pop_adi += op.absorbed_adi.sum(axis=0)
            pop_dia += op.absorbed_dia.sum(axis=0)
            rec["absorbed_adi"].append(op.absorbed_adi.copy())
        rec["time"].append(t)
        for k in ("norm", "epot", "ekin", "xmean", "pmean", "coh", "inside", "not_out"):
            rec[k].append(o[k])
        rec["pop_adi"].append(pop_adi)
        rec["pop_dia"].append(pop_dia)
        if ex.get("store_density", True):
            rec["density"].append(o["density"])
        last.update(o)
        if fac is not None:
            want = fac.fields and (len(rec["time"]) - 1) % ex.get("fields_stride", 1) == 0
            r, fl = fac.record(psi, fields=want)
            r["exact/energy_split_residual"] = (r["energy/kinetic_marginal"]
                                                + r["energy/geometric"]
                                                + r["energy/born_oppenheimer"]
                                                - o["ekin"] - o["epot"])
            fac_rows.append(r)
            if want:
                fac_fields.append(fl)
                fac_times.append(t)
        if progress is not None:
            progress(t, t_end)

    t = 0.0
    steps = 0
    record(t)
    stop_reason = "t_end"
    n_full = int(math.floor(t_end / dt_rec + 1e-9))
    j = 0
    while True:
        if stop_exit and last["not_out"] < exit_norm and t > 0:
            stop_reason = "exit"
            break
        if j < n_full:
            psi = op.propagate(psi, nsub)
            steps += nsub
            j += 1
            t = j * dt_rec
        else:
            rem = t_end - n_full * dt_rec
            if rem <= 1e-9 * dt_rec:
                break
            n_last = max(1, math.ceil(rem / dt - 1e-9))
            op.set_dt(rem / n_last)
            psi = op.propagate(psi, n_last)
            steps += n_last
            t = t_end
            record(t)
            break
        record(t)
    if stop_reason == "exit":
        stop_detail = (f"exit rule met: norm not out {last['not_out']:.3e} < exit_norm "
                       f"{exit_norm:g} at t = {t:g}")
    elif stop_exit and last["not_out"] >= exit_norm:
        stop_detail = (f"t_end reached before the exit rule was met: norm not out "
                       f"{last['not_out']:.3e} >= exit_norm {exit_norm:g}")
    else:
        stop_detail = "t_end reached"

    res = Result()
    res.add("time", np.array(rec["time"]), "atomic_unit_of_time")
    res.add("norm", np.array(rec["norm"]), "1")
    res.add("populations/adiabatic", np.array(rec["pop_adi"]), "1")
    res.add("populations/diabatic", np.array(rec["pop_dia"]), "1")
    ekin, epot = np.array(rec["ekin"]), np.array(rec["epot"])
    res.add("energy/kinetic", ekin, "hartree")
    res.add("energy/potential", epot, "hartree")
    res.add("energy/total", ekin + epot, "hartree")
    res.add("nuclear/position_mean", np.array(rec["xmean"]).reshape(-1, op.D), "bohr")
    res.add("nuclear/momentum_mean", np.array(rec["pmean"]).reshape(-1, op.D),
            "electron_mass * bohr / atomic_unit_of_time")
    res.add("coherence/indicator", np.array(rec["coh"]), "1")
    res.add("exact/norm_inside", np.array(rec["inside"]), "1")
    res.add("exact/norm_not_out", np.array(rec["not_out"]), "1")
    axes = op.axes
    res.add("density/grid_x", axes[0], "bohr")
    if op.D == 2:
        res.add("density/grid_y", axes[1], "bohr")
    if rec["density"]:
        res.add("density/n", np.array(rec["density"]), "1 / bohr" if op.D == 1 else "1 / bohr ** 2")
    if op.W is not None:
        res.add("exact/absorbed", np.array(rec["absorbed_adi"]), "1")
    if model.scattering:
        trans, refl = last["trans"].copy(), last["refl"].copy()
        if op.W is not None:
            refl += op.absorbed_adi[0]
            trans += op.absorbed_adi[1]
        res.add("branching/transmission", trans, "1")
        res.add("branching/reflection", refl, "1")

    if fac is not None:
        _add_factorization(res, fac, fac_rows, fac_fields, fac_times, op)

    res.attrs.update(
        method="exact", model=model.name, deck=deck.text, seed=int(run["seed"]),
        mqcd_version=__version__, trajectories=0, nstates=int(model.nstates), ndof=int(model.ndof),
        dx=list(plan.dx), box=[v for b in plan.box for v in b], npoints=list(plan.npoints),
        dt=float(dt), steps=int(steps), t_final=float(t), stop_reason=stop_reason,
        stop_detail=stop_detail, ranks=1,
        exit_radius=float(exit_radius), exit_norm=exit_norm,
        norm_inside=float(last["inside"]), norm_not_out=float(last["not_out"]),
        p_max=list(plan.p_max), e_cut=float(plan.e_cut), v_min=float(plan.v_min),
        absorb=bool(op.W is not None), absorb_width=list(plan.absorb_width),
        absorb_strength=float(plan.absorb_strength),
        wall_time_s=float(_time.perf_counter() - t_wall),
    )
    return res


def _add_factorization(res, fac, rows, fields, times, op):
    """The exact-factorisation datasets (mqcd/exact/transfer.py) and their finite-difference
    rates ``rates/*`` (:func:`mqcd.analysis.transfer.time_derivative`)."""
    from ..analysis.transfer import time_derivative
    from .transfer import FIELD_UNITS, SCALAR_UNITS
    dof = {"nuclear/force_mean", "exact/force_continuum", "exact/force_ef_mean"}
    for name in rows[0]:
        arr = np.array([r[name] for r in rows])
        res.add(name, arr, SCALAR_UNITS[name], ("time", "dof") if name in dof else ("time",))
    t = res["time"]
    e = "hartree / atomic_unit_of_time"
    fd = [("rates/momentum", "nuclear/momentum_mean", "hartree / bohr"),
          ("rates/kinetic", "energy/kinetic", e),
          ("rates/kinetic_marginal", "energy/kinetic_marginal", e),
          ("rates/geometric", "energy/geometric", e),
          ("rates/born_oppenheimer", "energy/born_oppenheimer", e),
          ("rates/angular_momentum", "nuclear/angular_momentum", "hartree")]
    for name, src, unit in fd:
        if src in res:
            y = res[src]
            res.add(name, time_derivative(t, y), unit, ("time", "dof") if y.ndim == 2 else ("time",))
    res.attrs["factorization_upsample"] = int(fac.u)
    res.attrs["angular_origin"] = [float(v) for v in fac.origin]
    if fields:
        res.add("exact/fields/time", np.array(times), "atomic_unit_of_time", ("fields_time",))
        grid = ("grid_x", "grid_y")[:op.D]
        for name, (unit, lead) in FIELD_UNITS.items():
            arr = np.array([f[name] for f in fields])
            res.add(f"exact/fields/{name}", arr, unit, ("fields_time",) + lead + grid)
