"""Cost of a qhd step vs N (1D, Tully 3 packet at k = 10), per field estimator.

    python tools/bench_qhd.py [--n 1000,10000,100000] [--steps 20] [--threads 1]
                              [--field-method fluid,kernel]

Builds the swarm (fluid elements, ``[initial] sampling = "hydrodynamic"``) and the method as a
run would, takes a few warm-up steps (compilation), then times ``steps`` steps and, separately,
the field estimate alone at the same swarm. Prints time per step, the share spent in the fields
and the growth exponent d ln(t) / d ln(N) between successive N. Timings are ratios of one run
on one machine; run it alone.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", default="1000,10000,100000")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--field-method", default="fluid,kernel",
                    help="comma-separated [method] field_method values ('kernel' is what "
                         "'auto', the default, resolves to for qhd)")
    a = ap.parse_args(argv)
    import numba
    numba.set_num_threads(a.threads)
    for fm in a.field_method.split(","):
        table(fm, [int(v) for v in a.n.split(",")], a.steps, a.threads)


def table(fm, sizes, steps, threads):
    """Time qhd steps with ``field_method = fm`` for each N and print the table."""
    from mqcd.analysis.validate import scattering_deck
    from mqcd.api import build_swarm
    from mqcd.io.deck import deck_model, read_deck
    from mqcd.methods import build_method
    from mqcd.parallel import SerialComm
    rows = []
    for N in sizes:
        d = scattering_deck("tully3", 10.0, {"name": "qhd", "field_method": fm}, ntraj=N)
        d["initial"]["sampling"] = "hydrodynamic"
        deck = read_deck(d)
        model = deck_model(deck)
        meth = build_method(deck, model)
        sw = build_swarm(deck, model, meth, SerialComm())
        dt = deck.run["dt"]
        for _ in range(3):
            meth.step(sw, dt)
        t0 = time.perf_counter()
        for _ in range(steps):
            meth.step(sw, dt)
        step = (time.perf_counter() - t0) / steps
        t0 = time.perf_counter()
        for _ in range(steps):
            meth.estimator.estimate(sw)
        fields = (time.perf_counter() - t0) / steps
        rows.append((N, step, fields))
    print(f"\nqhd, field_method = {fm!r}, fluid-element start, Tully 3 k = 10 packet, "
          f"{threads} thread(s)\n")
    print("| N | ms / step | fields (ms) | share in fields | growth exponent |")
    print("|---|---|---|---|---|")
    for i, (N, step, fields) in enumerate(rows):
        g = "" if i == 0 else f"{np.log(step / rows[i - 1][1]) / np.log(N / rows[i - 1][0]):.2f}"
        print(f"| {N} | {1e3 * step:.1f} | {1e3 * fields:.1f} | {fields / step:.0%} | {g} |")


if __name__ == "__main__":
    main()
