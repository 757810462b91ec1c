"""Throughput of the engine: trajectory-steps per second per core (prints markdown tables).

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 nice python tools/bench_engine.py [--quick]

1. Ehrenfest and FSSH on tully1 (2 states, the closed-form path), compared with the peers'
   figures quoted in the issues (hand-written numba kernel with the analytic 2x2 eigenproblem:
   1.4e8 Ehrenfest / 9e7 FSSH per core; mudslide 0.12 about 4e3).
2. Many states: Ehrenfest, FSSH and FSSH + EDC on a synthetic linear vibronic coupling model
   (``lvc`` built-in; ``ns`` states spread over 1 eV, 2 tuning modes with random kappa, 2 coupling
   modes with random lambda between every pair of states, dt = 2 a.u., Wigner sampling of the
   ground vibrational state, started on the top adiabatic state), for ns = 3, 4, 8, 16, with the
   ratio to a bare batched ``numpy.linalg.eigh`` of the same matrices measured in the same run
   (what one LAPACK eigendecomposition per trajectory and step would cost). Also a 3-state
   user model written in numpy (``Chain``), for the price of numpy models.
3. The spin-boson model (2 states) with 100 and 1000 bath modes: trajectory-steps/s and the cost
   per trajectory-step and mode, for 1000 and for 100 trajectories (with 1000 trajectories x 1000
   modes the per-trajectory arrays, dH alone 32 MB, no longer fit the caches).

Every rate is the best of two timed runs after a warm-up run (numba compilation or cache load);
records every 10 steps are included. Times are per core (one process, one thread).
"""
import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import mqcd  # noqa: E402
from mqcd.models import Model, build_model  # noqa: E402

PEERS = {"ehrenfest": 1.4e8, "fssh": 9e7}
MUDSLIDE = 4e3


def deck(method, ntraj, steps, model=None, dt=0.5, x0=None, width=None, state=0, stride=10,
         **mopts):
    model = model or {"name": "tully1"}
    ndof = build_model(model).ndof
    return {"model": model,
            "initial": {"position": x0 if x0 is not None else [-3.0] + [0.0] * (ndof - 1),
                        "momentum": [10.0] + [0.0] * (ndof - 1) if x0 is None else [0.0] * ndof,
                        "width": width or [1.0] * ndof, "state": state},
            "method": {"name": method, **mopts},
            "run": {"trajectories": ntraj, "dt": dt, "t_end": dt * steps, "seed": 1},
            "output": {"stride": stride}}


def rate(d, reps=2):
    """Trajectory-steps per second of ``mqcd.run(d)`` (best of ``reps`` after a warm-up)."""
    small = json.loads(json.dumps(d))
    small["run"]["trajectories"] = 4
    small["run"]["t_end"] = 2 * small["run"]["dt"]
    mqcd.run(small)
    best = min(_timed(d) for _ in range(reps))
    n = d["run"]["trajectories"] * round(d["run"]["t_end"] / d["run"]["dt"])
    return n / best


def _timed(d):
    t = time.perf_counter()
    mqcd.run(d)
    return time.perf_counter() - t


def synthetic_lvc(ns, seed=0):
    """Parameter dict of the synthetic LVC model of section 2 (eV)."""
    rng = np.random.default_rng(seed)
    nmodes = 4
    return {"units": "eV", "energies": list(np.linspace(-0.5, 0.5, ns)),
            "frequencies": list(np.linspace(0.08, 0.16, nmodes)),
            "kappa": [[a, k, float(rng.normal(0, 0.1))] for a in range(ns) for k in range(2)],
            "lambda": [[a, b, k, float(rng.normal(0, 0.05))] for a in range(ns)
                       for b in range(a + 1, ns) for k in range(2, nmodes)]}


class Chain(Model):
    """N-state chain written in numpy (a user model): tanh ramps, Gaussian couplings."""
    ndof = 1
    mass = 2000.0

    def __init__(self, ns=3):
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


def run_with_model(d, model):
    from mqcd.api import build_swarm
    from mqcd.io.deck import read_deck
    from mqcd.methods import build_method
    from mqcd.parallel import SerialComm
    dk = read_deck(d)
    meth = build_method(dk, model)
    sw = build_swarm(dk, model, meth, SerialComm())
    t = time.perf_counter()
    for _ in range(int(round(d["run"]["t_end"] / d["run"]["dt"]))):
        meth.step(sw, d["run"]["dt"])
    return time.perf_counter() - t


def eigh_rate(H, reps=5):
    np.linalg.eigh(H)
    t = time.perf_counter()
    for _ in range(reps):
        np.linalg.eigh(H)
    return reps * H.shape[0] / (time.perf_counter() - t)


def section_tully(a):
    rows = ["| case | trajectories | steps | traj-steps/s/core | vs numba limit | vs mudslide |",
            "|---|---|---|---|---|---|"]
    for method in ("ehrenfest", "fssh"):
        r = rate(deck(method, a.ntraj, a.steps))
        rows.append(f"| {method} tully1 | {a.ntraj} | {a.steps} | {r:.3g} | "
                    f"{r / PEERS[method]:.2f} | {r / MUDSLIDE:.0f}x |")
    print("\n".join(rows) + "\n")


def section_many(a, tmp):
    rows = ["| states | bare batched eigh /s | Ehrenfest traj-steps/s | ratio | FSSH traj-steps/s "
            "| ratio | FSSH + EDC traj-steps/s | ratio |", "|---|---|---|---|---|---|---|---|"]
    n, steps = a.ntraj_many, a.steps_many
    for ns in a.states:
        path = os.path.join(tmp, f"lvc{ns}.json")
        with open(path, "w") as f:
            json.dump(synthetic_lvc(ns), f)
        model = {"name": "lvc", "parameter_file": path}
        m = build_model(model)
        kw = dict(model=model, dt=2.0, x0=[0.0] * m.ndof, width=[0.7071] * m.ndof, state=ns - 1)
        rng = np.random.default_rng(0)
        H, _ = m.evaluate(rng.normal(0.0, 0.7071, (n, m.ndof)))
        eig = eigh_rate(H)
        re = rate(deck("ehrenfest", n, steps, **kw))
        rf = rate(deck("fssh", n, steps, **kw))
        rd = rate(deck("fssh", n, steps, decoherence="edc", **kw))
        rows.append(f"| {ns} | {eig:.3g} | {re:.3g} | **{re / eig:.2f}** | {rf:.3g} | "
                    f"**{rf / eig:.2f}** | {rd:.3g} | {rd / eig:.2f} |")
        print(rows[-1], flush=True)
    # a user model written in numpy, 3 states
    m = Chain(3)
    d = deck("ehrenfest", n, steps, model={"name": "tully1"}, x0=[-3.0])
    run_with_model(deck("ehrenfest", 4, 2, model={"name": "tully1"}, x0=[-3.0]), m)
    wall = min(run_with_model(d, m) for _ in range(2))
    H, _ = m.evaluate(np.linspace(-1, 1, n)[:, None])
    eig = eigh_rate(H)
    rows.append(f"| 3, user model in numpy (time loop only, no records) | {eig:.3g} | "
                f"{n * steps / wall:.3g} | {n * steps / wall / eig:.2f} | | | | |")
    print("\n" + "\n".join(rows) + "\n")


def section_spin_boson(a):
    rows = ["| bath modes | method | trajectories | steps | traj-steps/s | ns per traj-step and mode |",
            "|---|---|---|---|---|---|"]
    for ntraj, steps in ((a.ntraj_sb, a.steps_sb), (a.ntraj_sb // 10, 4 * a.steps_sb)):
        for modes in (100, 1000):
            model = {"name": "spin_boson", "modes": modes}
            m = build_model(model)
            w = list(1.0 / np.sqrt(2.0 * m.omega))
            for method in ("ehrenfest", "fssh"):
                r = rate(deck(method, ntraj, steps, model=model, dt=0.01, x0=[0.0] * modes,
                              width=w))
                rows.append(f"| {modes} | {method} | {ntraj} | {steps} | {r:.3g} | "
                            f"{1e9 / r / modes:.2f} |")
    print("\n".join(rows) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ntraj", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--ntraj-many", type=int, default=2000)
    ap.add_argument("--steps-many", type=int, default=200)
    ap.add_argument("--ntraj-sb", type=int, default=1000)
    ap.add_argument("--steps-sb", type=int, default=100)
    ap.add_argument("--states", type=int, nargs="+", default=[3, 4, 8, 16])
    ap.add_argument("--only", choices=("tully", "many", "spin_boson"), default=None)
    ap.add_argument("--quick", action="store_true", help="fewer trajectories and steps")
    a = ap.parse_args()
    if a.quick:
        a.ntraj, a.steps, a.ntraj_many, a.steps_many, a.ntraj_sb, a.steps_sb = \
            2000, 200, 500, 50, 200, 20
    with tempfile.TemporaryDirectory() as tmp:
        if a.only in (None, "tully"):
            section_tully(a)
        if a.only in (None, "many"):
            section_many(a, tmp)
        if a.only in (None, "spin_boson"):
            section_spin_boson(a)


if __name__ == "__main__":
    main()
