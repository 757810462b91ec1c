"""Numbers and figures of docs/conservation_fields.md (issue 17, Plechac-Sandberg-Szepessy).

    python tools/conservation_fields.py table     # balance residuals vs kernel width and dt
    python tools/conservation_fields.py eos       # pressure vs temperature, figure
    python tools/conservation_fields.py eos-seeds # the earlier EOS setting with other seeds
    python tools/conservation_fields.py eos-sampler  # pressure of the MALA samples (no MD)
    python tools/conservation_fields.py snapshot  # the fields of inputs/chain_two_state.toml
    python tools/conservation_fields.py box3d     # 3D, 10976 atoms, mpiexec -n 2 vs serial
    python tools/conservation_fields.py box3d-fields --cells 4,6,8   # 3D balance residuals, cost

Figures go to docs/figures/conservation_*.png; tables are printed as markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import mqcd
from mqcd.io.results import load
from mqcd.conservation import Grid, box_stress, ensemble_fields, residuals
from mqcd.conservation.api import run_weights
from mqcd.conservation.thermo import chain_exact
from mqcd.models import build_model

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT / "docs" / "figures"
warnings.filterwarnings("ignore", category=RuntimeWarning, module="mqcd")


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def gibbs_deck(model, kT, ntraj, dt, t_end, stride=1, states=None, seed=17, thinning=100):
    initial = {"sampling": "gibbs", "kT": kT, "gibbs_allocation": "equal",
               "mcmc_thinning": thinning, "mcmc_burn_in": 4000}
    if states is not None:
        initial["gibbs_states"] = states
    return {"model": model, "initial": initial, "method": {"name": "adiabatic"},
            "run": {"trajectories": ntraj, "dt": dt, "t_end": t_end, "seed": seed},
            "output": {"stride": stride, "trajectories": True}}


def bar_weights(model, res, kT):
    """Weights q_j N / N_j with q from BAR over every stored configuration, and q."""
    w = run_weights(res, model, "bar")
    s0 = res["trajectories/surface"][0]
    return w, np.bincount(s0, weights=w, minlength=2) / w.sum()


def table():
    """Relative residuals of the three balance laws and of the virial vs dt and width."""
    mdl = {"name": "pair_chain", "natoms": 16, "box": 64.0, "c12": 3e-4}
    model = build_model(mdl)
    kT = 0.003
    rows = []
    for dt in (2.0, 1.0, 0.5, 0.25):
        res = mqcd.run(gibbs_deck(mdl, kT, 8, dt, 24 * dt, thinning=20))
        w, q = bar_weights(model, res, kT)
        for width in (0.75, 1.0, 1.5, 2.0):
            ng = int(16 * np.ceil(3 * 64.0 / width / 16))
            grid = Grid(box=64.0, dim=1, ng=ng, width=width)
            s = ensemble_fields(model, res["trajectories/position"],
                                res["trajectories/momentum"], res["trajectories/surface"],
                                grid, weights=w, times=res["trajectories/time"])
            r = residuals(s)
            rows.append((dt, width, ng, r))
            print(f"dt {dt} width {width}: {r}", file=sys.stderr)
    print(f"q_1 (BAR) = {q[1]:.4f}")
    print("| dt (a.u.) | width (bohr) | grid | mass | momentum | energy | virial |")
    print("|---|---|---|---|---|---|---|")
    for dt, width, ng, r in rows:
        print(f"| {dt:g} | {width:g} | {ng} | {r['mass']:.2e} | {r['momentum']:.2e} | "
              f"{r['energy']:.2e} | {r['virial']:.1e} |")


def _pressure(model, res, grid, select=None):
    """Time-averaged box pressure (hartree in 1D) of every selected trajectory, from the
    fields' grid integral of the momentum flux (= the virial to round-off)."""
    X, P, S = (res[k] for k in ("trajectories/position", "trajectories/momentum",
                                "trajectories/surface"))
    idx = np.nonzero(np.ones(X.shape[1], bool) if select is None else select)[0]
    per = []
    for t in idx:
        s = ensemble_fields(model, X[:, t:t + 1], P[:, t:t + 1], S[:, t:t + 1], grid,
                            times=res["trajectories/time"], paths="star")
        per.append(-box_stress(s)[:, 0, 0].mean())
    return np.array(per)


def _mean_se(v):
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))


def _reduced_gap(model, res):
    """``u = (lambda_1 - lambda_0)/kT`` (records, trajectories) of a stored run."""
    from mqcd.conservation.thermo import surface_energies
    X = res["trajectories/position"]
    E = surface_energies(model, X.reshape(-1, X.shape[-1])).reshape(X.shape[:2] + (2,))
    return (E[..., 1] - E[..., 0]) / float(res["initial/kT"])


def eos(nj=256, t_end=3300.0, nboot=400):
    """Pressure vs kT: ground-state-only MD, the two-surface canonical ensemble of Thm 5.2
    (q-weighted fields), and the exact transfer-integral prediction P = sum_j q_j P_j.

    Per temperature an independent seed (the six points are statistically independent). The
    ground-state-only run (gibbs_states = [0]) draws its trajectories from the same chain and
    streams as the ground-surface block of the two-surface run (checked: identical), so the
    shift P_mix - P_0 = q_1 (P_1 - P_0) is measured with common random numbers. Error bars
    are bootstrap standard errors over whole trajectories (each trajectory's time average is
    one sample), with q_1 re-estimated by BAR in every bootstrap replica, so they include the
    error of q_1."""
    from mqcd.conservation.thermo import bar_q
    N, box = 16, 64.0
    mdl = {"name": "pair_chain", "natoms": N, "box": box, "c12": 0.0, "r2": 4.05,
           "gap": 0.001}
    model = build_model(mdl)
    # box integral of the periodised Gaussian on a grid of spacing = width: exact to < 1e-12
    # relative (checked against ng = 256); the pointwise residuals need spacing <= width/3
    grid = Grid(box=box, dim=1, ng=64, width=1.0)
    kTs = np.array([0.0015, 0.002, 0.0025, 0.003, 0.0035, 0.004])
    rng = np.random.default_rng(2024)
    out = []
    for k, kT in enumerate(kTs):
        t0 = time.perf_counter()
        q_ex, P_ex = chain_exact(model, kT)
        seed = 17 + 1000 * k
        ground = mqcd.run(gibbs_deck(mdl, kT, nj, 10.0, t_end, stride=15, states=[0],
                                     seed=seed))
        mixed = mqcd.run(gibbs_deck(mdl, kT, 2 * nj, 10.0, t_end, stride=15, seed=seed))
        S0 = mixed["trajectories/surface"][0]
        same = np.array_equal(ground["trajectories/position"],
                              mixed["trajectories/position"][:, S0 == 0])
        u = _reduced_gap(model, mixed)
        i0, i1 = np.nonzero(S0 == 0)[0], np.nonzero(S0 == 1)[0]
        q1, _ = bar_q(u[:, i0], u[:, i1])
        p_ground = _pressure(model, ground, grid)
        p0 = _pressure(model, mixed, grid, S0 == 0)
        p1 = _pressure(model, mixed, grid, S0 == 1)
        P0, se0 = _mean_se(p_ground)
        m0, m1 = p0.mean(), p1.mean()
        Pm = (1 - q1) * m0 + q1 * m1
        boot = np.empty((nboot, 3))
        for b in range(nboot):
            a0 = rng.integers(0, i0.size, i0.size)
            a1 = rng.integers(0, i1.size, i1.size)
            qb, _ = bar_q(u[:, i0[a0]], u[:, i1[a1]])
            b0, b1 = p0[a0].mean(), p1[a1].mean()
            boot[b] = (qb, (1 - qb) * b0 + qb * b1, qb * (b1 - b0))
        q1_se, Pm_se, dP_se = boot.std(axis=0, ddof=1)
        dP = q1 * (m1 - m0) if same else Pm - P0
        if not same:
            dP_se = float(np.hypot(Pm_se, se0))
        dP_ex = float(q_ex[1] * (P_ex[1] - P_ex[0]))
        row = {"kT": kT, "seed": seed, "q1_exact": q_ex[1], "q1_bar": q1, "q1_bar_se": q1_se,
               "q1_gibbs": float(mixed["initial/gibbs_q"][1]),
               "q1_gibbs_se": float(mixed["initial/gibbs_q_se"][1]), "P0_exact": P_ex[0],
               "P1_exact": P_ex[1], "Pmix_exact": float(q_ex @ P_ex), "P0_md": P0,
               "P0_se": se0, "P1_md": float(m1), "P1_se": _mean_se(p1)[1], "Pmix_md": Pm,
               "Pmix_se": Pm_se, "dP_md": dP, "dP_se": dP_se, "dP_exact": dP_ex,
               "common_block": bool(same), "seconds": time.perf_counter() - t0}
        out.append(row)
        print(json.dumps(row), file=sys.stderr)
    nrec = ground["trajectories/time"].size
    print(f"{N}-atom ring, box {box:g} bohr, r2 = 4.05 bohr, gap = 0.001 hartree, c12 = 0; "
          f"{nj} trajectories per surface, t = 0..{t_end:g} a.u., {nrec} records; "
          "independent seed per temperature; +- bootstrap standard errors")
    print("| kT (hartree) | q_1 exact | q_1 BAR | q_1 gibbs | P_0 exact | P_0 MD | "
          "P_1 exact | P_1 MD | q_1(P_1 - P_0) exact | P_mix - P_0 MD | (MD - exact)/error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in out:
        print(f"| {r['kT']:g} | {r['q1_exact']:.4f} | {r['q1_bar']:.4f} +- {r['q1_bar_se']:.4f} | "
              f"{r['q1_gibbs']:.4f} +- {r['q1_gibbs_se']:.4f} | {r['P0_exact']:.4e} | "
              f"{r['P0_md']:.4e} +- {r['P0_se']:.1e} | {r['P1_exact']:.4e} | "
              f"{r['P1_md']:.4e} +- {r['P1_se']:.1e} | {r['dP_exact']:.3e} | "
              f"{r['dP_md']:.3e} +- {r['dP_se']:.1e} | "
              f"{(r['dP_md'] - r['dP_exact']) / r['dP_se']:+.1f} |")
    chi2 = sum(((r["dP_md"] - r["dP_exact"]) / r["dP_se"]) ** 2 for r in out)
    chi0 = sum(((r["P0_md"] - r["P0_exact"]) / r["P0_se"]) ** 2 for r in out)
    print(f"chi^2 of the shift over the {len(out)} temperatures: {chi2:.2f}; of P_0: {chi0:.2f}")
    (FIG / "conservation_eos.json").write_text(json.dumps(out, indent=1))
    eos_figure(out)


def eos_seeds(kTs=(0.0015, 0.003), seeds=(17, 1017, 2017, 3017)):
    """The earlier EOS setting (64 ground-state trajectories, 1650 a.u.) with other seeds:
    P_0 MD / exact - 1 and its size in standard errors (the seed-17 'bias' is a fluctuation)."""
    mdl = {"name": "pair_chain", "natoms": 16, "box": 64.0, "c12": 0.0, "r2": 4.05,
           "gap": 0.001}
    model = build_model(mdl)
    grid = Grid(box=64.0, dim=1, ng=64, width=1.0)
    print("| kT (hartree) | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    print("|---|" + "---|" * len(seeds))
    for kT in kTs:
        P = chain_exact(model, kT)[1][0]
        cells = []
        for seed in seeds:
            res = mqcd.run(gibbs_deck(mdl, kT, 64, 10.0, 1650.0, stride=15, states=[0],
                                      seed=seed))
            m, se = _mean_se(_pressure(model, res, grid))
            cells.append(f"{100 * (m / P - 1):+.1f} % ({(m - P) / se:+.1f} s.e.)")
        print(f"| {kT:g} | " + " | ".join(cells) + " |")


def eos_sampler(kT=0.0015, settings=((4000, 100), (4000, 20), (20000, 100)), seeds=(17, 18)):
    """Pressure of the MALA samples themselves (no MD) on each surface vs the transfer
    integral: (N kT - sum r phi_j'(r))/L over 256 samples (64 chains x 4)."""
    from mqcd.ensemble.thermal import Surface, sample_surface
    model = build_model({"name": "pair_chain", "natoms": 16, "box": 64.0, "c12": 0.0,
                         "r2": 4.05, "gap": 0.001})
    N, L = model.natoms, model.box
    P_ex = chain_exact(model, kT)[1]
    print("| surface | burn-in | thinning | seed | P MALA / exact - 1 | s.e. |")
    print("|---|---|---|---|---|---|")
    for j in (0, 1):
        for burn, thin in settings:
            for seed in seeds:
                res = sample_surface(Surface(model, j, "adiabatic"), kT,
                                     model.harmonic_reference()[0], 256,
                                     {"chains": 64, "burn_in": burn, "thinning": thin}, seed,
                                     1 + j)
                vir = []
                for x in res.x.reshape(-1, N):
                    _, _, d = model.pairs(x)
                    r = np.abs(d[:, 0])
                    vir.append(-(r * model.pair_matrices(r)[1][:, j, j]).sum())
                m, se = _mean_se((N * kT + np.array(vir)) / L)
                print(f"| {j} | {burn} | {thin} | {seed} | {100 * (m / P_ex[j] - 1):+.1f} % | "
                      f"{(m - P_ex[j]) / se:+.1f} |")


def eos_figure(out=None):
    """The EOS figure from the rows of :func:`eos` (default: docs/figures/conservation_eos.json)."""
    if out is None:
        out = json.loads((FIG / "conservation_eos.json").read_text())
    N, box = 16, 64.0
    model = build_model({"name": "pair_chain", "natoms": N, "box": box, "c12": 0.0,
                         "r2": 4.05, "gap": 0.001})
    kTs = np.array([r["kT"] for r in out])
    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    kk = np.linspace(kTs[0], kTs[-1], 40)
    ex = [chain_exact(model, k) for k in kk]
    q1 = np.array([e[0][1] for e in ex])
    P0 = np.array([e[1][0] for e in ex])
    P1 = np.array([e[1][1] for e in ex])
    Pm = (1 - q1) * P0 + q1 * P1
    a = ax[0]
    a.plot(kk, P0, "C0-", label="ground surface only, exact")
    a.plot(kk, Pm, "C3-", label="two surfaces (Thm 5.2): $q_0P_0+q_1P_1$, exact")
    a.errorbar(kTs, [r["P0_md"] for r in out], [r["P0_se"] for r in out], fmt="C0o",
               label="ground-state MD (fields)")
    a.errorbar(kTs, [r["Pmix_md"] for r in out], [r["Pmix_se"] for r in out], fmt="C3s",
               mfc="none", label="two-surface MD, q-weighted fields (BAR $q$)")
    a.set_xlabel("kT (hartree)")
    a.set_ylabel("pressure (hartree: a force in 1D)")
    a.legend(fontsize=8)
    a.set_title(f"equation of state, {N}-atom ring, box {box:g} bohr", fontsize=10)
    a = ax[1]
    a.plot(kk, Pm - P0, "k-", label="Thm 5.2: $q_1(P_1-P_0)$, exact")
    a.errorbar(kTs, [r["dP_md"] for r in out], [r["dP_se"] for r in out], fmt="C3s",
               label="MD: two-surface minus ground-state ($\\pm$ 1 s.e.)")
    a.set_xlabel("kT (hartree)")
    a.set_ylabel("pressure shift (hartree)")
    a.legend(fontsize=8, loc="upper left")
    a.set_title("excited-surface share of the pressure", fontsize=10)
    a = ax[2]
    a.plot(kk, q1, "k-", label="$q_1$ exact (transfer integral)")
    a.errorbar(kTs * 0.995, [r["q1_bar"] for r in out], [r["q1_bar_se"] for r in out],
               fmt="C2^", label="$q_1$ by BAR from the run's configurations")
    a.errorbar(kTs * 1.005, [r["q1_gibbs"] for r in out], [r["q1_gibbs_se"] for r in out],
               fmt="C1x", label="$q_1$ of the gibbs sampler (stored weights)")
    a.set_xlabel("kT (hartree)")
    a.set_ylabel("$q_1$")
    a.legend(fontsize=8, loc="upper left")
    a.set_title("excited-surface probability ($\\pm$ 1 s.e.)", fontsize=10)
    fig.tight_layout()
    FIG.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIG / "conservation_eos.png", dpi=110)
    print(f"wrote {FIG / 'conservation_eos.png'}")


def snapshot():
    """Fields of the ready example at its last record (after mqcd run + mqcd fields -o)."""
    tmp = Path(tempfile.mkdtemp())
    h5 = tmp / "chain.h5"
    fh5 = tmp / "fields.h5"
    deck = ROOT / "inputs" / "chain_two_state.toml"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mqcd.cli", "run", str(deck), "-o", str(h5),
                    "--quiet"], check=True)
    t1 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mqcd.cli", "fields", str(h5), "--grid", "256",
                        "--width", "1.5", "--weights", "bar", "--json", "-o", str(fh5)], check=True,
                       capture_output=True, text=True)
    t2 = time.perf_counter()
    print(r.stdout)
    print(f"mqcd run {t1 - t0:.1f} s, mqcd fields {t2 - t1:.1f} s (wall, this machine)")
    import h5py
    plt = _plt()
    with h5py.File(fh5) as f:
        y = f["grid_axis"][()]
        k = -1
        panels = [("fields/density", None, "mass density (electron_mass/bohr)"),
                  ("fields/velocity", 0, "velocity u (bohr/a.u. time)"),
                  ("fields/energy", None, "energy density (hartree/bohr)"),
                  ("fields/stress", (0, 0), "stress $\\sigma$ (hartree)"),
                  ("fields/heat_flux", 0, "heat flux q (hartree/a.u. time)")]
        fig, ax = plt.subplots(len(panels), 1, figsize=(8, 9), sharex=True)
        for a, (name, comp, lab) in zip(ax, panels):
            v = f[name][k]
            if isinstance(comp, tuple):
                v = v[comp]
            elif comp is not None:
                v = v[comp]
            a.plot(y, v, "k-", lw=1)
            a.set_ylabel(lab, fontsize=8)
        ax[0].set_title(f"inputs/chain_two_state.toml, t = {f['time'][k]:g} a.u., "
                        "kernel width 1.5 bohr, q-weighted over both surfaces (BAR q)", fontsize=9)
        ax[-1].set_xlabel("y (bohr)")
    fig.tight_layout()
    fig.savefig(FIG / "conservation_chain_fields.png", dpi=110)
    print(f"wrote {FIG / 'conservation_chain_fields.png'}")


def box3d():
    """The 3D example: 10976 atoms (fcc 14^3 cells), mpiexec -n 2 and serial, cost per step;
    then the fields at one record."""
    deck = ROOT / "inputs" / "box3d_pairs.toml"
    tmp = Path(tempfile.mkdtemp())
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    rows = []
    for label, pre in (("mpiexec -n 2", ["mpiexec", "-n", "2"]), ("serial", [])):
        out = tmp / f"{label.split()[0]}.h5"
        subprocess.run(pre + [sys.executable, "-m", "mqcd.cli", "run", str(deck), "-o", str(out),
                              "--quiet"], check=True, env=env)
        res = load(out)
        rows.append((label, res.attrs["wall_time_s"], res.attrs["steps"],
                     res.attrs["trajectories"], out))
    print("| run | wall (s) | steps | trajectories | s per step | s per trajectory-step |")
    print("|---|---|---|---|---|---|")
    for label, wall, steps, ntraj, _ in rows:
        print(f"| {label} | {wall:.1f} | {steps} | {ntraj} | {wall / steps:.2f} | "
              f"{wall / steps / ntraj:.3f} |")
    a = load(rows[0][4])
    b = load(rows[1][4])
    dx = np.abs(a["trajectories/position"] - b["trajectories/position"]).max()
    print(f"max |x(MPI) - x(serial)| over all records: {dx:.1e} bohr")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mqcd.cli", "fields", str(rows[0][4]), "--grid",
                        "120", "--width", "2.0", "--derivatives", "hellmann-feynman",
                        "--paths", "star", "--records", "0:1", "--no-residuals", "--json"],
                       check=True, capture_output=True, text=True, env=env)
    print(r.stdout)
    print(f"mqcd fields, one record, {rows[0][3]} trajectories, grid 120^3: "
          f"{time.perf_counter() - t0:.0f} s")


def box3d_fields(cells=(4, 6, 8), width=2.0, dt=0.5, nrec=6, paths="star"):
    """Balance-law residuals of 3D boxes (the deck inputs/box3d_pairs.toml with m^3 fcc cells,
    N = 4 m^3 atoms): `mqcd run` of one trajectory with every step stored, then `mqcd fields
    --json` (Hellmann-Feynman pair derivatives, star paths, grid spacing width/2); the CPU time
    of each (child processes, OMP/OPENBLAS_NUM_THREADS = 1) and the residuals."""
    deck = ROOT / "inputs" / "box3d_pairs.toml"
    tmp = Path(tempfile.mkdtemp())
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    rows = []
    for m in cells:
        n, box = 4 * m ** 3, float(m * 4 * np.sqrt(2.0))
        out = tmp / f"box{n}.h5"
        sets = [f"model.natoms={n}", f"model.box={box!r}", "run.trajectories=1",
                f"run.dt={dt}", f"run.t_end={dt * (nrec - 1)}", "output.stride=1"]
        cmd = [sys.executable, "-m", "mqcd.cli", "run", str(deck), "-o", str(out), "--quiet"]
        for x in sets:
            cmd += ["--set", x]
        t0 = os.times()
        subprocess.run(cmd, check=True, env=env)
        t1 = os.times()
        ng = int(2 * np.ceil(box / (width / 2) / 2))
        fcmd = [sys.executable, "-m", "mqcd.cli", "fields", str(out), "--grid", str(ng),
                "--width", str(width), "--derivatives", "hellmann-feynman", "--paths", paths,
                "--json"]
        r = subprocess.run(fcmd, check=True, env=env, capture_output=True, text=True)
        t2 = os.times()
        info = json.loads(r.stdout)
        cpu_run = t1.children_user + t1.children_system - t0.children_user - t0.children_system
        cpu_f = t2.children_user + t2.children_system - t1.children_user - t1.children_system
        row = {"natoms": n, "box": box, "grid": ng, "records": nrec, "paths": paths,
               "cpu_run_s": cpu_run, "cpu_fields_s": cpu_f,
               "cpu_fields_per_record_s": cpu_f / nrec, **info["residuals"],
               "pressure": info["pressure_hartree_per_bohr_dim"],
               "command": " ".join(["mqcd fields", out.name] + fcmd[5:])}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print(f"3D fcc boxes (inputs/box3d_pairs.toml, c12 = 1e-5 hartree), 1 trajectory, dt = {dt} "
          f"a.u., {nrec} records, width {width} bohr, grid spacing <= width/2, Hellmann-Feynman "
          f"pair derivatives, {paths} paths")
    print("| atoms | box (bohr) | grid | mass | momentum | energy | virial | CPU run (s) | "
          "CPU fields (s) | CPU fields per record (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['natoms']} | {r['box']:.2f} | {r['grid']}^3 | {r['mass']:.2e} | "
              f"{r['momentum']:.2e} | {r['energy']:.2e} | {r['virial']:.1e} | "
              f"{r['cpu_run_s']:.1f} | {r['cpu_fields_s']:.1f} | "
              f"{r['cpu_fields_per_record_s']:.1f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("table", "eos", "eos-seeds", "eos-sampler", "snapshot",
                                    "box3d", "box3d-fields"))
    p.add_argument("--cells", default="4,6,8",
                   help="box3d-fields: fcc cells per direction (N = 4 m^3), comma separated")
    p.add_argument("--records", type=int, default=6,
                   help="box3d-fields: records (steps + 1) per run, at least 5")
    p.add_argument("--paths", default="star", choices=("star", "tree"),
                   help="box3d-fields: heat-flux paths")
    p.add_argument("--dt", type=float, default=0.5, help="box3d-fields: time step (a.u.)")
    a = p.parse_args()
    if a.what == "box3d-fields":
        box3d_fields(tuple(int(c) for c in a.cells.split(",")), nrec=a.records, paths=a.paths,
                     dt=a.dt)
        return
    {"table": table, "eos": eos, "eos-seeds": eos_seeds, "eos-sampler": eos_sampler,
     "snapshot": snapshot,
     "box3d": box3d}[a.what]()


if __name__ == "__main__":
    main()
