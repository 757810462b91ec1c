"""Side-by-side comparison of runs (trajectory methods and the exact reference).

``compare_files(paths, plot=None, labels=None, fmt="markdown")`` (``mqcd compare``) gives a table:
label, method, trajectories, final adiabatic populations, branching (transmission/reflection per
state) with binomial standard errors for trajectory runs, and, when one of the runs is exact, the
largest absolute difference of each run's branching (or populations) to it, with its standard
error; ``fmt="json"`` / ``"csv"`` give every number of :func:`comparison_rows` (also the errors of
the populations and of the decoherence indicator vs time). With ``plot`` (matplotlib, the ``plot``
extra) it draws the comparison figure of :mod:`mqcd.analysis.plots`.

What is compared for each kind of run (:func:`run_view`):

* surface hopping (a run with ``populations/active``): the fraction of trajectories on each state
  (what its branching counts), binomial standard error sqrt(P (1 - P) / N);
* mean-field methods: the adiabatic populations of rho, ensemble standard error std / sqrt(N)
  (``populations/adiabatic_std``);
* exact: the adiabatic populations of the wavefunction (absorbed norm included), no error.

The decoherence indicator is the ensemble mean of sum_{n<m} |rho_nm|^2 for every trajectory run.

Energy and momentum transfer (docs/transfer.md, mqcd/analysis/transfer.py): when the runs carry
budgets, a second table gives per run the peak of T_geo (``energy/geometric``) and its largest
difference to the exact T_geo, T_marg at the end, the largest differences of the mean force and
of the power to the exact rates, and the residuals of the momentum and kinetic-energy identities;
``transfer_plot`` draws T_geo(t), T_marg(t), the rates and the residuals side by side
(:func:`mqcd.analysis.plots.transfer_figure`).
"""
from __future__ import annotations

import csv
import io
import json
import tomllib
from dataclasses import dataclass, field

import numpy as np

from ..io.results import load
from .summary import summarize
from .transfer import geometric_peak, identity_residuals, marginal_kinetic


def _fmt(v):
    return "—" if v is None else "[" + ", ".join(f"{x:.4f}" for x in v) + "]"


def stderr(p, n):
    """Binomial standard error of probabilities p from n trajectories (0 for exact runs)."""
    p = np.asarray(p, dtype=float)
    return np.sqrt(np.clip(p * (1 - p), 0, None) / n) if n else np.zeros_like(p)


def _mass(m):
    m = np.atleast_1d(np.asarray(m, dtype=float))
    return [float(m[0])] if np.all(m == m[0]) else m.tolist()


def deck_of(res) -> dict:
    """The run's deck (the ``deck`` attribute of a Result, or of an attribute dict) as a dict ({}
    if it cannot be read)."""
    attrs = res if isinstance(res, dict) else res.attrs
    try:
        return tomllib.loads(str(attrs.get("deck", "")))
    except tomllib.TOMLDecodeError:
        return {}


def _sections(res):
    """The run's model (built-in defaults filled in, so that an omitted default equals the same
    value written out) and the initial packet (position, momentum, width, state, chirp)."""
    from ..models import BUILTIN
    deck = deck_of(res)
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


# ----------------------------------------------------------------------------- one run, plotted
@dataclass
class RunView:
    """What a comparison shows of one run (arrays in atomic units; ``*_se``: one standard error,
    None for exact runs)."""
    label: str
    method: str
    kind: str                      # "hopping" | "mean-field" | "exact"
    t: np.ndarray                  # (nt) atomic_unit_of_time
    P: np.ndarray                  # (nt, ns) populations shown (active states for hopping)
    P_se: np.ndarray | None
    source: str                    # dataset of P
    I: np.ndarray | None = None    # (nt) decoherence indicator
    I_se: np.ndarray | None = None
    T: np.ndarray | None = None    # (ns) branching
    R: np.ndarray | None = None
    T_se: np.ndarray | None = None
    R_se: np.ndarray | None = None
    N: int = 0                     # trajectories that count (alive at the end); 0 for exact
    attrs: dict = field(default_factory=dict)

    @property
    def is_exact(self):
        return self.kind == "exact"

    @property
    def t_end(self):
        return float(self.t[-1])

    @property
    def nstates(self):
        return self.P.shape[1]


def run_view(res, label=None) -> RunView:
    """The populations, indicator and branching of ``res`` that a comparison shows, with their
    standard errors (module docstring)."""
    a = res.attrs
    method = str(a.get("method", ""))
    exact = method == "exact"
    n = 0 if exact else int(a.get("alive", int(a.get("trajectories", 0)) - int(a.get("dropped", 0)
                                                                                or 0)))
    t = np.asarray(res["time"], float)
    if not exact and "populations/active" in res:
        kind, source = "hopping", "populations/active"
        P = np.asarray(res[source], float)
        P_se = stderr(P, n)
    else:
        kind, source = ("exact" if exact else "mean-field"), "populations/adiabatic"
        P = np.asarray(res[source], float)
        P_se = None
        if not exact and "populations/adiabatic_std" in res and n:
            P_se = np.asarray(res["populations/adiabatic_std"], float) / np.sqrt(n)
    P = P.reshape(len(t), -1)
    I = np.asarray(res["coherence/indicator"], float) if "coherence/indicator" in res else None
    I_se = None
    if I is not None and not exact and "coherence/indicator_std" in res and n:
        I_se = np.asarray(res["coherence/indicator_std"], float) / np.sqrt(n)
    v = RunView(label=label or method, method=method, kind=kind, t=t, P=P, P_se=P_se,
                source=source, I=I, I_se=I_se, N=n, attrs=dict(a))
    if "branching/transmission" in res:
        v.T = np.asarray(res["branching/transmission"], float)
        v.R = np.asarray(res["branching/reflection"], float)
        if not exact:
            v.T_se, v.R_se = stderr(v.T, n), stderr(v.R, n)
    return v


def _interp(t, x, tq):
    """x(t) (nt[, k]) at the times tq (linear; clipped to the ends)."""
    x = np.asarray(x, float)
    if x.ndim == 1:
        return np.interp(tq, t, x)
    return np.stack([np.interp(tq, t, x[:, j]) for j in range(x.shape[1])], axis=1)


def errors_vs(v: RunView, ref: RunView) -> dict:
    """Errors of run ``v`` against the reference ``ref`` (exact): populations and indicator at
    the run's final time and the largest over the common time window, per state; branching
    differences per state with the run's standard error. Plain lists (JSON-ready)."""
    out = {}
    tmax = min(v.t_end, ref.t_end)
    w = v.t <= tmax + 1e-9
    if w.any():
        Pref = _interp(ref.t, ref.P, v.t[w])
        d = np.abs(v.P[w] - Pref)
        out["populations_error_max"] = d.max(axis=0).tolist()
        out["populations_error_max_at"] = v.t[w][d.argmax(axis=0)].tolist()
        out["populations_error_final"] = np.abs(v.P[-1] - _interp(ref.t, ref.P, [v.t_end])[0]
                                                ).tolist()
        if v.P_se is not None:
            out["populations_se_final"] = v.P_se[-1].tolist()
        if v.I is not None and ref.I is not None:
            dI = np.abs(v.I[w] - np.interp(v.t[w], ref.t, ref.I))
            out["indicator_error_max"] = float(dI.max())
            out["indicator_error_max_at"] = float(v.t[w][dI.argmax()])
            out["indicator_error_final"] = float(abs(v.I[-1] - np.interp(v.t_end, ref.t, ref.I)))
            if v.I_se is not None:
                out["indicator_se_final"] = float(v.I_se[-1])
        out["time_compared"] = float(v.t[w][-1])
    if v.T is not None and ref.T is not None:
        dT, dR = v.T - ref.T, v.R - ref.R
        out["delta_transmission"], out["delta_reflection"] = dT.tolist(), dR.tolist()
        se = (np.concatenate([v.T_se, v.R_se]) if v.T_se is not None
              else np.zeros(2 * len(dT)))
        d = np.concatenate([dT, dR])
        j = int(np.argmax(np.abs(d)))
        out["branching_delta_max"], out["branching_delta_max_se"] = float(abs(d[j])), float(se[j])
    return out


def throughput(attrs) -> dict:
    """Run time (s) and trajectory-steps per second of a run."""
    wall = float(attrs.get("wall_time_s", 0.0) or 0.0)
    steps, n = int(attrs.get("steps", 0) or 0), int(attrs.get("trajectories", 0) or 0)
    out = {"wall_time_s": wall, "steps": steps}
    if n and wall > 0:
        out["trajectory_steps_per_s"] = n * steps / wall
    return out


def comparison_rows(results, labels=None):
    """One dict per run: label, method, model, trajectories, final time, populations (the kind
    :func:`run_view` shows, with standard errors), branching with standard errors, the errors
    against the exact run if there is one (:func:`errors_vs`), run time, trajectory-steps/s and
    the run's warnings."""
    sums = [summarize(r) for r in results]
    labels = list(labels or [s["method"] for s in sums])
    views = [run_view(r, lab) for r, lab in zip(results, labels)]
    ref = next((v for v in views if v.is_exact), None)
    rows = []
    for v, s in zip(views, sums):
        row = {"label": v.label, "method": v.method, "model": s["model"], "kind": v.kind,
               "trajectories": s["trajectories"], "time": v.t_end,
               "stop_reason": s.get("stop_reason", ""), "populations_source": v.source,
               "populations": v.P[-1].tolist(),
               "populations_se": None if v.P_se is None else v.P_se[-1].tolist(),
               "indicator": None if v.I is None else float(v.I[-1]),
               "transmission": s["transmission"], "reflection": s["reflection"],
               "transmission_se": None if v.T_se is None else v.T_se.tolist(),
               "reflection_se": None if v.R_se is None else v.R_se.tolist()}
        if ref is not None and v is not ref:
            row.update(errors_vs(v, ref))
        row.update(throughput(v.attrs))
        row["warnings"] = s["warnings"]
        rows.append(row)
    if _has_transfer(results):
        for row, tr in zip(rows, transfer_rows(results, labels)):
            row.update({f"transfer_{k}": v for k, v in tr.items() if k not in ("label", "method")})
    return rows


def _power_shown(res):
    """The rate of T_marg a run is compared by: dT_marg/dt of an exact run
    (``energy/power_marginal``), <F.v> of a trajectory run (``energy/power``)."""
    for name in ("energy/power_marginal", "energy/power"):
        if name in res:
            return np.asarray(res[name], float)
    return None


def transfer_rows(results, labels):
    """One dict per run with the transfer numbers of the module docstring (None where a run has
    no such data); the exact run (if any) is the reference of the differences."""
    t_of = [np.asarray(r["time"], float) for r in results]
    ex = next((i for i, r in enumerate(results) if r.attrs.get("method") == "exact"), None)
    rows = []
    for i, (r, lab) in enumerate(zip(results, labels)):
        row = {"label": lab, "method": str(r.attrs.get("method", ""))}
        pk = geometric_peak(r)
        row["geometric_peak"], row["geometric_peak_time"] = (pk if pk else (None, None))
        Tm = marginal_kinetic(r)
        row["kinetic_marginal_final"] = None if Tm is None else float(Tm[-1])
        res = identity_residuals(r)
        for key, name in (("momentum", "momentum"), ("kinetic energy", "kinetic"),
                          ("angular momentum", "angular")):
            v = res.get(key)
            row[f"residual_{name}"] = None if v is None else v["integrated_relative"]
            row[f"residual_{name}_rate"] = None if v is None else v["rate_relative"]
        if ex is not None and i != ex:
            e, te = results[ex], t_of[ex]
            t = t_of[i]
            w = t <= min(t[-1], te[-1]) + 1e-9

            def diff(a, b):
                if a is None or b is None or not w.any():
                    return None
                a, b = np.asarray(a, float), np.asarray(b, float)
                return float(np.max(np.abs(a[w] - _interp(te, b, t[w]))))
            row["geometric_error_max"] = diff(r["energy/geometric"] if "energy/geometric" in r
                                              else None, e["energy/geometric"]
                                              if "energy/geometric" in e else None)
            row["kinetic_marginal_error_max"] = diff(Tm, marginal_kinetic(e))
            row["force_error_max"] = diff(r["nuclear/force_mean"] if "nuclear/force_mean" in r
                                          else None, e["nuclear/force_mean"]
                                          if "nuclear/force_mean" in e else None)
            row["power_error_max"] = diff(_power_shown(r), _power_shown(e))
        rows.append(row)
    return rows


def _has_transfer(results):
    return any("nuclear/force_mean" in r or "energy/geometric" in r for r in results)


def transfer_table(results, labels):
    """Markdown table of :func:`transfer_rows`."""
    rows = transfer_rows(results, labels)
    f = lambda v, p=".3e": "—" if v is None else format(v, p)         # noqa: E731
    out = ["| run | T_geo peak (hartree) at t | max abs(ΔT_geo) | T_marg final | "
           "max abs(ΔT_marg) | max abs(Δ<F>) | max abs(Δ power) | residual dP/dt = <F> | "
           "residual dT/dt = <F.v> |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pk = "—" if r["geometric_peak"] is None else \
            f"{r['geometric_peak']:.3e} at {r['geometric_peak_time']:.0f}"
        out.append(f"| {r['label']} | {pk} | {f(r.get('geometric_error_max'))} | "
                   f"{f(r['kinetic_marginal_final'], '.5f')} | "
                   f"{f(r.get('kinetic_marginal_error_max'))} | {f(r.get('force_error_max'))} | "
                   f"{f(r.get('power_error_max'))} | {f(r['residual_momentum'], '.1e')} | "
                   f"{f(r['residual_kinetic'], '.1e')} |")
    out.append("")
    out.append("T_marg of a trajectory run: the kinetic energy of its trajectories "
               "(+ energy/quantum "
               "for qhd); power: dT_marg/dt for exact, <F.v> for trajectory runs; residuals: "
               "max |X(t) - X(0) - int rate dt - events| relative to the change of X "
               "(docs/transfer.md). Differences are to the exact run.")
    return "\n".join(out)


def compare_results(results, labels=None):
    """Markdown table of the runs (module docstring) and the warnings under it."""
    sums = [summarize(r) for r in results]
    labels = list(labels or [f"{s['method']}" for s in sums])
    rows_ = comparison_rows(results, labels)
    exact = next((s for s in sums if s["method"] == "exact"), None)
    head = ("| run | method | trajectories | populations | transmission | reflection | "
            "max |Δ| vs exact | ± (1 s.e.) |")
    rows = [head, "|---|---|---|---|---|---|---|---|"]
    for lab, s, r in zip(labels, sums, rows_):
        if s["transmission"] is not None:
            vec = np.concatenate([s["transmission"], s["reflection"]])
            ref = (np.concatenate([exact["transmission"], exact["reflection"]])
                   if exact and exact["transmission"] is not None else None)
        else:
            vec = np.asarray(r["populations"])
            ref = np.asarray(exact["populations"]) if exact else None
        diff = "—" if ref is None or s is exact else f"{np.max(np.abs(vec - ref)):.4f}"
        err = (np.asarray(r["populations_se"]) if s["transmission"] is None and r["populations_se"]
               else stderr(vec, s["trajectories"]))
        pops = r["populations"] if r["kind"] == "hopping" else s["populations"]
        rows.append(f"| {lab} | {s['method']} | {s['trajectories']} | {_fmt(pops)}"
                    + (" (active)" if r["kind"] == "hopping" else "") + f" | "
                    f"{_fmt(s['transmission'])} | {_fmt(s['reflection'])} | {diff} | "
                    f"{np.max(err) if np.size(err) else 0.0:.4f} |")
    notes = comparability_warnings(results, labels)
    notes += [f"warning: {lab}: {w}" for lab, s in zip(labels, sums) for w in s["warnings"]]
    if _has_transfer(results):
        rows += ["", "Energy and momentum transfer", "", transfer_table(results, labels)]
    return "\n".join(rows + ([""] + notes if notes else []))


def rows_csv(rows) -> str:
    """CSV text of :func:`comparison_rows`: one line per run, list entries as ``name_0, name_1``,
    warnings joined with ``; ``."""
    flat = []
    for r in rows:
        f = {}
        for k, v in r.items():
            if isinstance(v, list) and k != "warnings":
                f.update({f"{k}_{j}": x for j, x in enumerate(v)})
            elif k == "warnings":
                f[k] = "; ".join(v)
            else:
                f[k] = "" if v is None else v
        flat.append(f)
    cols = list(dict.fromkeys(k for f in flat for k in f))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, restval="", lineterminator="\n")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


def plot_results(results, labels, path, title=None):
    """The comparison figure (:func:`mqcd.analysis.plots.comparison_figure`) as a PNG."""
    from .plots import comparison_figure
    views = [run_view(r, lab) for r, lab in zip(results, labels)]
    return comparison_figure(views, path, title=title)


def compare_files(paths, plot=None, labels=None, fmt="markdown", transfer_plot=None):
    """``mqcd compare``: the table (``fmt`` "markdown", "json" or "csv") of the runs in
    ``paths``; ``labels`` (default: the file names) name them in the table and the legend;
    ``transfer_plot``: PNG of T_geo, T_marg, rates and identity residuals."""
    results = [load(p) for p in paths]
    if labels is None:
        labels = [str(p).rsplit("/", 1)[-1] for p in paths]
    elif len(labels) != len(paths):
        raise ValueError(f"--label was given {len(labels)} times for {len(paths)} files: give "
                         "one label per file, in order")
    if fmt == "json":
        rows = comparison_rows(results, labels)
        text = json.dumps({"runs": rows,
                           "warnings": comparability_warnings(results, labels)}, indent=1)
    elif fmt == "csv":
        text = rows_csv(comparison_rows(results, labels))
    else:
        text = compare_results(results, labels)
    if plot:
        plot_results(results, labels, plot)
        if fmt == "markdown":
            text += f"\n\nplot written to {plot}"
    if transfer_plot:
        from .plots import transfer_figure
        transfer_figure(results, labels, transfer_plot)
        if fmt == "markdown":
            text += f"\n\ntransfer plot written to {transfer_plot}"
    return text
