"""Checks of the thermal initial conditions against analytic and quadrature values (docs/initial.md).

    nice python tools/initial_sampling_checks.py [--n 100000]

1. ``wigner-thermal``: <dQ^2>, <P^2> per mode of the 24-mode pyrazine model at 300 K and
   <x^2>, <p^2> of a 4-mode spin-boson bath at kT = 0.5 against the thermal harmonic values
   coth(omega/2kT)/(2 M omega), M omega coth(omega/2kT)/2.
2. ``gibbs`` on a displaced-harmonic pair (``spin_boson`` with one mode: diabats
   omega^2 x^2/2 +- (epsilon + c x), coupling Delta): q_j = Z_j/Z and the per-surface <x^2> against
   quadrature of exp(-E_j(x)/kT) (scipy.integrate.quad), adiabatic and diabatic surfaces.
3. ``boltzmann`` on diabat 0 of the 4-mode spin-boson (a displaced Gaussian: mean -c/omega^2,
   variance kT/omega^2): effective sample size and moments with error bars from it.

Only the initial conditions are drawn (mqcd.ensemble.initial.initial_conditions), no dynamics.
"""
import argparse

import numpy as np
import scipy.integrate

from mqcd.ensemble.initial import initial_conditions
from mqcd.ensemble.thermal import KELVIN, Surface
from mqcd.io.deck import deck_model, read_deck

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def deck(model, initial, n, seed=5):
    return read_deck({"model": model, "initial": initial, "method": {"name": "fssh"},
                      "run": {"trajectories": n, "dt": 1.0, "t_end": 1.0, "seed": seed}})


def draw(d):
    return initial_conditions(d, deck_model(d), np.arange(d.run["trajectories"]))


def wigner_checks(n):
    print(f"## wigner-thermal, N = {n} (relative standard error of a variance: "
          f"sqrt(2/N) = {100 * np.sqrt(2 / n):.2f} %)\n")
    print("| model | mode | omega (hartree) | <dx^2> analytic | sampled | dev % | <p^2> analytic "
          "| sampled | dev % |\n|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    cases = [({"name": "lvc", "parameter_file": str(ROOT / "inputs" / "pyrazine_raab1999.toml")},
              {"temperature": 300.0}, "pyrazine, 300 K"),
             ({"name": "spin_boson", "modes": 4}, {"kT": 0.5}, "spin-boson, kT = 0.5")]
    for seed, (model, temp, label) in enumerate(cases):
        d = deck(model, {"sampling": "wigner-thermal", **temp}, n, seed=11 + seed)
        m = deck_model(d)
        ic = draw(d)
        x0, w = m.harmonic_reference()
        kT = temp.get("kT", temp.get("temperature", 0) * KELVIN)
        coth = 1.0 / np.tanh(w / (2 * kT))
        ax, ap = coth / (2 * m.masses * w), 0.5 * m.masses * w * coth
        sx, sp = np.mean((ic.x - x0) ** 2, axis=0), np.mean(ic.p ** 2, axis=0)
        for k in range(m.ndof):
            dx, dp = 100 * (sx[k] / ax[k] - 1), 100 * (sp[k] / ap[k] - 1)
            worst = max(worst, abs(dx), abs(dp))
            if True:
                print(f"| {label} | {k} | {w[k]:.4g} | {ax[k]:.4g} | {sx[k]:.4g} | {dx:+.2f} | "
                      f"{ap[k]:.4g} | {sp[k]:.4g} | {dp:+.2f} |")
    print(f"\nlargest deviation over all {24 + 4} modes and both moments: {worst:.2f} %\n")
    return worst


def quad_reference(model, basis, kT):
    out = []
    for j in range(model.nstates):
        s = Surface(model, j, basis)

        def V(x):
            return s(np.array([[x]]))[0][0]
        e0 = min(V(x) for x in np.linspace(-10, 10, 401))
        f = lambda x, p=0: x ** p * np.exp(-(V(x) - e0) / kT)  # noqa: E731
        z = scipy.integrate.quad(f, -15, 15, limit=400, points=[0.0])[0]
        x2 = scipy.integrate.quad(lambda x: f(x, 2), -15, 15, limit=400, points=[0.0])[0] / z
        out.append((z * np.exp(-e0 / kT), x2))
    Z = np.array([o[0] for o in out])
    return Z / Z.sum(), np.array([o[1] for o in out])


def gibbs_checks(n):
    print(f"## gibbs on a displaced-harmonic pair, N = {n}\n")
    model = {"name": "spin_boson", "modes": 1, "epsilon": 0.25, "Delta": 0.3, "alpha": 2.0,
             "omega_c": 1.0}
    kT = 0.5
    print("| basis | surface | q_j quadrature | q_j sampled | s.e. | dev / s.e. | <x^2>_j "
          "quadrature | sampled | dev % | s.e. % |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for basis in ("adiabatic", "diabatic"):
        d = deck(model, {"sampling": "gibbs", "kT": kT, "basis": basis,
                         "gibbs_allocation": "equal"}, n)
        m = deck_model(d)
        ic = draw(d)
        ens = ic.report["gibbs"]
        q_ref, x2_ref = quad_reference(m, basis, kT)
        edges = np.concatenate([[0], np.cumsum(ens.counts)])
        for j in range(m.nstates):
            xs = ic.x[edges[j]:edges[j + 1], 0]
            ess = ens.diagnostics[j]["ess"]
            x2 = np.mean(xs ** 2)
            se_x2 = np.std(xs ** 2) / np.sqrt(ess)
            z = (ens.q[j] - q_ref[j]) / ens.q_se[j]
            dev = 100 * (x2 / x2_ref[j] - 1)
            rows.append((abs(z), abs(dev), 100 * se_x2 / x2_ref[j]))
            print(f"| {basis} | {j} | {q_ref[j]:.5f} | {ens.q[j]:.5f} | {ens.q_se[j]:.1e} | "
                  f"{z:+.2f} | {x2_ref[j]:.4f} | {x2:.4f} | {dev:+.2f} | "
                  f"{100 * se_x2 / x2_ref[j]:.2f} |")
    print("\nq_j within " + f"{max(r[0] for r in rows):.2f} s.e.; <x^2>_j within "
          f"{max(r[1] for r in rows):.2f} % (s.e. up to {max(r[2] for r in rows):.2f} %)\n")


def boltzmann_checks(n):
    print(f"## boltzmann on diabat 0 of a 4-mode spin-boson bath, kT = 0.5, N = {n}\n")
    d = deck({"name": "spin_boson", "modes": 4},
             {"sampling": "boltzmann", "kT": 0.5, "basis": "diabatic", "state": 0}, n)
    m = deck_model(d)
    ic = draw(d)
    info = ic.report["boltzmann"]
    print(f"MCMC: {info['chains']} chains, burn-in {info['burn_in']}, thinning {info['thinning']},"
          f" acceptance {info['acceptance']:.3f}, autocorrelation time {info['tau_steps']:.2f} "
          f"steps, effective sample size {info['ess']:.0f} of {info['samples']} kept samples, "
          f"split R-hat {info['rhat']:.4f}\n")
    mu, var = -m.coupling / m.omega ** 2, 0.5 / m.omega ** 2
    ess = info["ess"]
    print("| mode | mean analytic | sampled | dev / s.e. | var analytic | sampled | dev / s.e. |"
          "\n|---|---|---|---|---|---|---|")
    for k in range(m.ndof):
        xm, xv = ic.x[:, k].mean(), ic.x[:, k].var()
        zm = (xm - mu[k]) / np.sqrt(var[k] / ess)
        zv = (xv - var[k]) / (var[k] * np.sqrt(2 / ess))
        print(f"| {k} | {mu[k]:.4f} | {xm:.4f} | {zm:+.2f} | {var[k]:.4f} | {xv:.4f} | "
              f"{zv:+.2f} |")
    pv = np.var(ic.p, axis=0)
    print(f"\nmomenta: <p^2>/(M kT) = {np.round(pv / (m.masses * 0.5), 4).tolist()} (1 expected)\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    a = ap.parse_args()
    wigner_checks(a.n)
    gibbs_checks(a.n)
    boltzmann_checks(a.n)


if __name__ == "__main__":
    main()
