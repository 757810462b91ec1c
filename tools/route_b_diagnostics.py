"""Why ehrenfest-qc (route (b)) needs the population constraint and where it stops decohering.

    python tools/route_b_diagnostics.py          # ~4 min

Tully 3, k = 10 a.u., standard packet, 500 trajectories (seed 11, as tools/validate.py).
1. Swarm-mean upper adiabatic population vs time with the population constraint on and off, the
   exact value, and the ensemble energy drift (hartree).
2. At t = 3000 a.u. (constraint on): the swarm sorted by position in 8 groups; mean momentum, mean
   upper population P1 and mean P0 P1 (0.25 = fully coherent two-state mixture) per group.
"""
import numpy as np

import mqcd
from mqcd.analysis.validate import exact_result, scattering_deck
from mqcd.electronic.adiabatic import adiabatic_populations, eigh
from mqcd.models import BUILTIN


def at(res, key, t):
    tt = np.asarray(res["time"])
    return np.asarray(res[key])[min(np.searchsorted(tt, t), len(tt) - 1)]


def main():
    ex = exact_result("tully3", 10.0, "out/validation")
    times = [1600.0, 2500.0, 3300.0, 5000.0, 6600.0]
    print("| t (a.u.) | " + " | ".join(f"{t:g}" for t in times) + " | energy drift (hartree) |")
    print("|---|" + "---|" * len(times) + "---|")
    print("| exact P1 | " + " | ".join(f"{at(ex, 'populations/adiabatic', t)[1]:.3f}"
                                      for t in times) + " | |")
    for pc in ("on", "off"):
        d = scattering_deck("tully3", 10.0, {"name": "ehrenfest-qc", "population_constraint": pc},
                            ntraj=500)
        d["run"].update(t_end=6600.0, stop="time")
        r = mqcd.run(d)
        e = np.asarray(r["energy/total"])
        print(f"| ehrenfest-qc, constraint {pc}: P1 | "
              + " | ".join(f"{at(r, 'populations/adiabatic', t)[1]:.3f}" for t in times)
              + f" | {e.max() - e.min():.3f} |", flush=True)
    d = scattering_deck("tully3", 10.0, {"name": "ehrenfest-qc"}, ntraj=500)
    d["run"].update(t_end=3000.0, stop="time")
    r = mqcd.run(d)
    x, p = r["final/position"][:, 0], r["final/momentum"][:, 0]
    H, _ = BUILTIN["tully3"]().evaluate(x[:, None])
    _, V = eigh(H)
    P = adiabatic_populations(np.ascontiguousarray(r["final/rho_diabatic"]), V.astype(complex))
    print("\n| x range (bohr) | mean p (a.u.) | mean P1 | mean P0 P1 |\n|---|---|---|---|")
    for g in np.array_split(np.argsort(x), 8):
        print(f"| {x[g].min():.1f} .. {x[g].max():.1f} | {p[g].mean():.1f} | {P[g, 1].mean():.2f} "
              f"| {np.mean(P[g, 0] * P[g, 1]):.3f} |")


if __name__ == "__main__":
    main()
