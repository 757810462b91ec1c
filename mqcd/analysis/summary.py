"""Final populations and branching of a run (trajectory or exact), as a dict or text, with the
warnings a user must see before trusting the numbers (:func:`run_problems`)."""
import json
import tomllib

import numpy as np


def _exact_exit_norm(attrs):
    try:
        return float(tomllib.loads(str(attrs.get("deck", ""))).get("exact", {}).get("exit_norm",
                                                                                     1e-4))
    except (tomllib.TOMLDecodeError, TypeError, ValueError):
        return 1e-4


def run_problems(attrs, data=None):
    """Warnings about a result, from its attributes (and datasets, for exact runs).

    Returns a list of sentences, empty when there is nothing to report:

    * a partial output (the run stopped early: signal, energy drift);
    * an energy drift beyond ``[run] energy_tolerance`` (attributes ``energy_drift``,
      ``energy_tolerance``, ``energy_drift_exceeded_at``);
    * trajectories dropped for non-finite values;
    * a scattering swarm that had not finished scattering: trajectories still inside
      ``|x_0| <= exit_radius`` or moving inward at the end (``inside_at_end``), so the branching
      ratios are not final (exact runs: ``exact/norm_not_out`` above ``[exact] exit_norm``);
    * field estimates that fell back to all trajectory pairs, O(N^2) per step
      (``fields_all_pairs_steps``, ``fields_all_pairs_reason``);
    * qhd with kernel fields whose quantum force was stiffer than the time step allows:
      ``omega_Q dt >= 2`` (``bohm_stiffness_max``, ``bohm_unstable_at``;
      :func:`mqcd.models.stiffness.bohm_frequency`).
    """
    out = []
    t_end = attrs.get("steps", 0) * attrs.get("dt", 0.0)
    if attrs.get("partial"):
        out.append(f"PARTIAL result: the run stopped early ({attrs.get('stop_reason')}) at t = "
                   f"{t_end:g} a.u.; continue it with `mqcd run DECK --restart`")
    tol = float(attrs.get("energy_tolerance", 0.0) or 0.0)
    first = float(attrs.get("energy_drift_exceeded_at", -1.0))
    if tol > 0 and first >= 0:
        what = ("mean |E_i(t) - E_i(0)| over trajectories"
                if attrs.get("energy_conservation", "trajectory") == "trajectory"
                else "|<E>(t) - <E>(0)| of the swarm")
        out.append(f"energy drift up to {float(attrs.get('energy_drift', np.nan)):.3e} hartree "
                   f"({what}) exceeds [run] energy_tolerance = {tol:g} hartree from t = {first:g} "
                   "a.u. on: the dynamics is not reliable (reduce dt, check the model)")
    nd = int(attrs.get("dropped", 0) or 0)
    if nd:
        n = int(attrs.get("trajectories", 0))
        out.append(f"{nd} of {n} trajectories were dropped for non-finite values "
                   f"(diagnostics/dropped_*); means and branching are over the {n - nd} survivors")
    at = float(attrs.get("bohm_unstable_at", -1.0))
    if at >= 0:
        wdt = float(attrs.get("bohm_stiffness_max", np.nan))
        out.append(f"the qhd quantum force was too stiff for the time step from t = {at:g} a.u. on: "
                   f"its fastest fluid-element mode at the density bandwidth, omega_Q = "
                   f"(2/e)/(M h^2), reached omega_Q dt = {wdt:.3g} (velocity Verlet needs < 2), "
                   f"so short-wavelength density ripples grow and elements are thrown out; "
                   f"reduce [run] dt by a factor {wdt / 1.0:.2g} or more (docs/ladder.md)")
    npairs = int(attrs.get("fields_all_pairs_steps", 0) or 0)
    if npairs:
        out.append(f"the swarm field estimate fell back to all trajectory pairs, O(N^2) per step, "
                   f"on {npairs} of {int(attrs.get('steps', 0))} steps "
                   f"({attrs.get('fields_all_pairs_reason', '')}): bandwidths too different or "
                   "a swarm spread too far for one grid; the numbers are valid but the run is "
                   "slow (docs/performance.md, load balance paragraph)")
    inside = int(attrs.get("inside_at_end", 0) or 0)
    if inside:
        alive = int(attrs.get("alive", attrs.get("trajectories", 0)))
        rule = (" (stop = \"exit\" was not met before t_end)"
                if attrs.get("stop_rule") == "exit" and attrs.get("stop_reason") != "exit" else "")
        out.append(f"{inside} of {alive} trajectories are still inside |x_0| <= "
                   f"{float(attrs.get('exit_radius', np.nan)):g} bohr or moving inward at t = "
                   f"{t_end:g} a.u.{rule}: the swarm has not finished scattering, transmission and "
                   "reflection are not final (increase t_end; stop = \"exit\" stops once all are out)")
    if data is not None and attrs.get("method") == "exact" and "exact/norm_not_out" in data:
        left = float(np.asarray(data["exact/norm_not_out"])[-1])
        limit = _exact_exit_norm(attrs)
        if attrs.get("scattering", True) and left > limit:
            out.append(f"norm not yet out of the interaction region at the end: {left:.3g} (> "
                       f"[exact] exit_norm = {limit:g}): branching is not final (increase t_end)")
    return out


def summarize(res):
    """{method, model, trajectories, populations, transmission, reflection, ...} (plain lists).

    ``populations`` are the final adiabatic populations from the density matrices (for surface
    hopping also ``active``: the fraction of trajectories on each state). ``transmission`` and
    ``reflection`` (scattering models) are per adiabatic state; for surface hopping they count
    active states, for mean-field methods and the exact solver adiabatic populations.
    ``stop_reason``, ``dropped``, the energy drift against its tolerance and ``warnings``
    (:func:`run_problems`) say whether the numbers can be trusted.
    """
    a = res.attrs
    out = {"method": str(a.get("method", "")), "model": str(a.get("model", "")),
           "trajectories": int(a.get("trajectories", 0)),
           "time": float(res["time"][-1]),
           "stop_reason": str(a.get("stop_reason", "")),
           "dropped": int(a.get("dropped", 0) or 0),
           "populations": np.asarray(res["populations/adiabatic"][-1]).tolist()}
    if a.get("partial"):
        out["partial"] = True
    if "populations/active" in res:
        out["active"] = np.asarray(res["populations/active"][-1]).tolist()
    for key in ("transmission", "reflection"):
        name = f"branching/{key}"
        out[key] = np.asarray(res[name]).tolist() if name in res else None
    if "inside_at_end" in a:
        out["inside_at_end"] = int(a["inside_at_end"])
    if "energy/drift_max" in res:
        out["energy_drift_max"] = float(np.max(res["energy/drift_max"]))
    if "energy_drift" in a:
        out["energy_drift"] = float(a["energy_drift"])
        out["energy_tolerance"] = float(a.get("energy_tolerance", 0.0))
        out["energy_conservation"] = str(a.get("energy_conservation", "trajectory"))
        first = float(a.get("energy_drift_exceeded_at", -1.0))
        out["energy_drift_exceeded_at"] = first if first >= 0 else None
    if "final/hops" in res:
        out["hops"] = int(np.sum(res["final/hops"]))
        out["frustrated_hops"] = int(np.sum(res["final/frustrated_hops"]))
    out["warnings"] = run_problems(a, res)
    return out


def format_summary(s):
    lines = [f"method: {s['method']}   model: {s['model']}   trajectories: {s['trajectories']}"
             f"   t = {s['time']:g} a.u." + (f"   stop: {s['stop_reason']}" if s.get("stop_reason")
                                             else "")
             + (f"   dropped: {s['dropped']}" if s.get("dropped") else "")]
    ns = len(s["populations"])
    lines.append(f"{'adiabatic state':<16s}" + "".join(f"{n:>10d}" for n in range(ns)))
    lines.append(f"{'population':<16s}" + "".join(f"{v:10.5f}" for v in s["populations"]))
    rows = [("active", s.get("active")), ("transmitted", s.get("transmission")),
            ("reflected", s.get("reflection"))]
    for label, vals in rows:
        if vals is not None:
            lines.append(f"{label:<16s}" + "".join(f"{v:10.5f}" for v in vals))
    if "energy_drift_max" in s:
        lines.append(f"max |E(t) - E(0)| over trajectories: {s['energy_drift_max']:.3e} hartree")
    if "energy_drift" in s:
        what = ("mean |E_i(t) - E_i(0)|" if s["energy_conservation"] == "trajectory"
                else "|<E>(t) - <E>(0)|")
        tol = s["energy_tolerance"]
        lines.append(f"energy drift ({what}): {s['energy_drift']:.3e} hartree, tolerance "
                     + (f"{tol:g} hartree" if tol > 0 else "off")
                     + (" (EXCEEDED)" if s["energy_drift_exceeded_at"] is not None else ""))
    if "hops" in s:
        lines.append(f"hops: {s['hops']}   frustrated: {s['frustrated_hops']}")
    lines.extend(f"warning: {w}" for w in s.get("warnings", []))
    return "\n".join(lines)


def summary_json(res):
    return json.dumps(summarize(res))
