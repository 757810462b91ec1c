"""One interface for every way the swarm knows its fields.

A coupled method asks an *estimator* for the fields at its (this rank's) trajectories and never
knows which estimator it got (design note "Swarm fields: one interface, several estimators"):

=================  =====================================================================
``field_method``   estimator
=================  =====================================================================
``kernel``         Gaussian-kernel estimates from the whole swarm (mqcd/fields/kernel.py;
                   paths ``grid``/``tree``/``pairs``, also accepted as ``field_method``)
``fluid``          fluid elements, 1D: density from the spacing of ordered elements, local
                   fits of the single-valued rho field (mqcd/fields/fluid.py)
``exact``          the oracle: the exact split-operator wavefunction propagated alongside
                   the swarm (mqcd/fields/oracle.py)
``modes``          kernel sums with the normal-reference bandwidth of each mode of the
                   swarm, so no kernel spans separated packets (mqcd/fields/density.py)
=================  =====================================================================

Every estimator returns a :class:`mqcd.fields.FieldEstimate` (atomic units; ``n`` bohr^-D,
``d^k ln n`` bohr^-k, ``rho`` and its derivatives bohr^-k) and may offer a *conservative
divergence* ``(1/n) sum_i d_i (n G_i)`` whose weighted swarm sum vanishes identically, used for
the forces that are divergences in the exact theory (MB(64), MB(68)): then those forces cannot
change the total nuclear momentum.
"""
from __future__ import annotations

import numpy as np

from .engine import is_pairs_fallback


class SwarmEstimator:
    """Base class: subclasses set ``name`` and implement :meth:`estimate`.

    Parameters
    ----------
    opts : dict
        The method's validated ``[method]`` options.
    model : mqcd.models.Model
    deck : mqcd.io.deck.Deck
    comm : mqcd.parallel.Comm
    need : tuple of str
        Field tokens ("density", "logn3", "rho", "rho2") the method will ask for.
    conservative : bool
        The method will call :meth:`divergence` (the estimator may then keep whole-swarm data).
    """

    name = ""
    #: True if :meth:`divergence` returns a conservative estimate (else None)
    has_divergence = False

    def __init__(self, opts, model, deck, comm, need, conservative=False):
        self.opts, self.model, self.deck, self.comm = opts, model, deck, comm
        self.masses = np.asarray(model.masses, dtype=np.float64)
        self.need = tuple(need)
        self.conservative = bool(conservative)
        self.last = None
        self.all_pairs_steps = 0          # estimates that fell back to all pairs (O(N^2))
        self.all_pairs_reason = ""

    def setup(self, sw):
        """Called once before the first estimate (labels, grids)."""

    def estimate(self, sw, need=None):
        """:class:`mqcd.fields.FieldEstimate` at this rank's trajectories (``need``: tokens,
        default the constructor's)."""
        raise NotImplementedError

    def note_path(self, f):
        """Count an estimate ``f`` that fell back to summing over all pairs of a swarm too large
        for that (``N * M >= pairs_below**2``: the grid would need too many cells and the tree
        too many neighbours), O(N^2) per step; the run reports it (``run_problems``)."""
        reason = getattr(f, "method_reason", "") or ""
        if is_pairs_fallback(getattr(f, "method", None), reason):
            self.all_pairs_steps += 1
            self.all_pairs_reason = reason

    def divergence(self, f, G):
        """Conservative ``(1/n) sum_i d_i (n G[:, i, k])`` at this rank's trajectories, (N, K),
        or None when the estimator has none (the method then uses the pointwise form)."""
        return None

    def extra_force(self, sw, f):
        """A force of the estimator's own (hartree/bohr, (N_local, D)) added to the correction
        force, or None (the fluid-element estimator damps its grid-scale noise this way)."""
        return None

    def records(self):
        """Diagnostics for the output: {name: (value, units)}."""
        f = self.last
        D = self.masses.size
        out = {}
        if f is not None:
            h = f.h_density if f.h_density is not None else np.full(D, np.nan)
            out["diagnostics/bandwidth_density"] = (np.asarray(h, float).reshape(-1)[:D], "bohr")
            hr = f.h_regression if f.h_regression is not None else np.full(D, np.nan)
            out["diagnostics/bandwidth_regression"] = (np.asarray(hr, float).reshape(-1)[:D],
                                                       "bohr")
        return out

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def local_rows(comm, n_local):
    """Slice of this rank's rows in the global (rank-ordered) trajectory arrays."""
    if comm.size == 1:
        return slice(None)
    counts = comm.allgather_rows(np.array([n_local], np.int64))
    lo = int(counts[:comm.rank].sum())
    return slice(lo, lo + n_local)


def restrict(f, sl):
    """Copy of a FieldEstimate with its per-point arrays restricted to rows ``sl``."""
    import dataclasses
    if sl == slice(None):
        return dataclasses.replace(f)
    n = f.n.shape[0] if f.n is not None else None
    out = {}
    for k, v in vars(f).items():
        if (isinstance(v, np.ndarray) and v.ndim and v.shape[0] == n
                and k not in ("weights", "lam", "h_density", "h_regression", "masses")):
            v = v[sl]
        out[k] = v
    return type(f)(**out)
