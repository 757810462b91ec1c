"""The Gaussian-kernel estimator of the swarm fields behind the common interface.

Density and log-density derivatives are kernel sums over the whole swarm, the rho field is the
local quadratic regression of :func:`mqcd.fields.estimate_fields` (docs/theory/fields.md,
sections 1-5), the conservative divergence is the symmetric-pair form of
:func:`mqcd.fields.conservative.divergence_pairs`.

Under MPI every rank evaluates the fields and the conservative divergence at its own trajectories
from its own sources: the bandwidth rules use exact swarm sums and the grid moments are summed
over ranks in exact integer arithmetic (:mod:`mqcd.fields.distributed`); nothing per trajectory
is gathered on the grid path. The numerical path is chosen from the global swarm size, so any
number of ranks gives bit-for-bit the serial numbers.
"""
from __future__ import annotations

import numpy as np

from .base import SwarmEstimator
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
        self._x = None

    def estimate(self, sw, need=None):
        need = self.need if need is None else tuple(need)
        rho = sw.rho if any(t.startswith("rho") for t in need) else None
        f = estimate_fields(sw.x, rho, self.masses, self.fopts, need=need, workspace=self.ws,
                            comm=self.comm)
        self.last = f
        self.note_path(f)
        self._x = sw.x
        return f

    def divergence(self, f, G):
        return divergence_pairs(f, self._x, np.ascontiguousarray(G))
