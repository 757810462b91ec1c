"""Figures and tables of docs/transfer.md (energy, momentum and angular-momentum transfer).

    nice python tools/transfer_figures.py exact      # exact split and identities, Tully 1-3, conical
    nice python tools/transfer_figures.py lrg        # the LRG solvable model, Fig. 1 (10 periods)
    nice python tools/transfer_figures.py methods    # T_geo and rates of methods vs exact
    nice python tools/transfer_figures.py dt2        # identity residuals vs dt, every method
    nice python tools/transfer_figures.py magnetic   # Berry force: cyclotron orbit, energy drift
    nice python tools/transfer_figures.py marginal   # dT_marg/dt = int n F.v vs the grid spacing
    nice python tools/transfer_figures.py all

Run from the repository root; runs are kept in out/transfer/ (reused), figures go to
docs/figures/transfer_*.png, tables are printed (markdown).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

OUT = Path("out/transfer")
FIG = Path("docs/figures")


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _cached(path, make):
    from mqcd.io.results import load, write_result
    path = OUT / path
    if path.exists():
        return load(path)
    t0 = time.perf_counter()
    res = make()
    res.attrs["tool_wall_s"] = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    write_result(path, res, force=True)
    return res


def exact_case(model, k, **exact):
    from mqcd.analysis.validate import scattering_deck
    from mqcd.exact import run_exact
    d = scattering_deck(model, k)
    d["exact"] = {"factorization": True, **exact}
    tag = "_".join(f"{a}{b}" for a, b in sorted(exact.items()))
    return _cached(f"exact_{model}_k{k:g}{'_' + tag if tag else ''}.h5", lambda: run_exact(d))


def conical_exact():
    from mqcd.exact import run_exact
    sig = [float(np.sqrt(1 / (2 * 2000 * 0.01))), float(np.sqrt(1 / (2 * 2000 * 0.006)))]
    d = {"model": {"name": "conical2d"},
         "initial": {"position": [0.8, 0.0], "momentum": [0.0, 4.0], "width": sig, "state": 1},
         "run": {"trajectories": 1, "dt": 0.5, "t_end": 300.0, "seed": 1},
         "output": {"stride": 10},
         "exact": {"factorization": True, "angular_origin": [-0.5, 0.0]}}
    return _cached("exact_conical2d.h5", lambda: run_exact(d))


def cmd_exact():
    from mqcd.analysis.transfer import geometric_peak, identity_residuals
    rows = ["| case | T_marg + T_geo + E_BO vs E (max rel.) | T_geo peak (hartree) at t (a.u.) | "
            "dP/dt = <F> (rel.) | dT_n/dt (rel.) | dT_marg/dt (rel.) | dL/dt (rel.) | "
            "int n F_EF vs -<dH> | -<dH> vs grid force |",
            "|---|---|---|---|---|---|---|---|---|"]
    cases = [("tully1", 10.0, {}), ("tully2", 16.0, {}), ("tully2", 16.0, {"dt": 0.25}),
             ("tully3", 10.0, {}), ("double_arch", 15.0, {})]
    results = {}
    for model, k, ex in cases:
        results[(model, k, tuple(ex.items()))] = exact_case(model, k, **ex)
    results[("conical2d", 0, ())] = conical_exact()
    for (model, k, ex), r in results.items():
        res = identity_residuals(r)
        pk = geometric_peak(r)
        F = np.asarray(r["nuclear/force_mean"])
        top = np.abs(F).max()
        g = lambda key: f"{res[key]['rate_relative']:.1e}" if key in res else "—"  # noqa: E731
        name = f"{model} k={k:g}" if k else "conical2d (x0 = (0.8, 0), p0 = (0, 4))"
        if ex:
            name += " " + ", ".join(f"[exact] {a} = {b}" for a, b in ex)
        rows.append(
            f"| {name} | {np.max(np.abs(r['exact/energy_split_residual'] / r['energy/total'])):.1e}"
            f" | {pk[0]:.3e} at {pk[1]:.0f} | {g('momentum')} | {g('kinetic energy')} | "
            f"{g('marginal kinetic energy')} | {g('angular momentum')} | "
            f"{np.abs(r['exact/force_ef_mean'] - r['exact/force_continuum']).max() / top:.1e} | "
            f"{np.abs(r['exact/force_continuum'] - F).max() / top:.1e} |")
    print("\n".join(rows))
    tgeo_forward_backward()
    r = results[("tully3", 10.0, ())]
    plt = _plt()
    t = r["time"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.6))
    ax = [axes[0, 0], axes[1, 0], axes[1, 1], axes[0, 1]]
    E0 = r["energy/total"][0]
    ax[0].plot(t, r["energy/kinetic_marginal"] - r["energy/kinetic_marginal"][0],
               label="T_marg - T_marg(0)")
    ax[0].plot(t, r["energy/geometric"], label="T_geo", lw=2)
    ax[0].plot(t, r["energy/born_oppenheimer"] - r["energy/born_oppenheimer"][0],
               label="E_BO - E_BO(0)")
    ax[0].plot(t, r["energy/total"] - E0, "k:", label="E - E(0)")
    ax[0].set_ylabel("hartree")
    pk = np.argmax(r["energy/geometric"])
    ax[0].set_title("(a) Tully 3, k = 10: E = T_marg + T_geo + E_BO (LRG (5), (8), after (10))",
                    fontsize=9)
    rel = np.abs(r["exact/energy_split_residual"] / r["energy/total"])
    ax[0].text(0.02, 0.04, f"max |T_marg + T_geo + E_BO - E| / |E| = {rel.max():.1e}",
               transform=ax[0].transAxes, fontsize=8)
    ax[3].plot(t, r["energy/geometric"], color="C1", lw=2)
    ax[3].annotate(f"peak {r['energy/geometric'][pk]:.3e} hartree at t = {t[pk]:.0f} a.u.",
                   (t[pk], r["energy/geometric"][pk]), fontsize=8, xytext=(15, -5),
                   textcoords="offset points")
    ax[3].set_title("(b) exact T_geo(t) = sum_k (1/2M) int n g_kk (LRG (8))", fontsize=9)
    ax[3].set_ylabel("hartree")
    for name, fd, lab in (("energy/power_marginal", "rates/kinetic_marginal", "dT_marg/dt"),
                          ("energy/power_geometric", "rates/geometric", "dT_geo/dt"),
                          ("energy/power", "rates/kinetic", "dT_n/dt")):
        line, = ax[1].plot(t, r[name], label=f"{lab}: identity")
        ax[1].plot(t, r[fd], "--", color=line.get_color(), label=f"{lab}: finite difference")
    ax[1].set_title("(c) kinetic-energy transfer rates (LRG (19), (25))", fontsize=9)
    ax[1].set_ylabel("hartree / a.u.")
    ax[2].plot(t, r["nuclear/force_mean"][:, 0], label="<F> = <i[H, p]> (identity)")
    ax[2].plot(t, r["rates/momentum"][:, 0], "--", label="dP/dt (finite difference)")
    ax[2].plot(t, r["exact/force_ef_mean"][:, 0], ":", label="int n F_EF")
    ax[2].set_title("(d) momentum transfer (LRG (17))", fontsize=9)
    ax[2].set_ylabel("hartree / bohr")
    for a in ax:
        a.set_xlim(1500, 5000)
        a.set_xlabel("time (a.u.)")
        a.grid(alpha=0.25)
    for a in ax[:3]:
        a.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    FIG.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIG / "transfer_tully3_k10_exact.png", dpi=110)
    plt.close(fig)
    print(f"wrote {FIG / 'transfer_tully3_k10_exact.png'}")


def tgeo_forward_backward(t=2780.0):
    """Where the exact T_geo of Tully 3 k = 10 sits at its peak: T_geo of the whole wavefunction
    and of its forward-moving (k > 0) and backward-moving Fourier parts alone (docs/transfer.md)."""
    from mqcd.analysis.validate import scattering_deck
    from mqcd.exact.factorization import derivative_table, spectral_derivatives
    from mqcd.exact import wavefunction_at
    op, psi, model, plan = wavefunction_at(scattering_deck("tully3", 10.0), t)
    M, dx, up = model.masses[0], plan.dx[0], 4

    def tgeo(ps):       # (1/2M) int (sum_a |d psi_a|^2 - |psi^dagger d psi|^2 / n) / norm
        d = spectral_derivatives(ps, plan.dx, derivative_table(1)[:2], up)
        n = np.sum(np.abs(d[0]) ** 2, axis=0)
        ok = n > 1e-14 * n.max()
        dens = np.where(ok, np.sum(np.abs(d[1]) ** 2, axis=0) - np.abs(
            np.sum(np.conj(d[0]) * d[1], axis=0)) ** 2 / np.where(ok, n, 1.0), 0.0)
        return float(np.sum(dens)) / (2 * M) / float(np.sum(n))

    k = 2 * np.pi * np.fft.fftfreq(psi.shape[-1], dx)
    ph = np.fft.fft(psi, axis=-1)
    fwd = np.fft.ifft(np.where(k > 0, ph, 0), axis=-1)
    bwd = np.fft.ifft(np.where(k <= 0, ph, 0), axis=-1)
    norm = lambda a: float(np.sum(np.abs(a) ** 2) * dx)         # noqa: E731
    print(f"\nTully 3 k = 10, t = {t:g}: T_geo = {tgeo(psi):.3e} hartree; forward-moving part "
          f"alone (norm {norm(fwd):.3f}): {tgeo(fwd):.3e}; backward-moving part alone (norm "
          f"{norm(bwd):.3f}): {tgeo(bwd):.3e}")


def cmd_lrg(periods=10.0):
    from mqcd.analysis.transfer import time_derivative
    from mqcd.exact.solvable import LRGModel, solve
    m = LRGModel()
    cache = OUT / f"lrg_periods{periods:g}.npz"
    if cache.exists():
        z = np.load(cache)
        r = {k: z[k] for k in z.files}
        r["grid"], r["krylov"], wall = [int(v) for v in r["grid"]], int(r["krylov"]), \
            float(r["wall"])
    else:
        t0 = time.perf_counter()
        r = solve(m, periods=periods, h=2.5, record=5.0, dx=5.0)
        wall = time.perf_counter() - t0
        np.savez(cache, wall=wall, **r)
    t = r["time"]
    dP = time_derivative(t, r["P"][:, 0], k=7)
    FD = r["F"][:, 0] + r["D"][:, 0]
    inner = slice(8, -8)
    g2d = np.array([m.g(s, 1)[1] for s in t])
    dT = time_derivative(t, r["T"], k=7)
    print(f"| quantity (10 periods of g_1, {periods * m.period:.0f} a.u.; grid {r['grid']}, CF4 "
          f"h = 2.5, Krylov <= {r['krylov']}, {wall:.0f} s) | value |\n|---|---|")
    for name, v in (("max norm(chi - chi_exact)", r["norm_error"].max()),
                    ("max abs(norm - 1)", np.abs(r["norm"] - 1).max()),
                    ("max abs(dP_1/dt - Re<F_1 + D_1>) (interior)", np.abs(dP - FD)[inner].max()),
                    ("max abs(Re<F_1 + D_1> - M g_1'')", np.abs(FD - r["Mg1dd"]).max()),
                    ("max abs(dP_1/dt - M g_1'') (interior)", np.abs(dP - r["Mg1dd"])[inner].max()),
                    ("max abs(Re<F_1> - M g_1'' - 2 g_2') (= -D_1 exactly)",
                     np.abs(r["F"][:, 0] - r["Mg1dd"] - 2 * g2d).max()),
                    ("max abs(Re<D_1>)", np.abs(r["D"][:, 0]).max()),
                    ("max abs(dT/dt - Re<sum E_mu v_mu>) (interior; 2019 (14))",
                     np.abs(dT - r["power"])[inner].max())):
        print(f"| {name} | {v:.2e} |")
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    g = np.array([m.g(s) for s in t])
    ax[0].plot(g[:, 0], g[:, 1], lw=1.2)
    v0 = np.array(m.g(0.0, 1))
    ax[0].annotate("", xy=g[0] + 0.6 * v0 / np.linalg.norm(v0), xytext=g[0],
                   arrowprops={"arrowstyle": "->", "color": "k", "lw": 1.5},
                   annotation_clip=False)
    ax[0].set_xlabel("X_1 (bohr)")
    ax[0].set_ylabel("X_2 (bohr)")
    ax[0].set_title("(a) centre of the nuclear wavepacket (g_1, g_2)", fontsize=9)
    ax[0].set_aspect("equal")
    sel = t <= 2 * m.period
    ax[1].plot(t[sel], r["F"][sel, 0] + r["D"][sel, 0], color="green", lw=2.5,
               label="Re<F_1 + D_1>")
    ax[1].plot(t[sel], r["F"][sel, 0], color="red", lw=1.5, label="Re<F_1>")
    ax[1].plot(t[sel], dP[sel], "--", color="blue", lw=1.5, label="dP_1/dt (grid TDSE)")
    ax[1].set_xlabel("t (a.u.)")
    ax[1].set_ylabel("hartree / bohr")
    ax[1].set_title("(b) the identity for the momentum of nucleus 1 (LRG 2019 Fig. 1)",
                    fontsize=9)
    ax[1].legend(fontsize=8, frameon=False)
    ax[1].grid(alpha=0.25)
    fig.tight_layout()
    fig.savefig(FIG / "transfer_lrg_fig1.png", dpi=110)
    plt.close(fig)
    print(f"wrote {FIG / 'transfer_lrg_fig1.png'}")


METHOD_RUNS = {"ehrenfest": {"name": "ehrenfest"},
               "fssh+edc": {"name": "fssh", "decoherence": "edc"},
               "fssh-coupled": {"name": "fssh-coupled"}}


def cmd_methods(ntraj=2000):
    import mqcd
    from mqcd.analysis.compare import compare_files
    from mqcd.analysis.validate import scattering_deck
    for model, k in (("tully3", 10.0), ("double_arch", 15.0)):
        exact_case(model, k)
        paths = [OUT / f"exact_{model}_k{k:g}.h5"]
        for lab, meth in METHOD_RUNS.items():
            def make(meth=meth):
                d = scattering_deck(model, k, meth, ntraj=ntraj)
                d["output"]["geometric"] = True
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return mqcd.run(d)
            _cached(f"{lab}_{model}_k{k:g}_N{ntraj}.h5", make)
            paths.append(OUT / f"{lab}_{model}_k{k:g}_N{ntraj}.h5")
        png = FIG / f"transfer_{model}_k{k:g}_methods.png"
        print(f"\n### {model} k = {k:g}\n")
        print(compare_files(paths, labels=["exact"] + list(METHOD_RUNS), transfer_plot=png))


def cmd_dt2():
    import mqcd
    from mqcd.analysis.transfer import identity_residuals
    sys.path.insert(0, "tests")
    from test_transfer import _fssh_2d, scattering
    rows = ["| method | case | dP/dt = <F>: dt = 1 | dt = 0.5 | ratio | dT/dt = <F.v>: dt = 1 | "
            "dt = 0.5 | ratio | dL/dt: dt = 1 | dt = 0.5 | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    cases = [(m, "tully2 k=16, N=16", lambda dt, m=m: scattering(
        "tully2", 16.0, {"name": m}, ntraj=16, dt=dt, t_end=2200.0, stride=int(2 / dt)))
        for m in ("ehrenfest", "geometric-ehrenfest", "ehrenfest-qc", "geometric-ehrenfest-qc",
                  "qhd")]
    cases.insert(3, ("ehrenfest-qc (force_reset = never)", "tully2 k=16, N=16",
                     lambda dt: scattering("tully2", 16.0, {"name": "ehrenfest-qc",
                                                            "force_reset": "never"},
                                           ntraj=16, dt=dt, t_end=2200.0, stride=int(2 / dt))))
    cases += [(m, "conical2d_complex, N=12, Berry force", lambda dt, m=m: _fssh_2d(dt, m))
              for m in ("fssh", "fssh-coupled")]
    cases += [("ehrenfest", "conical2d_complex, N=12", lambda dt: {
        **_fssh_2d(dt), "method": {"name": "ehrenfest"}})]
    for m, case, deck in cases:
        vals = []
        for dt in (1.0, 0.5):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = identity_residuals(mqcd.run(deck(dt)))
            vals.append([res[k]["integrated_relative"] if k in res else np.nan
                         for k in ("momentum", "kinetic energy", "angular momentum")])
        v = np.array(vals)
        cells = []
        for j in range(3):
            if np.isnan(v[0, j]):
                cells += ["—", "—", "—"]
            else:
                cells += [f"{v[0, j]:.2e}", f"{v[1, j]:.2e}", f"{v[0, j] / v[1, j]:.3f}"]
        rows.append(f"| {m} | {case} | " + " | ".join(cells) + " |")
    print("\n".join(rows))
    # every step recorded, trapezoid rule (what the kicks are): momentum to round-off also for
    # forces that jump in time (hops, ehrenfest-qc's population reset)
    from mqcd.analysis.transfer import step_residuals
    rows = ["", "| method | dP/dt = <F> step by step: dt = 1 | dt = 0.5 | dT/dt = <F.v>: dt = 1 | "
            "dt = 0.5 | ratio |", "|---|---|---|---|---|---|"]
    for meth in ({"name": "ehrenfest-qc"}, {"name": "fssh"}, {"name": "fssh-coupled"}):
        vals = []
        for dt in (1.0, 0.5):
            d = scattering("tully2", 16.0, meth, ntraj=16, dt=dt, t_end=2200.0, stride=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                vals.append(step_residuals(mqcd.run(d)))
        rows.append(f"| {meth['name']} | {vals[0]['momentum']:.1e} | {vals[1]['momentum']:.1e} | "
                    f"{vals[0]['kinetic energy']:.2e} | {vals[1]['kinetic energy']:.2e} | "
                    f"{vals[0]['kinetic energy'] / vals[1]['kinetic energy']:.3f} |")
    print("\n".join(rows))


def cmd_magnetic():
    """The Berry (magnetic) force of surface hopping: the cyclotron orbit on uniform_curvature
    and energy conservation with the force on conical2d_complex (docs/transfer.md)."""
    import mqcd
    from mqcd.models import build_model
    sys.path.insert(0, "tests")
    from test_transfer import _fssh_2d
    B = build_model({"name": "uniform_curvature"}).curvature()
    M, p0 = 100.0, 2.0
    orbits = {}
    rows = ["| uniform_curvature, FSSH, p0 = (2, 0), dt = 0.5, t = 0..600 | berry_force = on | "
            "off |", "|---|---|---|"]
    vals = {}
    for berry in ("on", "off"):
        d = {"model": {"name": "uniform_curvature"},
             "initial": {"position": [0.0, 0.0], "momentum": [p0, 0.0], "width": [0.5, 0.5],
                         "state": 0, "sampling": "fixed"},
             "method": {"name": "fssh", "berry_force": berry},
             "run": {"trajectories": 1, "dt": 0.5, "t_end": 600.0, "seed": 1},
             "output": {"stride": 2}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = mqcd.run(d)
        p, t = r["nuclear/momentum_mean"], r["time"]
        om = np.polyfit(t, np.unwrap(np.arctan2(p[:, 1], p[:, 0])), 1)[0]
        vals[berry] = (om, np.abs(np.hypot(p[:, 0], p[:, 1]) - p0).max(),
                       r["energy/drift_max"].max(), np.abs(r["energy/power"]).max())
        orbits[berry] = r["nuclear/position_mean"]
    for i, name in enumerate(("fitted angular frequency of p (1/a.u.; -B/M = "
                              f"{-B / M:.6f})", "max abs(abs(p) - abs(p0))",
                              "max energy drift (hartree)", "max abs(<F.v>) (hartree/a.u.)")):
        fmt = ".12f" if i == 0 else ".3e"
        rows.append(f"| {name} | {vals['on'][i]:{fmt}} | {vals['off'][i]:{fmt}} |")
    print("\n".join(rows))
    print(f"\nradius of the orbit |p0| / |B| = {p0 / abs(B):.3f} bohr; measured "
          f"{0.5 * np.ptp(orbits['on'][:, 1]):.3f} bohr (half the y extent)\n")
    rows = ["| conical2d_complex, FSSH, N = 12, t = 0..400 | dt = 1 | dt = 0.5 | dt = 0.25 | "
            "ratio 1/0.5 | ratio 0.5/0.25 |", "|---|---|---|---|---|---|"]
    drift, dev = [], None
    for dt in (1.0, 0.5, 0.25):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            on = mqcd.run(_fssh_2d(dt))
            drift.append(on["energy/drift_max"].max())
            if dt == 0.5:
                off = mqcd.run({**_fssh_2d(dt), "method": {"name": "fssh", "berry_force": "off"}})
                dev = np.abs(on["nuclear/position_mean"] - off["nuclear/position_mean"]).max()
                hops = int(on["final/hops"].sum())
    rows.append(f"| max energy drift, berry_force = on (hartree) | {drift[0]:.2e} | "
                f"{drift[1]:.2e} | {drift[2]:.2e} | {drift[0] / drift[1]:.2f} | "
                f"{drift[1] / drift[2]:.2f} |")
    print("\n".join(rows))
    print(f"\nmax |<x>_on - <x>_off| over the run (dt = 0.5): {dev:.3e} bohr; hops: {hops}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot(orbits["on"][:, 0], orbits["on"][:, 1], lw=1.5, label="berry_force = on")
    ax.plot(orbits["off"][:, 0], orbits["off"][:, 1], "--", lw=1.2, label="berry_force = off")
    ax.set_xlim(-1.2, 4.0)
    ax.set_ylim(-2.4, 0.7)
    ax.set_aspect("equal")
    ax.set_xlabel("x (bohr)")
    ax.set_ylabel("y (bohr)")
    ax.set_title(f"uniform_curvature: cyclotron orbit, B_xy = {B:g} bohr^-2, M = {M:g}",
                 fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    ax.grid(alpha=0.25)
    fig.tight_layout()
    fig.savefig(FIG / "transfer_cyclotron.png", dpi=110)
    plt.close(fig)
    print(f"wrote {FIG / 'transfer_cyclotron.png'}")


def cmd_marginal():
    """Residual of the marginal identity at the default grid and at dx / 2 (same box), and the
    factorization_upsample dependence of int n F.v at the worst Tully 2 record."""
    from mqcd.analysis.transfer import identity_residuals
    from mqcd.analysis.validate import scattering_deck
    from mqcd.exact import exact_plan, run_exact, wavefunction_at
    from mqcd.exact.solver import _as_deck
    from mqcd.exact.transfer import FactorizationRecorder
    rows = ["| case | grid points | dT_marg/dt = int n F.v (rel. to peak power) | at t (a.u.) |",
            "|---|---|---|---|"]
    for model, k, t_end in (("tully1", 10.0, 4500.0), ("double_arch", 15.0, 2500.0),
                            ("tully2", 16.0, 11250.0)):
        d = scattering_deck(model, k)
        d["run"].update(t_end=t_end, stop="time")
        d["exact"] = {"factorization": True}
        plan = exact_plan(_as_deck(d)[0])[0]
        for refine in (1, 2):
            dd = {**d, "exact": {**d["exact"], "box": list(plan.box[0]),
                                 "points": [refine * plan.npoints[0]]}}
            r = _cached(f"marginal_{model}_k{k:g}_x{refine}.h5", lambda dd=dd: run_exact(dd))
            res = identity_residuals(r)["marginal kinetic energy"]
            t = np.asarray(r["time"])
            inner = np.abs(res["rate_residual"])[5:-5]
            rows.append(f"| {model} k={k:g} | {refine * plan.npoints[0]} | "
                        f"{res['rate_relative']:.2e} | {t[5:-5][np.argmax(inner)]:.0f} |")
    print("\n".join(rows))
    # the worst Tully 2 record: one near-node sample carries the residual, O(dx_fine)
    op, psi, model, _ = wavefunction_at({**scattering_deck("tully2", 16.0),
                                         "exact": {"factorization": True}}, 6240.0)
    print("\nTully 2 k = 16 at t = 6240 a.u. (dT_marg/dt from the records: 1.5e-9 hartree/a.u.):")
    for u in (1, 2, 4, 8):
        out, _ = FactorizationRecorder(op, model, upsample=u).record(psi)
        print(f"  factorization_upsample = {u}: int n F.v = {out['energy/power_marginal']:.3e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("exact", "lrg", "methods", "dt2", "magnetic", "marginal",
                                       "all"))
    ap.add_argument("--ntraj", type=int, default=2000)
    a = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if a.what in ("exact", "all"):
        cmd_exact()
    if a.what in ("lrg", "all"):
        cmd_lrg()
    if a.what in ("methods", "all"):
        cmd_methods(a.ntraj)
    if a.what in ("dt2", "all"):
        cmd_dt2()
    if a.what in ("magnetic", "all"):
        cmd_magnetic()
    if a.what in ("marginal", "all"):
        cmd_marginal()


if __name__ == "__main__":
    main()
