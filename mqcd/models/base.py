"""The model interface: diabatic electronic Hamiltonians for a batch of nuclear positions.

Every model, built-in or the user's own, is a subclass of :class:`Model`. It gives, for a batch of
positions ``x`` of shape ``(ntraj, ndof)`` (bohr), the diabatic matrix ``H`` of shape
``(ntraj, ns, ns)`` (hartree) and its analytic gradient ``dH`` of shape ``(ntraj, ndof, ns, ns)``
(hartree/bohr), and the nuclear masses (electron masses, a.u.).

Two ways to implement a model:

* set ``kernel`` to a numba ``@njit`` function ``kernel(x, params, H, dH)`` that fills the
  preallocated ``H`` and ``dH`` for the whole batch (this is how the built-ins are written; it is
  the fast path), or
* override :meth:`Model.evaluate` with plain numpy code returning ``(H, dH)``.

The method layer only uses :meth:`Model.evaluate_into`, so it makes no assumption about how the
matrices are produced. Parameters are declared in ``parameters`` as ``name: (default, unit, doc)``
and may be overridden from the deck's ``[model]`` section.
"""
from __future__ import annotations

import numpy as np


class Model:
    """Base class of all electronic models (atomic units throughout).

    Class attributes a subclass sets
    --------------------------------
    name : str
        Registry name used in decks.
    nstates, ndof : int
        Number of electronic states and nuclear degrees of freedom.
    mass : float or sequence of float
        Default nuclear mass per degree of freedom (electron masses).
    parameters : dict
        ``{name: (default, unit, description)}``; order defines the ``params`` array.
    dtype : numpy dtype
        ``np.float64`` for real symmetric H, ``np.complex128`` for complex Hermitian H.
    scattering : bool
        True for one-dimensional scattering models: branching is reported as transmitted
        (x > 0) and reflected (x < 0) along degree of freedom 0.
    interaction_radius : float
        |x_0| (bohr) beyond which the couplings are negligible (used by ``stop = "exit"`` and the
        exact solver's region).
    kernel : numba function or None
        ``kernel(x, params, H, dH)`` filling preallocated arrays for the whole batch.
    """

    name = "model"
    nstates = 2
    ndof = 1
    mass = 2000.0
    parameters: dict = {}
    dtype = np.float64
    scattering = False
    interaction_radius = 10.0
    kernel = None

    def __init__(self, mass=None, **params):
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            allowed = ", ".join(self.parameters) or "(none)"
            raise ValueError(f"[model] unknown parameter(s) {unknown} for model '{self.name}'; "
                             f"allowed: {allowed}, mass")
        self.param_values = {k: float(params.get(k, v[0])) for k, v in self.parameters.items()}
        self.params = np.array(list(self.param_values.values()), dtype=np.float64)
        self.setup()
        m = self.mass if mass is None else mass
        m = np.broadcast_to(np.asarray(m, dtype=np.float64), (self.ndof,)).copy()
        if np.any(m <= 0) or not np.all(np.isfinite(m)):
            raise ValueError(f"[model] mass must be positive and finite, got {m.tolist()}")
        self.masses = m

    def setup(self):
        """Hook for subclasses that derive quantities (e.g. ``ndof``) from ``param_values``; it runs
        before the masses are broadcast to ``ndof``."""

    # ------------------------------------------------------------------ evaluation
    def allocate(self, ntraj):
        """Preallocated ``(H, dH)`` arrays for ``ntraj`` positions."""
        H = np.zeros((ntraj, self.nstates, self.nstates), dtype=self.dtype)
        dH = np.zeros((ntraj, self.ndof, self.nstates, self.nstates), dtype=self.dtype)
        return H, dH

    def evaluate_into(self, x, H, dH):
        """Fill ``H`` (hartree) and ``dH`` (hartree/bohr) at positions ``x`` (bohr) in place."""
        if self.kernel is not None:
            self.kernel(x, self.params, H, dH)
        else:
            h, dh = self.evaluate(x)
            H[...] = h
            dH[...] = dh

    def evaluate(self, x):
        """Return ``(H, dH)`` at positions ``x`` of shape ``(ntraj, ndof)``."""
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64)
        H, dH = self.allocate(x.shape[0])
        if self.kernel is None:
            raise NotImplementedError(f"model '{self.name}' defines neither kernel nor evaluate()")
        self.kernel(x, self.params, H, dH)
        return H, dH

    def describe(self):
        """Human-readable one-line description."""
        ps = ", ".join(f"{k}={v:g}" for k, v in self.param_values.items())
        return (f"{self.name}: {self.nstates} states, {self.ndof} dof, mass={self.masses.tolist()}"
                + (f", {ps}" if ps else ""))
