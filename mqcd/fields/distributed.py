"""Swarm fields under MPI: each rank evaluates the fields at its own trajectories from its own
sources, exchanging only what the estimate needs.

What is exchanged per field estimate (``N`` trajectories, ``D`` dofs, ``P`` ranks):

* the positions of the whole swarm, ``N D`` doubles (one all-gather): the bandwidth rules, the
  path choice and the modes of :mod:`mqcd.fields.density` are computed from them on every rank,
  exactly as in a serial run (they are cheap next to the kernel sums);
* on the grid path (the default for ``D <= 3``), the deposited grid moments: each rank deposits
  its own trajectories' fields (weights, packed density matrices, flux fields of the
  conservative divergence) in *fixed point* (:func:`mqcd.fields.grid.fixed_scales`: two int64
  limbs per cell value, resolution ``2**-94`` of the column's bound ``N max|F|``), the integer
  grids are summed over ranks with one ``Allreduce`` (integer addition is associative, so the sum
  is independent of the number of ranks and of the order), converted to float once, transformed
  and interpolated at the rank's own trajectories. The density matrices never leave their rank;
* on the pair/tree paths (small swarms, ``D > 3``), the source fields are all-gathered in global
  order and each rank sums at its own targets (the per-target order of the sums is the serial
  one).

So every estimate is bit-for-bit the serial estimate, for any number of ranks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Distributed:
    """The whole swarm's positions and the communicator of a distributed kernel sum.

    Attributes
    ----------
    comm : mqcd.parallel.Comm
    x_all : (N, D) positions of the whole swarm in global order (bohr).
    lo, hi : (D,) bounds of all sources and all ranks' targets (bohr): the grid's extent.
    """

    comm: object
    x_all: np.ndarray
    lo: np.ndarray = None
    hi: np.ndarray = None

    def __post_init__(self):
        if self.lo is None:
            self.lo = self.x_all.min(axis=0)
        if self.hi is None:
            self.hi = self.x_all.max(axis=0)

    @property
    def n(self):
        return self.x_all.shape[0]

    def with_targets(self, xt):
        """Copy whose bounds also cover every rank's targets ``xt`` (one max-reduction)."""
        D = self.x_all.shape[1]
        b = self.comm.max(np.concatenate([-xt.min(axis=0), xt.max(axis=0)]) if xt.shape[0]
                          else np.full(2 * D, -np.inf))
        return Distributed(self.comm, self.x_all, np.minimum(self.lo, -b[:D]),
                           np.maximum(self.hi, b[D:]))

    def gather(self, F, lam=None):
        """Pair/tree paths: the source fields (and per-source factors) of the whole swarm."""
        F = self.comm.allgather_rows(np.ascontiguousarray(F))
        return F, None if lam is None else self.comm.allgather_rows(np.ascontiguousarray(lam))


def distributed(comm, x_all):
    """A :class:`Distributed` for ``comm``, or None for a serial communicator."""
    return None if comm is None or comm.size == 1 else Distributed(comm, x_all)
