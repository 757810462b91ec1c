"""Coupled-trajectory quantum coupling (issue 11): the seven CTMQC comparison cases, the
decoherence indicator against exact, and the cost of the per-mode density estimator.

    python tools/ctmqc_validation.py table --ntraj 200 [--methods ehrenfest-qc,...] [--cases ...]
    python tools/ctmqc_validation.py table --ntraj 1000 --cases scan --methods ehrenfest,fssh,...
    python tools/ctmqc_validation.py coherence --ntraj 1000
    python tools/ctmqc_validation.py cost
    python tools/ctmqc_validation.py mode-every [--every 1,5,20] [--seeds 1,2,3] [--ntraj 1000]
                                                [--width-bound 0]
    python tools/ctmqc_validation.py pileup [--ntraj 20000] [--bounds 0,4]

``table`` prints, per case and method, max |Δ| of T0 T1 R0 R1 to exact, the swarm's largest
ensemble energy drift |<E>(t) - <E>(0)| (hartree), the largest single-trajectory drift, and
whether the run ended by the exit rule (all trajectories out) before t_end. Initial conditions
are those of docs/validation.md (x0 = -15 bohr, width 10/k, lower adiabatic state, M = 2000,
dt = 0.5, stop = "exit"), seed 1. Exact results are cached in --data.

``mode-every`` runs ehrenfest-qc on Tully 3 k = 10 (dt = 1) with the modes searched every K
steps and carried in between (``[method] mode_every``), for several seeds: max |Δ| to exact per
(K, seed), so the effect of K can be read against the seed-to-seed spread.

``pileup`` runs ehrenfest-qc with fluid-element sampling (``sampling = "hydrodynamic"``) on
Tully 3 k = 10 (dt = 1) to t = 3500 a.u., where elements stall together at the barrier, for each
``mode_width_bound``: ensemble and largest single-trajectory energy drift, steps on the O(N^2)
all-pairs fallback, wall time.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from mqcd.analysis.validate import CASES as SCAN
from mqcd.analysis.validate import branching_vec, exact_result, scattering_deck

CASES = [("tully1", 10.0), ("tully1", 20.0), ("tully2", 16.0), ("tully2", 30.0),
         ("tully3", 10.0), ("tully3", 20.0), ("double_arch", 15.0)]

#: label -> [method] table. "ehrenfest-qc" is the default (per-mode widths, CTMQC pair centres
#: with each mode's Gaussian slope, population reset, energy-conserving force); the others switch
#: one part back (docs/validation_ladder.md, "Coupled-trajectory quantum coupling")
OLD = {"name": "ehrenfest-qc", "quantum_momentum": "osmotic", "force_reset": "never",
       "qc_force": "gradient"}
METHODS = {
    "ehrenfest": {"name": "ehrenfest"},
    "fssh": {"name": "fssh"},
    "fssh+edc": {"name": "fssh", "decoherence": "edc"},
    "ehrenfest-qc": {"name": "ehrenfest-qc"},
    # the previous default (global normal-reference kernel, osmotic u with the population
    # constraint, no reset, 2 u.g): the issue's column
    "ehrenfest-qc-old": {**OLD, "field_method": "kernel"},
    "qc-old-modes": {**OLD, "field_method": "modes"},
    "qc-old-modes-reset": {**OLD, "field_method": "modes", "force_reset": "population"},
    "qc-no-reset": {"name": "ehrenfest-qc", "force_reset": "never"},
    "qc-gradient-force": {"name": "ehrenfest-qc", "qc_force": "gradient"},
    "qc-kernel-slope": {"name": "ehrenfest-qc", "qmom_slope": "kernel"},
    "qc-global-kernel": {"name": "ehrenfest-qc", "field_method": "kernel"},
    "qc-energy-shell": {"name": "ehrenfest-qc", "accumulated_force": "energy-shell",
                        "force_reset": "never"},
    "qc-half": {"name": "ehrenfest-qc", "correction_scale": 0.5},
    # the modes searched every step, or every 10 steps and carried in between (mode_every),
    # with the width bound off as in the documented table (docs/theory/fields.md 9.2), and with
    # the bound at its default (4)
    "qc-every1": {"name": "ehrenfest-qc", "mode_every": 1, "mode_width_bound": 0.0},
    "qc-every10": {"name": "ehrenfest-qc", "mode_every": 10, "mode_width_bound": 0.0},
    "qc-every1-bound": {"name": "ehrenfest-qc", "mode_every": 1, "mode_width_bound": 4.0},
    "qc-every10-bound": {"name": "ehrenfest-qc", "mode_every": 10, "mode_width_bound": 4.0},
    # each mode's width held within a factor 4 of the swarm's reference (mode_width_bound; the
    # default), or not bounded (the default before)
    "qc-width-bound-4": {"name": "ehrenfest-qc", "mode_width_bound": 4.0},
    "qc-no-width-bound": {"name": "ehrenfest-qc", "mode_width_bound": 0.0},
    # the step limit of the energy form (qc_step_fraction), on every step ("both", as the
    # documented qc-strict-energy row was run) or on the uphill ones only (qc_step_limit)
    "qc-strict-energy": {"name": "ehrenfest-qc", "qc_step_fraction": 0.25, "qc_step_limit": "both"},
    "qc-step-fraction-0.5": {"name": "ehrenfest-qc", "qc_step_fraction": 0.5, "qc_step_limit": "both"},
    "qc-step-fraction-1": {"name": "ehrenfest-qc", "qc_step_fraction": 1.0, "qc_step_limit": "both"},
    "qc-uphill-0.25": {"name": "ehrenfest-qc", "qc_step_fraction": 0.25},
    # no step limit (the default; explicit, for the comparison tables)
    "qc-step-unlimited": {"name": "ehrenfest-qc", "qc_step_fraction": 0.0},
    "qc-uphill-0.5": {"name": "ehrenfest-qc", "qc_step_fraction": 0.5},
    "qc-uphill-1": {"name": "ehrenfest-qc", "qc_step_fraction": 1.0},
    "qc-no-distance-cap": {"name": "ehrenfest-qc", "qmom_distance": 0.0},
    "qc-distance-10": {"name": "ehrenfest-qc", "qmom_distance": 10.0},
    "qc-distance-20": {"name": "ehrenfest-qc", "qmom_distance": 20.0},
    "qc-distance-40": {"name": "ehrenfest-qc", "qmom_distance": 40.0},
    "qc-distance-10-zero": {"name": "ehrenfest-qc", "qmom_distance": 10.0, "qmom_far": "zero"},
    "fssh-coupled": {"name": "fssh-coupled"},
    "fssh-coupled-kernel": {"name": "fssh-coupled", "field_method": "kernel"},
    "fssh-coupled-modes": {"name": "fssh-coupled", "field_method": "modes"},
}


def timed_run(deck):
    """``mqcd.run(deck)`` with its warnings silenced: ``(result, seconds)``."""
    from mqcd.api import run
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(deck)
    return res, time.perf_counter() - t0


def run_case(model, k, label, ntraj, data, seed=1):
    """One run: dict with delta, drift_ens, drift_max, exited, seconds, and the result."""
    deck = scattering_deck(model, k, METHODS[label], ntraj=ntraj, seed=seed)
    t_end = deck["run"]["t_end"]
    res, sec = timed_run(deck)
    ex = exact_result(model, k, data)
    delta = float(np.max(np.abs(branching_vec(res) - branching_vec(ex))))
    ens = float(np.max(np.abs(np.asarray(res["energy/ensemble_drift"]))))
    per = float(np.max(np.abs(np.asarray(res["final/energy_drift"]))))
    exited = bool(np.asarray(res["time"])[-1] < t_end - 1e-9)
    return {"delta": delta, "drift_ens": ens, "drift_max": per, "exited": exited,
            "seconds": sec, "result": res, "exact": ex}


def parse_cases(text):
    """``""`` -> the seven comparison cases; a model name (``"tully3"``) -> that model's momenta
    of the full scan of docs/validation.md (``mqcd.analysis.validate.CASES``); ``"scan"`` -> all
    of them; ``"model:k"`` -> one case. Comma-separated items are concatenated."""
    if not text:
        return list(CASES)
    out = []
    for item in text.split(","):
        if item == "scan":
            out += [(m, k) for m, ks in SCAN.items() for k in ks]
        elif item in SCAN:
            out += [(item, k) for k in SCAN[item]]
        elif ":" in item:
            out.append((item.split(":")[0], float(item.split(":")[1])))
        else:
            raise SystemExit(f"--cases: {item!r} is not 'model:k', a model ({', '.join(SCAN)}) "
                             "or 'scan'")
    return out


def cmd_table(args):
    """One row per case, one cell per method. With one seed a cell is ``max|Δ| (ensemble drift /
    largest trajectory drift)``; with several (``--seed 1,2,3``) it is the per-seed max|Δ|, their
    mean, and the largest drifts over the seeds, so a difference can be read against the
    seed-to-seed spread (on the cases where the swarm splits it is several hundredths, well
    above the binomial error)."""
    labels = args.methods.split(",")
    cases = parse_cases(args.cases)
    seeds = [int(v) for v in str(args.seed).split(",")]
    print(f"N = {args.ntraj}, seed {args.seed}: max|Δ| (ensemble drift / largest trajectory "
          "drift, hartree; * = ran to t_end)")
    print("| case | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for model, k in cases:
        cells = []
        for lab in labels:
            rs = []
            for seed in seeds:
                rs.append(run_case(model, k, lab, args.ntraj, args.data, seed))
                print(f"# {model} k={k:g} {lab} seed {seed}: {rs[-1]['seconds']:.0f} s",
                      file=sys.stderr, flush=True)
            d = [r["delta"] for r in rs]
            head = f"{d[0]:.3f}" if len(d) == 1 else \
                "/".join(f"{v:.3f}" for v in d) + f" (mean {np.mean(d):.3f})"
            cells.append(head + f" ({max(r['drift_ens'] for r in rs):.1e}/"
                         f"{max(r['drift_max'] for r in rs):.1e})"
                         + ("" if all(r["exited"] for r in rs) else "*"))
        print(f"| {model} k={k:g} | " + " | ".join(cells) + " |", flush=True)


def indicator_rms(res, ex):
    """rms deviation of the decoherence indicator from exact over the exact record times inside
    the run (after the run ends the trajectory value is held: it no longer changes once every
    trajectory is out of the coupling region)."""
    te, ie = np.asarray(ex["time"]), np.asarray(ex["coherence/indicator"])
    tr, ir = np.asarray(res["time"]), np.asarray(res["coherence/indicator"])
    sel = te <= tr[-1]
    return float(np.sqrt(np.mean((np.interp(te[sel], tr, ir) - ie[sel]) ** 2)))


def cmd_coherence(args):
    """Decoherence indicator (ensemble mean |rho_01|^2, adiabatic) vs time against exact."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = args.methods.split(",")
    cases = [(c.split(":")[0], float(c.split(":")[1])) for c in args.cases.split(",")]
    fig, axes = plt.subplots(1, len(cases), figsize=(6.5 * len(cases), 4), squeeze=False)
    print(f"N = {args.ntraj}, seed {args.seed}")
    print("| case | method | indicator at end | exact at end | rms deviation |")
    print("|---|---|---|---|---|")
    for ax, (model, k) in zip(axes[0], cases):
        ex = None
        for lab in labels:
            r = run_case(model, k, lab, args.ntraj, args.data, args.seed)
            ex = r["exact"]
            res = r["result"]
            ax.plot(res["time"], res["coherence/indicator"], label=lab)
            print(f"| {model} k={k:g} | {lab} | {res['coherence/indicator'][-1]:.4f} | "
                  f"{ex['coherence/indicator'][-1]:.4f} | {indicator_rms(res, ex):.4f} |",
                  flush=True)
        ax.plot(ex["time"], ex["coherence/indicator"], "k-", lw=2, label="exact")
        ax.set_xlabel("time (atomic_unit_of_time)")
        ax.set_ylabel("mean |rho_01|^2 (adiabatic)")
        ax.set_title(f"{model}, k = {k:g}, N = {args.ntraj}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=100)
    print(f"\nfigure: {args.figure}")


def cmd_cost(args):
    """Seconds per field estimate (density and grad ln n, 1D) vs N for the per-mode estimator
    and the global kernel estimator, on a swarm of two packets 20 bohr apart; the local
    log-log slope of the last decade shows the scaling."""
    from mqcd.fields.density import ModalEstimator
    from mqcd.fields.kernel import KernelEstimator
    from mqcd.parallel.comm import SerialComm

    class Model:
        masses = [2000.0]

    class S:
        pass
    rng = np.random.default_rng(1)
    Ns = [int(v) for v in args.sizes.split(",")]
    print("| N | modes: s/step | modes found | kernel (global): s/step |")
    print("|---|---|---|---|")
    rows = []
    for N in Ns:
        x = np.concatenate([rng.normal(-10, 0.7, N - N // 3), rng.normal(10, 1.2, N // 3)])
        sw = S()
        sw.x, sw.rho, sw.ntraj = x[:, None], None, N
        out = []
        for cls in (ModalEstimator, KernelEstimator):
            est = cls({"field_method": "modes" if cls is ModalEstimator else "kernel"},
                      Model(), None, SerialComm(), ("density",))
            est.estimate(sw)                                    # compile / warm up
            reps = max(1, int(2e5 // N))
            t0 = time.perf_counter()
            for _ in range(reps):
                est.estimate(sw)
            out.append((time.perf_counter() - t0) / reps)
            if cls is ModalEstimator:
                modes = est.n_modes
        rows.append((N, out[0], out[1]))
        print(f"| {N} | {out[0]:.3e} | {modes} | {out[1]:.3e} |", flush=True)
    if len(rows) > 1:
        (n0, a0, b0), (n1, a1, b1) = rows[-2], rows[-1]
        print(f"\nslope d ln t / d ln N over the last step: modes {np.log(a1 / a0) / np.log(n1 / n0):.2f},"
              f" kernel {np.log(b1 / b0) / np.log(n1 / n0):.2f}")


def cmd_mode_every(args):
    ex = branching_vec(exact_result("tully3", 10.0, args.data))
    seeds = [int(v) for v in args.seeds.split(",")]
    print(f"Tully 3 k = 10, ehrenfest-qc, N = {args.ntraj}, dt = 1: max|Δ| to exact")
    print("| mode_every | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | s/run |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for K in (int(v) for v in args.every.split(",")):
        d, sec = [], 0.0
        for seed in seeds:
            deck = scattering_deck("tully3", 10.0, {"name": "ehrenfest-qc", "mode_every": K,
                                                    "mode_width_bound": args.width_bound},
                                   ntraj=args.ntraj, dt=1.0, seed=seed)
            res, dt = timed_run(deck)
            sec += dt
            d.append(float(np.max(np.abs(branching_vec(res) - ex))))
        print(f"| {K} | " + " | ".join(f"{v:.3f}" for v in d)
              + f" | {np.mean(d):.3f} | {sec / len(seeds):.0f} |", flush=True)


def cmd_pileup(args):
    print(f"Tully 3 k = 10, ehrenfest-qc, sampling = hydrodynamic, N = {args.ntraj}, dt = 1, "
          "t = 0..3500")
    print("| mode_width_bound | ensemble drift (Eh) | largest trajectory drift (Eh) | all-pairs "
          "steps | s |\n|---|---|---|---|---|")
    for L in (float(v) for v in args.bounds.split(",")):
        deck = scattering_deck("tully3", 10.0, {"name": "ehrenfest-qc", "mode_width_bound": L},
                               ntraj=args.ntraj, dt=1.0, seed=1)
        deck["initial"]["sampling"] = "hydrodynamic"
        deck["run"].update({"t_end": 3500.0, "stop": "time"})
        res, sec = timed_run(deck)
        ens = float(np.max(np.abs(np.asarray(res["energy/ensemble_drift"]))))
        per = float(np.max(np.abs(np.asarray(res["final/energy_drift"]))))
        pairs = int(res.attrs.get("fields_all_pairs_steps", 0))
        print(f"| {L:g} | {ens:.2e} | {per:.2e} | {pairs} | {sec:.0f} |", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    DATA = str(Path("out") / "validation")

    def sub_with(name, ntraj, data=True):
        p = sub.add_parser(name)
        p.add_argument("--ntraj", type=int, default=ntraj)
        if data:
            p.add_argument("--data", default=DATA)
        return p
    t = sub_with("table", 200)
    t.add_argument("--seed", default="1", help="one seed, or several comma-separated")
    t.add_argument("--methods", default="ehrenfest-qc,fssh-coupled")
    t.add_argument("--cases", default="",
                   help="'' = the seven comparison cases; 'model:k', a model name (its momenta "
                        "of the full scan) or 'scan' (all four models' scans), comma-separated")
    h = sub_with("coherence", 1000)
    h.add_argument("--seed", type=int, default=1)
    h.add_argument("--methods", default="ehrenfest,ehrenfest-qc-old,ehrenfest-qc")
    h.add_argument("--cases", default="tully3:10,tully1:10")
    h.add_argument("--figure", default=str(Path("docs") / "figures" / "ctmqc_coherence.png"))
    c = sub.add_parser("cost")
    c.add_argument("--sizes", default="100,1000,10000,100000,1000000")
    e = sub_with("mode-every", 1000)
    e.add_argument("--every", default="1,5,20")
    e.add_argument("--seeds", default="1,2,3")
    e.add_argument("--width-bound", type=float, default=0.0,
                   help="mode_width_bound (0: off, as in the documented table; the default is 4)")
    sub_with("pileup", 20000, data=False).add_argument("--bounds", default="0,4")
    args = ap.parse_args(argv)
    if args.cmd == "cost":
        return cmd_cost(args)
    if args.cmd == "pileup":
        return cmd_pileup(args)
    Path(args.data).mkdir(parents=True, exist_ok=True)
    return {"table": cmd_table, "coherence": cmd_coherence,
            "mode-every": cmd_mode_every, "pileup": cmd_pileup}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
