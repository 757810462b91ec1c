"""Pyrazine S2 -> S1: FSSH + EDC on the 24-mode model of Raab et al. (1999), figure and decay times.

    nice mpiexec -n 2 mqcd run inputs/pyrazine_fssh_edc.toml -o pyrazine_fssh_edc.h5
    python tools/pyrazine_figure.py pyrazine_fssh_edc.h5 [--plot docs/figures/pyrazine_s2.png]

Prints the diabatic S2 and upper adiabatic populations at a few times, the times at which they
fall below 1/2 and 1/e, and an exponential fit ``P(t) = exp(-(t - t0)/tau)`` of the upper
adiabatic population between 5 and 40 fs (the decay time scale to compare with the published
~20-30 fs; docs/models.md).
"""
import argparse

import numpy as np
import scipy.optimize

import mqcd

FS = 41.341373335


def first_below(t, y, level):
    k = np.nonzero(y < level)[0]
    if not k.size:
        return float("nan")
    k = k[0]
    return float(np.interp(level, [y[k], y[k - 1]], [t[k], t[k - 1]])) if k else float(t[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("--plot", default=None)
    a = ap.parse_args()
    r = mqcd.load(a.result)
    t = r["time"] / FS
    pd = r["populations/diabatic"][:, 1]
    pa = r["populations/active"][:, 1]
    n = int(r.attrs["trajectories"])
    print(f"{n} trajectories on {r.attrs['ranks']} ranks, {r.attrs['wall_time_s']:.1f} s, largest "
          f"mean energy drift {r.attrs['energy_drift']:.2e} hartree")
    print("\n| t (fs) | diabatic P(S2) | upper adiabatic (active) |\n|---|---|---|")
    for tf in (0, 10, 20, 30, 40, 60, 80, 100, 150):
        k = int(np.argmin(np.abs(t - tf)))
        print(f"| {t[k]:.0f} | {pd[k]:.3f} | {pa[k]:.3f} |")
    sel = (t >= 5) & (t <= 40)
    (t0, tau), _ = scipy.optimize.curve_fit(lambda x, t0, tau: np.exp(-(x - t0) / tau),
                                            t[sel], pa[sel], p0=(5.0, 15.0))
    print(f"\ndiabatic S2 below 1/2 at {first_below(t, pd, 0.5):.1f} fs, below 1/e at "
          f"{first_below(t, pd, np.exp(-1)):.1f} fs; upper adiabatic below 1/2 at "
          f"{first_below(t, pa, 0.5):.1f} fs, 1/e at {first_below(t, pa, np.exp(-1)):.1f} fs; "
          f"exponential fit (5-40 fs) of the upper adiabatic population: lag {t0:.1f} fs, "
          f"tau = {tau:.1f} fs")
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        ax.plot(t, pd, "C3", label="diabatic S2 (FSSH + EDC, from rho)")
        ax.plot(t, pa, "C0", label="upper adiabatic (active state)")
        ax.plot(t, np.where(t >= t0, np.exp(-(t - t0) / tau), np.nan), "k:",
                label=f"fit exp(-(t - {t0:.0f} fs)/{tau:.0f} fs)")
        ax.axvspan(20, 30, color="0.9", zorder=0, label="published S2 lifetime scale")
        ax.set_xlabel("t (fs)")
        ax.set_ylabel("population")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"pyrazine, 24-mode model (Raab et al. 1999), {n} trajectories")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
        print(f"wrote {a.plot}")


if __name__ == "__main__":
    main()
