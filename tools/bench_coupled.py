"""Cost of one coupled step vs swarm size, and the share spent estimating the swarm fields.

    NUMBA_NUM_THREADS=1 python tools/bench_coupled.py [--max1d 1000000] [--max3d 100000]
        [--methods geometric-ehrenfest-qc,ehrenfest-qc]

geometric-ehrenfest-qc (route (a): density, grad ln n, rho, d rho, d2 rho by regression, metric
derivative, conservative combined force) and ehrenfest-qc (route (b): density and grad ln n from the
swarm, d rho per trajectory, population constraint). 1D: tully1 (packet at the crossing, dt 0.5); 3D: spin_boson with 3 modes (bath near its
ground state, dt 0.05).
Each size: a few warm-up steps, then the mean wall time of the next steps; the fitted exponent is
the slope of log(time) vs log(N) over the sizes >= 1e4.
"""
import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from mqcd.api import build_swarm  # noqa: E402
from mqcd.io.deck import deck_model, read_deck  # noqa: E402
from mqcd.methods import build_method  # noqa: E402
from mqcd.parallel import SerialComm  # noqa: E402


def deck(model, n, D, method):
    if D == 1:      # tully1 packet just before the crossing
        initial, dt = {"position": [-2.0], "momentum": [10.0], "width": [1.0]}, 0.5
    else:           # spin-boson bath (mass 1, frequencies ~1-5 hartree): near its ground state
        initial, dt = {"position": [0.0] * D, "momentum": [0.0] * D, "width": [0.5] * D}, 0.05
    return {"model": model, "method": {"name": method}, "initial": initial,
            "run": {"trajectories": n, "dt": dt, "t_end": 10.0}}


class TimedFields:
    """Forwards to the method's SwarmFields part and accumulates the time spent in it."""

    def __init__(self, inner):
        self.inner = inner
        self.spent = 0.0

    def __call__(self, *args, **kw):
        t = time.perf_counter()
        out = self.inner(*args, **kw)
        self.spent += time.perf_counter() - t
        return out

    def __getattr__(self, name):          # everything else: the wrapped part's attributes
        return getattr(self.inner, name)


def measure(model, n, D, steps, method):
    d = read_deck(deck(model, n, D, method))
    m = deck_model(d)
    meth = build_method(d, m)
    sw = build_swarm(d, m, meth, SerialComm())
    proxy = TimedFields(meth.fields)
    meth.fields = proxy
    for _ in range(2):
        meth.step(sw, d.run["dt"])
    proxy.spent = 0.0
    t = time.perf_counter()
    for _ in range(steps):
        meth.step(sw, d.run["dt"])
    wall = (time.perf_counter() - t) / steps
    return wall, proxy.spent / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max1d", type=float, default=1e6)
    ap.add_argument("--max3d", type=float, default=1e5)
    ap.add_argument("--methods", default="geometric-ehrenfest-qc,ehrenfest-qc")
    a = ap.parse_args()
    cases = [(m, "1D tully1", {"name": "tully1"}, 1, a.max1d) for m in a.methods.split(",")]
    cases += [(m, "3D spin_boson (3 modes)", {"name": "spin_boson", "modes": 3}, 3, a.max3d)
              for m in a.methods.split(",")]
    for method, label, model, D, nmax in cases:
        print(f"\n{method}, {label}\n\n| N | ms per step | fields ms | fields share |\n"
              "|---|---|---|---|")
        Ns, Ts = [], []
        n = 100
        while n <= nmax:
            steps = 20 if n <= 1e4 else (5 if D == 1 or n < 1e5 else 2)
            wall, fld = measure(model, int(n), D, steps, method)
            print(f"| {int(n)} | {1e3 * wall:.2f} | {1e3 * fld:.2f} | {fld / wall:.0%} |", flush=True)
            Ns.append(n)
            Ts.append(wall)
            n *= 10
        big = [(x, y) for x, y in zip(Ns, Ts) if x >= 1e4]
        if len(big) >= 2:
            slope = np.polyfit(np.log([b[0] for b in big]), np.log([b[1] for b in big]), 1)[0]
            print(f"\nfitted growth exponent (N >= 1e4): {slope:.2f}")


if __name__ == "__main__":
    main()
