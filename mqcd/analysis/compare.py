"""Side-by-side comparison of runs (trajectory methods and the exact reference).

``compare_files(paths, plot=None)`` returns a markdown table: method, trajectories, final adiabatic
populations, branching (transmission/reflection per state) with binomial standard errors for
trajectory runs, and, when one of the runs is exact, the largest absolute difference of each run's
branching (or populations) to it. With ``plot`` (needs the optional matplotlib extra) it draws
populations and the decoherence indicator vs time for all runs on one figure.
"""
import tomllib

import numpy as np

from ..io.results import load
from .summary import summarize


def _fmt(v):
    return "—" if v is None else "[" + ", ".join(f"{x:.4f}" for x in v) + "]"


def stderr(p, n):
    """Binomial standard error of probabilities p from n trajectories (0 for exact runs)."""
    p = np.asarray(p, dtype=float)
    return np.sqrt(np.clip(p * (1 - p), 0, None) / n) if n else np.zeros_like(p)


def _mass(m):
    m = np.atleast_1d(np.asarray(m, dtype=float))
    return [float(m[0])] if np.all(m == m[0]) else m.tolist()


def _sections(res):
    """The run's model (built-in defaults filled in, so that an omitted default equals the same
    value written out) and the initial packet (position, momentum, width, state, chirp)."""
    from ..models import BUILTIN
    try:
        deck = tomllib.loads(str(res.attrs.get("deck", "")))
    except tomllib.TOMLDecodeError:
        deck = {}
    model = dict(deck.get("model", {}))
    cls = BUILTIN.get(model.get("name"))
    if cls is not None and "file" not in model:
        model = {**{k: float(v[0]) for k, v in cls.parameters.items()}, **model,
                 "mass": model.get("mass", cls.mass)}
    if "mass" in model:
        model["mass"] = _mass(model["mass"])
    ini = deck.get("initial", {})
    init = {k: ini.get(k) for k in ("position", "momentum", "width")}
    init["state"] = ini.get("state", 0)
    if any(ini.get("chirp", []) or []):
        init["chirp"] = ini["chirp"]
    return model, (init if ini else {})


def comparability_warnings(results, labels):
    """Sentences naming the runs whose model (name or [model] section: parameters, masses) or
    initial conditions ([initial] section) differ from the first run's: such runs are not the
    same physical problem and a table of their differences means nothing."""
    out = []
    ref_model, ref_init = _sections(results[0])
    ref_name = results[0].attrs.get("model")
    for lab, r in zip(labels[1:], results[1:]):
        model, init = _sections(r)
        if r.attrs.get("model") != ref_name or (model and ref_model and model != ref_model):
            out.append(f"warning: {lab} is a run of another model ({r.attrs.get('model')} "
                       f"{model}) than {labels[0]} ({ref_name} {ref_model}): the runs are not "
                       "comparable")
        elif init and ref_init and init != ref_init:
            out.append(f"warning: {lab} starts from other initial conditions ({init}) than "
                       f"{labels[0]} ({ref_init}): the runs are not comparable")
    return out


def compare_results(results, labels=None):
    sums = [summarize(r) for r in results]
    labels = labels or [f"{s['method']}" for s in sums]
    exact = next((s for s in sums if s["method"] == "exact"), None)
    head = ("| run | method | trajectories | populations | transmission | reflection | "
            "max |Δ| vs exact | ± (1 s.e.) |")
    rows = [head, "|---|---|---|---|---|---|---|---|"]
    for lab, s in zip(labels, sums):
        if s["transmission"] is not None:
            vec = np.concatenate([s["transmission"], s["reflection"]])
            ref = (np.concatenate([exact["transmission"], exact["reflection"]])
                   if exact and exact["transmission"] is not None else None)
        else:
            vec = np.asarray(s["populations"])
            ref = np.asarray(exact["populations"]) if exact else None
        diff = "—" if ref is None or s is exact else f"{np.max(np.abs(vec - ref)):.4f}"
        err = stderr(vec, s["trajectories"])
        rows.append(f"| {lab} | {s['method']} | {s['trajectories']} | {_fmt(s['populations'])} | "
                    f"{_fmt(s['transmission'])} | {_fmt(s['reflection'])} | {diff} | "
                    f"{np.max(err):.4f} |")
    notes = comparability_warnings(results, labels)
    notes += [f"warning: {lab}: {w}" for lab, s in zip(labels, sums) for w in s["warnings"]]
    return "\n".join(rows + ([""] + notes if notes else []))


def plot_results(results, labels, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'mqcd[plot]'") from None
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for lab, r in zip(labels, results):
        t = r["time"]
        pops = r["populations/adiabatic"]
        style = "k--" if r.attrs.get("method") == "exact" else "-"
        for n in range(1, pops.shape[1]):
            ax[0].plot(t, pops[:, n], style, label=f"{lab} P{n}")
        if "coherence/indicator" in r:
            ax[1].plot(t, r["coherence/indicator"], style, label=lab)
    ax[0].set_xlabel("time (a.u.)")
    ax[0].set_ylabel("adiabatic population of excited states")
    ax[1].set_xlabel("time (a.u.)")
    ax[1].set_ylabel("decoherence indicator  sum |rho_nm|^2")
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare_files(paths, plot=None):
    results = [load(p) for p in paths]
    labels = [str(p).rsplit("/", 1)[-1] for p in paths]
    table = compare_results(results, labels)
    if plot:
        plot_results(results, labels, plot)
        table += f"\n\nplot written to {plot}"
    return table
