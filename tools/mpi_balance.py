"""Load balance of a coupled swarm under MPI while it splits into a reflected and a transmitted
packet.

    python tools/mpi_balance.py [--method ehrenfest-qc] [--ntraj 20000] [--ranks 2]
                                [--sampling hydrodynamic] [--case tully3] [--every 100]

mqcd keeps each rank's trajectories for the whole run (contiguous blocks of the global rows, no
migration): a rank's work per step is its own rows' propagation plus, in the field estimate, the
deposit and interpolation of its own rows (grid path), its share of the modal pilot, and the
replicated grid transforms. None of these depends on where the trajectories are, so the blocks
should stay balanced as the swarm splits. This tool measures it instead of assuming it.

The worker runs the whole scattering (exit rule) and every ``--every`` steps reports, per rank:

* the fraction of its trajectories beyond x = 0 (with ``sampling = "hydrodynamic"`` the global
  rows are ordered in position, so the ranks' blocks are spatial slabs: rank 0 holds the back of
  the packet and ends up mostly in the reflected packet; the worst case for position-dependent
  work);
* its compute time per step: the loop's wall time minus the time inside collectives (which is
  where a faster rank waits for a slower one);
* the imbalance ``max / mean`` of the compute times over ranks (1 = perfect).

Cases: ``tully3`` (k = 10) and ``double_arch`` (k = 15), the wavepacket initial conditions of
docs/validation.md (x0 = -15 bohr, width 10/k, lower adiabatic state, M = 2000).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {"tully3": ("tully3", 10.0), "double_arch": ("double_arch", 15.0)}


def make_deck(a):
    from mqcd.analysis.validate import scattering_deck
    model, k = CASES[a.case]
    d = scattering_deck(model, k, {"name": a.method}, ntraj=a.ntraj, dt=1.0, seed=1)
    d["initial"]["sampling"] = a.sampling
    d["output"]["stride"] = 1000000
    return d


def worker(a):
    import numpy as np

    from mqcd.api import _Runner
    from mqcd.io.deck import read_deck
    from mqcd.parallel import get_comm
    comm = get_comm()
    runner = _Runner(read_deck(make_deck(a)), comm, None)
    runner.start()
    end = runner.nsteps                                 # the run's last step (t_end)
    runner.nsteps = runner.sw.step + 1                  # compilation
    runner.loop()
    stats = comm.stats
    while runner.sw.step < end and runner.stop_reason != "exit":
        comm.barrier()
        stats.reset()
        s0 = runner.sw.step
        runner.nsteps = min(end, s0 + a.every)
        t0 = time.perf_counter()
        runner.loop()
        wall = time.perf_counter() - t0
        n = max(runner.sw.step - s0, 1)
        waited = sum(v["seconds"] for v in stats.as_dict().values())
        right = float(np.mean(runner.sw.x[:, 0] > 0.0)) if runner.sw.ntraj else 0.0
        row = comm.allgather_rows(np.array([[wall / n, waited / n, right]]))
        if comm.is_root:
            print("BALANCE_JSON " + json.dumps({"t": runner.sw.step * runner.dt,
                                                "rows": row.tolist()}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", default="ehrenfest-qc")
    ap.add_argument("--ntraj", type=int, default=20000)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--sampling", default="hydrodynamic", choices=("hydrodynamic", "wigner"))
    ap.add_argument("--case", default="tully3", choices=sorted(CASES))
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--worker", action="store_true")
    a = ap.parse_args()
    if a.worker:
        return worker(a)
    exe = Path(sys.executable).parent / "mpiexec"
    cmd = [str(exe) if exe.exists() else "mpiexec", "-n", str(a.ranks), sys.executable,
           __file__, "--worker"] + [f"--{k}={v}" for k, v in
                                    (("method", a.method), ("ntraj", a.ntraj),
                                     ("sampling", a.sampling), ("case", a.case),
                                     ("every", a.every))]
    print(f"{a.method}, {a.case}, N = {a.ntraj}, {a.ranks} ranks, sampling = {a.sampling}, "
          f"load {os.getloadavg()[0]:.2f}")
    print("| t (a.u.) | " + " | ".join(f"rank {r}: x > 0" for r in range(a.ranks))
          + " | " + " | ".join(f"rank {r} compute ms/step" for r in range(a.ranks))
          + " | imbalance max/mean |")
    print("|---" * (2 * a.ranks + 2) + "|")
    worst = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if not line.startswith("BALANCE_JSON "):
            continue
        d = json.loads(line.split(" ", 1)[1])
        rows = d["rows"]
        comp = [r[0] - r[1] for r in rows]
        imb = max(comp) / (sum(comp) / len(comp))
        worst.append(imb)
        print(f"| {d['t']:.0f} | " + " | ".join(f"{r[2]:.2f}" for r in rows) + " | "
              + " | ".join(f"{c * 1e3:.1f}" for c in comp) + f" | {imb:.3f} |", flush=True)
    proc.wait()
    if worst:
        print(f"\nimbalance over the run: median {sorted(worst)[len(worst) // 2]:.3f}, "
              f"max {max(worst):.3f}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
