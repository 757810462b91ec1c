"""Cost model of a coupled step under MPI, calibrated on this machine, predicting the parallel
efficiency at many ranks.

    python tools/bench_mpi_coupled.py --ntraj 1000000 --steps 5 --json b1e6.json
    python tools/mpi_cost_model.py --bench b1e6.json [--ranks 8 64 1024] [--ntraj 1e6 1e8]

Step 1 (``--worker`` under ``mpiexec -n 2``): latency and bandwidth of the collectives the field
estimate uses, measured here: ``Allreduce`` of 8 B (latency ``alpha``) and of 64 KiB .. 16 MiB
of uint64 (the fixed-point grids; bandwidth ``beta`` from the slope), ``Allgatherv``.

Step 2: from the benchmark rows (one method, 1 and 2 ranks, same N), per step

* ``c`` = local compute per trajectory: (t_step - t_replicated) / N on one rank;
* ``R`` = replicated work (grid transforms, spectral products, the modal estimator's subsample
  modes), measured by timers around those functions; the share of it that is split over the
  ranks (the modes' kNN pilot, the 3D transforms) is ``2 (R_1 - R_2)`` from the 1- and 2-rank
  rows, so ``R(P) = R_fixed + R_split / P`` (before, all of ``R_1`` was taken as fixed, which
  under-predicted ehrenfest-qc); it is scaled with the grid size,
  ``G ~ N^(D/7)`` (bandwidth ~ N^(-1/7) per dof), a pessimistic rule for the subsample part,
  which is fixed;
* per collective kind: calls and bytes per step (``MPIComm.stats`` of the 2-rank run).

    T(P, N) = c N / P + R(P, N) + sum_k calls_k alpha ceil(log2 P)
              + 2 (P - 1) / P * B_grid(N) / beta + (P - 1) / P * B_gather / beta

(tree latency, ring-allreduce volume for the grids whose size follows ``G``, all-gathered
subsample fixed; for the fluid-element estimator the replicated sort of all positions grows
as N log N and their all-gather as N), efficiency ``T(1, N) / (P T(P, N))``. Load balance is taken as perfect: the
per-trajectory cost of the grid path does not depend on where a trajectory is. Printed twice:
with ``alpha``, ``beta`` measured here (shared memory, one node) and with a cluster interconnect
(``--alpha 2e-6 --beta 1e10``: InfiniBand class).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker():
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    out = {"allreduce": {}, "allgather": {}}
    for nbytes in (8, 4096, 1 << 16, 1 << 20, 1 << 22, 1 << 24):
        buf = np.zeros(nbytes // 8, np.uint64)
        res = np.empty_like(buf)
        reps = max(5, min(2000, (1 << 26) // max(nbytes, 1)))
        for _ in range(3):
            comm.Allreduce(buf, res, op=MPI.SUM)
        comm.Barrier()
        t = time.perf_counter()
        for _ in range(reps):
            comm.Allreduce(buf, res, op=MPI.SUM)
        out["allreduce"][nbytes] = (time.perf_counter() - t) / reps
    for nbytes in (8, 1 << 16, 1 << 20, 1 << 23):
        mine = np.zeros(nbytes // 8)
        allb = np.empty(mine.size * comm.size)
        reps = max(5, min(2000, (1 << 26) // max(nbytes, 1)))
        comm.Barrier()
        t = time.perf_counter()
        for _ in range(reps):
            comm.Allgather(mine, allb)
        out["allgather"][nbytes] = (time.perf_counter() - t) / reps
    if comm.rank == 0:
        print("COLL_JSON " + json.dumps(out), flush=True)


def measure():
    mpiexec = Path(sys.executable).parent / "mpiexec"
    mpiexec = mpiexec if mpiexec.exists() else "mpiexec"
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cp = subprocess.run([str(mpiexec), "-n", "2", sys.executable, __file__, "--worker"],
                        capture_output=True, text=True, env=env, check=True)
    line = [ln for ln in cp.stdout.splitlines() if ln.startswith("COLL_JSON ")][-1]
    d = json.loads(line[len("COLL_JSON "):])
    ar = {int(k): v for k, v in d["allreduce"].items()}
    alpha = ar[8]
    big = sorted(k for k in ar if k >= 1 << 20)
    # ring allreduce on 2 ranks moves 2 (P-1)/P B = B bytes per rank: B / beta
    slope = np.polyfit([float(b) for b in big], [ar[b] for b in big], 1)[0]
    return alpha, 1.0 / slope, ar, {int(k): v for k, v in d["allgather"].items()}


def model(row1, row2, alpha, beta, P, N):
    N0, D = row1["ntraj"], row1["dim"]
    t1 = 1e-3 * row1["step_ms"]
    rep = 1e-3 * row1["replicated_ms"]
    c = max(t1 - rep, 0.0) / N0
    grow = (N / N0) ** (D / 7.0)
    # the part of the "replicated" timers that is shared out over the ranks (the modes' kNN
    # pilot, the 3D transforms) from the 1- and 2-rank rows: R(P) = R_fixed + R_split / P
    split = min(max(2.0 * (rep - 1e-3 * row2["replicated_ms"]), 0.0), rep)
    R = (rep - split + split / P) * grow
    R1 = rep * grow
    kinds = row2["kinds"]
    calls = sum(v["calls"] for v in kinds.values())
    b_grid = kinds.get("sum", {}).get("bytes", 0.0) * grow
    b_gather = kinds.get("allgather_rows", {}).get("bytes", 0.0) * 2   # both ranks' share
    if row1.get("estimator") == "FluidEstimator":
        # whole-swarm positions gathered and sorted on every rank: N log N, N
        R = R1 = rep * (N / N0) * math.log(N) / math.log(N0)
        b_gather *= N / N0
    lat = calls * alpha * math.ceil(math.log2(P)) if P > 1 else 0.0
    vol = (2.0 * (P - 1) / P * b_grid + (P - 1) / P * b_gather) / beta if P > 1 else 0.0
    T1 = c * N + R1
    TP = c * N / P + R + lat + vol
    return T1 / (P * TP), {"compute": c * N / P, "replicated": R, "latency": lat, "volume": vol}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", nargs="+", required=False, default=[])
    ap.add_argument("--ranks", type=int, nargs="+", default=[8, 64, 1024])
    ap.add_argument("--ntraj", type=float, nargs="+", default=[1e6, 1e8])
    ap.add_argument("--alpha", type=float, default=2e-6)
    ap.add_argument("--beta", type=float, default=1e10)
    ap.add_argument("--worker", action="store_true")
    a = ap.parse_args()
    if a.worker:
        return worker()
    alpha, beta, ar, ag = measure()
    print(f"load {os.getloadavg()[0]:.2f}; measured on this machine (2 ranks, shared memory): "
          f"Allreduce latency alpha = {1e6 * alpha:.2f} us, bandwidth beta = {beta / 1e9:.2f} GB/s")
    print("| bytes | Allreduce (us) | Allgather (us) |\n|---|---|---|")
    for b in sorted(set(ar) | set(ag)):
        print(f"| {b} | {1e6 * ar[b]:.1f} | " + (f"{1e6 * ag[b]:.1f}" if b in ag else "") + " |"
              if b in ar else f"| {b} | | {1e6 * ag[b]:.1f} |")
    for path in a.bench:
        rows = json.loads(Path(path).read_text())
        for m in sorted({r["method"] for r in rows}):
            r1 = next(r for r in rows if r["method"] == m and r["ranks"] == 1)
            r2 = next(r for r in rows if r["method"] == m and r["ranks"] == 2)
            print(f"\n{m} (D = {r1['dim']}, calibrated at N = {r1['ntraj']:.0e}: "
                  f"{(r1['step_ms'] - r1['replicated_ms']) / r1['ntraj'] * 1e3:.2f} us per trajectory per step, "
                  f"replicated {r1['replicated_ms']:.1f} ms, "
                  f"{sum(v['calls'] for v in r2['kinds'].values()):.0f} collectives per step, "
                  f"grid reduction {r2['kinds'].get('sum', {}).get('bytes', 0) / 1e3:.0f} kB)")
            print("| N | ranks | efficiency (this machine's alpha, beta) | limited by | "
                  "efficiency (cluster alpha, beta) | limited by |\n|---|---|---|---|---|---|")
            for N in a.ntraj:
                for P in a.ranks:
                    e_here, p_here = model(r1, r2, alpha, beta, P, N)
                    e_cl, p_cl = model(r1, r2, a.alpha, a.beta, P, N)
                    lim = lambda p: max((k for k in p if k != "compute"), key=p.get)
                    print(f"| {N:.0e} | {P} | {e_here:.2f} | {lim(p_here)} | {e_cl:.2f} | "
                          f"{lim(p_cl)} |")


if __name__ == "__main__":
    main()
