"""Swarm fields under MPI: each rank evaluates the fields at its own trajectories from its own
sources, exchanging only what the estimate needs.

What is exchanged per field estimate (``N`` trajectories, ``D`` dofs, ``P`` ranks), on the
default path of the kernel estimator (grid path, Fisher or standard-deviation spread):

* swarm sums for the bandwidth rules (means, spreads, the Fisher information of the pilot
  density): exact, order-independent sums over ranks (``comm.sum_rows``,
  :mod:`mqcd.parallel.exactsum`), a few hundred bytes each;
* the swarm's extent (one max-reduction of ``2 D`` numbers) and its size;
* the deposited grid moments: each rank deposits its own trajectories' fields (weights, packed
  density matrices, the flux fields of the conservative divergence) in *fixed point*
  (:func:`mqcd.fields.grid.fixed_scales`: two int64 limbs per cell value, resolution ``2**-94``
  of the column's bound ``N max|F|``), the integer grids are summed over ranks with one
  ``Allreduce`` (integer addition is associative, so the sum does not depend on the number of
  ranks or the order), converted to float once, transformed on every rank and interpolated at
  the rank's own trajectories. Neither positions nor density matrices leave their rank.
  Where the transforms dominate (3D grids, :func:`mqcd.fields.grid.split_transforms`), the
  ranks share them out instead: each transforms its own run of output columns, interpolates
  them at all positions (all-gathered, ``D`` doubles per trajectory) and one ``Alltoallv``
  returns each rank its rows of every column.

The pair path (small swarms) all-gathers the source fields (and the positions) in global order
and each rank sums at its own targets. The tree path (``D > 3``, grids too large) all-gathers
the positions only, deals all targets to the ranks as slabs of equal neighbour work
(:func:`mqcd.fields.engine.slab_partition`), and each rank receives from their owners the source
fields within its slab's kernel support (``Alltoallv``); its neighbour lists are sorted per
target (:func:`mqcd.fields.kernels.neighbour_lists`), so each target's sum runs in ascending
source order whichever query built them.
The modal estimator (:mod:`mqcd.fields.density`) gathers its subsample of at most 20000 positions;
each rank finds the k nearest neighbours of its block of the subsample and one all-gather
assembles the pilot, on which every rank repeats the (sequential) persistence merge.

So every estimate is bit-for-bit the serial estimate, for any number of ranks.
"""
from __future__ import annotations

import numpy as np


class Distributed:
    """This rank's share of a distributed swarm: local positions, the communicator, and the
    swarm-wide size, row offset and extent (computed with two small collectives).

    Parameters
    ----------
    comm : mqcd.parallel.Comm
    x : (n, D) this rank's positions (bohr), its rows of the global (rank-ordered) swarm.
    lo, hi : (D,) extent to use instead of the swarm's (e.g. to cover evaluation points too).
    """

    def __init__(self, comm, x, lo=None, hi=None):
        self.comm = comm
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        n, D = self.x.shape
        counts = comm.allgather_rows(np.array([n], np.int64))
        self.n = int(counts.sum())
        self.offset = int(counts[:comm.rank].sum())
        self.rows = slice(self.offset, self.offset + n)
        if lo is None or hi is None:
            b = comm.max(np.concatenate([-self.x.min(axis=0), self.x.max(axis=0)]) if n
                         else np.full(2 * D, -np.inf))
            lo, hi = -b[:D], b[D:]
        self.lo, self.hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        self._all = None

    @property
    def x_all(self):
        """Positions of the whole swarm (all-gathered once, on first use: pair/tree paths)."""
        if self._all is None:
            self._all = self.comm.allgather_rows(self.x)
        return self._all

    @property
    def extent(self):
        """(2, D) array of the swarm's lower and upper corner (what the path choice needs)."""
        return np.stack([self.lo, self.hi])

    def with_targets(self, xt):
        """Copy whose extent also covers every rank's evaluation points ``xt``."""
        other = Distributed(self.comm, xt)
        out = Distributed.__new__(Distributed)
        out.__dict__.update(self.__dict__)
        out.lo, out.hi = np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi)
        return out

    def gather(self, F, lam=None):
        """Pair/tree paths: the source fields (and per-source factors) of the whole swarm."""
        F = self.comm.allgather_rows(np.ascontiguousarray(F))
        return F, None if lam is None else self.comm.allgather_rows(np.ascontiguousarray(lam))

    def subsample(self, step, ndof=1):
        """Local indices of this rank's rows among the global subsample of :func:`subsample_rows`
        (``ndof = 1``: the rows ``0, step, 2 step, ...``)."""
        if ndof == 1 or step <= 1:
            first = (-self.offset) % max(step, 1)
            return np.arange(first, self.x.shape[0], max(step, 1))
        return subsample_rows(self.offset, self.offset + self.x.shape[0], step, ndof) - self.offset


def _mix64(i):
    """splitmix64 finaliser of the integers ``i`` (uint64, wrapping arithmetic)."""
    z = np.asarray(i, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def subsample_rows(lo, hi, step, ndof):
    """Global indices in ``lo .. hi - 1`` of the deterministic 1-in-``step`` subsample of a swarm.

    One degree of freedom: every ``step``-th row, ``0, step, 2 step, ...`` (1D swarms are random
    or, for fluid elements, ordered quantiles: a stride is an even subsample of either). More
    degrees of freedom: the rows whose hashed global index (splitmix64) is divisible by ``step``,
    about ``(hi - lo) / step`` of them. A stride would not do there: the fluid-element start in
    D > 1 is a scrambled Halton sequence, whose coordinate ``j`` has base ``p_j`` (2, 3, 5, ...),
    and every ``p_j``-th point of it shares its leading digit in that coordinate, i.e. the strided
    subsample sits in one ``1/p_j`` slab of the distribution (measured: the Fisher spread, and
    with it the density bandwidth of that dof, came out 4.4x too small at N = 5e4 and 1e5 in 3D).
    Depends on the global index only, so the subsample is the same on any number of ranks.
    """
    if ndof == 1 or step <= 1:
        return np.arange(lo + (-lo) % max(step, 1), hi, max(step, 1), dtype=np.int64)
    g = np.arange(lo, hi, dtype=np.int64)
    with np.errstate(over="ignore"):
        keep = (_mix64(g) % np.uint64(step)) == 0
    return g[keep]


def exact_sums(a, comm=None):
    """Correctly rounded column sums of the rows of ``a`` over all ranks of ``comm`` (serial if
    None): independent of the number of ranks (:mod:`mqcd.parallel.exactsum`)."""
    a = np.asarray(a, dtype=np.float64)
    if comm is None:
        from ..parallel.exactsum import exact_column_sums
        return exact_column_sums(a)
    return comm.sum_rows(a)
