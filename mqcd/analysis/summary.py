"""Final populations and branching of a run (trajectory or exact), as a dict or text."""
import json

import numpy as np


def summarize(res):
    """{method, model, trajectories, populations, transmission, reflection, ...} (plain lists).

    ``populations`` are the final adiabatic populations from the density matrices (for surface
    hopping also ``active``: the fraction of trajectories on each state). ``transmission`` and
    ``reflection`` (scattering models) are per adiabatic state; for surface hopping they count
    active states, for mean-field methods and the exact solver adiabatic populations.
    """
    out = {"method": str(res.attrs.get("method", "")), "model": str(res.attrs.get("model", "")),
           "trajectories": int(res.attrs.get("trajectories", 0)),
           "time": float(res["time"][-1]),
           "populations": np.asarray(res["populations/adiabatic"][-1]).tolist()}
    if "populations/active" in res:
        out["active"] = np.asarray(res["populations/active"][-1]).tolist()
    for key in ("transmission", "reflection"):
        name = f"branching/{key}"
        out[key] = np.asarray(res[name]).tolist() if name in res else None
    if "energy/drift_max" in res:
        out["energy_drift_max"] = float(np.max(res["energy/drift_max"]))
    if "final/hops" in res:
        out["hops"] = int(np.sum(res["final/hops"]))
        out["frustrated_hops"] = int(np.sum(res["final/frustrated_hops"]))
    return out


def format_summary(s):
    lines = [f"method: {s['method']}   model: {s['model']}   trajectories: {s['trajectories']}"
             f"   t = {s['time']:g} a.u."]
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
    if "hops" in s:
        lines.append(f"hops: {s['hops']}   frustrated: {s['frustrated_hops']}")
    return "\n".join(lines)


def summary_json(res):
    return json.dumps(summarize(res))
