"""Memory and disk estimates, checked before a run computes anything.

A run that cannot fit is refused up front with the estimate (bytes needed vs available) and the
deck key that sets its size, instead of failing with a MemoryError (or being killed by the
kernel) after the swarm was half built, or with a full disk after hours of compute.

The estimates are *lower bounds*: they count the arrays the run certainly holds at its peak, not
numpy temporaries, so a refusal is never a false alarm; a run close to the limit may still run out
of memory. What is counted (bytes; ``ns`` states, ``D`` nuclear dof, ``it`` the model's dtype size):

* per trajectory, on its rank: x, p, F (3 D x 8), rho (16 ns^2), H, H_prev, dH ((2 + D) ns^2 it), the
  adiabatic cache E, V (8 ns + it ns^2), keys, index, active state and initial energy (40), one
  record row ((2 ns + 2 D + 6) x 8) and, at the start, the second H, dH and V of the initial
  sampling; plus what the method declares with an optional ``memory_bytes(n_local, ntraj)``;
* on rank 0, for all N trajectories: the gathered final arrays (x, p, rho adiabatic and diabatic,
  state weights, energy drift) and their in-memory HDF5 image (x 2); with checkpoints also the
  gathered checkpoint state and its image (x 2);
* the time series (``stop = "time"`` only; with ``"exit"`` t_end is an upper bound): one row of
  about 2 kB (Python objects) per record.

Under MPI every rank checks its own node: ranks on the node x its per-rank share (+ rank 0's
gathers) against the memory available there.

Available memory: the smaller of ``MemAvailable`` (/proc/meminfo) and the container limit (cgroup
v2 ``memory.max - memory.current``, or v1 ``memory.limit_in_bytes - memory.usage_in_bytes``);
``os.sysconf`` where /proc is missing.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..io.schema import DeckError


class ResourceError(DeckError):
    """The run would need more memory or disk than is available (refused before computing)."""


def format_bytes(n):
    """``1.5 GB`` style (decimal units)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000.0
    return f"{n:.3g} EB"    # pragma: no cover


def _read_int(path):
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory():
    """``(bytes, source)``: memory this process can still allocate on this node, and where the
    number comes from (for the message)."""
    best, source = None, ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    best, source = int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
                    break
    except OSError:
        pass
    if best is None:
        try:
            best = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            source = "free physical pages (sysconf)"
        except (ValueError, OSError, AttributeError):    # pragma: no cover - exotic systems
            return None, "unknown"
    for limit, usage, name in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current",
                                "cgroup v2 memory.max"),
                               ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                "/sys/fs/cgroup/memory/memory.usage_in_bytes",
                                "cgroup v1 memory limit")):
        lim, use = _read_int(limit), _read_int(usage)
        if lim is not None and use is not None and lim - use < best:
            best, source = max(lim - use, 0), name
    return best, source


# ----------------------------------------------------------------------------- swarm runs
def swarm_memory(model, ntraj, nlocal, *, nrec=0, checkpoints=False, method=None, root=True):
    """Lower bound of the memory (bytes) of one rank of a swarm run, by part.

    Parameters
    ----------
    model : Model
        Gives ``nstates``, ``ndof`` and ``dtype``.
    ntraj, nlocal : int
        Trajectories in the whole swarm and on this rank.
    nrec : int
        Records of the time series held in memory.
    checkpoints : bool
        Whether rank 0 gathers checkpoints.
    method : Method, optional
        May declare ``memory_bytes(nlocal, ntraj)`` (its own per-rank arrays, bytes).
    root : bool
        Include rank 0's gathers.

    Returns
    -------
    dict ``{part: bytes}`` with ``"swarm"``, ``"final"``, ``"checkpoint"``, ``"records"``,
    ``"method"``.
    """
    ns, D = int(model.nstates), int(model.ndof)
    it = np.dtype(model.dtype).itemsize
    per = (3 * D * 8 + 16 * ns * ns + (2 + D) * ns * ns * it + 8 * ns + it * ns * ns + 40
           + (2 * ns + 2 * D + 6) * 8
           + (1 + D) * ns * ns * it + it * ns * ns + 2 * D * 8)     # initial sampling
    final = 2 * D * 8 + 2 * 16 * ns * ns + 8 * ns + 8
    ckpt = 3 * D * 8 + 16 * ns * ns + 8 * ns + it * ns * ns + 40
    parts = {"swarm": per * int(nlocal),
             "final": 2 * final * int(ntraj) if root else 0,
             "checkpoint": 2 * ckpt * int(ntraj) if (root and checkpoints) else 0,
             "records": 2000 * int(nrec) if root else 0,
             "method": 0}
    extra = getattr(method, "memory_bytes", None)
    if callable(extra):
        parts["method"] = int(extra(int(nlocal), int(ntraj)))
    return parts


def swarm_disk(model, ntraj, nrec=0):
    """Lower bounds (bytes) of the output file and of one checkpoint of a swarm run."""
    p = swarm_memory(model, ntraj, 0, nrec=nrec, checkpoints=True)
    return p["final"] // 2 + 200 * int(nrec), p["checkpoint"] // 2


def ranks_on_this_node(comm):
    """MPI ranks that share this node with this rank (1 for a serial run). Collective."""
    mpi = getattr(comm, "comm", None)
    if mpi is None or getattr(comm, "size", 1) == 1:
        return 1
    from mpi4py import MPI
    local = mpi.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def refuse_if_too_big(parts, key, hint, available=None, ranks=1):
    """Raise :class:`ResourceError` when ``ranks * parts["swarm" + "method"] + the rest`` exceeds
    the available memory; ``key`` names the deck key that sets the size (e.g.
    ``"[run] trajectories = 1000000000000"``)."""
    avail, source = available_memory() if available is None else (available, "given")
    if avail is None:
        return
    need = ranks * (parts.get("swarm", 0) + parts.get("method", 0)) + sum(
        v for k, v in parts.items() if k not in ("swarm", "method"))
    if need <= avail:
        return
    detail = ", ".join(f"{k} {format_bytes(v)}" for k, v in parts.items() if v)
    on = f" for {ranks} ranks on this node" if ranks > 1 else ""
    raise ResourceError(f"{key} needs at least {format_bytes(need)} of memory{on} ({detail}), "
                        f"but only {format_bytes(avail)} are available ({source}): {hint}")


def refuse_if_disk_full(folder, need, what):
    """Raise :class:`ResourceError` when the file system of ``folder`` has less than ``need``
    bytes free (``what`` names the files, e.g. ``"the output out.h5 and its checkpoint"``)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if need > free:
        raise ResourceError(f"{what}: at least {format_bytes(need)} of disk space needed, but the "
                            f"file system of {folder} has only {format_bytes(free)} free: free some "
                            "space or write elsewhere (-o / [output] file)")


# ----------------------------------------------------------------------------- exact grid
def exact_memory(plan, model, store_density=False, nrec=0):
    """Lower bound (bytes) of the split-operator solver's arrays on the grid ``plan``.

    Per grid point: the mesh, the stacked positions and the momentum grid (3 D x 8), the kinetic
    energy, absorbing rate and adiabatic energies (8 (2 + ns)), the model's H and dH on the grid
    (it ns^2 (1 + D)), the eigenvectors, the potential propagator and the eigensolver's copy
    (3 x 16 ns^2), the wavefunction and two work arrays (3 x 16 ns); plus the stored densities
    (8 per point per record) when ``store_density``.
    """
    G = int(np.prod([int(n) for n in plan.npoints], dtype=object))
    ns, D = int(model.nstates), int(plan.ndof)
    it = np.dtype(model.dtype).itemsize
    per = 3 * D * 8 + 8 * (2 + ns) + it * ns * ns * (1 + D) + 3 * 16 * ns * ns + 3 * 16 * ns + 16
    return {"grid": per * G, "density": 8 * G * int(nrec) if store_density else 0}
