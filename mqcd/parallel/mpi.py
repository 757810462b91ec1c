"""MPI communicator (mpi4py), same interface as :class:`mqcd.parallel.comm.SerialComm`.

Every collective on arrays uses mpi4py's buffer interface (upper-case methods: ``Allreduce``,
``Gatherv``, ``Allgatherv``, ``Scatterv``) on contiguous numpy arrays, with the MPI datatype
derived from the numpy dtype (float64, complex128, int64, uint64, bool, ...): no pickling of
array data. Only ``bcast`` and ``root_call`` (small Python objects: metadata, exceptions) pickle.

Row blocks: rank r owns global trajectories ``block_range(ntraj, size, r)``; gathers concatenate
in rank order, which is global index order. Per-rank row counts are exchanged with one
``Allgather`` of an int64 before each ``Gatherv``/``Allgatherv`` (blocks may be uneven, e.g.
after trajectories were dropped).

``stats`` counts calls, bytes sent by this rank and seconds spent per collective kind; the
benchmark tools/bench_mpi.py reads it to report the communication per step.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import sys
import time
import traceback
from collections import defaultdict

import numba
import numpy as np
from mpi4py import MPI
from mpi4py.util.dtlib import from_numpy_dtype

from .comm import block_counts, block_range, is_collective, mark_collective
from .exactsum import finalize, local_accumulator


class CommStats:
    """Per-collective counters: calls, bytes contributed by this rank, wall seconds."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.calls = defaultdict(int)
        self.bytes = defaultdict(int)
        self.seconds = defaultdict(float)

    def add(self, kind, nbytes, seconds):
        self.calls[kind] += 1
        self.bytes[kind] += int(nbytes)
        self.seconds[kind] += seconds

    def as_dict(self):
        return {k: {"calls": self.calls[k], "bytes": self.bytes[k], "seconds": self.seconds[k]}
                for k in sorted(self.calls)}


def _mpi_type(dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return MPI.C_BOOL
    return from_numpy_dtype(dtype)


def share_cores(comm):
    """Numba threads per rank = usable cores / ranks on this node (at least 1), unless the user set
    NUMBA_NUM_THREADS; otherwise every rank would start one thread per core and oversubscribe the
    node. Returns the thread count in use."""
    if "NUMBA_NUM_THREADS" not in os.environ:
        local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, (cores or 1) // local)))
    return numba.get_num_threads()


class MPIComm:
    """Distribution of the swarm over the ranks of an MPI communicator (default COMM_WORLD)."""

    def __init__(self, comm=None):
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.is_root = self.rank == 0
        self.stats = CommStats()
        self.threads = share_cores(self.comm)


    def __repr__(self):
        return f"<MPIComm rank {self.rank} of {self.size}>"

    def local_range(self, ntraj):
        return block_range(ntraj, self.size, self.rank)

    # ------------------------------------------------------------------ reductions
    def _allreduce(self, a, op, kind):
        a = np.asarray(a)
        if a.dtype == np.bool_:
            a = a.astype(np.int64)
        buf = np.ascontiguousarray(a)
        out = np.empty_like(buf)
        t = time.perf_counter()
        self.comm.Allreduce(buf, out, op=op)
        self.stats.add(kind, buf.nbytes, time.perf_counter() - t)
        return out.reshape(a.shape)

    def sum(self, a):
        """Elementwise sum over ranks (plain floating point; exact for integer-valued data)."""
        return self._allreduce(a, MPI.SUM, "sum")

    def max(self, a):
        return self._allreduce(a, MPI.MAX, "max")

    def any(self, flag):
        return bool(self._allreduce(np.array([1 if flag else 0], np.int32), MPI.MAX, "any")[0])

    def sum_rows(self, a):
        """Exact column sums of the rows of ``a`` over all ranks (see mqcd.parallel.exactsum)."""
        a = np.asarray(a, dtype=np.float64)
        acc = local_accumulator(a)
        out = np.empty_like(acc)
        t = time.perf_counter()
        self.comm.Allreduce(acc, out, op=MPI.SUM)
        self.stats.add("sum_rows", acc.nbytes, time.perf_counter() - t)
        return finalize(out).reshape(a.shape[1:])

    # ------------------------------------------------------------------ row blocks
    def _row_counts(self, nrows):
        mine = np.array([nrows], dtype=np.int64)
        counts = np.empty(self.size, dtype=np.int64)
        self.comm.Allgather(mine, counts)
        return counts

    @staticmethod
    def _displs(counts):
        d = np.zeros_like(counts)
        np.cumsum(counts[:-1], out=d[1:])
        return d

    def gather_rows(self, a):
        """Rank 0: the row blocks of all ranks concatenated in rank order; other ranks: None."""
        a = np.ascontiguousarray(a)
        t = time.perf_counter()
        counts = self._row_counts(a.shape[0])
        row = int(np.prod(a.shape[1:], dtype=np.int64))
        mt = _mpi_type(a.dtype)
        if self.is_root:
            out = np.empty((int(counts.sum()),) + a.shape[1:], dtype=a.dtype)
            c = counts * row
            self.comm.Gatherv([a, a.size, mt], [out, c, self._displs(c), mt], root=0)
        else:
            self.comm.Gatherv([a, a.size, mt], None, root=0)
            out = None
        self.stats.add("gather_rows", a.nbytes, time.perf_counter() - t)
        return out

    def allgather_rows(self, a):
        """Every rank: the row blocks of all ranks concatenated in rank order."""
        a = np.ascontiguousarray(a)
        t = time.perf_counter()
        counts = self._row_counts(a.shape[0])
        row = int(np.prod(a.shape[1:], dtype=np.int64))
        mt = _mpi_type(a.dtype)
        out = np.empty((int(counts.sum()),) + a.shape[1:], dtype=a.dtype)
        c = counts * row
        self.comm.Allgatherv([a, a.size, mt], [out, c, self._displs(c), mt])
        self.stats.add("allgather_rows", a.nbytes, time.perf_counter() - t)
        return out

    def alltoall_blocks(self, blocks, recv_sizes):
        """Personalised exchange: ``blocks[q]`` (this rank's flat float64 array for rank q) goes
        to rank q; returns the list of the flat arrays received from ranks 0..P-1, of the sizes
        ``recv_sizes`` (which the caller knows). One ``Alltoallv``."""
        t = time.perf_counter()
        send = np.concatenate([np.ascontiguousarray(b, dtype=np.float64).ravel()
                               for b in blocks]) if blocks else np.zeros(0)
        sc = np.array([np.asarray(b).size for b in blocks], dtype=np.int64)
        rc = np.asarray(recv_sizes, dtype=np.int64)
        recv = np.empty(int(rc.sum()))
        self.comm.Alltoallv([send, sc, self._displs(sc), MPI.DOUBLE],
                            [recv, rc, self._displs(rc), MPI.DOUBLE])
        self.stats.add("alltoall", send.nbytes, time.perf_counter() - t)
        d = self._displs(rc)
        return [recv[d[r]:d[r] + rc[r]] for r in range(self.size)]

    def scatter_rows(self, a, counts=None):
        """Inverse of gather_rows: rank 0 passes the whole array (others anything, e.g. None);
        rank r receives ``counts[r]`` rows (default: the block decomposition of all rows)."""
        t = time.perf_counter()
        meta = self.comm.bcast((a.shape, a.dtype.str) if self.is_root else None, root=0)
        shape, dtype = meta[0], np.dtype(meta[1])
        counts = block_counts(shape[0], self.size) if counts is None else np.asarray(counts,
                                                                                      np.int64)
        if int(counts.sum()) != shape[0]:
            raise ValueError(f"scatter_rows: counts sum to {int(counts.sum())}, array has "
                             f"{shape[0]} rows")
        row = int(np.prod(shape[1:], dtype=np.int64))
        mt = _mpi_type(dtype)
        out = np.empty((int(counts[self.rank]),) + tuple(shape[1:]), dtype=dtype)
        c = counts * row
        send = [np.ascontiguousarray(a), c, self._displs(c), mt] if self.is_root else None
        self.comm.Scatterv(send, [out, out.size, mt], root=0)
        self.stats.add("scatter_rows", out.nbytes, time.perf_counter() - t)
        return out

    # ------------------------------------------------------------------ objects and errors
    def bcast(self, obj):
        return self.comm.bcast(obj, root=0)

    def barrier(self):
        self.comm.Barrier()

    def root_call(self, f, *args, share=True, **kw):
        """Run ``f`` on rank 0; its exception is re-raised on every rank.

        With ``share`` the result is broadcast to every rank, otherwise other ranks get None.
        """
        res = err = None
        if self.is_root:
            try:
                res = f(*args, **kw)
            except Exception as exc:       # noqa: BLE001 - re-raised below on every rank
                err = exc
                try:
                    pickle.dumps(err)
                except Exception:          # noqa: BLE001
                    err = RuntimeError(f"{type(exc).__name__}: {exc}")
        err = self.comm.bcast(err, root=0)
        if err is not None:
            raise mark_collective(err)
        return self.comm.bcast(res, root=0) if share else res

    @contextlib.contextmanager
    def guard(self):
        """Errors raised on every rank propagate; any other error aborts all ranks (MPI_Abort).

        Without this, a rank failing alone would leave the others blocked in the next collective.
        """
        try:
            yield
        except BaseException as exc:
            if self.size == 1 or is_collective(exc):
                raise
            traceback.print_exc()
            sys.stderr.write(f"mqcd: error on MPI rank {self.rank} of {self.size}; aborting the "
                             "job so the other ranks do not wait forever\n")
            sys.stderr.flush()
            self.comm.Abort(1)
