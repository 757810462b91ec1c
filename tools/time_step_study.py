"""Time-step limits of the trajectory methods: the measurements of docs/ladder.md "Time stepping",
docs/performance.md (the unstable 3D benchmark deck) and docs/validation_ladder.md (conical qhd).

    python tools/time_step_study.py verlet      # Ehrenfest on the 3-mode spin-boson, dt 0.5 vs 0.05
    python tools/time_step_study.py bohm [--n 4000] [--dt 0.02,0.025,0.0325,0.04,0.05]
    python tools/time_step_study.py corrector [--n 1000] [--t-end 700]
    python tools/time_step_study.py conical [--n 200,1000,4000,16000]
    python tools/time_step_study.py full --method qhd [--n 1000] [--dt 0.5] [--k 1] [--damping]
    python tools/time_step_study.py diagnose --method qhd [--correction adjoint|flux] [--t-end]
                                              [--fields fluid|exact] [--n] [--every]
    python tools/time_step_study.py fieldcheck --method qhd [--n 1000] [--times 0.5,100,500]
    python tools/time_step_study.py free [--n 1000,4000] [--damping 0.1,0.5] [--t-end 4000]

``verlet``: max |x| per mode over five steps (the model's own limit dt < 2/omega_max = 0.45 a.u.).
``bohm``: qhd with kernel fields on the same deck (widths 0.5 bohr, fluid-element start) to
t = 1.5 a.u.: largest omega_Q dt of the run (mqcd.models.stiffness.bohm_frequency), when it
reached 2, and the width of each mode against the uncoupled harmonic value (exact to the
coupling's shift of the centre, 0.064 bohr for mode 3). ``corrector``: geometric-ehrenfest-qc with
fluid-element fields on Tully 3 k = 10, rho deviation from the exact field
(``exact_reference``) over time for g_corrector = 0 and 1 at dt 0.5, and 0 at dt 0.25.
``conical``: qhd with kernel fields on conical2d (the deck of tools/conical_qhd.py) for several
N: upper population at t = 100..400 a.u. and rms deviation from exact. ``full``: a whole Tully 3
k = 10 run with fluid-element fields to the exit rule: max |Δ| of the branching against exact and
the time from which the energy check reports a drift. ``diagnose``: the same run stepped by
hand, with the rms deviation of rho from the exact conditional field and the rms second
difference of rho along the swarm, band by band (the grid-scale noise of the flux-form
electronic correction, docs/validation_ladder.md); ``--fields exact`` gives the same rows for
the oracle run (the floor: time stepping and interpolation only). ``fieldcheck``: the fluid run
stepped to each of ``--times``; its state (positions, momenta, rho) is copied into a run with the
oracle fields, and both evaluate the electronic correction G, the correction force, d rho and
d ln n on that same state: relative rms errors of the fluid values band by band, and element by
element for the leading eight (where the sparse-tail estimates are least accurate).
``free``: qhd with fluid-element fields on a free Gaussian packet (Tully 1's flat lower surface
far left of the coupling, x0 = -300 bohr, k = 10, width 1 bohr, M = 2000, dt 0.5): the largest
deviation of the elements from the exact Bohmian flow ``x_I(t) = x0 + k t / M + (x_I(0) - x0)
s(t)``, ``s = (1 + (t / (2 M w^2))^2)^(1/2)``, relative to the packet's width w s(t), and the
ensemble energy drift (the quantum potential included), for each ``fluid_damping``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import mqcd  # noqa: E402
from mqcd.api import _Runner  # noqa: E402
from mqcd.io.deck import read_deck  # noqa: E402
from mqcd.parallel import get_comm  # noqa: E402


def bath_deck(method, n, dt, steps, width=0.5):
    from bench_mpi_coupled import make_deck
    d = make_deck(method, n, steps, 3)
    d["initial"]["width"] = [width] * 3
    d["run"].update(dt=dt, t_end=dt * steps, on_unstable_step="warn")
    return d


def runner(deck):
    r = _Runner(read_deck(deck), get_comm(), None)
    r.start()
    return r


def verlet(a):
    for dt in (0.5, 0.05):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = runner(bath_deck("ehrenfest", a.n or 2000, dt, 6, width=1.0))
            print(f"ehrenfest, dt = {dt}: max |x| per mode after each step")
            for _ in range(5):
                r.nsteps = r.sw.step + 1
                r.loop()
                print("   ", np.abs(r.sw.x).max(axis=0).round(2))


def bohm(a):
    omega = np.array([0.45580389, 1.73286795, 4.47939867])   # ohmic_bath(0.1, 2.5, 3)
    t_end, s0 = 1.5, 0.5
    exact = np.sqrt(s0 ** 2 * np.cos(omega * t_end) ** 2
                    + (np.sin(omega * t_end) / (2 * omega * s0)) ** 2)
    print(f"qhd, N = {a.n or 4000}, t = {t_end}: harmonic widths {exact.round(3)}")
    print("| dt | max omega_Q dt | reached 2 at t | widths (bohr) | max abs(x) |")
    print("|---|---|---|---|---|")
    for dt in map(float, a.dt.split(",")):
        steps = int(round(t_end / dt))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = runner(bath_deck("qhd", a.n or 4000, dt, steps + 1))
            r.nsteps = r.sw.step + steps
            r.loop()
        at = getattr(r.method, "bohm_unstable_at", None)
        print(f"| {dt:g} | {r.method.bohm_max:.3g} | {'-' if at is None else f'{at:g}'} | "
              f"{r.sw.x.std(axis=0).round(3)} | {np.abs(r.sw.x).max(axis=0).round(2)} |",
              flush=True)


def corrector(a):
    from mqcd.analysis.validate import scattering_deck
    n = a.n or 1000
    for K, dt in ((0, 0.5), (1, 0.5), (0, 0.25)):
        deck = scattering_deck("tully3", 10.0, {"name": "geometric-ehrenfest-qc",
                                                "field_method": "fluid", "exact_reference": True,
                                                "g_corrector": K}, ntraj=n)
        deck["initial"]["sampling"] = "hydrodynamic"
        deck["run"].update(dt=dt, t_end=a.t_end, stop="time")
        deck["output"] = {"stride": int(round(100 / dt))}
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = mqcd.run(deck)
        t, dev, E = r["time"], r["diagnostics/rho_deviation"], r["energy/total"]
        print(f"g_corrector = {K}, dt = {dt}, N = {n} ({time.perf_counter() - t0:.0f} s): "
              + ", ".join(f"t={t[i]:.0f}: {dev[i]:.2g} (dE {E[i] - E[0]:+.1g})"
                          for i in range(1, len(t))), flush=True)


def conical(a):
    from conical_qhd import DECK
    from mqcd.exact import run_exact
    ex = run_exact(DECK)
    te, pe = np.asarray(ex["time"]), np.asarray(ex["populations/adiabatic"])[:, 1]
    times = (100, 200, 300, 400)
    print("| N | " + " | ".join(map(str, times)) + " | rms | energy drift | max omega_Q dt |")
    print("|---|" + "---|" * (len(times) + 3))
    print("| exact | " + " | ".join(f"{pe[np.argmin(abs(te - s))]:.3f}" for s in times)
          + " | - | - | - |")
    for n in map(int, (a.n_list or "200,1000,4000,16000").split(",")):
        deck = {**DECK, "method": {"name": "qhd", "field_method": "kernel"},
                "run": {**DECK["run"], "trajectories": n},
                "initial": {**DECK["initial"], "sampling": "hydrodynamic"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = mqcd.run(deck)
        t, p = np.asarray(r["time"]), np.asarray(r["populations/adiabatic"])[:, 1]
        rms = np.sqrt(np.mean((p - np.interp(t, te, pe)) ** 2))
        E = np.asarray(r["energy/total"])
        print(f"| {n} | " + " | ".join(f"{p[np.argmin(abs(t - s))]:.3f}" for s in times)
              + f" | {rms:.3f} | {E[-1] - E[0]:+.1e} | {r.attrs['bohm_stiffness_max']:.2g} |",
              flush=True)


def tully3_deck(a, field_method, n, **keys):
    """Tully 3 k = 10 with fluid-element initial conditions and ``a``'s method keys."""
    from mqcd.analysis.validate import scattering_deck
    meth = {"name": a.method, "field_method": field_method, "g_corrector": a.k, **keys}
    if field_method == "fluid":
        meth["fluid_correction"] = a.correction
    deck = scattering_deck("tully3", 10.0, meth, ntraj=n)
    deck["initial"]["sampling"] = "hydrodynamic"
    return deck


def full(a):
    from mqcd.analysis.validate import branching_vec, exact_result
    extra = {} if a.damping is None else {"fluid_damping": a.damping}
    deck = tully3_deck(a, "fluid", a.n or 1000, **extra)
    meth = deck["method"]
    deck["run"]["dt"] = float(a.dt.split(",")[0])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        r = mqcd.run(deck)
    Path(a.data).mkdir(parents=True, exist_ok=True)
    v, e = branching_vec(r), branching_vec(exact_result("tully3", 10.0, a.data))
    print(f"{a.method}, fluid, N = {a.n or 1000}, dt = {deck['run']['dt']}, g_corrector = {a.k}, "
          f"fluid_damping = {meth.get('fluid_damping', 'default')}: "
          f"max |Δ| {np.abs(v - e).max():.3f} (T0 T1 R0 R1 {v.round(3)}, exact {e.round(3)}), "
          f"energy drift reported from t = {r.attrs['energy_drift_exceeded_at']:g} a.u., "
          f"stop {r.attrs['stop_reason']} at t = {r['time'][-1]:.0f}")


def free(a):
    from mqcd.ensemble.initial import initial_conditions
    from mqcd.io.deck import deck_model
    dampings = [float(v) for v in (a.damping_list or "0.1,0.5").split(",")]
    t_end = a.t_end if a.t_end != 700.0 else 4000.0
    x0, k, w, M = -300.0, 10.0, 1.0, 2000.0
    for n in [int(v) for v in (a.n_list or "1000").split(",")]:
        for g in dampings:
            cells = []
            for t in (t_end / 4, t_end):
                deck = {"model": {"name": "tully1"},
                        "initial": {"position": [x0], "momentum": [k], "width": [w], "state": 0,
                                    "sampling": "hydrodynamic"},
                        "method": {"name": "qhd", "field_method": "fluid", "fluid_damping": g},
                        "run": {"trajectories": n, "dt": float(a.dt.split(",")[0]),
                                "t_end": t, "seed": 1},
                        "output": {"stride": 10}}
                if not cells:                  # the start does not depend on damping or t
                    d = read_deck(deck)
                    X0 = np.sort(initial_conditions(d, deck_model(d), np.arange(n)).x[:, 0])
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = mqcd.run(deck)
                s = np.sqrt(1.0 + (t / (2.0 * M * w * w)) ** 2)
                exact = x0 + k * t / M + (X0 - x0) * s
                dev = np.abs(np.sort(np.asarray(res["final/position"])[:, 0]) - exact).max()
                drift = np.abs(np.asarray(res["energy/ensemble_drift"])).max()
                cells.append(f"t = {t:g}: max |x_I - x_Bohm| / width {dev / (w * s):.1e}, "
                             f"energy drift {drift:.1e} hartree ({time.perf_counter() - t0:.0f} s)")
            print(f"N = {n}, fluid_damping = {g}: " + "; ".join(cells), flush=True)


def diagnose(a):
    """Grid-scale rho noise of a fluid-element run, band by band along the swarm: every
    ``--every`` a.u. the rms deviation of rho_I from the exact conditional field at x_I and the
    rms second difference of rho along the position order ("roughness"), for ten bands of the
    sorted elements (0 = trailing, 9 = leading edge)."""
    n = a.n or 1000
    deck = tully3_deck(a, a.fields, n, **({"exact_reference": True} if a.fields == "fluid" else {}))
    dt = float(a.dt.split(",")[0])
    deck["run"].update(dt=dt, t_end=a.t_end, stop="time", on_energy_drift="warn")
    every = int(round(a.every / dt))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = runner(deck)
        sw, m = r.sw, r.method
        print(f"{a.method}, {a.fields} ({a.correction}), N = {n}, dt = {dt}, g_corrector = {a.k}; "
              f"per band of sorted elements (0 trailing .. 9 leading): rms |rho - rho_exact| / "
              f"rms roughness", flush=True)
        while sw.step * dt < a.t_end - 1e-9:
            for _ in range(every):
                m.step(sw, dt)
            o = np.argsort(sw.x[:, 0], kind="stable")
            wf = m.estimator.wf if a.fields == "exact" else m.reference
            ex = wf.fields_at(sw.step, sw.x, need_rho2=False)
            dev = np.sqrt(np.sum(np.abs(sw.rho - ex.rho) ** 2, axis=(1, 2)))[o]
            rs = sw.rho[o]
            rough = np.zeros(n)
            rough[1:-1] = np.sqrt(np.sum(np.abs(rs[2:] - 2 * rs[1:-1] + rs[:-2]) ** 2,
                                         axis=(1, 2)))
            bands = np.array_split(np.arange(n), 10)
            crossed = int(np.count_nonzero(o != np.arange(n)))     # rows start in position order
            print(f"t = {sw.step * dt:6.0f}: " + " ".join(
                f"{np.sqrt(np.mean(dev[b] ** 2)):.1e}/{np.sqrt(np.mean(rough[b] ** 2)):.1e}"
                for b in bands) + f" | out of order {crossed}, max |p| "
                f"{np.abs(sw.p).max():.1f}, x {sw.x.min():.1f}..{sw.x.max():.1f}", flush=True)
            if not np.all(np.isfinite(sw.rho)):
                break


def fieldcheck(a):
    """Fluid against oracle fields on the same state (module docstring)."""
    n = a.n or 1000
    dt = float(a.dt.split(",")[0])
    times = [float(t) for t in a.times.split(",")]

    def make(fm):
        deck = tully3_deck(a, fm, n)
        deck["run"].update(dt=dt, t_end=max(times) + dt, stop="time", on_energy_drift="warn")
        return runner(deck)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rf, ro = make("fluid"), make("exact")
        sw, m, so, mo = rf.sw, rf.method, ro.sw, ro.method
        print(f"{a.method}, fluid ({a.correction}) against the oracle on the same state, N = {n}, "
              f"dt = {dt}: relative rms error per band of sorted elements (0 trailing .. 9 "
              f"leading) of G | F_corr | d rho | d ln n", flush=True)
        for t in times:
            while sw.step * dt < t - 1e-9:
                m.step(sw, dt)
            for name in ("x", "p", "rho", "H", "dH"):
                getattr(so, name)[:] = getattr(sw, name)
            so.step, so.adiabatic_step = sw.step, -1
            Ff = m._update_fields(sw).copy()
            Gf, ff = m.G_now.copy(), m.last_fields
            Fo = mo._update_fields(so).copy()
            Go, fo = mo.G_now.copy(), mo.last_fields
            o = np.argsort(sw.x[:, 0], kind="stable")

            def rel(u, v, b):
                return np.sqrt(np.sum(np.abs(u[b] - v[b]) ** 2)
                               / max(np.sum(np.abs(v[b]) ** 2), 1e-300))
            rows = [" ".join(f"{rel(u, v, b):.1e}" for b in np.array_split(o, 10))
                    for u, v in ((Gf, Go), (Ff, Fo), (ff.drho, fo.drho), (ff.dlogn, fo.dlogn))]
            print(f"t = {sw.step * dt:.1f}\n  G      {rows[0]}\n  F_corr {rows[1]}\n"
                  f"  d rho  {rows[2]}\n  d ln n {rows[3]}")
            lead = o[::-1][:8]
            print("  leading 8, |G - G_exact| / |G_exact|: " + " ".join(
                f"{np.linalg.norm(Gf[i] - Go[i]) / np.linalg.norm(Go[i]):.1e}" for i in lead),
                flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("study", choices=("verlet", "bohm", "corrector", "conical", "full",
                                      "diagnose", "fieldcheck", "free"))
    ap.add_argument("--method", default="qhd")
    ap.add_argument("--k", type=int, default=1, help="full: g_corrector")
    ap.add_argument("--data", default="exact_data", help="full: folder of cached exact runs")
    ap.add_argument("--n", default=None, help="trajectories (conical: a comma list)")
    ap.add_argument("--dt", default="0.02,0.025,0.0325,0.04,0.05")
    ap.add_argument("--t-end", type=float, default=700.0)
    ap.add_argument("--damping", default=None,
                    help="full: [method] fluid_damping (1/atomic_unit_of_time; default the "
                         "key's); free: a comma list")
    ap.add_argument("--times", default="0.5,100,500", help="fieldcheck: a.u., comma list")
    ap.add_argument("--every", type=float, default=100.0, help="diagnose: a.u. between rows")
    ap.add_argument("--fields", default="fluid", choices=("fluid", "exact"),
                    help="diagnose: field_method (exact = the oracle baseline)")
    ap.add_argument("--correction", default="adjoint", choices=("adjoint", "flux"),
                    help="fluid_correction (full, diagnose)")
    a = ap.parse_args(argv)
    a.n_list = a.n if a.study in ("conical", "free") else None
    a.n = None if a.n is None or a.study in ("conical", "free") else int(a.n)
    a.damping_list = a.damping if a.study == "free" else None
    a.damping = None if a.damping is None or a.study == "free" else float(a.damping)
    if a.study in ("full", "diagnose", "fieldcheck", "free") and a.dt == ap.get_default("dt"):
        a.dt = "0.5"
    {"verlet": verlet, "bohm": bohm, "corrector": corrector, "conical": conical,
     "full": full, "diagnose": diagnose, "fieldcheck": fieldcheck, "free": free}[a.study](a)


if __name__ == "__main__":
    main()
