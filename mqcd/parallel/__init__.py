"""Distribution of the swarm over MPI ranks (serial fallback).

``get_comm()`` returns ``SerialComm()`` for a plain run and ``MPIComm()`` when the process was
started by an MPI launcher (mpirun/mpiexec/srun) with several ranks. See docs/performance.md
("MPI and checkpoints") for what is exchanged per step.
"""
import os
import sys

from .comm import (CollectiveError, SerialComm, block_counts, block_range, is_collective,
                   mark_collective)

# environment variables set by the common launchers (MPICH/hydra, Open MPI, PMIx, MVAPICH, srun)
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
_LAUNCH_VARS = _SIZE_VARS + ("PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS", "HYDRA_CONTROL_FD",
                             "OMPI_COMM_WORLD_RANK")


def launcher_size(environ=None):
    """Ranks announced by an MPI launcher: None if not launched by one, 0 if the size is unknown."""
    env = os.environ if environ is None else environ
    if not any(k in env for k in _LAUNCH_VARS):
        return None
    for k in _SIZE_VARS:
        v = env.get(k, "")
        if v.isdigit():
            return int(v)
    return 0


def get_comm():
    """The communicator for this process: MPI when launched by mpirun/mpiexec with >1 ranks.

    * not launched by an MPI launcher: ``SerialComm`` (mpi4py is not even imported);
    * launched with one rank: ``SerialComm`` (mpi4py optional);
    * launched with several ranks: ``MPIComm``; without a working mpi4py this raises a
      RuntimeError telling how to install it, instead of running P identical serial copies that
      would all write the same file;
    * several processes that each see an MPI world of size 1 (an ``mpiexec`` from another MPI
      library than the one mpi4py was built against): RuntimeError naming the fix.
    """
    size = launcher_size()
    if size is None:
        return SerialComm()
    try:
        from .mpi import MPIComm
        comm = MPIComm()
    except (ImportError, RuntimeError, OSError) as exc:
        if size == 1:
            return SerialComm()
        if size == 0:
            sys.stderr.write(f"mqcd: started by an MPI launcher but mpi4py is unavailable ({exc}); "
                             "running serially\n")
            return SerialComm()
        raise RuntimeError(f"mqcd was started under mpirun/mpiexec with {size} ranks, but mpi4py "
                           f"is not importable ({exc}); install the MPI extra: "
                           "pip install 'mqcd[mpi]' (mpi4py and mpich), and launch with the "
                           "mpiexec next to that python") from None
    if comm.size == 1:
        if size > 1:
            here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
            raise RuntimeError(f"the MPI launcher started {size} processes but MPI reports a world "
                               "of one rank in each: the mpiexec used belongs to a different MPI "
                               "library than the one mpi4py was built with; use the mpiexec of "
                               f"mpi4py's MPI (e.g. {here} if you installed 'mqcd[mpi]')")
        return SerialComm()
    return comm


__all__ = ["SerialComm", "CollectiveError", "block_range", "block_counts", "get_comm",
           "is_collective", "launcher_size", "mark_collective"]
