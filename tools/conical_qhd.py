"""qhd on the 2D conical intersection (conical2d) against the exact 2D solution.

The packet of docs/validation.md (origin, widths 0.3 bohr, upper adiabat, at rest) is run with
Ehrenfest, with qhd on fluid elements with the swarm's kernel fields, and with qhd and
geometric-ehrenfest-qc on the exact fields (oracle, ``field_method = "exact"``), and the upper
adiabatic population is compared with the exact one over time.

    python tools/conical_qhd.py [--n 400] [--png docs/figures/conical_qhd.png] [--data DIR]

Prints the populations at t = 100..400 a.u. and the rms deviation from exact over the run.
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

import mqcd  # noqa: E402
from mqcd.exact import run_exact  # noqa: E402
from mqcd.io.results import load, write_result  # noqa: E402

DECK = {"model": {"name": "conical2d"},
        "initial": {"position": [0.0, 0.0], "momentum": [0.0, 0.0], "width": [0.3, 0.3],
                    "state": 1},
        "run": {"dt": 0.5, "t_end": 400.0, "seed": 5},
        "output": {"stride": 4}}

RUNS = [("ehrenfest", {"name": "ehrenfest"}, "wigner"),
        ("qhd, kernel fields", {"name": "qhd", "field_method": "kernel"}, "hydrodynamic"),
        ("geometric-ehrenfest-qc, exact fields", {"name": "geometric-ehrenfest-qc",
                                                  "field_method": "exact"}, "hydrodynamic"),
        ("qhd, exact fields", {"name": "qhd", "field_method": "exact"}, "hydrodynamic")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--png", default=str(ROOT / "docs" / "figures" / "conical_qhd.png"))
    ap.add_argument("--data", default="exact_data")
    a = ap.parse_args(argv)
    Path(a.data).mkdir(parents=True, exist_ok=True)
    path = Path(a.data) / "exact_conical2d.h5"
    if path.exists():
        ex = load(path)
    else:
        ex = run_exact(DECK)
        write_result(path, ex, force=True)
    te, pe = np.asarray(ex["time"]), np.asarray(ex["populations/adiabatic"])[:, 1]
    res = {}
    for label, method, sampling in RUNS:
        deck = {**DECK, "method": method, "run": {**DECK["run"], "trajectories": a.n},
                "initial": {**DECK["initial"], "sampling": sampling}}
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                r = mqcd.run(deck)
            except Exception as exc:                    # report, go on with the others
                print(f"{label}: failed: {exc}")
                continue
        res[label] = r
        t, p = np.asarray(r["time"]), np.asarray(r["populations/adiabatic"])[:, 1]
        rms = np.sqrt(np.mean((p - np.interp(t, te, pe)) ** 2))
        E = np.asarray(r["energy/total"])
        print(f"{label}: rms deviation {rms:.3f}, energy drift {E[-1] - E[0]:+.1e} hartree, "
              f"wall {time.perf_counter() - t0:.0f} s", flush=True)
    print("\n| time (a.u.) | exact | " + " | ".join(res) + " |")
    print("|---|---|" + "---|" * len(res))
    for tt in (100.0, 200.0, 300.0, 400.0):
        j = int(np.argmin(np.abs(te - tt)))
        cells = [f"{tt:g}", f"{pe[j]:.3f}"]
        for r in res.values():
            i = int(np.argmin(np.abs(np.asarray(r["time"]) - tt)))
            cells.append(f"{np.asarray(r['populations/adiabatic'])[i, 1]:.3f}")
        print("| " + " | ".join(cells) + " |")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(te, pe, "k-", lw=2.5, label="exact")
    for label, r in res.items():
        ax.plot(r["time"], np.asarray(r["populations/adiabatic"])[:, 1], lw=1.5, label=label)
    ax.set_xlabel("time (atomic_unit_of_time)")
    ax.set_ylabel("upper adiabatic population")
    ax.set_title(f"conical2d, N = {a.n}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(a.png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.png, dpi=110)
    print(f"\nfigure: {a.png}")


if __name__ == "__main__":
    main()
