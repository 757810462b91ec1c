"""Figures and tables of docs/friction.md (issue 15): friction of the Newns-Anderson model against
the wide-band analytic result with its convergence table, vibrational relaxation from mixed-state
Ehrenfest and friction-langevin, the junction's loop work and pseudo-magnetic friction vs bias, and
the cost per step.

    python tools/friction_figures.py eta          # docs/figures/friction_eta.png + table
    python tools/friction_figures.py relax        # docs/figures/friction_relaxation.png + rates
    python tools/friction_figures.py junction     # docs/figures/friction_junction.png + table
    python tools/friction_figures.py equilibrium  # Langevin: <p^2>/M and var(x) vs Boltzmann
    python tools/friction_figures.py cost         # cost table
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import scipy.integrate
import scipy.optimize

import mqcd
from mqcd.friction import friction_at
from mqcd.friction.calculator import junction_force
from mqcd.friction.equilibrium import fermi
from mqcd.friction.junction import loop_work
from mqcd.models.newns_anderson import NewnsAnderson

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT / "docs" / "figures"
OUT = ROOT / "out" / "friction"


def analytic_eta(g, gamma, eps_d, kT, mu=0.0):
    """pi g^2 int A_d^2 (-f') (wide-band, docs/friction.md)."""
    A = lambda e: (gamma / (2 * math.pi)) / ((e - eps_d) ** 2 + 0.25 * gamma ** 2)  # noqa: E731
    if kT == 0:
        return math.pi * g * g * A(mu) ** 2
    mf = lambda e: fermi(e, mu, kT) * (1 - fermi(e, mu, kT)) / kT  # noqa: E731
    lo, hi = mu - 40 * kT, mu + 40 * kT
    return math.pi * g * g * scipy.integrate.quad(lambda e: A(e) ** 2 * mf(e), lo, hi,
                                                  points=[mu, eps_d], limit=400)[0]


def cmd_eta():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g, gamma, kT = 0.004, 0.02, 0.005
    xs = np.linspace(-6, 6, 41)
    model = NewnsAnderson(nbath=200, gamma=gamma, bandwidth=1.0, g=g, window=0.1,
                          window_fraction=0.6)
    band = np.array([friction_at(model, [x], kT).eta[0, 0] for x in xs])
    wb = np.array([friction_at(model, [x], kT, source="wide-band").eta[0, 0] for x in xs])
    an = np.array([analytic_eta(g, gamma, g * x, kT) for x in xs])
    an0 = np.array([analytic_eta(g, gamma, g * x, 0.0) for x in xs])
    print("max |band/analytic - 1| over x in [-6, 6] bohr: "
          f"{np.max(np.abs(band / an - 1)):.4f}; wide-band NEGF: {np.max(np.abs(wb / an - 1)):.2e}")
    print("\nconvergence at x = 1 bohr (kT = 0.005, Gamma = 0.02, W = 1 hartree):")
    print("| nbath | window (hartree) | sigma (hartree) | eta(sigma)/analytic - 1 | "
          "eta/analytic - 1 (Richardson) |")
    print("|---|---|---|---|---|")
    ref = analytic_eta(g, gamma, g, kT)
    for nb, win in ((100, 0.0), (200, 0.0), (400, 0.0), (100, 0.1), (200, 0.1), (400, 0.1),
                    (800, 0.1)):
        m = NewnsAnderson(nbath=nb, gamma=gamma, bandwidth=1.0, g=g, window=win,
                          window_fraction=0.6)
        r = friction_at(m, [1.0], kT)
        e1 = r.eta[0, 0] / (1 - r.eta_change) if False else None  # noqa: F841
        from mqcd.friction.tensor import spectral_friction  # eta(sigma) alone
        H, dH = m.evaluate(np.array([[1.0]]))
        E, V = np.linalg.eigh(H[0])
        D = V.conj().T[None] @ dH[0] @ V[None]
        eta_s = spectral_friction(E, D, fermi(E, 0.0, kT), "fermi", kT, r.sigma)[0][0, 0]
        print(f"| {nb} | {win:g} | {r.sigma:.2e} | {eta_s / ref - 1:+.4f} | "
              f"{r.eta[0, 0] / ref - 1:+.4f} |")
    print("\nT -> 0 (x = 1 bohr, nbath = 400, window 0.1): eta(kT) / HGT analytic pi g^2 A_d(0)^2")
    m = NewnsAnderson(nbath=400, gamma=gamma, bandwidth=1.0, g=g, window=0.1,
                      window_fraction=0.6)
    hgt = analytic_eta(g, gamma, g, 0.0)
    for t in (0.005, 0.002, 0.001, 0.0005):
        r = friction_at(m, [1.0], t)
        print(f"  kT = {t:g}: band {r.eta[0, 0] / hgt:.4f}  analytic(kT) "
              f"{analytic_eta(g, gamma, g, t) / hgt:.4f}")
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    ax[0].plot(xs, an, "k-", label="wide-band analytic, kT = 0.005")
    ax[0].plot(xs, band, "o", ms=4, label="discretised band (nbath 200), MB (121)")
    ax[0].plot(xs, wb, "x", ms=4, label="wide-band NEGF (junction.py)")
    ax[0].plot(xs, an0, "k--", lw=1, label="T = 0 (Head-Gordon-Tully)")
    ax[0].set_xlabel("x (bohr)")
    ax[0].set_ylabel("eta (hartree a.u. time / bohr$^2$)")
    ax[0].legend(fontsize=7)
    ax[1].plot(xs, band / an - 1, "o-", ms=3)
    ax[1].axhline(0.02, color="r", lw=0.8)
    ax[1].axhline(-0.02, color="r", lw=0.8)
    ax[1].set_xlabel("x (bohr)")
    ax[1].set_ylabel("band / analytic - 1")
    fig.tight_layout()
    fig.savefig(FIG / "friction_eta.png", dpi=110)
    print(f"wrote {FIG / 'friction_eta.png'}")


RELAX_MODEL = dict(name="newns_anderson", omega=0.005, mass=2000.0, gamma=0.05, g=0.04,
                   bandwidth=1.0, nbath=100, window=0.03, window_fraction=0.8)


def relax_deck(method, x0, kT, ntraj, t_end, dt, extra=""):
    model = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in RELAX_MODEL.items())
    return f"""
[model]
{model}
[initial]
sampling = "fixed"
position = [{x0}]
momentum = [0.0]
width = [1.0]
electrons = "fermi"
kT = {kT}
[method]
name = "{method}"
{extra}
[run]
trajectories = {ntraj}
dt = {dt}
t_end = {t_end}
energy_tolerance = 0
[output]
stride = 10
"""


def deck_file(text, name):
    """Write a deck to out/friction/NAME.toml (mqcd.run takes a path)."""
    OUT.mkdir(parents=True, exist_ok=True)
    p = OUT / f"{name}.toml"
    p.write_text(text)
    return p


def fit_rate(t, e, einf):
    """Rate k of E(t) - E_inf ~ A exp(-k t) (least squares in log over E - E_inf > 5 % of E0)."""
    y = e - einf
    sel = y > 0.05 * y[0]
    return -np.polyfit(t[sel], np.log(y[sel]), 1)[0]


def cmd_relax():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    OUT.mkdir(parents=True, exist_ok=True)
    kT, E0 = 0.002, 0.02
    tag = ""
    if "--small-gamma" in sys.argv:    # Gamma = 2 omega: outside the Markov regime
        RELAX_MODEL.update(gamma=0.01, g=0.008)
        tag = "_small_gamma"
    m = NewnsAnderson(**{k: v for k, v in RELAX_MODEL.items() if k not in ("name", "mass")})
    # equilibrium position of the free energy (band) and x0 with Phi(x0) - Phi(xeq) = E0
    phi = lambda x: friction_at(m, [x], kT).free_energy  # noqa: E731
    xeq = scipy.optimize.minimize_scalar(phi, bounds=(-5, 5), method="bounded",
                                       options={"xatol": 1e-6}).x
    x0 = scipy.optimize.brentq(lambda x: phi(x) - phi(xeq) - E0, xeq, xeq + 5)
    print(f"x_eq = {xeq:.4f} bohr, x0 = {x0:.4f} bohr, eta(x_eq) band "
          f"{friction_at(m, [xeq], kT).eta[0, 0]:.4f}, wide-band "
          f"{friction_at(m, [xeq], kT, source='wide-band').eta[0, 0]:.4f}")
    t_end, dt = 4000.0, 4.0
    runs = {}
    t0 = time.perf_counter()
    replot = "--replot" in sys.argv       # reuse the runs in out/friction
    res = mqcd.load(OUT / f"relax_ehr{tag}.h5") if replot else mqcd.run(
        deck_file(relax_deck("ehrenfest", x0, kT, 1, t_end, dt), f"relax_ehr{tag}"),
        output=OUT / f"relax_ehr{tag}.h5", force=True)
    print(f"ehrenfest: {time.perf_counter() - t0:.1f} s")
    runs["ehrenfest (discretised band, 101 orbitals)"] = res
    rng = f"table_range = [{xeq - 3:.4f}, {xeq + 3:.4f}]\ntable_points = 61"
    for src in ("band", "wide-band"):
        t0 = time.perf_counter()
        res = mqcd.load(OUT / f"relax_fl_{src}{tag}.h5") if replot else mqcd.run(
            deck_file(relax_deck("friction-langevin", x0, kT, 400, t_end, dt,
                                 rng + f'\nsource = "{src}"'), f"relax_fl_{src}{tag}"),
            output=OUT / f"relax_fl_{src}{tag}.h5", force=True)
        print(f"friction-langevin ({src}): {time.perf_counter() - t0:.1f} s")
        runs[f"friction-langevin ({src} eta), 400 traj."] = res
    xs = np.linspace(xeq - 3, xeq + 3, 241)
    ph = np.array([phi(x) for x in xs])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    print("| run | rate k (1/a.u. time) | k / k(ehrenfest) |")
    print("|---|---|---|")
    kref = None
    for lab, r in runs.items():
        t = r["time"]
        x = r["nuclear/position_mean"][:, 0]
        kin = r["energy/kinetic"]
        if "ehrenfest" in lab:
            ev = kin + np.interp(x, xs, ph) - phi(xeq)
            einf = 0.0
        else:     # the table's Phi (own constant for wide-band: -int F0 dx) at its minimum
            from scipy.interpolate import CubicSpline
            spl = CubicSpline(r["friction/table_axis"],
                              r["friction/table_free_energy"])
            umin = spl(np.linspace(xs[0], xs[-1], 6001)).min()
            ev = r["energy/kinetic"] + r["energy/potential"] - umin
            einf = kT
        k = fit_rate(t, ev, einf)
        kref = kref or k
        print(f"| {lab} | {k:.4e} | {k / kref:.3f} |")
        ax.plot(t, ev, label=f"{lab}: k = {k:.2e}")
    ax.axhline(kT, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("t (a.u.)")
    ax.set_ylabel("vibrational energy (hartree)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    ax.set_title(f"Gamma = {RELAX_MODEL['gamma']:g}, omega = {RELAX_MODEL['omega']:g}, "
                 f"g = {RELAX_MODEL['g']:g}, kT = {kT:g} hartree", fontsize=9)
    fig.tight_layout()
    fig.savefig(FIG / f"friction_relaxation{tag}.png", dpi=110)
    print(f"wrote {FIG / f'friction_relaxation{tag}.png'}")


def cmd_junction():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = NewnsAnderson(levels=2, leads=2, ndof=2, e0=0.0, e1=0.0, g=0.01, g2=0.01,
                      g_hop=0.01, hopping=0.01, gamma=0.02, nbath=2)
    kT = 0.001
    biases = [0.0, 0.01, 0.02, 0.04, 0.06, 0.08]
    rows = []
    for V in biases:
        fw = lambda x: junction_force(m, x, kT, bias=V)  # noqa: E731
        W = loop_work(fw, [0.0, 0.0], 1.0, points=48)
        r = friction_at(m, [0.0, 0.0], kT, bias=V, source="wide-band")
        rows.append((V, W, r.B[0, 1], r.eta[0, 0], r.eta[0, 1]))
        print(f"bias {V:g}: loop work {W:+.3e} hartree, B_01 {r.B[0, 1]:+.3e}, eta_00 "
              f"{r.eta[0, 0]:.3e}", flush=True)
    rows = np.array(rows)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot(rows[:, 0], rows[:, 1], "o-")
    ax[0].set_xlabel("bias mu_L - mu_R (hartree)")
    ax[0].set_ylabel("loop work of F0, radius 1 bohr (hartree)")
    ax[1].plot(rows[:, 0], rows[:, 2], "o-", label="B_01 (pseudo-magnetic)")
    ax[1].plot(rows[:, 0], rows[:, 3], "s-", label="eta_00")
    ax[1].plot(rows[:, 0], rows[:, 4], "^-", label="eta_01")
    ax[1].set_xlabel("bias mu_L - mu_R (hartree)")
    ax[1].set_ylabel("hartree a.u. time / bohr$^2$")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIG / "friction_junction.png", dpi=110)
    print(f"wrote {FIG / 'friction_junction.png'}")


def cmd_equilibrium():
    """friction-langevin in the metal's free-energy well: <p^2>/M and var(x) of the final swarm
    against kT and the Boltzmann distribution of Phi_el + U0 (band calculator), with standard
    errors from the trajectory count."""
    kT, n = 0.002, 40000
    m = NewnsAnderson(**{k: v for k, v in RELAX_MODEL.items() if k not in ("name", "mass")})
    xs = np.linspace(-3.5, 2.5, 241)
    ph = np.array([friction_at(m, [x], kT).free_energy for x in xs])
    import scipy.interpolate
    phi = scipy.interpolate.CubicSpline(xs, ph)
    xf = np.linspace(-3.5, 2.5, 6001)
    w = np.exp(-(phi(xf) - ph.min()) / kT)
    z = np.trapezoid(w, xf)
    xm = np.trapezoid(w * xf, xf) / z
    var = np.trapezoid(w * (xf - xm) ** 2, xf) / z
    extra = 'table_range = [-3.5, 2.5]\ntable_points = 121\nsource = "band"\nfriction_scale = 40.0'
    d = deck_file(relax_deck("friction-langevin", round(xm, 6), kT, n, 3000.0, 4.0, extra)
                  .replace("stride = 10", "stride = 250"), "equilibrium")
    t0 = time.perf_counter()
    res = mqcd.run(d, output=OUT / "equilibrium.h5", force=True)
    print(f"{n} trajectories, 750 steps: {time.perf_counter() - t0:.1f} s")
    x, p = res["final/position"][:, 0], res["final/momentum"][:, 0]
    M = RELAX_MODEL["mass"]
    k = p * p / M
    print(f"<p^2>/M / kT = {k.mean() / kT:.4f} +- {k.std() / np.sqrt(n) / kT:.4f}")
    v = x.var()
    se = v * math.sqrt(2.0 / (n - 1))
    print(f"var(x) = {v:.5e} bohr^2, Boltzmann of Phi_el + U0: {var:.5e}; ratio {v / var:.4f} "
          f"+- {se / var:.4f}; <x> = {x.mean():.5f} (Boltzmann {xm:.5f}) +- {x.std() / np.sqrt(n):.5f}")


def cmd_cost():
    OUT.mkdir(parents=True, exist_ok=True)
    print("| N_b | one-body Ehrenfest step (s/traj) | friction-langevin step (s/traj) |")
    print("|---|---|---|")
    for nb in (50, 100, 200):
        RELAX_MODEL["nbath"] = nb
        steps = 40
        d = deck_file(relax_deck("ehrenfest", 0.5, 0.002, 1, steps * 2.0, 2.0), "cost_ehr")
        mqcd.run(d, output=OUT / "cost.h5", force=True)             # compile
        t0 = time.perf_counter()
        mqcd.run(d, output=OUT / "cost.h5", force=True)
        te = (time.perf_counter() - t0) / steps
        d = deck_file(relax_deck("friction-langevin", 0.5, 0.002, 1000, steps * 2.0, 2.0,
                                 "table_range = [-3.0, 3.0]\ntable_points = 31"), "cost_fl")
        t0 = time.perf_counter()
        from mqcd.io.deck import read_deck
        from mqcd.methods import build_method
        dk = read_deck(d)
        build_method(dk, dk._model)                                  # table build alone
        tb = time.perf_counter() - t0
        t0 = time.perf_counter()
        mqcd.run(d, output=OUT / "cost.h5", force=True)
        tl = (time.perf_counter() - t0 - tb) / steps / 1000
        print(f"| {nb} | {te:.2e} | {tl:.2e} (table of 31 points: {tb:.1f} s) |", flush=True)
    RELAX_MODEL["nbath"] = 100


if __name__ == "__main__":
    FIG.mkdir(parents=True, exist_ok=True)
    {"eta": cmd_eta, "relax": cmd_relax, "junction": cmd_junction, "cost": cmd_cost,
     "equilibrium": cmd_equilibrium}[sys.argv[1]]()
