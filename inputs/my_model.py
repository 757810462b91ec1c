"""Example user model for mqcd (see docs/models.md): a one-dimensional two-state avoided crossing

    H11 = A tanh(B x),   H22 = -A tanh(B x),   H12 = C exp(-D x^2)

in atomic units (hartree, bohr). Two equivalent implementations:

* ``MyModel`` overrides ``evaluate()`` with plain numpy (simplest to write);
* ``MyModelNumba`` gives a numba ``kernel`` instead (the fast path the built-ins use).

Use either from a deck::

    [model]
    file = "my_model.py"       # relative to the deck
    class = "MyModel"          # or "MyModelNumba"
    C = 0.008                  # optional: override a declared parameter
    mass = 2000.0              # optional: override the default mass

and check it with ``mqcd check-model DECK.toml`` before running.
"""
import math

import numpy as np
from numba import njit

from mqcd.models import Model

FLUSH = 1e-300  # couplings below this are set to exactly 0 (avoids slow denormal numbers)


class MyModel(Model):
    """tanh avoided crossing, numpy implementation."""
    name = "tanh_crossing"
    nstates = 2
    ndof = 1
    mass = 2000.0
    scattering = True           # branching reported as transmitted (x > 0) / reflected (x < 0)
    interaction_radius = 10.0   # |x| beyond which the coupling is negligible
    parameters = {"A": (0.01, "hartree", "asymptotic diabatic energy"),
                  "B": (1.0, "1/bohr", "steepness of the diabats"),
                  "C": (0.005, "hartree", "coupling strength"),
                  "D": (0.5, "1/bohr^2", "coupling range")}

    def evaluate(self, x):
        """Return H (N, 2, 2) in hartree and dH (N, 1, 2, 2) in hartree/bohr for x (N, 1)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        p = self.param_values
        q = x[:, 0]
        t = np.tanh(p["B"] * q)
        v11 = p["A"] * t
        dv11 = p["A"] * p["B"] * (1.0 - t * t)
        v12 = p["C"] * np.exp(-p["D"] * q * q)
        v12 = np.where(np.abs(v12) < FLUSH, 0.0, v12)
        dv12 = -2.0 * p["D"] * q * v12

        H = np.zeros((x.shape[0], 2, 2))
        dH = np.zeros((x.shape[0], 1, 2, 2))
        H[:, 0, 0], H[:, 1, 1] = v11, -v11
        H[:, 0, 1] = H[:, 1, 0] = v12
        dH[:, 0, 0, 0], dH[:, 0, 1, 1] = dv11, -dv11
        dH[:, 0, 0, 1] = dH[:, 0, 1, 0] = dv12
        return H, dH


@njit  # compiled on first use in each run (well under a second for a kernel this size)
def _tanh_crossing(x, p, H, dH):
    # p holds the parameters in declaration order: A, B, C, D
    A, B, C, D = p[0], p[1], p[2], p[3]
    for i in range(x.shape[0]):
        q = x[i, 0]
        t = math.tanh(B * q)
        v12 = C * math.exp(-D * q * q)
        if abs(v12) < FLUSH:
            v12 = 0.0
        H[i, 0, 0] = A * t
        H[i, 1, 1] = -A * t
        H[i, 0, 1] = v12
        H[i, 1, 0] = v12
        dH[i, 0, 0, 0] = A * B * (1.0 - t * t)
        dH[i, 0, 1, 1] = -A * B * (1.0 - t * t)
        dH[i, 0, 0, 1] = -2.0 * D * q * v12
        dH[i, 0, 1, 0] = -2.0 * D * q * v12


class MyModelNumba(MyModel):
    """The same model with a numba kernel (filled in place for the whole batch)."""
    kernel = staticmethod(_tanh_crossing)
    evaluate = Model.evaluate   # use the base class's kernel-driven evaluate


@njit
def _chain3(x, p, H, dH):
    # three states: tanh ramps on the diagonal, Gaussian nearest-neighbour couplings
    S, B, C, D = p[0], p[1], p[2], p[3]
    for i in range(x.shape[0]):
        q = x[i, 0]
        t = math.tanh(B * q)
        s2 = B * (1.0 - t * t)
        v = C * math.exp(-D * q * q)
        if abs(v) < FLUSH:
            v = 0.0
        for a in range(3):
            for b in range(3):
                H[i, a, b] = 0.0
                dH[i, 0, a, b] = 0.0
        for a in range(3):
            H[i, a, a] = S * (a - 1) * t
            dH[i, 0, a, a] = S * (a - 1) * s2
        for a in range(2):
            H[i, a, a + 1] = H[i, a + 1, a] = v
            dH[i, 0, a, a + 1] = dH[i, 0, a + 1, a] = -2.0 * D * q * v


class ThreeStateChain(Model):
    """A three-state model as a numba kernel (the fast path for many states, docs/models.md)."""
    name = "chain3"
    nstates = 3
    ndof = 1
    mass = 2000.0
    scattering = True
    interaction_radius = 10.0
    parameters = {"S": (0.01, "hartree", "slope of the diabatic ramps (state a: S (a - 1) tanh(B x))"),
                  "B": (1.0, "1/bohr", "steepness of the ramps"),
                  "C": (0.005, "hartree", "nearest-neighbour coupling strength"),
                  "D": (1.0, "1/bohr^2", "coupling range")}
    kernel = staticmethod(_chain3)
