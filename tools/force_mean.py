"""Swarm average of the correction force vs swarm size (MB, text after (64): it vanishes exactly
for the combined geometric + quantum-coupling force).

    python tools/force_mean.py [--sizes 250,1000,4000]

Tully 3, k = 10 a.u., standard packet, 3000 a.u. of time (through the crossing). Prints, per
method and N, max over time of |swarm mean| of the correction force divided by max over time of
its rms (both from the run's diagnostics/force_correction_* datasets).
"""
import argparse

import numpy as np

import mqcd
from mqcd.analysis.validate import scattering_deck

CASES = [("geometric-ehrenfest-qc (conservative)", {"name": "geometric-ehrenfest-qc"}),
         ("geometric-ehrenfest-qc (pointwise)", {"name": "geometric-ehrenfest-qc",
                                                 "force_form": "pointwise"}),
         ("geometric-ehrenfest (T1 alone)", {"name": "geometric-ehrenfest"}),
         ("ehrenfest-qc (route b)", {"name": "ehrenfest-qc"})]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="250,1000,4000")
    sizes = [int(s) for s in ap.parse_args().sizes.split(",")]
    print("| method | " + " | ".join(f"N = {n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for label, method in CASES:
        cells = []
        for n in sizes:
            d = scattering_deck("tully3", 10.0, method, ntraj=n)
            d["run"].update(t_end=3000.0, stop="time")
            r = mqcd.run(d)
            mean = np.abs(r["diagnostics/force_correction_mean"]).max()
            rms = r["diagnostics/force_correction_rms"].max()
            cells.append(f"{mean / rms:.1e}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
