"""Throughput of the engine: trajectory-steps per second per core (prints a markdown table).

    OPENBLAS_NUM_THREADS=1 python tools/bench_engine.py [--ntraj 10000] [--steps 2000]

Cases: Ehrenfest and FSSH on tully1 (2 states, analytic fast path), and Ehrenfest on an N-state
model (N = 3, 4, 8) compared with a bare batched ``numpy.linalg.eigh`` of the same size (the
N-state step needs one eigendecomposition per trajectory and step). Compile time is measured
separately (first call in a fresh process, numba cache cleared is not attempted: a cached run
reports the cache-load time). Peers, for the tully1 cases, are the figures measured on this
machine and quoted in the issues: hand-written numba kernel with analytic 2x2 eigenproblem
1.4e8 (Ehrenfest) / 9e7 (FSSH) per core, mudslide 0.12 about 4e3.
"""
import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import mqcd  # noqa: E402
from mqcd.models import Model  # noqa: E402

PEERS = {"ehrenfest": 1.4e8, "fssh": 9e7}
MUDSLIDE = 4e3


def deck(method, ntraj, steps, model="tully1", stride=10):
    return {"model": {"name": model}, "initial": {"position": [-3.0], "momentum": [10.0],
                                                  "width": [1.0]},
            "method": {"name": method}, "run": {"trajectories": ntraj, "dt": 0.5,
                                                "t_end": 0.5 * steps, "seed": 1},
            "output": {"stride": stride}}


def timed(d, swarm_model=None):
    t = time.perf_counter()
    if swarm_model is None:
        mqcd.run(d)
    else:
        run_with_model(d, swarm_model)
    return time.perf_counter() - t


def run_with_model(d, model):
    from mqcd.api import build_swarm
    from mqcd.io.deck import read_deck
    from mqcd.methods import build_method
    from mqcd.parallel import SerialComm
    dk = read_deck(d)
    meth = build_method(dk, model)
    sw = build_swarm(dk, model, meth, SerialComm())
    for _ in range(int(round(d["run"]["t_end"] / d["run"]["dt"]))):
        meth.step(sw, d["run"]["dt"])


class Chain(Model):
    """N-state chain: diagonal tanh ramps, nearest-neighbour Gaussian couplings (numpy model)."""
    ndof = 1
    mass = 2000.0

    def __init__(self, ns):
        self.nstates = ns
        super().__init__()

    def evaluate(self, x):
        q = x[:, 0]
        n = len(q)
        H = np.zeros((n, self.nstates, self.nstates))
        dH = np.zeros((n, 1, self.nstates, self.nstates))
        for a in range(self.nstates):
            s = 0.01 * (a - (self.nstates - 1) / 2)
            H[:, a, a] = s * np.tanh(q)
            dH[:, 0, a, a] = s / np.cosh(q) ** 2
        c = 0.005 * np.exp(-q * q)
        for a in range(self.nstates - 1):
            H[:, a, a + 1] = H[:, a + 1, a] = c
            dH[:, 0, a, a + 1] = dH[:, 0, a + 1, a] = -2 * q * c
        return H, dH


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ntraj", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=2000)
    a = ap.parse_args()
    rows = ["| case | trajectories | steps | first call (compile/cache) s | wall s | traj-steps/s/core | vs numba limit | vs mudslide |",
            "|---|---|---|---|---|---|---|---|"]
    for method in ("ehrenfest", "fssh"):
        tc = timed(deck(method, 10, 2))
        wall = min(timed(deck(method, a.ntraj, a.steps)) for _ in range(2))
        rate = a.ntraj * a.steps / wall
        rows.append(f"| {method} tully1 | {a.ntraj} | {a.steps} | {tc:.2f} | {wall:.2f} | {rate:.3g} | "
                    f"{rate / PEERS[method]:.2f} | {rate / MUDSLIDE:.0f}x |")
    print("\n".join(rows))
    print()
    rows = ["| states | engine Ehrenfest traj-steps/s | bare batched eigh /s | ratio |", "|---|---|---|---|"]
    n_small, steps = 2000, 200
    for ns in (3, 4, 8):
        m = Chain(ns)
        timed(deck("ehrenfest", 4, 2), m)
        wall = timed(deck("ehrenfest", n_small, steps), m)
        rate = n_small * steps / wall
        H, _ = m.evaluate(np.linspace(-1, 1, n_small)[:, None])
        t = time.perf_counter()
        for _ in range(20):
            np.linalg.eigh(H)
        eig_rate = 20 * n_small / (time.perf_counter() - t)
        rows.append(f"| {ns} | {rate:.3g} | {eig_rate:.3g} | {rate / eig_rate:.2f} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
