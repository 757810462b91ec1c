"""Two-mode LVC model (pyrazine modes 6a and 10a): Ehrenfest, FSSH + EDC and the exact 2D grid.

    nice python tools/lvc_validation.py [--ntraj 4000] [--plot docs/figures/lvc_2mode.png]

Deck: inputs/lvc_2mode_fssh_edc.toml (and the same with [method] name = "ehrenfest"): the
vibrational ground state (``sampling = "wigner-thermal"``, ``temperature = 0``) vertically
excited to the diabatic state S2 (``basis = "diabatic"``, ``state = 1``). The exact reference
propagates the same initial wavefunction, the harmonic ground state times the diabatic S2 vector,
with mqcd's split-operator solver on the grid that ``mqcd exact`` plans for this deck (started
from the diabatic state here: ``mqcd exact`` itself starts on an adiabatic state). Prints the
diabatic S2 population at a few times and a table of errors (largest and root-mean-square
deviation over 0..t_end, with the statistical standard error of the trajectory average).
"""
import argparse
import copy
import os
import tomllib
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import mqcd  # noqa: E402
from mqcd.exact import exact_plan  # noqa: E402
from mqcd.exact.propagator import SplitOperator  # noqa: E402
from mqcd.io.deck import deck_model, read_deck  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DECK = ROOT / "inputs" / "lvc_2mode_fssh_edc.toml"
FS = 41.341373335                  # atomic units of time per femtosecond


def exact_diabatic(raw, state):
    """Exact populations (time, diabatic, adiabatic) from the Gaussian on diabatic ``state``."""
    ex = copy.deepcopy(raw)
    ex["initial"]["basis"] = "adiabatic"
    ex["initial"]["state"] = 1
    deck = read_deck(ex, for_exact=True)     # fills position/width from the harmonic reference
    model = deck_model(deck)
    plan, dt, nsub = exact_plan(deck)
    ini = deck.initial
    op = SplitOperator(model, plan, ini["position"])
    psi = op.initial_state(ini["position"], ini["momentum"], ini["width"], 0)
    chi = np.sqrt(np.sum(np.abs(psi) ** 2, axis=0))
    psi[:] = 0.0
    psi[state] = chi                          # real Gaussian on the diabatic state
    psi /= np.sqrt(np.sum(np.abs(psi) ** 2) * op.dvol)
    op.set_dt(dt)
    dt_rec = deck.output["stride"] * deck.run["dt"]
    nrec = int(round(deck.run["t_end"] / dt_rec))
    t, pd, pa = [], [], []
    for j in range(nrec + 1):
        if j:
            psi = op.propagate(psi, nsub)
        o = op.observables(psi, float(model.interaction_radius))
        t.append(j * dt_rec)
        pd.append(o["pop_dia"])
        pa.append(o["pop_adi"])
    return np.array(t), np.array(pd), np.array(pa), plan


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ntraj", type=int, default=4000)
    ap.add_argument("--plot", default=None)
    a = ap.parse_args()
    raw = tomllib.loads(DECK.read_text())
    raw["model"]["parameter_file"] = str(DECK.parent / raw["model"]["parameter_file"])
    raw["run"]["trajectories"] = a.ntraj
    te, pd_ex, pa_ex, plan = exact_diabatic(raw, raw["initial"]["state"])
    print(f"exact grid: {' x '.join(map(str, plan.npoints))} points, box "
          f"{[tuple(round(v, 2) for v in b) for b in plan.box]}")
    runs = {}
    for name, method in (("Ehrenfest", {"name": "ehrenfest"}),
                         ("FSSH + EDC", raw["method"])):
        d = copy.deepcopy(raw)
        d["method"] = method
        runs[name] = mqcd.run(d)
    t = runs["Ehrenfest"]["time"]
    assert np.allclose(t, te), "record times differ"
    print("\n| t (fs) | exact P(S2) | Ehrenfest | FSSH + EDC | exact P(upper) | Ehrenfest | "
          "FSSH + EDC (active) |")
    print("|---|---|---|---|---|---|---|")
    for tf in (0, 10, 20, 30, 50, 80, 120):
        k = int(np.argmin(np.abs(t - tf * FS)))
        e, f = runs["Ehrenfest"], runs["FSSH + EDC"]
        print(f"| {t[k] / FS:.0f} | {pd_ex[k, 1]:.3f} | {e['populations/diabatic'][k, 1]:.3f} | "
              f"{f['populations/diabatic'][k, 1]:.3f} | {pa_ex[k, 1]:.3f} | "
              f"{e['populations/adiabatic'][k, 1]:.3f} | {f['populations/active'][k, 1]:.3f} |")
    print(f"\nerrors over 0..{t[-1] / FS:.0f} fs, {a.ntraj} trajectories (s.e. = statistical "
          "standard error of the trajectory mean, largest over time)")
    print("| method | quantity | max abs error | rms error | s.e. |")
    print("|---|---|---|---|---|")
    for name, r in runs.items():
        for q, key, ref in (("diabatic P(S2)", "populations/diabatic", pd_ex[:, 1]),
                            ("upper adiabatic P", "populations/adiabatic", pa_ex[:, 1])):
            err = r[key][:, 1] - ref
            se = np.max(r["populations/adiabatic_std"][:, 1]) / np.sqrt(a.ntraj) \
                if key.endswith("adiabatic") else np.nan
            print(f"| {name} | {q} | {np.max(np.abs(err)):.3f} | {np.sqrt(np.mean(err ** 2)):.3f}"
                  f" | {'-' if np.isnan(se) else f'{se:.3f}'} |")
        if "populations/active" in r:
            err = r["populations/active"][:, 1] - pa_ex[:, 1]
            se = np.max(np.sqrt(r["populations/active"][:, 1] * (1 - r["populations/active"][:, 1])
                                / a.ntraj))
            print(f"| {name} | upper adiabatic (active) | {np.max(np.abs(err)):.3f} | "
                  f"{np.sqrt(np.mean(err ** 2)):.3f} | {se:.3f} |")
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        ax[0].plot(te / FS, pd_ex[:, 1], "k-", lw=2, label="exact (2D grid)")
        ax[1].plot(te / FS, pa_ex[:, 1], "k-", lw=2, label="exact (2D grid)")
        for (name, r), c in zip(runs.items(), ("C0", "C3")):
            ax[0].plot(t / FS, r["populations/diabatic"][:, 1], c, label=name)
            ax[1].plot(t / FS, r["populations/adiabatic"][:, 1], c, label=name + " (rho)")
            if "populations/active" in r:
                ax[1].plot(t / FS, r["populations/active"][:, 1], c + "--", label=name + " (active)")
        ax[0].set_title("diabatic S2 population")
        ax[1].set_title("upper adiabatic population")
        for x in ax:
            x.set_xlabel("t (fs)")
            x.legend(fontsize=8)
        ax[0].set_ylabel("population")
        fig.suptitle(f"2-mode LVC (pyrazine 6a/10a), {a.ntraj} trajectories")
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
        print(f"wrote {a.plot}")


if __name__ == "__main__":
    main()
