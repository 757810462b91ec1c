"""Distribution of the swarm over MPI ranks (serial fallback)."""
from .comm import SerialComm, block_range


def get_comm():
    """The communicator for this process: MPI when launched by mpirun/mpiexec with >1 ranks."""
    import os
    launched = any(k in os.environ for k in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                                             "MPI_LOCALNRANKS", "HYDRA_CONTROL_FD"))
    if not launched:
        return SerialComm()
    try:
        from .mpi import MPIComm
    except ImportError as exc:
        size = os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE") or "?"
        if size in ("1", "?"):
            return SerialComm()
        raise RuntimeError("mqcd was started under mpirun/mpiexec with several ranks, but mpi4py "
                           f"is not importable ({exc}); install the MPI extra: "
                           "pip install 'mqcd[mpi]'") from None
    return MPIComm()


__all__ = ["SerialComm", "block_range", "get_comm"]
