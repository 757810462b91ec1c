"""Communication layer: the driver only talks to a ``Comm``; serial runs use ``SerialComm``.

A ``Comm`` splits the swarm into contiguous blocks of global trajectory indices, reduces ensemble
sums and maxima for recording, and gathers per-trajectory final arrays on rank 0. Coupled methods
additionally gather what the field estimators need (see mqcd.fields).

The interface (``SerialComm`` here, ``MPIComm`` in mqcd/parallel/mpi.py):

=====================  ==========================================================================
``rank, size``         this process's rank and the number of ranks; ``is_root`` is ``rank == 0``
``local_range(n)``     [start, stop) of the global trajectory indices this rank owns (block_range)
``sum(a)``             elementwise sum of ``a`` over ranks (plain floating point: use it for
                       integer-valued counts; it is NOT order independent for general floats)
``sum_rows(a)``        exact, order-independent column sums of the per-trajectory rows ``a``
                       (n_local, ...) over all ranks, correctly rounded (mqcd.parallel.exactsum):
                       bit-for-bit the same for any number of ranks. Use it for ensemble means.
``max(a)``, ``any(f)`` elementwise maximum / logical or over ranks
``gather_rows(a)``     rank 0 gets the concatenation of the per-rank row blocks in rank order
                       (= global trajectory order); other ranks get None
``allgather_rows(a)``  every rank gets the concatenation (coupled methods: the whole swarm)
``scatter_rows(a, counts)``  inverse of gather_rows: rank 0 passes the whole array, rank r gets
                       rows of its block (``counts`` rows per rank; default block_range)
``bcast(obj)``         rank 0's Python object on every rank
``root_call(f)``       run ``f()`` on rank 0 only and return its result on every rank; an
                       exception raised by ``f`` is re-raised on every rank (no deadlock)
``guard()``            context manager: under MPI, an exception raised on some ranks only
                       aborts the whole job (MPI_Abort) instead of leaving the others waiting
=====================  ==========================================================================
"""
import contextlib

import numpy as np

from .exactsum import finalize, local_accumulator


def block_range(ntraj, size, rank):
    """Contiguous block [start, stop) of trajectory indices owned by ``rank`` (sizes differ by
    at most one)."""
    base, extra = divmod(ntraj, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def block_counts(ntraj, size):
    """Rows per rank of the block decomposition of ``ntraj`` rows over ``size`` ranks."""
    return np.array([b - a for a, b in (block_range(ntraj, size, r) for r in range(size))],
                    dtype=np.int64)


class CollectiveError(Exception):
    """Marker base: an error raised identically on every rank (safe to propagate under MPI)."""


def mark_collective(exc):
    """Mark ``exc`` as raised on every rank: ``guard()`` lets it propagate instead of aborting."""
    try:
        exc.mqcd_collective = True
    except AttributeError:       # pragma: no cover - exotic exception types
        pass
    return exc


def is_collective(exc):
    return isinstance(exc, CollectiveError) or getattr(exc, "mqcd_collective", False)


class SerialComm:
    """One process owns the whole swarm; every collective is the identity."""
    rank = 0
    size = 1
    is_root = True

    def local_range(self, ntraj):
        return block_range(ntraj, 1, 0)

    def sum(self, a):
        return np.asarray(a)

    def sum_rows(self, a):
        a = np.asarray(a, dtype=np.float64)
        return finalize(local_accumulator(a)).reshape(a.shape[1:])

    def max(self, a):
        return np.asarray(a)

    def any(self, flag):
        return bool(flag)

    def gather_rows(self, a):
        """Concatenate per-rank row blocks in rank order (rank 0 gets the whole array)."""
        return np.asarray(a)

    def allgather_rows(self, a):
        return np.asarray(a)

    def scatter_rows(self, a, counts=None):
        return np.asarray(a)

    def bcast(self, obj):
        return obj

    def barrier(self):
        pass

    def root_call(self, f, *args, share=True, **kw):
        return f(*args, **kw)

    def guard(self):
        return contextlib.nullcontext()
