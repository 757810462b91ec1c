"""The Gaussian-kernel estimator of the swarm fields behind the common interface.

Density and log-density derivatives are kernel sums over the whole swarm, the rho field is the
local quadratic regression of :func:`mqcd.fields.estimate_fields` (docs/theory/fields.md,
sections 1-5), the conservative divergence is the symmetric-pair form of
:func:`mqcd.fields.conservative.divergence_pairs`.

Under MPI the positions (and density matrices, for the rho field) are all-gathered and every rank
evaluates the fields at its own trajectories, or at all of them when the conservative divergence
is needed (it couples every pair); the numerical path is chosen from the global swarm size, so any
number of ranks gives bit-for-bit the serial numbers.
"""
from __future__ import annotations

import numpy as np

from .base import SwarmEstimator, local_rows, restrict
from .conservative import divergence_pairs
from .estimate import FieldOptions, estimate_fields
from .workspace import FieldWorkspace

#: ``field_method`` values that select this estimator, with the kernel-sum path they fix
PATHS = {"kernel": "auto", "auto": "auto", "grid": "grid", "tree": "tree", "pairs": "pairs"}


def kernel_options(opts, need):
    """:class:`FieldOptions` from a method's deck options."""
    return FieldOptions(method=PATHS.get(opts.get("field_method", "auto"), "auto"),
                        density_scale=opts.get("density_scale", 1.0),
                        regression_scale=opts.get("regression_scale", 1.0),
                        ridge=opts.get("ridge", 0.1), adaptive=opts.get("adaptive", False),
                        density_deriv=3 if "logn3" in need else 1)


class KernelEstimator(SwarmEstimator):
    """Kernel sums over the whole swarm (docs/theory/fields.md)."""

    name = "kernel"
    has_divergence = True

    def __init__(self, opts, model, deck, comm, need, conservative=False):
        super().__init__(opts, model, deck, comm, need, conservative)
        self.fopts = kernel_options(opts, need)
        self.ws = FieldWorkspace()
        self._whole = None

    def estimate(self, sw, need=None):
        need = self.need if need is None else tuple(need)
        comm = self.comm
        x_all, rho_all = self.whole_swarm(sw, need)
        whole = self.conservative or comm.size == 1
        f = estimate_fields(x_all, rho_all, self.masses, self.fopts, need=need,
                            at=None if whole else sw.x, workspace=self.ws)
        self.last = f
        if whole:
            self._whole = (f, x_all)
            sl = local_rows(comm, sw.ntraj)
            return restrict(f, sl)
        self._whole = None
        return f

    def divergence(self, f, G):
        if self._whole is None:
            return None
        f_all, x_all = self._whole
        comm = self.comm
        G_all = comm.allgather_rows(np.ascontiguousarray(G))
        out = divergence_pairs(f_all, x_all, G_all)
        return out[local_rows(comm, G.shape[0])]
