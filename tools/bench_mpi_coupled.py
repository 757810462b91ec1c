"""Strong scaling of a coupled method under MPI (wall time of whole runs, 1 and 2 ranks).

    python tools/bench_mpi_coupled.py [--ntraj 10000] [--steps 200] [--ranks 1 2]

geometric-ehrenfest-qc on tully1 with both force estimators: "conservative" (fields evaluated on
the whole swarm by every rank: exact zero-mean force, no parallel speed-up of the field part) and
"pointwise" (each rank evaluates the fields at its own trajectories). Per step, every rank
all-gathers positions and density matrices: N (D + 2 ns^2) doubles = 10^4 * 9 * 8 B = 720 kB for
10^4 trajectories and two states. Wall times include start-up (about 1 s), measured as the
difference between a run of `steps` steps and one of 10 steps, after a warm-up run per rank
count (numba compilation).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DECK = """[model]
name = "tully1"
[initial]
position = [-2.0]
momentum = [10.0]
width = [1.0]
[method]
name = "geometric-ehrenfest-qc"
force_form = "{form}"
[run]
trajectories = {n}
dt = 0.5
t_end = {t_end}
seed = 1
[output]
stride = 50
"""


def mpiexec():
    p = Path(sys.executable).parent / "mpiexec"
    return str(p) if p.exists() else "mpiexec"


def wall(n, ranks, form, steps, tmp):
    deck = Path(tmp) / f"d_{form}_{steps}.toml"
    deck.write_text(DECK.format(form=form, n=n, t_end=0.5 * steps))
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "mqcd", "run", str(deck), "-o",
           str(Path(tmp) / f"o_{form}_{ranks}_{steps}.h5"), "--quiet", "--force"]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ntraj", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    print("| force_form | ranks | ms per step | parallel efficiency |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for r in a.ranks:                       # warm-up: numba compilation and caches
            for form in ("conservative", "pointwise"):
                wall(200, r, form, 10, tmp)
        for form in ("conservative", "pointwise"):
            base = None
            for r in a.ranks:
                per = (wall(a.ntraj, r, form, a.steps, tmp) - wall(a.ntraj, r, form, 10, tmp)) / (
                    a.steps - 10)
                base = base or per * a.ranks[0]
                print(f"| {form} | {r} | {1e3 * per:.2f} | {base / (r * per):.2f} |", flush=True)


if __name__ == "__main__":
    main()
