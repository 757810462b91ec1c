"""Communication layer: the driver only talks to a ``Comm``; serial runs use ``SerialComm``.

A ``Comm`` splits the swarm into contiguous blocks of global trajectory indices, reduces ensemble
sums and maxima for recording, and gathers per-trajectory final arrays on rank 0. Coupled methods
additionally gather what the field estimators need (see mqcd.fields).
"""
import numpy as np


def block_range(ntraj, size, rank):
    """Contiguous block [start, stop) of trajectory indices owned by ``rank`` (sizes differ by <= 1)."""
    base, extra = divmod(ntraj, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class SerialComm:
    rank = 0
    size = 1
    is_root = True

    def local_range(self, ntraj):
        return block_range(ntraj, 1, 0)

    def sum(self, a):
        return np.asarray(a)

    def max(self, a):
        return np.asarray(a)

    def any(self, flag):
        return bool(flag)

    def gather_rows(self, a):
        """Concatenate per-rank row blocks in rank order (rank 0 gets the whole array)."""
        return np.asarray(a)

    def allgather_rows(self, a):
        return np.asarray(a)

    def bcast(self, obj):
        return obj
