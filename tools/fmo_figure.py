"""FMO site-1 population at 77 K (or 300 K): Ehrenfest and FSSH against HEOM.

    nice python tools/fmo_figure.py [--ntraj 2000] [--temperature 77]
        [--heom docs/figures/fmo_heom_77K.json] [--plot docs/figures/fmo_77K.png]

Runs inputs/fmo_77K_ehrenfest.toml (site 1 excited on a bath sampled from the thermal harmonic
Wigner distribution, 30 Debye modes per site) with Ehrenfest and with FSSH + EDC (diabatic
populations: Landry-Falk-Subotnik's estimator, ``populations/diabatic_mixed``), and compares the
site-1 population with the HEOM reference of tools/fmo_heom_reference.py (qutip's HEOMSolver on
the same model). Prints the first minimum of site 1 (time, value), its value at 250, 500 and
1000 fs and the largest deviation from HEOM.
"""
import argparse
import copy
import json
import tomllib
from pathlib import Path

import numpy as np

import mqcd

ROOT = Path(__file__).resolve().parents[1]
FS = 41.341373335


def first_min(t, y):
    """Time and value of the first local minimum of y (smoothed over 3 points)."""
    ys = np.convolve(y, np.ones(3) / 3, mode="same")
    for k in range(2, len(ys) - 2):
        if ys[k] < ys[k - 1] and ys[k] <= ys[k + 1] and t[k] > 20:
            return t[k], y[k]
    return float("nan"), float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ntraj", type=int, default=2000)
    ap.add_argument("--temperature", type=float, default=77.0)
    ap.add_argument("--heom", default=None)
    ap.add_argument("--plot", default=None)
    a = ap.parse_args()
    raw = tomllib.loads((ROOT / "inputs" / "fmo_77K_ehrenfest.toml").read_text())
    raw["run"]["trajectories"] = a.ntraj
    raw["initial"]["temperature"] = a.temperature
    series = {}
    for name, method, key in (("Ehrenfest", {"name": "ehrenfest"}, "populations/diabatic"),
                              ("FSSH + EDC", {"name": "fssh", "decoherence": "edc"},
                               "populations/diabatic_mixed")):
        d = copy.deepcopy(raw)
        d["method"] = method
        r = mqcd.run(d)
        series[name] = (r["time"] / FS, r[key])
        print(f"{name}: {r.attrs['wall_time_s']:.0f} s, mean energy drift "
              f"{r.attrs['energy_drift']:.1e} hartree")
    heom = None
    if a.heom:
        h = json.loads(Path(a.heom).read_text())
        heom = (np.array(h["time_fs"]), np.array(h["populations"]))
        series = {f"HEOM ({h['solver']})": heom, **series}
    print(f"\nsite-1 population, {a.temperature:g} K, {a.ntraj} trajectories\n")
    print("| method | first minimum (fs, P1) | P1(250 fs) | P1(500 fs) | P1(1000 fs) | "
          "max abs deviation from HEOM |\n|---|---|---|---|---|---|")
    for name, (t, p) in series.items():
        tm, pm = first_min(t, p[:, 0])
        vals = [float(np.interp(tt, t, p[:, 0])) for tt in (250, 500, 1000)]
        dev = ""
        if heom is not None and not name.startswith("HEOM"):
            dev = f"{np.max(np.abs(np.interp(heom[0], t, p[:, 0]) - heom[1][:, 0])):.3f}"
        print(f"| {name} | {tm:.0f}, {pm:.3f} | " + " | ".join(f"{v:.3f}" for v in vals)
              + f" | {dev} |")
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6.8, 4.0))
        styles = {"Ehrenfest": "C0", "FSSH + EDC": "C3"}
        for name, (t, p) in series.items():
            c = styles.get(name, "k")
            lw = 2.0 if c == "k" else 1.3
            for site, ls in ((0, "-"), (1, "--"), (2, ":")):
                ax.plot(t, p[:, site], color=c, ls=ls, lw=lw,
                        label=(name.split(" (")[0] if site == 0 else None))
        ax.set_xlabel("t (fs)")
        ax.set_ylabel("site population")
        ax.set_xlim(0, 1000)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"FMO, site 1 excited, {a.temperature:g} K: site 1 (solid), 2 (dashed), "
                     "3 (dotted)", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
        print(f"wrote {a.plot}")


if __name__ == "__main__":
    main()
