r"""Two-state, two-mode models with a complex electronic Hamiltonian (broken time-reversal symmetry),
whose adiabatic states carry Berry curvature: the magnetic force of mqcd/methods/magnetic.py.

* ``complex_crossing``: the model of G. Miao, N. Bellonzi and J. E. Subotnik, J. Chem. Phys. 150,
  124101 (2019):

  .. math:: H = A \begin{pmatrix} -\cos\theta & \sin\theta\, e^{-iWy} \\
                                  \sin\theta\, e^{iWy} & \cos\theta \end{pmatrix},
            \qquad \theta = \tfrac{\pi}{2}(\operatorname{erf}(Bx) + 1),

  two flat adiabats ``E = -A, +A`` whose diabatic character swaps across ``x = 0`` (width 1/B),
  with the phase ``W y`` of the coupling. The curvature of the lower state is
  ``B_xy = (1/2) W theta'(x) sin(theta)`` (derivation in docs/transfer.md): a packet crossing
  ``x = 0`` on one surface is deflected along y, in opposite directions on the two surfaces.
  Scattering along x. Mass 1000 (as in the paper); A, B, W are mqcd's defaults.
* ``uniform_curvature``: the same form with ``cos theta = x / L`` in the strip ``|x| < L``
  (``theta`` held at 0 or pi outside): flat adiabats and a *uniform* curvature ``B_xy = W / (2 L)``
  inside the strip, so that adiabatic motion with the Berry force is the cyclotron orbit with
  angular frequency ``omega = B_xy / M`` (mqcd's own test model; ``dH`` is discontinuous at the
  strip edges and the metric diverges there, keep trajectories well inside).
* ``conical2d_complex``: ``conical2d`` (mqcd/models/multidim.py) with an imaginary coupling
  ``H_12 = lam y - i gamma``: the intersection at ``(-Delta/kappa, 0)`` opens into an avoided
  crossing with gap ``2 gamma``, and the lower state's curvature
  ``B_xy = -kappa lam gamma / (2 |d|^3)`` (``d = (lam y, gamma, kappa x + Delta)``) is peaked there.
  Surfaces with forces, for the energy-conservation tests of the magnetic integrator.

The sign of ``B`` follows :func:`mqcd.electronic.geometry.berry_curvature`
(``B_kj = -2 Im <d_k a|Q|d_j a>``), for which the force on the adiabat is ``sum_j B_kj v^j``.
"""
import math

import numpy as np
from numba import njit

from .base import Model
from .multidim import ConicalIntersection2D, _conical2d

SQRT_PI = math.sqrt(math.pi)


@njit(cache=True, inline="always")
def _fill(H, dH, i, A, c, s, dc, ds, W, y):
    """H = A [[-c, s e^{-iWy}], [s e^{iWy}, c]] and its gradient from c(x), s(x), c', s'."""
    e = complex(math.cos(W * y), math.sin(W * y))
    ec = e.conjugate()
    H[i, 0, 0] = -A * c
    H[i, 1, 1] = A * c
    H[i, 0, 1] = A * s * ec
    H[i, 1, 0] = A * s * e
    dH[i, 0, 0, 0] = -A * dc
    dH[i, 0, 1, 1] = A * dc
    dH[i, 0, 0, 1] = A * ds * ec
    dH[i, 0, 1, 0] = A * ds * e
    dH[i, 1, 0, 0] = 0.0
    dH[i, 1, 1, 1] = 0.0
    dH[i, 1, 0, 1] = -1j * W * A * s * ec
    dH[i, 1, 1, 0] = 1j * W * A * s * e


@njit(cache=True)
def _complex_crossing(x, p, H, dH):
    A, B, W = p[0], p[1], p[2]
    for i in range(x.shape[0]):
        q = x[i, 0]
        th = 0.5 * math.pi * (math.erf(B * q) + 1.0)
        dth = SQRT_PI * B * math.exp(-B * B * q * q)
        c, s = math.cos(th), math.sin(th)
        _fill(H, dH, i, A, c, s, -s * dth, c * dth, W, x[i, 1])


@njit(cache=True)
def _uniform_curvature(x, p, H, dH):
    A, L, W = p[0], p[1], p[2]
    for i in range(x.shape[0]):
        c = x[i, 0] / L
        if c >= 1.0 or c <= -1.0:
            c = 1.0 if c > 0 else -1.0
            _fill(H, dH, i, A, c, 0.0, 0.0, 0.0, W, x[i, 1])
            continue
        s = math.sqrt(1.0 - c * c)
        _fill(H, dH, i, A, c, s, 1.0 / L, -c / (s * L), W, x[i, 1])


@njit(cache=True)
def _conical2d_complex(x, p, H, dH):
    """conical2d's H and dH (the real part) plus the imaginary coupling H_12 = ... - i gamma."""
    _conical2d(x, p, H, dH)
    gamma = p[5]
    for i in range(x.shape[0]):
        H[i, 0, 1] = complex(H[i, 0, 1].real, -gamma)
        H[i, 1, 0] = complex(H[i, 1, 0].real, gamma)


class ComplexCrossing(Model):
    """Miao-Bellonzi-Subotnik complex avoided crossing (module docstring); scattering along x."""
    name = "complex_crossing"
    nstates = 2
    ndof = 2
    mass = 1000.0
    dtype = np.complex128
    scattering = True
    interaction_radius = 5.0
    parameters = {"A": (0.1, "hartree", "half the gap: the adiabats are -A and +A"),
                  "B": (3.0, "1/bohr", "steepness of theta(x) = (pi/2)(erf(B x) + 1)"),
                  "W": (0.5, "1/bohr", "wave number of the coupling phase exp(i W y)")}
    kernel = staticmethod(_complex_crossing)


class UniformCurvature(Model):
    """Flat adiabats with a uniform Berry curvature W / (2 L) in the strip |x| < L."""
    name = "uniform_curvature"
    nstates = 2
    ndof = 2
    mass = 100.0
    dtype = np.complex128
    scattering = False
    interaction_radius = 5.0
    parameters = {"A": (0.5, "hartree", "half the gap: the adiabats are -A and +A"),
                  "L": (5.0, "bohr", "half-width of the strip, cos(theta) = x / L"),
                  "W": (20.0, "1/bohr", "wave number of the coupling phase exp(i W y)")}
    kernel = staticmethod(_uniform_curvature)

    def curvature(self):
        """The curvature ``B_xy`` of the lower adiabatic state in the strip (bohr^-2)."""
        return 0.5 * self.param_values["W"] / self.param_values["L"]


class ConicalIntersection2DComplex(Model):
    """conical2d with the imaginary coupling -i gamma (module docstring)."""
    name = "conical2d_complex"
    nstates = 2
    ndof = 2
    mass = 2000.0
    dtype = np.complex128
    scattering = False
    interaction_radius = 4.0
    parameters = {**ConicalIntersection2D.parameters,
                  "lam": (0.05, "hartree/bohr", "coupling gradient: Re H12 = lam y"),
                  "gamma": (0.01, "hartree", "imaginary coupling: Im H21 = gamma (gap 2 gamma)")}
    kernel = staticmethod(_conical2d_complex)
