"""The validation report: every method against the exact solver on the standard cases.

    python tools/validate.py [--quick] [--ntraj 2000] [--methods ehrenfest,fssh,...]
    mqcd validate [same options]

Cases: Tully 1, 2, 3 and the double arch at several momenta (standard packet: x0 = -15 bohr,
density standard deviation 10/k bohr, lower adiabatic state, mass 2000), and the 2D conical
intersection (populations vs time). Exact runs are cached in ``--data`` (default out/validation)
and reused. Writes docs/validation.md and figures in docs/figures/. Every trajectory number is
given with its binomial standard error sqrt(p(1-p)/N).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..io.results import load, write_result
from .compare import stderr

# Paths are relative to the working directory (run it from the repository root), never to the
# installed package: an installed mqcd must not write into site-packages.

CASES = {
    "tully1": [8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0],
    "tully2": [12.0, 16.0, 20.0, 25.0, 30.0, 40.0, 50.0],
    "tully3": [5.0, 7.0, 10.0, 15.0, 20.0, 25.0, 30.0],
    "double_arch": [10.0, 15.0, 20.0, 25.0, 30.0],
}
QUICK = {"tully1": [10.0, 20.0], "tully2": [16.0, 30.0], "tully3": [5.0, 10.0],
         "double_arch": [15.0, 25.0]}

# label -> [method] section; later methods add rows here
METHODS = {
    "ehrenfest": {"name": "ehrenfest"},
    "fssh": {"name": "fssh"},
    "fssh+edc": {"name": "fssh", "decoherence": "edc"},
    "fssh+idc": {"name": "fssh", "decoherence": "idc"},
    "geometric-ehrenfest": {"name": "geometric-ehrenfest"},
    "ehrenfest-qc": {"name": "ehrenfest-qc"},
    "geometric-ehrenfest-qc": {"name": "geometric-ehrenfest-qc"},
    "qhd": {"name": "qhd"},
    "fssh-coupled": {"name": "fssh-coupled"},
    # the other routes to d rho (docs/theory/fields.md)
    "ehrenfest-qc-regression": {"name": "ehrenfest-qc", "rho_derivatives": "regression"},
    "ehrenfest-qc-basis": {"name": "ehrenfest-qc", "rho_derivatives": "trajectory-basis"},
    "fssh-coupled-trajectory": {"name": "fssh-coupled", "rho_derivatives": "trajectory"},
    # the ladder with bandwidths 10x (regression) and 2x (density) below the normal-reference rule
    "gehqc-narrow": {"name": "geometric-ehrenfest-qc", "regression_scale": 0.1,
                     "density_scale": 0.5},
    "fssh-coupled-narrow": {"name": "fssh-coupled", "regression_scale": 0.1, "density_scale": 0.5},
}
INDEPENDENT = ["ehrenfest", "fssh", "fssh+edc", "fssh+idc"]


def scattering_deck(model, k, method=None, ntraj=2000, dt=0.5, seed=11):
    t_end = max(4000.0, 3.0 * 30.0 * 2000.0 / k)
    d = {"model": {"name": model},
         "initial": {"position": [-15.0], "momentum": [k], "width": [10.0 / k], "state": 0},
         "run": {"trajectories": ntraj, "dt": dt, "t_end": t_end, "stop": "exit", "seed": seed},
         "output": {"stride": 20}}
    if method is not None:
        d["method"] = dict(method)
    return d


def exact_result(model, k, data):
    from ..exact import run_exact
    path = Path(data) / f"exact_{model}_k{k:g}.h5"
    if path.exists():
        return load(path)
    res = run_exact(scattering_deck(model, k))
    write_result(path, res, force=True)
    return res


def branching_vec(res):
    return np.concatenate([res["branching/transmission"], res["branching/reflection"]])


def _row(vals, errs=None):
    if errs is None:
        return " ".join(f"{v:.3f}" for v in vals)
    return " ".join(f"{v:.3f}±{e:.3f}" for v, e in zip(vals, errs))


def run_scattering(models, methods, ntraj, data, quick, log, cases=None):
    tables, curves = {}, {}
    for model in models:
        ks = cases[model] if cases else (QUICK if quick else CASES)[model]
        lines = [f"### {model}\n",
                 "Entries: T0 T1 R0 R1 (transmission/reflection on the lower/upper adiabatic "
                 "state); trajectory entries ± one binomial standard error; last column per method: "
                 "max |Δ| to exact.\n",
                 "| k (a.u.) | exact | " + " | ".join(methods) + " |",
                 "|---|---|" + "---|" * len(methods)]
        curves[model] = {"k": ks, "exact": [], **{m: [] for m in methods}}
        for k in ks:
            t0 = time.perf_counter()
            ex = exact_result(model, k, data)
            ev = branching_vec(ex)
            curves[model]["exact"].append(ev)
            cells = [f"{k:g}", _row(ev)]
            for m in methods:
                from ..api import run
                res = run(scattering_deck(model, k, METHODS[m], ntraj=ntraj))
                v = branching_vec(res)
                curves[model][m].append(v)
                cells.append(_row(v, stderr(v, ntraj)) + f" (Δ {np.max(np.abs(v - ev)):.3f})")
            lines.append("| " + " | ".join(cells) + " |")
            log(f"{model} k={k:g} done in {time.perf_counter() - t0:.1f} s")
        tables[model] = "\n".join(lines)
    return tables, curves


def plot_curves(curves, methods, figdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    out = {}
    names = ["T0", "T1", "R0", "R1"]
    for model, c in curves.items():
        fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
        ks = np.array(c["k"])
        for j, ax in enumerate(axes):
            ax.plot(ks, [v[j] for v in c["exact"]], "k-", lw=2, label="exact")
            for m in methods:
                ax.plot(ks, [v[j] for v in c[m]], "o--", ms=4, label=m)
            ax.set_title(f"{model}: {names[j]}")
            ax.set_xlabel("k (a.u.)")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        p = figdir / f"validation_{model}.png"
        fig.savefig(p, dpi=100)
        plt.close(fig)
        out[model] = p
    return out


def coherence_figure(model, k, methods, ntraj, data, figdir):
    """Decoherence indicator vs time for each method and exact (one case)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, ""
    from ..api import run
    ex = exact_result(model, k, data)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(ex["time"], ex["coherence/indicator"], "k-", lw=2, label="exact")
    rows = ["| method | indicator at end | exact |", "|---|---|---|"]
    for m in methods:
        r = run(scattering_deck(model, k, METHODS[m], ntraj=ntraj))
        ax.plot(r["time"], r["coherence/indicator"], label=m)
        rows.append(f"| {m} | {r['coherence/indicator'][-1]:.4f} | "
                    f"{ex['coherence/indicator'][-1]:.4f} |")
    ax.set_xlabel("time (a.u.)")
    ax.set_ylabel("ensemble mean |rho_01|^2 (adiabatic)")
    ax.set_title(f"{model}, k = {k:g}: decoherence indicator")
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = figdir / f"coherence_{model}_k{k:g}.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p, "\n".join(rows)


def conical_section(methods, ntraj, data, figdir, log):
    """2D conical intersection: populations vs time against the exact 2D solver."""
    from ..api import run
    from ..exact import run_exact
    deck = {"model": {"name": "conical2d"},
            "initial": {"position": [0.0, 0.0], "momentum": [0.0, 0.0],
                        "width": [0.3, 0.3], "state": 1},
            "run": {"trajectories": ntraj, "dt": 0.5, "t_end": 400.0, "seed": 5},
            "output": {"stride": 4}}
    path = Path(data) / "exact_conical2d.h5"
    t0 = time.perf_counter()
    if path.exists():
        ex = load(path)
        t_exact = float(ex.attrs.get("wall_time_s", np.nan))
    else:
        ex = run_exact(deck)
        t_exact = time.perf_counter() - t0
        ex.attrs["wall_time_s"] = t_exact
        write_result(path, ex, force=True)
    grid = ex.attrs.get("npoints", "?")
    rows = ["| time (a.u.) | exact P1 | " + " | ".join(methods) + " |",
            "|---|---|" + "---|" * len(methods)]
    res = {m: run({**deck, "method": METHODS[m]}) for m in methods}
    for tt in (100.0, 200.0, 300.0, 400.0):
        j = int(np.argmin(np.abs(ex["time"] - tt)))
        cells = [f"{tt:g}", f"{ex['populations/adiabatic'][j, 1]:.3f}"]
        for m in methods:
            r = res[m]
            i = int(np.argmin(np.abs(r["time"] - tt)))
            key = "populations/active" if "populations/active" in r else "populations/adiabatic"
            p = r[key][i, 1]
            cells.append(f"{p:.3f}±{stderr(p, ntraj):.3f}")
        rows.append("| " + " | ".join(cells) + " |")
    log(f"conical2d done (exact {t_exact:.1f} s)")
    fig_path = None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(ex["time"], ex["populations/adiabatic"][:, 1], "k-", lw=2, label="exact")
        for m, r in res.items():
            key = "populations/active" if "populations/active" in r else "populations/adiabatic"
            ax.plot(r["time"], r[key][:, 1], label=m)
        ax.set_xlabel("time (a.u.)")
        ax.set_ylabel("upper adiabatic population")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig_path = figdir / "validation_conical2d.png"
        fig.savefig(fig_path, dpi=100)
        plt.close(fig)
    except ImportError:
        pass
    text = (f"Exact 2D grid: {grid} points, wall time {t_exact:.1f} s on one core.\n\n"
            + "\n".join(rows))
    return text, fig_path


def main(argv=None):
    ap = argparse.ArgumentParser(prog="validate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="two momenta per model, for a smoke run")
    ap.add_argument("--ntraj", type=int, default=2000)
    ap.add_argument("--methods", default=",".join(INDEPENDENT),
                    help="comma-separated labels; allowed: " + ", ".join(METHODS))
    ap.add_argument("--cases", default="", help="e.g. 'tully1:10,tully3:10' (default: all)")
    ap.add_argument("--coherence", default="tully3:10", help="case of the coherence figure ('' = none)")
    ap.add_argument("--no-conical", action="store_true")
    ap.add_argument("--models", default=",".join(CASES))
    ap.add_argument("--data", default=str(Path("out") / "validation"),
                    help="folder of the cached exact runs (default out/validation, relative to "
                    "the working directory)")
    ap.add_argument("--out", default=str(Path("docs") / "validation.md"),
                    help="the report (default docs/validation.md, relative to the working "
                    "directory; figures go to figures/ next to it)")
    a = ap.parse_args(argv)
    methods = [m for m in a.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"unknown method label(s) {unknown}; allowed: {', '.join(METHODS)}", file=sys.stderr)
        return 2
    Path(a.data).mkdir(parents=True, exist_ok=True)
    out = Path(a.out)
    figdir = out.parent / "figures"
    figdir.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    models = [m for m in a.models.split(",") if m]
    cases = {}
    for item in filter(None, a.cases.split(",")):
        mod, k = item.split(":")
        cases.setdefault(mod, []).append(float(k))
    if cases:
        models = list(cases)
    tables, curves = run_scattering(models, methods, a.ntraj, a.data, a.quick, log, cases)
    figs = plot_curves(curves, methods, figdir) if not cases else {}
    coh_fig, coh_table = None, ""
    if a.coherence:
        cm, ck = a.coherence.split(":")
        coh_fig, coh_table = coherence_figure(cm, float(ck), methods, a.ntraj, a.data, figdir)
    cone_text, cone_fig = ("(not run)", None) if a.no_conical else conical_section(
        methods, a.ntraj, a.data, figdir, log)
    wall = time.perf_counter() - t0
    cmd = "python tools/validate.py " + " ".join(argv if argv is not None else sys.argv[1:])
    md = ["# Validation against exact quantum dynamics\n",
          f"Produced by `{cmd}` ({wall / 60:.1f} min on this machine). Trajectory runs: "
          f"{a.ntraj} trajectories, dt = 0.5 a.u., velocity Verlet + exact unitary electronic step, "
          "stop when every trajectory has left |x| < interaction radius (at the latest "
          "t_end = max(4000, 180000/k) a.u.). Standard packet: x0 = -15 bohr, density standard "
          "deviation 10/k bohr (amplitude exp(-(x-x0)^2/sigma^2), sigma = 20/k), Wigner sampling, "
          "lower adiabatic state, mass 2000. Statistical error of a trajectory probability p: "
          f"sqrt(p(1-p)/N) <= {0.5 / np.sqrt(a.ntraj):.4f}. Exact: split-operator FFT "
          "(docs/exact.md; its convergence table is docs/exact_convergence.md).\n",
          "## Branching probabilities\n"]
    for model in models:
        md.append(tables[model])
        if model in figs:
            md.append(f"\n![{model}](figures/{figs[model].name})\n")
    md += [f"## Decoherence indicator ({a.coherence})\n",
           "Ensemble mean of |rho_01|^2 in the adiabatic basis (exact: integral of n(x)|rho_01(x)|^2).\n",
           coh_table]
    if coh_fig:
        md.append(f"\n![coherence](figures/{coh_fig.name})\n")
    md += ["## Two-dimensional conical intersection (conical2d)\n",
           "Packet at the origin, widths 0.3 bohr, on the upper adiabat; upper-state population "
           "(active-state fraction for surface hopping).\n", cone_text]
    if cone_fig:
        md.append(f"\n![conical2d](figures/{cone_fig.name})\n")
    for name in (() if cases else ("validation_findings.md", "validation_notes.md")):
        extra = out.parent / name
        if extra.exists():
            md += ["", extra.read_text()]
    out.write_text("\n".join(md) + "\n")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
