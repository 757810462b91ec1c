"""Time per call of ``mqcd.fields.estimate_fields`` against the swarm size, per path.

Default workload: ``need = ("density", "rho2")`` (n, grad ln n, rho, d rho, d d rho), two
electronic states, a Gaussian swarm, default options, one reused ``FieldWorkspace``, numba on
``--threads`` threads (default 1: the one-core target). Reports the best of ``--repeat`` calls
(wall clock and process CPU time; the machine may be shared) and the growth exponent fitted
to the times at N >= 1e3. Prints markdown.

    python tools/bench_fields.py [--threads 1] [--repeat 5] [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    ap.add_argument("--need", default="density,rho2")
    args = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import numpy as np

    from mqcd.fields import FieldOptions, FieldWorkspace, estimate_fields

    need = tuple(args.need.split(","))
    if args.quick:
        plan = {1: {"grid": [100, 1000, 10000], "pairs": [100, 1000], "tree": [100, 1000]},
                3: {"grid": [100, 1000], "pairs": [100, 1000], "tree": [100, 1000]}}
    else:
        plan = {1: {"grid": [100, 1000, 10000, 100000, 1000000], "pairs": [100, 1000, 10000],
                    "tree": [100, 1000, 10000], "auto": [100, 1000, 10000, 100000, 1000000]},
                3: {"grid": [100, 1000, 10000, 100000], "pairs": [100, 1000, 10000],
                    "tree": [100, 1000, 10000], "auto": [100, 1000, 10000, 100000]}}

    def swarm(N, D, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(N, D))
        th = 0.6 + 0.4 * np.tanh(x[:, 0])
        psi = np.stack([np.cos(th), np.exp(1j * x.sum(1)) * np.sin(th)], -1)
        return x, psi[:, :, None] * psi[:, None, :].conj()

    print(f"numba threads: {os.environ['NUMBA_NUM_THREADS']}; need = {need}; 2 states; best of "
          f"{args.repeat}\n")
    for D, paths in plan.items():
        print(f"### D = {D}\n")
        print("| path | N | wall ms | cpu ms | used | ms per 1e5 traj |")
        print("|---|---:|---:|---:|---|---:|")
        fits = {}
        for path, Ns in paths.items():
            pts = []
            for N in Ns:
                x, rho = swarm(N, D)
                ws = FieldWorkspace()
                opts = FieldOptions(method=path)
                f = estimate_fields(x, rho, opts=opts, need=need, workspace=ws)  # compile / warm up
                reps = args.repeat if N <= 100000 else max(2, args.repeat // 2)
                wall, cpu = [], []
                for _ in range(reps):
                    t0, c0 = time.perf_counter(), time.process_time()
                    estimate_fields(x, rho, opts=opts, need=need, workspace=ws)
                    wall.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                w, c = min(wall) * 1e3, min(cpu) * 1e3
                pts.append((N, w))
                print(f"| {path} | {N:.0e} | {w:.2f} | {c:.2f} | {f.method} | {w * 1e5 / N:.1f} |",
                      flush=True)
            big = [(n, t) for n, t in pts if n >= 1000]
            if len(big) >= 2:
                lx = np.log([p[0] for p in big])
                ly = np.log([p[1] for p in big])
                fits[path] = np.polyfit(lx, ly, 1)[0]
        print()
        print("fitted growth exponent (t ~ N^a, N >= 1e3): "
              + ", ".join(f"{k}: a = {v:.2f}" for k, v in fits.items()) + "\n")


if __name__ == "__main__":
    main()
