"""Strong scaling of the coupled methods under MPI, with the time per step split into parts.

    python tools/bench_mpi_coupled.py [--ntraj 100000] [--steps 20] [--ranks 1 2]
                                      [--methods ehrenfest-qc qhd fssh-coupled] [--dim 1]

For every method and rank count the driver launches ``mpiexec -n P python
tools/bench_mpi_coupled.py --worker ...`` (one numba/BLAS thread per rank). A worker runs the
same loop as ``mqcd run`` (``mqcd.api._Runner``) for ``steps`` steps after a warm-up step
(numba compilation excluded) and reports from rank 0, as the maximum over ranks:

* ``step``: wall time per step of the loop (ms);
* ``fields``: time per step inside the field estimator (``estimate`` + ``divergence``), ms;
* ``replicated``: the part of ``fields`` spent in grid transforms and spectral products and in
  the modal estimator's subsample modes and per-mode spreads, ms: work every rank repeats on
  swarm-wide data, except the shares that are split over ranks (the kNN pilot of the modes, and
  in 3D the transforms, :func:`mqcd.fields.grid.split_transforms`), and the fluid-element
  estimator's geometry (position order, labels and label bins of the whole swarm);
* ``comm``: time per step inside the communication layer (``MPIComm.stats``: the integer grid
  Allreduce, exact sums, small reductions, the modal subsample all-gather), ms, with the bytes
  sent per rank; it includes waiting for the slowest rank;
* the peak resident memory per rank (``ru_maxrss``).

Parallel efficiency is ``t_1 / (P t_P)`` from the same invocation (with ``--repeat``, the median
over launches made in turn). Models: ``--dim 1`` tully1
(2 states, dt 0.5), ``--dim 3`` spin_boson with 3 modes (2 states; bath near its ground state,
widths 0.5 bohr as in tools/bench_coupled.py, dt 0.02: the stiffest mode has omega = 4.48
hartree and velocity Verlet diverges for dt >= 2/omega = 0.45 a.u.; qhd's quantum force at
N = 1e5 has omega_Q = 21 hartree at t = 0 and limits dt to ~0.017 once the third mode is squeezed
at t ~ 0.35, far beyond the benchmark's few steps; docs/ladder.md "Time stepping"). The machine load (``os.getloadavg``)
is printed before each measurement: on a shared 2-core machine a ratio is only meaningful when
the other core was idle; ``--control`` also runs P independent serial workers of N/P
trajectories at the same time, whose step time is what P ranks can reach on the machine as it is
(shared cores, memory bandwidth) without any communication. ``--repeat R`` launches every
measurement R times and keeps the fastest (noise on a shared VM only ever slows a run down).
``--json FILE`` keeps the rows for tools/mpi_cost_model.py.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_deck(method, ntraj, steps, dim, extra=None):
    if dim == 1:
        model = {"name": "tully1"}
        ini = {"position": [-4.0], "momentum": [10.0], "width": [1.0]}
        dt = 0.5
    else:
        model = {"name": "spin_boson", "modes": dim}
        ini = {"position": [0.0] * dim, "momentum": [0.0] * dim, "width": [0.5] * dim}
        dt = 0.02
    meth = {"name": method}
    meth.update(extra or {})
    return {"model": model, "initial": ini, "method": meth,
            "run": {"trajectories": ntraj, "dt": dt, "t_end": dt * steps, "seed": 1},
            "output": {"stride": steps + 1}}


def worker(a):
    from mqcd.api import _Runner
    from mqcd.io.deck import read_deck
    from mqcd.parallel import get_comm
    comm = get_comm()
    extra = json.loads(a.extra) if a.extra else None
    deck = read_deck(make_deck(a.method, a.ntraj, a.steps + 1, a.dim, extra))
    runner = _Runner(deck, comm, None)
    runner.start()
    est = getattr(runner.method, "estimator", None)
    acc = {"fields": 0.0, "replicated": 0.0}
    replicated_timers(acc)
    if est is not None:
        for name in ("estimate", "divergence"):
            add_timer(est, name, acc, "fields")
    runner.nsteps = runner.sw.step + 1                     # warm-up step (compilation)
    runner.loop()
    runner.nsteps = runner.sw.step + a.steps
    stats = getattr(comm, "stats", None)
    comm.barrier()
    if stats is not None:
        stats.reset()
    acc["fields"] = acc["replicated"] = 0.0
    t0 = time.perf_counter()
    runner.loop()
    loop = time.perf_counter() - t0
    comm.barrier()
    st = stats.as_dict() if stats is not None else {}
    comm_s = sum(v["seconds"] for v in st.values())
    comm_b = sum(v["bytes"] for v in st.values())
    import numpy as np
    mine = np.array([loop, acc["fields"], comm_s, comm_b,
                     resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                     acc["replicated"]])
    worst = comm.max(mine)
    if comm.is_root:
        n = a.steps
        out = {"method": a.method, "ranks": comm.size, "ntraj": a.ntraj, "dim": a.dim,
               "step_ms": 1e3 * worst[0] / n, "fields_ms": 1e3 * worst[1] / n,
               "comm_ms": 1e3 * worst[2] / n, "comm_bytes_per_step": worst[3] / n,
               "maxrss_mb": worst[4], "estimator": type(est).__name__ if est else "",
               "replicated_ms": 1e3 * worst[5] / n,
               "kinds": {k: {"ms": v["seconds"] / n * 1e3, "calls": v["calls"] / n,
                             "bytes": v["bytes"] / n} for k, v in st.items()}}
        print("BENCH_JSON " + json.dumps(out), flush=True)


def add_timer(obj, name, acc, key):
    """Replace ``obj.name`` by a wrapper that adds its wall time to ``acc[key]``."""
    f = getattr(obj, name)

    def timed(*args, **kw):
        t = time.perf_counter()
        try:
            return f(*args, **kw)
        finally:
            acc[key] += time.perf_counter() - t
    setattr(obj, name, timed)


def replicated_timers(acc):
    """Wrap the parts of a field estimate that every rank repeats on swarm-wide data (grid
    transforms and spectral products, the modal estimator's subsample pilot and per-mode
    spreads) with timers adding to ``acc["replicated"]``."""
    import scipy.fft

    from mqcd.fields import density, grid

    def wrap(mod, name):
        add_timer(mod, name, acc, "replicated")

    class FFT:                                  # grid.py calls sfft.rfftn / sfft.irfftn
        rfftn = staticmethod(scipy.fft.rfftn)
        irfftn = staticmethod(scipy.fft.irfftn)
        rfftfreq = staticmethod(scipy.fft.rfftfreq)
        fftfreq = staticmethod(scipy.fft.fftfreq)
        next_fast_len = staticmethod(scipy.fft.next_fast_len)
    wrap(FFT, "rfftn")
    wrap(FFT, "irfftn")
    grid.sfft = FFT
    for name in ("_spec_mul", "fixed_to_float"):
        wrap(grid, name)
    for name in ("sample_modes", "mode_widths"):
        wrap(density, name)
    from mqcd.fields.fluid import FluidFields1D       # position order, labels, label bins
    wrap(FluidFields1D, "geometry")


def mpiexec():
    p = Path(sys.executable).parent / "mpiexec"
    return str(p) if p.exists() else "mpiexec"


def launch(method, ranks, a, ntraj=None, copies=1):
    """Run the worker on ``ranks`` ranks; with ``copies > 1``, that many independent 1-rank
    workers at the same time (the control: what the machine gives without communication)."""
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, __file__, "--worker", "--method", method,
           "--ntraj", str(ntraj or a.ntraj), "--steps", str(a.steps), "--dim", str(a.dim)]
    if a.extra:
        cmd += ["--extra", a.extra]
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(copies)]
    res = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode:
            raise RuntimeError(out + err)
        line = [ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")][-1]
        res.append(json.loads(line[len("BENCH_JSON "):]))
    return max(res, key=lambda r: r["step_ms"])


def main():
    import numpy as np
    ap = argparse.ArgumentParser()
    ap.add_argument("--ntraj", type=int, default=100000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dim", type=int, default=1)
    ap.add_argument("--methods", nargs="+", default=["ehrenfest-qc", "qhd", "fssh-coupled"])
    ap.add_argument("--extra", default="", help="JSON of extra [method] keys")
    ap.add_argument("--json", default="")
    ap.add_argument("--control", action="store_true",
                    help="also run P independent serial workers of N/P trajectories at once")
    ap.add_argument("--repeat", type=int, default=1,
                    help="launch every measurement this many times and keep the fastest")
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--method", default="ehrenfest-qc")
    a = ap.parse_args()
    if a.worker:
        return worker(a)
    rows = []
    print(f"N = {a.ntraj}, D = {a.dim}, {a.steps} steps per measurement", flush=True)
    print("| method | estimator | ranks | ms/step | fields ms/step | replicated ms/step | "
          "comm ms/step | comm share | MB sent/rank/step | efficiency | peak RSS/rank (MB) "
          "| load |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    for m in a.methods:
        # --repeat: the rank counts are launched in turn R times (1, 2, 1, 2, ...), so that the
        # paired runs see the same machine; ms/step is the fastest launch, the efficiency the
        # median of the paired ratios t_1 / (P t_P) (a shared VM's speed drifts by 20-30 %
        # over minutes)
        runs = {r: [] for r in a.ranks}
        ctrl = {r: [] for r in a.ranks}
        load = {}
        for _ in range(a.repeat):
            for r in a.ranks:
                load.setdefault(r, os.getloadavg()[0])
                runs[r].append(launch(m, r, a))
                if a.control and r > 1:
                    ctrl[r].append(launch(m, 1, a, ntraj=a.ntraj // r, copies=r)["step_ms"])
        r0 = a.ranks[0]
        for r in a.ranks:
            res = dict(min(runs[r], key=lambda v: v["step_ms"]))
            eff = float(np.median([r0 * b["step_ms"] / (r * c["step_ms"])
                                   for b, c in zip(runs[r0], runs[r])]))
            res["efficiency"] = eff
            res["step_ms_all"] = [v["step_ms"] for v in runs[r]]
            if ctrl[r]:
                res["control_ms"] = min(ctrl[r])
                res["t_over_control"] = float(np.median([c["step_ms"] / t for c, t in
                                                         zip(runs[r], ctrl[r])]))
            rows.append(res)
            print(f"| {m} | {res['estimator']} | {r} | {res['step_ms']:.1f} | "
                  f"{res['fields_ms']:.1f} | {res['replicated_ms']:.1f} | {res['comm_ms']:.2f} | "
                  f"{res['comm_ms'] / res['step_ms']:.1%} | "
                  f"{res['comm_bytes_per_step'] / 1e6:.2f} | {eff:.2f} | "
                  f"{res['maxrss_mb']:.0f} | {load[r]:.2f} |"
                  + (f" control {res['control_ms']:.1f} ms/step: t_P / t_control = "
                     f"{res['t_over_control']:.2f}" if "control_ms" in res else ""),
                  flush=True)
            if a.json:
                Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
